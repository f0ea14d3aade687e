/*
 * sandbox.h - the sandbox payer portal: an Availity-like site that the demo,
 * the end-to-end tests and the bundled SOPs run against.
 *
 * Two sites: the portal itself (addressed as 127.0.0.1) and an appeals
 * service on a port of its own (addressed as localhost), which the portal
 * frames cross-site, so Chromium runs it out of process. Pages live in
 * portals/sandbox/www/; the backend is this folder's C (internal.h maps
 * it). State (sessions, every accepted submission) lives in SQLite under
 * the data folder.
 *
 * README.md beside this file lists the test users, members and outcomes.
 */
#ifndef PORTIER_SANDBOX_H
#define PORTIER_SANDBOX_H

typedef struct sandbox sandbox;

typedef enum sandbox_mfa { SANDBOX_MFA_TOTP, SANDBOX_MFA_SMS, SANDBOX_MFA_NONE } sandbox_mfa;

typedef struct sandbox_options {
    const char *host;            /* NULL: 127.0.0.1 */
    int port;                    /* 0: a free port */
    int latency_ms;              /* added to every backend call */
    sandbox_mfa mfa;             /* default TOTP */
    int session_warning_after;   /* page views before the timeout warning; 0: never */
    int session_warning_seconds; /* how long the warning waits before signing out; 0: 60 */
    int expire_after;            /* the Nth page load (of any session) ends its session, once:
                                    sign-in again returns to that page; 0: never */
    int markup;                  /* 2: every id, class and nesting changed (markup.c);
                                    0 or 1: the pages as written */
    const char *data_dir;        /* NULL: a fresh temporary folder, removed at stop */
} sandbox_options;

/* Starts both sites. *out is new; sandbox_stop frees it. */
int sandbox_start(const sandbox_options *opts, sandbox **out, char *err);
/* "http://127.0.0.1:PORT" (borrowed). */
const char *sandbox_url(const sandbox *sb);
/* "http://localhost:PORT" of the appeals site (borrowed). */
const char *sandbox_appeals_url(const sandbox *sb);
const char *sandbox_data_dir(const sandbox *sb);
void sandbox_stop(sandbox *sb);

/* The built-in test users, for the README, the demo and the tests: the
 * first for one account, the second for another account on the same portal
 * (its sessions, sign-ins and submissions are its own). */
#define SANDBOX_USER "portier.demo"
#define SANDBOX_PASSWORD "Sandbox!2025"
#define SANDBOX_TOTP_SEED "PORTIERSANDBOXSEEDTOTP234567ABCD"
#define SANDBOX_USER2 "portier.second"
#define SANDBOX_PASSWORD2 "Sandbox!2025-B"
#define SANDBOX_TOTP_SEED2 "PORTIERSANDBOXSECONDUSER234567AB"

#endif
