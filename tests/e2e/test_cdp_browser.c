/*
 * test_cdp_browser.c - the CDP client against real Chromium (Debian's
 * chromium), with pages served on loopback by the test itself.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testhttp.h"
#include "tests/support/testproc.h"
#include "cdp/cdp.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T 20000 /* generous: these machines are shared and slow at times */

static cdp_browser *launch(void)
{
    char err[CDP_ERR_MAX] = "";
    cdp_browser *b = NULL;
    int rc = cdp_launch(NULL, &b, err);
    if (rc)
        fail_msg("launch: %s", err);
    return b;
}

static cdp_page *open_page(cdp_browser *b, const char *ctx)
{
    char err[CDP_ERR_MAX] = "";
    cdp_page *p = NULL;
    if (cdp_page_open(b, ctx, &p, err))
        fail_msg("page: %s", err);
    return p;
}

static void go(cdp_page *p, const char *url, unsigned flags)
{
    char err[CDP_ERR_MAX] = "";
    if (cdp_page_navigate(p, url, flags, T, err))
        fail_msg("navigate %s: %s", url, err);
}

/* Evaluates and returns the value printed as JSON (new string). */
static char *eval_json(cdp_page *p, const char *frame, const char *js)
{
    char err[CDP_ERR_MAX] = "";
    cJSON *v = NULL;
    if (cdp_page_eval(p, frame, js, &v, T, err))
        fail_msg("eval %s: %s", js, err);
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return s;
}

static void assert_eval(cdp_page *p, const char *frame, const char *js, const char *want)
{
    char *got = eval_json(p, frame, js);
    if (strcmp(got, want) != 0)
        fail_msg("eval %s: got %s, want %s", js, got, want);
    free(got);
}

static char *url_of(th_server *s, const char *host, const char *path)
{
    char *u = NULL;
    if (asprintf(&u, "http://%s:%d%s", host, th_port(s), path) < 0)
        fail();
    return u;
}

static void navigate_and_evaluate(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html",
             "<title>Portier test</title><script>window.answer = 41;</script><p id=x>hello</p>", -1,
             0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    assert_eval(p, NULL, "document.title", "\"Portier test\"");
    assert_eval(p, NULL, "window.answer + 1", "42");
    assert_eval(p, NULL, "({a: [1, 'two'], b: null})", "{\"a\":[1,\"two\"],\"b\":null}");
    assert_eval(p, NULL, "new Promise(r => setTimeout(() => r('later'), 50))", "\"later\"");
    assert_eval(p, NULL, "undefined", "null");

    char err[CDP_ERR_MAX];
    cJSON *v = NULL;
    assert_int_equal(cdp_page_eval(p, NULL, "throw new Error('boom')", &v, T, err), CDP_EJS);
    assert_non_null(strstr(err, "boom"));
    assert_null(v);

    /* a protocol error names the method and the browser's words */
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "url", "not a url");
    assert_int_equal(cdp_call(cdp_page_session(p), "Page.navigate", params, NULL, T, err),
                     CDP_EPROTOCOL);
    assert_non_null(strstr(err, "Page.navigate: "));
    assert_non_null(strstr(err, "invalid URL"));
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

static void navigation_failure_names_the_url(void **state)
{
    (void)state;
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char err[CDP_ERR_MAX], url[64];
    /* a port that was free a moment ago: nothing listens there */
    th_server *gone = th_start();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/form", th_port(gone));
    th_stop(gone);
    assert_int_equal(cdp_page_navigate(p, url, CDP_WAIT_LOAD, T, err), CDP_EFAIL);
    assert_non_null(strstr(err, url));
    assert_non_null(strstr(err, "ERR_CONNECTION_REFUSED"));
    cdp_page_close(p);
    cdp_close(b);
}

static void network_idle_waits_for_late_requests(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html",
             "<title>late</title><script>addEventListener('load', () => setTimeout(() =>"
             " fetch('/slow').then(r => r.text()).then(t => document.body.dataset.got = t), 10));"
             "</script>",
             -1, 0);
    th_route(s, "/slow", "text/plain", "payload", -1, 700);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD | CDP_WAIT_NETWORK_IDLE);
    assert_int_equal(th_hits(s, "/slow"), 1);
    assert_eval(p, NULL, "document.body.dataset.got", "\"payload\"");
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

static void contexts_are_isolated(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html", "<title>c</title>", -1, 0);
    cdp_browser *b = launch();
    char err[CDP_ERR_MAX], *ca = NULL, *cb = NULL;
    assert_int_equal(cdp_context_create(b, &ca, err), 0);
    assert_int_equal(cdp_context_create(b, &cb, err), 0);
    assert_string_not_equal(ca, cb);
    cdp_page *pa = open_page(b, ca), *pb = open_page(b, cb), *pa2 = NULL;
    char *u = url_of(s, "127.0.0.1", "/");
    go(pa, u, CDP_WAIT_LOAD);
    go(pb, u, CDP_WAIT_LOAD);
    assert_eval(pa, NULL,
                "document.cookie = 'member=300059049; path=/'; localStorage.setItem('k', 'v');"
                " document.cookie",
                "\"member=300059049\"");
    assert_eval(pb, NULL, "document.cookie", "\"\"");
    assert_eval(pb, NULL, "localStorage.getItem('k')", "null");
    /* a second page in the first context shares its cookies */
    pa2 = open_page(b, ca);
    go(pa2, u, CDP_WAIT_LOAD);
    assert_eval(pa2, NULL, "document.cookie", "\"member=300059049\"");
    cdp_page_close(pa);
    cdp_page_close(pa2);
    cdp_page_close(pb);
    assert_int_equal(cdp_context_dispose(b, ca, err), 0);
    assert_int_equal(cdp_context_dispose(b, cb, err), 0);
    free(ca);
    free(cb);
    free(u);
    cdp_close(b);
    th_stop(s);
}

static void same_origin_iframe(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html", "<title>top</title><iframe id=app src=/child></iframe>", -1, 0);
    th_route(s, "/child", "text/html",
             "<title>child</title><input id=member value=''><script>window.inner = 7</script>", -1,
             0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    char err[CDP_ERR_MAX], *child = NULL;
    assert_int_equal(cdp_page_child_frame(p, NULL, "#app", &child, T, err), 0);
    assert_string_not_equal(child, cdp_page_main_frame(p));
    assert_eval(p, child, "document.title", "\"child\"");
    assert_eval(p, child, "window.inner", "7");
    assert_eval(p, NULL, "typeof window.inner", "\"undefined\"");

    cdp_frame *fr = NULL;
    size_t n = 0;
    assert_int_equal(cdp_page_frames(p, &fr, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(fr[0].id, cdp_page_main_frame(p));
    assert_null(fr[0].parent_id);
    assert_string_equal(fr[1].id, child);
    assert_string_equal(fr[1].parent_id, cdp_page_main_frame(p));
    assert_int_equal(fr[1].out_of_process, 0);
    assert_non_null(strstr(fr[1].url, "/child"));
    cdp_frames_free(fr, n);

    /* a selector that is no frame fails clearly */
    char *none = NULL;
    assert_int_equal(cdp_page_child_frame(p, NULL, "#nothing", &none, 300, err), CDP_ETIMEOUT);
    if (!strstr(err, "no element matches #nothing"))
        fail_msg("unexpected: %s", err);
    free(child);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

static void cross_site_iframe_out_of_process(void **state)
{
    (void)state;
    th_server *s = th_start();
    char top[512];
    snprintf(top, sizeof(top),
             "<title>portal</title><iframe id=appeals src='http://localhost:%d/appeal'></iframe>",
             th_port(s));
    th_route(s, "/", "text/html", top, -1, 0);
    th_route(s, "/appeal", "text/html", "<title>appeals app</title><textarea id=why></textarea>",
             -1, 0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    char err[CDP_ERR_MAX], *child = NULL;
    assert_int_equal(cdp_page_child_frame(p, NULL, "#appeals", &child, T, err), 0);
    assert_eval(p, child, "location.hostname", "\"localhost\"");
    assert_eval(p, child, "document.title", "\"appeals app\"");
    assert_eval(p, child, "document.querySelector('#why').value = 'typed'; 'ok'", "\"ok\"");
    assert_eval(p, child, "document.querySelector('#why').value", "\"typed\"");

    /* it really is another target, on a session of its own */
    cdp_session *fs = NULL;
    int ctx = 0;
    assert_int_equal(cdp_page_frame_context(p, child, &fs, &ctx, T, err), 0);
    assert_ptr_not_equal(fs, cdp_page_session(p));
    assert_string_equal(cdp_session_target_type(fs), "iframe");
    assert_true(ctx > 0);
    cdp_session_unref(fs);
    cdp_frame *fr = NULL;
    size_t n = 0;
    assert_int_equal(cdp_page_frames(p, &fr, &n), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(fr[i].id, child) == 0) {
            found = 1;
            assert_int_equal(fr[i].out_of_process, 1);
            assert_string_equal(fr[i].parent_id, cdp_page_main_frame(p));
        }
    assert_true(found);
    cdp_frames_free(fr, n);
    free(child);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

/* The source of kept_fn, in static storage as cdp_page_call_kept wants. */
static const char kept_fn[] = "// a last-line comment\n"
                              "function (what) { return what + ':' + document.title }";

static char *kept_call(cdp_page *p, const char *frame, const char *what)
{
    char err[CDP_ERR_MAX] = "";
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateString(what)));
    cdp_value v;
    if (cdp_page_call_kept(p, frame, kept_fn, args, 0, &v, T, err))
        fail_msg("kept call: %s", err);
    char *out = cJSON_IsString(v.value) ? strdup(v.value->valuestring) : NULL;
    cJSON_Delete(v.value);
    return out;
}

/* A function called often is installed once per document: the second call
 * in a document is one round trip, not two; a new document (another
 * site's, in another renderer process, where context ids start again)
 * gets it afresh; an out-of-process frame has its own; the page's own
 * scripts find it nowhere. */
static void a_kept_function_is_installed_once_per_document(void **state)
{
    (void)state;
    th_server *s = th_start();
    char top[512];
    snprintf(top, sizeof(top),
             "<title>one</title><iframe id=app src='http://localhost:%d/app'></iframe>",
             th_port(s));
    th_route(s, "/", "text/html", top, -1, 0);
    th_route(s, "/app", "text/html", "<title>app</title>", -1, 0);
    th_route(s, "/two", "text/html", "<title>two</title>", -1, 0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    char *got = kept_call(p, NULL, "a");
    assert_string_equal(got, "a:one");
    free(got);
    unsigned long before = cdp_calls_here();
    got = kept_call(p, NULL, "b");
    assert_string_equal(got, "b:one");
    free(got);
    assert_int_equal(cdp_calls_here() - before, 1);
    assert_eval(p, NULL,
                "Object.getOwnPropertyNames(window).filter(k => { try { return "
                "String(window[k]).includes('last-line comment') } catch (e) { return false } "
                "}).length",
                "0");
    char err[CDP_ERR_MAX], *child = NULL;
    assert_int_equal(cdp_page_child_frame(p, NULL, "#app", &child, T, err), 0);
    got = kept_call(p, child, "c");
    assert_string_equal(got, "c:app");
    free(got);
    free(child);
    /* another document, then another site's (another process) */
    go(p, u, CDP_WAIT_LOAD);
    got = kept_call(p, NULL, "d");
    assert_string_equal(got, "d:one");
    free(got);
    char *other = url_of(s, "localhost", "/two");
    go(p, other, CDP_WAIT_LOAD);
    got = kept_call(p, NULL, "e");
    assert_string_equal(got, "e:two");
    free(got);
    go(p, u, CDP_WAIT_LOAD);
    got = kept_call(p, NULL, "f");
    assert_string_equal(got, "f:one");
    free(got);
    /* the object released behind its back (its context stands): the call
     * still answers, the object is forgotten and installed again, and
     * then it is one round trip again */
    cJSON *rel = cJSON_CreateObject();
    cJSON_AddStringToObject(rel, "objectGroup", "portier-kept");
    assert_int_equal(
        cdp_call(cdp_page_session(p), "Runtime.releaseObjectGroup", rel, NULL, T, err), 0);
    got = kept_call(p, NULL, "g");
    assert_string_equal(got, "g:one");
    free(got);
    got = kept_call(p, NULL, "h");
    assert_string_equal(got, "h:one");
    free(got);
    before = cdp_calls_here();
    got = kept_call(p, NULL, "i");
    assert_string_equal(got, "i:one");
    free(got);
    assert_int_equal(cdp_calls_here() - before, 1);
    /* a page that broke array spreading does not stand between the
     * arguments and the function */
    assert_eval(p, NULL, "Array.prototype[Symbol.iterator] = function* () {}; 1", "1");
    got = kept_call(p, NULL, "j");
    assert_string_equal(got, "j:one");
    free(got);
    free(other);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

static void nested_cross_site_iframes(void **state)
{
    (void)state;
    th_server *s = th_start();
    char top[512], mid[512];
    snprintf(top, sizeof(top), "<iframe id=a src='http://localhost:%d/mid'></iframe>", th_port(s));
    snprintf(mid, sizeof(mid),
             "<title>mid</title><iframe id=b src='http://127.0.0.1:%d/leaf'>"
             "</iframe>",
             th_port(s));
    th_route(s, "/", "text/html", top, -1, 0);
    th_route(s, "/mid", "text/html", mid, -1, 0);
    th_route(s, "/leaf", "text/html", "<title>leaf</title>", -1, 0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    char err[CDP_ERR_MAX], *mid_id = NULL, *leaf = NULL;
    assert_int_equal(cdp_page_child_frame(p, NULL, "#a", &mid_id, T, err), 0);
    assert_eval(p, mid_id, "document.title", "\"mid\"");
    assert_int_equal(cdp_page_child_frame(p, mid_id, "#b", &leaf, T, err), 0);
    assert_eval(p, leaf, "document.title + ' ' + location.hostname", "\"leaf 127.0.0.1\"");
    free(mid_id);
    free(leaf);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void screenshot_over_5mb_round_trips(void **state)
{
    (void)state;
    th_server *s = th_start();
    /* noise does not compress: a 2000x1100 PNG of it is over 6 MB */
    th_route(s, "/", "text/html",
             "<style>body{margin:0}</style><canvas id=c width=2000 height=1100></canvas><script>"
             "const c = document.getElementById('c').getContext('2d');"
             "const img = c.createImageData(2000, 1100); let x = 12345;"
             "for (let i = 0; i < img.data.length; i++) {"
             "  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;"
             "  img.data[i] = (i & 3) == 3 ? 255 : x & 255; }"
             "c.putImageData(img, 0, 0);</script>",
             -1, 0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char err[CDP_ERR_MAX];
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "width", 2000);
    cJSON_AddNumberToObject(m, "height", 1100);
    cJSON_AddNumberToObject(m, "deviceScaleFactor", 1);
    cJSON_AddBoolToObject(m, "mobile", 0);
    assert_int_equal(
        cdp_call(cdp_page_session(p), "Emulation.setDeviceMetricsOverride", m, NULL, T, err), 0);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    unsigned char *png = NULL;
    size_t len = 0;
    if (cdp_page_screenshot(p, 0, &png, &len, 60000, err))
        fail_msg("screenshot: %s", err);
    print_message("screenshot: %zu bytes\n", len);
    assert_true(len > 5u * 1000 * 1000);
    /* intact: the signature, the size, and every chunk's CRC */
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    size_t off = 8;
    int chunks = 0, saw_end = 0;
    while (off + 12 <= len) {
        uint32_t clen = be32(png + off);
        assert_true(off + 12 + clen <= len);
        if (memcmp(png + off + 4, "IHDR", 4) == 0) {
            assert_int_equal(be32(png + off + 8), 2000);
            assert_int_equal(be32(png + off + 12), 1100);
        }
        assert_int_equal(crc32_of(png + off + 4, clen + 4), be32(png + off + 8 + clen));
        saw_end = memcmp(png + off + 4, "IEND", 4) == 0;
        off += 12 + clen;
        chunks++;
    }
    assert_true(saw_end);
    assert_int_equal(off, len);
    assert_true(chunks > 3);
    free(png);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

static void dialogs_are_answered_and_recorded(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html",
             "<button id=go onclick=\"document.body.dataset.r = confirm('Submit this claim?')"
             "\">go</button>",
             -1, 0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    /* a confirm() blocks the page until answered; accepted by default */
    assert_eval(p, NULL, "document.getElementById('go').click(); document.body.dataset.r",
                "\"true\"");
    cdp_page_set_dialog_answer(p, 0, NULL);
    assert_eval(p, NULL, "document.getElementById('go').click(); document.body.dataset.r",
                "\"false\"");
    cdp_page_set_dialog_answer(p, 1, "PA-123");
    assert_eval(p, NULL, "prompt('Reference?')", "\"PA-123\"");
    cdp_dialog *d = NULL;
    size_t n = 0;
    assert_int_equal(cdp_page_dialogs(p, &d, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].type, "confirm");
    assert_string_equal(d[0].message, "Submit this claim?");
    assert_int_equal(d[0].accepted, 1);
    assert_int_equal(d[1].accepted, 0);
    assert_string_equal(d[2].type, "prompt");
    cdp_dialogs_free(d, n);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

typedef struct hang_call {
    cdp_page *p;
    int rc;
    char err[CDP_ERR_MAX];
    int64_t took;
} hang_call;

static void *call_that_never_returns(void *arg)
{
    hang_call *h = arg;
    cJSON *v = NULL;
    int64_t t0 = pt_mono_ms();
    h->rc = cdp_page_eval(h->p, NULL, "new Promise(() => {})", &v, 60000, h->err);
    h->took = pt_mono_ms() - t0;
    cJSON_Delete(v);
    return NULL;
}

static void killed_browser_fails_calls_at_once(void **state)
{
    (void)state;
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    go(p, "about:blank", CDP_WAIT_LOAD);
    hang_call h = {.p = p};
    pthread_t t;
    pthread_create(&t, NULL, call_that_never_returns, &h);
    pt_sleep_ms(500);
    int pid = cdp_browser_pid(b);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    pthread_join(t, NULL);
    print_message("call returned %d after %lld ms: %s\n", h.rc, (long long)h.took, h.err);
    assert_int_equal(h.rc, CDP_EGONE);
    assert_non_null(strstr(h.err, "browser exited (signal 9)"));
    assert_true(h.took < 30000); /* the browser-gone error, not the 60 s timeout */
    char why[CDP_ERR_MAX];
    assert_int_equal(cdp_browser_gone(b, why), 1);
    cdp_page_close(p);
    cdp_close(b);
    assert_int_equal(tp_count_group(pid), 0);
    /* and the caller can launch again */
    b = launch();
    p = open_page(b, NULL);
    assert_eval(p, NULL, "1 + 1", "2");
    cdp_page_close(p);
    cdp_close(b);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void no_browser_survives_a_killed_owner(void **state)
{
    (void)state;
    char *tmp = pt_mkdtemp("portier-owner");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t owner = fork();
    if (owner == 0) {
        setenv("TMPDIR", tmp, 1);
        cdp_browser *b = NULL;
        char err[CDP_ERR_MAX];
        if (cdp_launch(NULL, &b, err))
            _exit(3);
        int pid = cdp_browser_pid(b);
        if (write(fds[1], &pid, sizeof(pid)) != sizeof(pid))
            _exit(4);
        for (;;)
            pause();
    }
    int pid = 0;
    assert_int_equal(read(fds[0], &pid, sizeof(pid)), sizeof(pid));
    assert_true(pid > 0);
    assert_true(tp_count(tmp) > 0); /* the browser runs, its profile under tmp */
    assert_int_equal(kill(owner, SIGKILL), 0);
    int st;
    waitpid(owner, &st, 0);
    int left = tp_wait_none(tmp, 15000);
    print_message("browser processes left after SIGKILL of the owner: %d\n", left);
    assert_int_equal(left, 0);
    /* the profile the owner could not remove is swept by the next launch */
    assert_int_equal(count_entries(tmp), 1);
    setenv("TMPDIR", tmp, 1);
    cdp_browser *b = launch();
    unsetenv("TMPDIR");
    assert_int_equal(count_entries(tmp), 1); /* only the new browser's own */
    cdp_close(b);
    assert_int_equal(count_entries(tmp), 0);
    assert_int_equal(pt_rmtree(tmp), 0);
    close(fds[0]);
    close(fds[1]);
    free(tmp);
}

/* A launched browser is driven over its pipe: while a page is open, no
 * process of its group listens on TCP (a browser of the test's own with
 * --remote-debugging-port shows that the count sees such a port). */
/* Whether /proc/PID/environ holds an entry that starts with prefix: 1, 0,
 * or -1 when it cannot be read. */
static int environ_has(int pid, const char *prefix)
{
    char path[64], buf[65536];
    snprintf(path, sizeof(path), "/proc/%d/environ", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (!strncmp(buf + i, prefix, strlen(prefix)))
            return 1;
    return 0;
}

static void launched_browser_opens_no_port(void **state)
{
    (void)state;
    /* and is not given the service's secrets: the master key reaches
     * neither the browser nor any renderer of a portal's page */
    setenv("PORTIER_MASTER_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
           1);
    setenv("PORTIER_API_KEY", "pk_test_never_in_the_browser", 1);
    th_server *s = th_start();
    th_route(s, "/", "text/html", "<title>open</title><p>a page", -1, 0);
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    char *u = url_of(s, "127.0.0.1", "/");
    go(p, u, CDP_WAIT_LOAD);
    assert_eval(p, NULL, "document.title", "\"open\"");
    assert_null(cdp_browser_ws_url(b));
    int pid = cdp_browser_pid(b);
    assert_true(pid > 0);
    int listening = tp_listening_sockets(pid);
    print_message("listening TCP sockets of the launched browser: %d\n", listening);
    assert_int_equal(listening, 0);
    assert_int_equal(environ_has(pid, "PORTIER_MASTER_KEY="), 0);
    assert_int_equal(environ_has(pid, "PORTIER_API_KEY="), 0);
    assert_int_equal(environ_has(pid, "TMPDIR="), 1); /* what it is given, it has */
    unsetenv("PORTIER_MASTER_KEY");
    unsetenv("PORTIER_API_KEY");

    char *tmp = pt_mkdtemp("cdp-remote");
    char url[512];
    int remote = tp_remote_browser(tmp, url, sizeof(url));
    assert_true(remote > 0);
    int control = tp_listening_sockets(remote);
    print_message("listening TCP sockets of a browser with a port: %d\n", control);
    assert_true(control >= 1);
    tp_stop_browser(remote);
    assert_int_equal(pt_rmtree(tmp), 0);
    free(tmp);
    free(u);
    cdp_page_close(p);
    cdp_close(b);
    assert_int_equal(tp_count_group(pid), 0);
    th_stop(s);
}

/* Messages of several MiB cross the pipe intact both ways: a command bigger
 * than the pipe's buffer, and a reply far bigger than one read. */
static void big_messages_cross_the_pipe(void **state)
{
    (void)state;
    cdp_browser *b = launch();
    cdp_page *p = open_page(b, NULL);
    size_t n = 3u << 20;
    char *js = malloc(n + 64);
    assert_non_null(js);
    size_t k = (size_t)sprintf(js, "(function(){const s='");
    for (size_t i = 0; i < n; i++)
        js[k++] = (char)('a' + i % 26);
    k += (size_t)sprintf(js + k, "';return s.length + ':' + s.slice(-3)})()");
    char want[64];
    snprintf(want, sizeof(want), "\"%zu:%c%c%c\"", n, 'a' + (int)((n - 3) % 26),
             'a' + (int)((n - 2) % 26), 'a' + (int)((n - 1) % 26));
    char err[CDP_ERR_MAX] = "";
    cJSON *v = NULL;
    if (cdp_page_eval(p, NULL, js, &v, 60000, err))
        fail_msg("eval of a %zu-byte expression: %s", k, err);
    free(js);
    char *got = cJSON_PrintUnformatted(v);
    assert_string_equal(got, want);
    free(got);
    cJSON_Delete(v);
    v = NULL;
    const char *big = "Array.from({length: 9 << 20}, (_, i) => String.fromCharCode(97 + i % 26))"
                      ".join('')";
    if (cdp_page_eval(p, NULL, big, &v, 60000, err))
        fail_msg("eval: %s", err);
    assert_true(cJSON_IsString(v));
    size_t len = strlen(v->valuestring);
    print_message("reply over the pipe: %zu bytes\n", len);
    assert_int_equal(len, 9u << 20);
    size_t bad = 0;
    for (size_t i = 0; i < len; i++)
        bad += v->valuestring[i] != (char)('a' + i % 26);
    assert_int_equal(bad, 0);
    cJSON_Delete(v);
    assert_eval(p, NULL, "1 + 1", "2"); /* and the pipe goes on */
    cdp_page_close(p);
    cdp_close(b);
}

static void connect_to_a_running_browser(void **state)
{
    (void)state;
    char *tmp = pt_mkdtemp("cdp-remote");
    char url[512];
    int remote = tp_remote_browser(tmp, url, sizeof(url));
    assert_true(remote > 0);
    char err[CDP_ERR_MAX];
    cdp_browser *b = NULL;
    assert_int_equal(cdp_connect(url, &b, err), 0);
    assert_int_equal(cdp_browser_pid(b), 0);
    assert_string_equal(cdp_browser_ws_url(b), url);
    cdp_page *p = open_page(b, NULL);
    assert_eval(p, NULL, "navigator.userAgent.includes('Chrome')", "true");
    cdp_page_close(p);
    cdp_close(b); /* disconnects; the browser lives on */
    assert_int_equal(tp_count_group(remote), 1);
    assert_int_equal(cdp_connect(url, &b, err), 0);
    cdp_page *q = open_page(b, NULL);
    assert_eval(q, NULL, "6 * 7", "42");
    cdp_page_close(q);
    cdp_close(b);
    tp_stop_browser(remote);
    assert_int_equal(tp_count_group(remote), 0);
    assert_int_equal(pt_rmtree(tmp), 0);
    free(tmp);

    /* a browser that is not there is a clear error */
    assert_int_equal(cdp_connect("ws://127.0.0.1:9/devtools/browser/x", &b, err), CDP_EFAIL);
    assert_non_null(strstr(err, "ws://127.0.0.1:9/devtools/browser/x"));
    assert_int_equal(cdp_connect("http://nope", &b, err), CDP_EFAIL);
    assert_non_null(strstr(err, "not a ws:// URL"));
}

typedef struct worker {
    cdp_browser *b;
    int n;
    int ok;
} worker;

static void *evaluate_many(void *arg)
{
    worker *w = arg;
    char err[CDP_ERR_MAX], *ctx = NULL;
    cdp_page *p = NULL;
    if (cdp_context_create(w->b, &ctx, err) || cdp_page_open(w->b, ctx, &p, err))
        return NULL;
    for (int i = 0; i < 200; i++) {
        char js[64];
        snprintf(js, sizeof(js), "%d * 2 + %d", i, w->n);
        cJSON *v = NULL;
        if (cdp_page_eval(p, NULL, js, &v, T, err) == 0 && cJSON_IsNumber(v) &&
            v->valueint == i * 2 + w->n)
            w->ok++;
        cJSON_Delete(v);
    }
    cdp_page_close(p);
    cdp_context_dispose(w->b, ctx, NULL);
    free(ctx);
    return NULL;
}

static void many_threads_call_at_once(void **state)
{
    (void)state;
    enum { N = 8 };
    cdp_browser *b = launch();
    worker w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.b = b, .n = i * 1000};
        pthread_create(&t[i], NULL, evaluate_many, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 200);
    }
    cdp_close(b);
}

static void launch_failures_are_clear(void **state)
{
    (void)state;
    char err[CDP_ERR_MAX];
    cdp_browser *b = NULL;
    setenv("PORTIER_CHROMIUM", "/nonexistent/chromium", 1);
    assert_int_equal(cdp_launch(NULL, &b, err), CDP_EFAIL);
    unsetenv("PORTIER_CHROMIUM");
    assert_null(b);
    assert_non_null(strstr(err, "/nonexistent/chromium"));
    assert_non_null(strstr(err, "not found"));
    cdp_launch_options o = {.executable = "/bin/false"};
    assert_int_equal(cdp_launch(&o, &b, err), CDP_EFAIL);
    assert_non_null(strstr(err, "exited (status 1)"));
}

PT_TESTS("cdp_browser", cmocka_unit_test(navigate_and_evaluate),
         cmocka_unit_test(navigation_failure_names_the_url),
         cmocka_unit_test(network_idle_waits_for_late_requests),
         cmocka_unit_test(contexts_are_isolated), cmocka_unit_test(same_origin_iframe),
         cmocka_unit_test(cross_site_iframe_out_of_process),
         cmocka_unit_test(nested_cross_site_iframes),
         cmocka_unit_test(a_kept_function_is_installed_once_per_document),
         cmocka_unit_test(screenshot_over_5mb_round_trips),
         cmocka_unit_test(dialogs_are_answered_and_recorded),
         cmocka_unit_test(killed_browser_fails_calls_at_once),
         cmocka_unit_test(no_browser_survives_a_killed_owner),
         cmocka_unit_test(launched_browser_opens_no_port),
         cmocka_unit_test(big_messages_cross_the_pipe),
         cmocka_unit_test(connect_to_a_running_browser),
         cmocka_unit_test(many_threads_call_at_once), cmocka_unit_test(launch_failures_are_clear));
