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
