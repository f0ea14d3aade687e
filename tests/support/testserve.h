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
    char db[600];
    char base[128];  /* http://127.0.0.1:PORT */
    char key[128];   /* --demo: the API key */
    char whsec[128]; /* --demo: the webhook secret */
    char portal[128]; /* --demo: the sandbox portal's URL */
    int runs;        /* starts so far (logs are serve-N.out/err) */
} ts_server;

/* Makes a fresh folder for a server (removed by ts_cleanup). */
void ts_init(ts_server *s, const char *name);
/* Starts `portier serve --db DIR/portier.db --listen 127.0.0.1:0` plus args
 * (NULL-terminated) and env ("K=V", NULL-terminated, may be NULL); waits
 * until it prints its address. 0, or -1 (the log is printed). */
int ts_start(ts_server *s, const char *const *args, const char *const *env);
/* SIGTERM (or SIGKILL with hard) and wait for it to exit. Returns its exit
 * status (128+signal when killed). */
int ts_stop(ts_server *s, int hard);
void ts_cleanup(ts_server *s);
/* Everything it wrote to stderr over all its runs (new string). */
char *ts_log(const ts_server *s);
/* Runs `portier ARGS...` (NULL-terminated) with --db appended; stdout in
 * *out (new string, may be NULL). Returns the exit status. stdin_text, if
 * not NULL, is written to its stdin. */
int ts_cli(const ts_server *s, const char *const *args, const char *stdin_text, char **out);

#endif
