/*
 * sandbox.c - the sandbox payer portal's backend. See sandbox.h.
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
 */
#define _GNU_SOURCE
#include "portals/sandbox/sandbox.h"
#include "http/http.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/json.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum site { SITE_PORTAL, SITE_APPEALS };

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
    sqlite3 *db;
};

/* ---- Reference data ------------------------------------------------------ */

static const struct user {
    const char *id, *password, *totp_seed, *phone_last4;
} users[] = {
    {SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TOTP_SEED, "0042"},
};

static const char *const payers[] = {"Sandbox Health PPO",         "Sandbox Health HMO",
                                     "Sandbox Medicare Advantage", "Sandbox Medicaid",
                                     "Blue Sandbox Shield",        "Acme Commercial"};

typedef struct member {
    const char *id, *name, *dob; /* dob as YYYY-MM-DD */
    int active;
    const char *plan, *copay, *deductible, *network, *terminated;
    int auth_required;
} member;

static const member members[] = {
    {"300059049", "Louise Golicic", "1949-12-23", 1, "Sandbox Health PPO Gold", "$25.00", "$350.00",
     "In network", NULL, 0},
    {"412345678", "Jane Doe", "1990-01-15", 1, "Sandbox Health HMO Select", "$40.00", "$1,200.00",
     "In network", NULL, 1},
    {"555000111", "Robert Castillo", "1962-07-04", 0, "Sandbox Health PPO Silver", "-", "-",
     "In network", "12/31/2024", 0},
    {"777000222", "Maria Lopez", "1975-05-30", 1, "Sandbox Medicare Advantage Plus", "$0.00",
     "$0.00", "Out of network", NULL, 1},
};

static const char *const places_of_service[] = {"11", "12", "02", "21", "22", "31"};
static const char *const denial_reasons[] = {"CO-16", "CO-50", "CO-97", "CO-29", "CO-197"};

/* Prior authorization outcomes by procedure; anything else is approved. */
static const struct {
    const char *cpt, *status, *message;
} auth_rules[] = {
    {"70553", "pended", "A nurse reviewer will decide within 3 business days."},
    {"72148", "pended", "A nurse reviewer will decide within 3 business days."},
    {"27447", "more_info",
     "Submit imaging results and notes documenting 6 weeks of conservative therapy."},
    {"29881", "more_info", "Submit the operative plan and recent imaging results."},
};

/* ---- Small helpers ------------------------------------------------------- */

static int blank(const char *s)
{
    if (!s)
        return 1;
    while (*s && isspace((unsigned char)*s))
        s++;
    return !*s;
}

static int all_digits(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* NPI check digit: Luhn over "80840" + the first nine digits. */
static int valid_npi(const char *s)
{
    if (!all_digits(s, 10))
        return 0;
    int sum = 24; /* the "80840" prefix's contribution */
    for (int i = 8; i >= 0; i--) {
        int d = s[i] - '0';
        if ((8 - i) % 2 == 0) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return (10 - sum % 10) % 10 == s[9] - '0';
}

/* Accepts YYYY-MM-DD (a date input) or MM/DD/YYYY (a masked field); writes
 * YYYY-MM-DD into out. Returns 0 if it is a real calendar date. */
static int parse_date(const char *s, char out[11])
{
    int y, m, d;
    char tail;
    if (!s)
        return -1;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 &&
        sscanf(s, "%2d/%2d/%4d%c", &m, &d, &y, &tail) != 3)
        return -1;
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2100 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return -1;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    char tmp[40]; /* room for any int, so no truncation warning at any -O */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y, m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
    return 0;
}

static void today(char out[11])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static const member *find_member(const char *id)
{
    for (size_t i = 0; id && i < sizeof(members) / sizeof(members[0]); i++)
        if (strcmp(members[i].id, id) == 0)
            return &members[i];
    return NULL;
}

static int in_list(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return 1;
    return 0;
}

#define IN(v, list) in_list(v, list, sizeof(list) / sizeof(list[0]))

static int valid_icd10(const char *s)
{
    /* letter, digit, digit-or-letter, then optionally a dot and 1-4 more */
    size_t n = strlen(s);
    if (n < 3 || n > 8 || !isalpha((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        !isalnum((unsigned char)s[2]))
        return 0;
    size_t i = 3;
    if (i < n && s[i] == '.')
        i++;
    if (i == n && s[n - 1] == '.')
        return 0;
    for (; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return 0;
    return 1;
}

static int valid_cpt(const char *s)
{
    return all_digits(s, 5) ||
           (s && strlen(s) == 5 && isupper((unsigned char)s[0]) && all_digits(s + 1, 4));
}

/* ---- Validation results -------------------------------------------------- */

typedef struct verdict {
    cJSON *errors; /* field -> message */
    char message[512];
} verdict;

static void field_error(verdict *v, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!v->errors)
        v->errors = cJSON_CreateObject();
    if (!cJSON_GetObjectItemCaseSensitive(v->errors, field))
        cJSON_AddStringToObject(v->errors, field, msg);
}

/* 422 with the form-level message and the per-field errors. */
static void reply_invalid(http_request *r, verdict *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", "invalid");
    cJSON_AddStringToObject(o, "message",
                            v->message[0] ? v->message : "Please correct the highlighted fields.");
    if (v->errors)
        cJSON_AddItemToObject(o, "errors", v->errors);
    else
        cJSON_AddItemToObject(o, "errors", cJSON_CreateObject());
    v->errors = NULL;
    char *text = cJSON_PrintUnformatted(o);
    http_reply_json(r, 422, text);
    free(text);
    cJSON_Delete(o);
}

static void reply_obj(http_request *r, int status, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    http_reply_json(r, status, text ? text : "{}");
    free(text);
    cJSON_Delete(o);
}

/* ---- Store --------------------------------------------------------------- */

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

typedef struct session {
    char id[65];
    char user[64];
    char token[65];
    int mfa_ok;
    int views;
    int64_t warned_at;
    int ended;
} session;

static int load_session(sandbox *sb, const char *sql, const char *key, session *s)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (!key || sqlite3_prepare_v2(sb->db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(s->id, sizeof(s->id), "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(s->user, sizeof(s->user), "%s", (const char *)sqlite3_column_text(st, 1));
        s->mfa_ok = sqlite3_column_int(st, 2);
        snprintf(s->token, sizeof(s->token), "%s", (const char *)sqlite3_column_text(st, 3));
        s->views = sqlite3_column_int(st, 4);
        s->warned_at = sqlite3_column_int64(st, 5);
        s->ended = sqlite3_column_int(st, 6);
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

static int exec_sql(sandbox *sb, const char *sql, const char *a, int64_t n)
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

static int warning_seconds(sandbox *sb)
{
    return sb->o.session_warning_seconds > 0 ? sb->o.session_warning_seconds : 60;
}

/* The signed-in session behind this request: the cookie on the portal, the
 * token on the appeals site. Ends it if its warning was ignored too long. */
static int current_session(sandbox *sb, enum site site, http_request *r, session *s)
{
    int found;
    if (site == SITE_PORTAL)
        found = load_session(sb,
                             "SELECT id,user,mfa_ok,token,views,warned_at,ended FROM sessions"
                             " WHERE id=?",
                             http_cookie(r, "sb_session"), s);
    else {
        const char *t = http_header(r, "x-sandbox-token");
        found = load_session(sb,
                             "SELECT id,user,mfa_ok,token,views,warned_at,ended FROM sessions"
                             " WHERE token=?",
                             t ? t : http_query(r, "t"), s);
    }
    if (!found)
        return 0;
    if (!s->ended && s->warned_at && pt_wall_ms() / 1000 - s->warned_at >= warning_seconds(sb)) {
        exec_sql(sb, "UPDATE sessions SET ended=1 WHERE id=?", s->id, 0);
        s->ended = 1;
    }
    return 1;
}

static void count_view(sandbox *sb, session *s)
{
    s->views++;
    exec_sql(sb, "UPDATE sessions SET views=views+1 WHERE id=?", s->id, 0);
    if (sb->o.session_warning_after > 0 && !s->warned_at &&
        s->views >= sb->o.session_warning_after) {
        s->warned_at = pt_wall_ms() / 1000;
        exec_sql(sb, "UPDATE sessions SET warned_at=?2 WHERE id=?1", s->id, s->warned_at);
    }
}

/* Stores an accepted submission: the fields exactly as received (file
 * contents replaced by name, size and SHA-256), and the outcome. */
static int64_t record(sandbox *sb, const char *kind, const char *user, cJSON *fields,
                      cJSON *outcome, const char *const *file_fields)
{
    char now[25];
    pt_iso8601(pt_wall_ms(), now);
    cJSON *copy = cJSON_Duplicate(fields, 1);
    cJSON *files = cJSON_CreateArray();
    for (const char *const *ff = file_fields; ff && *ff; ff++) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(copy, *ff);
        cJSON *f;
        cJSON_ArrayForEach(f, list)
        {
            const char *data = pt_json_str(f, "data");
            size_t len = 0;
            unsigned char *bytes = data ? pt_b64_decode(data, strlen(data), &len) : NULL;
            char sha[65];
            pt_sha256_hex(bytes ? (const char *)bytes : "", bytes ? len : 0, sha);
            free(bytes);
            cJSON_DeleteItemFromObjectCaseSensitive(f, "data");
            cJSON_AddNumberToObject(f, "size", (double)len);
            cJSON_AddStringToObject(f, "sha256", sha);
            cJSON *meta = cJSON_Duplicate(f, 1);
            cJSON_AddStringToObject(meta, "field", *ff);
            cJSON_AddItemToArray(files, meta);
        }
    }
    char *ftext = cJSON_PrintUnformatted(copy), *otext = cJSON_PrintUnformatted(outcome);
    sqlite3_stmt *st = NULL;
    int64_t id = -1;
    sqlite3_exec(sb->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(sb->db,
                           "INSERT INTO submissions(kind,received_at,user,fields,outcome)"
                           " VALUES(?,?,?,?,?)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, ftext, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, otext, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            id = sqlite3_last_insert_rowid(sb->db);
        sqlite3_finalize(st);
    }
    cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        if (id < 0 || sqlite3_prepare_v2(sb->db,
                                         "INSERT INTO attachments(submission_id,field,name,type,"
                                         "size,sha256) VALUES(?,?,?,?,?,?)",
                                         -1, &st, NULL) != SQLITE_OK)
            break;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, pt_json_str(f, "field"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, pt_json_str(f, "name") ? pt_json_str(f, "name") : "", -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, pt_json_str(f, "type"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)cJSON_GetObjectItem(f, "size")->valuedouble);
        sqlite3_bind_text(st, 6, pt_json_str(f, "sha256"), -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    sqlite3_exec(sb->db, id >= 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    free(ftext);
    free(otext);
    cJSON_Delete(copy);
    cJSON_Delete(files);
    return id;
}

/* The reference of submission id: PREFIX-YYYY-NNNNNN. */
static void reference(const char *prefix, int64_t id, char out[32])
{
    char d[11];
    today(d);
    snprintf(out, 32, "%.4s-%.4s-%06lld", prefix, d, (long long)(id % 1000000000));
}

/* Updates the outcome's reference after the row exists. */
static void set_outcome(sandbox *sb, int64_t id, cJSON *outcome)
{
    char *t = cJSON_PrintUnformatted(outcome);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sb->db, "UPDATE submissions SET outcome=? WHERE id=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    free(t);
}

/* ---- Pages --------------------------------------------------------------- */

static void serve_file(sandbox *sb, http_request *r, const char *rel)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", sb->www, rel);
    char *data = NULL;
    size_t len = 0;
    if (strstr(rel, "..") || pt_read_file(path, 4 << 20, &data, &len) < 0) {
        http_reply_error(r, 404, "not_found", "no page %s", http_path(r));
        return;
    }
    const char *ext = strrchr(rel, '.');
    http_set_type(r, ext && !strcmp(ext, ".css")  ? "text/css; charset=utf-8"
                     : ext && !strcmp(ext, ".js") ? "text/javascript; charset=utf-8"
                                                  : "text/html; charset=utf-8");
    http_add_header(r, "Cache-Control", "no-store");
    http_write(r, data, len);
    free(data);
}

static void redirect(http_request *r, const char *to)
{
    http_set_status(r, 302);
    http_add_header(r, "Location", to);
}

/* ---- Sign-in ------------------------------------------------------------- */

static const struct user *find_user(const char *id)
{
    for (size_t i = 0; id && i < sizeof(users) / sizeof(users[0]); i++)
        if (strcmp(users[i].id, id) == 0)
            return &users[i];
    return NULL;
}

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

static void api_login(sandbox *sb, http_request *r, cJSON *body)
{
    const struct user *u = find_user(pt_json_str(body, "user"));
    const char *pw = pt_json_str(body, "password");
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
    reply_obj(r, 200, o);
}

static void api_mfa_info(sandbox *sb, http_request *r, session *s, int found)
{
    if (!found || s->ended) {
        http_reply_error(r, 401, "not_signed_in", "Sign in first.");
        return;
    }
    const struct user *u = find_user(s->user);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", sb->o.mfa == SANDBOX_MFA_SMS ? "sms" : "totp");
    char hint[32];
    snprintf(hint, sizeof(hint), "(***) ***-%s", u ? u->phone_last4 : "0000");
    cJSON_AddStringToObject(o, "hint", hint);
    reply_obj(r, 200, o);
}

static void api_mfa(sandbox *sb, http_request *r, cJSON *body, session *s, int found)
{
    if (!found || s->ended) {
        http_reply_error(r, 401, "not_signed_in", "Sign in first.");
        return;
    }
    const struct user *u = find_user(s->user);
    const char *code = pt_json_str(body, "code");
    int ok = 0;
    if (u && code && all_digits(code, 6)) {
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
    exec_sql(sb, "UPDATE sessions SET mfa_ok=1 WHERE id=?", s->id, 0);
    reply_obj(r, 200, cJSON_Parse("{\"next\":\"/home\"}"));
}

/* ---- The apps' backends --------------------------------------------------- */

static void check_member(verdict *v, const char *id, const char *dob_field, const char *dob,
                         const member **out)
{
    char d[11];
    *out = NULL;
    if (blank(id))
        field_error(v, "member_id", "Enter the member ID.");
    else if (!all_digits(id, 9))
        field_error(v, "member_id", "A member ID is 9 digits.");
    if (blank(dob))
        field_error(v, dob_field, "Enter the date of birth.");
    else if (parse_date(dob, d) < 0)
        field_error(v, dob_field, "Enter a valid date of birth.");
    if (v->errors)
        return;
    const member *m = find_member(id);
    if (!m || strcmp(m->dob, d) != 0) {
        snprintf(v->message, sizeof(v->message),
                 "No member found with that member ID and date of birth.");
        field_error(v, "member_id", "No member found.");
        return;
    }
    *out = m;
}

static void check_npi(verdict *v, const char *field, const char *npi, int required)
{
    if (blank(npi)) {
        if (required)
            field_error(v, field, "Enter the NPI.");
    } else if (!valid_npi(npi))
        field_error(v, field, "Enter a valid 10-digit NPI.");
}

static void api_eligibility(sandbox *sb, http_request *r, cJSON *b, session *s)
{
    (void)sb;
    verdict v = {0};
    const char *payer = pt_json_str(b, "payer");
    if (blank(payer) || !IN(payer, payers))
        field_error(&v, "payer", "Select a payer from the list.");
    check_npi(&v, "provider_npi", pt_json_str(b, "provider_npi"), 1);
    const char *st = pt_json_str(b, "service_type");
    if (blank(st))
        field_error(&v, "service_type", "Select a service type.");
    const member *m = NULL;
    if (!v.errors)
        check_member(&v, pt_json_str(b, "member_id"), "dob", pt_json_str(b, "dob"), &m);
    if (!m) {
        reply_invalid(r, &v);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "active", m->active);
    cJSON_AddStringToObject(o, "member_name", m->name);
    cJSON_AddStringToObject(o, "plan", m->plan);
    cJSON_AddStringToObject(o, "copay", m->copay);
    cJSON_AddStringToObject(o, "deductible_remaining", m->deductible);
    cJSON_AddStringToObject(o, "network", m->network);
    cJSON_AddBoolToObject(o, "auth_required", m->auth_required);
    if (m->terminated)
        cJSON_AddStringToObject(o, "terminated", m->terminated);
    cJSON *outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(outcome, "status", m->active ? "active" : "inactive");
    record(sb, "eligibility", s->user, b, outcome, NULL);
    cJSON_Delete(outcome);
    reply_obj(r, 200, o);
}

static void api_claim(sandbox *sb, http_request *r, cJSON *b, session *s)
{
    verdict v = {0};
    char d[11], now[11];
    today(now);
    const char *payer = pt_json_str(b, "payer");
    if (blank(payer) || !IN(payer, payers))
        field_error(&v, "payer", "Select a payer from the list.");
    const char *name = pt_json_str(b, "patient_name");
    if (blank(name))
        field_error(&v, "patient_name", "Enter the patient's name.");
    const char *pos = pt_json_str(b, "place_of_service");
    if (blank(pos))
        field_error(&v, "place_of_service", "Select a place of service.");
    else if (!IN(pos, places_of_service))
        field_error(&v, "place_of_service", "Unknown place of service code %s.", pos);
    const char *sd = pt_json_str(b, "service_date");
    if (blank(sd))
        field_error(&v, "service_date", "Enter the service date.");
    else if (parse_date(sd, d) < 0)
        field_error(&v, "service_date", "Enter the service date as MM/DD/YYYY.");
    else if (strcmp(d, now) > 0)
        field_error(&v, "service_date", "The service date cannot be in the future.");
    else if (strcmp(d, "2024-01-01") < 0)
        field_error(&v, "service_date",
                    "Claims for dates of service before 01/01/2024 must be filed on paper.");
    const char *dx = pt_json_str(b, "diagnosis_codes");
    if (!blank(dx)) {
        char *copy = strdup(dx), *save = NULL;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            if (!valid_icd10(t)) {
                field_error(&v, "diagnosis_codes", "%s is not a valid ICD-10 code.", t);
                break;
            }
        free(copy);
    }
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(b, "lines"), *l;
    cJSON_ArrayForEach(l, lines)
    {
        const cJSON *no = cJSON_GetObjectItemCaseSensitive(l, "line");
        int n = cJSON_IsNumber(no) ? no->valueint : 0;
        char field[64];
        const char *cpt = pt_json_str(l, "cpt"), *units = pt_json_str(l, "units"),
                   *charge = pt_json_str(l, "charge");
        if (!valid_cpt(cpt)) {
            snprintf(field, sizeof(field), "lines.%d.cpt", n);
            field_error(&v, field, "Enter a 5-character CPT or HCPCS code.");
        }
        if (!units || atoi(units) < 1 || atoi(units) > 999) {
            snprintf(field, sizeof(field), "lines.%d.units", n);
            field_error(&v, field, "Units must be between 1 and 999.");
        }
        if (!charge || strtod(charge[0] == '$' ? charge + 1 : charge, NULL) <= 0) {
            snprintf(field, sizeof(field), "lines.%d.charge", n);
            field_error(&v, field, "Enter the charge in dollars.");
        }
    }
    check_npi(&v, "rendering_npi", pt_json_str(b, "rendering_npi"), 0);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "attest")))
        field_error(&v, "attest", "You must attest that the claim is accurate.");
    const member *m = NULL;
    if (!v.errors) {
        check_member(&v, pt_json_str(b, "member_id"), "dob", pt_json_str(b, "dob"), &m);
        if (m && strcasecmp(m->name, name) != 0) {
            field_error(&v, "patient_name", "Does not match the member's record.");
            snprintf(v.message, sizeof(v.message),
                     "The patient name does not match the member's record.");
            m = NULL;
        } else if (m && !m->active) {
            snprintf(v.message, sizeof(v.message),
                     "Coverage is not active for this member on the date of service "
                     "(terminated %s).",
                     m->terminated);
            m = NULL;
        }
    }
    if (!m) {
        reply_invalid(r, &v);
        return;
    }
    cJSON *outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(outcome, "status", "accepted");
    int64_t id = record(sb, "claim", s->user, b, outcome, NULL);
    char ref[32];
    reference("CLM", id, ref);
    cJSON_AddStringToObject(outcome, "reference", ref);
    set_outcome(sb, id, outcome);
    cJSON_Delete(outcome);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "reference", ref);
    reply_obj(r, 200, o);
}

/* Files arrive as [{name, type, data (base64)}]; each must be a PDF. */
static void check_pdfs(verdict *v, const cJSON *files, const char *field, int min, int max)
{
    int n = cJSON_GetArraySize(files);
    if (n < min) {
        field_error(v, field, min == 1 ? "Attach a PDF." : "Attach at least %d PDFs.", min);
        return;
    }
    if (n > max) {
        field_error(v, field, "Attach at most %d file%s.", max, max == 1 ? "" : "s");
        return;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *data = pt_json_str(f, "data");
        size_t len = 0;
        unsigned char *bytes = data ? pt_b64_decode(data, strlen(data), &len) : NULL;
        int pdf = bytes && len >= 5 && memcmp(bytes, "%PDF-", 5) == 0;
        free(bytes);
        if (!pdf) {
            field_error(v, field, "%s is not a PDF.",
                        pt_json_str(f, "name") ? pt_json_str(f, "name") : "A file");
            return;
        }
        if (len > (10u << 20)) {
            field_error(v, field, "%s is over 10 MB.", pt_json_str(f, "name"));
            return;
        }
    }
}

static void api_authorization(sandbox *sb, http_request *r, cJSON *b, session *s)
{
    verdict v = {0};
    char from[11] = "", to[11] = "";
    check_npi(&v, "requesting_npi", pt_json_str(b, "requesting_npi"), 1);
    check_npi(&v, "servicing_npi", pt_json_str(b, "servicing_npi"), 1);
    const char *cpt = pt_json_str(b, "cpt");
    if (!all_digits(cpt, 5))
        field_error(&v, "cpt", "Enter a 5-digit CPT code.");
    const char *units = pt_json_str(b, "units");
    if (!units || atoi(units) < 1 || atoi(units) > 999)
        field_error(&v, "units", "Units must be between 1 and 999.");
    const char *dx = pt_json_str(b, "diagnosis");
    if (blank(dx) || !valid_icd10(dx))
        field_error(&v, "diagnosis", "Enter a valid ICD-10 code.");
    if (parse_date(pt_json_str(b, "from_date"), from) < 0)
        field_error(&v, "from_date", "Enter the first date of service.");
    if (parse_date(pt_json_str(b, "to_date"), to) < 0)
        field_error(&v, "to_date", "Enter the last date of service.");
    else if (from[0] && strcmp(to, from) < 0)
        field_error(&v, "to_date", "The last date cannot be before the first.");
    const char *urg = pt_json_str(b, "urgency");
    if (!urg || (strcmp(urg, "routine") != 0 && strcmp(urg, "urgent") != 0))
        field_error(&v, "urgency", "Choose routine or urgent.");
    const char *notes = pt_json_str(b, "clinical_notes");
    if (!notes || strlen(notes) < 10)
        field_error(&v, "clinical_notes", "Describe the clinical need (10 characters or more).");
    check_pdfs(&v, cJSON_GetObjectItemCaseSensitive(b, "attachments"), "attachments", 1, 5);
    const member *m = NULL;
    if (!v.errors)
        check_member(&v, pt_json_str(b, "member_id"), "dob", pt_json_str(b, "dob"), &m);
    if (m && !m->active) {
        snprintf(v.message, sizeof(v.message),
                 "Coverage is not active for this member (terminated %s).", m->terminated);
        m = NULL;
    }
    if (!m) {
        reply_invalid(r, &v);
        return;
    }
    const char *status = "approved", *message = "";
    for (size_t i = 0; i < sizeof(auth_rules) / sizeof(auth_rules[0]); i++)
        if (strcmp(auth_rules[i].cpt, cpt) == 0) {
            status = auth_rules[i].status;
            message = auth_rules[i].message;
        }
    cJSON *outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(outcome, "status", status);
    static const char *const files[] = {"attachments", NULL};
    int64_t id = record(sb, "prior_authorization", s->user, b, outcome, files);
    char ref[32];
    reference(strcmp(status, "approved") == 0 ? "AUTH" : "CASE", id, ref);
    cJSON_AddStringToObject(outcome, "reference", ref);
    cJSON_AddStringToObject(outcome, "message", message);
    set_outcome(sb, id, outcome);
    reply_obj(r, 200, outcome);
}

static void api_appeal(sandbox *sb, http_request *r, cJSON *b, session *s)
{
    verdict v = {0};
    const char *ref = pt_json_str(b, "claim_reference");
    int y = 0, n = 0;
    char tail;
    if (blank(ref))
        field_error(&v, "claim_reference", "Enter the original claim reference.");
    else if (sscanf(ref, "CLM-%4d-%6d%c", &y, &n, &tail) != 2 || strlen(ref) != 15)
        field_error(&v, "claim_reference", "A claim reference looks like CLM-2025-000123.");
    const char *reason = pt_json_str(b, "denial_reason");
    if (blank(reason) || !IN(reason, denial_reasons))
        field_error(&v, "denial_reason", "Select the denial reason.");
    const char *remedy = pt_json_str(b, "remedy");
    if (!remedy || (strcmp(remedy, "reconsideration") != 0 && strcmp(remedy, "formal_appeal") != 0))
        field_error(&v, "remedy", "Choose reconsideration or formal appeal.");
    const char *why = pt_json_str(b, "explanation");
    if (!why || strlen(why) < 20)
        field_error(&v, "explanation", "Explain the appeal (20 characters or more).");
    check_pdfs(&v, cJSON_GetObjectItemCaseSensitive(b, "letter"), "letter", 1, 1);
    if (v.errors) {
        reply_invalid(r, &v);
        return;
    }
    cJSON *outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(outcome, "status", "received");
    static const char *const files[] = {"letter", NULL};
    int64_t id = record(sb, "appeal", s->user, b, outcome, files);
    char tracking[32];
    reference("APL", id, tracking);
    cJSON_AddStringToObject(outcome, "reference", tracking);
    set_outcome(sb, id, outcome);
    reply_obj(r, 200, outcome);
}

/* ---- Test harness endpoints ---------------------------------------------- */

static void harness_submissions(sandbox *sb, http_request *r)
{
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
    reply_obj(r, 200, list);
}

static void harness_sms(sandbox *sb, http_request *r)
{
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
        reply_obj(r, 200, o);
    else
        http_reply_error(r, 404, "not_found", "no code has been texted to %s",
                         user ? user : SANDBOX_USER);
}

/* ---- Routing ------------------------------------------------------------- */

static int is(http_request *r, const char *method, const char *path)
{
    return strcmp(http_method(r), method) == 0 && strcmp(http_path(r), path) == 0;
}

static void handle(http_request *r, void *ud)
{
    site_ctx *sc = ud;
    sandbox *sb = sc->sb;
    const char *path = http_path(r);

    if (strncmp(path, "/static/", 8) == 0 && strcmp(http_method(r), "GET") == 0) {
        serve_file(sb, r, path + 8);
        return;
    }
    if (strncmp(path, "/__sandbox/", 11) == 0) {
        if (is(r, "GET", "/__sandbox/submissions"))
            harness_submissions(sb, r);
        else if (is(r, "POST", "/__sandbox/reset")) {
            sqlite3_exec(sb->db, "DELETE FROM attachments; DELETE FROM submissions;", NULL, NULL,
                         NULL);
            http_reply_json(r, 200, "{\"reset\":true}");
        } else if (is(r, "GET", "/__sandbox/sms"))
            harness_sms(sb, r);
        else
            http_reply_error(r, 404, "not_found", "no harness endpoint %s", path);
        return;
    }

    session s = {0};
    int found = current_session(sb, sc->site, r, &s);
    int signed_in = found && s.mfa_ok && !s.ended;

    /* pages */
    if (strcmp(http_method(r), "GET") == 0 && strncmp(path, "/api/", 5) != 0) {
        if (sc->site == SITE_APPEALS) {
            if (strcmp(path, "/apps/appeals") != 0) {
                http_reply_error(r, 404, "not_found", "no page %s", path);
            } else if (!signed_in) {
                http_set_status(r, 401);
                http_set_type(r, "text/html; charset=utf-8");
                http_printf(r, "<!doctype html><title>Appeals</title><p class=error>Your session "
                               "has expired. Sign in to the portal again.</p>");
            } else {
                count_view(sb, &s);
                serve_file(sb, r, "apps/appeals.html");
            }
            return;
        }
        if (strcmp(path, "/") == 0)
            redirect(r, signed_in ? "/home" : "/login");
        else if (strcmp(path, "/login") == 0)
            serve_file(sb, r, "login.html");
        else if (strcmp(path, "/mfa") == 0) {
            if (found && !s.ended)
                serve_file(sb, r, "mfa.html");
            else
                redirect(r, "/login");
        } else if (strcmp(path, "/home") == 0 || strncmp(path, "/apps/", 6) == 0) {
            static const char *const apps[] = {"/apps/eligibility", "/apps/claims",
                                               "/apps/authorizations"};
            int home = strcmp(path, "/home") == 0;
            if (!home && !IN(path, apps))
                http_reply_error(r, 404, "not_found", "no page %s", path);
            else if (!signed_in)
                redirect(r, found && s.ended ? "/login?expired=1" : "/login");
            else {
                count_view(sb, &s);
                char rel[64];
                snprintf(rel, sizeof(rel), "%s.html", home ? "home" : path + 1);
                serve_file(sb, r, rel);
            }
        } else
            http_reply_error(r, 404, "not_found", "no page %s", path);
        return;
    }

    /* backend calls: every one of them is slow, as configured */
    if (sb->o.latency_ms > 0)
        pt_sleep_ms(sb->o.latency_ms);
    size_t len = 0;
    const char *text = http_body(r, &len);
    cJSON *body = NULL;
    if (strcmp(http_method(r), "POST") == 0) {
        const char *end = NULL;
        body = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (!cJSON_IsObject(body)) {
            http_reply_error(r, 400, "invalid_json", "expected a JSON object at byte %ld",
                             end ? (long)(end - text) : 0L);
            cJSON_Delete(body);
            return;
        }
    }

    if (sc->site == SITE_PORTAL && is(r, "POST", "/api/login"))
        api_login(sb, r, body);
    else if (sc->site == SITE_PORTAL && is(r, "GET", "/api/mfa"))
        api_mfa_info(sb, r, &s, found);
    else if (sc->site == SITE_PORTAL && is(r, "POST", "/api/mfa"))
        api_mfa(sb, r, body, &s, found);
    else if (found && s.ended)
        http_reply_error(r, 401, "session_expired", "Your session has expired.");
    else if (!signed_in)
        http_reply_error(r, 401, "not_signed_in", "Sign in first.");
    else if (sc->site == SITE_PORTAL && is(r, "GET", "/api/session")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "user", s.user);
        cJSON_AddNumberToObject(o, "views", s.views);
        int64_t left = s.warned_at ? warning_seconds(sb) - (pt_wall_ms() / 1000 - s.warned_at) : 0;
        cJSON_AddBoolToObject(o, "warning", s.warned_at != 0);
        cJSON_AddNumberToObject(o, "expires_in", (double)(left > 0 ? left : 0));
        char url[256];
        snprintf(url, sizeof(url), "%s/apps/appeals?t=%s", sb->appeals_url, s.token);
        cJSON_AddStringToObject(o, "appeals_url", url);
        reply_obj(r, 200, o);
    } else if (sc->site == SITE_PORTAL && is(r, "POST", "/api/session/extend")) {
        exec_sql(sb, "UPDATE sessions SET views=0, warned_at=0 WHERE id=?", s.id, 0);
        http_reply_json(r, 200, "{\"extended\":true}");
    } else if (sc->site == SITE_PORTAL && is(r, "POST", "/api/logout")) {
        exec_sql(sb, "UPDATE sessions SET ended=1 WHERE id=?", s.id, 0);
        http_add_header(r, "Set-Cookie", "sb_session=; Path=/; Max-Age=0");
        http_reply_json(r, 200, "{\"signed_out\":true}");
    } else if (sc->site == SITE_PORTAL && is(r, "POST", "/api/eligibility"))
        api_eligibility(sb, r, body, &s);
    else if (sc->site == SITE_PORTAL && is(r, "POST", "/api/claims"))
        api_claim(sb, r, body, &s);
    else if (sc->site == SITE_PORTAL && is(r, "POST", "/api/authorizations"))
        api_authorization(sb, r, body, &s);
    else if (sc->site == SITE_APPEALS && is(r, "POST", "/api/appeals"))
        api_appeal(sb, r, body, &s);
    else
        http_reply_error(r, 404, "not_found", "no endpoint %s %s", http_method(r), path);
    cJSON_Delete(body);
}

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

    static const char *const custom[] = {"x-sandbox-token", NULL};
    sb->appeals_ctx = (site_ctx){sb, SITE_APPEALS};
    sb->portal_ctx = (site_ctx){sb, SITE_PORTAL};
    http_options ho = {.host = sb->o.host,
                       .port = 0,
                       .workers = 4,
                       .max_body = 40u << 20,
                       .custom_headers = custom};
    if (http_start(&ho, handle, &sb->appeals_ctx, &sb->appeals, err) < 0)
        goto fail;
    ho.port = sb->o.port;
    if (http_start(&ho, handle, &sb->portal_ctx, &sb->portal, err) < 0)
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
