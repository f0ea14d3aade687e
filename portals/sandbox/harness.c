/*
 * harness.c - the sandbox's /__sandbox/ routes: what tests read (the
 * submissions log, texted codes, sign-ins and live sessions) and how they
 * steer the portal (clear the log, expire sessions). See internal.h.
 *
 * Both sites answer them, with no session: they are for tests on loopback
 * and must never be reachable from a real deployment's network.
 */
#define _GNU_SOURCE
#include "portals/sandbox/internal.h"
#include "util/err.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_harness_submissions(http_request *r, void *ud)
{
    sandbox *sb = ((site_ctx *)ud)->sb;
    cJSON *list = cJSON_CreateArray();
    sqlite3_stmt *st = NULL, *at = NULL;
    sqlite3_prepare_v2(
        sb->db, "SELECT id,kind,received_at,user,fields,outcome FROM submissions ORDER BY id", -1,
        &st, NULL);
    sqlite3_prepare_v2(sb->db,
                       "SELECT field,name,type,size,sha256 FROM attachments WHERE submission_id=?",
                       -1, &at, NULL);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddStringToObject(o, "kind", (const char *)sqlite3_column_text(st, 1));
        cJSON_AddStringToObject(o, "received_at", (const char *)sqlite3_column_text(st, 2));
        cJSON_AddStringToObject(o, "user", (const char *)sqlite3_column_text(st, 3));
        cJSON_AddItemToObject(o, "fields", cJSON_Parse((const char *)sqlite3_column_text(st, 4)));
        cJSON_AddItemToObject(o, "outcome", cJSON_Parse((const char *)sqlite3_column_text(st, 5)));
        cJSON *files = cJSON_AddArrayToObject(o, "attachments");
        sqlite3_reset(at);
        sqlite3_bind_int64(at, 1, sqlite3_column_int64(st, 0));
        while (at && sqlite3_step(at) == SQLITE_ROW) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "field", (const char *)sqlite3_column_text(at, 0));
            cJSON_AddStringToObject(f, "name", (const char *)sqlite3_column_text(at, 1));
            const unsigned char *type = sqlite3_column_text(at, 2);
            cJSON_AddStringToObject(f, "type", type ? (const char *)type : "");
            cJSON_AddNumberToObject(f, "size", (double)sqlite3_column_int64(at, 3));
            cJSON_AddStringToObject(f, "sha256", (const char *)sqlite3_column_text(at, 4));
            cJSON_AddItemToArray(files, f);
        }
        cJSON_AddItemToArray(list, o);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(at);
    sb_reply_obj(r, 200, list);
}

void sb_harness_sms(http_request *r, void *ud)
{
    sandbox *sb = ((site_ctx *)ud)->sb;
    const char *user = http_query(r, "user");
    sqlite3_stmt *st = NULL;
    cJSON *o = NULL;
    if (sqlite3_prepare_v2(sb->db, "SELECT code,issued_at FROM sms_codes WHERE user=?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, user ? user : SANDBOX_USER, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "code", (const char *)sqlite3_column_text(st, 0));
            cJSON_AddNumberToObject(o, "issued_at", (double)sqlite3_column_int64(st, 1));
        }
        sqlite3_finalize(st);
    }
    if (o)
        sb_reply_obj(r, 200, o);
    else
        http_reply_error(r, 404, "not_found", "no code has been texted to %s",
                         user ? user : SANDBOX_USER);
}

void sb_harness_reset(http_request *r, void *ud)
{
    sandbox *sb = ((site_ctx *)ud)->sb;
    sqlite3_exec(sb->db, "DELETE FROM attachments; DELETE FROM submissions;", NULL, NULL, NULL);
    http_reply_json(r, 200, "{\"reset\":true}");
}

/* Per user, how many sessions have signed in (past MFA); and each live
 * session, with whose it is. */
static void add_session(const session *s, void *ud)
{
    cJSON *o = ud, *signins = cJSON_GetObjectItem(o, "signins");
    cJSON *n = cJSON_GetObjectItemCaseSensitive(signins, s->user);
    if (s->mfa_ok && n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    if (!sb_signed_in(s))
        return;
    cJSON *live = cJSON_CreateObject();
    cJSON_AddStringToObject(live, "id", s->id);
    cJSON_AddStringToObject(live, "user", s->user);
    cJSON_AddNumberToObject(live, "views", s->views);
    cJSON_AddItemToArray(cJSON_GetObjectItem(o, "sessions"), live);
}

/* {"signins": {"portier.demo": 2, ...}, "sessions": [{"id": cookie,
 * "user": ..., "views": n}, ...]} (every test user is listed, oldest session
 * first). */
void sb_harness_signins(http_request *r, void *ud)
{
    sandbox *sb = ((site_ctx *)ud)->sb;
    cJSON *o = cJSON_CreateObject();
    cJSON *signins = cJSON_AddObjectToObject(o, "signins");
    cJSON_AddArrayToObject(o, "sessions");
    for (size_t i = 0; i < sb_nusers; i++)
        cJSON_AddNumberToObject(signins, sb_users[i].id, 0);
    sb_each_session(sb, add_session, o);
    sb_reply_obj(r, 200, o);
}

/* Ends the sessions of {"user": ID} (every session with no user) as a
 * timeout does: the next request in one is sent to sign-in again.
 * {"expired": n}. */
void sb_harness_expire(http_request *r, void *ud)
{
    sandbox *sb = ((site_ctx *)ud)->sb;
    size_t len = 0;
    const char *text = http_body(r, &len);
    cJSON *body = len ? cJSON_ParseWithLength(text, len) : cJSON_CreateObject();
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "user");
    if (!cJSON_IsObject(body) || (user && !cJSON_IsString(user))) {
        http_reply_error(r, 400, "invalid_json", "expected {\"user\": \"ID\"} or {}");
        goto out;
    }
    if (user && !sb_find_user(user->valuestring)) {
        http_reply_error(r, 404, "not_found", "no test user %.64s", user->valuestring);
        goto out;
    }
    /* the count must be this statement's, not another worker's */
    sqlite3_mutex *mu = sqlite3_db_mutex(sb->db);
    sqlite3_mutex_enter(mu);
    int rc = sb_exec(sb, "UPDATE sessions SET ended=1 WHERE ended=0 AND (?1 IS NULL OR user=?1)",
                     user ? user->valuestring : NULL, 0);
    int n = sqlite3_changes(sb->db);
    sqlite3_mutex_leave(mu);
    if (rc < 0) {
        http_reply_error(r, 500, "store_failed", "the sandbox could not expire the sessions");
        goto out;
    }
    char reply[64];
    snprintf(reply, sizeof(reply), "{\"expired\":%d}", n);
    http_reply_json(r, 200, reply);
out:
    cJSON_Delete(body);
}
