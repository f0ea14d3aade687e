/*
 * testproc.h - looking at processes from tests: is any browser left?
 */
#ifndef PT_TESTPROC_H
#define PT_TESTPROC_H

#include <stddef.h>

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
/* LISTEN TCP sockets (IPv4 and IPv6) open in the processes of group pgid. */
int tp_listening_sockets(int pgid);
/* Starts a headless Chromium of the test's own with a DevTools TCP port (a
 * "remote" browser a user would run), its profile in dir, in its own process
 * group that dies with the test. Returns its pid (also the group) with its
 * websocket URL in url, or -1. Stop it with tp_stop_browser. */
int tp_remote_browser(const char *dir, char *url, size_t urlsz);
/* Kills the group of a tp_remote_browser and waits until it is empty. */
void tp_stop_browser(int pgid);

#endif
