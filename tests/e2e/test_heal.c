/*
 * test_heal.c - fingerprints and healing, end to end: the bundled SOPs run
 * with `portier run --fingerprints DIR` on the sandbox as written (markup
 * 1), then on the same workflows with every id, class and nesting changed
 * (`--markup 2`), in real Chromium; `portier lint --heal DIR` and the next
 * run after its patch; a miss after `commit` is never acted on; no task
 * value in a fingerprint; the re-sign-in of the plan appeal on markup 2.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testcurl.h"
#include "tests/support/testproc.h"
#include "portals/sandbox/sandbox.h"
#include "util/fsutil.h"

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

static void home_path(const char *rel, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", pt_home(), rel);
}

static sandbox *portal(int markup, int expire_after)
{
    sandbox_options o = {.markup = markup, .expire_after = expire_after};
    sandbox *sb = NULL;
    char err[512];
    if (sandbox_start(&o, &sb, err))
        fail_msg("sandbox: %s", err);
    return sb;
}

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* portier run SOP (a path) --data (the bundled example) --fingerprints FP */
static result run_traj(sandbox *sb, const char *sop, const char *example, const char *fp,
                       const char *file, const char *traj);
static result run(sandbox *sb, const char *sop, const char *example, const char *fp,
                  const char *file)
{
    return run_traj(sb, sop, example, fp, file, NULL);
}

/* run, with --trajectory traj when not NULL */
static result run_traj(sandbox *sb, const char *sop, const char *example, const char *fp,
                       const char *file, const char *traj)
{
    char data[4096], secrets[4096], pdf[4096];
    home_path(example, data, sizeof(data));
    home_path("sops/sandbox/sandbox.secrets", secrets, sizeof(secrets));
    char *argv[20];
    int n = 0;
    argv[n++] = getenv("PORTIER_BIN");
    argv[n++] = "run";
    argv[n++] = (char *)sop;
    argv[n++] = "--data";
    argv[n++] = data;
    argv[n++] = "--portal";
    argv[n++] = (char *)sandbox_url(sb);
    argv[n++] = "--secrets";
    argv[n++] = secrets;
    argv[n++] = "--fingerprints";
    argv[n++] = (char *)fp;
    if (file) {
        home_path(file, pdf, sizeof(pdf));
        argv[n++] = "--file";
        argv[n++] = pdf;
    }
    if (traj) {
        argv[n++] = "--trajectory";
        argv[n++] = (char *)traj;
    }
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

static void expect_status(const result *r, int code, const char *status)
{
    if (r->status != code || !r->json || strcmp(field(r->json, "status"), status) != 0)
        fail_msg("exit %d, want %d (%s)\nstdout: %s\nstderr: %s", r->status, code, status, r->out,
                 r->err);
}

/* How many submissions of kind the portal has received. */
static int submitted(sandbox *sb, const char *kind)
{
    tc_client *c = tc_new();
    char url[256];
    snprintf(url, sizeof(url), "%s/__sandbox/submissions", sandbox_url(sb));
    tc_response resp = tc_request(c, "GET", url, NULL, NULL, 0);
    cJSON *j = cJSON_Parse(resp.body), *it;
    int n = 0;
    cJSON_ArrayForEach(it, j) n += !strcmp(field(it, "kind"), kind);
    cJSON_Delete(j);
    tc_response_free(&resp);
    tc_free(c);
    return n;
}

/* A copy of the bundled SOPs in a folder of the test's (a patch changes
 * them): new path, the caller removes it. */
static char *copy_sops(void)
{
    char *dir = pt_mkdtemp("heal-sops");
    char src[4096];
    home_path("sops/sandbox", src, sizeof(src));
    DIR *d = opendir(src);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".sop"))
            continue;
        char from[4400], to[4400], *text = NULL;
        size_t len = 0;
        snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
        snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
        assert_int_equal(pt_read_file(from, 1 << 20, &text, &len), 0);
        assert_int_equal(pt_write_file(to, text, len, 0644), 0);
        free(text);
    }
    if (d)
        closedir(d);
    return dir;
}

/* Every fingerprints file in fp, concatenated (a new string). */
static char *fingerprint_files(const char *fp)
{
    DIR *d = opendir(fp);
    assert_non_null(d);
    size_t cap = 1 << 20, len = 0;
    char *all = calloc(1, cap);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strstr(de->d_name, ".json"))
            continue;
        char p[4400], *text = NULL;
        size_t n = 0;
        snprintf(p, sizeof(p), "%s/%s", fp, de->d_name);
        assert_int_equal(pt_read_file(p, cap, &text, &n), 0);
        if (len + n + 1 < cap) {
            memcpy(all + len, text, n);
            len += n;
        }
        free(text);
    }
    closedir(d);
    return all;
}

/* No value of the task data in example (KEY: VALUE lines) that could be
 * PHI is in text, in any case. */
static void no_task_value_in(const char *text, const char *example)
{
    static const char *const phi[] = {"member_id",       "patient",     "dob",
                                      "claim_reference", "explanation", "clinical_notes",
                                      "service_date"};
    char path[4096], *data = NULL;
    home_path(example, path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1 << 20, &data, NULL), 0);
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *v = colon + 1 + strspn(colon + 1, " ");
        for (size_t i = 0; i < sizeof(phi) / sizeof(phi[0]); i++)
            if (!strcasecmp(line, phi[i]) && strlen(v) >= 3 && strcasestr(text, v))
                fail_msg("the fingerprints hold the task's %s", line);
    }
    free(data);
}

typedef struct bundled {
    const char *sop, *example, *file, *kind;
    int by_id; /* leans on an id before commit: heals */
} bundled;

static const bundled sops[] = {
    {"check_eligibility.sop", "sops/sandbox/examples/check_eligibility.txt", NULL, "eligibility",
     0},
    {"submit_claim.sop", "sops/sandbox/examples/submit_claim.txt", NULL, "claim", 1},
    {"submit_prior_authorization.sop", "sops/sandbox/examples/submit_prior_authorization.txt",
     "sops/sandbox/examples/submit_prior_authorization/clinical-notes.pdf", "prior_authorization",
     0},
    {"submit_appeal.sop", "sops/sandbox/examples/submit_appeal.txt",
     "sops/sandbox/examples/submit_appeal/appeal-letter.pdf", "appeal", 1},
    {"appeal_plan.sop", "sops/sandbox/examples/appeal_plan.txt",
     "sops/sandbox/examples/submit_appeal/appeal-letter.pdf", "plan_appeal", 0},
};
#define NSOPS (sizeof(sops) / sizeof(sops[0]))

/* Recorded on markup 1, run on markup 2: semantic SOPs complete; those
 * that lean on an id heal before commit and end completed_with_issues with
 * the change; lint --heal's patch, applied, makes the next run complete. */
static void bundled_sops_survive_a_redesign(void **state)
{
    (void)state;
    char *dir = copy_sops(), *fp = pt_mkdtemp("heal-fp");
    char path[4400];
    sandbox *one = portal(1, 0);
    for (size_t i = 0; i < NSOPS; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, sops[i].sop);
        result r = run(one, path, sops[i].example, fp, sops[i].file);
        expect_status(&r, 0, "completed");
        result_free(&r);
    }
    sandbox_stop(one);
    char *all = fingerprint_files(fp);
    assert_non_null(strstr(all, "\"fingerprints\""));
    assert_non_null(strstr(all, "\"Member ID\"")); /* what a label says is kept */
    for (size_t i = 0; i < NSOPS; i++)
        no_task_value_in(all, sops[i].example);
    free(all);

    sandbox *two = portal(2, 0);
    for (size_t i = 0; i < NSOPS; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, sops[i].sop);
        int before = submitted(two, sops[i].kind);
        char traj[4400];
        snprintf(traj, sizeof(traj), "%s/traj-%zu", fp, i);
        result r = run_traj(two, path, sops[i].example, fp, sops[i].file, traj);
        if (sops[i].by_id) {
            expect_status(&r, 10, "completed_with_issues");
            const char *notes = field(r.json, "notes");
            assert_non_null(strstr(notes, "Healed "));
            assert_non_null(strstr(notes, "\"#app-frame\" matched nothing"));
            assert_non_null(
                strstr(notes, "Suggested change: in frame css \"iframe[title='Application']\""));
            /* the trajectory says so at the step, and shows the frame it entered */
            char tj[4500], *text = NULL;
            snprintf(tj, sizeof(tj), "%s/trajectory.json", traj);
            assert_int_equal(pt_read_file(tj, 8 << 20, &text, NULL), 0);
            cJSON *t = cJSON_Parse(text), *st;
            int healed = 0, inside = 0;
            cJSON_ArrayForEach(st, cJSON_GetObjectItem(t, "steps"))
            {
                const cJSON *h = cJSON_GetObjectItem(st, "healed");
                if (h && !strcmp(field(h, "new"), "in frame css \"iframe[title='Application']\""))
                    healed++;
                inside += !strcmp(field(st, "frame"), "\"iframe[title='Application']\"");
            }
            assert_int_equal(healed, 1);
            assert_true(inside >= 3);
            cJSON_Delete(t);
            free(text);
        } else {
            expect_status(&r, 0, "completed");
        }
        assert_int_equal(submitted(two, sops[i].kind), before + 1); /* exactly once */
        result_free(&r);
    }

    /* the patch, applied where the SOPs are */
    char cmd[9000], *sh[] = {"/bin/sh", "-c", cmd, NULL}, *out = NULL, *err = NULL;
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' lint --heal '%s' > heal.patch && patch -p1 < heal.patch", dir,
             getenv("PORTIER_BIN"), fp);
    int rc = tp_run(sh, NULL, &out, &err, 0);
    if (rc != 0)
        fail_msg("lint --heal | patch: exit %d\n%s\n%s", rc, out, err);
    free(out);
    free(err);
    snprintf(path, sizeof(path), "%s/heal.patch", dir);
    char *patch = NULL;
    assert_int_equal(pt_read_file(path, 1 << 20, &patch, NULL), 0);
    assert_non_null(strstr(patch, "--- a/submit_claim.sop"));
    assert_non_null(strstr(patch, "-in frame \"#app-frame\""));
    assert_non_null(strstr(patch, "+in frame css \"iframe[title='Application']\""));
    assert_non_null(strstr(patch, "--- a/submit_appeal.sop"));
    free(patch);
    for (size_t i = 0; i < NSOPS; i++) {
        if (!sops[i].by_id)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, sops[i].sop);
        result r = run(two, path, sops[i].example, fp, sops[i].file);
        expect_status(&r, 0, "completed");
        result_free(&r);
    }
    sandbox_stop(two);
    all = fingerprint_files(fp);
    for (size_t i = 0; i < NSOPS; i++)
        no_task_value_in(all, sops[i].example);
    free(all);
    pt_rmtree(dir);
    pt_rmtree(fp);
    free(dir);
    free(fp);
}

/* After commit nothing is acted on by guess: the claim's submit button by
 * its id, recorded on markup 1, fails on markup 2 with the suggestion in
 * the error, and the portal receives nothing. */
static void a_miss_after_commit_is_never_healed(void **state)
{
    (void)state;
    char *dir = copy_sops(), *fp = pt_mkdtemp("heal-fp");
    char path[4400], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/submit_claim.sop", dir);
    assert_int_equal(pt_read_file(path, 1 << 20, &text, &len), 0);
    char *at = strstr(text, "click button \"Submit claim\"");
    assert_non_null(at);
    char *changed = NULL;
    assert_true(asprintf(&changed, "%.*sclick \"#submit\"%s", (int)(at - text), text,
                         at + strlen("click button \"Submit claim\"")) > 0);
    assert_int_equal(pt_write_file(path, changed, strlen(changed), 0644), 0);
    free(text);
    free(changed);
    sandbox *one = portal(1, 0);
    result r = run(one, path, "sops/sandbox/examples/submit_claim.txt", fp, NULL);
    expect_status(&r, 0, "completed");
    result_free(&r);
    sandbox_stop(one);
    sandbox *two = portal(2, 0);
    r = run(two, path, "sops/sandbox/examples/submit_claim.txt", fp, NULL);
    expect_status(&r, 11, "failed");
    const char *notes = field(r.json, "notes");
    assert_non_null(strstr(notes, "no element matches \"#submit\""));
    assert_non_null(
        strstr(notes, "not acted on after commit (write: click button \"Submit claim\")"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "committed")));
    assert_int_equal(submitted(two, "claim"), 0);
    result_free(&r);
    sandbox_stop(two);
    pt_rmtree(dir);
    pt_rmtree(fp);
    free(dir);
    free(fp);
}

/* #13's re-sign-in on markup 2: the session ends on the second page load,
 * the SOP's `whenever` signs in again, the portal returns to the app, and
 * the appeal is filed exactly once. */
static void plan_appeal_signs_in_again_on_markup_2(void **state)
{
    (void)state;
    char *fp = pt_mkdtemp("heal-fp"), path[4096];
    home_path("sops/sandbox/appeal_plan.sop", path, sizeof(path));
    sandbox *sb = portal(2, 2);
    result r = run(sb, path, "sops/sandbox/examples/appeal_plan.txt", fp,
                   "sops/sandbox/examples/submit_appeal/appeal-letter.pdf");
    expect_status(&r, 0, "completed");
    assert_non_null(strstr(field(r.json, "notes"), "Appeal filed: PLA-"));
    assert_non_null(strstr(field(r.json, "notes"), "(plan Active)"));
    assert_non_null(strstr(r.err, "handler at line 18 fires")); /* the re-sign-in */
    assert_int_equal(submitted(sb, "plan_appeal"), 1);
    result_free(&r);
    sandbox_stop(sb);
    pt_rmtree(fp);
    free(fp);
}

PT_TESTS("heal", cmocka_unit_test(bundled_sops_survive_a_redesign),
         cmocka_unit_test(a_miss_after_commit_is_never_healed),
         cmocka_unit_test(plan_appeal_signs_in_again_on_markup_2));
