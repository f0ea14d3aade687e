/*
 * session.c - the sandbox's test users and sessions: sign-in, the second
 * factor (TOTP or SMS), the session API, and what every backend call does
 * first (latency, its JSON body, its session). See internal.h.
 *
 * A session's life (a row of `sessions`; ended never goes back to 0):
 *
 *   POST /api/login --> mfa_ok=0 --POST /api/mfa--> mfa_ok=1 (signed in)
 *   (--mfa none: straight to mfa_ok=1)                 |
 *        sign-out, a timeout warning ignored, or POST /__sandbox/expire
 *                                                      v
 *                                                   ended=1
 *
 * It must never trust a session the request did not bring, nor sign a user
 * in on anything but their own password and second factor.
 */
#define _GNU_SOURCE
#include "portals/sandbox/internal.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/json.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* README.md lists them. */
const sb_user sb_users[] = {
    {SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TOTP_SEED, "0042"},
    {SANDBOX_USER2, SANDBOX_PASSWORD2, SANDBOX_TOTP_SEED2, "0077"},
};
const size_t sb_nusers = sizeof(sb_users) / sizeof(sb_users[0]);

const sb_user *sb_find_user(const char *id)
{
    for (size_t i = 0; id && i < sb_nusers; i++)
        if (strcmp(sb_users[i].id, id) == 0)
            return &sb_users[i];
    return NULL;
}

static int six_digits(const char *s)
{
    if (strlen(s) != 6)
        return 0;
    for (size_t i = 0; i < 6; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

void sb_reply_obj(http_request *r, int status, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    http_reply_json(r, status, text ? text : "{}");
    free(text);
    cJSON_Delete(o);
}

int sb_exec(sandbox *sb, const char *sql, const char *a, int64_t n)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sb->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (a)
        sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, n);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    return rc;
}

/* ---- Sessions ------------------------------------------------------------ */

#define SESSION_COLUMNS "SELECT id,user,mfa_ok,token,views,warned_at,ended FROM sessions"

static void session_from_row(sqlite3_stmt *st, session *s)
{
    snprintf(s->id, sizeof(s->id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(s->user, sizeof(s->user), "%s", (const char *)sqlite3_column_text(st, 1));
    s->mfa_ok = sqlite3_column_int(st, 2);
    snprintf(s->token, sizeof(s->token), "%s", (const char *)sqlite3_column_text(st, 3));
    s->views = sqlite3_column_int(st, 4);
    s->warned_at = sqlite3_column_int64(st, 5);
    s->ended = sqlite3_column_int(st, 6);
}

static int load_session(sandbox *sb, const char *sql, const char *key, session *s)
{
    sqlite3_stmt *st = NULL;
    int found = PT_NONE;
    if (!key || sqlite3_prepare_v2(sb->db, sql, -1, &st, NULL) != SQLITE_OK)
        return PT_NONE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        session_from_row(st, s);
        found = PT_FOUND;
    }
    sqlite3_finalize(st);
    return found;
}

static int warning_seconds(const sandbox *sb)
{
    return sb->o.session_warning_seconds > 0 ? sb->o.session_warning_seconds : 60;
}

/* 1 if the session's timeout warning has been ignored for too long. */
static int warning_ran_out(const sandbox *sb, const session *s)
{
    return !s->ended && s->warned_at && pt_wall_ms() / 1000 - s->warned_at >= warning_seconds(sb);
}

int sb_session_of(sandbox *sb, enum site site, http_request *r, session *s)
{
    int found;
    if (site == SITE_PORTAL)
        found = load_session(sb, SESSION_COLUMNS " WHERE id=?", http_cookie(r, "sb_session"), s);
    else {
        const char *t = http_header(r, "x-sandbox-token");
        found = load_session(sb, SESSION_COLUMNS " WHERE token=?", t ? t : http_query(r, "t"), s);
    }
    if (found != PT_FOUND)
        return PT_NONE;
    if (warning_ran_out(sb, s)) {
        sb_exec(sb, "UPDATE sessions SET ended=1 WHERE id=?", s->id, 0);
        s->ended = 1;
    }
    return PT_FOUND;
}

int sb_signed_in(const session *s)
{
    return s->mfa_ok && !s->ended;
}

void sb_each_session(sandbox *sb, void (*fn)(const session *s, void *ud), void *ud)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sb->db, SESSION_COLUMNS " ORDER BY created, rowid", -1, &st, NULL) !=
        SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        session s = {0};
        session_from_row(st, &s);
        if (warning_ran_out(sb, &s))
            s.ended = 1; /* as the next request in it will find it */
        fn(&s, ud);
    }
    sqlite3_finalize(st);
}

int sb_count_view(sandbox *sb, session *s)
{
    if (sb->o.expire_after > 0 &&
        __atomic_add_fetch(&sb->page_loads, 1, __ATOMIC_SEQ_CST) == sb->o.expire_after) {
        sb_exec(sb, "UPDATE sessions SET ended=1 WHERE id=?", s->id, 0);
        s->ended = 1;
        return 1;
    }
    s->views++;
    sb_exec(sb, "UPDATE sessions SET views=views+1 WHERE id=?", s->id, 0);
    if (sb->o.session_warning_after > 0 && !s->warned_at &&
        s->views >= sb->o.session_warning_after) {
        s->warned_at = pt_wall_ms() / 1000;
        sb_exec(sb, "UPDATE sessions SET warned_at=?2 WHERE id=?1", s->id, s->warned_at);
    }
    return 0;
}

/* ---- Backend calls ------------------------------------------------------- */

void sb_call_run(http_request *r, void *ud, enum sb_need need,
                 void (*fn)(sb_call *c, http_request *r))
{
    site_ctx *sc = ud;
    sb_call c = {.sb = sc->sb, .site = sc->site};
    /* every backend call is slow, as configured */
    if (c.sb->o.latency_ms > 0)
        pt_sleep_ms(c.sb->o.latency_ms);
    if (strcmp(http_method(r), "POST") == 0) {
        size_t len = 0;
        const char *text = http_body(r, &len), *end = NULL;
        c.body = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (!cJSON_IsObject(c.body)) {
            http_reply_error(r, 400, "invalid_json", "expected a JSON object at byte %ld",
                             end ? (long)(end - text) : 0L);
            goto out;
        }
    }
    c.found = sb_session_of(c.sb, c.site, r, &c.s) == PT_FOUND;
    if (need == SB_SIGNED_IN && c.found && c.s.ended)
        http_reply_error(r, 401, "session_expired", "Your session has expired.");
    else if (need == SB_SIGNED_IN && !(c.found && sb_signed_in(&c.s)))
        http_reply_error(r, 401, "not_signed_in", "Sign in first.");
    else
        fn(&c, r);
out:
    cJSON_Delete(c.body);
}

/* ---- Sign-in ------------------------------------------------------------- */

/* The SMS code for user: the one sent in the last 10 minutes, or a new one. */
static void sms_code(sandbox *sb, const char *user, char code[7])
{
    sqlite3_stmt *st = NULL;
    int64_t now = pt_wall_ms() / 1000;
    code[0] = '\0';
    if (sqlite3_prepare_v2(sb->db, "SELECT code FROM sms_codes WHERE user=? AND issued_at>?", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now - 600);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(code, 7, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    if (code[0])
        return;
    unsigned char rnd[4];
    pt_random(rnd, sizeof(rnd));
    uint32_t v = (uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 | (uint32_t)rnd[2] << 8 | rnd[3];
    snprintf(code, 7, "%06u", v % 1000000u);
    if (sqlite3_prepare_v2(sb->db,
                           "INSERT OR REPLACE INTO sms_codes(user,code,issued_at) VALUES(?,?,?)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
}

static void login(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    const sb_user *u = sb_find_user(pt_json_str(c->body, "user"));
    const char *pw = pt_json_str(c->body, "password");
    if (!u || !pw || strlen(pw) != strlen(u->password) ||
        !pt_equal_ct(pw, u->password, strlen(pw))) {
        http_reply_error(r, 401, "invalid_credentials", "The user ID or password is incorrect.");
        return;
    }
    session s = {0};
    pt_random_hex(s.id, 48);
    pt_random_hex(s.token, 48);
    int none = sb->o.mfa == SANDBOX_MFA_NONE;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sb->db,
                           "INSERT INTO sessions(id,user,mfa_ok,token,created) VALUES(?,?,?,?,?)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, s.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, none);
        sqlite3_bind_text(st, 4, s.token, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, pt_wall_ms() / 1000);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (sb->o.mfa == SANDBOX_MFA_SMS) {
        char code[7];
        sms_code(sb, u->id, code); /* "sent" */
    }
    char cookie[160];
    snprintf(cookie, sizeof(cookie), "sb_session=%s; Path=/; HttpOnly; SameSite=Lax", s.id);
    http_add_header(r, "Set-Cookie", cookie);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "next", none ? "/home" : "/mfa");
    cJSON_AddStringToObject(o, "mfa",
                            sb->o.mfa == SANDBOX_MFA_SMS    ? "sms"
                            : sb->o.mfa == SANDBOX_MFA_TOTP ? "totp"
                                                            : "none");
    sb_reply_obj(r, 200, o);
}

static void mfa_info(sb_call *c, http_request *r)
{
    if (!c->found || c->s.ended) {
        http_reply_error(r, 401, "not_signed_in", "Sign in first.");
        return;
    }
    const sb_user *u = sb_find_user(c->s.user);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", c->sb->o.mfa == SANDBOX_MFA_SMS ? "sms" : "totp");
    char hint[32];
    snprintf(hint, sizeof(hint), "(***) ***-%s", u ? u->phone_last4 : "0000");
    cJSON_AddStringToObject(o, "hint", hint);
    sb_reply_obj(r, 200, o);
}

static void mfa(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    if (!c->found || c->s.ended) {
        http_reply_error(r, 401, "not_signed_in", "Sign in first.");
        return;
    }
    const sb_user *u = sb_find_user(c->s.user);
    const char *code = pt_json_str(c->body, "code");
    int ok = 0;
    if (u && code && six_digits(code)) {
        if (sb->o.mfa == SANDBOX_MFA_SMS) {
            char want[7];
            sms_code(sb, u->id, want);
            ok = pt_equal_ct(code, want, 6);
        } else {
            int64_t now = pt_wall_ms() / 1000;
            for (int step = -1; step <= 1 && !ok; step++) { /* one step of clock skew */
                char want[7];
                if (pt_totp(u->totp_seed, now + step * 30, want) == 0)
                    ok = pt_equal_ct(code, want, 6);
            }
        }
    }
    if (!ok) {
        http_reply_error(r, 401, "invalid_code",
                         "That code is not valid. Check the code and try again.");
        return;
    }
    sb_exec(sb, "UPDATE sessions SET mfa_ok=1 WHERE id=?", c->s.id, 0);
    sb_reply_obj(r, 200, cJSON_Parse("{\"next\":\"/home\"}"));
}

static void session_info(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    const session *s = &c->s;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", s->user);
    cJSON_AddNumberToObject(o, "views", s->views);
    int64_t left = s->warned_at ? warning_seconds(sb) - (pt_wall_ms() / 1000 - s->warned_at) : 0;
    cJSON_AddBoolToObject(o, "warning", s->warned_at != 0);
    cJSON_AddNumberToObject(o, "expires_in", (double)(left > 0 ? left : 0));
    char url[256];
    snprintf(url, sizeof(url), "%s/apps/appeals?t=%s", sb->appeals_url, s->token);
    cJSON_AddStringToObject(o, "appeals_url", url);
    sb_reply_obj(r, 200, o);
}

static void session_extend(sb_call *c, http_request *r)
{
    sb_exec(c->sb, "UPDATE sessions SET views=0, warned_at=0 WHERE id=?", c->s.id, 0);
    http_reply_json(r, 200, "{\"extended\":true}");
}

static void logout(sb_call *c, http_request *r)
{
    sb_exec(c->sb, "UPDATE sessions SET ended=1 WHERE id=?", c->s.id, 0);
    http_add_header(r, "Set-Cookie", "sb_session=; Path=/; Max-Age=0");
    http_reply_json(r, 200, "{\"signed_out\":true}");
}

/* ---- Routes -------------------------------------------------------------- */

void sb_api_login(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_ANYONE, login);
}

void sb_api_mfa_info(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_ANYONE, mfa_info);
}

void sb_api_mfa(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_ANYONE, mfa);
}

void sb_api_session(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, session_info);
}

void sb_api_session_extend(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, session_extend);
}

void sb_api_logout(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, logout);
}
