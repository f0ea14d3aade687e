/*
 * internal.h - what the sandbox portal's files share; private to
 * portals/sandbox/ (sandbox.h is the portal's contract).
 *
 *   sites.c    the two sites' route tables, the store's schema, start/stop
 *   session.c  test users, sessions, sign-in and MFA, the session API
 *   pages.c    the HTML pages and static files
 *   apps.c     the apps' backends: validation, outcomes, the submissions log
 *   harness.c  the /__sandbox/ routes tests read and steer the portal by
 *   markup.c   markup 2: the same pages with every id, class and nesting
 *              changed, generated as they are served
 *
 * Names shared between these files carry sb_; everything else is static.
 * (No sandbox.c: it would include this header, which includes sandbox.h.)
 */
#ifndef PORTIER_SANDBOX_INTERNAL_H
#define PORTIER_SANDBOX_INTERNAL_H

#include "portals/sandbox/sandbox.h"
#include "http/http.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdint.h>

enum site { SITE_PORTAL, SITE_APPEALS };

/* What a site's route handlers get as ud. */
typedef struct site_ctx {
    sandbox *sb;
    enum site site;
} site_ctx;

struct sandbox {
    sandbox_options o;
    http_server *portal, *appeals;
    site_ctx portal_ctx, appeals_ctx;
    char url[64], appeals_url[64];
    char *data_dir;
    int own_data_dir;
    char www[4096];
    sqlite3 *db;    /* serialized mode: shared by the HTTP workers */
    int page_loads; /* pages served to a signed-in session, for --expire-after (atomic) */
};

/* ---- Test users (session.c) --------------------------------------------- */

typedef struct sb_user {
    const char *id, *password, *totp_seed, *phone_last4;
} sb_user;

extern const sb_user sb_users[];
extern const size_t sb_nusers;
/* The test user with that id (borrowed, static), or NULL. */
const sb_user *sb_find_user(const char *id);

/* ---- Sessions (session.c) ----------------------------------------------- */

typedef struct session {
    char id[65]; /* the portal's cookie */
    char user[64];
    char token[65]; /* the appeals site's hand-off */
    int mfa_ok;
    int views;
    int64_t warned_at; /* seconds; 0: no warning shown */
    int ended;         /* signed out, timed out or expired: never signed in again */
} session;

/* Runs sql with ?1 = a (if not NULL) and ?2 = n (if the statement has it).
 * 0, or -1. */
int sb_exec(sandbox *sb, const char *sql, const char *a, int64_t n);
/* The session behind this request (the cookie on the portal, the token on
 * the appeals site): PT_FOUND with *s filled (ended, if its warning was
 * ignored too long), or PT_NONE. */
int sb_session_of(sandbox *sb, enum site site, http_request *r, session *s);
/* 1 if the session is live: past MFA and not ended. */
int sb_signed_in(const session *s);
/* Counts a page view; shows the timeout warning after the configured views.
 * 1 when this load is the one --expire-after names: the session has ended
 * (the page sends the user to sign in again), else 0. */
int sb_count_view(sandbox *sb, session *s);
/* Every session the store holds, oldest first, by calling fn (which may not
 * keep s). */
void sb_each_session(sandbox *sb, void (*fn)(const session *s, void *ud), void *ud);

/* A backend call (/api/...): slowed by --latency-ms, its JSON body parsed,
 * its session looked up. */
typedef struct sb_call {
    sandbox *sb;
    enum site site;
    cJSON *body; /* a POST's object; NULL for other methods */
    session s;
    int found; /* a session came with the request (live or not) */
} sb_call;

enum sb_need {
    SB_ANYONE,    /* sign-in itself: the handler looks at found and s */
    SB_SIGNED_IN, /* 401 session_expired or not_signed_in otherwise */
};

/* Prepares the call (400 for a body that is not a JSON object, 401 if need
 * is not met) and, if it may go on, runs fn(c, r). ud is the site_ctx. */
void sb_call_run(http_request *r, void *ud, enum sb_need need,
                 void (*fn)(sb_call *c, http_request *r));

/* Sends o as JSON with that status and frees it. */
void sb_reply_obj(http_request *r, int status, cJSON *o);

/* ---- Route handlers (ud: the site_ctx) ---------------------------------- */

/* session.c */
void sb_api_login(http_request *r, void *ud);
void sb_api_mfa_info(http_request *r, void *ud);
void sb_api_mfa(http_request *r, void *ud);
void sb_api_session(http_request *r, void *ud);
void sb_api_session_extend(http_request *r, void *ud);
void sb_api_logout(http_request *r, void *ud);

/* pages.c */
void sb_page_static(http_request *r, void *ud);
void sb_page_root(http_request *r, void *ud);
void sb_page_login(http_request *r, void *ud);
void sb_page_mfa(http_request *r, void *ud);
void sb_page_app(http_request *r, void *ud); /* /home and the portal's apps */
void sb_page_appeals(http_request *r, void *ud);

/* apps.c */
void sb_api_eligibility(http_request *r, void *ud);
void sb_api_claim(http_request *r, void *ud);
void sb_api_authorization(http_request *r, void *ud);
void sb_api_appeal(http_request *r, void *ud);
void sb_api_plan_appeal(http_request *r, void *ud);

/* markup.c: src (a file of www/, by its extension) as markup 2 serves it:
 * *out new (the caller frees it), *outlen bytes. 0, or -1. */
int sb_markup2(const char *ext, const char *src, size_t len, char **out, size_t *outlen);

/* harness.c */
void sb_harness_submissions(http_request *r, void *ud);
void sb_harness_reset(http_request *r, void *ud);
void sb_harness_sms(http_request *r, void *ud);
void sb_harness_signins(http_request *r, void *ud);
void sb_harness_expire(http_request *r, void *ud);

#endif
