/*
 * test_cli_browse.c - `portier browse` and the binary's own flags, run as a
 * user would run them: the real binary, a page on loopback, real Chromium.
 *
 * Each run gets a TMPDIR of its own, so "no browser left behind" is checked
 * by looking for any process (or file) that mentions that folder.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testhttp.h"
#include "tests/support/testproc.h"
#include "cdp/cdp.h"
#include "util/fsutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *bin(void)
{
    const char *b = getenv("PORTIER_BIN");
    if (!b)
        fail_msg("PORTIER_BIN is not set (ctest sets it)");
    return b;
}

static int dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n == 0;
}

typedef struct run {
    int status;
    char *out, *err;
} run;

/* Runs portier with args under a fresh TMPDIR; checks nothing is left. */
static run portier(const char *const *args, int kill_after_ms)
{
    char *tmp = pt_mkdtemp("portier-cli");
    char *env_tmp = NULL;
    if (asprintf(&env_tmp, "TMPDIR=%s", tmp) < 0)
        fail();
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)bin();
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *env[] = {env_tmp, NULL};
    run r;
    r.status = tp_run(argv, env, &r.out, &r.err, kill_after_ms);
    int left = tp_wait_none(tmp, 10000);
    if (left)
        fail_msg("%d processes still mention %s after portier exited", left, tmp);
    if (!dir_empty(tmp))
        fail_msg("portier left files in its TMPDIR %s", tmp);
    pt_rmtree(tmp);
    free(tmp);
    free(env_tmp);
    return r;
}

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
}

static void help_and_version(void **state)
{
    (void)state;
    run r = portier((const char *[]){"--version", NULL}, 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "portier " PORTIER_VERSION "\n");
    run_free(&r);
    r = portier((const char *[]){"--help", NULL}, 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "browse URL"));
    run_free(&r);
    r = portier((const char *[]){"brwose", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown command 'brwose'"));
    run_free(&r);
}

/* Every subcommand's --help goes to stdout with exit 0; option errors name
 * the option and what it wants; a read-only command creates no file. */
static void every_help_and_option_error(void **state)
{
    (void)state;
    const char *cmds[] = {"serve", "account", "webhook", "browse", "portal", "run", "lint"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        run r = portier((const char *[]){cmds[i], "--help", NULL}, 0);
        if (r.status != 0 || !strstr(r.out, "usage: portier"))
            fail_msg("%s --help: exit %d, stdout %s", cmds[i], r.status, r.out);
        run_free(&r);
    }
    run r = portier((const char *[]){"--help", NULL}, 0);
    assert_non_null(strstr(r.out, "--record DIR"));
    assert_non_null(strstr(r.out, "--replay DIR"));
    assert_non_null(strstr(r.out, "--against"));
    assert_non_null(strstr(r.out, "--format text|json"));
    run_free(&r);
    r = portier((const char *[]){"serve", "--worker", "4", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option '--worker' (did you mean --workers?)"));
    run_free(&r);
    r = portier((const char *[]){"serve", "--workers", "99", NULL}, 0);
    assert_non_null(strstr(r.err, "--workers takes a number of workers from 0 to 64"));
    run_free(&r);
    r = portier((const char *[]){"run", "x.sop", "--dta", "d", NULL}, 0);
    assert_non_null(strstr(r.err, "unknown option '--dta' (did you mean --data?)"));
    run_free(&r);
    r = portier((const char *[]){"lint", "x.sop", "--format", "yaml", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--format takes text or json"));
    run_free(&r);
    char db[] = "/tmp/portier-typo-XXXXXX";
    assert_non_null(mkdtemp(db));
    char path[64];
    snprintf(path, sizeof(path), "%s/typo.db", db);
    r = portier((const char *[]){"account", "list", "--db", path, NULL}, 0);
    assert_int_equal(r.status, 1);
    assert_int_equal(access(path, F_OK), -1);
    run_free(&r);
    rmdir(db);
}

static void browse_prints_json_and_saves_png(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html",
             "<title>Eligibility</title><h1>Coverage</h1><script>window.plan = 'PPO'</script>", -1,
             0);
    char url[128], png[] = "/tmp/portier-browse-XXXXXX.png";
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", th_port(s));
    int fd = mkstemps(png, 4);
    close(fd);
    run r = portier((const char *[]){"browse", url, "--eval",
                                     "({title: document.title, plan, n: [1, 2]})", "--screenshot",
                                     png, NULL},
                    0);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.out, "{\"title\":\"Eligibility\",\"plan\":\"PPO\",\"n\":[1,2]}\n");
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pt_read_file(png, 50 << 20, &data, &len), 0);
    assert_true(len > 1000);
    assert_memory_equal(data, "\x89PNG\r\n\x1a\n", 8);
    free(data);
    unlink(png);
    run_free(&r);
    th_stop(s);
}

static void browse_uses_a_running_browser(void **state)
{
    (void)state;
    char *tmp = pt_mkdtemp("browse-remote");
    char url[512];
    int remote = tp_remote_browser(tmp, url, sizeof(url));
    assert_true(remote > 0);
    run r = portier((const char *[]){"browse", "data:text/html,<title>remote</title>", "--eval",
                                     "document.title", "--browser", url, NULL},
                    0);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    assert_string_equal(r.out, "\"remote\"\n");
    run_free(&r);
    /* the browser it borrowed still works */
    char err[CDP_ERR_MAX];
    cdp_browser *b = NULL;
    assert_int_equal(cdp_connect(url, &b, err), 0);
    cdp_page *p = NULL;
    assert_int_equal(cdp_page_open(b, NULL, &p, err), 0);
    cJSON *v = NULL;
    assert_int_equal(cdp_page_eval(p, NULL, "2 + 2", &v, 10000, err), 0);
    assert_int_equal(v->valueint, 4);
    cJSON_Delete(v);
    cdp_page_close(p);
    cdp_close(b);
    tp_stop_browser(remote);
    assert_int_equal(pt_rmtree(tmp), 0);
    free(tmp);
}

static void browse_errors_say_what_and_where(void **state)
{
    (void)state;
    run r = portier((const char *[]){"browse", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no URL"));
    run_free(&r);
    r = portier((const char *[]){"browse", "http://x", "--wait", "forever", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--wait takes load or idle"));
    run_free(&r);
    r = portier((const char *[]){"browse", "data:text/html,x", "--eval", "nope.nope", NULL}, 0);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "--eval: script threw: ReferenceError: nope is not defined"));
    assert_string_equal(r.out, "");
    run_free(&r);
    r = portier((const char *[]){"browse", "data:text/html,x", "--browser",
                                 "ws://127.0.0.1:9/devtools/browser/none", NULL},
                0);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "ws://127.0.0.1:9/devtools/browser/none"));
    run_free(&r);
}

static void browse_stops_cleanly_on_sigterm(void **state)
{
    (void)state;
    run r = portier((const char *[]){"browse", "data:text/html,x", "--eval",
                                     "new Promise(() => {})", "--timeout", "120000", NULL},
                    4000);
    if (r.status != 130)
        fail_msg("exit %d, stderr: %s", r.status, r.err);
    assert_non_null(strstr(r.err, "interrupted"));
    run_free(&r);
}

/* A signal during start-up used to wait out the eval's whole timeout. */
static void browse_stops_on_sigterm_during_startup(void **state)
{
    (void)state;
    run r = portier((const char *[]){"browse", "data:text/html,x", "--eval",
                                     "new Promise(() => {})", "--timeout", "120000", NULL},
                    300);
    /* 130: it stopped itself; 143: on a loaded machine the signal came
     * before the program had started (before main), and the kernel's default
     * ended it. Either way at once, and with no browser left (checked by
     * portier() above). */
    if (r.status != 130 && r.status != 143)
        fail_msg("exit %d, stderr: %s", r.status, r.err);
    assert_null(strstr(r.err, "no reply within"));
    assert_null(strstr(r.err, "did not finish loading"));
    run_free(&r);
}

/* `portier portal` serves until told to stop, then removes its data. */
static void portal_serves_until_stopped(void **state)
{
    (void)state;
    run r =
        portier((const char *[]){"portal", "--listen", "127.0.0.1:0", "--mfa", "sms", NULL}, 2500);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "sandbox portal: http://127.0.0.1:"));
    assert_non_null(strstr(r.out, "appeals site:   http://localhost:"));
    char *data = strstr(r.out, "data:");
    assert_non_null(data);
    char dir[512];
    assert_int_equal(sscanf(data, "data: %511s", dir), 1);
    assert_int_equal(access(dir, F_OK), -1); /* its temporary data went with it */
    run_free(&r);
    r = portier((const char *[]){"portal", "--mfa", "fingerprint", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--mfa takes totp, sms or none"));
    run_free(&r);
    r = portier((const char *[]){"portal", "--listen", "nowhere", NULL}, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--listen takes HOST:PORT"));
    run_free(&r);
}

PT_TESTS("cli_browse", cmocka_unit_test(portal_serves_until_stopped),
         cmocka_unit_test(browse_stops_on_sigterm_during_startup),
         cmocka_unit_test(help_and_version), cmocka_unit_test(every_help_and_option_error),
         cmocka_unit_test(browse_prints_json_and_saves_png),
         cmocka_unit_test(browse_uses_a_running_browser),
         cmocka_unit_test(browse_errors_say_what_and_where),
         cmocka_unit_test(browse_stops_cleanly_on_sigterm));
