/*
 * launch.c - starting and stopping a local Chromium.
 *
 * Chromium runs headless with a fresh profile in a private temporary folder,
 * in a process group of its own (so that stopping it stops its renderers,
 * GPU and utility processes too), and with PR_SET_PDEATHSIG so that it dies
 * when the thread that forked it does, even if Portier is killed with
 * SIGKILL. This code runs on the browser's service thread (see ws.c).
 *
 * The websocket address comes from DevToolsActivePort in the profile, which
 * Chromium writes once it listens (port 0: it picks a free one).
 */
#define _GNU_SOURCE
#include "cdp/cdp_internal.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The flags these machines need (DESIGN.md), and a few that keep a headless
 * automation browser quiet and its timers honest when several pages run. */
static const char *const base_flags[] = {
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-default-browser-check",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-dev-shm-usage",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1024",
    "--remote-debugging-port=0",
};

/* The last line Chromium wrote to its log, for an error message. */
static void last_log_line(const char *path, char *out, size_t outsz)
{
    char *data = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (pt_read_file(path, 1 << 20, &data, &len) < 0)
        return;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    char *start = strrchr(data, '\n');
    snprintf(out, outsz, "%s", start ? start + 1 : data);
    free(data);
}

void cdp__describe_exit(cdp_browser *b, char *out, size_t outsz)
{
    int st = b->exit_status;
    if (WIFSIGNALED(st))
        snprintf(out, outsz, "browser exited (signal %d)", WTERMSIG(st));
    else if (WIFEXITED(st))
        snprintf(out, outsz, "browser exited (status %d)", WEXITSTATUS(st));
    else
        snprintf(out, outsz, "browser exited");
}

int cdp__reap(cdp_browser *b, int wait_ms)
{
    if (!b->pid)
        return 0;
    if (b->pid_reaped)
        return 1;
    int64_t until = pt_mono_ms() + wait_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(b->pid, &st, WNOHANG);
        if (r == b->pid || (r < 0 && errno == ECHILD)) {
            b->pid_reaped = 1;
            b->exit_status = r == b->pid ? st : 0;
            return 1;
        }
        if (pt_mono_ms() >= until)
            return 0;
        pt_sleep_ms(5);
    }
}

void cdp__terminate(cdp_browser *b)
{
    if (b->pid) {
        /* The profile is thrown away, so a graceful shutdown buys nothing
         * (and Chromium takes seconds over it): kill the whole group. */
        kill(-b->pid, SIGKILL);
        cdp__reap(b, 5000);
        /* Anything left in the group (a renderer mid-exit) goes now, and we
         * wait until the group is empty, so that a caller who checks finds
         * no browser process at all. */
        kill(-b->pid, SIGKILL);
        int64_t until = pt_mono_ms() + 3000;
        while (kill(-b->pid, 0) == 0 && pt_mono_ms() < until) {
            /* as subreaper we adopted the orphans: reap them ourselves */
            while (waitpid(-b->pid, NULL, WNOHANG) > 0)
                ;
            pt_sleep_ms(2);
        }
        PT_DEBUG("cdp", "browser %d stopped", (int)b->pid);
    }
    if (b->tmpdir && pt_rmtree(b->tmpdir) < 0)
        PT_WARN("cdp", "could not remove %s", b->tmpdir);
}

/* A process killed with SIGKILL cannot remove its browser's profile; the
 * next launch does. Each profile folder names its owner's pid in `owner`. */
static void sweep_stale_profiles(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    DIR *d = opendir(tmp);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "portier-chromium-", 17) != 0)
            continue;
        char path[4096], owner[4200], *text = NULL;
        snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
        snprintf(owner, sizeof(owner), "%s/owner", path);
        if (pt_read_file(owner, 64, &text, NULL) < 0)
            continue; /* being created right now, or not ours */
        pid_t pid = (pid_t)atoi(text);
        free(text);
        if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH) {
            PT_DEBUG("cdp", "removing the profile of dead process %d", (int)pid);
            pt_rmtree(path);
        }
    }
    closedir(d);
}

/* The files of one launch, all inside b->tmpdir. */
typedef struct launch_paths {
    char profile[4096];
    char log[4200];
    char port[4200];   /* DevToolsActivePort */
    char udflag[4200]; /* --user-data-dir=... */
} launch_paths;

/* Step 1: a fresh folder for this browser (its owner's pid, the profile
 * and the log). *logfd is the log, open for the child's output. */
static int make_profile(cdp_browser *b, launch_paths *lp, int *logfd, char *err)
{
    sweep_stale_profiles();
    b->tmpdir = pt_mkdtemp("portier-chromium");
    if (!b->tmpdir)
        return pt_errf(err, "could not create a profile folder: %s", strerror(errno));
    if (strlen(b->tmpdir) > 3000)
        return pt_errf(err, "TMPDIR is too long a path");
    char pidtext[32], ownerfile[4200];
    snprintf(pidtext, sizeof(pidtext), "%d\n", (int)getpid());
    snprintf(ownerfile, sizeof(ownerfile), "%s/owner", b->tmpdir);
    pt_write_file(ownerfile, pidtext, strlen(pidtext), 0600);
    snprintf(lp->profile, sizeof(lp->profile), "%s/profile", b->tmpdir);
    snprintf(lp->log, sizeof(lp->log), "%s/chromium.log", b->tmpdir);
    snprintf(lp->port, sizeof(lp->port), "%s/DevToolsActivePort", lp->profile);
    snprintf(lp->udflag, sizeof(lp->udflag), "--user-data-dir=%s", lp->profile);
    if (mkdir(lp->profile, 0700) < 0)
        return pt_errf(err, "could not create %s: %s", lp->profile, strerror(errno));
    *logfd = open(lp->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (*logfd < 0)
        return pt_errf(err, "could not create %s: %s", lp->log, strerror(errno));
    return 0;
}

/* Step 2: the command line (NULL-terminated; the caller frees the array,
 * whose strings are borrowed). */
static const char **make_argv(const char *exe, const char *udflag, const cdp_launch_options *o)
{
    size_t nextra = 0;
    while (o->extra_args && o->extra_args[nextra])
        nextra++;
    size_t nbase = sizeof(base_flags) / sizeof(base_flags[0]);
    const char **argv = calloc(nbase + nextra + 4, sizeof(*argv));
    if (!argv)
        return NULL;
    size_t n = 0;
    argv[n++] = exe;
    for (size_t i = 0; i < nbase; i++)
        argv[n++] = base_flags[i];
    argv[n++] = udflag;
    for (size_t i = 0; i < nextra; i++)
        argv[n++] = o->extra_args[i];
    argv[n++] = "about:blank";
    argv[n] = NULL;
    return argv;
}

/* Step 3: our environment with TMPDIR in the browser's folder, so that
 * Chromium's own temporary files (with --disable-dev-shm-usage, its shared
 * memory too) go when it goes. The array and *tmpenv are the caller's. */
static char **make_envp(const char *tmpdir, char **tmpenv)
{
    extern char **environ;
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 2, sizeof(*envp));
    if (!envp || asprintf(tmpenv, "TMPDIR=%s", tmpdir) < 0) {
        free(envp);
        *tmpenv = NULL;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "TMPDIR=", 7) != 0)
            envp[k++] = environ[i];
    envp[k++] = *tmpenv;
    envp[k] = NULL;
    return envp;
}

/* Step 4, the child's side of the fork: only async-signal-safe calls until
 * exec. Its own process group, killed when the forking thread dies. */
static void __attribute__((noreturn)) exec_child(pid_t parent, int logfd, int keep_stderr,
                                                 const char *exe, const char **argv, char **envp)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0)
        dup2(devnull, 0);
    dup2(logfd, 1);
    if (!keep_stderr)
        dup2(logfd, 2);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    execvpe(exe, (char *const *)argv, envp);
    static const char msg[] = "portier: could not execute the browser\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

/* The websocket URL from a DevToolsActivePort file's text ("PORT\nPATH"):
 * 1 with b->ws_url set, 0 when not written yet, -1 out of memory. */
static int read_port_file(cdp_browser *b, const char *portfile)
{
    char *text = NULL;
    int rc = 0;
    if (pt_read_file(portfile, 4096, &text, NULL) != 0)
        return 0;
    int port = atoi(text);
    char *nl = strchr(text, '\n');
    char *path = nl ? nl + 1 : NULL;
    if (path)
        path[strcspn(path, "\r\n")] = '\0';
    if (port > 0 && path && *path == '/') {
        size_t len = strlen(path) + 64;
        b->ws_url = malloc(len);
        if (b->ws_url)
            snprintf(b->ws_url, len, "ws://127.0.0.1:%d%s", port, path);
        rc = b->ws_url ? 1 : -1;
    }
    free(text);
    return rc;
}

/* Step 5, the parent's side: waits for the browser to say where it
 * listens, or to exit, or the start-up timeout. */
static int wait_for_port(cdp_browser *b, const char *exe, const launch_paths *lp, int timeout,
                         char *err)
{
    int64_t until = pt_mono_ms() + timeout;
    for (;;) {
        int got = read_port_file(b, lp->port);
        if (got < 0)
            return pt_errf(err, "out of memory");
        if (got) {
            PT_DEBUG("cdp", "chromium %d listening at %s", (int)b->pid, b->ws_url);
            return 0;
        }
        if (cdp__reap(b, 0)) {
            char line[256], how[128];
            last_log_line(lp->log, line, sizeof(line));
            cdp__describe_exit(b, how, sizeof(how));
            if (WIFEXITED(b->exit_status) && WEXITSTATUS(b->exit_status) == 127)
                return pt_errf(err,
                               "could not start '%s': not found or not executable (set "
                               "PORTIER_CHROMIUM, or apt-get install chromium)",
                               exe);
            return pt_errf(err, "'%s' %s at start-up: %s", exe, how,
                           line[0] ? line : "(no output)");
        }
        if (pt_mono_ms() >= until)
            return pt_errf(err, "'%s' did not open its DevTools port within %d ms", exe, timeout);
        pt_sleep_ms(10);
    }
}

int cdp__spawn(cdp_browser *b, char *err)
{
    const cdp_launch_options *o = &b->launch;
    const char *exe = o->executable;
    if (!exe || !*exe)
        exe = getenv("PORTIER_CHROMIUM");
    if (!exe || !*exe)
        exe = "chromium";
    int timeout = o->startup_timeout_ms > 0 ? o->startup_timeout_ms : 30000;

    launch_paths lp;
    const char **argv = NULL;
    char **envp = NULL, *tmpenv = NULL;
    int logfd = -1;

    if (make_profile(b, &lp, &logfd, err))
        goto fail;
    if (!(argv = make_argv(exe, lp.udflag, o)) || !(envp = make_envp(b->tmpdir, &tmpenv))) {
        pt_errf(err, "out of memory");
        goto fail;
    }
    /* Chromium's helpers outlive its main process by a moment when it is
     * killed; as a subreaper we inherit and reap them, instead of leaving
     * zombies for whatever init this machine has. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        pt_errf(err, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0)
        exec_child(parent, logfd, o->keep_stderr, exe, argv, envp);
    setpgid(pid, pid); /* also here, so there is no window without a group */
    b->pid = pid;
    close(logfd);
    logfd = -1;
    free(argv);
    argv = NULL;
    free(envp);
    envp = NULL;
    free(tmpenv);
    tmpenv = NULL;
    if (wait_for_port(b, exe, &lp, timeout, err) == 0)
        return 0;

fail:
    if (logfd >= 0)
        close(logfd);
    free(argv);
    free(envp);
    free(tmpenv);
    cdp__terminate(b);
    b->pid = 0;
    return -1;
}
