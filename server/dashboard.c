/*
 * dashboard.c - the web dashboard's server side (see dashboard.h): the page
 * of ui/ (embedded at build time, like agent/dom.js), browser sessions and
 * the account page's JSON.
 *
 * A browser signs in by sending a key (the account's API key or a member of
 * staff's personal key) in the Authorization header of POST /session, never
 * in a body or a URL. It gets an HttpOnly, SameSite=Strict cookie whose
 * hash alone is stored, and a CSRF token every state-changing request must
 * echo in X-CSRF-Token. A session ends after 30 minutes without a request,
 * after 12 hours in any case, or at Sign out. It must never log a key, a
 * cookie or a token.
 */
#define _GNU_SOURCE
#include "server/dashboard.h"
#include "server/webhook.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include "ui_app_css.h"
#include "ui_app_js.h"
#include "ui_favicon_svg.h"
#include "ui_index_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDLE_MS (30 * 60 * 1000LL)
#define MAX_AGE_MS (12 * 3600 * 1000LL)
#define TOUCH_MS (15 * 1000LL) /* seen_at is rewritten at most this often */
#define DELIVERIES_SHOWN 20

/* The page may load only itself: no inline script or style, no other
 * origin, no framing. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

static const struct asset {
    const char *path, *type;
    const char *data;
    size_t len;
} assets[] = {
    {"/", "text/html; charset=utf-8", ui_index_html, sizeof(ui_index_html) - 1},
    {"/ui/app.css", "text/css; charset=utf-8", ui_app_css, sizeof(ui_app_css) - 1},
    {"/ui/app.js", "text/javascript; charset=utf-8", ui_app_js, sizeof(ui_app_js) - 1},
    {"/ui/favicon.svg", "image/svg+xml", ui_favicon_svg, sizeof(ui_favicon_svg) - 1},
    {"/favicon.ico", "image/svg+xml", ui_favicon_svg, sizeof(ui_favicon_svg) - 1},
};

int dashboard_owns(const char *path)
{
    return !strcmp(path, "/") || !strncmp(path, "/ui/", 4) || !strcmp(path, "/favicon.ico") ||
           !strcmp(path, "/session") || !strncmp(path, "/session/", 9) ||
           !strncmp(path, "/dashboard/", 11);
}

static void common_headers(http_request *r)
{
    http_add_header(r, "Referrer-Policy", "no-referrer");
    http_add_header(r, "X-Frame-Options", "DENY");
}

static void reply_obj(http_request *r, int status, cJSON *o)
{
    char *json = cJSON_PrintUnformatted(o);
    http_add_header(r, "Cache-Control", "no-store");
    http_reply_json(r, status, json ? json : "{}");
    free(json);
    cJSON_Delete(o);
}

static void page_asset(http_request *r, void *ud)
{
    (void)ud;
    const char *path = http_path(r);
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
        if (strcmp(assets[i].path, path))
            continue;
        http_set_type(r, assets[i].type);
        http_add_header(r, "Cache-Control", "no-cache");
        if (i == 0)
            http_add_header(r, "Content-Security-Policy", PAGE_CSP);
        http_write(r, assets[i].data, assets[i].len);
        return;
    }
    http_reply_error(r, 404, "not_found", "no file %.64s", path);
}

/* ---- Sessions ------------------------------------------------------------ */

/* The session cookie's value, hashed as the store keeps it; 0 if r has
 * none that could be one. */
static int cookie_hash(http_request *r, char hash[65])
{
    const char *v = http_cookie(r, DASHBOARD_COOKIE);
    if (!v || strlen(v) != 64)
        return 0;
    keys_api_key_hash(v, hash);
    return 1;
}

static void clear_cookie(http_request *r)
{
    http_add_header(r, "Set-Cookie",
                    DASHBOARD_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

/* The live session of r's cookie: 1 and *ws, 0 none or ended (then
 * forgotten). A request counts as the person's activity (it keeps the
 * session from idling out) unless the page marks it as its own background
 * refresh: a tab left open does not stay signed in. */
static int live_session(store *st, http_request *r, web_session *ws, char hash[65])
{
    if (!cookie_hash(r, hash))
        return 0;
    int rc = store_session_get(st, hash, ws);
    if (rc != 1)
        return rc;
    int64_t now = pt_wall_ms();
    if (now - ws->seen_at > IDLE_MS || now - ws->created_at > MAX_AGE_MS) {
        store_session_end(st, hash);
        return 0;
    }
    if (now - ws->seen_at > TOUCH_MS && !http_header(r, DASHBOARD_BACKGROUND_HEADER))
        store_session_touch(st, hash, now);
    return 1;
}

static int csrf_ok(http_request *r, const web_session *ws)
{
    const char *m = http_method(r);
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
        return 1;
    const char *t = http_header(r, DASHBOARD_CSRF_HEADER);
    return t && strlen(t) == 64 && pt_equal_ct(t, ws->csrf, 64);
}

int dashboard_authenticate(store *st, http_request *r, account *a, char actor[64])
{
    web_session ws;
    char hash[65];
    int rc = live_session(st, r, &ws, hash);
    if (rc != 1) {
        if (rc == 0)
            clear_cookie(r);
        http_reply_error(r, rc < 0 ? 503 : 401, rc < 0 ? "unavailable" : "unauthorized",
                         rc < 0 ? "the store is not available"
                                : "the session has ended: sign in again");
        return -1;
    }
    if (!csrf_ok(r, &ws)) {
        http_reply_error(r, 403, "forbidden",
                         "send the session's CSRF token as X-CSRF-Token (GET /session gives it)");
        return -1;
    }
    if (store_account_by_id(st, ws.account_id, a) != 1) {
        http_reply_error(r, 401, "unauthorized", "the session's account is gone");
        return -1;
    }
    snprintf(actor, 64, "%s", ws.actor);
    return 0;
}

/* {"signed_in": true, "account", "user", "csrf", "expires_at"} */
static cJSON *session_json(store *st, const web_session *ws)
{
    cJSON *o = cJSON_CreateObject();
    account a;
    cJSON_AddBoolToObject(o, "signed_in", 1);
    if (store_account_by_id(st, ws->account_id, &a) == 1) {
        cJSON_AddStringToObject(o, "account", a.name);
        account_free(&a);
    }
    cJSON_AddStringToObject(o, "user", ws->actor);
    cJSON_AddStringToObject(o, "csrf", ws->csrf);
    int64_t idle = ws->seen_at + IDLE_MS, hard = ws->created_at + MAX_AGE_MS;
    store_json_time(o, "expires_at", idle < hard ? idle : hard);
    return o;
}

/* Who a key is: the account's API key, or a member of staff's own key.
 * 1 found (ws filled but for its times and token), 0 not, -1 error. */
static int key_owner(store *st, const char *key, web_session *ws)
{
    char hash[65], name[64];
    account a;
    memset(ws, 0, sizeof(*ws));
    keys_api_key_hash(key, hash);
    int rc = store_account_by_key(st, hash, &a);
    if (rc == 1) {
        ws->account_id = a.id;
        snprintf(ws->actor, sizeof(ws->actor), "API key");
        account_free(&a);
        return 1;
    }
    if (rc < 0)
        return -1;
    rc = store_user_by_key(st, hash, &ws->account_id, &ws->user_id, name);
    if (rc == 1)
        snprintf(ws->actor, sizeof(ws->actor), "%s", name);
    return rc;
}

/* POST /session with Authorization: Bearer KEY. */
static void sign_in(const dashboard_env *d, http_request *r)
{
    const char *h = http_header(r, "authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        http_reply_error(r, 401, "unauthorized", "send the key as Authorization: Bearer <key>");
        return;
    }
    web_session ws;
    int rc = key_owner(d->st, h + 7 + strspn(h + 7, " "), &ws);
    if (rc != 1) {
        http_reply_error(r, rc < 0 ? 503 : 401, rc < 0 ? "unavailable" : "unauthorized",
                         rc < 0 ? "the store is not available"
                                : "That key is not known. Check it and try again.");
        return;
    }
    char token[65], hash[65], cookie[200];
    if (pt_random_hex(token, 64) < 0 || pt_random_hex(ws.csrf, 64) < 0) {
        http_reply_error(r, 503, "unavailable", "no randomness for a session");
        return;
    }
    ws.created_at = ws.seen_at = pt_wall_ms();
    keys_api_key_hash(token, hash);
    if (store_session_add(d->st, hash, &ws) < 0) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    /* a browser-session cookie: on a shared workstation it goes when the
     * browser closes; the 12 h limit is the server's (live_session) */
    snprintf(cookie, sizeof(cookie), DASHBOARD_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
             token);
    http_add_header(r, "Set-Cookie", cookie);
    PT_INFO("dashboard", "account %lld signed in (%s)", (long long)ws.account_id,
            ws.user_id ? "personal key" : "API key");
    reply_obj(r, 200, session_json(d->st, &ws));
}

/* GET /session: who is signed in (200 either way, so a page that opens
 * signed out makes no failed request). */
static void whoami(const dashboard_env *d, http_request *r)
{
    web_session ws;
    char hash[65];
    if (live_session(d->st, r, &ws, hash) == 1) {
        reply_obj(r, 200, session_json(d->st, &ws));
        return;
    }
    if (http_cookie(r, DASHBOARD_COOKIE))
        clear_cookie(r);
    reply_obj(r, 200, cJSON_CreateObject());
}

/* POST /session/end (with the CSRF token). */
static void sign_out(const dashboard_env *d, http_request *r)
{
    account a;
    char actor[64], hash[65];
    if (dashboard_authenticate(d->st, r, &a, actor) < 0)
        return;
    account_free(&a);
    if (cookie_hash(r, hash))
        store_session_end(d->st, hash);
    clear_cookie(r);
    reply_obj(r, 200, cJSON_CreateObject());
}

/* ---- The account page ---------------------------------------------------- */

/* The account's SOPs: type, version, title, summary and whether the
 * stored version parses and lints clean. */
static cJSON *sops_json(const dashboard_env *d, const account *a)
{
    cJSON *list = store_sop_list(d->st, a->id), *o;
    cJSON_ArrayForEach(o, list)
    {
        char err[512] = "";
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(o, "type"));
        int version = cJSON_GetObjectItem(o, "version")->valueint;
        const sop *sp = NULL;
        bundle_cache_get(d->sops, d->st, a->id, type, version, &sp, err);
        char handler[96];
        snprintf(handler, sizeof(handler), "%s_%d", type, version);
        cJSON_AddStringToObject(o, "handler", handler);
        cJSON_AddStringToObject(o, "title", sp && sp->title ? sp->title : "");
        cJSON_AddStringToObject(o, "summary", sp && sp->summary ? sp->summary : "");
        cJSON_AddStringToObject(o, "lint", sp ? "ok" : err);
    }
    return list;
}

static void account_page(const dashboard_env *d, http_request *r, const account *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", a->name);
    cJSON *hook = cJSON_AddObjectToObject(o, "webhook");
    if (a->webhook_url)
        cJSON_AddStringToObject(hook, "url", a->webhook_url);
    else
        cJSON_AddNullToObject(hook, "url");
    cJSON_AddBoolToObject(hook, "enabled", a->webhook_url && !a->webhook_disabled);
    cJSON_AddItemToObject(o, "sops", sops_json(d, a));
    cJSON_AddItemToObject(o, "deliveries",
                          store_account_attempts(d->st, a->id, DELIVERIES_SHOWN));
    reply_obj(r, 200, o);
}

static void test_event(const dashboard_env *d, http_request *r, const account *a)
{
    char *secret = keys_webhook_secret(d->keys, a);
    if (!a->webhook_url || !secret) {
        keys_wipe(secret);
        http_reply_error(r, 409, "conflict", "the account has no %s",
                         !a->webhook_url ? "webhook endpoint" : "readable webhook secret");
        return;
    }
    int ok = 0;
    cJSON *o = webhook_ping(a, secret, d->allow_private_webhooks, &ok);
    keys_wipe(secret);
    PT_INFO("dashboard", "account %lld: test event %s", (long long)a->id, ok ? "delivered" : "not delivered");
    reply_obj(r, 200, o);
}

/* GET /dashboard/tasks/{id}/actions: who answered, decided, cancelled or
 * redelivered, for a task of the account. */
static void task_actions(const dashboard_env *d, http_request *r, const account *a)
{
    const char *p = http_path(r) + strlen("/dashboard/tasks/");
    char *end;
    long long id = strtoll(p, &end, 10);
    task t;
    if (end == p || id < 1 || strcmp(end, "/actions") || store_task_get(d->st, a->id, id, &t) != 1) {
        http_reply_error(r, 404, "not_found", "no task %.20s", p);
        return;
    }
    task_free(&t);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "task_id", (double)id);
    cJSON_AddItemToObject(o, "data", store_actions(d->st, id));
    reply_obj(r, 200, o);
}

/* ---- Routing ------------------------------------------------------------- */

typedef void (*signed_in_fn)(const dashboard_env *d, http_request *r, const account *a);

/* Runs fn for the session's account, or answers 401/403. */
static void as_signed_in(const dashboard_env *d, http_request *r, signed_in_fn fn)
{
    account a;
    char actor[64];
    if (dashboard_authenticate(d->st, r, &a, actor) < 0)
        return;
    fn(d, r, &a);
    account_free(&a);
}

static void route_session_get(http_request *r, void *ud)
{
    whoami(ud, r);
}
static void route_session_post(http_request *r, void *ud)
{
    sign_in(ud, r);
}
static void route_session_end(http_request *r, void *ud)
{
    sign_out(ud, r);
}
static void route_account(http_request *r, void *ud)
{
    as_signed_in(ud, r, account_page);
}
static void route_test_event(http_request *r, void *ud)
{
    as_signed_in(ud, r, test_event);
}
static void route_actions(http_request *r, void *ud)
{
    as_signed_in(ud, r, task_actions);
}

static const http_route routes[] = {
    {"GET", "/", page_asset, .head = 1},
    {"GET", "/ui/", page_asset, HTTP_PREFIX, .head = 1},
    {"GET", "/favicon.ico", page_asset, .head = 1},
    {"GET", "/session", route_session_get},
    {"POST", "/session", route_session_post},
    {"POST", "/session/end", route_session_end},
    {"GET", "/dashboard/account", route_account},
    {"POST", "/dashboard/account/test-event", route_test_event},
    {"GET", "/dashboard/tasks/{id}/actions", route_actions},
};

static const http_router router = {routes, sizeof(routes) / sizeof(routes[0]), NULL};

void dashboard_handle(const dashboard_env *d, http_request *r)
{
    common_headers(r);
    http_route_request(&router, r, (void *)d);
}
