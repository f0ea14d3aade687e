/*
 * testproc.c - see testproc.h.
 */
#define _GNU_SOURCE
#include "tests/support/testproc.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int tp_count(const char *needle)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
            continue;
        char path[300], buf[8192];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0)
            continue;
        for (ssize_t i = 0; i < r; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[r] = '\0';
        if (strstr(buf, needle))
            n++;
    }
    closedir(d);
    return n;
}

int tp_wait_none(const char *needle, int wait_ms)
{
    int64_t until = pt_mono_ms() + wait_ms;
    int n;
    while ((n = tp_count(needle)) > 0 && pt_mono_ms() < until)
        pt_sleep_ms(50);
    return n;
}

int tp_count_group(int pgid)
{
    return kill(-pgid, 0) == 0 ? 1 : 0;
}

/* Reads what is there into *dst; returns bytes read, 0 at end of file. */
static ssize_t drain(int fd, char **dst, size_t *len)
{
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r > 0 && *len + (size_t)r < (1u << 20)) {
        *dst = realloc(*dst, *len + (size_t)r + 1);
        memcpy(*dst + *len, buf, (size_t)r);
        *len += (size_t)r;
        (*dst)[*len] = '\0';
    }
    return r;
}

int tp_run(char *const argv[], char *const env[], char **out, char **errout, int kill_after_ms)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        for (int i = 0; env && env[i]; i++)
            putenv(env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t olen = 0, elen = 0;
    *out = calloc(1, 1);
    *errout = calloc(1, 1);
    int64_t kill_at = kill_after_ms > 0 ? pt_mono_ms() + kill_after_ms : 0;
    int open_fds = 2;
    struct pollfd p[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    while (open_fds > 0) {
        int r = poll(p, 2, 50);
        if (kill_at && pt_mono_ms() >= kill_at) {
            kill(pid, SIGTERM);
            kill_at = 0;
        }
        if (r <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (drain(p[i].fd, i ? errout : out, i ? &elen : &olen) <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
            }
        }
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The socket inodes open in the processes of group pgid, into v (up to cap). */
static size_t group_sockets(int pgid, unsigned long *v, size_t cap)
{
    DIR *d = opendir("/proc");
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], stat[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
        if (f)
            fclose(f);
        stat[got] = '\0';
        const char *rp = strrchr(stat, ')'); /* pid (comm) state ppid pgrp */
        int ppid = 0, pgrp = 0;
        char st;
        if (!rp || sscanf(rp + 1, " %c %d %d", &st, &ppid, &pgrp) != 3 || pgrp != pgid)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
        DIR *fds = opendir(path);
        struct dirent *fe;
        while (fds && (fe = readdir(fds))) {
            char link[600], target[128];
            snprintf(link, sizeof(link), "%s/%s", path, fe->d_name);
            ssize_t r = readlink(link, target, sizeof(target) - 1);
            unsigned long ino;
            if (r <= 0)
                continue;
            target[r] = '\0';
            if (sscanf(target, "socket:[%lu]", &ino) == 1 && n < cap)
                v[n++] = ino;
        }
        if (fds)
            closedir(fds);
    }
    if (d)
        closedir(d);
    return n;
}

/* How many of the LISTEN sockets in one /proc/net/tcp* table are in v. */
static int listening_in(const char *table, const unsigned long *v, size_t n)
{
    FILE *f = fopen(table, "r");
    char line[512];
    int hits = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char local[128], remote[128], state[8];
        unsigned long ino = 0;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*s %127s %127s %7s %*s %*s %*s %*s %*s %lu", local, remote, state,
                   &ino) != 4 ||
            strcmp(state, "0A") != 0)
            continue;
        for (size_t i = 0; i < n; i++)
            hits += v[i] == ino;
    }
    fclose(f);
    return hits;
}

int tp_listening_sockets(int pgid)
{
    static unsigned long v[8192];
    size_t n = group_sockets(pgid, v, sizeof(v) / sizeof(v[0]));
    return listening_in("/proc/net/tcp", v, n) + listening_in("/proc/net/tcp6", v, n);
}

/* Reads DevToolsActivePort ("PORT\nPATH") in profile into url. */
static int read_active_port(const char *profile, char *url, size_t urlsz)
{
    char path[700], text[512];
    snprintf(path, sizeof(path), "%s/DevToolsActivePort", profile);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f)
        fclose(f);
    text[got] = '\0';
    char *nl = strchr(text, '\n');
    if (!nl || atoi(text) <= 0 || nl[1] != '/')
        return -1;
    nl[1 + strcspn(nl + 1, "\r\n")] = '\0';
    snprintf(url, urlsz, "ws://127.0.0.1:%d%s", atoi(text), nl + 1);
    return 0;
}

int tp_remote_browser(const char *dir, char *url, size_t urlsz)
{
    char profile[600], udflag[700];
    snprintf(profile, sizeof(profile), "%s/remote-profile", dir);
    snprintf(udflag, sizeof(udflag), "--user-data-dir=%s", profile);
    const char *exe = getenv("PORTIER_CHROMIUM");
    exe = exe && *exe ? exe : "chromium";
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp(exe, exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--remote-debugging-port=0", udflag, "about:blank", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    for (int64_t until = pt_mono_ms() + 30000; pt_mono_ms() < until; pt_sleep_ms(20))
        if (read_active_port(profile, url, urlsz) == 0)
            return pid;
    tp_stop_browser(pid);
    return -1;
}

void tp_stop_browser(int pgid)
{
    kill(-pgid, SIGKILL);
    waitpid(pgid, NULL, 0);
    for (int64_t until = pt_mono_ms() + 3000; kill(-pgid, 0) == 0 && pt_mono_ms() < until;)
        pt_sleep_ms(10);
}
