/*
 * test_cdp_conn.c - the CDP message core without a browser: framing, id
 * matching, session routing, reassembly, size limits, timeouts, the end.
 *
 * A fake transport stands in for the socket; the test plays the browser by
 * reading the outgoing queue and feeding replies through cdp__rx().
 */
#include "tests/support/testmain.h"
#include "cdp/cdp_internal.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fake_wake(cdp_browser *b)
{
    (void)b;
}
static const cdp_transport fake = {fake_wake};

static cdp_browser *fake_browser(void)
{
    cdp_browser *b = calloc(1, sizeof(*b));
    cdp__conn_init(b, &fake);
    return b;
}

static void fake_free(cdp_browser *b)
{
    cdp__conn_destroy(b);
    free(b);
}

/* The next outgoing message, parsed; waits up to 2 s for one. */
static cJSON *take_out(cdp_browser *b)
{
    for (int i = 0; i < 2000; i++) {
        cdp_outmsg *m = cdp__next_out(b);
        if (m) {
            cJSON *j = cJSON_ParseWithLength((const char *)m->data + CDP_PRE, m->len);
            free(m);
            return j;
        }
        pt_sleep_ms(1);
    }
    return NULL;
}

static void feed(cdp_browser *b, const char *json)
{
    cdp__rx(b, json, strlen(json), 1);
}

typedef struct call_args {
    cdp_session *s;
    const char *method;
    int n;
    int timeout;
    int rc;
    char err[CDP_ERR_MAX];
    cJSON *result;
    int64_t took_ms;
} call_args;

static void *do_call(void *arg)
{
    call_args *a = arg;
    cJSON *params = cJSON_CreateObject();
    cJSON_AddNumberToObject(params, "n", a->n);
    int64_t t0 = pt_mono_ms();
    a->rc = cdp_call(a->s, a->method, params, &a->result, a->timeout, a->err);
    a->took_ms = pt_mono_ms() - t0;
    return NULL;
}

static void framing(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "url", "http://127.0.0.1/");
    assert_int_equal(cdp_send(cdp_browser_session(b), "Page.navigate", p), 0);
    cJSON *m = take_out(b);
    assert_non_null(m);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(m, "id")));
    assert_string_equal(cJSON_GetObjectItem(m, "method")->valuestring, "Page.navigate");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "params"), "url")->valuestring,
                        "http://127.0.0.1/");
    assert_null(cJSON_GetObjectItem(m, "sessionId"));
    cJSON_Delete(m);

    /* a child session's messages carry its sessionId; ids keep counting up */
    feed(b,
         "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"S1\","
         "\"targetInfo\":{\"targetId\":\"T1\",\"type\":\"page\"},\"waitingForDebugger\":false}}");
    cdp_session *s1 = cdp__session_find(b, "S1");
    assert_non_null(s1);
    assert_string_equal(cdp_session_target_id(s1), "T1");
    assert_string_equal(cdp_session_target_type(s1), "page");
    assert_int_equal(cdp_send(s1, "Runtime.enable", NULL), 0);
    m = take_out(b);
    assert_string_equal(cJSON_GetObjectItem(m, "sessionId")->valuestring, "S1");
    assert_int_equal(cJSON_GetObjectItem(m, "id")->valueint, 2);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(m, "params")));
    cJSON_Delete(m);
    fake_free(b);
}

static void reply_matches_call(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    call_args a = {.s = cdp_browser_session(b), .method = "Browser.getVersion", .timeout = 5000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON *m = take_out(b);
    char reply[128];
    snprintf(reply, sizeof(reply), "{\"id\":%d,\"result\":{\"product\":\"Chrome/156\"}}",
             cJSON_GetObjectItem(m, "id")->valueint);
    cJSON_Delete(m);
    feed(b, "{\"id\":999,\"result\":{}}"); /* nobody's: dropped */
    feed(b, reply);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_string_equal(cJSON_GetObjectItem(a.result, "product")->valuestring, "Chrome/156");
    cJSON_Delete(a.result);
    fake_free(b);
}

static void ids_match_out_of_order(void **state)
{
    (void)state;
    enum { N = 8 };
    cdp_browser *b = fake_browser();
    call_args a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (call_args){
            .s = cdp_browser_session(b), .method = "Runtime.evaluate", .n = i, .timeout = 5000};
        pthread_create(&t[i], NULL, do_call, &a[i]);
    }
    cJSON *msgs[N];
    for (int i = 0; i < N; i++)
        assert_non_null(msgs[i] = take_out(b));
    /* answer in reverse order, echoing each call's n */
    for (int i = N - 1; i >= 0; i--) {
        char reply[128];
        snprintf(reply, sizeof(reply), "{\"id\":%d,\"result\":{\"n\":%d}}",
                 cJSON_GetObjectItem(msgs[i], "id")->valueint,
                 cJSON_GetObjectItem(cJSON_GetObjectItem(msgs[i], "params"), "n")->valueint);
        feed(b, reply);
        cJSON_Delete(msgs[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, 0);
        assert_int_equal(cJSON_GetObjectItem(a[i].result, "n")->valueint, i);
        cJSON_Delete(a[i].result);
    }
    fake_free(b);
}

static void protocol_error_is_reported(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    call_args a = {.s = cdp_browser_session(b), .method = "Page.navigate", .timeout = 5000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON *m = take_out(b);
    char reply[256];
    snprintf(reply, sizeof(reply),
             "{\"id\":%d,\"error\":{\"code\":-32000,\"message\":\"Cannot navigate to invalid "
             "URL\"}}",
             cJSON_GetObjectItem(m, "id")->valueint);
    cJSON_Delete(m);
    feed(b, reply);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, CDP_EPROTOCOL);
    assert_null(a.result);
    assert_string_equal(a.err, "Page.navigate: Cannot navigate to invalid URL (-32000)");
    fake_free(b);
}

static void timeout_then_late_reply(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    call_args a = {.s = cdp_browser_session(b), .method = "Runtime.evaluate", .timeout = 100};
    do_call(&a);
    assert_int_equal(a.rc, CDP_ETIMEOUT);
    assert_string_equal(a.err, "Runtime.evaluate: no reply within 100 ms");
    assert_true(a.took_ms >= 100);
    cJSON *m = take_out(b);
    char reply[128];
    snprintf(reply, sizeof(reply), "{\"id\":%d,\"result\":{}}",
             cJSON_GetObjectItem(m, "id")->valueint);
    cJSON_Delete(m);
    feed(b, reply); /* the late reply finds no caller and is dropped */
    fake_free(b);
}

typedef struct heard {
    int count;
    char method[64];
    char session[16];
} heard;

static void listen_fn(cdp_session *s, const char *method, const cJSON *params, void *ud)
{
    (void)params;
    heard *h = ud;
    h->count++;
    snprintf(h->method, sizeof(h->method), "%s", method);
    snprintf(h->session, sizeof(h->session), "%s", cdp_session_id(s) ? cdp_session_id(s) : "root");
}

static void events_route_by_session(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    feed(b, "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"A\","
            "\"targetInfo\":{\"targetId\":\"TA\",\"type\":\"page\"}}}");
    feed(b, "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"B\","
            "\"targetInfo\":{\"targetId\":\"TB\",\"type\":\"iframe\"}},\"sessionId\":\"A\"}");
    cdp_session *sa = cdp__session_find(b, "A"), *sb = cdp__session_find(b, "B");
    assert_non_null(sa);
    assert_non_null(sb);
    heard hr = {0}, ha = {0}, hb = {0}, hb_any = {0};
    cdp_on(cdp_browser_session(b), "Page.loadEventFired", listen_fn, &hr);
    cdp_on(sa, "Page.loadEventFired", listen_fn, &ha);
    int id_b = cdp_on(sb, "Page.loadEventFired", listen_fn, &hb);
    cdp_on(sb, NULL, listen_fn, &hb_any);

    feed(b, "{\"method\":\"Page.loadEventFired\",\"params\":{},\"sessionId\":\"B\"}");
    assert_int_equal(hb.count, 1);
    assert_string_equal(hb.session, "B");
    assert_int_equal(ha.count + hr.count, 0);
    feed(b, "{\"method\":\"Page.loadEventFired\",\"params\":{}}");
    assert_int_equal(hr.count, 1);
    assert_string_equal(hr.session, "root");
    feed(b, "{\"method\":\"Page.frameNavigated\",\"params\":{},\"sessionId\":\"B\"}");
    assert_int_equal(hb.count, 1); /* not its method */
    assert_int_equal(hb_any.count, 2);
    assert_string_equal(hb_any.method, "Page.frameNavigated");
    /* removed listeners hear nothing; unknown sessions are dropped */
    cdp_off(sb, id_b);
    feed(b, "{\"method\":\"Page.loadEventFired\",\"params\":{},\"sessionId\":\"B\"}");
    assert_int_equal(hb.count, 1);
    feed(b, "{\"method\":\"Page.loadEventFired\",\"params\":{},\"sessionId\":\"nobody\"}");
    assert_int_equal(ha.count + hr.count, 1);
    fake_free(b);
}

static void fragments_are_reassembled(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    call_args a = {
        .s = cdp_browser_session(b), .method = "Page.captureScreenshot", .timeout = 5000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON *m = take_out(b);
    char reply[256];
    snprintf(reply, sizeof(reply), "{\"id\":%d,\"result\":{\"data\":\"AAAABBBBCCCCDDDD\"}}",
             cJSON_GetObjectItem(m, "id")->valueint);
    cJSON_Delete(m);
    size_t n = strlen(reply);
    cdp__rx(b, reply, 5, 0);
    cdp__rx(b, reply + 5, 20, 0);
    cdp__rx(b, reply + 25, n - 25, 1);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_string_equal(cJSON_GetObjectItem(a.result, "data")->valuestring, "AAAABBBBCCCCDDDD");
    cJSON_Delete(a.result);
    fake_free(b);
}

/* The pipe's framing: messages end with a NUL byte, and a read may hold
 * the end of one and the start of the next, or one byte of either. */
static void pipe_messages_split_at_nul(void **state)
{
    (void)state;
    for (size_t step = 1; step <= 64; step *= 4) {
        cdp_browser *b = fake_browser();
        call_args a[2] = {{.s = cdp_browser_session(b), .method = "A.one", .timeout = 5000},
                          {.s = cdp_browser_session(b), .method = "A.two", .timeout = 5000}};
        pthread_t t[2];
        int ids[2];
        for (int i = 0; i < 2; i++) {
            pthread_create(&t[i], NULL, do_call, &a[i]);
            cJSON *m = take_out(b);
            ids[i] = cJSON_GetObjectItem(m, "id")->valueint;
            cJSON_Delete(m);
        }
        char wire[256];
        int n = snprintf(wire, sizeof(wire),
                         "{\"id\":%d,\"result\":{\"v\":\"first\"}}%c"
                         "{\"method\":\"X.ev\",\"params\":{}}%c"
                         "{\"id\":%d,\"result\":{\"v\":\"second\"}}%c",
                         ids[1], 0, 0, ids[0], 0);
        for (int off = 0; off < n; off += (int)step)
            cdp__rx_framed(b, wire + off, (size_t)(off + (int)step <= n ? (int)step : n - off));
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(a[0].rc, 0);
        assert_int_equal(a[1].rc, 0);
        assert_string_equal(cJSON_GetObjectItem(a[0].result, "v")->valuestring, "second");
        assert_string_equal(cJSON_GetObjectItem(a[1].result, "v")->valuestring, "first");
        cJSON_Delete(a[0].result);
        cJSON_Delete(a[1].result);
        fake_free(b);
    }
}

static void oversize_reply_fails_its_call(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    b->max_message = 1024;
    call_args a = {
        .s = cdp_browser_session(b), .method = "Page.captureScreenshot", .timeout = 30000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON *m = take_out(b);
    int id = cJSON_GetObjectItem(m, "id")->valueint;
    cJSON_Delete(m);
    char head[64], filler[1000];
    snprintf(head, sizeof(head), "{\"id\":%d,\"result\":{\"data\":\"", id);
    memset(filler, 'A', sizeof(filler));
    cdp__rx(b, head, strlen(head), 0);
    for (int i = 0; i < 3; i++)
        cdp__rx(b, filler, sizeof(filler), 0);
    cdp__rx(b, "\"}}", 3, 1);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, CDP_ETOOBIG);
    assert_true(a.took_ms < 30000);
    assert_non_null(strstr(a.err, "exceeds the 1024-byte limit"));

    /* the next message is whole again */
    call_args c = {.s = cdp_browser_session(b), .method = "Runtime.evaluate", .timeout = 5000};
    pthread_create(&t, NULL, do_call, &c);
    m = take_out(b);
    char reply[64];
    snprintf(reply, sizeof(reply), "{\"id\":%d,\"result\":{\"ok\":true}}",
             cJSON_GetObjectItem(m, "id")->valueint);
    cJSON_Delete(m);
    feed(b, reply);
    pthread_join(t, NULL);
    assert_int_equal(c.rc, 0);
    cJSON_Delete(c.result);
    fake_free(b);
}

static void browser_gone_fails_pending_at_once(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    call_args a = {.s = cdp_browser_session(b), .method = "Runtime.evaluate", .timeout = 60000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON_Delete(take_out(b));
    cdp__conn_gone(b, CDP_EGONE, "browser exited (signal 9)");
    pthread_join(t, NULL);
    assert_int_equal(a.rc, CDP_EGONE);
    assert_true(a.took_ms < 5000);
    assert_string_equal(a.err, "Runtime.evaluate: browser exited (signal 9)");
    /* and every later call fails the same way, without waiting */
    call_args c = {.s = cdp_browser_session(b), .method = "Page.enable", .timeout = 60000};
    do_call(&c);
    assert_int_equal(c.rc, CDP_EGONE);
    assert_string_equal(c.err, "browser exited (signal 9)");
    char why[CDP_ERR_MAX];
    assert_int_equal(cdp_browser_gone(b, why), 1);
    assert_string_equal(why, "browser exited (signal 9)");
    fake_free(b);
}

static void detached_session_fails_its_calls(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    feed(b, "{\"method\":\"Target.attachedToTarget\",\"params\":{\"sessionId\":\"S\","
            "\"targetInfo\":{\"targetId\":\"T\",\"type\":\"page\"}}}");
    cdp_session *s = cdp_session_ref(cdp__session_find(b, "S"));
    call_args a = {.s = s, .method = "Runtime.evaluate", .timeout = 60000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON_Delete(take_out(b));
    feed(b, "{\"method\":\"Target.detachedFromTarget\",\"params\":{\"sessionId\":\"S\","
            "\"targetId\":\"T\"}}");
    pthread_join(t, NULL);
    assert_int_equal(a.rc, CDP_EDETACHED);
    assert_non_null(strstr(a.err, "target closed"));
    assert_null(cdp__session_find(b, "S"));
    assert_int_equal(cdp_session_detached(s), 1);
    assert_int_equal(cdp_send(s, "Page.enable", NULL), CDP_EDETACHED);
    cdp_session_unref(s);
    fake_free(b);
}

static int match_name(const cJSON *params, void *ud)
{
    const cJSON *n = cJSON_GetObjectItem(params, "name");
    return cJSON_IsString(n) && strcmp(n->valuestring, ud) == 0;
}

static void waiters_collect_matching_events(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    cdp_waiter *w =
        cdp_wait_begin(cdp_browser_session(b), "Page.lifecycleEvent", match_name, "load");
    feed(b, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"name\":\"init\"}}");
    feed(b, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"name\":\"load\",\"n\":1}}");
    feed(b, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"name\":\"load\",\"n\":2}}");
    cJSON *ev = NULL;
    char err[CDP_ERR_MAX];
    assert_int_equal(cdp_wait_next(w, 1000, &ev, err), 0);
    assert_int_equal(cJSON_GetObjectItem(ev, "n")->valueint, 1);
    cJSON_Delete(ev);
    assert_int_equal(cdp_wait_next(w, 1000, &ev, err), 0);
    assert_int_equal(cJSON_GetObjectItem(ev, "n")->valueint, 2);
    cJSON_Delete(ev);
    assert_int_equal(cdp_wait_next(w, 50, &ev, err), CDP_ETIMEOUT);
    assert_null(ev);
    assert_non_null(strstr(err, "no Page.lifecycleEvent event within 50 ms"));
    /* an unread event is freed with the waiter */
    feed(b, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"name\":\"load\",\"n\":3}}");
    cdp_wait_end(w);
    fake_free(b);
}

static void garbage_is_ignored(void **state)
{
    (void)state;
    cdp_browser *b = fake_browser();
    feed(b, "this is not json");
    feed(b, "{\"id\":\"not a number\"}");
    feed(b, "[1,2,3]");
    feed(b, "{\"method\":\"Target.attachedToTarget\",\"params\":{}}");
    assert_null(b->sessions);
    call_args a = {.s = cdp_browser_session(b), .method = "Runtime.evaluate", .timeout = 5000};
    pthread_t t;
    pthread_create(&t, NULL, do_call, &a);
    cJSON *m = take_out(b);
    char reply[64];
    snprintf(reply, sizeof(reply), "{\"id\":%d,\"result\":{}}",
             cJSON_GetObjectItem(m, "id")->valueint);
    cJSON_Delete(m);
    feed(b, reply);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    cJSON_Delete(a.result);
    fake_free(b);
}

PT_TESTS("cdp_conn", cmocka_unit_test(framing), cmocka_unit_test(reply_matches_call),
         cmocka_unit_test(ids_match_out_of_order), cmocka_unit_test(protocol_error_is_reported),
         cmocka_unit_test(timeout_then_late_reply), cmocka_unit_test(events_route_by_session),
         cmocka_unit_test(fragments_are_reassembled), cmocka_unit_test(pipe_messages_split_at_nul),
         cmocka_unit_test(oversize_reply_fails_its_call),
         cmocka_unit_test(browser_gone_fails_pending_at_once),
         cmocka_unit_test(detached_session_fails_its_calls),
         cmocka_unit_test(waiters_collect_matching_events), cmocka_unit_test(garbage_is_ignored));
