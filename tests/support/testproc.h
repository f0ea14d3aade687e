/*
 * testproc.h - looking at processes from tests: is any browser left?
 */
#ifndef PT_TESTPROC_H
#define PT_TESTPROC_H

/* Processes (zombies included) whose command line contains needle. */
int tp_count(const char *needle);
/* Polls up to wait_ms for tp_count(needle) to reach 0; returns the count left. */
int tp_wait_none(const char *needle, int wait_ms);
/* Processes in process group pgid (zombies included). */
int tp_count_group(int pgid);
/* Runs argv (argv[0] a path) with env additions ("K=V", NULL-terminated),
 * capturing stdout and stderr (each up to 1 MiB, new strings). Returns the
 * exit status (128+signal when killed), or -1. kill_after_ms > 0 sends
 * SIGTERM to it after that long. */
int tp_run(char *const argv[], char *const env[], char **out, char **errout, int kill_after_ms);

#endif
