/*
 * test_store_copy.c - `portier store copy`: a demo installation on SQLite,
 * with a finished claim and its delivered webhook, moved to a real
 * PostgreSQL (tests/support/testpg.h), which a command that only reads
 * leaves empty and `serve` refuses without a master key; then the copy
 * serves the same
 * installation: the old API key works, the old task reads back with its
 * sealed notes, a new task takes the next number and a new id, and a
 * webhook signed with the copied secret verifies with the original one.
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testmain.h"
#include "tests/support/testpg.h"
#include "tests/support/testproc.h"
#include "tests/support/testserve.h"
#include "util/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *bin(void)
{
    const char *b = getenv("PORTIER_BIN");
    return b ? b : "./portier";
}

/* The verification results of the receiver's log line: with secret 0. */
static void assert_verified(const cJSON *line)
{
    int ok = 0, body_ok = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(line, "verifiedWith")) ok |= (int)v->valuedouble == 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(line, "bodySignatureWith")) body_ok |=
        (int)v->valuedouble == 0;
    if (!ok || !body_ok)
        fail_msg("delivery not verified with the original secret: %s",
                 cJSON_PrintUnformatted(line));
}

static int portier(const char *const *args, char **out, char **err)
{
    char *argv[16] = {(char *)bin()};
    int n = 1;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return tp_run(argv, NULL, out, err, 0);
}

static void test_copy_a_demo_installation(void **state)
{
    (void)state;
    ts_receiver r;
    ts_server a;
    char *d = pt_mkdtemp("copy-recv");
    ts_receiver_start(&r, d);
    char hook[128];
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/hook", r.port);
    const char *extra[] = {"--webhook-url", hook, "--allow-private-webhooks", NULL};
    ts_start_demo(&a, "copy-src", extra);
    ts_receiver_add_secret(&r, a.whsec);

    /* the installation: a finished claim, its webhook delivered */
    cJSON *t = ts_post_json(&a, TS_QUICKSTART, 200);
    long long first = ts_num(t, "id");
    cJSON_Delete(t);
    t = ts_wait_status(&a, first, "completed,completed_with_issues,failed", 120000);
    assert_string_equal(ts_str(t, "status"), "completed");
    char notes[1024];
    snprintf(notes, sizeof(notes), "%s", ts_str(t, "notes") ? ts_str(t, "notes") : "");
    assert_true(notes[0]);
    cJSON_Delete(t);
    cJSON *got = ts_receiver_wait(&r, "/hook", 1, 60000);
    assert_int_equal(cJSON_GetArraySize(got), 1);
    cJSON_Delete(got);
    assert_int_equal(ts_stop(&a, 0), 0);

    /* the copy, into an empty PostgreSQL database named by a URL */
    char conninfo[600], url[700];
    assert_int_equal(tpg_new_db(conninfo, sizeof(conninfo)), 0);
    assert_int_equal(tpg_url(conninfo, url, sizeof(url)), 0);
    char *out = NULL, *err = NULL;
    /* a command that only reads creates nothing in an empty database */
    const char *list[] = {"account", "list", "--db", url, NULL};
    assert_int_equal(portier(list, &out, &err), 1);
    assert_non_null(strstr(err, "no portier schema"));
    free(out);
    free(err);
    char *has = tpg_value(conninfo, "SELECT count(*) FROM pg_tables WHERE schemaname='public'");
    assert_string_equal(has, "0");
    free(has);
    /* with PostgreSQL the master key comes from outside, never from beside */
    char nodata[700];
    snprintf(nodata, sizeof(nodata), "%s/nodata", a.dir);
    const char *serve[] = {"serve", "--db", url, "--listen", "127.0.0.1:0", "--data-dir", nodata,
                           NULL};
    assert_int_not_equal(portier(serve, &out, &err), 0);
    assert_non_null(strstr(err, "PORTIER_MASTER_KEY"));
    assert_int_not_equal(access(nodata, F_OK), 0); /* refused before making anything */
    free(out);
    free(err);
    has = tpg_value(conninfo, "SELECT count(*) FROM pg_tables WHERE schemaname='public'");
    assert_string_equal(has, "0");
    free(has);
    const char *copy[] = {"store", "copy", "--from", a.db, "--to", url, NULL};
    int rc = portier(copy, &out, &err);
    if (rc != 0)
        fail_msg("store copy exited %d: %s", rc, err);
    cJSON *res = cJSON_Parse(out);
    assert_true(ts_num(res, "rows") > 10);
    cJSON_Delete(res);
    free(out);
    free(err);
    /* a second copy would merge two installations: refused, nothing written */
    rc = portier(copy, &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "is not empty"));
    free(out);
    free(err);
    char *n = tpg_value(conninfo, "SELECT count(*) FROM tasks");
    assert_string_equal(n, "1");
    free(n);

    /* the copy serves: the same key, data folder and master key */
    ts_server b = a;
    snprintf(b.db, sizeof(b.db), "%s", conninfo);
    b.pid = 0;
    char key[700];
    snprintf(key, sizeof(key), "%s.key", a.db);
    setenv("PORTIER_MASTER_KEY_FILE", key, 1);
    const char *args[] = {"--workers", "0", "--allow-private-webhooks", NULL};
    assert_int_equal(ts_start(&b, args, NULL), 0);
    t = ts_get_task(&b, a.key, first);
    assert_non_null(t);
    assert_string_equal(ts_str(t, "status"), "completed");
    assert_string_equal(ts_str(t, "notes"), notes); /* sealed, and it opens */
    cJSON_Delete(t);
    t = ts_post_json(&b, TS_QUICKSTART, 200);
    assert_int_equal(ts_num(t, "task_number"), 2);
    assert_true(ts_num(t, "id") > first); /* the identity went on past the copied ids */
    cJSON_Delete(t);

    /* the copied webhook secret signs; the original one verifies */
    const char *ping[] = {"webhook", "test", "demo", "--db", conninfo, "--allow-private-webhooks",
                          NULL}; /* the demo's receiver is on loopback */
    rc = portier(ping, &out, &err);
    if (rc != 0)
        fail_msg("webhook test exited %d: %s", rc, err);
    free(out);
    free(err);
    got = ts_receiver_wait(&r, "/hook", 2, 30000);
    assert_int_equal(cJSON_GetArraySize(got), 2);
    cJSON *line = cJSON_GetArrayItem(got, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "event")), "ping");
    assert_verified(line);
    cJSON_Delete(got);
    assert_int_equal(ts_stop(&b, 0), 0);
    ts_receiver_stop(&r);
    ts_cleanup(&a);
    pt_rmtree(d);
    free(d);
    tpg_stop();
}

PT_TESTS("store_copy", cmocka_unit_test(test_copy_a_demo_installation));
