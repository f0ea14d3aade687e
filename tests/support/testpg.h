/*
 * testpg.h - a real PostgreSQL server for the tests that run the store on
 * it (PORTIER_TEST_DB=pg): Debian's initdb and postgres, in a folder of the
 * test's own, as an unprivileged user (initdb refuses root), on a unix
 * socket only. One server per test process, started on first use; each
 * caller gets a database of its own on it. The server dies with the test
 * process, even when the test crashes (its parent-death signal), and its
 * folder is removed at exit.
 */
#ifndef PT_TESTPG_H
#define PT_TESTPG_H

#include <stddef.h>

/* Whether this run's stores are PostgreSQL (PORTIER_TEST_DB=pg). */
int tpg_enabled(void);
/* A new empty database on this process's server: its libpq connection
 * string (key=value form) into out. 0, or -1 (why on stderr). */
int tpg_new_db(char *out, size_t n);
/* The same database as a postgresql:// URL (for the tests of that form). */
int tpg_url(const char *conninfo, char *out, size_t n);
/* Runs sql (statements without parameters) on the database: 0 or -1. */
int tpg_exec(const char *conninfo, const char *sql);
/* The first value of a query's first row as a new string (NULL: none or an
 * error). */
char *tpg_value(const char *conninfo, const char *sql);
/* Stops the server and removes its folder (also run at exit). */
void tpg_stop(void);

#endif
