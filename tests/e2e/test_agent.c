/*
 * test_agent.c - `portier run` with the bundled SOPs against the sandbox
 * portal, in real Chromium, as a user runs it: the binary, its stdout,
 * stderr and exit code, and what the portal received.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testcurl.h"
#include "tests/support/testhttp.h"
#include "tests/support/testproc.h"
#include "agent/agent.h"

#include <pthread.h>
#include "portals/sandbox/sandbox.h"
#include "util/crypto.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <strings.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct result {
    int status;
    char *out, *err;
    cJSON *json;
} result;

static sandbox *portal(sandbox_mfa mfa, int warn_after)
{
    sandbox_options o = {
        .mfa = mfa, .session_warning_after = warn_after, .session_warning_seconds = 120};
    sandbox *sb = NULL;
    char err[512];
    if (sandbox_start(&o, &sb, err))
        fail_msg("sandbox: %s", err);
    return sb;
}

static void home_path(const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", pt_home(), rel);
}

/* portier run SOP --data DATA --portal URL --secrets ... [extra...] */
static result run_sop_at(const char *url, const char *sop_file, const char *data,
                         const char *const *extra);
static result run_sop(sandbox *sb, const char *sop_file, const char *data, const char *const *extra)
{
    return run_sop_at(sandbox_url(sb), sop_file, data, extra);
}

static result run_sop_at(const char *url, const char *sop_file, const char *data,
                         const char *const *extra)
{
    char sop_path[4096], data_path[4096], secrets[4096];
    if (sop_file[0] == '/')
        snprintf(sop_path, sizeof(sop_path), "%s", sop_file);
    else
        home_path(sop_file, sop_path, sizeof(sop_path));
    if (data[0] == '/')
        snprintf(data_path, sizeof(data_path), "%s", data);
    else
        home_path(data, data_path, sizeof(data_path));
    home_path("sops/sandbox/sandbox.secrets", secrets, sizeof(secrets));
    char *argv[40];
    int n = 0;
    argv[n++] = getenv("PORTIER_BIN");
    argv[n++] = "run";
    argv[n++] = sop_path;
    argv[n++] = "--data";
    argv[n++] = data_path;
    argv[n++] = "--portal";
    argv[n++] = (char *)url;
    argv[n++] = "--secrets";
    argv[n++] = secrets;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    if (!argv[0])
        fail_msg("PORTIER_BIN is not set (ctest sets it)");
    char *env[] = {"PORTIER_LOG=debug", NULL};
    result r = {0};
    r.status = tp_run(argv, env, &r.out, &r.err, 0);
    r.json = cJSON_Parse(r.out);
    return r;
}

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
    cJSON_Delete(r->json);
}

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void expect_status(result *r, int code, const char *status)
{
    if (r->status != code || !r->json || strcmp(field(r->json, "status"), status) != 0)
        fail_msg("exit %d, want %d (%s)\nstdout: %s\nstderr: %s", r->status, code, status, r->out,
                 r->err);
}

static cJSON *submissions(sandbox *sb)
{
    tc_client *c = tc_new();
    char url[256];
    snprintf(url, sizeof(url), "%s/__sandbox/submissions", sandbox_url(sb));
    tc_response resp = tc_request(c, "GET", url, NULL, NULL, 0);
    cJSON *j = cJSON_Parse(resp.body);
    tc_response_free(&resp);
    tc_free(c);
    return j;
}

/* The one submission of kind; fails if there is not exactly one. */
static cJSON *only(cJSON *log, const char *kind)
{
    cJSON *found = NULL, *it;
    int n = 0;
    cJSON_ArrayForEach(it, log) if (!strcmp(field(it, "kind"), kind))
    {
        found = it;
        n++;
    }
    if (n != 1) {
        char *t = cJSON_PrintUnformatted(log);
        fail_msg("want one %s submission, got %d: %s", kind, n, t);
    }
    return found;
}

static void assert_fields(const cJSON *sub, const char *const *kv)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(sub, "fields");
    for (int i = 0; kv[i]; i += 2) {
        const char *got = field(fields, kv[i]);
        if (!got || strcmp(got, kv[i + 1]) != 0)
            fail_msg("field %s: got \"%s\", want \"%s\"", kv[i], got ? got : "(none)", kv[i + 1]);
    }
}

static void sha_of(const char *rel, char out[65])
{
    char path[4096], *data = NULL;
    size_t len = 0;
    home_path(rel, path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1 << 20, &data, &len), 0);
    pt_sha256_hex(data, len, out);
    free(data);
}

static void claim_completes_with_exactly_the_task_data(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    result r = run_sop(sb, "sops/sandbox/submit_claim.sop",
                       "sops/sandbox/examples/submit_claim.txt", NULL);
    expect_status(&r, 0, "completed");
    const char *ref = field(cJSON_GetObjectItem(r.json, "outputs"), "reference");
    assert_non_null(ref);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "committed")));
    cJSON *log = submissions(sb);
    cJSON *claim = only(log, "claim");
    assert_int_equal(cJSON_GetArraySize(log), 1); /* nothing else, no duplicate */
    assert_fields(claim, (const char *const[]){"member_id", "300059049", "patient_name",
                                               "Louise Golicic", "dob", "1949-12-23",
                                               "place_of_service", "12", "service_date",
                                               "03/25/2025", "payer", "Sandbox Health PPO", NULL});
    assert_string_equal(field(cJSON_GetObjectItem(claim, "outcome"), "reference"), ref);
    char want[256];
    snprintf(want, sizeof(want), "Claim successfully submitted with reference %s.", ref);
    assert_string_equal(field(r.json, "notes"), want);
    cJSON_Delete(log);
    result_free(&r);
    sandbox_stop(sb);
}

static void eligibility_outcomes(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    result r = run_sop(sb, "sops/sandbox/check_eligibility.sop",
                       "sops/sandbox/examples/check_eligibility.txt", NULL);
    expect_status(&r, 0, "completed");
    assert_non_null(strstr(field(r.json, "notes"), "Sandbox Health PPO Gold"));
    assert_string_equal(field(cJSON_GetObjectItem(r.json, "outputs"), "copay"), "$25.00");
    result_free(&r);
    /* inactive coverage: completed with issues */
    r = run_sop(sb, "sops/sandbox/check_eligibility.sop",
                "sops/sandbox/examples/check_eligibility-inactive.txt", NULL);
    expect_status(&r, 10, "completed_with_issues");
    assert_non_null(strstr(field(r.json, "notes"), "Coverage terminated 12/31/2024"));
    result_free(&r);
    /* no such member: failed, with the portal's words */
    r = run_sop(sb, "sops/sandbox/check_eligibility.sop",
                "sops/sandbox/examples/check_eligibility-not-found.txt", NULL);
    expect_status(&r, 11, "failed");
    assert_non_null(
        strstr(field(r.json, "notes"), "No member found with that member ID and date of birth."));
    result_free(&r);
    cJSON *log = submissions(sb);
    assert_int_equal(cJSON_GetArraySize(log), 2); /* the failed lookup was not accepted */
    assert_fields(cJSON_GetArrayItem(log, 0),
                  (const char *const[]){"member_id", "300059049", "dob", "12/23/1949", NULL});
    cJSON_Delete(log);
    sandbox_stop(sb);
}

static void prior_authorization_approved_and_pended(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char pdf[4096];
    home_path("sops/sandbox/examples/submit_prior_authorization/clinical-notes.pdf", pdf,
              sizeof(pdf));
    const char *extra[] = {"--file", pdf, NULL};
    result r = run_sop(sb, "sops/sandbox/submit_prior_authorization.sop",
                       "sops/sandbox/examples/submit_prior_authorization.txt", extra);
    expect_status(&r, 0, "completed");
    assert_non_null(strstr(field(r.json, "notes"), "Approved with authorization number AUTH-"));
    result_free(&r);
    r = run_sop(sb, "sops/sandbox/submit_prior_authorization.sop",
                "sops/sandbox/examples/submit_prior_authorization-pended.txt", extra);
    expect_status(&r, 10, "completed_with_issues");
    assert_non_null(
        strstr(field(r.json, "notes"), "Pended for clinical review. Case number CASE-"));
    result_free(&r);
    cJSON *log = submissions(sb);
    assert_int_equal(cJSON_GetArraySize(log), 2);
    cJSON *first = cJSON_GetArrayItem(log, 0);
    assert_fields(first, (const char *const[]){
                             "member_id", "412345678", "dob", "1990-01-15", "cpt", "97110", "units",
                             "12", "diagnosis", "M17.11", "from_date", "2025-04-01", "to_date",
                             "2025-05-30", "urgency", "routine", "clinical_notes",
                             "Right knee osteoarthritis; 12 sessions of therapeutic exercise "
                             "requested.",
                             NULL});
    char sha[65];
    sha_of("sops/sandbox/examples/submit_prior_authorization/clinical-notes.pdf", sha);
    cJSON *att = cJSON_GetArrayItem(cJSON_GetObjectItem(first, "attachments"), 0);
    assert_string_equal(field(att, "name"), "clinical-notes.pdf");
    assert_string_equal(field(att, "sha256"), sha);
    assert_fields(cJSON_GetArrayItem(log, 1), (const char *const[]){"urgency", "urgent", NULL});
    cJSON_Delete(log);
    sandbox_stop(sb);
}

static void appeal_in_the_cross_site_frame(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char pdf[4096];
    home_path("sops/sandbox/examples/submit_appeal/appeal-letter.pdf", pdf, sizeof(pdf));
    const char *extra[] = {"--file", pdf, NULL};
    result r = run_sop(sb, "sops/sandbox/submit_appeal.sop",
                       "sops/sandbox/examples/submit_appeal.txt", extra);
    expect_status(&r, 0, "completed");
    assert_non_null(strstr(field(r.json, "notes"), "Appeal submitted with tracking ID APL-"));
    cJSON *log = submissions(sb);
    cJSON *a = only(log, "appeal");
    assert_fields(
        a, (const char *const[]){"claim_reference", "CLM-2025-000123", "denial_reason", "CO-50",
                                 "remedy", "reconsideration", "explanation",
                                 "The therapy was medically necessary after six weeks of failed "
                                 "conservative care; see the attached letter.",
                                 NULL});
    char sha[65];
    sha_of("sops/sandbox/examples/submit_appeal/appeal-letter.pdf", sha);
    assert_string_equal(
        field(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "attachments"), 0), "sha256"), sha);
    cJSON_Delete(log);
    result_free(&r);
    sandbox_stop(sb);
}

/* What the trajectory shows an author: frames by their `in frame`
 * locator, values (secrets masked), extracted values, the branch an `if`
 * took, the gap before each step. */
static void check_trajectory_display(const char *text)
{
    cJSON *t = cJSON_Parse(text);
    assert_non_null(t);
    int in_frame = 0, branches = 0, extracted = 0, gaps = 0, n = 0, member = 0, password = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(t, "steps"))
    {
        const char *frame = field(s, "frame"), *action = field(s, "action");
        const char *value = cJSON_GetStringValue(cJSON_GetObjectItem(s, "value"));
        assert_non_null(frame);
        in_frame += !strcmp(frame, "\"#app-frame\"");
        if (strcmp(frame, "top") && strcmp(frame, "\"#app-frame\""))
            fail_msg("a frame shown as %s", frame);
        branches += cJSON_IsBool(cJSON_GetObjectItem(s, "taken"));
        extracted += cJSON_GetObjectItem(cJSON_GetObjectItem(s, "extracted"), "reference") != NULL;
        gaps += cJSON_IsNumber(cJSON_GetObjectItem(s, "gap_ms"));
        n++;
        if (strstr(action, "label \"Member ID\"") && value)
            member += !strcmp(value, "300059049");
        if (strstr(action, "label \"Password\"") && value)
            password += !strcmp(value, "***");
    }
    assert_true(in_frame > 0);
    assert_true(branches >= 4);
    assert_int_equal(extracted, 1);
    assert_int_equal(gaps, n - 1);
    assert_int_equal(member, 1);
    assert_int_equal(password, 1);
    cJSON_Delete(t);
}

static void session_warning_mid_form_is_handled(void **state)
{
    (void)state;
    /* home is page view 1, the claims app view 2: the warning comes up over
     * the form while the agent fills it */
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 2);
    char *dir = pt_mkdtemp("portier-traj");
    char traj[4200];
    snprintf(traj, sizeof(traj), "%s/t", dir);
    const char *extra[] = {"--trajectory", traj, NULL};
    result r = run_sop(sb, "sops/sandbox/submit_claim.sop",
                       "sops/sandbox/examples/submit_claim.txt", extra);
    expect_status(&r, 0, "completed");
    char path[4300], *text = NULL;
    snprintf(path, sizeof(path), "%s/trajectory.json", traj);
    assert_int_equal(pt_read_file(path, 8 << 20, &text, NULL), 0);
    /* the handler ran: its click is in the trajectory, marked as one */
    assert_non_null(strstr(text, "click button \\\"Stay signed in\\\""));
    assert_non_null(strstr(text, "\"handler\":"));
    check_trajectory_display(text);
    free(text);
    cJSON *log = submissions(sb);
    only(log, "claim");
    cJSON_Delete(log);
    result_free(&r);
    pt_rmtree(dir);
    free(dir);
    sandbox_stop(sb);
}

static void sms_code_stops_then_resumes(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_SMS, 0);
    result r = run_sop(sb, "sops/sandbox/submit_claim.sop",
                       "sops/sandbox/examples/submit_claim.txt", NULL);
    expect_status(&r, 12, "waiting_for_input");
    assert_string_equal(field(r.json, "ask"), "sms_code");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "committed")));
    result_free(&r);
    tc_client *c = tc_new();
    char url[256], answer[64];
    snprintf(url, sizeof(url), "%s/__sandbox/sms?user=" SANDBOX_USER, sandbox_url(sb));
    tc_response resp = tc_request(c, "GET", url, NULL, NULL, 0);
    cJSON *sms = cJSON_Parse(resp.body);
    snprintf(answer, sizeof(answer), "sms_code=%s", field(sms, "code"));
    cJSON_Delete(sms);
    tc_response_free(&resp);
    tc_free(c);
    const char *extra[] = {"--input", answer, NULL};
    r = run_sop(sb, "sops/sandbox/submit_claim.sop", "sops/sandbox/examples/submit_claim.txt",
                extra);
    expect_status(&r, 0, "completed");
    result_free(&r);
    cJSON *log = submissions(sb);
    only(log, "claim");
    cJSON_Delete(log);
    sandbox_stop(sb);
}

static void missing_element_fails_with_its_line(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char *dir = pt_mkdtemp("portier-sop");
    char login[4096], *text = NULL, path[4200];
    home_path("sops/sandbox/login.sop", login, sizeof(login));
    assert_int_equal(pt_read_file(login, 1 << 20, &text, NULL), 0);
    snprintf(path, sizeof(path), "%s/login.sop", dir);
    pt_write_file(path, text, strlen(text), 0600);
    free(text);
    const char *text_of_sop = "sop broken \"Broken\"\nsummary \"A button that is not there\"\n"
                              "input member_id required\nuse login\n"
                              "click link \"Claims\"\n"
                              "click button \"Submit everything\" timeout 2s\n"
                              "finish completed \"{{member_id}}\"\n";
    char data[4200];
    snprintf(data, sizeof(data), "%s/data.txt", dir); /* only the keys the SOP takes */
    pt_write_file(data, "member_id: 300059049\n", 21, 0600);
    snprintf(path, sizeof(path), "%s/broken.sop", dir);
    pt_write_file(path, text_of_sop, strlen(text_of_sop), 0600);
    result r = run_sop(sb, path, data, NULL);
    expect_status(&r, 11, "failed");
    const char *want = "broken.sop:6: click button \"Submit everything\" timeout 2s: button "
                       "\"Submit everything\": no element matches button \"Submit everything\" "
                       "for 2 s";
    if (strncmp(field(r.json, "notes"), want, strlen(want)))
        fail_msg("notes: %s", field(r.json, "notes"));
    result_free(&r);
    pt_rmtree(dir);
    free(dir);
    sandbox_stop(sb);
}

static int file_contains(const char *path, const char *needle)
{
    char *text = NULL;
    size_t len = 0;
    if (pt_read_file(path, 64 << 20, &text, &len) < 0)
        return 0;
    int hit = memmem(text, len, needle, strlen(needle)) != NULL;
    free(text);
    return hit;
}

static void no_secret_or_phi_leaks(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char *dir = pt_mkdtemp("portier-traj");
    char traj[4200];
    snprintf(traj, sizeof(traj), "%s/t", dir);
    const char *extra[] = {"--trajectory", traj, NULL};
    result r = run_sop(sb, "sops/sandbox/submit_claim.sop",
                       "sops/sandbox/examples/submit_claim.txt", extra);
    expect_status(&r, 0, "completed");
    /* the codes of the minutes around the run */
    char codes[5][7];
    int64_t now = pt_wall_ms() / 1000;
    for (int i = 0; i < 5; i++)
        pt_totp(SANDBOX_TOTP_SEED, now + (i - 3) * 30, codes[i]);
    const char *secrets[] = {SANDBOX_PASSWORD, SANDBOX_TOTP_SEED, codes[0], codes[1],
                             codes[2],         codes[3],          codes[4]};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        assert_null(strstr(r.out, secrets[i]));
        assert_null(strstr(r.err, secrets[i]));
    }
    /* PHI stays out of the log (stderr, at debug level) */
    assert_null(strstr(r.err, "300059049"));
    assert_null(strstr(r.err, "Golicic"));
    assert_null(strstr(r.err, "1949"));
    DIR *d = opendir(traj);
    struct dirent *e;
    int files = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".png") || strstr(e->d_name, ".jpg"))
            continue;
        char p[4500];
        snprintf(p, sizeof(p), "%s/%s", traj, e->d_name);
        files++;
        for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
            if (file_contains(p, secrets[i]))
                fail_msg("%s holds a secret", e->d_name);
    }
    if (d)
        closedir(d);
    assert_true(files >= 2); /* trajectory.json and .html */
    /* the HTML is one file: its screenshots are inside it */
    char html[4300];
    snprintf(html, sizeof(html), "%s/trajectory.html", traj);
    assert_true(file_contains(html, "data:image/jpeg;base64,"));
    result_free(&r);
    pt_rmtree(dir);
    free(dir);
    sandbox_stop(sb);
}

static void bad_task_data_is_reported_at_once(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char *dir = pt_mkdtemp("portier-data");
    char path[4200];
    snprintf(path, sizeof(path), "%s/bad.txt", dir);
    const char *data = "member_id: 12345\npatient: Louise Golicic\nDOB: 1949-13-45\n"
                       "place_of_service: moon\nicd10: Q77.7\n";
    pt_write_file(path, data, strlen(data), 0600);
    result r = run_sop(sb, "sops/sandbox/submit_claim.sop", path, NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "member_id: expected a value that matches /^\\d{9}$/"));
    assert_non_null(strstr(r.err, "dob: expected a date"));
    assert_non_null(strstr(r.err, "place_of_service: expected one of home, office"));
    assert_null(strstr(r.err, "1949-13-45"));
    assert_null(strstr(r.err, "moon"));
    assert_null(strstr(r.err, "12345"));
    assert_non_null(strstr(r.err, "icd10: no input of the SOP takes this key"));
    assert_null(strstr(r.err, "Q77.7"));
    assert_non_null(strstr(r.err, "service_date: required"));
    /* nothing reached the portal */
    cJSON *log = submissions(sb);
    assert_int_equal(cJSON_GetArraySize(log), 0);
    cJSON_Delete(log);
    result_free(&r);
    pt_rmtree(dir);
    free(dir);
    sandbox_stop(sb);
}

typedef struct worker {
    const sop *s;
    cdp_browser *b;
    const char *portal;
    const vars *inputs, *secrets;
    char status[32];
} worker;

static void *claim_worker(void *arg)
{
    worker *w = arg;
    agent_options o = {
        .browser = w->b, .portal = w->portal, .inputs = w->inputs, .secrets = w->secrets};
    agent_result r;
    agent_run(w->s, &o, &r);
    snprintf(w->status, sizeof(w->status), "%s", r.status);
    agent_result_free(&r);
    return NULL;
}

/* Several tasks at once on one browser, each in its own thread and its own
 * browser context (own cookies: each signs in for itself). */
static void tasks_run_at_once_on_one_browser(void **state)
{
    (void)state;
    enum { N = 3 };
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char path[4096], err[1024], *data = NULL;
    home_path("sops/sandbox/submit_claim.sop", path, sizeof(path));
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    sop_diags_free(&d);
    assert_non_null(s);
    home_path("sops/sandbox/examples/submit_claim.txt", path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1 << 20, &data, NULL), 0);
    vars *raw = vars_new(), *inputs = vars_new(), *secrets = vars_new();
    vars_parse_data(raw, data, err, sizeof(err));
    assert_int_equal(vars_bind_inputs(s, raw, NULL, inputs, err, sizeof(err)), 0);
    home_path("sops/sandbox/sandbox.secrets", path, sizeof(path));
    assert_int_equal(vars_load_secrets(secrets, path, err), 0);
    cdp_browser *b = NULL;
    assert_int_equal(cdp_launch(NULL, &b, err), 0);
    worker w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){s, b, sandbox_url(sb), inputs, secrets, ""};
        pthread_create(&t[i], NULL, claim_worker, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_string_equal(w[i].status, "completed");
    }
    cJSON *log = submissions(sb);
    assert_int_equal(cJSON_GetArraySize(log), N);
    cJSON_Delete(log);
    cdp_close(b);
    sop_free(s);
    vars_free(raw);
    vars_free(inputs);
    vars_free(secrets);
    free(data);
    sandbox_stop(sb);
}

/* Every pair of a Cookie or Set-Cookie header in har_text carries the
 * placeholder, never a value; returns how many pairs named `name`. */
static int cookie_pairs(const char *value, int set_cookie, const char *name)
{
    int named = 0;
    char *copy = strdup(value), *save = NULL;
    for (char *p = strtok_r(copy, set_cookie ? "\n" : ";", &save); p;
         p = strtok_r(NULL, set_cookie ? "\n" : ";", &save)) {
        p += strspn(p, " ");
        char *eq = strchr(p, '=');
        assert_non_null(eq);
        size_t vl = strcspn(eq + 1, ";");
        if (vl != strlen("{{cookie}}") || strncmp(eq + 1, "{{cookie}}", vl))
            fail_msg("a cookie value reached the HAR (its name: %.*s)", (int)(eq - p), p);
        named += !strncmp(p, name, strlen(name)) && p[strlen(name)] == '=';
    }
    free(copy);
    return named;
}

/* The sandbox's session ids (the sb_session cookie's values) so far:
 * how many went into ids (new strings). */
static int session_ids(sandbox *sb, char **ids, int max)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/sandbox.db", sandbox_data_dir(sb));
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = 0;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id FROM sessions", -1, &st, NULL), SQLITE_OK);
    while (n < max && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A recording keeps Set-Cookie and Cookie headers with every value replaced
 * by a placeholder, and lists the cookies by name; the session cookie's
 * value is nowhere in its HAR; timings are the protocol's own. */
static void recording_keeps_no_cookie_value(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char *dir = pt_mkdtemp("portier-rec");
    char rec[4200], har[4300];
    snprintf(rec, sizeof(rec), "%s/rec", dir);
    const char *extra[] = {"--record", rec, NULL};
    result r = run_sop(sb, "sops/sandbox/check_eligibility.sop",
                       "sops/sandbox/examples/check_eligibility.txt", extra);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    result_free(&r);
    snprintf(har, sizeof(har), "%s/session.har", rec);
    char *text = NULL;
    assert_int_equal(pt_read_file(har, 64u << 20, &text, NULL), 0);
    cJSON *h = cJSON_Parse(text);
    assert_non_null(h);
    int set = 0, sent = 0, listed = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetObjectItem(h, "log"), "entries"))
    {
        const char *sides[] = {"request", "response"};
        for (int k = 0; k < 2; k++) {
            const cJSON *side = cJSON_GetObjectItem(e, sides[k]), *x;
            cJSON_ArrayForEach(x, cJSON_GetObjectItem(side, "headers"))
            {
                const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(x, "name"));
                const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(x, "value"));
                if (n && v && !strcasecmp(n, "set-cookie"))
                    set += cookie_pairs(v, 1, "sb_session");
                else if (n && v && !strcasecmp(n, "cookie"))
                    sent += cookie_pairs(v, 0, "sb_session");
            }
            cJSON_ArrayForEach(x, cJSON_GetObjectItem(side, "cookies"))
            {
                assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "value")),
                                    "{{cookie}}");
                listed++;
            }
        }
    }
    fprintf(stderr, "HAR: %d Set-Cookie and %d Cookie pairs of sb_session, %d cookies listed\n",
            set, sent, listed);
    assert_true(sent > 0);
    assert_true(set > 0); /* the sign-in's, which interception alone does not show */
    assert_true(listed >= sent + set);
    char *ids[16];
    int nids = session_ids(sb, ids, 16);
    assert_true(nids > 0);
    for (int i = 0; i < nids; i++) {
        if (strstr(text, ids[i]))
            fail_msg("the session cookie's value is in the HAR");
        free(ids[i]);
    }
    /* timings from Network.Response.timing: the phases a browser measured */
    int timed = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetObjectItem(h, "log"), "entries"))
    {
        const cJSON *tm = cJSON_GetObjectItem(e, "timings");
        timed += cJSON_IsNumber(cJSON_GetObjectItem(tm, "blocked")) &&
                 cJSON_IsNumber(cJSON_GetObjectItem(tm, "connect")) &&
                 cJSON_GetObjectItem(tm, "send")->valuedouble >= 0 &&
                 cJSON_GetObjectItem(tm, "wait")->valuedouble >= 0;
    }
    fprintf(stderr, "HAR: %d entries timed by the protocol\n", timed);
    assert_true(timed > 5);
    /* pages: one per document, and the entries name theirs */
    const cJSON *log = cJSON_GetObjectItem(h, "log");
    int pages = cJSON_GetArraySize(cJSON_GetObjectItem(log, "pages")), refs = 0;
    assert_true(pages >= 2);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "entries"))
    {
        refs += cJSON_IsString(cJSON_GetObjectItem(e, "pageref"));
    }
    assert_true(refs > pages);
    int loaded = 0; /* the top document's load, from the protocol's own events */
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "pages"))
    {
        const cJSON *pt = cJSON_GetObjectItem(e, "pageTimings");
        loaded += cJSON_GetObjectItem(pt, "onLoad")->valuedouble >= 0 &&
                  cJSON_GetObjectItem(pt, "onContentLoad")->valuedouble >= 0;
    }
    assert_true(loaded >= 2);
    cJSON_Delete(h);
    free(text);
    pt_rmtree(dir);
    free(dir);
    sandbox_stop(sb);
}

/* A portal that cannot be reached is not a business failure: exit 14, and
 * the notes say so. */
static void unreachable_portal_has_its_own_exit(void **state)
{
    (void)state;
    sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
    char url[256];
    snprintf(url, sizeof(url), "%s", sandbox_url(sb));
    sandbox_stop(sb); /* its port now refuses connections */
    result r = run_sop_at(url, "sops/sandbox/check_eligibility.sop",
                          "sops/sandbox/examples/check_eligibility.txt", NULL);
    expect_status(&r, 14, "failed");
    assert_non_null(strstr(field(r.json, "notes"), "the portal could not be reached: "));
    assert_non_null(strstr(field(r.json, "notes"), "ERR_CONNECTION_REFUSED"));
    result_free(&r);
}

/* portier lint SOP --against DIR --format json: its exit status, and the
 * number of errors in the array it printed (at error_line when > 0). */
static int lint_against(const char *sop_path, const char *dir, int *errors, int error_line)
{
    const char *argv[] = {
        getenv("PORTIER_BIN"), "lint", sop_path, "--against", dir, "--format", "json", NULL};
    char *out = NULL, *err = NULL;
    int rc = tp_run((char *const *)argv, NULL, &out, &err, 0);
    cJSON *arr = cJSON_Parse(out);
    if (!cJSON_IsArray(arr))
        fail_msg("lint printed no JSON array: %s / %s", out, err);
    *errors = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        if (strcmp(field(x, "severity"), "error"))
            continue;
        (*errors)++;
        if (error_line <= 0)
            fprintf(stderr, "false error: %s:%d: %s\n", field(x, "file"),
                    cJSON_GetObjectItem(x, "line")->valueint, field(x, "message"));
        else if (cJSON_GetObjectItem(x, "line")->valueint != error_line)
            fail_msg("an error at line %d, want %d: %s", cJSON_GetObjectItem(x, "line")->valueint,
                     error_line, field(x, "message"));
    }
    cJSON_Delete(arr);
    free(out);
    free(err);
    return rc;
}

/* sops/sandbox/TYPE.sop and login.sop copied into dir with two comment
 * lines on top and the first `fill label "X"` made `fill label "X Zz"`:
 * the copy's path; *line: the broken line there. */
static void broken_copy(const char *type, const char *dir, char *out, size_t outsz, int *line)
{
    const char *names[] = {type, "login"};
    for (int k = 0; k < 2; k++) {
        char rel[256], src[4200], *text = NULL;
        snprintf(rel, sizeof(rel), "sops/sandbox/%s.sop", names[k]);
        home_path(rel, src, sizeof(src));
        assert_int_equal(pt_read_file(src, 1 << 20, &text, NULL), 0);
        snprintf(out, outsz, "%s/%s.sop", dir, names[k]);
        if (k == 1) {
            pt_write_file(out, text, strlen(text), 0600);
            free(text);
            continue;
        }
        char *hit = strstr(text, "fill label \"");
        assert_non_null(hit);
        char *close = strchr(hit + 12, '"');
        *line = 3;
        for (char *p = text; p < hit; p++)
            *line += *p == '\n';
        char *copy = NULL;
        assert_true(
            asprintf(&copy, "# moved\n# moved\n%.*s Zz%s", (int)(close - text), text, close) > 0);
        pt_write_file(out, copy, strlen(copy), 0600);
        free(copy);
        free(text);
    }
    snprintf(out, outsz, "%s/%s.sop", dir, type);
}

/* Three fresh recordings of a bundled SOP (PORTIER_LINT_RECORDINGS of them:
 * `make bench` asks for ten): lint --against gives no error on any, and
 * always reports a broken locator on a line that moved. */
static void lint_against_fresh_recordings(const char *type, const char *attachment)
{
    const char *env = getenv("PORTIER_LINT_RECORDINGS");
    int recordings = env && atoi(env) > 0 ? atoi(env) : 3;
    char *dir = pt_mkdtemp("portier-lint-rec");
    char sop_rel[256], data_rel[256], pdf[4200], sop_path[4200], broken[4300];
    snprintf(sop_rel, sizeof(sop_rel), "sops/sandbox/%s.sop", type);
    snprintf(data_rel, sizeof(data_rel), "sops/sandbox/examples/%s.txt", type);
    home_path(sop_rel, sop_path, sizeof(sop_path));
    if (attachment)
        home_path(attachment, pdf, sizeof(pdf));
    int line = 0, errors = 0;
    broken_copy(type, dir, broken, sizeof(broken), &line);
    for (int i = 0; i < recordings; i++) {
        char rec[4300];
        snprintf(rec, sizeof(rec), "%s/rec%d", dir, i);
        sandbox *sb = portal(SANDBOX_MFA_TOTP, 0);
        const char *extra[] = {"--record", rec, attachment ? "--file" : NULL, pdf, NULL};
        result r = run_sop(sb, sop_rel, data_rel, extra);
        if (r.status != 0 && r.status != 10)
            fail_msg("recording %d of %s: exit %d: %s\n%s", i, type, r.status, r.out, r.err);
        result_free(&r);
        sandbox_stop(sb);
        assert_int_equal(lint_against(sop_path, rec, &errors, 0), 0);
        assert_int_equal(errors, 0);
        assert_int_equal(lint_against(broken, rec, &errors, line), 1);
        assert_int_equal(errors, 1);
    }
    pt_rmtree(dir);
    free(dir);
}

static void lint_against_fresh_claims(void **state)
{
    (void)state;
    lint_against_fresh_recordings("submit_claim", NULL);
}

static void lint_against_fresh_eligibility(void **state)
{
    (void)state;
    lint_against_fresh_recordings("check_eligibility", NULL);
}

static void lint_against_fresh_prior_authorizations(void **state)
{
    (void)state;
    lint_against_fresh_recordings("submit_prior_authorization",
                                  "sops/sandbox/examples/submit_prior_authorization/"
                                  "clinical-notes.pdf");
}

static void lint_against_fresh_appeals(void **state)
{
    (void)state;
    lint_against_fresh_recordings("submit_appeal",
                                  "sops/sandbox/examples/submit_appeal/appeal-letter.pdf");
}

/* A frame whose script arrives a while after its markup (as under load):
 * the label's control is an empty placeholder until the script fills it
 * with a combobox and points the label at it. The recording keeps the
 * document the step acted in, once the frame has loaded and settled, so
 * lint --against finds the combobox: no false "no match". */
static void lint_against_a_late_script(void **state)
{
    (void)state;
    th_server *site = th_start();
    th_route(site, "/outer", "text/html",
             "<!doctype html><html><body><a href=\"/form\" target=\"f\">Open the form</a>"
             "<iframe id=\"f\" name=\"f\" src=\"about:blank\"></iframe></body></html>",
             -1, 0);
    th_route(site, "/form", "text/html",
             "<!doctype html><html><body><form><label for=\"payer\">Payer</label>"
             "<div id=\"payer\"></div></form><script src=\"/late.js\"></script></body></html>",
             -1, 0);
    th_route(site, "/late.js", "text/javascript",
             "document.getElementById('payer').innerHTML = '<input type=\"text\" "
             "role=\"combobox\" id=\"payer-input\">';"
             "document.querySelector('label[for=\"payer\"]').htmlFor = 'payer-input';",
             -1, 1500);
    char *dir = pt_mkdtemp("portier-late");
    char sop_path[4200], data[4200], rec[4200], url[128];
    snprintf(sop_path, sizeof(sop_path), "%s/late.sop", dir);
    snprintf(data, sizeof(data), "%s/late.txt", dir);
    snprintf(rec, sizeof(rec), "%s/rec", dir);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", th_port(site));
    const char *text = "sop late \"A combobox a late script builds\"\n"
                       "input payer required\n"
                       "goto \"{{portal}}/outer\"\n"
                       "click link \"Open the form\"\n"
                       "in frame \"#f\"\n"
                       "  fill label \"Payer\" with payer\n"
                       "end\n"
                       "finish completed \"filled\"\n";
    pt_write_file(sop_path, text, strlen(text), 0600);
    pt_write_file(data, "payer: Gold PPO\n", 16, 0600);
    const char *extra[] = {"--record", rec, NULL};
    result r = run_sop_at(url, sop_path, data, extra);
    expect_status(&r, 0, "completed");
    result_free(&r);
    int errors = 0;
    assert_int_equal(lint_against(sop_path, rec, &errors, 0), 0);
    assert_int_equal(errors, 0);
    pt_rmtree(dir);
    free(dir);
    th_stop(site);
}

/* The Plans & Providers app (shadow-DOM fields, a keystroke-only date, a
 * typeahead, a plans table, a paginated search, a drop zone, a confirm()),
 * with the session ended on the second page load (--expire-after 2): the
 * SOP's `whenever` signs in again, the portal returns to the app, and the
 * appeal is filed exactly once. */
static void plan_appeal_signs_in_again_and_files_once(void **state)
{
    (void)state;
    sandbox_options o = {.expire_after = 2};
    sandbox *sb = NULL;
    char err[512], pdf[4096];
    if (sandbox_start(&o, &sb, err))
        fail_msg("sandbox: %s", err);
    home_path("sops/sandbox/examples/submit_appeal/appeal-letter.pdf", pdf, sizeof(pdf));
    const char *extra[] = {"--file", pdf, NULL};
    result r =
        run_sop(sb, "sops/sandbox/appeal_plan.sop", "sops/sandbox/examples/appeal_plan.txt", extra);
    expect_status(&r, 0, "completed");
    assert_non_null(strstr(field(r.json, "notes"), "Appeal filed: PLA-"));
    assert_non_null(strstr(field(r.json, "notes"), "(plan Active)"));
    assert_non_null(strstr(r.err, "handler at line 18 fires")); /* the re-sign-in */
    cJSON *log = submissions(sb);
    assert_int_equal(cJSON_GetArraySize(log), 1);
    cJSON *a = only(log, "plan_appeal");
    assert_fields(a, (const char *const[]){"member_id", "300059049", "plan", "Gold PPO 500", NULL});
    cJSON_Delete(log);
    result_free(&r);
    sandbox_stop(sb);
}

PT_TESTS("agent", cmocka_unit_test(tasks_run_at_once_on_one_browser),
         cmocka_unit_test(recording_keeps_no_cookie_value),
         cmocka_unit_test(unreachable_portal_has_its_own_exit),
         cmocka_unit_test(lint_against_a_late_script), cmocka_unit_test(lint_against_fresh_claims),
         cmocka_unit_test(lint_against_fresh_eligibility),
         cmocka_unit_test(lint_against_fresh_prior_authorizations),
         cmocka_unit_test(lint_against_fresh_appeals),
         cmocka_unit_test(claim_completes_with_exactly_the_task_data),
         cmocka_unit_test(eligibility_outcomes),
         cmocka_unit_test(prior_authorization_approved_and_pended),
         cmocka_unit_test(appeal_in_the_cross_site_frame),
         cmocka_unit_test(plan_appeal_signs_in_again_and_files_once),
         cmocka_unit_test(session_warning_mid_form_is_handled),
         cmocka_unit_test(sms_code_stops_then_resumes),
         cmocka_unit_test(missing_element_fails_with_its_line),
         cmocka_unit_test(no_secret_or_phi_leaks),
         cmocka_unit_test(bad_task_data_is_reported_at_once));
