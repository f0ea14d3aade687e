/*
 * testserve.h - `portier serve` as a real process for end-to-end tests: its
 * stdout and stderr go to files in the test's folder, its address and (for
 * --demo) its API key and webhook secret are read from what it prints.
 */
#ifndef PT_TESTSERVE_H
#define PT_TESTSERVE_H

#include <sys/types.h>

typedef struct ts_server {
    pid_t pid;
    char dir[512];   /* the test's folder (db, logs) */
    char db[600];    /* DIR/portier.db, or (PORTIER_TEST_DB=pg) a PostgreSQL string */
    char data[600];  /* its data folder: DIR/portier.db.d (PostgreSQL: DIR/portier.d) */
    char base[128];  /* http://127.0.0.1:PORT */
    char key[128];   /* --demo: the API key */
    char whsec[128]; /* --demo: the webhook secret */
    char portal[128]; /* --demo: the sandbox portal's URL */
    int runs;        /* starts so far (logs are serve-N.out/err) */
} ts_server;

/* Makes a fresh folder for a server (removed by ts_cleanup) and, when the
 * run's backend is PostgreSQL (testpg.h), a fresh database for it with a
 * master key file that the server and every command are given. */
void ts_init(ts_server *s, const char *name);
/* Whether the server's store is PostgreSQL. */
int ts_pg(const ts_server *s);
/* Starts `portier serve --db DB --listen 127.0.0.1:0` plus args
 * (NULL-terminated) and env ("K=V", NULL-terminated, may be NULL); waits
 * until it prints its address. 0, or -1 (the log is printed). */
int ts_start(ts_server *s, const char *const *args, const char *const *env);
/* SIGTERM (or SIGKILL with hard) and wait for it to exit. Returns its exit
 * status (128+signal when killed). */
int ts_stop(ts_server *s, int hard);
void ts_cleanup(ts_server *s);
/* Runs SQL on the server's database behind its back: sqlite_sql on SQLite,
 * pg_sql on PostgreSQL (the same text when it is portable). 0 or -1. */
int ts_sql(const ts_server *s, const char *sqlite_sql, const char *pg_sql);
/* The first column of a query's first row as an integer (-1: no row). */
long long ts_sql_int(const ts_server *s, const char *sql);
/* The same as text: a new string the caller frees, or NULL (no row, a NULL
 * value, or an error on stderr). SQL that differs per backend is the
 * caller's choice (ts_pg). */
char *ts_sql_text(const ts_server *s, const char *sql);
/* Everything it wrote to stderr over all its runs (new string). */
char *ts_log(const ts_server *s);
/* Runs `portier ARGS...` (NULL-terminated) with --db appended; stdout in
 * *out (new string, may be NULL). Returns the exit status. stdin_text, if
 * not NULL, is written to its stdin. */
int ts_cli(const ts_server *s, const char *const *args, const char *stdin_text, char **out);

#endif
