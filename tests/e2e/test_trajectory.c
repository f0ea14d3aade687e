/*
 * test_trajectory.c - `portier run --trajectory` on pages that navigate
 * when clicked, in real Chromium: no step waits out its timeout for its
 * screenshot (issue 12: a capture sent while the page navigated was never
 * answered and burned 15 s, silently).
 *
 * Two tiny pages served from loopback, quick enough that a click's
 * navigation commits while the step's capture is on its way. Page A has a link
 * to B; page B has a button whose script goes back to A a moment after the
 * click, so the navigation starts after the step has ended and its capture
 * is already on its way.
 *
 * And a form: its fields share the one picture taken after the last of
 * them (a capture per field held each next field's keystrokes for it),
 * while the click that submits it has its own.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testhttp.h"
#include "tests/support/testproc.h"
#include "util/fsutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLICKS 50
#define STEP_TIMEOUT_MS 5000 /* the SOP's `timeout 5s`: under the 10 s a capture may take */

static const char page_a[] = "<!doctype html><title>A</title><h1>Page A</h1>"
                             "<a href=\"/b.html\">To B</a>";
static const char page_b[] =
    "<!doctype html><title>B</title><h1>Page B</h1>"
    "<button onclick=\"setTimeout(() => { location.href = '/a.html'; }, 20)\">Later to A</button>";

/* "2025-01-02T03:04:05.678Z" as milliseconds, or -1. */
static long long iso_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char page_form[] =
    "<!doctype html><title>Form</title><h1>Claim</h1><form onsubmit=\"event.preventDefault();"
    "document.body.innerHTML='<h1>Sent</h1>'\">"
    "<label>Patient <input name=p></label><label>Member <input name=m></label>"
    "<label>Plan <select name=s><option>Gold<option>Silver</select></label>"
    "<label><input type=checkbox name=c> I attest</label><button>Send</button></form>";

/* Writes the SOP: goto A, then CLICKS clicks, each one navigating. */
static void write_nav_sop(FILE *f)
{
    fprintf(f, "sop click_back_and_forth \"Navigate by click, again and again\"\n"
               "timeout 5s\n\n"
               "goto \"{{portal}}/a.html\"\n");
    for (int i = 0; i < CLICKS / 2; i++)
        fprintf(f, "click link \"To B\"\nclick button \"Later to A\"\n");
    fprintf(f, "wait for \"h1\"\n");
}

/* The form: four fields (an `if` and a `commit` among them: they read, so
 * the fields still share a picture), then the click that sends it. */
static void write_form_sop(FILE *f)
{
    fprintf(f, "sop form \"Fill a form\"\n\n"
               "goto \"{{portal}}/form.html\"\n"
               "fill label \"Patient\" with \"Ann Example\"\n"
               "fill label \"Member\" with \"123456789\"\n"
               "if page contains \"Claim\"\n"
               "  select label \"Plan\" with \"Silver\"\n"
               "end\n"
               "commit\n"
               "check label \"I attest\"\n"
               "click button \"Send\"\n"
               "wait for page contains \"Sent\"\n"
               "finish completed \"Sent\"\n");
}

static cJSON *run_with_trajectory(const char *dir, const char *portal, void (*write)(FILE *))
{
    char sop[4200], data[4200], traj[4200];
    snprintf(sop, sizeof(sop), "%s/nav.sop", dir);
    snprintf(data, sizeof(data), "%s/data.txt", dir);
    snprintf(traj, sizeof(traj), "%s/traj", dir);
    FILE *f = fopen(sop, "w");
    assert_non_null(f);
    write(f);
    fclose(f);
    assert_int_equal(pt_write_file(data, "", 0, 0600), 0);
    char *argv[] = {getenv("PORTIER_BIN"), "run",          sop,  "--data", data, "--portal",
                    (char *)portal,        "--trajectory", traj, NULL};
    if (!argv[0])
        fail_msg("PORTIER_BIN is not set (ctest sets it)");
    char *env[] = {"PORTIER_LOG=debug", NULL};
    char *out = NULL, *err = NULL;
    int status = tp_run(argv, env, &out, &err, 0);
    if (status != 0)
        fail_msg("exit %d\nstdout: %s\nstderr: %s", status, out, err);
    free(out);
    free(err);
    char path[4300], *json = NULL;
    snprintf(path, sizeof(path), "%s/trajectory.json", traj);
    assert_true(pt_read_file(path, 8u << 20, &json, NULL) >= 0);
    cJSON *t = cJSON_Parse(json);
    free(json);
    assert_non_null(t);
    return t;
}

static void fifty_navigating_clicks_never_wait_out_a_timeout(void **state)
{
    (void)state;
    th_server *srv = th_start();
    assert_non_null(srv);
    /* B comes at once: its navigation commits while the click's capture is
     * in flight (what Chromium never answered: the old code burned 15 s on
     * about one click in four here); A a little later */
    th_route(srv, "/a.html", "text/html", page_a, -1, 30);
    th_route(srv, "/b.html", "text/html", page_b, -1, 0);
    char portal[64], dir[] = "/tmp/portier-traj-XXXXXX";
    snprintf(portal, sizeof(portal), "http://127.0.0.1:%d", th_port(srv));
    assert_non_null(mkdtemp(dir));

    cJSON *t = run_with_trajectory(dir, portal, write_nav_sop);
    assert_string_equal(str(t, "status"), "completed");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(t, "steps");
    int n = cJSON_GetArraySize(steps), clicks = 0, pictures = 0, errors = 0, waited_out = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *st = cJSON_GetArrayItem(steps, i);
        const cJSON *next = cJSON_GetArrayItem(steps, i + 1);
        /* what a step costs runs to the next one's start: its screenshot
         * (collected at the next capture) is inside that span */
        long long start = iso_ms(str(st, "started_at"));
        long long end = iso_ms(next ? str(next, "started_at") : str(st, "ended_at"));
        assert_true(start > 0 && end >= start);
        if (end - start >= STEP_TIMEOUT_MS) {
            print_message("step %d (%s) took %lld ms\n", i + 1, str(st, "action"), end - start);
            waited_out++;
        }
        if (strcmp(str(st, "step"), "click") != 0)
            continue;
        clicks++;
        if (str(st, "screenshot"))
            pictures++;
        if (str(st, "screenshot_error")) {
            print_message("step %d: screenshot_error: %s\n", i + 1, str(st, "screenshot_error"));
            errors++;
        }
    }
    print_message("%d clicks: %d screenshots, %d screenshot errors, %d steps at their timeout\n",
                  clicks, pictures, errors, waited_out);
    assert_int_equal(clicks, CLICKS);
    assert_int_equal(waited_out, 0);
    assert_int_equal(pictures + errors, CLICKS); /* each says what became of its picture */
    assert_int_equal(errors, 0);
    /* they went where they were told: both pages, once per click and the goto */
    assert_int_equal(th_hits(srv, "/a.html") + th_hits(srv, "/b.html"), CLICKS + 1);

    cJSON_Delete(t);
    pt_rmtree(dir);
    th_stop(srv);
}

static int step_index(const cJSON *st)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(st, "index");
    return cJSON_IsNumber(i) ? i->valueint : -1;
}

static void a_forms_fields_share_the_picture_after_the_last(void **state)
{
    (void)state;
    th_server *srv = th_start();
    assert_non_null(srv);
    th_route(srv, "/form.html", "text/html", page_form, -1, 0);
    char portal[64], dir[] = "/tmp/portier-traj-XXXXXX";
    snprintf(portal, sizeof(portal), "http://127.0.0.1:%d", th_port(srv));
    assert_non_null(mkdtemp(dir));

    cJSON *t = run_with_trajectory(dir, portal, write_form_sop);
    assert_string_equal(str(t, "status"), "completed");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(t, "steps"), *st;
    const cJSON *fields[4], *click = NULL, *go = NULL, *fin = NULL;
    int nf = 0;
    cJSON_ArrayForEach(st, steps)
    {
        const char *kind = str(st, "step");
        assert_null(str(st, "screenshot_error"));
        if (!strcmp(kind, "fill") || !strcmp(kind, "select") || !strcmp(kind, "check")) {
            assert_true(nf < 4);
            fields[nf++] = st;
        } else if (!strcmp(kind, "click"))
            click = st;
        else if (!strcmp(kind, "goto"))
            go = st;
        else if (!strcmp(kind, "finish"))
            fin = st;
        else if (strcmp(kind, "if") && strcmp(kind, "commit") && strcmp(kind, "wait"))
            fail_msg("unexpected step %s", kind);
    }
    assert_int_equal(nf, 4);
    assert_non_null(click);
    assert_non_null(go);
    /* every field has a picture: the one taken after the last field */
    const char *shared = str(fields[3], "screenshot");
    assert_non_null(shared);
    assert_null(cJSON_GetObjectItemCaseSensitive(fields[3], "screenshot_after"));
    for (int i = 0; i < 3; i++) {
        assert_non_null(str(fields[i], "screenshot"));
        assert_string_equal(str(fields[i], "screenshot"), shared);
        const cJSON *after = cJSON_GetObjectItemCaseSensitive(fields[i], "screenshot_after");
        assert_true(cJSON_IsNumber(after));
        assert_int_equal(after->valueint, step_index(fields[3]));
    }
    /* the goto and the click have pictures of their own; the click's is
     * of what it led to, once the wait saw it: only reads came between it
     * and `finish`, so the two share the one capture */
    assert_non_null(fin);
    assert_non_null(str(go, "screenshot"));
    assert_non_null(str(click, "screenshot"));
    assert_string_not_equal(str(go, "screenshot"), shared);
    assert_string_not_equal(str(click, "screenshot"), shared);
    assert_string_equal(str(click, "screenshot"), str(fin, "screenshot"));
    const cJSON *click_after = cJSON_GetObjectItemCaseSensitive(click, "screenshot_after");
    assert_true(cJSON_IsNumber(click_after));
    assert_int_equal(click_after->valueint, step_index(fin));
    const char *names[] = {str(go, "screenshot"), shared, str(click, "screenshot")};
    for (int i = 0; i < 3; i++) {
        char path[4400], *img = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/traj/%s", dir, names[i]);
        assert_true(pt_read_file(path, 8u << 20, &img, &len) >= 0);
        assert_true(len > 3 && (unsigned char)img[0] == 0xff && (unsigned char)img[1] == 0xd8);
        free(img);
    }
    cJSON_Delete(t);
    pt_rmtree(dir);
    th_stop(srv);
}

PT_TESTS("trajectory", cmocka_unit_test(fifty_navigating_clicks_never_wait_out_a_timeout),
         cmocka_unit_test(a_forms_fields_share_the_picture_after_the_last));
