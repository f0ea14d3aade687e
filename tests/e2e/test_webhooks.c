/*
 * test_webhooks.c - webhook delivery end to end: `portier serve` as a real
 * process, a receiver in Node that verifies every delivery with the
 * `standardwebhooks` and `canonicalize` packages from npm (implementations
 * that are not ours), real HTTP on loopback, SQLite files.
 *
 * The OpenAPI contract is checked here too (the same set-up): a Node script
 * holds every answer to docs/openapi.yaml with Ajv.
 *
 * Tasks here end without a browser: the server is pointed at a browser that
 * is not there, so each task fails after its two attempts, and that final
 * status is a real event like any other.
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testcurl.h"
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "tests/support/testserve.h"
#include "server/keys.h"
#include "server/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void assert_verified(const cJSON *line, int secret_index)
{
    int ok = 0, body_ok = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(line, "verifiedWith")) ok |=
        (int)v->valuedouble == secret_index;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(line, "bodySignatureWith")) body_ok |=
        (int)v->valuedouble == secret_index;
    if (!ok || !body_ok)
        fail_msg("delivery not verified with secret %d: %s", secret_index,
                 cJSON_PrintUnformatted(line));
}

typedef struct env {
    ts_server s;
    ts_receiver r;
    char key[128], whsec[128];
} env;

static void start(env *e, const char *name, const char *path, const char *const *server_env)
{
    ts_init(&e->s, name);
    ts_receiver_start(&e->r, e->s.dir);
    char url[256], sop_file[4200], *out = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->r.port, path);
    const char *create[] = {
        "account", "create", "acme", "--webhook-url", url, "--allow-private-webhooks", NULL};
    assert_int_equal(ts_cli(&e->s, create, NULL, &out), 0);
    cJSON *o = cJSON_Parse(out);
    snprintf(e->key, sizeof(e->key), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "api_key")));
    snprintf(e->whsec, sizeof(e->whsec), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(o, "webhook_secret")));
    cJSON_Delete(o);
    free(out);
    ts_receiver_add_secret(&e->r, e->whsec);
    pt_home_path("sops/sandbox/check_eligibility.sop", sop_file, sizeof(sop_file));
    const char *setsop[] = {"account", "set-sop", "acme", "check_eligibility", sop_file, NULL};
    assert_int_equal(ts_cli(&e->s, setsop, NULL, NULL), 0);
    /* the receiver is on loopback */
    const char *args[] = {"--browser",
                          "ws://127.0.0.1:9/devtools/browser/none",
                          "--max-body",
                          "65536",
                          "--allow-private-webhooks",
                          NULL};
    const char *envs[8] = {"PORTIER_WEBHOOK_RETRY_SCHEDULE=0,1,1,1,1"};
    for (int i = 0; server_env && server_env[i] && i < 6; i++)
        envs[i + 1] = server_env[i];
    assert_int_equal(ts_start(&e->s, args, envs), 0);
}

static void stop(env *e)
{
    int rc = ts_stop(&e->s, 0);
    if (rc) {
        char *log = ts_log(&e->s);
        fprintf(stderr, "%s\n", log);
        free(log);
    }
    assert_int_equal(rc, 0);
    ts_receiver_stop(&e->r);
    ts_cleanup(&e->s);
}

static tc_response call(env *e, const char *method, const char *path, const char *body)
{
    tc_client *c = tc_new();
    char h[256], url[512];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", e->key);
    tc_header(c, h);
    snprintf(url, sizeof(url), "%s%s", e->s.base, path);
    tc_response r =
        tc_request(c, method, url, body ? "application/json" : NULL, body, body ? strlen(body) : 0);
    tc_free(c);
    return r;
}

/* A task that ends (failed: no browser) and so fires its event. */
static long long finished_task(env *e)
{
    tc_response r = call(e, "POST", "/tasks",
                         "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                         "dob: 1949-12-23\"}");
    assert_int_equal(r.status, 200);
    cJSON *t = cJSON_Parse(r.body);
    long long id = (long long)cJSON_GetObjectItem(t, "id")->valuedouble;
    cJSON_Delete(t);
    tc_response_free(&r);
    char path[64];
    snprintf(path, sizeof(path), "/tasks/%lld", id);
    int64_t until = pt_mono_ms() + 30000;
    while (pt_mono_ms() < until) {
        r = call(e, "GET", path, NULL);
        int done = r.body && strstr(r.body, "\"status\":\"failed\"");
        tc_response_free(&r);
        if (done)
            return id;
        pt_sleep_ms(100);
    }
    fail_msg("task %lld did not end", id);
    return 0;
}

static cJSON *deliveries(env *e, long long id)
{
    char path[96];
    snprintf(path, sizeof(path), "/tasks/%lld/deliveries", id);
    tc_response r = call(e, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    cJSON *d = cJSON_DetachItemFromObject(o, "data");
    cJSON_Delete(o);
    return d;
}

/* 500, 500, 200: exactly three attempts, one webhook-id, each verified by
 * standardwebhooks and the body signature by canonicalize; the envelope and
 * task fields as in the reference. Then a redelivery with the same id. */
static void test_retry_until_2xx(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-flaky", "/flaky", NULL);
    long long id = finished_task(&e);
    cJSON *got = ts_receiver_wait(&e.r, "/flaky", 3, 20000);
    assert_int_equal(cJSON_GetArraySize(got), 3);
    const char *first = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "id"));
    assert_non_null(first);
    char wid[64];
    snprintf(wid, sizeof(wid), "%s", first);
    cJSON *line;
    cJSON_ArrayForEach(line, got)
    {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "id")), wid);
        assert_verified(line, 0);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "event")),
                            "task_finished");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "status")), "failed");
        char *fields = cJSON_PrintUnformatted(cJSON_GetObjectItem(line, "keys"));
        assert_string_equal(fields, "[\"id\",\"accountId\",\"task_number\",\"status\",\"handler\","
                                  "\"title\",\"instructions\",\"trajectory_id\",\"startedAt\","
                                  "\"completedAt\",\"failedAt\",\"notes\",\"createdAt\","
                                  "\"updatedAt\",\"type\",\"question\",\"review\",\"outputs\"]");
        free(fields);
        fields = cJSON_PrintUnformatted(cJSON_GetObjectItem(line, "envelopeKeys"));
        assert_string_equal(fields, "[\"signature\",\"event\",\"created_at\",\"data\"]");
        free(fields);
    }
    pt_sleep_ms(1500); /* no fourth attempt */
    cJSON_Delete(got);
    got = ts_received(&e.r, "/flaky", NULL);
    assert_int_equal(cJSON_GetArraySize(got), 3);
    cJSON *d = deliveries(&e, id);
    assert_int_equal(cJSON_GetArraySize(d), 3);
    for (int i = 0; i < 3; i++) /* each attempt numbered, with where it went */
        assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(d, i), "attempt")->valuedouble,
                         i + 1);
    assert_non_null(strstr(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "url")), "/flaky"));
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "http_status")->valuedouble,
                     500);
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(d, 2), "http_status")->valuedouble,
                     200);
    cJSON_Delete(d);

    char path[96];
    snprintf(path, sizeof(path), "/tasks/%lld/webhook/redeliver", id);
    tc_response r = call(&e, "POST", path, NULL);
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, wid));
    tc_response_free(&r);
    cJSON_Delete(got);
    got = ts_receiver_wait(&e.r, "/flaky", 4, 10000);
    assert_int_equal(cJSON_GetArraySize(got), 4);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 3), "id")),
                        wid);
    cJSON_Delete(got);
    stop(&e);
}

/* 410 disables the endpoint: one attempt, and later events are not sent. */
static void test_gone_disables(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-gone", "/gone", NULL);
    finished_task(&e);
    cJSON *got = ts_receiver_wait(&e.r, "/gone", 1, 10000);
    assert_int_equal(cJSON_GetArraySize(got), 1);
    cJSON_Delete(got);
    long long second = finished_task(&e);
    pt_sleep_ms(2500);
    got = ts_received(&e.r, "/gone", NULL);
    assert_int_equal(cJSON_GetArraySize(got), 1);
    cJSON_Delete(got);
    cJSON *d = deliveries(&e, second);
    char *j = cJSON_PrintUnformatted(d);
    assert_non_null(strstr(j, "disabled"));
    free(j);
    cJSON_Delete(d);
    char *out = NULL;
    const char *list[] = {"account", "list", NULL};
    ts_cli(&e.s, list, NULL, &out);
    assert_non_null(strstr(out, "\"webhook_disabled\":\ttrue"));
    free(out);
    stop(&e);
}

/* A receiver that hangs is timed out and retried, then dead-lettered;
 * a redirect is a failed attempt, not followed. */
static void test_hang_timeout_and_redirect(void **state)
{
    (void)state;
    env e;
    const char *envs[] = {"PORTIER_WEBHOOK_TIMEOUT_MS=700", NULL};
    start(&e, "wh-hang", "/hang", envs);
    long long id = finished_task(&e);
    cJSON *got = ts_receiver_wait(&e.r, "/hang", 5, 30000);
    assert_int_equal(cJSON_GetArraySize(got), 5);
    cJSON_Delete(got);
    pt_sleep_ms(1500);
    cJSON *d = deliveries(&e, id);
    assert_int_equal(cJSON_GetArraySize(d), 5);
    char *j = cJSON_PrintUnformatted(d);
    assert_non_null(strcasestr(j, "timed out"));
    free(j);
    cJSON_Delete(d);
    tc_client *c = tc_new();
    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", e.s.base);
    tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
    tc_free(c);
    assert_int_equal(ts_metric(r.body, "portier_webhook_dead_letters_total", NULL), 1);
    assert_int_equal(ts_metric(r.body, "portier_webhook_events", "state=\"dead\""), 1);
    tc_response_free(&r);

    char hook[128];
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/redirect", e.r.port);
    const char *set[] = {"account", "set-webhook", "acme", hook, "--allow-private-webhooks", NULL};
    assert_int_equal(ts_cli(&e.s, set, NULL, NULL), 0);
    id = finished_task(&e);
    got = ts_receiver_wait(&e.r, "/redirect", 5, 30000);
    assert_int_equal(cJSON_GetArraySize(got), 5);
    cJSON_Delete(got);
    got = ts_received(&e.r, "/ok", NULL); /* the Location was never followed */
    assert_int_equal(cJSON_GetArraySize(got), 0);
    cJSON_Delete(got);
    stop(&e);
}

/* Retry-After asks for longer than the schedule (1 s here): honoured. */
static void test_retry_after_honoured(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-busy", "/busy", NULL);
    finished_task(&e);
    cJSON *got = ts_receiver_wait(&e.r, "/busy", 2, 20000);
    assert_int_equal(cJSON_GetArraySize(got), 2);
    double first = cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "at")->valuedouble;
    double second = cJSON_GetObjectItem(cJSON_GetArrayItem(got, 1), "at")->valuedouble;
    /* a lower bound (the schedule alone would retry after 1 s): a correctness
     * check that a slow machine only makes easier */
    if (second - first < 2900)
        fail_msg("retried %.0f ms after a Retry-After: 3", second - first);
    cJSON_Delete(got);
    stop(&e);
}

/* kill -9 while the event is in flight: after the restart it arrives, with
 * the same id. */
static void test_kill9_then_delivered(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-kill9", "/hang", NULL);
    long long id = finished_task(&e);
    cJSON *got = ts_receiver_wait(&e.r, "/hang", 1, 10000);
    assert_int_equal(cJSON_GetArraySize(got), 1);
    char *wid = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "id")));
    cJSON_Delete(got);
    assert_int_equal(ts_stop(&e.s, 1), 128 + 9);
    char hook[128];
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/ok", e.r.port);
    const char *set[] = {"account", "set-webhook", "acme", hook, "--allow-private-webhooks", NULL};
    assert_int_equal(ts_cli(&e.s, set, NULL, NULL), 0);
    const char *args[] = {"--browser", "ws://127.0.0.1:9/devtools/browser/none",
                          "--allow-private-webhooks", NULL};
    const char *envs[] = {"PORTIER_WEBHOOK_RETRY_SCHEDULE=0,1,1,1,1", NULL};
    assert_int_equal(ts_start(&e.s, args, envs), 0);
    got = ts_receiver_wait(&e.r, "/ok", 1, 15000);
    assert_int_equal(cJSON_GetArraySize(got), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "id")),
                        wid);
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(got, 0), "taskId")->valuedouble,
                     id);
    assert_verified(cJSON_GetArrayItem(got, 0), 0);
    cJSON_Delete(got);
    free(wid);
    stop(&e);
}

/* Rotation: both signatures during the grace period; `webhook test`. */
static void test_rotation_and_ping(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-rotate", "/ok", NULL);
    char *out = NULL;
    const char *rot[] = {"account", "rotate-webhook-secret", "acme", NULL};
    assert_int_equal(ts_cli(&e.s, rot, NULL, &out), 0);
    cJSON *o = cJSON_Parse(out);
    free(out);
    const char *fresh = cJSON_GetStringValue(cJSON_GetObjectItem(o, "webhook_secret"));
    assert_non_null(fresh);
    assert_string_not_equal(fresh, e.whsec);
    ts_receiver_add_secret(&e.r, fresh);
    cJSON_Delete(o);
    finished_task(&e);
    cJSON *got = ts_receiver_wait(&e.r, "/ok", 1, 10000);
    assert_int_equal(cJSON_GetArraySize(got), 1);
    cJSON *line = cJSON_GetArrayItem(got, 0);
    cJSON *v = cJSON_GetObjectItem(line, "verifiedWith");
    assert_int_equal(cJSON_GetArraySize(v), 2); /* old and new both verify */
    const char *sig = cJSON_GetStringValue(cJSON_GetObjectItem(line, "signatureHeader"));
    assert_non_null(strchr(sig, ' '));
    assert_verified(line, 1); /* the body signature uses the new secret */
    cJSON_Delete(got);

    /* the receiver is on loopback: a test event goes there only when allowed */
    const char *ping[] = {"webhook", "test", "acme", "--allow-private-webhooks", NULL};
    out = NULL;
    assert_int_equal(ts_cli(&e.s, ping, NULL, &out), 0);
    assert_non_null(strstr(out, "\"http_status\":\t200"));
    free(out);
    got = ts_receiver_wait(&e.r, "/ok", 2, 5000);
    line = cJSON_GetArrayItem(got, 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "event")), "ping");
    assert_verified(line, 1);
    cJSON_Delete(got);
    stop(&e);
}

/* n events at the outbox of account 1, written behind the stopped server's
 * back as rows from before sealing (payloads in the clear). */
static void add_clear_events(const ts_server *s, int n)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(s->db, &db), SQLITE_OK);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < n; i++) {
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO outbox(event_id, account_id, task_id, event, payload, created_at,"
                 " next_at) VALUES('evt_bulk_%04d', 1, NULL, 'task_finished',"
                 " '{\"id\":%d,\"accountId\":1,\"status\":\"completed\",\"notes\":\"n\"}',"
                 " %lld, 0)",
                 i, 100000 + i, (long long)pt_wall_ms());
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* The same events written through the store, sealed under the server's
 * master key, in one transaction. */
static void add_sealed_events(const ts_server *s, int n)
{
    char err[PT_ERR_MAX] = "";
    store *st = store_open(s->db, 0, err);
    keys *k = keys_load(s->db, NULL, err);
    assert_non_null(st);
    assert_non_null(k);
    keys_attach(k, st);
    assert_int_equal(store_begin(st), 0);
    for (int i = 0; i < n; i++) {
        char id[32], payload[160];
        snprintf(id, sizeof(id), "evt_bulk_%04d", i);
        snprintf(payload, sizeof(payload),
                 "{\"id\":%d,\"accountId\":1,\"status\":\"completed\",\"notes\":\"n\"}",
                 100000 + i);
        assert_int_equal(store_outbox_add(st, 1, 0, "task_finished", id, payload), 0);
    }
    assert_int_equal(store_commit(st), 0);
    store_close(st);
    keys_free(k);
}

/* 1,000 events enqueued at once at the outbox: each delivered exactly once
 * to a 2xx receiver, none lost. */
static void test_thousand_events(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-1000", "/ok", NULL);
    assert_int_equal(ts_stop(&e.s, 0), 0);
    if (ts_pg(&e.s)) /* a PostgreSQL store holds payloads sealed only */
        add_sealed_events(&e.s, 1000);
    else
        add_clear_events(&e.s, 1000);
    const char *args[] = {"--browser", "ws://127.0.0.1:9/devtools/browser/none",
                          "--allow-private-webhooks", NULL};
    assert_int_equal(ts_start(&e.s, args, NULL), 0);
    cJSON *got = ts_receiver_wait(&e.r, "/ok", 1000, 120000);
    pt_sleep_ms(1000);
    cJSON_Delete(got);
    got = ts_received(&e.r, "/ok", NULL);
    assert_int_equal(cJSON_GetArraySize(got), 1000);
    char seen[1000] = {0};
    cJSON *line;
    cJSON_ArrayForEach(line, got)
    {
        int n = -1;
        sscanf(cJSON_GetStringValue(cJSON_GetObjectItem(line, "id")), "evt_bulk_%d", &n);
        assert_true(n >= 0 && n < 1000);
        assert_int_equal(seen[n], 0);
        seen[n] = 1;
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(line, "verifiedWith")), 1);
    }
    cJSON_Delete(got);
    stop(&e);
}

/* GET /webhook, parsed (asserting a 200). */
static cJSON *endpoint(env *e)
{
    tc_response r = call(e, "GET", "/webhook", NULL);
    assert_int_equal(r.status, 200);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_non_null(o);
    return o;
}

/* Polls GET /webhook until its newest attempt has number n; that attempt. */
static cJSON *wait_attempt(env *e, int n)
{
    int64_t until = pt_mono_ms() + 30000;
    for (;;) {
        cJSON *o = endpoint(e);
        cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "attempts"), 0);
        if (a && cJSON_GetObjectItem(a, "attempt")->valuedouble >= n) {
            cJSON *copy = cJSON_Duplicate(a, 1);
            cJSON_Delete(o);
            return copy;
        }
        cJSON_Delete(o);
        if (pt_mono_ms() > until)
            fail_msg("no attempt %d", n);
        pt_sleep_ms(100);
    }
}

static void expect_code(env *e, const char *key, const char *method, const char *path,
                        const char *body, long status, const char *code)
{
    const char *mine = e->key;
    char saved[128];
    snprintf(saved, sizeof(saved), "%s", mine);
    if (key)
        snprintf(e->key, sizeof(e->key), "%s", key);
    tc_response r = call(e, method, path, body);
    snprintf(e->key, sizeof(e->key), "%s", saved);
    if (r.status != status)
        fprintf(stderr, "%s %s: %ld %s\n", method, path, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, status);
    cJSON *o = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "error")), code);
    cJSON_Delete(o);
    tc_response_free(&r);
}

static void put_url(env *e, const char *path, const char *events)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"url\":\"http://127.0.0.1:%d%s\"%s%s}", e->r.port, path,
             events ? ",\"events\":" : "", events ? events : "");
    tc_response r = call(e, "PUT", "/webhook", body);
    assert_int_equal(r.status, 200);
    cJSON *o = cJSON_Parse(r.body);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "enabled")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "disabled_reason")));
    cJSON_Delete(o);
    tc_response_free(&r);
}

/* The account's endpoint over the API: a ping that fails every attempt of
 * its schedule (each recorded with number, URL, status, reply), a new URL,
 * a recovery that starts a fresh schedule (the old one was used up, and the
 * new endpoint fails twice before it takes it), a 410 that disables it. */
static void test_webhook_endpoint(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-endpoint", "/redirect", NULL);
    cJSON *o = endpoint(&e);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(o, "url")), "/redirect"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "enabled")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "events")), 1);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "events"), 0)->valuestring,
                        "task_finished");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "attempts")), 0);
    cJSON_Delete(o);
    tc_response r = call(&e, "POST", "/webhook/test", NULL);
    assert_int_equal(r.status, 202);
    o = cJSON_Parse(r.body);
    char eid[64];
    snprintf(eid, sizeof(eid), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "event_id")));
    cJSON_Delete(o);
    tc_response_free(&r);
    /* five attempts (the schedule), the last one dead */
    cJSON *a = wait_attempt(&e, 5);
    assert_int_equal((int)cJSON_GetObjectItem(a, "http_status")->valuedouble, 302);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "event")), "ping");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "event_id")), eid);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(a, "url")), "/redirect"));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(a, "reply")), eid));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "task_id")));
    cJSON_Delete(a);
    cJSON *got = ts_received(&e.r, "/redirect", eid);
    assert_int_equal(cJSON_GetArraySize(got), 5);
    assert_verified(cJSON_GetArrayItem(got, 0), 0);
    cJSON_Delete(got);

    /* a new endpoint and events; recover: attempts 6 and 7 fail, 8 lands */
    put_url(&e, "/flaky", "[\"task_finished\",\"task_waiting\"]");
    o = endpoint(&e);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "events")), 2);
    cJSON_Delete(o);
    r = call(&e, "POST", "/webhook/recover", "{\"since\":\"2020-01-01T00:00:00.000Z\"}");
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"requeued\":1"));
    tc_response_free(&r);
    a = wait_attempt(&e, 8);
    assert_int_equal((int)cJSON_GetObjectItem(a, "http_status")->valuedouble, 200);
    cJSON_Delete(a);
    got = ts_received(&e.r, "/flaky", eid);
    assert_int_equal(cJSON_GetArraySize(got), 3);
    cJSON_Delete(got);
    /* nothing failed since now: nothing to recover */
    r = call(&e, "POST", "/webhook/recover", "{\"since\":\"2999-01-01\"}");
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"requeued\":0"));
    tc_response_free(&r);

    /* 410 Gone disables it, and the API says so; PUT re-enables */
    put_url(&e, "/gone", NULL);
    r = call(&e, "POST", "/webhook/test", NULL);
    assert_int_equal(r.status, 202);
    tc_response_free(&r);
    a = wait_attempt(&e, 1);
    cJSON_Delete(a);
    int64_t until = pt_mono_ms() + 20000;
    for (;;) {
        o = endpoint(&e);
        if (cJSON_IsFalse(cJSON_GetObjectItem(o, "enabled")))
            break;
        cJSON_Delete(o);
        assert_true(pt_mono_ms() < until);
        pt_sleep_ms(100);
    }
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(o, "disabled_reason")), "410"));
    cJSON_Delete(o);
    expect_code(&e, NULL, "POST", "/webhook/test", NULL, 409, "webhook_disabled");
    expect_code(&e, NULL, "POST", "/webhook/recover", "{\"since\":\"2020-01-01\"}", 409,
                "webhook_disabled");
    put_url(&e, "/ok", NULL);

    /* bad requests */
    expect_code(&e, NULL, "PUT", "/webhook", "{\"events\":[\"task_done\"]}", 400,
                "invalid_request");
    expect_code(&e, NULL, "PUT", "/webhook", "{\"events\":\"task_finished\"}", 400,
                "invalid_request");
    expect_code(&e, NULL, "PUT", "/webhook", "{\"url\":\"ftp://example.org/\"}", 400,
                "invalid_request");
    expect_code(&e, NULL, "PUT", "/webhook", "{}", 400, "invalid_request");
    expect_code(&e, NULL, "PUT", "/webhook", "{\"url\":", 400, "malformed_json");
    expect_code(&e, NULL, "POST", "/webhook/recover", "{\"since\":\"last week\"}", 400,
                "invalid_request");
    expect_code(&e, "pk_nobody", "GET", "/webhook", NULL, 401, "unauthorized");
    expect_code(&e, NULL, "DELETE", "/webhook", NULL, 405, "method_not_allowed");
    char *out = NULL;
    const char *bare[] = {"account", "create", "bare", NULL};
    assert_int_equal(ts_cli(&e.s, bare, NULL, &out), 0);
    cJSON *acct = cJSON_Parse(out);
    free(out);
    expect_code(&e, cJSON_GetStringValue(cJSON_GetObjectItem(acct, "api_key")), "POST",
                "/webhook/test", NULL, 409, "no_webhook");
    cJSON_Delete(acct);

    /* the operator's side: account set-events */
    const char *badev[] = {"account", "set-events", "acme", "task_finished,task_done", NULL};
    assert_int_equal(ts_cli(&e.s, badev, NULL, NULL), 2);
    const char *ev[] = {"account", "set-events", "acme", "task_finished", NULL};
    assert_int_equal(ts_cli(&e.s, ev, NULL, NULL), 0);
    o = endpoint(&e);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "events")), 1);
    cJSON_Delete(o);
    stop(&e);
}

/* Every route's answers, successes and errors, as docs/openapi.yaml says. */
static void test_openapi_contract(void **state)
{
    (void)state;
    env e;
    start(&e, "wh-contract", "/ok", NULL);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "node %s/tests/node/contract.mjs %s/docs/openapi.yaml %s %s",
             PORTIER_SOURCE_DIR, PORTIER_SOURCE_DIR, e.s.base, e.key);
    assert_int_equal(system(cmd), 0);
    /* and the bodies it made the server send: task_finished and ping */
    cJSON *got = ts_receiver_wait(&e.r, "/ok", 3, 30000);
    int pings = 0, finished = 0;
    cJSON *line;
    cJSON_ArrayForEach(line, got)
    {
        const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(line, "event"));
        pings += ev && !strcmp(ev, "ping");
        finished += ev && !strcmp(ev, "task_finished");
    }
    cJSON_Delete(got);
    assert_true(pings >= 1 && finished >= 1);
    ts_check_webhook_bodies(&e.r);
    stop(&e);
}

PT_TESTS("webhooks", cmocka_unit_test(test_openapi_contract),
         cmocka_unit_test(test_webhook_endpoint), cmocka_unit_test(test_retry_until_2xx),
         cmocka_unit_test(test_gone_disables), cmocka_unit_test(test_hang_timeout_and_redirect),
         cmocka_unit_test(test_kill9_then_delivered), cmocka_unit_test(test_retry_after_honoured),
         cmocka_unit_test(test_rotation_and_ping), cmocka_unit_test(test_thousand_events));
