/*
 * cli.h - the subcommands of the `portier` binary.
 *
 * Each takes the arguments after its own name and returns the process exit
 * status. Results go to stdout (JSON where a program reads them), progress
 * and diagnostics to stderr.
 */
#ifndef PORTIER_CLI_H
#define PORTIER_CLI_H

int cli_browse(int argc, char **argv);
int cli_portal(int argc, char **argv);
int cli_lint(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_account(int argc, char **argv);
int cli_webhook(int argc, char **argv);

#endif
