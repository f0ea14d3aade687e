/*
 * test_agent.c - `portier run` with the bundled SOPs against the sandbox
 * portal, in real Chromium, as a user runs it: the binary, its stdout,
 * stderr and exit code, and what the portal received.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testcurl.h"
#include "tests/support/testproc.h"
#include "agent/agent.h"

#include <pthread.h>
#include "portals/sandbox/sandbox.h"
#include "util/crypto.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
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
static result run_sop(sandbox *sb, const char *sop_file, const char *data, const char *const *extra)
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
    argv[n++] = (char *)sandbox_url(sb);
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
    snprintf(path, sizeof(path), "%s/broken.sop", dir);
    pt_write_file(path, text_of_sop, strlen(text_of_sop), 0600);
    result r = run_sop(sb, path, "sops/sandbox/examples/submit_claim.txt", NULL);
    expect_status(&r, 11, "failed");
    assert_string_equal(field(r.json, "notes"),
                        "broken.sop:6: click button \"Submit everything\" timeout 2s: button "
                        "\"Submit everything\": no element matches button \"Submit everything\" "
                        "for 2 s");
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
                       "place_of_service: moon\n";
    pt_write_file(path, data, strlen(data), 0600);
    result r = run_sop(sb, "sops/sandbox/submit_claim.sop", path, NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "member_id: does not match /^\\d{9}$/"));
    assert_non_null(strstr(r.err, "dob: '1949-13-45' is not a date"));
    assert_non_null(strstr(r.err, "place_of_service: 'moon' is not one of home, office"));
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
