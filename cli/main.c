/*
 * main.c - the `portier` binary: one program, several subcommands.
 *
 * This is the only place that knows every module (so that it can also start
 * the sandbox portal for `serve --demo`); everything else stays in its lane.
 */
#include "cli/cli.h"
#include "agent/sop.h"
#include "util/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
    int waits_for_signals; /* it sigwait()s for SIGINT/SIGTERM itself */
} commands[] = {
    {"serve", cli_serve,
     "serve [--listen 127.0.0.1:8080] [--db portier.db] [--workers N] [--browser ws://...]\n"
     "                 [--demo] [--webhook-url URL] [--hold-seconds S] [--max-body BYTES]\n"
     "                 [--max-file BYTES] [--max-queue N] [--portal-listen HOST:PORT]\n"
     "                 [--session-max-age 20m] [--session-idle 5m]\n"
     "                 [--header-timeout S] [--min-body-rate BYTES] [--max-conns-per-ip N]\n"
     "                 [--allow-private-webhooks] [--browsers N] [--max-attempts N]\n"
     "                 [--max-parked N] [--retain-days 30] [--master-key-file FILE]\n"
     "                 [--data-dir DIR]   (--db: a SQLite file or a postgres:// URL)\n"
     "      Serve the task API (docs/openapi.yaml); --demo also runs the sandbox portal.",
     1},
    {"account", cli_account,
     "account create|list|set-secret|set-sop|set-default|set-webhook|set-portal|rotate-key|\n"
     "                 rotate-webhook-secret ... [--db FILE]\n"
     "      Set an account up: SOPs, portal secrets, API key, webhook (portier account --help)."},
    {"store", cli_store,
     "store copy --from portier.db --to postgres://USER@HOST:PORT/DB [--master-key-file FILE]\n"
     "      Move an installation's database (every table) into an empty one.",
     0},
    {"webhook", cli_webhook,
     "webhook test NAME [--db FILE] [--allow-private-webhooks]\n"
     "      Send a signed ping to the account's webhook endpoint and show the reply."},
    {"browse", cli_browse,
     "browse URL [--eval JS] [--screenshot FILE] [--full-page] [--wait load|idle]\n"
     "                 [--timeout MS] [--browser ws://...]\n"
     "      Open URL in a fresh browser context, print JS's value as JSON, save a PNG.",
     1},
    {"portal", cli_portal,
     "portal [--listen 127.0.0.1:8081] [--latency-ms N] [--mfa totp|sms|none]\n"
     "                 [--session-warning-after N] [--session-warning-seconds S]\n"
     "                 [--expire-after N] [--markup 1|2] [--data DIR]\n"
     "      Serve the sandbox payer portal (portals/sandbox/README.md).",
     1},
    {"run", cli_run,
     "run SOP --data FILE|- --portal URL [--secrets FILE] [--file PATH]... [--input N=V]...\n"
     "                 [--trajectory DIR] [--approve] [--browser ws://...]\n"
     "                 [--record DIR | --replay DIR [--replay-fallback network]]\n"
     "                 [--fingerprints DIR]\n"
     "      Run one task; the outcome as JSON on stdout (exit 0, 10, 11, 12, 13; 14: portal\n"
     "      unreachable; 2: bad input)."},
    {"lint", cli_lint,
     "lint SOP... [--against RECORDING_DIR] [--format text|json]\n"
     "                 | --heal FINGERPRINTS_DIR [SOP...]\n"
     "      Check SOP files (docs/sop.md): every problem as FILE:LINE:COL: message;\n"
     "      --against also checks each locator in a recording's documents; --heal writes\n"
     "      the changes healed runs suggest as a patch."},
};

static void usage(FILE *out)
{
    fprintf(out,
            "portier %s - a runtime for healthcare back-office tasks on payer portals\n\n"
            "usage: portier COMMAND [ARGS]\n\ncommands:\n",
            PORTIER_VERSION);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(
        out,
        "\n  --help       this text\n  --version    the version\n\n"
        "environment: PORTIER_CHROMIUM (browser binary), PORTIER_LOG "
        "(debug|info|warn|error),\n             PORTIER_LOG_FORMAT (json: a JSON object per line), "
        "PORTIER_HOME (bundled files),\n             "
        "PORTIER_MASTER_KEY (64 hex digits),\n"
        "             PORTIER_WEBHOOK_RETRY_SCHEDULE (seconds, comma-separated)\n");
}

void cli_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

void cli_unknown_option(const char *opt, const char *const *known, size_t n, char *why,
                        size_t whysz)
{
    const char *near = sop_suggest(opt, known, n);
    if (opt[0] != '-')
        snprintf(why, whysz, "unexpected argument '%s'", opt);
    else
        snprintf(why, whysz, "unknown option '%s'%s%s%s", opt, near ? " (did you mean " : "",
                 near ? near : "", near ? "?)" : "");
}

int cli_host_port(const char *v, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || (size_t)(colon - v) >= hostsz)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || !colon[1])
        return -1;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    *port = (int)p;
    return 0;
}

char *cli_read_stdin(size_t cap, int truncate, int trim)
{
    size_t size = 4096, n = 0;
    char *b = malloc(size);
    for (size_t r; b && (r = fread(b + n, 1, size - n - 1, stdin)) > 0;) {
        n += r;
        if (n + 1 < size)
            continue;
        if (size >= cap && truncate)
            break;
        char *nb = size < cap ? realloc(b, size *= 2) : NULL;
        if (!nb) {
            free(b);
            return NULL;
        }
        b = nb;
    }
    if (b) {
        b[n] = '\0';
        while (trim && n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
            b[--n] = '\0';
    }
    return b;
}

int main(int argc, char **argv)
{
    /* A SIGTERM that arrives while a command is still starting must reach
     * the command that waits for it (it stops its browser cleanly), not kill
     * the process outright: block it first thing, and let commands that do
     * not wait for signals have them back before they run. */
    sigset_t stop;
    cli_stop_signals(&stop);
    signal(SIGPIPE, SIG_IGN);
    pt_log_init();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("portier %s\n", PORTIER_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            if (!commands[i].waits_for_signals)
                pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
            return commands[i].run(argc - 2, argv + 2);
        }
    fprintf(stderr, "portier: unknown command '%s' (see portier --help)\n", argv[1]);
    return 2;
}
