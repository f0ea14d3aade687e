/*
 * test_masking.c - secrets and one-time codes never show in a trajectory:
 * `portier run --trajectory` fills a sign-in form in real Chromium with a
 * user ID from {{secret.*}}, a code from an `ask` answer and a member id
 * the SOP marks `sensitive`. The screenshot taken with those fields filled
 * differs from the same page filled with the same values in the clear
 * (whose two runs give the same picture, byte for byte), and no value is in
 * the failure DOM although the page mirrors each value into an attribute.
 */
#define _GNU_SOURCE
#include "tests/support/testhttp.h"
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "util/fsutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A form that keeps what is typed in its DOM too (data-v), as some do. */
static const char page[] =
    "<!doctype html><title>Sign in</title><style>body{font:16px sans-serif}"
    "input{display:block;margin:8px;font:20px monospace;width:300px}</style>"
    "<form onsubmit=\"return false\" oninput=\"event.target.setAttribute('data-v', "
    "event.target.value)\">"
    "<label for=u>User ID</label><input id=u>"
    "<label for=c>Verification code</label><input id=c>"
    "<label for=m>Member</label><input id=m>"
    "<button type=button>Next</button></form>";

static const char *const values[] = {"portier.demo", "481516", "M-777310"};

/* The SOP: sensitive (secret, answer, `sensitive`) or the same values in
 * the clear; it fails at its end so that the failure DOM is written. */
static void write_sop(const char *path, int sensitive)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "sop mask \"Masking\"\ntimeout 3s\ngoto \"{{portal}}/login.html\"\n");
    if (sensitive)
        fprintf(f, "fill label \"User ID\" with \"{{secret.portal_user}}\"\n"
                   "ask sms_code \"The code?\"\n"
                   "fill label \"Verification code\" with sms_code\n"
                   "fill label \"Member\" with \"%s\" sensitive\n",
                values[2]);
    else
        fprintf(f,
                "fill label \"User ID\" with \"%s\"\n"
                "fill label \"Verification code\" with \"%s\"\n"
                "fill label \"Member\" with \"%s\"\n",
                values[0], values[1], values[2]);
    fprintf(f, "click button \"Next\"\nexpect visible \"#never\" else \"stops here\"\n");
    fclose(f);
}

typedef struct outcome {
    char *shot;   /* the click step's screenshot (JPEG bytes) */
    size_t shot_len;
    char *dom;    /* failure-dom.html */
    char *json;   /* trajectory.json */
} outcome;

/* The file the trajectory names for the click step's screenshot (new). */
static char *click_shot(const char *json)
{
    cJSON *t = cJSON_Parse(json), *st;
    assert_non_null(t);
    char *name = NULL;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(t, "steps"))
    {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(st, "step"));
        const char *shot = cJSON_GetStringValue(cJSON_GetObjectItem(st, "screenshot"));
        if (kind && !strcmp(kind, "click") && shot)
            name = strdup(shot);
    }
    cJSON_Delete(t);
    assert_non_null(name);
    return name;
}

static outcome run_form(const char *dir, const char *portal, int sensitive, int n)
{
    char sop[4200], data[4200], secrets[4200], traj[4200], path[4400];
    snprintf(sop, sizeof(sop), "%s/mask-%d.sop", dir, n);
    snprintf(data, sizeof(data), "%s/data.txt", dir);
    snprintf(secrets, sizeof(secrets), "%s/s.secrets", dir);
    snprintf(traj, sizeof(traj), "%s/traj-%d", dir, n);
    write_sop(sop, sensitive);
    assert_int_equal(pt_write_file(data, "", 0, 0600), 0);
    char sec[64];
    snprintf(sec, sizeof(sec), "portal_user=%s\n", values[0]);
    assert_int_equal(pt_write_file(secrets, sec, strlen(sec), 0600), 0);
    char answer[64];
    snprintf(answer, sizeof(answer), "sms_code=%s", values[1]);
    /* in the clear: no secrets (a secret's value is masked in any text) */
    char *argv[] = {getenv("PORTIER_BIN"), "run",      sop,           "--data", data,
                    "--portal",            (char *)portal, "--trajectory", traj,  "--input",
                    answer,                sensitive ? "--secrets" : NULL, secrets,     NULL};
    if (!argv[0])
        fail_msg("PORTIER_BIN is not set (ctest sets it)");
    char *out = NULL, *err = NULL;
    int status = tp_run(argv, NULL, &out, &err, 0);
    if (status != 11) /* failed, at the expect */
        fail_msg("exit %d\nstdout: %s\nstderr: %s", status, out, err);
    free(out);
    free(err);
    outcome o = {0};
    snprintf(path, sizeof(path), "%s/trajectory.json", traj);
    assert_int_equal(pt_read_file(path, 8u << 20, &o.json, NULL), 0);
    char *name = click_shot(o.json);
    snprintf(path, sizeof(path), "%s/%s", traj, name);
    free(name);
    assert_int_equal(pt_read_file(path, 8u << 20, &o.shot, &o.shot_len), 0);
    snprintf(path, sizeof(path), "%s/failure-dom.html", traj);
    assert_int_equal(pt_read_file(path, 8u << 20, &o.dom, NULL), 0);
    return o;
}

static void outcome_free(outcome *o)
{
    free(o->shot);
    free(o->dom);
    free(o->json);
}

static void sensitive_fields_are_masked_in_screenshots(void **state)
{
    (void)state;
    th_server *srv = th_start();
    assert_non_null(srv);
    th_route(srv, "/login.html", "text/html", page, -1, 0);
    char portal[64], dir[] = "/tmp/portier-mask-XXXXXX";
    snprintf(portal, sizeof(portal), "http://127.0.0.1:%d", th_port(srv));
    assert_non_null(mkdtemp(dir));

    outcome clear1 = run_form(dir, portal, 0, 1), clear2 = run_form(dir, portal, 0, 2);
    outcome masked = run_form(dir, portal, 1, 3);
    /* the same page with the same values in the clear: the same picture */
    assert_int_equal(clear1.shot_len, clear2.shot_len);
    assert_memory_equal(clear1.shot, clear2.shot, clear1.shot_len);
    /* masked, the fields' pixels differ */
    assert_true(masked.shot_len != clear1.shot_len ||
                memcmp(masked.shot, clear1.shot, clear1.shot_len) != 0);
    /* the page keeps every value in its DOM; the snapshot shows none */
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(strstr(clear1.dom, values[i]));
        assert_null(strstr(masked.dom, values[i]));
        assert_null(strstr(masked.json, values[i]));
    }
    /* and the mask was taken back once the picture was taken */
    assert_null(strstr(masked.dom, "text-security"));
    outcome_free(&clear1);
    outcome_free(&clear2);
    outcome_free(&masked);
    pt_rmtree(dir);
    th_stop(srv);
}

PT_TESTS("masking", cmocka_unit_test(sensitive_fields_are_masked_in_screenshots));
