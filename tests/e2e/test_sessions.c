/*
 * test_sessions.c - kept sessions end to end (docs/sop.md, "Kept sessions"):
 * `portier serve --demo` on the real sandbox and real Chromium, counted by
 * the sandbox's own record of sign-ins and of who each session belongs to.
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER1 "portier.demo"
#define USER2 "portier.second"

static char *claim(int day, const char *member)
{
    char *b = NULL;
    if (asprintf(&b,
                 "{\"type\":\"submit_claim\",\"data\":\"member_id: %s\\npatient: Louise "
                 "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: "
                 "2025-03-%02d\"}",
                 member, day) < 0)
        b = NULL;
    return b;
}

static long long last_id; /* the task run_claim ran last */

/* What the trajectory of task id says of its session (new), or NULL when
 * it has no `use` entry for one. */
static char *session_note(const ts_server *s, const char *key, long long id)
{
    char path[64];
    snprintf(path, sizeof(path), "/tasks/%lld/trajectory", id);
    tc_response r = ts_api(s, key, "GET", path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cJSON *traj = cJSON_Parse(r.body);
    tc_response_free(&r);
    char *note = NULL;
    cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(traj, "steps"))
    {
        const char *v = ts_str(st, "session");
        if (v && !note)
            note = strdup(v);
    }
    cJSON_Delete(traj);
    return note;
}

static void assert_session_note(const ts_server *s, const char *key, const char *want)
{
    char *note = session_note(s, key, last_id);
    assert_non_null(note);
    assert_non_null(strstr(note, want));
    free(note);
}

/* Posts a claim with key and waits for it to end; returns its status. */
static char *run_claim(ts_server *s, const char *key, int day, const char *member)
{
    char *body = claim(day, member);
    tc_response r = ts_api(s, key, "POST", "/tasks", "application/json", body, 0);
    free(body);
    assert_int_equal(r.status, 200);
    cJSON *t = cJSON_Parse(r.body);
    tc_response_free(&r);
    long long id = last_id = ts_num(t, "id");
    cJSON_Delete(t);
    int64_t until = pt_mono_ms() + 90000;
    char *status = NULL;
    while (!status && pt_mono_ms() < until) {
        t = ts_get_task(s, key, id);
        const char *st = t ? ts_str(t, "status") : NULL;
        if (st && (!strcmp(st, "completed") || !strcmp(st, "completed_with_issues") ||
                   !strcmp(st, "failed")))
            status = strdup(st);
        cJSON_Delete(t);
        if (!status)
            pt_sleep_ms(100);
    }
    assert_non_null(status);
    return status;
}

/* The sandbox's GET or POST /__sandbox/PATH (new JSON). */
static cJSON *sandbox(const ts_server *s, const char *method, const char *path, const char *body)
{
    tc_client *c = tc_new();
    char url[512];
    snprintf(url, sizeof(url), "%s/__sandbox/%s", s->portal, path);
    tc_response r =
        tc_request(c, method, url, body ? "application/json" : NULL, body, body ? strlen(body) : 0);
    tc_free(c);
    assert_int_equal(r.status, 200);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_non_null(o);
    return o;
}

static int signins(const ts_server *s, const char *user)
{
    cJSON *o = sandbox(s, "GET", "signins", NULL);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(o, "signins"), user);
    int v = cJSON_IsNumber(n) ? (int)n->valuedouble : -1;
    cJSON_Delete(o);
    return v;
}

static void start(ts_server *s, const char *name)
{
    const char *extra[] = {"--workers", "1", NULL};
    ts_start_demo(s, name, extra);
}

/* Ten tasks of one account on one worker sign in once; a session the portal
 * expired signs in again and the task completes. */
static void one_signin_for_ten_tasks(void **state)
{
    (void)state;
    ts_server s;
    start(&s, "sessions-ten");
    for (int i = 1; i <= 10; i++) {
        char *st = run_claim(&s, s.key, i, "300059049");
        assert_string_equal(st, "completed");
        free(st);
        /* the trajectory says whether the sign-in was skipped */
        assert_session_note(&s, s.key, i == 1 ? "new: signing in" : "steps skipped");
    }
    assert_int_equal(signins(&s, USER1), 1);
    cJSON *subs = sandbox(&s, "GET", "submissions", NULL);
    assert_int_equal(cJSON_GetArraySize(subs), 10);
    cJSON_Delete(subs);

    /* the portal ends the session: the next task signs in again */
    cJSON_Delete(sandbox(&s, "POST", "expire", "{\"user\":\"" USER1 "\"}"));
    char *st = run_claim(&s, s.key, 11, "300059049");
    assert_string_equal(st, "completed");
    free(st);
    assert_session_note(&s, s.key, "signed out: signing in again");
    assert_int_equal(signins(&s, USER1), 2);
    st = run_claim(&s, s.key, 12, "300059049");
    assert_string_equal(st, "completed");
    free(st);
    assert_int_equal(signins(&s, USER1), 2);
    ts_finish(&s);
}

/* A second account on the same portal, as the sandbox's second user. */
static void add_account_b(ts_server *s, char key[128])
{
    char *out = NULL;
    const char *create[] = {"account", "create", "clinic-b", "--portal", s->portal, NULL};
    assert_int_equal(ts_cli(s, create, NULL, &out), 0);
    cJSON *o = cJSON_Parse(out);
    snprintf(key, 128, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "api_key")));
    cJSON_Delete(o);
    free(out);
    const char *secrets[][2] = {{"portal_user", USER2},
                                {"portal_password", "Sandbox!2025-B"},
                                {"portal_totp", "PORTIERSANDBOXSECONDUSER234567AB"}};
    for (int i = 0; i < 3; i++) {
        const char *set[] = {"account", "set-secret", "clinic-b", secrets[i][0], NULL};
        assert_int_equal(ts_cli(s, set, secrets[i][1], NULL), 0);
    }
    char sop[4200];
    pt_home_path("sops/sandbox/submit_claim.sop", sop, sizeof(sop));
    const char *setsop[] = {"account", "set-sop", "clinic-b", "submit_claim", sop, NULL};
    assert_int_equal(ts_cli(s, setsop, NULL, NULL), 0);
}

/* Two accounts on one portal never see each other's session: each task is
 * submitted as its own account's user, and each account signs in once. */
static void accounts_never_share_a_session(void **state)
{
    (void)state;
    ts_server s;
    start(&s, "sessions-two");
    char keyb[128];
    add_account_b(&s, keyb);
    for (int i = 1; i <= 6; i++) {
        char *st = run_claim(&s, i % 2 ? s.key : keyb, i, "300059049");
        assert_string_equal(st, "completed");
        free(st);
    }
    assert_int_equal(signins(&s, USER1), 1);
    assert_int_equal(signins(&s, USER2), 1);
    cJSON *subs = sandbox(&s, "GET", "submissions", NULL);
    assert_int_equal(cJSON_GetArraySize(subs), 6);
    int i = 1;
    cJSON *sub;
    cJSON_ArrayForEach(sub, subs)
    {
        /* odd days were account A's, even days account B's */
        assert_string_equal(ts_str(sub, "user"), i % 2 ? USER1 : USER2);
        i++;
    }
    cJSON_Delete(subs);
    /* each live session belongs to one user: one each */
    cJSON *o = sandbox(&s, "GET", "signins", NULL);
    int by1 = 0, by2 = 0;
    cJSON *ses;
    cJSON_ArrayForEach(ses, cJSON_GetObjectItem(o, "sessions"))
    {
        by1 += !strcmp(ts_str(ses, "user"), USER1);
        by2 += !strcmp(ts_str(ses, "user"), USER2);
    }
    cJSON_Delete(o);
    assert_int_equal(by1, 1);
    assert_int_equal(by2, 1);
    ts_finish(&s);
}

/* A task that failed after signing in leaves no session to reuse; an
 * account with sessions off signs in for every task. */
static void failed_task_and_sessions_off(void **state)
{
    (void)state;
    ts_server s;
    start(&s, "sessions-failed");
    char *st = run_claim(&s, s.key, 1, "300059049");
    assert_string_equal(st, "completed");
    free(st);
    st = run_claim(&s, s.key, 2, "999999999"); /* the portal finds no such member */
    assert_string_equal(st, "failed");
    free(st);
    assert_int_equal(signins(&s, USER1), 1);
    st = run_claim(&s, s.key, 3, "300059049");
    assert_string_equal(st, "completed");
    free(st);
    assert_int_equal(signins(&s, USER1), 2); /* the failed task's session was dropped */

    const char *off[] = {"account", "set-session", "demo", "off", NULL};
    assert_int_equal(ts_cli(&s, off, NULL, NULL), 0);
    for (int i = 4; i <= 5; i++) {
        st = run_claim(&s, s.key, i, "300059049");
        assert_string_equal(st, "completed");
        free(st);
        char *note = session_note(&s, s.key, last_id); /* a fresh context: no entry */
        assert_null(note);
    }
    assert_int_equal(signins(&s, USER1), 4);
    const char *bad[] = {"account", "set-session", "demo", "maybe", NULL};
    assert_int_equal(ts_cli(&s, bad, NULL, NULL), 2);
    ts_finish(&s);
}

/* kill -9 with a kept session: after a restart every task ends completed,
 * each claim reached the portal once, and no Chromium is left. */
static void kill9_with_kept_sessions(void **state)
{
    (void)state;
    ts_server s;
    start(&s, "sessions-kill9");
    char *st = run_claim(&s, s.key, 1, "300059049");
    assert_string_equal(st, "completed");
    free(st);
    long long ids[4];
    for (int i = 0; i < 4; i++) {
        char *body = claim(2 + i, "300059049");
        cJSON *t = ts_post_json(&s, body, 200);
        free(body);
        ids[i] = ts_num(t, "id");
        cJSON_Delete(t);
    }
    cJSON_Delete(ts_wait_status(&s, ids[0], "running,completed", 60000));
    assert_int_equal(ts_stop(&s, 1), 128 + SIGKILL);
    assert_int_equal(tp_wait_none(s.dir, 10000), 0); /* Chromium died with it */
    const char *args[] = {"--demo", "--portal-listen", "127.0.0.1:0", "--workers", "1", NULL};
    assert_int_equal(ts_start(&s, args, NULL), 0);
    int review = 0;
    for (int i = 0; i < 4; i++) {
        cJSON *t = ts_wait_status(&s, ids[i],
                                  "completed,completed_with_issues,failed,pending_review", 120000);
        review += !strcmp(ts_str(t, "status"), "pending_review");
        if (strcmp(ts_str(t, "status"), "completed") &&
            strcmp(ts_str(t, "status"), "pending_review"))
            fail_msg("task %lld ended %s", ids[i], ts_str(t, "status"));
        cJSON_Delete(t);
    }
    /* every claim reached the portal, none twice (days 1 to 5) */
    cJSON *subs = sandbox(&s, "GET", "submissions", NULL);
    int total = 0;
    for (int day = 1; day <= 5; day++) {
        char iso[16], us[16];
        snprintf(iso, sizeof(iso), "2025-03-%02d", day);
        snprintf(us, sizeof(us), "03/%02d/2025", day);
        int n = 0;
        cJSON *x;
        cJSON_ArrayForEach(x, subs)
        {
            const char *d = ts_str(cJSON_GetObjectItem(x, "fields"), "service_date");
            n += d && (!strcmp(d, iso) || !strcmp(d, us));
        }
        if (n > 1)
            fail_msg("service date %s was submitted %d times", iso, n);
        total += n;
    }
    cJSON_Delete(subs);
    assert_true(total >= 5 - review);
    ts_finish(&s);
}

PT_TESTS("sessions", cmocka_unit_test(one_signin_for_ten_tasks),
         cmocka_unit_test(accounts_never_share_a_session),
         cmocka_unit_test(failed_task_and_sessions_off),
         cmocka_unit_test(kill9_with_kept_sessions));
