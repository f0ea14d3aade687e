/*
 * launch.c - starting and stopping a local Chromium.
 *
 * Chromium runs headless with a fresh profile in a private temporary folder,
 * in a process group of its own (so that stopping it stops its renderers,
 * GPU and utility processes too), and with PR_SET_PDEATHSIG so that it dies
 * when the thread that forked it does, even if Portier is killed with
 * SIGKILL. This code runs on the browser's service thread (see ws.c).
 *
 * Chromium speaks CDP over two pipes (--remote-debugging-pipe): it reads
 * our commands from its file descriptor 3 and writes replies and events to
 * its descriptor 4, each message ended by a NUL byte. It opens no TCP port,
 * so no other local process can attach to its pages. The launch is done
 * when Chromium has answered a first command on the pipe.
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
#include <poll.h>
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
    /* a page left is gone, not kept alive in the back-forward cache: a
     * kept session's last task's form (PHI) must not outlive its leaving,
     * and every same-site navigation would take a new renderer process
     * to keep the old page in (twice the processes a claim) */
    "--disable-back-forward-cache",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1024",
    "--remote-debugging-pipe",
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

/* What the browser is never given of our environment: its renderers run
 * the portals' scripts, and a renderer exploit or a crash dump would have
 * the service's master key (PORTIER_MASTER_KEY) or an API key. */
static int secret_env(const char *kv)
{
    static const char *const names[] = {"PORTIER_MASTER_KEY", "PORTIER_API_KEY",
                                        "PORTIER_WEBHOOK_SECRET"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        if (!strncmp(kv, names[i], n) && (kv[n] == '=' || kv[n] == '_'))
            return 1; /* PORTIER_MASTER_KEY_FILE too: where it is, no less */
    }
    return 0;
}

/* Step 3: our environment with TMPDIR in the browser's folder, so that
 * Chromium's own temporary files (with --disable-dev-shm-usage, its shared
 * memory too) go when it goes, and without our secrets (secret_env). The
 * array and *tmpenv are the caller's. */
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
        if (strncmp(environ[i], "TMPDIR=", 7) != 0 && !secret_env(environ[i]))
            envp[k++] = environ[i];
    envp[k++] = *tmpenv;
    envp[k] = NULL;
    return envp;
}

/* Step 4, the child's side of the fork: only async-signal-safe calls until
 * exec. Its own process group, killed when the forking thread dies; the
 * command pipe's read end as its fd 3, the reply pipe's write end as fd 4. */
static void __attribute__((noreturn))
exec_child(pid_t parent, int logfd, int keep_stderr, const int pipes[2], const char *exe,
           const char **argv, char **envp)
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
    /* above 4 first, so that neither dup2 below overwrites the other */
    int cmd = fcntl(pipes[0], F_DUPFD, 10), ev = fcntl(pipes[1], F_DUPFD, 10);
    if (cmd < 0 || ev < 0 || dup2(cmd, 3) < 0 || dup2(ev, 4) < 0)
        _exit(127);
    for (int fd = 5; fd < 1024; fd++)
        close(fd);
    execvpe(exe, (char *const *)argv, envp);
    static const char msg[] = "portier: could not execute the browser\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

/* Why the browser is not there any more, as an error for the launch. */
static int exit_error(cdp_browser *b, const char *exe, const launch_paths *lp, char *err)
{
    char line[256], how[128];
    last_log_line(lp->log, line, sizeof(line));
    cdp__describe_exit(b, how, sizeof(how));
    if (WIFEXITED(b->exit_status) && WEXITSTATUS(b->exit_status) == 127)
        return pt_errf(err,
                       "could not start '%s': not found or not executable (set "
                       "PORTIER_CHROMIUM, or apt-get install chromium)",
                       exe);
    return pt_errf(err, "'%s' %s at start-up: %s", exe, how, line[0] ? line : "(no output)");
}

/* Step 5, the parent's side: sends a first command on the pipe and waits
 * for its reply (which is dropped), or for the browser to exit, or for the
 * start-up timeout. Bytes after the reply go to the core. */
static int wait_for_hello(cdp_browser *b, const char *exe, const launch_paths *lp, int timeout,
                          char *err)
{
    static const char hello[] = "{\"id\":0,\"method\":\"Browser.getVersion\"}";
    if (write(b->pipe_wr, hello, sizeof(hello)) != (ssize_t)sizeof(hello)) /* with its NUL */
        return cdp__reap(b, 2000) ? exit_error(b, exe, lp, err)
                                  : pt_errf(err, "could not write to the browser's pipe");
    int64_t until = pt_mono_ms() + timeout;
    for (;;) {
        struct pollfd pf = {b->pipe_rd, POLLIN, 0};
        int64_t left = until - pt_mono_ms();
        if (left <= 0)
            return pt_errf(err, "'%s' did not answer on its DevTools pipe within %d ms", exe,
                           timeout);
        if (poll(&pf, 1, left > 50 ? 50 : (int)left) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(b->pipe_rd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) /* the browser closed its end: it is exiting */
            return cdp__reap(b, 2000) ? exit_error(b, exe, lp, err)
                                      : pt_errf(err, "'%s' closed its DevTools pipe", exe);
        char *nul = memchr(buf, '\0', (size_t)n);
        if (nul) {
            cdp__rx_framed(b, nul + 1, (size_t)(buf + n - nul - 1));
            PT_DEBUG("cdp", "chromium %d answers on its pipe", (int)b->pid);
            return 0;
        }
    }
}

/* The two pipes of a launch, close-on-exec and (our ends) non-blocking:
 * child[0] is the browser's command end, child[1] its reply end. */
static int make_pipes(cdp_browser *b, int child[2], char *err)
{
    int cmd[2], ev[2];
    if (pipe2(cmd, O_CLOEXEC) < 0)
        return pt_errf(err, "pipe: %s", strerror(errno));
    if (pipe2(ev, O_CLOEXEC) < 0) {
        close(cmd[0]);
        close(cmd[1]);
        return pt_errf(err, "pipe: %s", strerror(errno));
    }
    child[0] = cmd[0];
    child[1] = ev[1];
    b->pipe_wr = cmd[1];
    b->pipe_rd = ev[0];
    fcntl(b->pipe_wr, F_SETFL, O_NONBLOCK);
    fcntl(b->pipe_rd, F_SETFL, O_NONBLOCK);
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
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
    int logfd = -1, child[2] = {-1, -1};

    if (make_profile(b, &lp, &logfd, err) || make_pipes(b, child, err))
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
        exec_child(parent, logfd, o->keep_stderr, child, exe, argv, envp);
    setpgid(pid, pid); /* also here, so there is no window without a group */
    b->pid = pid;
    close_fd(&logfd);
    close_fd(&child[0]);
    close_fd(&child[1]);
    free(argv);
    argv = NULL;
    free(envp);
    envp = NULL;
    free(tmpenv);
    tmpenv = NULL;
    if (wait_for_hello(b, exe, &lp, timeout, err) == 0)
        return 0;

fail:
    close_fd(&logfd);
    close_fd(&child[0]);
    close_fd(&child[1]);
    close_fd(&b->pipe_rd);
    close_fd(&b->pipe_wr);
    free(argv);
    free(envp);
    free(tmpenv);
    cdp__terminate(b);
    b->pid = 0;
    return -1;
}
