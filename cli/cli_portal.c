/*
 * cli_portal.c - `portier portal`: serve the sandbox payer portal until
 * interrupted. For the demo, for writing SOPs, and for tests in other
 * languages.
 */
#include "cli/cli.h"
#include "portals/sandbox/sandbox.h"
#include "util/err.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int portal_usage(const char *why)
{
    if (strcmp(why, "help"))
        fprintf(stderr, "portier portal: %s\n", why);
    fprintf(
        strcmp(why, "help") ? stderr : stdout,
        "usage: portier portal [--listen 127.0.0.1:8081] [--latency-ms N] [--mfa totp|sms|none]\n"
        "                      [--session-warning-after N] [--session-warning-seconds S]\n"
        "                      [--expire-after N] [--markup 1|2]\n"
        "                      [--data DIR]\n");
    return 2;
}

/* Parses a whole non-negative number; -1 if it is not one. */
static int number(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return *s && end && !*end && v >= 0 && v < 1000000 ? (int)v : -1;
}

int cli_portal(int argc, char **argv)
{
    sandbox_options o = {0};
    char host[64] = "127.0.0.1";
    o.port = 8081;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            portal_usage("help");
            return 0;
        }
        if (!v)
            return portal_usage(strncmp(a, "--", 2) == 0 ? "option needs a value"
                                                         : "unexpected argument");
        i++;
        if (strcmp(a, "--listen") == 0) {
            if (cli_host_port(v, host, sizeof(host), &o.port) < 0)
                return portal_usage("--listen takes HOST:PORT (port 0: any free port)");
        } else if (strcmp(a, "--latency-ms") == 0) {
            if ((o.latency_ms = number(v)) < 0)
                return portal_usage("--latency-ms takes milliseconds");
        } else if (strcmp(a, "--mfa") == 0) {
            if (strcmp(v, "totp") == 0)
                o.mfa = SANDBOX_MFA_TOTP;
            else if (strcmp(v, "sms") == 0)
                o.mfa = SANDBOX_MFA_SMS;
            else if (strcmp(v, "none") == 0)
                o.mfa = SANDBOX_MFA_NONE;
            else
                return portal_usage("--mfa takes totp, sms or none");
        } else if (strcmp(a, "--session-warning-after") == 0) {
            if ((o.session_warning_after = number(v)) < 0)
                return portal_usage("--session-warning-after takes a number of page views");
        } else if (strcmp(a, "--session-warning-seconds") == 0) {
            if ((o.session_warning_seconds = number(v)) <= 0)
                return portal_usage("--session-warning-seconds takes seconds > 0");
        } else if (strcmp(a, "--expire-after") == 0) {
            if ((o.expire_after = number(v)) < 0)
                return portal_usage("--expire-after takes a number of page loads");
        } else if (strcmp(a, "--markup") == 0) {
            if ((o.markup = number(v)) < 1 || o.markup > 2)
                return portal_usage("--markup takes 1 (the pages as written) or 2 (every id, "
                                    "class and nesting changed)");
        } else if (strcmp(a, "--data") == 0) {
            o.data_dir = v;
        } else {
            return portal_usage("unknown option");
        }
    }
    o.host = host;

    sigset_t set;
    cli_stop_signals(&set); /* before any thread starts */

    char err[PT_ERR_MAX];
    sandbox *sb = NULL;
    if (sandbox_start(&o, &sb, err) < 0) {
        fprintf(stderr, "portier portal: %s\n", err);
        return 1;
    }
    printf("sandbox portal: %s/login\n", sandbox_url(sb));
    printf("appeals site:   %s\n", sandbox_appeals_url(sb));
    printf("data:           %s\n", sandbox_data_dir(sb));
    if (o.markup == 2)
        printf("markup:         2 (every id, class and nesting changed)\n");
    printf("sign in as %s (see portals/sandbox/README.md); Ctrl-C stops\n", SANDBOX_USER);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "portier portal: stopping\n");
    sandbox_stop(sb);
    return 0;
}
