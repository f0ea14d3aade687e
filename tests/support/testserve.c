/*
 * testserve.c - see testserve.h.
 */
#define _GNU_SOURCE
#include "tests/support/testserve.h"
#include "tests/support/testpg.h"
#include "util/crypto.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin(void)
{
    const char *b = getenv("PORTIER_BIN");
    return b ? b : "./portier";
}

void ts_init(ts_server *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    char *d = pt_mkdtemp(name);
    snprintf(s->dir, sizeof(s->dir), "%s", d ? d : "/tmp");
    free(d);
    snprintf(s->db, sizeof(s->db), "%s/portier.db", s->dir);
    snprintf(s->data, sizeof(s->data), "%s/portier.db.d", s->dir);
    if (!tpg_enabled())
        return;
    snprintf(s->data, sizeof(s->data), "%s/portier.d", s->dir);
    if (tpg_new_db(s->db, sizeof(s->db)) < 0) {
        fprintf(stderr, "ts_init: no PostgreSQL database for the test\n");
        abort();
    }
    /* PostgreSQL takes the master key from outside: every server and
     * command this process starts inherits it */
    char key[700], hex[65];
    snprintf(key, sizeof(key), "%s/master.key", s->dir);
    if (pt_random_hex(hex, 64) < 0 || pt_write_file(key, hex, 64, 0600) < 0)
        abort();
    setenv("PORTIER_MASTER_KEY_FILE", key, 1);
}

int ts_pg(const ts_server *s)
{
    return strncmp(s->db, "host=", 5) == 0;
}

static char *slurp(const char *path)
{
    char *t = NULL;
    return pt_read_file(path, 16u << 20, &t, NULL) == 0 ? t : NULL;
}

static void value_after(const char *text, const char *prefix, char *out, size_t n)
{
    const char *p = text ? strstr(text, prefix) : NULL;
    if (!p)
        return;
    p += strlen(prefix);
    size_t len = strcspn(p, "\r\n");
    snprintf(out, n, "%.*s", (int)len, p);
}

int ts_start(ts_server *s, const char *const *args, const char *const *env)
{
    char out[700], err[700];
    s->runs++;
    snprintf(out, sizeof(out), "%s/serve-%d.out", s->dir, s->runs);
    snprintf(err, sizeof(err), "%s/serve-%d.err", s->dir, s->runs);
    const char *argv[64] = {bin(), "serve", "--db", s->db, "--listen", "127.0.0.1:0"};
    int n = 6;
    if (ts_pg(s)) {
        argv[n++] = "--data-dir";
        argv[n++] = s->data;
    }
    for (size_t i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no server running */
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fo, 1);
        dup2(fe, 2);
        /* Chromium's profile lands in the test's folder: a leftover is
         * found by its path */
        setenv("TMPDIR", s->dir, 1);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    int64_t until = pt_mono_ms() + 30000;
    while (pt_mono_ms() < until) {
        char *text = slurp(out);
        int demo = text && strstr(text, "export PORTIER_WEBHOOK_SECRET=");
        int plain = text && strstr(text, "the task API at ");
        if (demo || plain) {
            if (demo) {
                value_after(text, "export API_BASE=", s->base, sizeof(s->base));
                value_after(text, "export PORTIER_API_KEY=", s->key, sizeof(s->key));
                value_after(text, "export PORTIER_WEBHOOK_SECRET=", s->whsec, sizeof(s->whsec));
                value_after(text, "the sandbox portal at ", s->portal, sizeof(s->portal));
                char *sp = strstr(s->portal, "/login");
                if (sp)
                    *sp = '\0';
            } else {
                value_after(text, "the task API at ", s->base, sizeof(s->base));
                s->base[strcspn(s->base, " ")] = '\0';
            }
            free(text);
            return 0;
        }
        free(text);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            break;
        }
        pt_sleep_ms(50);
    }
    char *log = slurp(err);
    fprintf(stderr, "portier serve did not start:\n%s\n", log ? log : "");
    free(log);
    ts_stop(s, 1);
    return -1;
}

int ts_stop(ts_server *s, int hard)
{
    if (!s->pid)
        return -1;
    kill(s->pid, hard ? SIGKILL : SIGTERM);
    int st = 0;
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void ts_cleanup(ts_server *s)
{
    if (s->pid)
        ts_stop(s, 1);
    if (s->dir[0] && strcmp(s->dir, "/tmp") && !getenv("PORTIER_KEEP_TEST_DIRS"))
        pt_rmtree(s->dir);
}

char *ts_log(const ts_server *s)
{
    char *all = calloc(1, 1);
    size_t len = 0;
    for (int i = 1; i <= s->runs; i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s/serve-%d.err", s->dir, i);
        char *t = slurp(path);
        if (!t)
            continue;
        size_t tl = strlen(t);
        char *n = realloc(all, len + tl + 1);
        if (n) {
            all = n;
            memcpy(all + len, t, tl + 1);
            len += tl;
        }
        free(t);
    }
    return all;
}

int ts_cli(const ts_server *s, const char *const *args, const char *stdin_text, char **out)
{
    const char *argv[32] = {bin()};
    int n = 1;
    for (size_t i = 0; args[i] && n < 28; i++)
        argv[n++] = args[i];
    argv[n++] = "--db";
    argv[n++] = s->db;
    argv[n] = NULL;
    int in[2], o[2];
    if (pipe(in) < 0 || pipe(o) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        close(in[1]);
        close(o[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    if (stdin_text && write(in[1], stdin_text, strlen(stdin_text)) < 0)
        perror("write");
    close(in[1]);
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    ssize_t r;
    while (b && (r = read(o[0], b + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 >= cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb)
                break;
            b = nb;
        }
    }
    close(o[0]);
    if (b)
        b[len] = '\0';
    int st = 0;
    waitpid(pid, &st, 0);
    if (out)
        *out = b;
    else
        free(b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int ts_sql(const ts_server *s, const char *sqlite_sql, const char *pg_sql)
{
    if (ts_pg(s))
        return tpg_exec(s->db, pg_sql);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(s->db, &db);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_exec(db, sqlite_sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK)
        fprintf(stderr, "ts_sql: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

long long ts_sql_int(const ts_server *s, const char *sql)
{
    long long v = -1;
    if (ts_pg(s)) {
        char *t = tpg_value(s->db, sql);
        if (t)
            v = atoll(t);
        free(t);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    if (sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

char *ts_sql_text(const ts_server *s, const char *sql)
{
    if (ts_pg(s))
        return tpg_value(s->db, sql);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char *v = NULL;
    if (sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
            fprintf(stderr, "ts_sql_text: %s\n", sqlite3_errmsg(db));
        else if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
            v = strdup((const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}
