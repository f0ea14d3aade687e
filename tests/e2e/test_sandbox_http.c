/*
 * test_sandbox_http.c - the sandbox portal's backend over real HTTP on
 * loopback: sign-in and MFA, every submission endpoint, validation errors,
 * the submissions log, the session warning, latency, two users' sign-ins
 * and sessions, and expiring one user's sessions on demand.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testcurl.h"
#include "portals/sandbox/sandbox.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sandbox *start(sandbox_mfa mfa, int warn_after, int warn_secs, int latency)
{
    sandbox_options o = {.mfa = mfa,
                         .session_warning_after = warn_after,
                         .session_warning_seconds = warn_secs,
                         .latency_ms = latency};
    sandbox *sb = NULL;
    char err[512];
    if (sandbox_start(&o, &sb, err))
        fail_msg("sandbox_start: %s", err);
    return sb;
}

static tc_response call(tc_client *c, const char *base, const char *method, const char *path,
                        const char *json)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    return tc_request(c, method, url, json ? "application/json" : NULL, json,
                      json ? strlen(json) : 0);
}

/* Calls and checks the status; returns the parsed body (caller frees). */
static cJSON *expect(tc_client *c, const char *base, const char *method, const char *path,
                     const char *json, long status)
{
    tc_response r = call(c, base, method, path, json);
    if (r.status != status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, status, r.body);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    return o;
}

static const char *field(const cJSON *o, const char *path)
{
    /* "errors.member_id" */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, k);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static void assert_field(const cJSON *o, const char *path, const char *want)
{
    const char *got = field(o, path);
    if (!got || !strstr(got, want)) {
        char *t = cJSON_PrintUnformatted(o);
        fail_msg("%s: want \"%s\" in %s", path, want, t);
    }
}

/* A client signed in as user (password, then TOTP); its session's id (the
 * sb_session cookie) goes to id. */
static tc_client *signed_in_as(sandbox *sb, const char *user, const char *password,
                               const char *seed, char id[65])
{
    tc_client *c = tc_new();
    char body[256];
    snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\"}", user, password);
    tc_response r = call(c, sandbox_url(sb), "POST", "/api/login", body);
    if (r.status != 200)
        fail_msg("sign-in as %s: status %ld: %s", user, r.status, r.body);
    char *cookie = tc_response_header(&r, "set-cookie");
    assert_non_null(cookie);
    assert_int_equal(sscanf(cookie, "sb_session=%64[0-9a-f]", id), 1);
    free(cookie);
    tc_response_free(&r);
    char code[7];
    pt_totp(seed, pt_wall_ms() / 1000, code);
    snprintf(body, sizeof(body), "{\"code\":\"%s\"}", code);
    cJSON_Delete(expect(c, sandbox_url(sb), "POST", "/api/mfa", body, 200));
    return c;
}

static tc_client *signed_in(sandbox *sb)
{
    char id[65];
    return signed_in_as(sb, SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TOTP_SEED, id);
}

static void sign_in_with_totp(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *c = tc_new();
    cJSON *o = expect(c, u, "POST", "/api/login",
                      "{\"user\":\"" SANDBOX_USER "\",\"password\":\"wrong\"}", 401);
    assert_field(o, "message", "The user ID or password is incorrect.");
    cJSON_Delete(o);
    cJSON_Delete(expect(c, u, "GET", "/api/session", NULL, 401));
    o = expect(c, u, "POST", "/api/login",
               "{\"user\":\"" SANDBOX_USER "\",\"password\":\"" SANDBOX_PASSWORD "\"}", 200);
    assert_field(o, "next", "/mfa");
    assert_field(o, "mfa", "totp");
    cJSON_Delete(o);
    /* not signed in until the second factor */
    cJSON_Delete(expect(c, u, "GET", "/api/session", NULL, 401));
    o = expect(c, u, "POST", "/api/mfa", "{\"code\":\"000000\"}", 401);
    assert_field(o, "message", "That code is not valid.");
    cJSON_Delete(o);
    char code[7], body[64];
    pt_totp(SANDBOX_TOTP_SEED, pt_wall_ms() / 1000, code);
    snprintf(body, sizeof(body), "{\"code\":\"%s\"}", code);
    cJSON_Delete(expect(c, u, "POST", "/api/mfa", body, 200));
    o = expect(c, u, "GET", "/api/session", NULL, 200);
    assert_field(o, "user", SANDBOX_USER);
    assert_field(o, "appeals_url", sandbox_appeals_url(sb));
    cJSON_Delete(o);
    tc_response r = call(c, u, "GET", "/home", NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "id=\"app-frame\""));
    tc_response_free(&r);
    /* signing out ends it */
    cJSON_Delete(expect(c, u, "POST", "/api/logout", "{}", 200));
    cJSON_Delete(expect(c, u, "GET", "/api/session", NULL, 401));
    tc_free(c);
    sandbox_stop(sb);
}

static void sms_code_is_resent_within_ten_minutes(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_SMS, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *a = tc_new(), *b = tc_new(), *h = tc_new();
    cJSON *o = expect(a, u, "POST", "/api/login",
                      "{\"user\":\"" SANDBOX_USER "\",\"password\":\"" SANDBOX_PASSWORD "\"}", 200);
    assert_field(o, "mfa", "sms");
    cJSON_Delete(o);
    o = expect(a, u, "GET", "/api/mfa", NULL, 200);
    assert_field(o, "hint", "0042");
    cJSON_Delete(o);
    cJSON *sms1 = expect(h, u, "GET", "/__sandbox/sms?user=" SANDBOX_USER, NULL, 200);
    cJSON_Delete(expect(b, u, "POST", "/api/login",
                        "{\"user\":\"" SANDBOX_USER "\",\"password\":\"" SANDBOX_PASSWORD "\"}",
                        200));
    cJSON *sms2 = expect(h, u, "GET", "/__sandbox/sms?user=" SANDBOX_USER, NULL, 200);
    assert_string_equal(field(sms1, "code"), field(sms2, "code"));
    char body[64], wrong[16];
    snprintf(wrong, sizeof(wrong), "%06d", (atoi(field(sms1, "code")) + 1) % 1000000);
    snprintf(body, sizeof(body), "{\"code\":\"%s\"}", wrong);
    cJSON_Delete(expect(a, u, "POST", "/api/mfa", body, 401));
    snprintf(body, sizeof(body), "{\"code\":\"%s\"}", field(sms1, "code"));
    cJSON_Delete(expect(a, u, "POST", "/api/mfa", body, 200));
    cJSON_Delete(expect(b, u, "POST", "/api/mfa", body, 200));
    cJSON_Delete(sms1);
    cJSON_Delete(sms2);
    tc_free(a);
    tc_free(b);
    tc_free(h);
    sandbox_stop(sb);
}

static const char quickstart_claim[] =
    "{\"payer\":\"Sandbox Health PPO\",\"patient_name\":\"Louise Golicic\","
    "\"member_id\":\"300059049\",\"dob\":\"1949-12-23\",\"place_of_service\":\"12\","
    "\"service_date\":\"03/25/2025\",\"diagnosis_codes\":\"\",\"rendering_npi\":\"\","
    "\"attest\":true,\"lines\":[]}";

static void quickstart_claim_is_accepted_and_logged(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *c = signed_in(sb);
    cJSON *o = expect(c, u, "POST", "/api/claims", quickstart_claim, 200);
    const char *ref = field(o, "reference");
    int y, n;
    assert_int_equal(sscanf(ref, "CLM-%4d-%6d", &y, &n), 2);
    /* with service lines, codes and an NPI too */
    cJSON *o2 = expect(c, u, "POST", "/api/claims",
                       "{\"payer\":\"Sandbox Health HMO\",\"patient_name\":\"jane doe\","
                       "\"member_id\":\"412345678\",\"dob\":\"1990-01-15\",\"place_of_service\":"
                       "\"11\",\"service_date\":\"2025-03-20\",\"diagnosis_codes\":\"I10, E11.9\","
                       "\"rendering_npi\":\"1234567893\",\"attest\":true,\"lines\":[{\"line\":1,"
                       "\"cpt\":\"99213\",\"modifier\":\"25\",\"pointer\":\"A\",\"units\":\"1\","
                       "\"charge\":\"125.00\"},{\"line\":2,\"cpt\":\"G0008\",\"modifier\":\"\","
                       "\"pointer\":\"B\",\"units\":\"2\",\"charge\":\"$30\"}]}",
                       200);
    cJSON *log = expect(c, u, "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(log), 2);
    cJSON *first = cJSON_GetArrayItem(log, 0);
    assert_string_equal(field(first, "kind"), "claim");
    assert_string_equal(field(first, "outcome.reference"), ref);
    /* every field exactly as received */
    cJSON *sent = cJSON_Parse(quickstart_claim);
    assert_true(cJSON_Compare(cJSON_GetObjectItem(first, "fields"), sent, 1));
    cJSON_Delete(sent);
    cJSON *second = cJSON_GetArrayItem(log, 1);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(second, "fields"), "lines")), 2);
    cJSON_Delete(log);
    cJSON_Delete(o);
    cJSON_Delete(o2);
    /* reset empties the log */
    cJSON_Delete(expect(c, u, "POST", "/__sandbox/reset", "{}", 200));
    log = expect(c, u, "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(log), 0);
    cJSON_Delete(log);
    tc_free(c);
    sandbox_stop(sb);
}

static void claim_validation_says_what_is_wrong(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *c = signed_in(sb);
    cJSON *o = expect(c, u, "POST", "/api/claims",
                      "{\"payer\":\"Nobody Insurance\",\"service_date\":\"13/45/2025\","
                      "\"place_of_service\":\"99\",\"diagnosis_codes\":\"I10, 12345\","
                      "\"rendering_npi\":\"1234567890\",\"lines\":[{\"line\":1,\"cpt\":\"9921\","
                      "\"units\":\"0\",\"charge\":\"\"}]}",
                      422);
    assert_field(o, "error", "invalid");
    assert_field(o, "errors.payer", "Select a payer from the list.");
    assert_field(o, "errors.patient_name", "Enter the patient's name.");
    assert_field(o, "errors.place_of_service", "Unknown place of service code 99.");
    assert_field(o, "errors.service_date", "MM/DD/YYYY");
    assert_field(o, "errors.diagnosis_codes", "12345 is not a valid ICD-10 code.");
    assert_field(o, "errors.rendering_npi", "valid 10-digit NPI");
    assert_field(o, "errors.attest", "attest");
    cJSON *lines = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "errors"), "lines.1.cpt");
    assert_non_null(lines);
    cJSON_Delete(o);

    /* the member's record decides the rest */
#define TMPL1                                                                                      \
    "{\"payer\":\"Sandbox Health PPO\",\"patient_name\":\"%s\",\"member_id\":"                     \
    "\"%s\",\"dob\":\"%s\",\"place_of_service\":\"11\",\"service_date\":"                          \
    "\"%s\",\"attest\":true}"
    char body[512];
    snprintf(body, sizeof(body), TMPL1, "Louise Golicic", "300059049", "1950-01-01", "2025-03-25");
    o = expect(c, u, "POST", "/api/claims", body, 422);
    assert_field(o, "message", "No member found with that member ID and date of birth.");
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL1, "Robert Castillo", "555000111", "1962-07-04", "2025-03-25");
    o = expect(c, u, "POST", "/api/claims", body, 422);
    assert_field(o, "message", "Coverage is not active");
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL1, "Jane Doe", "300059049", "1949-12-23", "2025-03-25");
    o = expect(c, u, "POST", "/api/claims", body, 422);
    assert_field(o, "errors.patient_name", "Does not match the member's record.");
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL1, "Louise Golicic", "300059049", "1949-12-23", "2023-06-01");
    o = expect(c, u, "POST", "/api/claims", body, 422);
    assert_field(o, "errors.service_date", "must be filed on paper");
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL1, "Louise Golicic", "300059049", "1949-12-23", "2099-01-01");
    o = expect(c, u, "POST", "/api/claims", body, 422);
    assert_field(o, "errors.service_date", "cannot be in the future");
    cJSON_Delete(o);
    /* nothing rejected was logged */
    cJSON *log = expect(c, u, "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(log), 0);
    cJSON_Delete(log);
    /* malformed JSON says where */
    o = expect(c, u, "POST", "/api/claims", "{\"payer\": oops}", 400);
    assert_field(o, "error", "invalid_json");
    assert_field(o, "message", "at byte 10");
    cJSON_Delete(o);
    tc_free(c);
    sandbox_stop(sb);
}

static void eligibility_outcomes(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *c = signed_in(sb);
#define TMPL2                                                                                      \
    "{\"payer\":\"Sandbox Health PPO\",\"member_id\":\"%s\",\"dob\":\"%s\","                       \
    "\"service_type\":\"30\",\"provider_npi\":\"1234567893\"}"
    char body[512];
    snprintf(body, sizeof(body), TMPL2, "300059049", "12/23/1949"); /* the masked field's form */
    cJSON *o = expect(c, u, "POST", "/api/eligibility", body, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "active")));
    assert_field(o, "plan", "Sandbox Health PPO Gold");
    assert_field(o, "copay", "$25.00");
    assert_field(o, "deductible_remaining", "$350.00");
    assert_field(o, "network", "In network");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "auth_required")));
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL2, "555000111", "07/04/1962");
    o = expect(c, u, "POST", "/api/eligibility", body, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "active")));
    assert_field(o, "terminated", "12/31/2024");
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL2, "999999999", "01/01/1980");
    o = expect(c, u, "POST", "/api/eligibility", body, 422);
    assert_field(o, "message", "No member found");
    cJSON_Delete(o);
    snprintf(body, sizeof(body), TMPL2, "300059049", "02/30/1949");
    o = expect(c, u, "POST", "/api/eligibility", body, 422);
    assert_field(o, "errors.dob", "valid date of birth");
    cJSON_Delete(o);
    cJSON *log = expect(c, u, "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(log), 2);
    assert_string_equal(field(cJSON_GetArrayItem(log, 1), "outcome.status"), "inactive");
    cJSON_Delete(log);
    tc_free(c);
    sandbox_stop(sb);
}

static char *pdf_b64(const char *marker, char sha[65])
{
    char pdf[256];
    int n = snprintf(pdf, sizeof(pdf),
                     "%%PDF-1.4\n%% %s\n1 0 obj<<>>endobj\ntrailer<<>>\n%%%%EOF\n", marker);
    pt_sha256_hex(pdf, (size_t)n, sha);
    return pt_b64_encode(pdf, (size_t)n);
}

static void prior_authorization_outcomes(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *c = signed_in(sb);
    char sha[65];
    char *pdf = pdf_b64("clinical notes", sha);
    const struct {
        const char *cpt, *status, *prefix;
    } cases[] = {{"97110", "approved", "AUTH-"},
                 {"70553", "pended", "CASE-"},
                 {"27447", "more_info", "CASE-"}};
    for (size_t i = 0; i < 3; i++) {
        char body[2048];
        snprintf(body, sizeof(body),
                 "{\"member_id\":\"412345678\",\"dob\":\"1990-01-15\",\"requesting_npi\":"
                 "\"1234567893\",\"servicing_npi\":\"1234567893\",\"cpt\":\"%s\",\"units\":\"1\","
                 "\"diagnosis\":\"M17.11\",\"from_date\":\"2025-04-01\",\"to_date\":\"2025-04-30\","
                 "\"urgency\":\"routine\",\"clinical_notes\":\"Failed conservative therapy.\","
                 "\"attachments\":[{\"name\":\"notes.pdf\",\"type\":\"application/pdf\","
                 "\"data\":\"%s\"}]}",
                 cases[i].cpt, pdf);
        cJSON *o = expect(c, u, "POST", "/api/authorizations", body, 200);
        assert_string_equal(field(o, "status"), cases[i].status);
        assert_true(strncmp(field(o, "reference"), cases[i].prefix, 5) == 0);
        cJSON_Delete(o);
    }
    cJSON *log = expect(c, u, "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(log), 3);
    cJSON *att =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "attachments"), 0);
    assert_string_equal(field(att, "name"), "notes.pdf");
    assert_string_equal(field(att, "sha256"), sha);
    assert_true(cJSON_GetObjectItem(att, "size")->valueint > 40);
    /* the log keeps the file's name, size and hash, not its bytes */
    char *t = cJSON_PrintUnformatted(log);
    assert_null(strstr(t, pdf));
    free(t);
    cJSON_Delete(log);

    /* not a PDF, missing fields */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"member_id\":\"412345678\",\"dob\":\"1990-01-15\",\"cpt\":\"97110\","
             "\"attachments\":[{\"name\":\"x.png\",\"data\":\"iVBORw0KGgo=\"}]}");
    cJSON *o = expect(c, u, "POST", "/api/authorizations", body, 422);
    assert_field(o, "errors.attachments", "x.png is not a PDF.");
    assert_field(o, "errors.urgency", "routine or urgent");
    assert_field(o, "errors.requesting_npi", "Enter the NPI.");
    assert_field(o, "errors.from_date", "first date of service");
    cJSON_Delete(o);
    free(pdf);
    tc_free(c);
    sandbox_stop(sb);
}

static void appeal_on_the_second_site(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    tc_client *c = signed_in(sb);
    cJSON *s = expect(c, sandbox_url(sb), "GET", "/api/session", NULL, 200);
    const char *appeals = field(s, "appeals_url");
    assert_non_null(strstr(appeals, "http://localhost:"));
    const char *t = strstr(appeals, "?t=") + 3;
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "X-Sandbox-Token: %s", t);
    /* the appeals site is another origin: no cookie, the token instead */
    tc_client *a = tc_new();
    char sha[65];
    char *pdf = pdf_b64("appeal letter", sha);
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"claim_reference\":\"CLM-2025-000123\",\"denial_reason\":\"CO-50\",\"remedy\":"
             "\"reconsideration\",\"explanation\":\"The service was medically necessary, see "
             "letter.\",\"letter\":[{\"name\":\"letter.pdf\",\"type\":\"application/pdf\","
             "\"data\":\"%s\"}]}",
             pdf);
    char base[128];
    snprintf(base, sizeof(base), "%s", sandbox_appeals_url(sb));
    cJSON_Delete(expect(a, base, "POST", "/api/appeals", body, 401));
    tc_header(a, hdr);
    cJSON *o = expect(a, base, "POST", "/api/appeals", body, 200);
    assert_true(strncmp(field(o, "reference"), "APL-", 4) == 0);
    cJSON_Delete(o);
    tc_response page = tc_request(a, "GET", appeals, NULL, NULL, 0);
    assert_int_equal(page.status, 200);
    assert_non_null(strstr(page.body, "Claim Appeal"));
    tc_response_free(&page);
    o = expect(a, base, "POST", "/api/appeals",
               "{\"claim_reference\":\"12345\",\"remedy\":\"maybe\",\"explanation\":\"short\"}",
               422);
    assert_field(o, "errors.claim_reference", "CLM-2025-000123");
    assert_field(o, "errors.denial_reason", "Select the denial reason.");
    assert_field(o, "errors.remedy", "reconsideration or formal appeal");
    assert_field(o, "errors.explanation", "20 characters");
    assert_field(o, "errors.letter", "Attach a PDF.");
    cJSON_Delete(o);
    cJSON *log = expect(c, sandbox_url(sb), "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(log), 1);
    cJSON *att =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "attachments"), 0);
    assert_string_equal(field(att, "sha256"), sha);
    cJSON_Delete(log);
    free(pdf);
    cJSON_Delete(s);
    tc_free(a);
    tc_free(c);
    sandbox_stop(sb);
}

static void session_warning_then_sign_out(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 3, 2, 0);
    const char *u = sandbox_url(sb);
    tc_client *c = signed_in(sb);
    tc_response r = call(c, u, "GET", "/home", NULL); /* view 1 */
    tc_response_free(&r);
    r = call(c, u, "GET", "/apps/claims", NULL); /* view 2 */
    tc_response_free(&r);
    cJSON *o = expect(c, u, "GET", "/api/session", NULL, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "warning")));
    cJSON_Delete(o);
    r = call(c, u, "GET", "/apps/eligibility", NULL); /* view 3: the warning */
    tc_response_free(&r);
    o = expect(c, u, "GET", "/api/session", NULL, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "warning")));
    assert_true(cJSON_GetObjectItem(o, "expires_in")->valueint <= 2);
    cJSON_Delete(o);
    /* "Stay signed in" clears it */
    cJSON_Delete(expect(c, u, "POST", "/api/session/extend", "{}", 200));
    o = expect(c, u, "GET", "/api/session", NULL, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "warning")));
    cJSON_Delete(o);
    /* ignored, it signs the user out */
    for (int i = 0; i < 3; i++) {
        r = call(c, u, "GET", "/apps/claims", NULL);
        tc_response_free(&r);
    }
    pt_sleep_ms(2500);
    o = expect(c, u, "GET", "/api/session", NULL, 401);
    assert_field(o, "error", "session_expired");
    cJSON_Delete(o);
    r = call(c, u, "GET", "/home", NULL);
    assert_int_equal(r.status, 302);
    char *loc = tc_response_header(&r, "location");
    assert_string_equal(loc, "/login?expired=1");
    free(loc);
    tc_response_free(&r);
    tc_free(c);
    sandbox_stop(sb);
}

static void latency_applies_to_backend_calls(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_NONE, 0, 0, 300);
    tc_client *c = tc_new();
    int64_t t0 = pt_mono_ms();
    cJSON *o = expect(c, sandbox_url(sb), "POST", "/api/login",
                      "{\"user\":\"" SANDBOX_USER "\",\"password\":\"" SANDBOX_PASSWORD "\"}", 200);
    /* a lower bound only: the sandbox sleeps, it cannot be faster */
    assert_true(pt_mono_ms() - t0 >= 300);
    assert_field(o, "next", "/home"); /* --mfa none */
    cJSON_Delete(o);
    o = expect(c, sandbox_url(sb), "GET", "/api/session", NULL, 200);
    cJSON_Delete(o);
    tc_free(c);
    sandbox_stop(sb);
}

static void sandboxes_run_side_by_side(void **state)
{
    (void)state;
    sandbox *a = start(SANDBOX_MFA_TOTP, 0, 0, 0), *b = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    assert_string_not_equal(sandbox_url(a), sandbox_url(b));
    assert_string_not_equal(sandbox_data_dir(a), sandbox_data_dir(b));
    tc_client *c = signed_in(a);
    cJSON_Delete(expect(c, sandbox_url(a), "POST", "/api/claims", quickstart_claim, 200));
    cJSON *la = expect(c, sandbox_url(a), "GET", "/__sandbox/submissions", NULL, 200);
    cJSON *lb = expect(c, sandbox_url(b), "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(la), 1);
    assert_int_equal(cJSON_GetArraySize(lb), 0);
    /* a session of one is unknown to the other */
    cJSON_Delete(expect(c, sandbox_url(b), "GET", "/api/session", NULL, 401));
    cJSON_Delete(la);
    cJSON_Delete(lb);
    tc_free(c);
    sandbox_stop(a);
    sandbox_stop(b);
}

/* ---- Two users, sign-ins and expiry (what kept sessions are tested by) -- */

static int signins_of(const cJSON *o, const char *user)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(o, "signins"), user);
    if (!cJSON_IsNumber(n))
        fail_msg("no sign-in count for %s", user);
    return n->valueint;
}

/* The user of the live session with that id, or NULL if it is not live. */
static const char *owner_of(const cJSON *o, const char *id)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(o, "sessions"))
    {
        if (strcmp(field(s, "id"), id) == 0)
            return field(s, "user");
    }
    return NULL;
}

static void assert_lands_on_sign_in(tc_client *c, const char *u)
{
    tc_response r = call(c, u, "GET", "/home", NULL);
    assert_int_equal(r.status, 302);
    char *loc = tc_response_header(&r, "location");
    assert_string_equal(loc, "/login?expired=1");
    free(loc);
    tc_response_free(&r);
    cJSON *o = expect(c, u, "GET", "/api/session", NULL, 401);
    assert_field(o, "error", "session_expired");
    cJSON_Delete(o);
}

static void assert_live_as(tc_client *c, const char *u, const char *user)
{
    tc_response r = call(c, u, "GET", "/home", NULL);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    cJSON *o = expect(c, u, "GET", "/api/session", NULL, 200);
    assert_field(o, "user", user);
    cJSON_Delete(o);
}

static void two_users_signins_and_sessions(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *h = tc_new();
    cJSON *o = expect(h, u, "GET", "/__sandbox/signins", NULL, 200);
    assert_int_equal(signins_of(o, SANDBOX_USER), 0);
    assert_int_equal(signins_of(o, SANDBOX_USER2), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "sessions")), 0);
    cJSON_Delete(o);
    /* each user has their own credentials */
    cJSON_Delete(expect(h, u, "POST", "/api/login",
                        "{\"user\":\"" SANDBOX_USER2 "\",\"password\":\"" SANDBOX_PASSWORD "\"}",
                        401));
    char ida[65], idb[65], idb2[65], idhalf[65];
    tc_client *a = signed_in_as(sb, SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TOTP_SEED, ida);
    tc_client *b = signed_in_as(sb, SANDBOX_USER2, SANDBOX_PASSWORD2, SANDBOX_TOTP_SEED2, idb);
    tc_client *b2 = signed_in_as(sb, SANDBOX_USER2, SANDBOX_PASSWORD2, SANDBOX_TOTP_SEED2, idb2);
    /* a password without its second factor is not a sign-in */
    tc_client *half = tc_new();
    tc_response r = call(half, u, "POST", "/api/login",
                         "{\"user\":\"" SANDBOX_USER "\",\"password\":\"" SANDBOX_PASSWORD "\"}");
    assert_int_equal(r.status, 200);
    char *cookie = tc_response_header(&r, "set-cookie");
    assert_int_equal(sscanf(cookie, "sb_session=%64[0-9a-f]", idhalf), 1);
    free(cookie);
    tc_response_free(&r);
    /* the second user's TOTP code does not open the first user's session */
    char code[7], body[64];
    pt_totp(SANDBOX_TOTP_SEED2, pt_wall_ms() / 1000, code);
    snprintf(body, sizeof(body), "{\"code\":\"%s\"}", code);
    char want[7];
    pt_totp(SANDBOX_TOTP_SEED, pt_wall_ms() / 1000, want);
    if (strcmp(code, want) != 0)
        cJSON_Delete(expect(half, u, "POST", "/api/mfa", body, 401));

    assert_live_as(a, u, SANDBOX_USER);
    assert_live_as(b, u, SANDBOX_USER2);
    assert_live_as(b2, u, SANDBOX_USER2);
    o = expect(h, u, "GET", "/__sandbox/signins", NULL, 200);
    assert_int_equal(signins_of(o, SANDBOX_USER), 1);
    assert_int_equal(signins_of(o, SANDBOX_USER2), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "sessions")), 3);
    assert_string_equal(owner_of(o, ida), SANDBOX_USER);
    assert_string_equal(owner_of(o, idb), SANDBOX_USER2);
    assert_string_equal(owner_of(o, idb2), SANDBOX_USER2);
    assert_null(owner_of(o, idhalf));
    cJSON_Delete(o);
    tc_free(a);
    tc_free(b);
    tc_free(b2);
    tc_free(half);
    tc_free(h);
    sandbox_stop(sb);
}

static void expire_ends_one_users_sessions(void **state)
{
    (void)state;
    sandbox *sb = start(SANDBOX_MFA_TOTP, 0, 0, 0);
    const char *u = sandbox_url(sb);
    tc_client *h = tc_new();
    char ida[65], idb[65], idb2[65];
    tc_client *a = signed_in_as(sb, SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TOTP_SEED, ida);
    tc_client *b = signed_in_as(sb, SANDBOX_USER2, SANDBOX_PASSWORD2, SANDBOX_TOTP_SEED2, idb);
    cJSON *o = expect(h, u, "POST", "/__sandbox/expire", "{\"user\":\"" SANDBOX_USER2 "\"}", 200);
    assert_int_equal(cJSON_GetObjectItem(o, "expired")->valueint, 1);
    cJSON_Delete(o);
    /* the next request in B's session is one that timed out; A's is live */
    assert_lands_on_sign_in(b, u);
    assert_live_as(a, u, SANDBOX_USER);
    o = expect(h, u, "GET", "/__sandbox/signins", NULL, 200);
    assert_int_equal(signins_of(o, SANDBOX_USER), 1);
    assert_int_equal(signins_of(o, SANDBOX_USER2), 1); /* sign-ins are counted, not undone */
    assert_string_equal(owner_of(o, ida), SANDBOX_USER);
    assert_null(owner_of(o, idb));
    cJSON_Delete(o);
    /* B signs in again: a new session, a second sign-in */
    tc_free(b);
    b = signed_in_as(sb, SANDBOX_USER2, SANDBOX_PASSWORD2, SANDBOX_TOTP_SEED2, idb2);
    assert_string_not_equal(idb, idb2);
    assert_live_as(b, u, SANDBOX_USER2);
    o = expect(h, u, "GET", "/__sandbox/signins", NULL, 200);
    assert_int_equal(signins_of(o, SANDBOX_USER2), 2);
    assert_string_equal(owner_of(o, idb2), SANDBOX_USER2);
    cJSON_Delete(o);
    /* an unknown user, a body that is not JSON */
    o = expect(h, u, "POST", "/__sandbox/expire", "{\"user\":\"nobody\"}", 404);
    assert_field(o, "error", "not_found");
    cJSON_Delete(o);
    cJSON_Delete(expect(h, u, "POST", "/__sandbox/expire", "{\"user\": oops", 400));
    /* with no user, every session ends */
    o = expect(h, u, "POST", "/__sandbox/expire", "{}", 200);
    assert_int_equal(cJSON_GetObjectItem(o, "expired")->valueint, 2);
    cJSON_Delete(o);
    assert_lands_on_sign_in(a, u);
    assert_lands_on_sign_in(b, u);
    o = expect(h, u, "GET", "/__sandbox/signins", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "sessions")), 0);
    cJSON_Delete(o);
    /* the harness routes answer by method: a GET of expire is a 405 */
    tc_response r = call(h, u, "GET", "/__sandbox/expire", NULL);
    assert_int_equal(r.status, 405);
    char *allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "POST");
    free(allow);
    tc_response_free(&r);
    r = call(h, u, "GET", "/__sandbox/nothing", NULL);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "no harness endpoint /__sandbox/nothing"));
    tc_response_free(&r);
    tc_free(a);
    tc_free(b);
    tc_free(h);
    sandbox_stop(sb);
}

/* --expire-after 3: the third page load ends the session and sends the user
 * to sign in again with the page to return to; a new session is not ended
 * again, and the plan appeal is logged once per filing. */
static void expire_after_n_page_loads(void **state)
{
    (void)state;
    sandbox_options o = {.expire_after = 3};
    sandbox *sb = NULL;
    char err[512];
    if (sandbox_start(&o, &sb, err))
        fail_msg("sandbox_start: %s", err);
    const char *u = sandbox_url(sb);
    tc_client *c = signed_in(sb);
    for (int i = 0; i < 2; i++) {
        tc_response r = call(c, u, "GET", i ? "/apps/plans" : "/home", NULL);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    tc_response r = call(c, u, "GET", "/apps/plans", NULL); /* load 3 */
    assert_int_equal(r.status, 302);
    char *loc = tc_response_header(&r, "location");
    assert_string_equal(loc, "/login?expired=1&return=/apps/plans");
    free(loc);
    tc_response_free(&r);
    cJSON *x = expect(c, u, "POST", "/api/plan-appeals",
                      "{\"member_id\":\"300059049\",\"plan\":\"Gold PPO 500\"}", 401);
    cJSON_Delete(x);
    tc_free(c);
    c = signed_in(sb);
    for (int i = 0; i < 3; i++) {
        r = call(c, u, "GET", "/apps/plans", NULL);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    x = expect(c, u, "POST", "/api/plan-appeals", "{\"member_id\":\"300059049\"}", 422);
    cJSON_Delete(x);
    x = expect(c, u, "POST", "/api/plan-appeals",
               "{\"member_id\":\"300059049\",\"plan\":\"Gold PPO 500\"}", 200);
    assert_non_null(strstr(field(x, "reference"), "PLA-"));
    cJSON_Delete(x);
    x = expect(c, u, "GET", "/__sandbox/submissions", NULL, 200);
    assert_int_equal(cJSON_GetArraySize(x), 1);
    cJSON_Delete(x);
    tc_free(c);
    sandbox_stop(sb);
}

/* --markup 2: the same page, its texts and form field names as they are,
 * every id and class generated anew (not a suffix), controls wrapped, the
 * style sheet's selectors following; the script is told which markup. */
static void markup_2_changes_ids_classes_and_nesting(void **state)
{
    (void)state;
    sandbox_options o = {.markup = 2};
    sandbox *sb = NULL;
    char err[512];
    if (sandbox_start(&o, &sb, err))
        fail_msg("sandbox_start: %s", err);
    const char *u = sandbox_url(sb);
    tc_client *c = tc_new();
    tc_response r = call(c, u, "GET", "/login", NULL);
    assert_int_equal(r.status, 200);
    const char *h = r.body;
    assert_non_null(strstr(h, ">User ID<")); /* the visible text */
    assert_non_null(strstr(h, ">Sign in<"));
    assert_non_null(strstr(h, "name=\"user\"")); /* what the form sends */
    assert_null(strstr(h, "id=\"user\""));
    assert_null(strstr(h, "for=\"user\""));
    assert_null(strstr(h, "user-")); /* not a suffix either */
    assert_null(strstr(h, "class=\"card\""));
    assert_null(strstr(h, "id=\"login-error\""));
    assert_non_null(strstr(h, "<span class=\"u")); /* a wrapper around each control */
    /* the label still names its input: the same generated id on both */
    const char *f = strstr(h, "<label for=\"k");
    assert_non_null(f);
    char id[32];
    assert_int_equal(sscanf(f, "<label for=\"%31[^\"]\"", id), 1);
    char want[64];
    snprintf(want, sizeof(want), "id=\"%s\"", id);
    assert_non_null(strstr(h, want));
    tc_response_free(&r);
    r = call(c, u, "GET", "/static/portal.css", NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "#consent-banner"));
    assert_null(strstr(r.body, ".card "));
    assert_non_null(strstr(r.body, "#0b3d6e")); /* a colour is not a selector */
    tc_response_free(&r);
    r = call(c, u, "GET", "/static/portal.js", NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "window.SANDBOX_MARKUP = 2;"));
    tc_response_free(&r);
    tc_free(c);
    sandbox_stop(sb);
}

PT_TESTS("sandbox_http", cmocka_unit_test(sign_in_with_totp),
         cmocka_unit_test(markup_2_changes_ids_classes_and_nesting),
         cmocka_unit_test(sms_code_is_resent_within_ten_minutes),
         cmocka_unit_test(quickstart_claim_is_accepted_and_logged),
         cmocka_unit_test(claim_validation_says_what_is_wrong),
         cmocka_unit_test(eligibility_outcomes), cmocka_unit_test(prior_authorization_outcomes),
         cmocka_unit_test(appeal_on_the_second_site),
         cmocka_unit_test(session_warning_then_sign_out),
         cmocka_unit_test(latency_applies_to_backend_calls),
         cmocka_unit_test(sandboxes_run_side_by_side),
         cmocka_unit_test(two_users_signins_and_sessions),
         cmocka_unit_test(expire_ends_one_users_sessions),
         cmocka_unit_test(expire_after_n_page_loads));
