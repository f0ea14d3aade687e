/*
 * test_dashboard.c - the dashboard (ui/, server/dashboard.c) in real
 * Chromium against `portier serve --demo` on the real sandbox: signing in
 * and out, the task list updating by itself, a task with its trajectory,
 * answering and reviewing from the page, the account page, one account's
 * session never seeing another's tasks, CSRF, and trajectory.html's row
 * highlighting. Every request the pages make and every console message is
 * counted: none may fail but the ones a case provokes on purpose.
 *
 * Screenshots of each page at 1280x800 and 390x844 are written to
 * dashboard-screens/ in the test's working folder (build/tests/).
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testmain.h"
#include "cdp/cdp.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T 20000
#define SHOTS "dashboard-screens"

/* What one browser context saw: counted on the service thread. */
typedef struct watch {
    pthread_mutex_t mu;
    int failed;   /* responses >= 400 and loads that failed (not cancelled) */
    int console;  /* console.error calls and error log entries not from the network */
    char seen[2048];
} watch;

typedef struct tab {
    cdp_page *p;
    char *ctx;
    watch w;
} tab;

static cdp_browser *browser;

static void note(watch *w, const char *what, const char *url)
{
    pthread_mutex_lock(&w->mu);
    size_t n = strlen(w->seen);
    snprintf(w->seen + n, sizeof(w->seen) - n, "%s %.200s\n", what, url ? url : "");
    pthread_mutex_unlock(&w->mu);
}

static void on_event(cdp_session *s, const char *method, const cJSON *params, void *ud)
{
    (void)s;
    watch *w = ud;
    if (!strcmp(method, "Network.responseReceived")) {
        const cJSON *resp = cJSON_GetObjectItem(params, "response");
        int status = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(resp, "status"));
        if (status >= 400) {
            char what[32];
            snprintf(what, sizeof(what), "HTTP %d", status);
            note(w, what, ts_str(resp, "url"));
            __atomic_add_fetch(&w->failed, 1, __ATOMIC_SEQ_CST);
        }
    } else if (!strcmp(method, "Network.loadingFailed")) {
        if (!cJSON_IsTrue(cJSON_GetObjectItem(params, "canceled"))) {
            note(w, "load failed", ts_str(params, "errorText"));
            __atomic_add_fetch(&w->failed, 1, __ATOMIC_SEQ_CST);
        }
    } else if (!strcmp(method, "Runtime.consoleAPICalled")) {
        if (!strcmp(ts_str(params, "type") ? ts_str(params, "type") : "", "error")) {
            note(w, "console.error", NULL);
            __atomic_add_fetch(&w->console, 1, __ATOMIC_SEQ_CST);
        }
    } else if (!strcmp(method, "Log.entryAdded")) {
        const cJSON *e = cJSON_GetObjectItem(params, "entry");
        const char *level = ts_str(e, "level"), *src = ts_str(e, "source");
        if (level && !strcmp(level, "error") && !(src && !strcmp(src, "network"))) {
            note(w, "log error", ts_str(e, "text"));
            __atomic_add_fetch(&w->console, 1, __ATOMIC_SEQ_CST);
        }
    }
}

static void tab_open(tab *t)
{
    char err[CDP_ERR_MAX];
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->w.mu, NULL);
    if (cdp_context_create(browser, &t->ctx, err) || cdp_page_open(browser, t->ctx, &t->p, err))
        fail_msg("browser: %s", err);
    cdp_session *s = cdp_page_session(t->p);
    static const char *const events[] = {"Network.responseReceived", "Network.loadingFailed",
                                         "Runtime.consoleAPICalled", "Log.entryAdded"};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        assert_true(cdp_on(s, events[i], on_event, &t->w) > 0);
    if (cdp_call(s, "Network.enable", NULL, NULL, T, err) ||
        cdp_call(s, "Log.enable", NULL, NULL, T, err))
        fail_msg("enable: %s", err);
}

/* Closes the tab after checking that it made exactly `failed` failed
 * requests (those the case provoked), no console error and no uncaught
 * exception. */
static void tab_close(tab *t, int failed)
{
    char **ex = NULL;
    size_t n = 0;
    assert_int_equal(cdp_page_exceptions(t->p, &ex, &n), 0);
    for (size_t i = 0; i < n; i++)
        print_error("uncaught: %s\n", ex[i]);
    cdp_strings_free(ex, n);
    if (t->w.failed != failed || t->w.console)
        print_error("seen:\n%s", t->w.seen);
    assert_int_equal(n, 0);
    assert_int_equal(t->w.console, 0);
    assert_int_equal(t->w.failed, failed);
    cdp_page_close(t->p);
    cdp_context_dispose(browser, t->ctx, NULL);
    free(t->ctx);
    pthread_mutex_destroy(&t->w.mu);
}

static char *eval_json(tab *t, const char *js)
{
    char err[CDP_ERR_MAX];
    cJSON *v = NULL;
    if (cdp_page_eval(t->p, NULL, js, &v, T, err))
        fail_msg("eval %s: %s", js, err);
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return s;
}

static void run(tab *t, const char *js)
{
    free(eval_json(t, js));
}

static long long eval_num(tab *t, const char *js)
{
    char *s = eval_json(t, js);
    long long v = atoll(s);
    free(s);
    return v;
}

/* Polls js until it is want (JSON), for up to ms. */
static void wait_for(tab *t, const char *js, const char *want, int ms)
{
    int64_t until = pt_mono_ms() + ms;
    char *got = NULL;
    for (;;) {
        char err[CDP_ERR_MAX];
        cJSON *v = NULL;
        free(got);
        got = NULL;
        if (cdp_page_eval(t->p, NULL, js, &v, T, err) == 0) {
            got = cJSON_PrintUnformatted(v);
            cJSON_Delete(v);
            if (!strcmp(got, want))
                break;
        }
        if (pt_mono_ms() > until)
            fail_msg("%s: still %s, want %s", js, got ? got : err, want);
        pt_sleep_ms(100);
    }
    free(got);
}

static void go(tab *t, const char *url)
{
    char err[CDP_ERR_MAX];
    if (cdp_page_navigate(t->p, url, CDP_WAIT_LOAD, T, err))
        fail_msg("navigate %s: %s", url, err);
}

/* Both sizes of the page as it is: NAME-1280x800.png and NAME-390x844.png. */
static void screens(tab *t, const char *name)
{
    static const struct {
        int w, h, mobile;
    } sizes[] = {{1280, 800, 0}, {390, 844, 1}};
    mkdir(SHOTS, 0755);
    char err[CDP_ERR_MAX];
    for (size_t i = 0; i < 2; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "width", sizes[i].w);
        cJSON_AddNumberToObject(m, "height", sizes[i].h);
        cJSON_AddNumberToObject(m, "deviceScaleFactor", 1);
        cJSON_AddBoolToObject(m, "mobile", sizes[i].mobile);
        if (cdp_call(cdp_page_session(t->p), "Emulation.setDeviceMetricsOverride", m, NULL, T, err))
            fail_msg("viewport: %s", err);
        pt_sleep_ms(300); /* a relayout, and images already loaded painted */
        unsigned char *png = NULL;
        size_t len = 0;
        if (cdp_page_screenshot(t->p, 0, &png, &len, T, err))
            fail_msg("screenshot: %s", err);
        char path[256];
        snprintf(path, sizeof(path), SHOTS "/%s-%dx%d.png", name, sizes[i].w, sizes[i].h);
        assert_int_equal(pt_write_file(path, png, len, 0644), 0);
        free(png);
    }
    cdp_call(cdp_page_session(t->p), "Emulation.clearDeviceMetricsOverride", NULL, NULL, T, err);
}

/* Types key into the sign-in form and sends it. */
static void sign_in(tab *t, const char *key)
{
    char js[512];
    snprintf(js, sizeof(js),
             "document.getElementById('key').value = '%s';"
             "document.querySelector('#signin-form button').click()",
             key);
    run(t, js);
}

static void open_signed_in(tab *t, const ts_server *s, const char *key)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/", s->base);
    go(t, url);
    wait_for(t, "document.getElementById('signin').hidden", "false", T);
    sign_in(t, key);
    wait_for(t, "document.getElementById('nav').hidden", "false", T);
}

static void start(ts_server *s, const char *name)
{
    char err[CDP_ERR_MAX];
    ts_start_demo(s, name, NULL);
    if (cdp_launch(NULL, &browser, err))
        fail_msg("browser: %s", err);
}

static void finish(ts_server *s)
{
    cdp_close(browser);
    browser = NULL;
    ts_finish(s);
}

/* ---- Cases ----------------------------------------------------------------- */

/* The sign-in's cookie is HttpOnly, SameSite=Strict and expires; the page
 * carries a strict CSP. Read off the wire, as the browser gets them. */
static void check_headers(const ts_server *s)
{
    tc_response r = ts_api(s, s->key, "POST", "/session", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    char *c = tc_response_header(&r, "set-cookie");
    assert_non_null(c);
    assert_non_null(strstr(c, "HttpOnly"));
    assert_non_null(strstr(c, "SameSite=Strict"));
    assert_null(strstr(c, "Max-Age")); /* gone when the browser closes */
    free(c);
    tc_response_free(&r);
    r = ts_api(s, NULL, "GET", "/", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    char *csp = tc_response_header(&r, "content-security-policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "script-src 'self'"));
    assert_null(strstr(csp, "unsafe"));
    free(csp);
    tc_response_free(&r);
    /* the page's weight: HTML, CSS and script under 100 KB */
    size_t total = 0;
    static const char *const parts[] = {"/", "/ui/app.css", "/ui/app.js", "/ui/favicon.svg"};
    for (size_t i = 0; i < 4; i++) {
        r = ts_api(s, NULL, "GET", parts[i], NULL, NULL, 0);
        assert_int_equal(r.status, 200);
        total += r.len;
        tc_response_free(&r);
    }
    print_message("dashboard: page weight %zu bytes\n", total);
    assert_true(total < 100 * 1024);
    /* a screenshot is not for anyone without a session or a key */
    r = ts_api(s, NULL, "GET", "/tasks/1/trajectory/step-001.jpg", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    tc_response_free(&r);
}

/* A request with only the session cookie (no key), marked as the page's
 * background refresh or not: its status. */
static long cookie_get(const ts_server *s, const char *cookie, const char *path, int bg)
{
    tc_client *c = tc_new();
    char h[160], url[512];
    snprintf(h, sizeof(h), "Cookie: %s", cookie);
    tc_header(c, h);
    if (bg)
        tc_header(c, "X-Portier-Background: 1");
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
    long status = r.status;
    tc_response_free(&r);
    tc_free(c);
    return status;
}

/* Moves every session's clock back by ms (column: seen_at or created_at). */
static void age_sessions(const ts_server *s, const char *column, long long ms)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE web_sessions SET %s = %s - %lld", column, column, ms);
    assert_int_equal(ts_sql(s, sql, sql), 0);
}

/* A session ends after 30 minutes without a request, and after 12 hours
 * however busy: then its cookie opens nothing. */
static long with_cookie(const ts_server *s, const char *cookie, const char *path)
{
    return cookie_get(s, cookie, path, 0);
}

/* A new session's cookie ("portier_session=..."; new string). */
static char *new_session(const ts_server *s)
{
    tc_response r = ts_api(s, s->key, "POST", "/session", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    char *set = tc_response_header(&r, "set-cookie");
    tc_response_free(&r);
    assert_non_null(set);
    set[strcspn(set, ";")] = '\0';
    return set;
}

/* The page's own refreshes do not keep a session alive; a person's
 * requests do. */
static void check_idle(const ts_server *s)
{
    for (int bg = 1; bg >= 0; bg--) {
        char *c = new_session(s);
        age_sessions(s, "seen_at", 29 * 60 * 1000LL);
        assert_int_equal(cookie_get(s, c, "/tasks", bg), 200);
        age_sessions(s, "seen_at", 2 * 60 * 1000LL);
        assert_int_equal(with_cookie(s, c, "/tasks"), bg ? 401 : 200);
        free(c);
    }
}

static void check_expiry(const ts_server *s)
{
    static const struct {
        const char *column;
        long long back_ms;
    } cases[] = {{"seen_at", 31 * 60 * 1000LL}, {"created_at", 13 * 3600 * 1000LL}};
    for (size_t i = 0; i < 2; i++) {
        char *set = new_session(s);
        assert_int_equal(with_cookie(s, set, "/tasks"), 200);
        /* where the account's events (PHI) go is set with the API key: a
         * session, even a staff member's, cannot read or move it */
        assert_int_equal(with_cookie(s, set, "/webhook"), 403);
        age_sessions(s, cases[i].column, cases[i].back_ms);
        assert_int_equal(with_cookie(s, set, "/tasks"), 401);
        assert_int_equal(with_cookie(s, set, "/dashboard/account"), 401);
        free(set);
    }
}

/* A session opened with the API key ends when the key is rotated (a leaked
 * key's holder does not stay signed in), and so does the key: the server's
 * admit hook saw it valid a moment ago (and keeps that in memory), yet the
 * old key's next request, a POST with a body included, is a 401. The new
 * key is the test's. */
static void check_rotation(ts_server *s)
{
    char old[sizeof(s->key)];
    snprintf(old, sizeof(old), "%s", s->key);
    tc_response r = ts_api(s, old, "GET", "/tasks?limit=1", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    char *set = new_session(s);
    assert_int_equal(with_cookie(s, set, "/tasks"), 200);
    const char *rot[] = {"account", "rotate-key", "demo", NULL};
    char *out = NULL;
    assert_int_equal(ts_cli(s, rot, NULL, &out), 0);
    cJSON *o = cJSON_Parse(out);
    free(out);
    assert_non_null(o);
    snprintf(s->key, sizeof(s->key), "%s", ts_str(o, "api_key"));
    cJSON_Delete(o);
    assert_int_equal(with_cookie(s, set, "/tasks"), 401);
    r = ts_api(s, old, "GET", "/tasks?limit=1", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    tc_response_free(&r);
    r = ts_api(s, old, "POST", "/tasks", "application/json", TS_QUICKSTART, 0);
    assert_int_equal(r.status, 401);
    tc_response_free(&r);
    r = ts_api(s, s->key, "GET", "/tasks?limit=1", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    free(set);
    set = new_session(s); /* the new key signs in */
    assert_int_equal(with_cookie(s, set, "/tasks"), 200);
    free(set);
}

/* trajectory.html (opened with the session): a click on a step highlights
 * that step, not the row above it. */
static void check_trajectory_html(tab *t, const ts_server *s, long long id)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/tasks/%lld/trajectory/trajectory.html", s->base, id);
    go(t, url);
    wait_for(t, "document.querySelectorAll('#list .s').length > 2", "true", T);
    run(t, "document.querySelectorAll('#list .s')[1].click()");
    wait_for(t, "document.querySelector('#list .sel').textContent.split('.')[0]", "\"2\"", T);
    wait_for(t, "document.querySelectorAll('#list .sel').length", "1", T);
}

/* Signs in (a wrong key first), sees the quickstart task complete without a
 * reload, opens it, the account page, CSRF, and signs out. */
static void test_sign_in_tasks_account(void **state)
{
    (void)state;
    ts_server s;
    start(&s, "dash-main");
    check_headers(&s);
    check_expiry(&s);
    check_idle(&s);
    check_rotation(&s);
    tab t;
    tab_open(&t);
    char url[256];
    snprintf(url, sizeof(url), "%s/", s.base);
    go(&t, url);
    wait_for(&t, "document.getElementById('signin').hidden", "false", T);
    wait_for(&t, "document.activeElement.id", "\"key\"", T);
    /* signed out, the page shows no navigation (nor Sign out) at all */
    wait_for(&t, "getComputedStyle(document.getElementById('nav')).display", "\"none\"", T);
    wait_for(&t, "document.querySelector('label[for=key]').textContent", "\"API key\"", T);
    /* a wrong key: refused, with a message (the one failed request) */
    sign_in(&t, "pk_not_a_key");
    wait_for(&t, "document.getElementById('signin-error').textContent",
             "\"That key is not known. Check it and try again.\"", T);
    screens(&t, "sign-in-refused");
    sign_in(&t, s.key);
    wait_for(&t, "document.getElementById('nav').hidden", "false", T);
    wait_for(&t, "getComputedStyle(document.getElementById('signin')).display", "\"none\"", T);
    wait_for(&t, "document.cookie", "\"\"", T); /* HttpOnly: the script never sees it */
    run(&t, "window.notReloaded = 1");

    /* the quickstart, as the client sends it; the list shows it finish */
    cJSON *task = ts_post_json(&s, TS_QUICKSTART, 200);
    long long id = ts_num(task, "id");
    cJSON_Delete(task);
    char js[512];
    snprintf(js, sizeof(js),
             "(document.querySelector('#rows tr[data-id=\"%lld\"] .badge') || {}).textContent", id);
    wait_for(&t, js, "\"Completed\"", 120000);
    wait_for(&t, "window.notReloaded", "1", T);
    wait_for(&t, "document.querySelector('#rows a').textContent", "\"Submit claim #1\"", T);
    screens(&t, "tasks");

    /* the task: its notes with the claim number, its steps with pictures */
    run(&t, "document.querySelector('#rows a').click()");
    wait_for(&t,
             "!!document.getElementById('notes') && "
             "/CLM-/.test(document.getElementById('notes').textContent)",
             "true", T);
    cJSON *api = ts_get_task(&s, s.key, id);
    char want[1024];
    snprintf(want, sizeof(want), "\"%s\"", ts_str(api, "notes"));
    cJSON_Delete(api);
    wait_for(&t, "document.getElementById('notes').textContent", want, T);
    wait_for(&t, "document.querySelectorAll('.steps img.shot').length > 3", "true", T);
    wait_for(&t,
             "[...document.querySelectorAll('.steps img.shot')].every(i => i.complete && "
             "i.naturalWidth > 0 && i.getBoundingClientRect().width >= 160 && i.loading !== "
             "'lazy')",
             "true", T);
    long long steps = eval_num(&t, "document.querySelectorAll('.steps li').length");
    assert_true(steps > 5);
    assert_int_equal(eval_num(&t, "document.querySelectorAll('.timeline div').length"), steps);
    wait_for(&t, "/submit_claim\\.sop:\\d+/.test(document.querySelector('#traj').textContent)",
             "true", T);
    screens(&t, "task");
    run(&t, "document.querySelector('.steps').scrollIntoView()");
    screens(&t, "task-steps");
    run(&t, "scrollTo(0, 0)");

    /* without the CSRF token, a change is refused (the second failed
     * request); with it (the page's own button), it goes through */
    snprintf(js, sizeof(js),
             "fetch('/tasks/%lld/webhook/redeliver', {method: 'POST'}).then(r => r.status)", id);
    wait_for(&t, js, "403", T);
    wait_for(&t, "!!document.getElementById('redeliver')", "true", T);
    run(&t, "document.getElementById('redeliver').click()");
    wait_for(&t, "document.getElementById('redeliver-msg').textContent",
             "\"Queued: it goes out in a moment.\"", T);
    run(&t, "location.hash = '#/tasks'");
    snprintf(js, sizeof(js), "location.hash = '#/tasks/%lld'", id);
    run(&t, js);
    wait_for(&t, "(document.getElementById('actions') || {}).textContent.includes("
                 "'API key redelivered the webhook')", "true", T);

    /* a task the portal turns down: its own words on the page */
    task = ts_post_json(&s,
                        "{\"type\":\"check_eligibility\",\"data\":\"member_id: 999999999\\n"
                        "DOB: 1980-01-01\"}",
                        200);
    long long nf = ts_num(task, "id");
    cJSON_Delete(task);
    cJSON_Delete(ts_wait_status(&s, nf, "failed", 120000));
    snprintf(js, sizeof(js), "location.hash = '#/tasks/%lld'", nf);
    run(&t, js);
    wait_for(&t, "(document.querySelector('h1 .badge') || {}).textContent", "\"Failed\"", T);
    wait_for(&t,
             "document.getElementById('notes').textContent.includes('No member found with that "
             "member ID and date of birth.')",
             "true", T);
    screens(&t, "task-failed");

    /* the account: SOPs, the webhook, its deliveries, a test event */
    run(&t, "document.getElementById('nav-account').click()");
    wait_for(&t, "!!document.getElementById('test-event')", "true", T);
    wait_for(&t, "document.querySelector('#view').textContent.includes('submit_claim_1')", "true",
             T);
    run(&t, "document.getElementById('test-event').click()");
    wait_for(&t, "document.getElementById('test-msg').textContent.startsWith('Delivered: HTTP 200')",
             "true", T);
    assert_true(eval_num(&t, "document.querySelectorAll('table')[1].tBodies[0].rows.length") >= 1);
    screens(&t, "account");

    /* the offline trajectory.html, opened with the session; then back,
     * still signed in */
    check_trajectory_html(&t, &s, id);
    go(&t, url);
    wait_for(&t, "document.getElementById('nav').hidden", "false", T);

    /* Sign out ends the session: the cookie opens nothing any more */
    run(&t, "document.getElementById('sign-out').click()");
    wait_for(&t, "document.getElementById('signin').hidden", "false", T);
    wait_for(&t, "fetch('/session').then(r => r.json()).then(j => !!j.signed_in)", "false", T);
    tab_close(&t, 2); /* the wrong key and the missing token */
    finish(&s);
}

/* An SOP whose step cannot succeed (a button the portal does not have),
 * installed for submit_appeal beside the ask SOP's login.sop. */
static long long post_broken_task(const ts_server *s)
{
    char path[800];
    const char *sop = "sop submit_appeal \"Broken\"\nsummary \"A button that is not there\"\n"
                      "input member_id required\nuse login\nclick link \"Claims\"\n"
                      "click button \"Submit everything\" timeout 2s\n"
                      "finish completed \"done\"\n";
    snprintf(path, sizeof(path), "%s/sop/broken.sop", s->dir);
    assert_int_equal(pt_write_file(path, sop, strlen(sop), 0600), 0);
    char *out = NULL;
    const char *args[] = {"account", "set-sop", "demo", "submit_appeal", path, NULL};
    assert_int_equal(ts_cli(s, args, NULL, &out), 0);
    free(out);
    cJSON *t = ts_post_json(s, "{\"type\":\"submit_appeal\",\"data\":\"member_id: 300059049\"}",
                            200);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    cJSON_Delete(ts_wait_status(s, id, "failed", 120000));
    return id;
}

static void check_failed_step(const ts_server *s, tab *t)
{
    long long id = post_broken_task(s);
    char js[256];
    snprintf(js, sizeof(js), "location.hash = '#/tasks/%lld'", id);
    run(t, js);
    wait_for(t, "(document.querySelector('h1 .badge') || {}).textContent", "\"Failed\"", T);
    /* the first list of steps is the failed one, before every step */
    wait_for(t, "document.querySelectorAll('ol.steps').length", "2", T);
    wait_for(t,
             "[...document.querySelector('ol.steps').children].every(li => "
             "li.classList.contains('failed'))",
             "true", T);
    wait_for(t,
             "document.querySelector('ol.steps .err').textContent.includes('no element matches "
             "button \"Submit everything\"')",
             "true", T);
    wait_for(t, "/broken\\.sop:6/.test(document.querySelector('ol.steps code').textContent)",
             "true", T);
    wait_for(t, "!!document.querySelector('ol.steps img.shot')", "true", T);
    run(t, "document.querySelector('ol.steps details.domsnap').open = true");
    wait_for(t, "/<body/i.test(document.querySelector('ol.steps pre.dom').textContent)", "true", T);
    screens(t, "task-failed-step");
}

/* A member of staff answers and approves from the page; both show who did
 * them. Another account's session sees none of it. */
static void test_question_review_accounts(void **state)
{
    (void)state;
    ts_server s;
    start(&s, "dash-people");
    ts_install_ask_sop(&s);
    char *out = NULL;
    const char *add[] = {"account", "add-user", "demo", "Maria Lopez", NULL};
    assert_int_equal(ts_cli(&s, add, NULL, &out), 0);
    cJSON *o = cJSON_Parse(out);
    free(out);
    char maria[80];
    snprintf(maria, sizeof(maria), "%s", ts_str(o, "dashboard_key"));
    cJSON_Delete(o);
    assert_int_equal(strncmp(maria, "pu_", 3), 0);

    tab t;
    tab_open(&t);
    open_signed_in(&t, &s, maria);
    wait_for(&t, "document.getElementById('who').textContent", "\"Maria Lopez · demo\"", T);
    long long id = ts_post_ask_task(&s);
    cJSON_Delete(ts_wait_status(&s, id, "waiting_for_input", 90000));
    char js[512];
    /* the list counts it at the top */
    wait_for(&t, "document.getElementById('needs').textContent.includes('1 waiting for input')",
             "true", T);
    snprintf(js, sizeof(js), "location.hash = '#/tasks/%lld'", id);
    run(&t, js);
    wait_for(&t, "!!document.getElementById('answer-form')", "true", T);
    cJSON *task = ts_get_task(&s, s.key, id);
    const cJSON *q = cJSON_GetObjectItem(task, "question");
    assert_non_null(q);
    assert_non_null(ts_str(q, "prompt"));
    char want[512];
    snprintf(want, sizeof(want), "\"%s\"", ts_str(q, "prompt"));
    wait_for(&t, "document.getElementById('prompt').textContent", want, T);
    cJSON_Delete(task);
    screens(&t, "task-question");
    run(&t, "document.getElementById('answer').value = '1234567893';"
            "document.querySelector('#answer-form button').click()");
    cJSON_Delete(ts_wait_status(&s, id, "pending_review", 90000));
    wait_for(&t, "!!document.getElementById('approve')", "true", 30000);
    task = ts_get_task(&s, s.key, id);
    /* the page shows what the SOP's `review` step asks to confirm (it
     * showed "[object Object]": the task's `review` is {prompt}) */
    const cJSON *rv = cJSON_GetObjectItem(task, "review");
    assert_non_null(rv);
    assert_non_null(ts_str(rv, "prompt"));
    snprintf(want, sizeof(want), "\"%s\"", ts_str(rv, "prompt"));
    wait_for(&t, "document.getElementById('review').textContent", want, T);
    cJSON_Delete(task);
    screens(&t, "task-review");
    run(&t, "document.getElementById('comment').value = 'NPI checked';"
            "document.getElementById('approve').click()");
    wait_for(&t, "(document.querySelector('h1 .badge') || {}).textContent", "\"Completed\"", 90000);
    wait_for(&t, "document.getElementById('actions').textContent.includes('Maria Lopez answered')",
             "true", T);
    wait_for(&t, "document.getElementById('actions').textContent.includes('Maria Lopez approved')",
             "true", T);

    /* a step that fails: shown first, with its error and the page's DOM */
    check_failed_step(&s, &t);

    /* account B: its own key, its own session, none of A's tasks */
    const char *create[] = {"account", "create", "clinic-b", NULL};
    out = NULL;
    assert_int_equal(ts_cli(&s, create, NULL, &out), 0);
    o = cJSON_Parse(out);
    free(out);
    char bkey[80];
    snprintf(bkey, sizeof(bkey), "%s", ts_str(o, "api_key"));
    cJSON_Delete(o);
    tab b;
    tab_open(&b);
    open_signed_in(&b, &s, bkey);
    wait_for(&b, "document.getElementById('list-empty').hidden", "false", T);
    assert_int_equal(eval_num(&b, "document.querySelectorAll('#rows tr').length"), 0);
    snprintf(js, sizeof(js), "fetch('/tasks/%lld').then(r => r.status)", id);
    wait_for(&b, js, "404", T);
    snprintf(js, sizeof(js), "fetch('/dashboard/tasks/%lld/actions').then(r => r.status)", id);
    wait_for(&b, js, "404", T);
    snprintf(js, sizeof(js), "fetch('/tasks/%lld/trajectory/trajectory.json').then(r => r.status)",
             id);
    wait_for(&b, js, "404", T);
    screens(&b, "tasks-empty");
    tab_close(&b, 3);

    /* removing Maria ends her session at once */
    const char *rm[] = {"account", "remove-user", "demo", "Maria Lopez", NULL};
    out = NULL;
    assert_int_equal(ts_cli(&s, rm, NULL, &out), 0);
    free(out);
    wait_for(&t, "fetch('/session').then(r => r.json()).then(j => !!j.signed_in)", "false", T);
    tab_close(&t, 0);
    finish(&s);
}

PT_TESTS("dashboard", cmocka_unit_test(test_sign_in_tasks_account),
         cmocka_unit_test(test_question_review_accounts));
