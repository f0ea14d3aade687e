/*
 * test_http.c - the HTTP layer over real loopback HTTP: methods, paths,
 * queries, headers, cookies, bodies and their cap, concurrency, a client
 * that leaves mid-request, and the route table: {name} segments, HEAD, 404
 * and 405.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testcurl.h"
#include "http/http.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void echo(http_request *r, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *body = http_body(r, &len);
    if (strcmp(http_path(r), "/slow") == 0)
        pt_sleep_ms(300);
    if (strcmp(http_path(r), "/big") == 0) {
        http_set_type(r, "application/octet-stream");
        for (int i = 0; i < 3 * 1024 * 1024 / 16; i++)
            http_write(r, "0123456789abcdef", 16);
        return;
    }
    if (strcmp(http_path(r), "/error") == 0) {
        http_reply_error(r, 422, "invalid_input", "field \"dob\" is not a date: %s", "1949-13-45");
        return;
    }
    http_set_status(r, 201);
    http_set_type(r, "text/plain");
    http_add_header(r, "Set-Cookie", "a=1; Path=/");
    http_add_header(r, "Set-Cookie", "b=2; Path=/");
    http_add_header(r, "X-Custom", "yes");
    const char *q = http_query(r, "q");
    const char *idem = http_header(r, "idempotency-key");
    const char *cookie = http_cookie(r, "session");
    http_printf(r, "%s %s q=%s idem=%s auth=%s cookie=%s len=%zu body=%s", http_method(r),
                http_path(r), q ? q : "-", idem ? idem : "-",
                http_header(r, "authorization") ? http_header(r, "authorization") : "-",
                cookie ? cookie : "-", len, body);
}

static http_server *start(size_t max_body)
{
    http_options o = {.max_body = max_body}; /* every header is kept: idempotency-key too */
    http_server *s = NULL;
    char err[512];
    if (http_start(&o, echo, NULL, &s, err))
        fail_msg("http_start: %s", err);
    return s;
}

static void requests_round_trip(void **state)
{
    (void)state;
    http_server *s = start(0);
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/tasks/7?q=a%%20b&x=1", http_port(s));
    tc_client *c = tc_new();
    tc_header(c, "Authorization: Bearer k3y");
    tc_header(c, "Idempotency-Key: abc-123");
    tc_header(c, "Cookie: session=s1; other=o");
    tc_response r = tc_request(c, "POST", url, "application/json", "{\"type\":\"x\"}", 12);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "POST /tasks/7 q=a b idem=abc-123 auth=Bearer k3y cookie=s1 "
                                "len=12 body={\"type\":\"x\"}");
    char *ct = tc_response_header(&r, "content-type");
    assert_string_equal(ct, "text/plain");
    free(ct);
    assert_non_null(strcasestr(r.headers, "set-cookie: a=1; Path=/"));
    assert_non_null(strcasestr(r.headers, "set-cookie: b=2; Path=/"));
    tc_response_free(&r);
    /* the same connection serves the next request (keep-alive) */
    r = tc_request(c, "GET", url, NULL, NULL, 0);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "GET /tasks/7"));
    tc_response_free(&r);
    r = tc_request(c, "DELETE", url, NULL, NULL, 0);
    assert_non_null(strstr(r.body, "DELETE /tasks/7"));
    tc_response_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/error", http_port(s));
    r = tc_request(c, "GET", url, NULL, NULL, 0);
    if (r.status != 422)
        fail_msg("status %ld: %s %s", r.status, r.headers, r.body);
    assert_string_equal(r.body, "{\"error\":\"invalid_input\",\"message\":\"field \\\"dob\\\" is "
                                "not a date: 1949-13-45\"}");
    tc_response_free(&r);
    tc_free(c);
    http_stop(s);
}

/* lws 4.1 cannot read chunked request bodies: they are refused, and the
 * connection is closed instead of reading the chunks as a request. */
static void chunked_bodies_are_refused(void **state)
{
    (void)state;
    http_server *s = start(0);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null -w '%%{http_code}' -H 'Transfer-Encoding: chunked' "
             "--data-binary x http://127.0.0.1:%d/a --next -s -o /dev/null -w ' %%{http_code}' "
             "http://127.0.0.1:%d/b",
             http_port(s), http_port(s));
    FILE *f = popen(cmd, "r");
    char out[64] = "";
    if (!fgets(out, sizeof(out), f))
        out[0] = '\0';
    pclose(f);
    assert_string_equal(out, "411 201"); /* and the next request is whole */
    http_stop(s);
}

static void large_response_and_body_cap(void **state)
{
    (void)state;
    http_server *s = start(1024);
    char url[128];
    tc_client *c = tc_new();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", http_port(s));
    tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 3 * 1024 * 1024);
    assert_memory_equal(r.body + r.len - 16, "0123456789abcdef", 16);
    tc_response_free(&r);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/upload", http_port(s));
    char *body = malloc(4096);
    memset(body, 'x', 4096);
    r = tc_request(c, "POST", url, "text/plain", body, 4096);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"error\":\"payload_too_large\""));
    assert_non_null(strstr(r.body, "1024-byte limit"));
    tc_response_free(&r);
    /* under the cap is fine, on a fresh connection */
    tc_free(c);
    c = tc_new();
    r = tc_request(c, "POST", url, "text/plain", body, 1000);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "len=1000"));
    tc_response_free(&r);
    free(body);
    tc_free(c);
    http_stop(s);
}

typedef struct hammer {
    int port;
    int ok;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    tc_client *c = tc_new();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", h->port);
    for (int i = 0; i < 5; i++) {
        tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
        h->ok += r.status == 201 && strstr(r.body, "GET /slow") != NULL;
        tc_response_free(&r);
    }
    tc_free(c);
    return NULL;
}

static void slow_handlers_run_in_parallel(void **state)
{
    (void)state;
    http_server *s = start(0); /* 4 workers */
    hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (hammer){.port = http_port(s)};
        pthread_create(&t[i], NULL, hammer_main, &h[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].ok, 5);
    }
    http_stop(s);
}

static void client_leaving_mid_request(void **state)
{
    (void)state;
    http_server *s = start(0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", http_port(s));
    /* a client that gives up before the handler is done */
    tc_client *c = tc_new();
    tc_header(c, "X-Ignored: 1");
    for (int i = 0; i < 3; i++) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "curl -s -m 0.1 %s >/dev/null 2>&1", url);
        if (system(cmd) < 0)
            fail();
    }
    pt_sleep_ms(500);
    tc_response r = tc_request(c, "GET", url, NULL, NULL, 0);
    assert_int_equal(r.status, 201);
    tc_response_free(&r);
    tc_free(c);
    http_stop(s);
}

static void listen_errors_are_clear(void **state)
{
    (void)state;
    http_server *a = start(0), *b = NULL;
    http_options o = {.port = http_port(a)};
    char err[512];
    assert_int_not_equal(http_start(&o, echo, NULL, &b, err), 0);
    assert_null(b);
    assert_non_null(strstr(err, "could not listen on 127.0.0.1:"));
    http_stop(a);
}

/* ---- The route table ---------------------------------------------------- */

static void route_name(http_request *r, void *ud)
{
    http_printf(r, "%s %s %s", (const char *)ud, http_method(r), http_path(r));
}

static void route_other(http_request *r, void *ud)
{
    (void)ud;
    http_printf(r, "other %s", http_path(r));
}

static void reject_plain(http_request *r, int status, const char *allow, void *ud)
{
    http_set_status(r, status);
    http_printf(r, "%s: %d %s", (const char *)ud, status, allow ? allow : "-");
}

static const http_route routes[] = {
    {"GET", "/tasks", route_name},
    {"POST", "/tasks", route_name},
    {"GET", "/static/special", route_other},
    {"GET", "/static/", route_name, HTTP_PREFIX},
    {"PUT", "/static/", route_name, HTTP_PREFIX},
    {"GET", "/static/special", route_name}, /* never reached: the first match wins */
};

static tc_response fetch(tc_client *c, int port, const char *method, const char *path)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    /* lws 4.1 waits for the body of a POST, PUT or PATCH: give it one */
    int body = strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0;
    return tc_request(c, method, url, body ? "text/plain" : NULL, body ? "x" : NULL, body ? 1 : 0);
}

static void routes_404_and_405_with_allow(void **state)
{
    (void)state;
    http_router rt = {routes, sizeof(routes) / sizeof(routes[0]), NULL};
    http_server *s = NULL;
    char err[512];
    if (http_start_router(NULL, &rt, "api", &s, err))
        fail_msg("http_start_router: %s", err);
    tc_client *c = tc_new();
    tc_response r = fetch(c, http_port(s), "POST", "/tasks");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "api POST /tasks");
    tc_response_free(&r);
    r = fetch(c, http_port(s), "GET", "/static/a/b.css");
    assert_string_equal(r.body, "api GET /static/a/b.css");
    tc_response_free(&r);
    r = fetch(c, http_port(s), "GET", "/static/special");
    assert_string_equal(r.body, "other /static/special");
    tc_response_free(&r);
    /* an exact path is not a prefix */
    r = fetch(c, http_port(s), "GET", "/tasks/7");
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"not_found\",\"message\":\"no route /tasks/7\"}");
    tc_response_free(&r);
    r = fetch(c, http_port(s), "DELETE", "/tasks");
    assert_int_equal(r.status, 405);
    char *allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "GET, POST");
    free(allow);
    assert_string_equal(r.body, "{\"error\":\"method_not_allowed\",\"message\":\"DELETE /tasks: "
                                "allowed methods are GET, POST\"}");
    tc_response_free(&r);
    /* every route whose path matches names its method, once */
    r = fetch(c, http_port(s), "POST", "/static/special");
    assert_int_equal(r.status, 405);
    allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "GET, PUT");
    free(allow);
    tc_response_free(&r);
    tc_free(c);
    http_stop(s);

    /* the owner writes its own 404 and 405 */
    rt.reject = reject_plain;
    if (http_start_router(NULL, &rt, "portal", &s, err))
        fail_msg("http_start_router: %s", err);
    c = tc_new();
    r = fetch(c, http_port(s), "GET", "/nowhere");
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "portal: 404 -");
    tc_response_free(&r);
    r = fetch(c, http_port(s), "PATCH", "/tasks");
    assert_int_equal(r.status, 405);
    assert_string_equal(r.body, "portal: 405 GET, POST");
    allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "GET, POST");
    free(allow);
    tc_response_free(&r);
    tc_free(c);
    http_stop(s);
}

/* {name} segments, and a GET route that takes HEAD too */
static const http_route id_routes[] = {
    {"GET", "/tasks/{id}", route_name, .head = 1},
    {"POST", "/tasks/{id}/input", route_name},
    {"GET", "/tasks/{id}/files/", route_other, HTTP_PREFIX},
    {"GET", "/metrics", route_name},
};

static void routes_with_segments_and_head(void **state)
{
    (void)state;
    http_router rt = {id_routes, sizeof(id_routes) / sizeof(id_routes[0]), NULL};
    http_server *s = NULL;
    char err[512];
    if (http_start_router(NULL, &rt, "api", &s, err))
        fail_msg("http_start_router: %s", err);
    tc_client *c = tc_new();
    int port = http_port(s);
    tc_response r = fetch(c, port, "GET", "/tasks/42");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "api GET /tasks/42");
    tc_response_free(&r);
    r = fetch(c, port, "POST", "/tasks/x-7/input");
    assert_string_equal(r.body, "api POST /tasks/x-7/input");
    tc_response_free(&r);
    r = fetch(c, port, "GET", "/tasks/7/files/a.png");
    assert_string_equal(r.body, "other /tasks/7/files/a.png");
    tc_response_free(&r);
    /* a segment is one, and never empty (lws makes "//" one "/" before us) */
    const char *no[] = {"/tasks/", "/tasks/7/8", "/tasks/7/input/more"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        r = fetch(c, port, "GET", no[i]);
        if (r.status != 404)
            fail_msg("%s: %ld %s", no[i], r.status, r.body);
        tc_response_free(&r);
    }
    r = fetch(c, port, "HEAD", "/tasks/42");
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    /* HEAD runs only the routes that take it; GET alone stands in Allow */
    r = fetch(c, port, "HEAD", "/metrics");
    assert_int_equal(r.status, 405);
    char *allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "GET");
    free(allow);
    tc_response_free(&r);
    r = fetch(c, port, "DELETE", "/tasks/42");
    assert_int_equal(r.status, 405);
    allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "GET");
    free(allow);
    tc_response_free(&r);
    r = fetch(c, port, "GET", "/tasks/42/input");
    assert_int_equal(r.status, 405);
    allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "POST");
    free(allow);
    tc_response_free(&r);
    tc_free(c);
    http_stop(s);
}

PT_TESTS("http", cmocka_unit_test(requests_round_trip),
         cmocka_unit_test(chunked_bodies_are_refused),
         cmocka_unit_test(large_response_and_body_cap),
         cmocka_unit_test(slow_handlers_run_in_parallel),
         cmocka_unit_test(client_leaving_mid_request), cmocka_unit_test(listen_errors_are_clear),
         cmocka_unit_test(routes_404_and_405_with_allow),
         cmocka_unit_test(routes_with_segments_and_head));
