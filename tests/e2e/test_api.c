/*
 * test_api.c - the task server end to end: `portier serve --demo` as a real
 * process, real HTTP on loopback, real Chromium, the sandbox portal, SQLite
 * files. Each case starts its own server in a folder of its own.
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testcurl.h"
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "tests/support/testserve.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char quickstart[] = TS_QUICKSTART;

/* The reference's fields, in its order, with their JSON types (and
 * trajectory_id where the webhook example has it), then the client's side:
 * type, question, review, outputs. */
static void assert_task_shape(const cJSON *t)
{
    static const char *const names[] = {
        "id",           "accountId",     "task_number", "status",      "handler",  "title",
        "instructions", "trajectory_id", "startedAt",   "completedAt", "failedAt", "notes",
        "createdAt",    "updatedAt",     "type",        "question",    "review",   "outputs"};
    const cJSON *c = t->child;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++, c = c ? c->next : NULL) {
        assert_non_null(c);
        assert_string_equal(c->string, names[i]);
        if (i < 3)
            assert_true(cJSON_IsNumber(c));
        else if (i == 7)
            assert_true(cJSON_IsNumber(c) || cJSON_IsNull(c));
        else if (i < 7 || i == 12 || i == 13 || i == 14)
            assert_true(cJSON_IsString(c));
        else if (i < 12)
            assert_true(cJSON_IsString(c) || cJSON_IsNull(c));
        else if (i < 17)
            assert_true(cJSON_IsObject(c) || cJSON_IsNull(c));
        else
            assert_true(cJSON_IsObject(c));
    }
    assert_null(c);
    const char *created = ts_str(t, "createdAt");
    /* 2025-03-18T12:00:00.000Z */
    assert_int_equal(strlen(created), 24);
    assert_true(created[10] == 'T' && created[19] == '.' && created[23] == 'Z');
}

/* How many tasks a listing returns (asserting it is a 200). */
static int list_count(const ts_server *s, const char *path)
{
    tc_response r = ts_api(s, s->key, "GET", path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cJSON *page = cJSON_Parse(r.body);
    tc_response_free(&r);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(page, "data"));
    cJSON_Delete(page);
    return n;
}

/* The reference quickstart's exact request: 200 with every field, then the
 * task completes on the sandbox and its webhook reaches the demo's sink. */
static void test_quickstart_json(void **state)
{
    (void)state;
    ts_server s;
    ts_start_demo(&s, "api-quickstart", NULL);
    cJSON *t = ts_post_json(&s, quickstart, 200);
    assert_task_shape(t);
    assert_string_equal(ts_str(t, "status"), "pending");
    assert_string_equal(ts_str(t, "type"), "submit_claim");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "trajectory_id")));
    assert_null(cJSON_GetObjectItem(t, "outputs")->child);
    assert_string_equal(ts_str(t, "handler"), "submit_claim_1");
    assert_string_equal(ts_str(t, "title"), "Submit claim #1");
    assert_int_equal(ts_num(t, "task_number"), 1);
    assert_string_equal(ts_str(t, "instructions"),
                        "SOP: Log in to portal, open claim form, enter member and procedure "
                        "details, submit and capture confirmation number.");
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    t = ts_wait_status(&s, id, "completed,completed_with_issues,failed", 90000);
    assert_string_equal(ts_str(t, "status"), "completed");
    assert_non_null(strstr(ts_str(t, "notes"), "CLM-"));
    assert_non_null(ts_str(t, "startedAt"));
    assert_non_null(ts_str(t, "completedAt"));
    assert_task_shape(t);
    assert_true(ts_num(t, "trajectory_id") >= 1);
    /* what the SOP extracted: the claim number, as in the notes */
    const char *claim = ts_str(cJSON_GetObjectItem(t, "outputs"), "reference");
    assert_non_null(claim);
    assert_non_null(strstr(ts_str(t, "notes"), claim));
    cJSON_Delete(t);

    /* the webhook went out once and the sink verified it */
    char path[64];
    snprintf(path, sizeof(path), "/tasks/%lld/deliveries", id);
    int64_t until = pt_mono_ms() + 10000;
    int delivered = 0;
    while (!delivered && pt_mono_ms() < until) {
        tc_response r = ts_api(&s, s.key, "GET", path, NULL, NULL, 0);
        delivered = r.body && strstr(r.body, "\"http_status\":200") != NULL;
        tc_response_free(&r);
        pt_sleep_ms(100);
    }
    assert_true(delivered);

    /* the trajectory: steps as JSON and a screenshot behind a URL */
    snprintf(path, sizeof(path), "/tasks/%lld/trajectory", id);
    tc_response r = ts_api(&s, s.key, "GET", path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cJSON *traj = cJSON_Parse(r.body);
    tc_response_free(&r);
    cJSON *steps = cJSON_GetObjectItem(traj, "steps");
    assert_true(cJSON_GetArraySize(steps) > 5);
    const char *shot = NULL;
    for (cJSON *st = steps->child; st && !shot; st = st->next)
        shot = ts_str(st, "screenshot_url");
    assert_non_null(shot);
    r = ts_api(&s, s.key, "GET", shot, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    /* trajectories keep JPEG pictures (a person reads them; PNG cost 5x) */
    assert_true(r.len > 8 && !memcmp(r.body, "\xff\xd8\xff", 3));
    char *ctype = tc_response_header(&r, "Content-Type");
    assert_non_null(ctype);
    assert_non_null(strstr(ctype, "image/jpeg"));
    free(ctype);
    tc_response_free(&r);
    cJSON_Delete(traj);

    /* the list, newest first, with a cursor */
    cJSON *t2 = ts_post_json(&s,
                             "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                             "dob: 1949-12-23\"}",
                             200);
    assert_string_equal(ts_str(t2, "title"), "Check eligibility #2");
    r = ts_api(&s, s.key, "GET", "/tasks?limit=1", NULL, NULL, 0);
    cJSON *page = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(page, "data")), 1);
    assert_int_equal(ts_num(cJSON_GetArrayItem(cJSON_GetObjectItem(page, "data"), 0), "id"),
                     ts_num(t2, "id"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(page, "has_more")));
    char next[96];
    snprintf(next, sizeof(next), "/tasks?limit=1&after=%lld", ts_num(page, "next_after"));
    cJSON_Delete(page);
    r = ts_api(&s, s.key, "GET", next, NULL, NULL, 0);
    page = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_int_equal(ts_num(cJSON_GetArrayItem(cJSON_GetObjectItem(page, "data"), 0), "id"), id);
    cJSON_Delete(page);
    r = ts_api(&s, s.key, "GET", "/tasks?status=completed&type=submit_claim", NULL, NULL, 0);
    page = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(page, "data")), 1);
    cJSON_Delete(page);
    /* a status list and a creation window */
    assert_int_equal(list_count(&s, "/tasks?status=completed,pending,dispatching,running"
                                    "&created_after=2020-01-01T00:00:00Z"),
                     2);
    assert_int_equal(list_count(&s, "/tasks?created_before=2020-01-01"), 0);
    assert_int_equal(list_count(&s, "/tasks?created_after=2999-01-01T00:00:00.000%2B02:00"), 0);
    assert_int_equal(list_count(&s, "/tasks?status=failed,waiting_for_input"), 0);
    cJSON_Delete(ts_wait_status(&s, ts_num(t2, "id"), "completed", 90000));
    cJSON_Delete(t2);

    r = ts_api(&s, NULL, "GET", "/metrics", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(ts_metric(r.body, "portier_tasks", "status=\"completed\",type=\"submit_claim\""), 1);
    assert_int_equal(ts_metric(r.body, "portier_task_duration_seconds_count", NULL), 2);
    assert_int_equal(ts_metric(r.body, "portier_queue_depth", NULL), 0);
    assert_int_equal(ts_metric(r.body, "portier_nodes", NULL), 1);
    assert_non_null(strstr(r.body, "portier_webhook_attempts_total"));
    tc_response_free(&r);
    r = ts_api(&s, NULL, "GET", "/healthz", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"status\":\"ok\""));
    tc_response_free(&r);
    ts_finish(&s);
}

/* The multipart variant, with a file the SOP uploads to the portal. */
static void test_multipart_with_file(void **state)
{
    (void)state;
    ts_server s;
    ts_start_demo(&s, "api-multipart", NULL);
    char pdfpath[4200], *pdf = NULL, *data = NULL;
    size_t pdflen = 0;
    pt_home_path("sops/sandbox/examples/submit_appeal/appeal-letter.pdf", pdfpath, sizeof(pdfpath));
    assert_int_equal(pt_read_file(pdfpath, 1u << 20, &pdf, &pdflen), 0);
    char dpath[4200];
    pt_home_path("sops/sandbox/examples/submit_appeal.txt", dpath, sizeof(dpath));
    assert_int_equal(pt_read_file(dpath, 1u << 20, &data, NULL), 0);
    const char *bd = "portierTestBoundary7MA4YWxkTrZu0gW";
    char *body = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&body, &blen);
    fprintf(f,
            "--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nsubmit_appeal\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n%s\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"files\"; "
            "filename=\"appeal-letter.pdf\"\r\nContent-Type: application/pdf\r\n\r\n",
            bd, bd, data, bd);
    fwrite(pdf, 1, pdflen, f);
    fprintf(f, "\r\n--%s--\r\n", bd);
    fclose(f);
    char ctype[128];
    snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", bd);
    tc_response r = ts_api(&s, s.key, "POST", "/tasks", ctype, body, blen);
    assert_int_equal(r.status, 200);
    cJSON *t = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_task_shape(t);
    assert_string_equal(ts_str(t, "handler"), "submit_appeal_1");
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    t = ts_wait_status(&s, id, "completed,completed_with_issues,failed", 90000);
    assert_string_equal(ts_str(t, "status"), "completed");
    cJSON_Delete(t);
    /* the portal received the file's bytes */
    char url[256];
    snprintf(url, sizeof(url), "%s/__sandbox/submissions", s.portal);
    tc_client *c = tc_new();
    r = tc_request(c, "GET", url, NULL, NULL, 0);
    tc_free(c);
    assert_non_null(strstr(r.body, "appeal-letter.pdf"));
    tc_response_free(&r);

    /* a truncated multipart body: 400 naming the byte offset */
    r = ts_api(&s, s.key, "POST", "/tasks", ctype, body, 120);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"malformed_multipart\""));
    assert_non_null(strstr(r.body, "byte"));
    tc_response_free(&r);

    /* a retry of the same multipart request with its Idempotency-Key is
     * the first task (the hash was taken of the enciphered spool, which
     * differs every time: every retry was a 422); one byte of the file
     * changed is a 422 */
    c = tc_new();
    char h[256];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", s.key);
    tc_header(c, h);
    tc_header(c, "Idempotency-Key: appeal-retry-1");
    snprintf(url, sizeof(url), "%s/tasks", s.base);
    long long ids[2];
    for (int i = 0; i < 2; i++) {
        r = tc_request(c, "POST", url, ctype, body, blen);
        if (r.status != 200)
            fail_msg("try %d: %ld %s", i + 1, r.status, r.body);
        t = cJSON_Parse(r.body);
        ids[i] = ts_num(t, "id");
        cJSON_Delete(t);
        tc_response_free(&r);
    }
    assert_int_equal(ids[0], ids[1]);
    body[blen - strlen(bd) - 10] ^= 1; /* a byte of the PDF */
    r = tc_request(c, "POST", url, ctype, body, blen);
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "idempotency_key_reused"));
    tc_response_free(&r);
    tc_free(c);
    cJSON_Delete(ts_wait_status(&s, ids[0], "completed,completed_with_issues,failed", 90000));
    free(body);
    free(pdf);
    free(data);
    ts_finish(&s);
}

static void expect_error(const ts_server *s, const char *key, const char *method, const char *path,
                         const char *ctype, const char *body, size_t len, long status,
                         const char *code, const char *in_message)
{
    tc_response r = ts_api(s, key, method, path, ctype, body, len);
    if (r.status != status)
        fprintf(stderr, "%s %s: %ld %s\n", method, path, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, status);
    cJSON *o = cJSON_Parse(r.body);
    assert_non_null(o);
    assert_string_equal(ts_str(o, "error"), code);
    assert_non_null(ts_str(o, "message"));
    if (in_message && !strstr(ts_str(o, "message"), in_message))
        fail_msg("message '%s' lacks '%s'", ts_str(o, "message"), in_message);
    cJSON_Delete(o);
    tc_response_free(&r);
}

static int count_tasks(const ts_server *s)
{
    tc_response r = ts_api(s, s->key, "GET", "/tasks?limit=100", NULL, NULL, 0);
    cJSON *page = cJSON_Parse(r.body);
    tc_response_free(&r);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(page, "data"));
    cJSON_Delete(page);
    return n;
}

/* The same Idempotency-Key with another body (another type, or the same
 * type with other data) is a 422 naming the first task, whatever its
 * status; with the same body, at the same time, every answer is the one
 * task or a 409, never a second task. */
static void idempotency_reuse(const ts_server *s, long long first)
{
    tc_client *c = tc_new();
    char h[256], url[256];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", s->key);
    tc_header(c, h);
    tc_header(c, "Idempotency-Key: claim-0001");
    snprintf(url, sizeof(url), "%s/tasks", s->base);
    const char *other[] = {"{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                           "dob: 1949-12-23\"}",
                           "{\"type\":\"submit_claim\",\"data\":\"member_id: 300059049\"}"};
    for (int i = 0; i < 2; i++) {
        tc_response r = tc_request(c, "POST", url, "application/json", other[i], strlen(other[i]));
        assert_int_equal(r.status, 422);
        cJSON *o = cJSON_Parse(r.body);
        assert_string_equal(ts_str(o, "error"), "idempotency_key_reused");
        char want[64];
        snprintf(want, sizeof(want), "task %lld", first);
        assert_non_null(strstr(ts_str(o, "message"), want));
        cJSON_Delete(o);
        tc_response_free(&r);
    }
    tc_free(c);
    int before = count_tasks(s);
    /* the queue is 1 deep here: let the first task end so that the burst
     * meets an empty queue (this checks idempotency, not the queue) */
    cJSON_Delete(ts_wait_status(s, first, "completed,completed_with_issues,failed", 90000));
    /* a burst with a fresh key: one task, the rest replays or 409s */
    char body_path[700], cmd[2048];
    snprintf(body_path, sizeof(body_path), "%s/burst.json", s->dir);
    pt_write_file(body_path, quickstart, strlen(quickstart), 0600);
    snprintf(cmd, sizeof(cmd),
             "for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%%{http_code}\\n' -X POST "
             "-H 'Authorization: Bearer %s' -H 'Idempotency-Key: burst-1' "
             "-H 'Content-Type: application/json' --data-binary @%s %s & done; wait",
             s->key, body_path, url);
    FILE *p = popen(cmd, "r");
    char line[32];
    int ok = 0, busy = 0, other_status = 0;
    while (p && fgets(line, sizeof(line), p))
        if (!strncmp(line, "200", 3))
            ok++;
        else if (!strncmp(line, "409", 3))
            busy++;
        else {
            fprintf(stderr, "burst: status %s", line);
            other_status++;
        }
    if (p)
        pclose(p);
    assert_int_equal(ok + busy, 6);
    assert_int_equal(other_status, 0);
    assert_true(ok >= 1);
    assert_int_equal(count_tasks(s), before + 1);
}

/* Every error code from a real request; the cross-account 404; an
 * idempotent retry. */
static void test_errors_and_idempotency(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--max-body", "65536",     "--max-file", "2048", "--max-queue",
                           "1",          "--workers", "1",          NULL};
    ts_start_demo(&s, "api-errors", extra);
    expect_error(&s, NULL, "POST", "/tasks", "application/json", quickstart, 0, 401, "unauthorized",
                 "Bearer");
    expect_error(&s, "pk_nope", "GET", "/tasks/1", NULL, NULL, 0, 401, "unauthorized", "not known");
    expect_error(&s, s.key, "POST", "/tasks", "application/json", "{\"type\": \"submit_claim\",", 0,
                 400, "malformed_json", "at byte ");
    expect_error(&s, s.key, "POST", "/tasks", "text/plain", "submit_claim", 0, 415,
                 "unsupported_media_type", NULL);
    expect_error(&s, s.key, "POST", "/tasks", "application/json", "{\"type\":\"fax_claim\"}", 0,
                 422, "unknown_type", "fax_claim");
    /* the data is checked against the SOP's inputs: every field and why */
    tc_response r =
        ts_api(&s, s.key, "POST", "/tasks", "application/json",
               "{\"type\":\"submit_claim\",\"data\":\"member_id: 12\\nDOB: someday\"}", 0);
    assert_int_equal(r.status, 422);
    cJSON *o = cJSON_Parse(r.body);
    assert_string_equal(ts_str(o, "error"), "invalid_data");
    cJSON *fields = cJSON_GetObjectItem(o, "fields");
    int saw_member = 0, saw_dob = 0, saw_patient = 0;
    for (cJSON *f = fields ? fields->child : NULL; f; f = f->next) {
        saw_member |= ts_str(f, "field") && !strcmp(ts_str(f, "field"), "member_id");
        saw_dob |= ts_str(f, "field") && !strcmp(ts_str(f, "field"), "dob");
        saw_patient |= ts_str(f, "field") && !strcmp(ts_str(f, "field"), "patient");
    }
    assert_true(saw_member && saw_dob && saw_patient);
    cJSON_Delete(o);
    tc_response_free(&r);
    /* a key no input takes is named, and its value is not repeated */
    r = ts_api(&s, s.key, "POST", "/tasks", "application/json",
               "{\"type\":\"submit_claim\",\"data\":\"member_id: 300059049\\npatient: Louise "
               "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: "
               "2025-03-25\\nicd10: Q77.7\"}",
               0);
    assert_int_equal(r.status, 422);
    o = cJSON_Parse(r.body);
    assert_string_equal(ts_str(o, "error"), "invalid_data");
    fields = cJSON_GetObjectItem(o, "fields");
    assert_int_equal(cJSON_GetArraySize(fields), 1);
    assert_string_equal(ts_str(cJSON_GetArrayItem(fields, 0), "field"), "icd10");
    assert_null(strstr(r.body, "Q77.7"));
    cJSON_Delete(o);
    tc_response_free(&r);
    /* over the body limit; over the per-file limit */
    char *big = malloc(70000);
    memset(big, 'x', 70000);
    expect_error(&s, s.key, "POST", "/tasks", "application/json", big, 70000, 413,
                 "payload_too_large", "65536");
    const char *mp = "--b\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nsubmit_appeal\r\n"
                     "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.pdf\"\r\n"
                     "\r\n";
    size_t mplen = strlen(mp);
    char *mpbig = malloc(mplen + 4000 + 10);
    memcpy(mpbig, mp, mplen);
    memset(mpbig + mplen, 'y', 4000);
    memcpy(mpbig + mplen + 4000, "\r\n--b--\r\n", 9);
    expect_error(&s, s.key, "POST", "/tasks", "multipart/form-data; boundary=b", mpbig,
                 mplen + 4009, 413, "payload_too_large", "per-file");
    free(mpbig);
    free(big);
    /* the appeal SOP needs a pdf (files required 1 pdf): checked before it
     * is queued, without a file, or with one of another type */
    const char *appeal =
        "{\"type\":\"submit_appeal\",\"data\":\"claim_reference: CLM-2025-000001\\n"
        "denial_reason: bundled\\nexplanation: x\"}";
    expect_error(&s, s.key, "POST", "/tasks", "application/json", appeal, 0, 422, "missing_files",
                 "at least 1 file (pdf)");
    const char *txt =
        "--b\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nsubmit_appeal\r\n"
        "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"letter.txt\"\r\n"
        "Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
    expect_error(&s, s.key, "POST", "/tasks", "multipart/form-data; boundary=b", txt, 0, 422,
                 "unsupported_file_type", "file 1 is not a type submit_appeal takes (pdf)");
    expect_error(&s, s.key, "GET", "/tasks/999", NULL, NULL, 0, 404, "not_found", NULL);
    expect_error(&s, s.key, "GET", "/tasks/abc", NULL, NULL, 0, 400, "invalid_id", "'abc'");
    expect_error(&s, s.key, "POST", "/tasks/12x/cancel", NULL, NULL, 0, 400, "invalid_id", NULL);
    expect_error(&s, s.key, "GET", "/tasks?created_after=2025-01-01&since=1", NULL, NULL, 0, 400,
                 "unknown_parameter", "'since'");
    expect_error(&s, s.key, "GET", "/tasks?status=pending&status=failed", NULL, NULL, 0, 400,
                 "repeated_parameter", "comma");
    expect_error(&s, s.key, "GET", "/tasks?limit=1&limit=2", NULL, NULL, 0, 400,
                 "repeated_parameter", "'limit'");
    expect_error(&s, s.key, "GET", "/tasks?status=pending,bogus", NULL, NULL, 0, 400,
                 "invalid_request", "'bogus'");
    expect_error(&s, s.key, "GET", "/tasks?created_after=yesterday", NULL, NULL, 0, 400,
                 "invalid_request", "ISO-8601");
    expect_error(&s, s.key, "GET", "/tasks?created_before=2025-01-01T10:00", NULL, NULL, 0, 400,
                 "invalid_request", "created_before");
    expect_error(&s, s.key, "DELETE", "/tasks", NULL, NULL, 0, 405, "method_not_allowed", NULL);

    /* Idempotency-Key: the same key returns the same task */
    tc_client *c = tc_new();
    char h[256], url[256];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", s.key);
    tc_header(c, h);
    tc_header(c, "Idempotency-Key: claim-0001");
    snprintf(url, sizeof(url), "%s/tasks", s.base);
    tc_response a = tc_request(c, "POST", url, "application/json", quickstart, strlen(quickstart));
    tc_response b = tc_request(c, "POST", url, "application/json", quickstart, strlen(quickstart));
    tc_free(c);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    cJSON *ta = cJSON_Parse(a.body), *tb = cJSON_Parse(b.body);
    assert_int_equal(ts_num(ta, "id"), ts_num(tb, "id"));
    char *replayed = tc_response_header(&b, "Idempotent-Replayed");
    assert_non_null(replayed);
    free(replayed);
    long long first = ts_num(ta, "id");
    cJSON_Delete(ta);
    cJSON_Delete(tb);
    tc_response_free(&a);
    tc_response_free(&b);

    /* input for a task that is not waiting: 409 */
    char path[96];
    snprintf(path, sizeof(path), "/tasks/%lld/input", first);
    expect_error(&s, s.key, "POST", path, "application/json", "{\"value\":\"1\"}", 0, 409,
                 "conflict", "not waiting_for_input");
    snprintf(path, sizeof(path), "/tasks/%lld/review", first);
    expect_error(&s, s.key, "POST", path, "application/json", "{\"decision\":\"approve\"}", 0, 409,
                 "conflict", "pending_review");

    /* one worker, a queue of one: posting fast, the queue fills (the
     * worker holds at most one task, so by the third post it is full) */
    long long queued[4];
    int nq = 0, full = 0;
    for (int i = 0; i < 4 && !full; i++) {
        r = ts_api(&s, s.key, "POST", "/tasks", "application/json", quickstart, 0);
        if (r.status == 429) {
            full = 1;
            assert_non_null(strstr(r.body, "\"queue_full\""));
            char *ra = tc_response_header(&r, "Retry-After");
            assert_non_null(ra);
            free(ra);
        } else {
            assert_int_equal(r.status, 200);
            cJSON *q = cJSON_Parse(r.body);
            queued[nq++] = ts_num(q, "id");
            cJSON_Delete(q);
        }
        tc_response_free(&r);
    }
    assert_true(full && nq <= 2);
    /* cancel the queued ones: failed, saying so */
    for (int i = 0; i < nq; i++) {
        snprintf(path, sizeof(path), "/tasks/%lld/cancel", queued[i]);
        r = ts_api(&s, s.key, "POST", path, NULL, NULL, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
        cJSON *t = ts_wait_status(&s, queued[i], "failed", 60000);
        assert_non_null(strstr(ts_str(t, "notes"), "Cancelled"));
        assert_non_null(ts_str(t, "failedAt"));
        cJSON_Delete(t);
        expect_error(&s, s.key, "POST", path, NULL, NULL, 0, 409, "conflict", NULL);
    }
    idempotency_reuse(&s, first);

    /* an account's input default overrides the SOP's, and is checked like
     * task data; set while the server keeps what it read of the type a
     * moment ago (the first request) */
    expect_error(&s, s.key, "POST", "/tasks", "application/json",
                 "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\"}", 0, 422,
                 "invalid_data", "dob");
    const char *setdef[] = {"account", "set-default", "demo", "provider_npi", "12345", NULL};
    assert_int_equal(ts_cli(&s, setdef, NULL, NULL), 0);
    expect_error(&s, s.key, "POST", "/tasks", "application/json",
                 "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                 "dob: 1949-12-23\"}",
                 0, 422, "invalid_data", "provider_npi");

    /* another account sees none of it */
    char *out = NULL;
    const char *create[] = {"account", "create", "other", NULL};
    assert_int_equal(ts_cli(&s, create, NULL, &out), 0);
    cJSON *acct = cJSON_Parse(out);
    free(out);
    const char *other = ts_str(acct, "api_key");
    assert_non_null(other);
    snprintf(path, sizeof(path), "/tasks/%lld", first);
    expect_error(&s, other, "GET", path, NULL, NULL, 0, 404, "not_found", NULL);
    snprintf(path, sizeof(path), "/tasks/%lld/cancel", first);
    expect_error(&s, other, "POST", path, NULL, NULL, 0, 404, "not_found", NULL);
    r = ts_api(&s, other, "GET", "/tasks", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"data\":[]"));
    tc_response_free(&r);
    /* it has no SOPs yet */
    expect_error(&s, other, "POST", "/tasks", "application/json", quickstart, 0, 422, "no_sop",
                 NULL);
    cJSON_Delete(acct);
    cJSON_Delete(ts_wait_status(&s, first, "completed,completed_with_issues,failed", 90000));
    ts_finish(&s);
}

static long long trajectory_id(ts_server *s, long long id)
{
    char path[96];
    snprintf(path, sizeof(path), "/tasks/%lld/trajectory", id);
    tc_response r = ts_api(s, s->key, "GET", path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cJSON *o = cJSON_Parse(r.body);
    long long t = ts_num(o, "trajectory_id");
    cJSON_Delete(o);
    tc_response_free(&r);
    return t;
}

static void send(ts_server *s, long long id, const char *what, const char *body, long want)
{
    char path[96];
    snprintf(path, sizeof(path), "/tasks/%lld/%s", id, what);
    tc_response r = ts_api(s, s->key, "POST", path, "application/json", body, 0);
    if (r.status != want)
        fprintf(stderr, "POST %s: %ld %s\n", path, r.status, r.body);
    assert_int_equal(r.status, want);
    tc_response_free(&r);
}

/* ask and review through the API, answered while the task holds its
 * browser context: it resumes where it stopped. */
static void test_ask_and_review_held(void **state)
{
    (void)state;
    ts_server s;
    ts_start_demo(&s, "api-ask", NULL);
    ts_install_ask_sop(&s);
    long long id = ts_post_ask_task(&s);
    cJSON *t = ts_wait_status(&s, id, "waiting_for_input", 90000);
    cJSON_Delete(t);
    send(&s, id, "input", "{\"value\":\"1234567893\"}", 200);
    t = ts_wait_status(&s, id, "pending_review", 90000);
    assert_non_null(strstr(ts_str(t, "notes"), "NPI 1234567893"));
    cJSON_Delete(t);
    send(&s, id, "review", "{\"decision\":\"approve\",\"comment\":\"looks right\"}", 200);
    t = ts_wait_status(&s, id, "completed,failed", 90000);
    assert_string_equal(ts_str(t, "status"), "completed");
    assert_non_null(strstr(ts_str(t, "notes"), "Checked: "));
    cJSON_Delete(t);
    /* one run, resumed in place: one trajectory */
    assert_int_equal(trajectory_id(&s, id), 1);

    /* a rejected review ends failed with the reviewer's comment */
    id = ts_post_ask_task(&s);
    cJSON_Delete(ts_wait_status(&s, id, "waiting_for_input", 90000));
    send(&s, id, "input", "{\"name\":\"npi\",\"value\":\"1234567893\"}", 200);
    cJSON_Delete(ts_wait_status(&s, id, "pending_review", 90000));
    send(&s, id, "review", "{\"decision\":\"reject\",\"comment\":\"wrong provider\"}", 200);
    t = ts_wait_status(&s, id, "failed", 30000);
    assert_non_null(strstr(ts_str(t, "notes"), "wrong provider"));
    cJSON_Delete(t);
    send(&s, id, "review", "{\"decision\":\"maybe\"}", 400);
    ts_finish(&s);
}

/* The same flow when the hold time runs out first: the worker is freed,
 * and the answer (then the approval) runs the task again from the start,
 * which is safe because it had not crossed commit. */
static void test_ask_and_review_after_hold(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--hold-seconds", "1", NULL};
    ts_start_demo(&s, "api-hold", extra);
    ts_install_ask_sop(&s);
    long long id = ts_post_ask_task(&s);
    cJSON_Delete(ts_wait_status(&s, id, "waiting_for_input", 90000));
    pt_sleep_ms(2500); /* past the hold */
    send(&s, id, "input", "{\"value\":\"1234567893\"}", 200);
    cJSON_Delete(ts_wait_status(&s, id, "pending_review", 90000));
    pt_sleep_ms(2500);
    send(&s, id, "review", "{\"decision\":\"approve\"}", 200);
    cJSON *t = ts_wait_status(&s, id, "completed,failed", 90000);
    assert_string_equal(ts_str(t, "status"), "completed");
    cJSON_Delete(t);
    /* three runs: the first, again after the answer, again after approval */
    assert_int_equal(trajectory_id(&s, id), 3);
    ts_finish(&s);
}

/* Sign-ins the sandbox has counted for the demo's portal user. */
static int signins(const ts_server *s)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/__sandbox/signins", s->portal);
    tc_client *c = tc_new();
    tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
    tc_free(c);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    int n = (int)ts_num(cJSON_GetObjectItem(o, "signins"), "portier.demo");
    cJSON_Delete(o);
    assert_true(n >= 0);
    return n;
}

/* The receiver's body of the newest `event` for task id (new), waiting
 * for it. */
static cJSON *webhook_of(const ts_receiver *rc, const char *event, long long id)
{
    int64_t until = pt_mono_ms() + 30000;
    for (;;) {
        cJSON *lines = ts_received(rc, "/ok", NULL), *found = NULL, *l;
        cJSON_ArrayForEach(l, lines)
        {
            cJSON *b = cJSON_GetObjectItem(l, "body");
            if (!strcmp(ts_str(b, "event"), event) &&
                ts_num(cJSON_GetObjectItem(b, "data"), "id") == id) {
                assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(l, "verifiedWith")), 1);
                cJSON_Delete(found);
                found = cJSON_Duplicate(b, 1);
            }
        }
        cJSON_Delete(lines);
        if (found)
            return found;
        if (pt_mono_ms() > until)
            fail_msg("no %s webhook for task %lld", event, id);
        pt_sleep_ms(200);
    }
}

static void assert_question(const cJSON *t)
{
    cJSON *q = cJSON_GetObjectItem(t, "question");
    assert_string_equal(ts_str(q, "name"), "npi");
    assert_string_equal(ts_str(q, "prompt"), "Which rendering NPI should be used?");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "review")));
}

/* Answers task id's question and approves its review; asserts it
 * completes with the plan in its outputs. */
static void answer_and_approve(ts_server *s, long long id)
{
    send(s, id, "input", "{\"value\":\"1234567893\"}", 200);
    cJSON *t = ts_wait_status(s, id, "pending_review", 90000);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "question")));
    assert_non_null(strstr(ts_str(cJSON_GetObjectItem(t, "review"), "prompt"), "NPI 1234567893"));
    cJSON_Delete(t);
    send(s, id, "review", "{\"decision\":\"approve\"}", 200);
    t = ts_wait_status(s, id, "completed,failed", 90000);
    assert_string_equal(ts_str(t, "status"), "completed");
    assert_non_null(ts_str(cJSON_GetObjectItem(t, "outputs"), "plan"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "review")));
    cJSON_Delete(t);
}

/* Waiting parks the task, not the worker. With one worker: an eligibility
 * check's webhook carries its copay in outputs; five tasks that ask stop
 * one after another (each shows its question over the API and in a
 * task_waiting webhook), and a claim completes while they wait; an answer
 * resumes its task where it stopped, without signing in again; after a
 * restart the rest are all still waiting, and run again when answered. */
static void test_waits_park(void **state)
{
    (void)state;
    char rdir[] = "/tmp/pt-recv-XXXXXX";
    assert_non_null(mkdtemp(rdir));
    ts_receiver rc;
    ts_receiver_start(&rc, rdir);
    char hook[128];
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/ok", rc.port);
    const char *extra[] = {"--workers", "1", "--webhook-url", hook, NULL};
    ts_server s;
    ts_start_demo(&s, "api-park", extra);
    ts_receiver_add_secret(&rc, s.whsec);
    const char *ev[] = {"account", "set-events", "demo", "task_finished,task_waiting", NULL};
    assert_int_equal(ts_cli(&s, ev, NULL, NULL), 0);

    cJSON *t = ts_post_json(&s,
                            "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                            "dob: 1949-12-23\"}",
                            200);
    long long elig = ts_num(t, "id");
    cJSON_Delete(t);
    cJSON_Delete(ts_wait_status(&s, elig, "completed", 90000));
    cJSON *w = webhook_of(&rc, "task_finished", elig);
    const char *copay =
        ts_str(cJSON_GetObjectItem(cJSON_GetObjectItem(w, "data"), "outputs"), "copay");
    assert_non_null(copay);
    assert_true(*copay);
    assert_non_null(strstr(ts_str(cJSON_GetObjectItem(w, "data"), "notes"), copay));
    cJSON_Delete(w);

    ts_install_ask_sop(&s);
    long long ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = ts_post_ask_task(&s);
        t = ts_wait_status(&s, ids[i], "waiting_for_input", 90000);
        assert_question(t);
        cJSON_Delete(t);
        w = webhook_of(&rc, "task_waiting", ids[i]);
        assert_question(cJSON_GetObjectItem(w, "data"));
        cJSON_Delete(w);
    }
    t = ts_post_json(&s, quickstart, 200);
    long long claim = ts_num(t, "id");
    cJSON_Delete(t);
    cJSON_Delete(ts_wait_status(&s, claim, "completed", 90000));
    for (int i = 0; i < 5; i++) {
        t = ts_get_task(&s, s.key, ids[i]);
        assert_string_equal(ts_str(t, "status"), "waiting_for_input");
        cJSON_Delete(t);
    }
    tc_response r = ts_api(&s, NULL, "GET", "/metrics", NULL, NULL, 0);
    assert_int_equal(ts_metric(r.body, "portier_parked_sessions", NULL), 5);
    tc_response_free(&r);

    /* resumed where it stopped: no sign-in, the same run (trajectory) */
    int before = signins(&s);
    long long traj = trajectory_id(&s, ids[0]);
    answer_and_approve(&s, ids[0]);
    assert_int_equal(signins(&s), before);
    assert_int_equal(trajectory_id(&s, ids[0]), traj);

    /* a restart loses none of the four still waiting */
    assert_int_equal(ts_stop(&s, 0), 0);
    const char *args[] = {"--demo", "--portal-listen", "127.0.0.1:0", "--workers",
                          "1",      "--webhook-url",   hook,          NULL};
    assert_int_equal(ts_start(&s, args, NULL), 0);
    for (int i = 1; i < 5; i++) {
        t = ts_get_task(&s, s.key, ids[i]);
        assert_string_equal(ts_str(t, "status"), "waiting_for_input");
        assert_question(t);
        cJSON_Delete(t);
    }
    answer_and_approve(&s, ids[1]);
    cJSON_Delete(webhook_of(&rc, "task_finished", ids[1]));
    ts_finish(&s);
    /* every body sent (task_finished, task_waiting) as the spec says */
    ts_check_webhook_bodies(&rc);
    ts_receiver_stop(&rc);
    pt_rmtree(rdir);
}

/* --max-parked 1: the second task to wait makes the first let its session
 * go. The first, answered, runs again from the start (a new trajectory);
 * the second resumes in place (the same one). */
static void test_max_parked(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--workers", "1", "--max-parked", "1", NULL};
    ts_start_demo(&s, "api-max-parked", extra);
    ts_install_ask_sop(&s);
    long long a = ts_post_ask_task(&s);
    cJSON_Delete(ts_wait_status(&s, a, "waiting_for_input", 90000));
    long long b = ts_post_ask_task(&s);
    cJSON_Delete(ts_wait_status(&s, b, "waiting_for_input", 90000));
    long long ta = trajectory_id(&s, a), tb = trajectory_id(&s, b);
    int parked = 0;
    for (int i = 0; i < 100 && !parked; i++) { /* the first one winds down */
        tc_response r = ts_api(&s, NULL, "GET", "/metrics", NULL, NULL, 0);
        parked = ts_metric(r.body, "portier_parked_sessions", NULL) == 1;
        tc_response_free(&r);
        if (!parked)
            pt_sleep_ms(100);
    }
    assert_true(parked);
    answer_and_approve(&s, b);
    assert_int_equal(trajectory_id(&s, b), tb);
    answer_and_approve(&s, a);
    assert_true(trajectory_id(&s, a) != ta);
    ts_finish(&s);
}

/* No PHI and no secret in the server's log, even at debug level. */
static void test_no_phi_in_logs(void **state)
{
    (void)state;
    ts_server s;
    ts_init(&s, "api-phi");
    const char *args[] = {"--demo", "--portal-listen", "127.0.0.1:0", NULL};
    const char *env[] = {"PORTIER_LOG=debug", NULL};
    assert_int_equal(ts_start(&s, args, env), 0);
    const char *body = "{\"type\":\"submit_claim\",\"data\":\"member_id: 412345678\\npatient: "
                       "Zorbulon Quaxmarker\\nDOB: 1961-07-19\\nplace_of_service: office\\n"
                       "service_date: 2025-04-02\\ndiagnosis: M54.5\\ncharge: 4321.77\"}";
    cJSON *t = ts_post_json(&s, body, 200);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    cJSON_Delete(ts_wait_status(&s, id, "completed,completed_with_issues,failed", 90000));
    /* an invalid request echoes nothing into the log either */
    tc_response r = ts_api(&s, s.key, "POST", "/tasks", "application/json",
                           "{\"type\":\"submit_claim\",\"data\":\"member_id: 98765XYZ1\"}", 0);
    tc_response_free(&r);
    pt_sleep_ms(500);
    assert_int_equal(ts_stop(&s, 0), 0);
    char *log = ts_log(&s);
    assert_true(strlen(log) > 200); /* debug lines were written */
    const char *markers[] = {"412345678",   "Zorbulon",     "Quaxmarker",
                             "1961-07-19",  "07/19/1961",   "4321.77",
                             "98765XYZ1",   "Sandbox!2025", "PORTIERSANDBOXSEEDTOTP",
                             s.key,         s.whsec,        s.whsec + 6,
                             "portier.demo"};
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
        if (strstr(log, markers[i]))
            fail_msg("the server log contains '%s'", markers[i]);
    free(log);
    assert_int_equal(tp_wait_none(s.dir, 5000), 0);
    ts_cleanup(&s);
}

/* Claims in the sandbox portal's submissions log for a service date
 * (YYYY-MM-DD; the portal may keep it as MM/DD/YYYY). */
static int portal_claims_on(const ts_server *s, const char *iso)
{
    char url[256], us[16];
    snprintf(url, sizeof(url), "%s/__sandbox/submissions", s->portal);
    snprintf(us, sizeof(us), "%.2s/%.2s/%.4s", iso + 5, iso + 8, iso);
    tc_client *c = tc_new();
    tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
    tc_free(c);
    cJSON *subs = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_true(cJSON_IsArray(subs));
    int n = 0;
    for (cJSON *x = subs->child; x; x = x->next) {
        const char *d = ts_str(cJSON_GetObjectItem(x, "fields"), "service_date");
        n += !strcmp(ts_str(x, "kind"), "claim") && d && (!strcmp(d, iso) || !strcmp(d, us));
    }
    cJSON_Delete(subs);
    return n;
}

/* kill -9 with 10 tasks queued or running, then a restart: every task
 * reaches a final or review state, and the portal has no duplicate. */
static void test_kill9_recovery(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--workers", "3", NULL};
    ts_start_demo(&s, "api-kill9", extra);
    long long ids[10];
    for (int i = 0; i < 10; i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"type\":\"submit_claim\",\"data\":\"member_id: 300059049\\npatient: Louise "
                 "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: "
                 "2025-03-%02d\"}",
                 i + 1);
        cJSON *t = ts_post_json(&s, body, 200);
        ids[i] = ts_num(t, "id");
        cJSON_Delete(t);
    }
    /* wait until some are done and some are mid-run */
    int64_t until = pt_mono_ms() + 120000;
    int done = 0;
    while (pt_mono_ms() < until && done < 2) {
        done = 0;
        for (int i = 0; i < 10; i++) {
            cJSON *t = ts_get_task(&s, s.key, ids[i]);
            done += t && !strcmp(ts_str(t, "status"), "completed");
            cJSON_Delete(t);
        }
        pt_sleep_ms(200);
    }
    assert_true(done >= 2);
    assert_int_equal(ts_stop(&s, 1), 128 + 9);
    assert_int_equal(tp_wait_none(s.dir, 5000), 0); /* Chromium died with it */
    char key[128], whsec[128];
    snprintf(key, sizeof(key), "%s", s.key);
    snprintf(whsec, sizeof(whsec), "%s", s.whsec);
    const char *args[] = {"--demo", "--portal-listen", "127.0.0.1:0", "--workers", "3", NULL};
    assert_int_equal(ts_start(&s, args, NULL), 0);
    /* the demo prints the same lines after a restart */
    assert_string_equal(s.key, key);
    assert_string_equal(s.whsec, whsec);
    int review = 0;
    for (int i = 0; i < 10; i++) {
        cJSON *t = ts_wait_status(&s, ids[i],
                                  "completed,completed_with_issues,failed,pending_review", 180000);
        review += !strcmp(ts_str(t, "status"), "pending_review");
        if (strcmp(ts_str(t, "status"), "completed") &&
            strcmp(ts_str(t, "status"), "pending_review"))
            fail_msg("task %lld ended %s: %s", ids[i], ts_str(t, "status"), ts_str(t, "notes"));
        cJSON_Delete(t);
    }
    /* each service date at most once in the portal's submissions */
    int total = 0;
    for (int i = 0; i < 10; i++) {
        char iso[16];
        snprintf(iso, sizeof(iso), "2025-03-%02d", i + 1);
        int n = portal_claims_on(&s, iso);
        if (n > 1)
            fail_msg("service date %s was submitted %d times", iso, n);
        total += n;
    }
    fprintf(stderr, "kill -9: %d claims in the portal, %d tasks in review\n", total, review);
    assert_true(total >= 10 - review);
    ts_finish(&s);
}

/* The write of committed=1 fails (a trigger in the real database refuses
 * it, as a full disk or a lock held past the timeout would): the run stops
 * at `commit`, the task fails saying so, and the portal never gets the
 * claim. Once the write works again, the same task data is submitted. */
static void test_commit_write_fails(void **state)
{
    (void)state;
    ts_server s;
    ts_start_demo(&s, "api-commitfail", NULL);
    assert_int_equal(ts_sql(&s,
                            "CREATE TRIGGER test_no_commit BEFORE UPDATE OF committed ON "
                            "tasks WHEN NEW.committed=1 BEGIN SELECT RAISE(FAIL, "
                            "'database or disk is full'); END;",
                            "CREATE FUNCTION test_no_commit() RETURNS trigger AS $$ BEGIN "
                            "RAISE EXCEPTION 'could not extend file: No space left on device'; "
                            "END $$ LANGUAGE plpgsql; CREATE TRIGGER test_no_commit BEFORE "
                            "UPDATE OF committed ON tasks FOR EACH ROW WHEN (NEW.committed=1) "
                            "EXECUTE FUNCTION test_no_commit()"),
                     0);
    cJSON *t = ts_post_json(&s, quickstart, 200);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    t = ts_wait_status(&s, id, "completed,completed_with_issues,failed,pending_review", 90000);
    assert_string_equal(ts_str(t, "status"), "failed");
    const char *notes = ts_str(t, "notes");
    assert_non_null(strstr(notes, "commit point could not be recorded"));
    assert_non_null(strstr(notes, "nothing was submitted"));
    cJSON_Delete(t);
    assert_int_equal(portal_claims_on(&s, "2025-03-25"), 0);

    assert_int_equal(
        ts_sql(&s, "DROP TRIGGER test_no_commit", "DROP TRIGGER test_no_commit ON tasks"), 0);
    t = ts_post_json(&s, quickstart, 200);
    cJSON *done =
        ts_wait_status(&s, ts_num(t, "id"), "completed,completed_with_issues,failed", 90000);
    assert_string_equal(ts_str(done, "status"), "completed");
    cJSON_Delete(done);
    cJSON_Delete(t);
    assert_int_equal(portal_claims_on(&s, "2025-03-25"), 1);
    ts_finish(&s);
}

/* The pids of the test server's browsers (main processes), up to cap. */
static int browser_pids(const ts_server *s, int *pids, int cap)
{
    char cmd[900];
    snprintf(cmd, sizeof(cmd),
             "pgrep -f -- '--[r]emote-debugging-pipe --user-data-dir=%s/portier-chromium'", s->dir);
    FILE *f = popen(cmd, "r");
    int n = 0;
    while (f && n < cap && fscanf(f, "%d", &pids[n]) == 1)
        n++;
    if (f)
        pclose(f);
    return n;
}

/* The task's committed flag, read from the database as it is now. */
static int committed_in_db(const ts_server *s, long long id)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT committed FROM tasks WHERE id=%lld", id);
    return (int)ts_sql_int(s, sql);
}

/* Freezes every browser of the server that is running a task (SIGSTOP to
 * its group), so a run cannot move on while the test looks; the count. */
static int freeze_browsers(const ts_server *s, int *pids, int cap)
{
    int n = 0;
    for (int i = 0; i < 200 && n < cap; i++, pt_sleep_ms(50))
        n = browser_pids(s, pids, cap);
    for (int i = 0; i < n; i++)
        kill(-pids[i], SIGSTOP);
    return n;
}

/* Two restarts (kill -9 of portier) while the task runs, before its commit
 * point: the task runs a third time, completes, says so in its notes, and
 * the portal has the claim once. */
static void test_restarts_before_commit_retry(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--workers", "1", NULL};
    ts_start_demo(&s, "api-retry", extra);
    cJSON *t = ts_post_json(&s, quickstart, 200);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    for (int round = 0; round < 2; round++) {
        cJSON_Delete(ts_wait_status(&s, id, "running", 60000));
        int pid = 0;
        assert_int_equal(freeze_browsers(&s, &pid, 1), 1);
        if (committed_in_db(&s, id) != 0)
            fail_msg("the run crossed commit before the test could stop it");
        assert_int_equal(ts_stop(&s, 1), 128 + 9);
        assert_int_equal(tp_wait_none(s.dir, 5000), 0); /* Chromium died with it */
        const char *args[] = {"--demo", "--portal-listen", "127.0.0.1:0", "--workers", "1", NULL};
        assert_int_equal(ts_start(&s, args, NULL), 0);
    }
    t = ts_wait_status(&s, id, "completed,completed_with_issues,failed,pending_review", 120000);
    assert_string_equal(ts_str(t, "status"), "completed");
    const char *notes = ts_str(t, "notes");
    print_message("notes: %s\n", notes);
    assert_non_null(strstr(notes, "attempt 3 of 3"));
    assert_non_null(strstr(notes, "attempt 1: Portier stopped; attempt 2: Portier stopped"));
    cJSON_Delete(t);
    assert_int_equal(portal_claims_on(&s, "2025-03-25"), 1);
    ts_finish(&s);
}

/* Two tasks on two browsers (--browsers 2): when one browser crashes, only
 * the task in it is interrupted (and runs again); the other completes on
 * its first attempt, and the other browser lives on. */
static void test_crash_interrupts_one_browser(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--workers", "2", "--browsers", "2", "--session-max-age", "0", NULL};
    ts_start_demo(&s, "api-twobrowsers", extra);
    long long ids[2];
    const char *dates[2] = {"2025-04-11", "2025-04-12"};
    for (int i = 0; i < 2; i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"type\":\"submit_claim\",\"data\":\"member_id: 300059049\\npatient: Louise "
                 "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: %s\"}",
                 dates[i]);
        cJSON *t = ts_post_json(&s, body, 200);
        ids[i] = ts_num(t, "id");
        cJSON_Delete(t);
    }
    for (int i = 0; i < 2; i++)
        cJSON_Delete(ts_wait_status(&s, ids[i], "running", 60000));
    int pids[4];
    int n = 0;
    for (int i = 0; i < 200 && n < 2; i++, pt_sleep_ms(50))
        n = browser_pids(&s, pids, 4);
    assert_int_equal(n, 2);
    assert_int_equal(freeze_browsers(&s, pids, 2), 2);
    for (int i = 0; i < 2; i++)
        if (committed_in_db(&s, ids[i]) != 0)
            fail_msg("a run crossed commit before the test could stop it");
    assert_int_equal(kill(-pids[0], SIGKILL), 0);
    kill(-pids[1], SIGCONT);
    int interrupted = 0, first_try = 0;
    for (int i = 0; i < 2; i++) {
        cJSON *t = ts_wait_status(&s, ids[i],
                                  "completed,completed_with_issues,failed,pending_review", 120000);
        const char *notes = ts_str(t, "notes");
        if (strcmp(ts_str(t, "status"), "completed"))
            fail_msg("task %lld ended %s: %s", ids[i], ts_str(t, "status"), notes);
        interrupted += strstr(notes, "attempt 1: The browser crashed") != NULL;
        first_try += strstr(notes, "attempt 2 of 3") == NULL;
        cJSON_Delete(t);
        assert_int_equal(portal_claims_on(&s, dates[i]), 1);
    }
    print_message("interrupted: %d, on the first attempt: %d\n", interrupted, first_try);
    assert_int_equal(interrupted, 1);
    assert_int_equal(first_try, 1);
    assert_int_equal(kill(pids[1], 0), 0); /* the other browser still runs */
    tc_response r = ts_api(&s, NULL, "GET", "/metrics", NULL, NULL, 0);
    if (ts_metric(r.body, "portier_browser_launches_total", NULL) != 3)
        fail_msg("%s", strstr(r.body, "portier_browser_launches_total"));
    tc_response_free(&r);
    ts_finish(&s);
}

/* Chromium dies under a running task: the browser is relaunched, the task
 * runs again if it had not crossed commit (else it waits in review), and
 * the next task runs on the new browser. */
static void test_browser_crash_relaunch(void **state)
{
    (void)state;
    ts_server s;
    const char *extra[] = {"--workers", "1", NULL};
    ts_start_demo(&s, "api-crash", extra);
    cJSON *t = ts_post_json(&s, quickstart, 200);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    cJSON_Delete(ts_wait_status(&s, id, "running", 60000));
    int pid = 0;
    for (int i = 0; i < 100 && !browser_pids(&s, &pid, 1); i++)
        pt_sleep_ms(50);
    assert_true(pid > 0);
    assert_int_equal(kill(-pid, SIGKILL) == 0 || kill(pid, SIGKILL) == 0, 1);
    t = ts_wait_status(&s, id, "completed,completed_with_issues,failed,pending_review", 120000);
    const char *st = ts_str(t, "status");
    if (!strcmp(st, "pending_review"))
        assert_non_null(strstr(ts_str(t, "notes"), "may already have the submission"));
    else
        assert_string_equal(st, "completed"); /* it ran again on a new browser */
    cJSON_Delete(t);
    /* a new browser serves the next task */
    t = ts_post_json(&s,
                     "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                     "dob: 1949-12-23\"}",
                     200);
    cJSON *done =
        ts_wait_status(&s, ts_num(t, "id"), "completed,completed_with_issues,failed", 90000);
    assert_string_equal(ts_str(done, "status"), "completed");
    cJSON_Delete(done);
    cJSON_Delete(t);
    tc_response r = ts_api(&s, NULL, "GET", "/metrics", NULL, NULL, 0);
    if (ts_metric(r.body, "portier_browser_launches_total", NULL) != 2)
        fail_msg("%s", strstr(r.body, "portier_browser_launches_total"));
    tc_response_free(&r);
    ts_finish(&s);
}

/* A database from a newer portier is refused, with a clear message. */
static void test_newer_schema_refused(void **state)
{
    (void)state;
    ts_server s;
    ts_init(&s, "api-schema");
    assert_int_equal(ts_sql(&s, "PRAGMA user_version=99",
                            "CREATE TABLE portier_schema(version INTEGER NOT NULL);"
                            "INSERT INTO portier_schema VALUES(99)"),
                     0);
    assert_int_not_equal(ts_start(&s, NULL, NULL), 0);
    char *log = ts_log(&s);
    assert_non_null(strstr(log, "newer than this portier knows"));
    free(log);
    ts_cleanup(&s);
}

PT_TESTS("api", cmocka_unit_test(test_quickstart_json), cmocka_unit_test(test_multipart_with_file),
         cmocka_unit_test(test_errors_and_idempotency), cmocka_unit_test(test_ask_and_review_held),
         cmocka_unit_test(test_ask_and_review_after_hold), cmocka_unit_test(test_waits_park),
         cmocka_unit_test(test_max_parked), cmocka_unit_test(test_no_phi_in_logs),
         cmocka_unit_test(test_kill9_recovery), cmocka_unit_test(test_browser_crash_relaunch),
         cmocka_unit_test(test_commit_write_fails),
         cmocka_unit_test(test_restarts_before_commit_retry),
         cmocka_unit_test(test_crash_interrupts_one_browser),
         cmocka_unit_test(test_newer_schema_refused));
