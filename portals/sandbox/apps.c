/*
 * apps.c - the backends of the sandbox portal's apps: eligibility, claims,
 * prior authorizations and appeals. See internal.h; README.md lists the
 * members and outcomes.
 *
 * Every check is server-side and says what is wrong beside each field, as
 * a real portal does (422 {"error":"invalid","message":...,"errors":{...}}).
 * What it accepts is logged exactly as received (file contents replaced by
 * name, size and SHA-256), for GET /__sandbox/submissions. It must never
 * log or accept a submission it rejected.
 */
#define _GNU_SOURCE
#include "portals/sandbox/internal.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/json.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- Reference data ------------------------------------------------------ */

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

/* ---- The submissions log ------------------------------------------------ */

static int64_t record(sandbox *sb, const char *kind, const char *user, const cJSON *fields,
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

static void eligibility(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    const cJSON *b = c->body;
    const session *s = &c->s;
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
    sb_reply_obj(r, 200, o);
}

static void claim(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    const cJSON *b = c->body;
    const session *s = &c->s;
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
    sb_reply_obj(r, 200, o);
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

static void authorization(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    const cJSON *b = c->body;
    const session *s = &c->s;
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
    sb_reply_obj(r, 200, outcome);
}

static void appeal(sb_call *c, http_request *r)
{
    sandbox *sb = c->sb;
    const cJSON *b = c->body;
    const session *s = &c->s;
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
    sb_reply_obj(r, 200, outcome);
}

/* Plans & Providers' "File appeal": a member's plan decision, appealed. */
static void plan_appeal(sb_call *c, http_request *r)
{
    verdict v = {0};
    const char *member_id = pt_json_str(c->body, "member_id"), *plan = pt_json_str(c->body, "plan");
    if (blank(member_id))
        field_error(&v, "member_id", "Enter the member ID.");
    if (blank(plan))
        field_error(&v, "plan", "Select a plan first.");
    if (v.errors) {
        reply_invalid(r, &v);
        return;
    }
    cJSON *outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(outcome, "status", "received");
    int64_t id = record(c->sb, "plan_appeal", c->s.user, c->body, outcome, NULL);
    char ref[32];
    reference("PLA", id, ref);
    cJSON_AddStringToObject(outcome, "reference", ref);
    set_outcome(c->sb, id, outcome);
    sb_reply_obj(r, 200, outcome);
}

/* ---- Routes -------------------------------------------------------------- */

void sb_api_eligibility(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, eligibility);
}

void sb_api_claim(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, claim);
}

void sb_api_authorization(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, authorization);
}

void sb_api_plan_appeal(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, plan_appeal);
}

void sb_api_appeal(http_request *r, void *ud)
{
    sb_call_run(r, ud, SB_SIGNED_IN, appeal);
}
