/*
 * testpg.c - see testpg.h.
 *
 * initdb costs seconds, so it runs once per build tree: a template cluster
 * (PORTIER_TEST_PG_TEMPLATE, made under a lock by whichever test comes
 * first) that each test process copies into its own folder and starts. The
 * server is a child of the test process started with a parent-death signal
 * set after it drops root, so it cannot outlive the test; at exit it is
 * stopped (a fast shutdown) and its folder removed.
 */
#define _GNU_SOURCE
#include "tests/support/testpg.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG_PORT 5432 /* on a socket in our own folder: no other server shares it */

static struct {
    pid_t pid;
    char dir[512]; /* the folder: data/, the socket, the log */
    int ndb;
    int exit_hooked;
} pg;

int tpg_enabled(void)
{
    const char *v = getenv("PORTIER_TEST_DB");
    return v && !strcmp(v, "pg");
}

/* Debian's server binaries: /usr/lib/postgresql/VERSION/bin (the newest). */
static int bindir(char *out, size_t n)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0 || !g.gl_pathc) {
        fprintf(stderr, "testpg: no PostgreSQL server installed (make deps installs it)\n");
        return -1;
    }
    snprintf(out, n, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    char *slash = strrchr(out, '/');
    *slash = '\0';
    return 0;
}

/* As root, who runs the server: initdb and postgres refuse root. */
static int server_user(uid_t *uid, gid_t *gid)
{
    if (geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
        return 0;
    }
    struct passwd *pw = getpwnam("nobody");
    if (!pw) {
        fprintf(stderr, "testpg: running as root and there is no user 'nobody'\n");
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* In a child: become the server's user; the parent-death signal is set
 * after, since changing credentials clears it. */
static void become(uid_t uid, gid_t gid, int deathsig)
{
    if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
        _exit(126);
    if (deathsig)
        prctl(PR_SET_PDEATHSIG, deathsig);
}

/* Runs argv as the server's user, its output into log: the exit status. */
static int run_as(uid_t uid, gid_t gid, const char *const *argv, const char *log)
{
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        become(uid, gid, SIGKILL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* cp -a from to (keeps the owner and the modes postgres insists on). */
static int copy_tree(const char *from, const char *to)
{
    const char *argv[] = {"/bin/cp", "-a", from, to, NULL};
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The template cluster, made once per build tree (under a lock). */
static int template_dir(const char *bin, uid_t uid, gid_t gid, char *out, size_t n)
{
    const char *t = getenv("PORTIER_TEST_PG_TEMPLATE");
    if (!t || !*t)
        t = "pg-template";
    snprintf(out, n, "%s", t);
    char lock[600], ver[600], tmp[600], log[700];
    snprintf(lock, sizeof(lock), "%s.lock", t);
    snprintf(ver, sizeof(ver), "%s/PG_VERSION", t);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        fprintf(stderr, "testpg: cannot lock %s: %s\n", lock, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    if (access(ver, F_OK) != 0) {
        snprintf(tmp, sizeof(tmp), "%s.tmp", t);
        snprintf(log, sizeof(log), "%s.log", t);
        pt_rmtree(tmp);
        char initdb[600];
        snprintf(initdb, sizeof(initdb), "%s/initdb", bin);
        const char *argv[] = {initdb, "-D", tmp, "-U", "portier", "-A", "trust", "-E", "UTF8",
                              "--locale=C", "--no-sync", "--no-instructions", NULL};
        if (mkdir(tmp, 0700) < 0 || chown(tmp, uid, gid) < 0 || run_as(uid, gid, argv, log) != 0 ||
            rename(tmp, t) < 0) {
            fprintf(stderr, "testpg: initdb failed (see %s)\n", log);
            rc = -1;
        }
    }
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}

static void stop_at_exit(void)
{
    tpg_stop();
}

static int start(void)
{
    char bin[512], tmpl[512], data[600], log[600];
    uid_t uid;
    gid_t gid;
    if (bindir(bin, sizeof(bin)) < 0 || server_user(&uid, &gid) < 0 ||
        template_dir(bin, uid, gid, tmpl, sizeof(tmpl)) < 0)
        return -1;
    char *d = pt_mkdtemp("pg");
    if (!d)
        return -1;
    snprintf(pg.dir, sizeof(pg.dir), "%s", d);
    free(d);
    snprintf(data, sizeof(data), "%s/data", pg.dir);
    snprintf(log, sizeof(log), "%s/postgres.log", pg.dir);
    if (!pg.exit_hooked) {
        atexit(stop_at_exit);
        pg.exit_hooked = 1;
    }
    if (chown(pg.dir, uid, gid) < 0 || chmod(pg.dir, 0755) < 0 ||
        copy_tree(tmpl, data) < 0) {
        fprintf(stderr, "testpg: cannot copy the template cluster into %s\n", pg.dir);
        return -1;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", PG_PORT);
    char postgres[600];
    snprintf(postgres, sizeof(postgres), "%s/postgres", bin);
    /* a throwaway cluster: no fsync (the durable figures are bench/'s) */
    const char *argv[] = {postgres, "-D", data, "-k", pg.dir, "-p", port,
                          "-c", "listen_addresses=", "-c", "fsync=off",
                          "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                          "-c", "max_connections=300", "-c", "shared_buffers=32MB", NULL};
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* SIGQUIT: an immediate shutdown, which also ends its backends */
        become(uid, gid, SIGQUIT);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    pg.pid = p;
    char ping[800];
    snprintf(ping, sizeof(ping), "host=%s port=%d user=portier dbname=postgres", pg.dir, PG_PORT);
    /* ready when it answers; a server that exits has failed */
    for (;;) {
        if (PQping(ping) == PQPING_OK)
            return 0;
        int st;
        if (waitpid(p, &st, WNOHANG) == p) {
            pg.pid = 0;
            char *t = NULL;
            pt_read_file(log, 1 << 16, &t, NULL);
            fprintf(stderr, "testpg: postgres exited:\n%s\n", t ? t : "");
            free(t);
            return -1;
        }
        pt_sleep_ms(50);
    }
}

int tpg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "testpg: %s", PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "testpg: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

char *tpg_value(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    char *v = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            v = strdup(PQgetvalue(r, 0, 0));
        else if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "testpg: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

int tpg_new_db(char *out, size_t n)
{
    if (!pg.pid && start() < 0)
        return -1;
    char admin[800], sql[128];
    snprintf(admin, sizeof(admin), "host=%s port=%d user=portier dbname=postgres", pg.dir,
             PG_PORT);
    snprintf(sql, sizeof(sql), "CREATE DATABASE t%d", ++pg.ndb);
    if (tpg_exec(admin, sql) < 0)
        return -1;
    snprintf(out, n, "host=%s port=%d user=portier dbname=t%d", pg.dir, PG_PORT, pg.ndb);
    return 0;
}

int tpg_url(const char *conninfo, char *out, size_t n)
{
    char host[512] = "", db[64] = "";
    const char *h = strstr(conninfo, "host="), *d = strstr(conninfo, "dbname=");
    if (!h || !d)
        return -1;
    sscanf(h + 5, "%511s", host);
    sscanf(d + 7, "%63s", db);
    /* a socket folder goes in the query: a URL's host part cannot hold it */
    snprintf(out, n, "postgresql://portier@/%s?host=%s&port=%d", db, host, PG_PORT);
    return 0;
}

void tpg_stop(void)
{
    if (pg.pid) {
        kill(pg.pid, SIGINT); /* a fast shutdown: ends the sessions, then exits */
        int st;
        while (waitpid(pg.pid, &st, 0) < 0 && errno == EINTR)
            ;
        pg.pid = 0;
    }
    if (pg.dir[0] && !getenv("PORTIER_KEEP_TEST_DIRS"))
        pt_rmtree(pg.dir);
    pg.dir[0] = '\0';
}
