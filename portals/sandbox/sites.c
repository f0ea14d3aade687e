/*
 * sites.c - the sandbox payer portal's two sites: their route tables, and
 * starting and stopping them (sandbox.h's functions). internal.h says which
 * file owns the rest.
 *
 * It must be hard in the ways real portals are hard: multi-factor sign-in,
 * a consent banner, apps in iframes (one cross-site), server-side
 * validation, members who are not found or not covered, a session-timeout
 * warning over the page, a confirm() before a claim goes, and latency on
 * every backend call. What it accepts is logged exactly as received, so a
 * test can check what an agent typed (GET /__sandbox/submissions).
 *
 * Threads: the HTTP layer runs handlers on its worker pool; the one SQLite
 * connection is opened in serialized mode, which is plenty for a sandbox.
 * It must never be pointed at a real payer: it is one.
 */
#define _GNU_SOURCE
#include "portals/sandbox/internal.h"
#include "util/err.h"
#include "util/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, user TEXT NOT NULL,"
    " mfa_ok INTEGER NOT NULL DEFAULT 0, token TEXT NOT NULL, created INTEGER NOT NULL,"
    " views INTEGER NOT NULL DEFAULT 0, warned_at INTEGER NOT NULL DEFAULT 0,"
    " ended INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sms_codes(user TEXT PRIMARY KEY, code TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS submissions(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, received_at TEXT NOT NULL, user TEXT NOT NULL, fields TEXT NOT NULL,"
    " outcome TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS attachments(submission_id INTEGER NOT NULL, field TEXT NOT NULL,"
    " name TEXT NOT NULL, type TEXT, size INTEGER NOT NULL, sha256 TEXT NOT NULL);";

/* ---- Routing ------------------------------------------------------------- */

/* Both sites answer these, with no session. */
// clang-format off
#define HARNESS_ROUTES                                             \
    {"GET", "/static/", sb_page_static, HTTP_PREFIX},              \
    {"GET", "/__sandbox/submissions", sb_harness_submissions},     \
    {"POST", "/__sandbox/reset", sb_harness_reset},                \
    {"GET", "/__sandbox/sms", sb_harness_sms},                     \
    {"GET", "/__sandbox/signins", sb_harness_signins},             \
    {"POST", "/__sandbox/expire", sb_harness_expire}
// clang-format on

/* The portal, addressed as 127.0.0.1. */
static const http_route portal_routes[] = {
    HARNESS_ROUTES,
    {"GET", "/", sb_page_root},
    {"GET", "/login", sb_page_login},
    {"GET", "/mfa", sb_page_mfa},
    {"GET", "/home", sb_page_app},
    {"GET", "/apps/eligibility", sb_page_app},
    {"GET", "/apps/claims", sb_page_app},
    {"GET", "/apps/authorizations", sb_page_app},
    {"GET", "/apps/plans", sb_page_app},
    {"POST", "/api/login", sb_api_login},
    {"GET", "/api/mfa", sb_api_mfa_info},
    {"POST", "/api/mfa", sb_api_mfa},
    {"GET", "/api/session", sb_api_session},
    {"POST", "/api/session/extend", sb_api_session_extend},
    {"POST", "/api/logout", sb_api_logout},
    {"POST", "/api/eligibility", sb_api_eligibility},
    {"POST", "/api/claims", sb_api_claim},
    {"POST", "/api/authorizations", sb_api_authorization},
    {"POST", "/api/plan-appeals", sb_api_plan_appeal},
};

/* The appeals service, addressed as localhost (another site). */
static const http_route appeals_routes[] = {
    HARNESS_ROUTES,
    {"GET", "/apps/appeals", sb_page_appeals},
    {"POST", "/api/appeals", sb_api_appeal},
};

/* The portal's own 404s: which kind of thing was not there. A 405 is the
 * layer's JSON, with Allow. */
static void reject(http_request *r, int status, const char *allow, void *ud)
{
    const char *path = http_path(r), *method = http_method(r);
    if (status == 405)
        http_reject_json(r, status, allow, ud);
    else if (strncmp(path, "/__sandbox/", 11) == 0)
        http_reply_error(r, 404, "not_found", "no harness endpoint %s", path);
    else if (strcmp(method, "GET") == 0 && strncmp(path, "/api/", 5) != 0)
        http_reply_error(r, 404, "not_found", "no page %s", path);
    else
        http_reply_error(r, 404, "not_found", "no endpoint %s %s", method, path);
}

static const http_router portal_router = {portal_routes,
                                          sizeof(portal_routes) / sizeof(portal_routes[0]), reject};
static const http_router appeals_router = {
    appeals_routes, sizeof(appeals_routes) / sizeof(appeals_routes[0]), reject};

/* ---- Life cycle ---------------------------------------------------------- */

int sandbox_start(const sandbox_options *opts, sandbox **out, char *err)
{
    *out = NULL;
    sandbox *sb = calloc(1, sizeof(*sb));
    if (!sb)
        return pt_errf(err, "out of memory");
    if (opts)
        sb->o = *opts;
    if (!sb->o.host)
        sb->o.host = "127.0.0.1";
    if (pt_home_path("portals/sandbox/www", sb->www, sizeof(sb->www)) < 0) {
        pt_errf(err, "PORTIER_HOME is too long a path");
        goto fail;
    }
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/login.html", sb->www);
    if (access(probe, R_OK) != 0) {
        pt_errf(err, "the sandbox's pages are not at %s (set PORTIER_HOME to Portier's folder)",
                sb->www);
        goto fail;
    }
    if (sb->o.data_dir) {
        sb->data_dir = strdup(sb->o.data_dir);
        if (mkdir(sb->data_dir, 0700) < 0 && errno != EEXIST) {
            pt_errf(err, "could not create %s: %s", sb->data_dir, strerror(errno));
            goto fail;
        }
    } else {
        sb->data_dir = pt_mkdtemp("portier-sandbox");
        sb->own_data_dir = 1;
    }
    if (!sb->data_dir) {
        pt_errf(err, "could not create a data folder");
        goto fail;
    }
    char dbpath[4200];
    snprintf(dbpath, sizeof(dbpath), "%s/sandbox.db", sb->data_dir);
    if (sqlite3_open_v2(dbpath, &sb->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        pt_errf(err, "could not open %s: %s", dbpath, sqlite3_errmsg(sb->db));
        goto fail;
    }
    sqlite3_busy_timeout(sb->db, 5000);
    char *e = NULL;
    if (sqlite3_exec(sb->db, schema, NULL, NULL, &e) != SQLITE_OK) {
        pt_errf(err, "%s: %s", dbpath, e ? e : "schema failed");
        sqlite3_free(e);
        goto fail;
    }

    sb->appeals_ctx = (site_ctx){sb, SITE_APPEALS};
    sb->portal_ctx = (site_ctx){sb, SITE_PORTAL};
    http_options ho = {.host = sb->o.host,
                       .port = 0,
                       .workers = 4,
                       .max_body = 40u << 20};
    if (http_start_router(&ho, &appeals_router, &sb->appeals_ctx, &sb->appeals, err) < 0)
        goto fail;
    ho.port = sb->o.port;
    if (http_start_router(&ho, &portal_router, &sb->portal_ctx, &sb->portal, err) < 0)
        goto fail;
    snprintf(sb->url, sizeof(sb->url), "http://%s:%d", sb->o.host, http_port(sb->portal));
    snprintf(sb->appeals_url, sizeof(sb->appeals_url), "http://localhost:%d",
             http_port(sb->appeals));
    *out = sb;
    return 0;
fail:
    sandbox_stop(sb);
    return -1;
}

const char *sandbox_url(const sandbox *sb)
{
    return sb->url;
}

const char *sandbox_appeals_url(const sandbox *sb)
{
    return sb->appeals_url;
}

const char *sandbox_data_dir(const sandbox *sb)
{
    return sb->data_dir;
}

void sandbox_stop(sandbox *sb)
{
    if (!sb)
        return;
    http_stop(sb->portal);
    http_stop(sb->appeals);
    if (sb->db)
        sqlite3_close(sb->db);
    if (sb->own_data_dir && sb->data_dir)
        pt_rmtree(sb->data_dir);
    free(sb->data_dir);
    free(sb);
}
