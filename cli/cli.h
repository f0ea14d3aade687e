/*
 * cli.h - the subcommands of the `portier` binary.
 *
 * Each takes the arguments after its own name and returns the process exit
 * status. Results go to stdout (JSON where a program reads them), progress
 * and diagnostics to stderr.
 */
#ifndef PORTIER_CLI_H
#define PORTIER_CLI_H

#include "server/keys.h"
#include "server/store.h"

#include <signal.h>
#include <stddef.h>

int cli_browse(int argc, char **argv);
int cli_portal(int argc, char **argv);
int cli_lint(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_account(int argc, char **argv);
int cli_webhook(int argc, char **argv);
int cli_store(int argc, char **argv);

/* Fills set with the signals that stop a command (SIGINT, SIGTERM) and
 * blocks them in this thread (main blocks them before any command starts;
 * a command that waits for them sigwait()s on this set). */
void cli_stop_signals(sigset_t *set);
/* Parses --listen's HOST:PORT (port 0 to 65535). 0, or -1 if malformed. */
int cli_host_port(const char *v, char *host, size_t hostsz, int *port);

/* Opens (and migrates) the store at db and loads its master key, for the
 * operator's commands (account, webhook, serve --demo): *st and *k are new
 * (store_close, keys_free). 0, or negative with err. */
int cli_open_db(const char *db, store **st, keys **k, char *err);
/* Whether db holds a store, for a command that only reads (it creates
 * nothing); if not, says so on stderr as `who`. */
int cli_db_exists(const char *who, const char *db);
/* Reads stdin to its end into a new string (the caller frees it), at most
 * cap bytes: past that NULL, or with truncate the first bytes; with trim,
 * without its trailing newlines. NULL if out of memory. */
char *cli_read_stdin(size_t cap, int truncate, int trim);
/* Prints o as indented JSON on stdout and deletes it. */
void cli_print_json(cJSON *o);
/* "unknown option '--worker' (did you mean --workers?)" into why, the
 * suggestion from the command's options `known` (n of them). */
void cli_unknown_option(const char *opt, const char *const *known, size_t n, char *why,
                        size_t whysz);

#endif
