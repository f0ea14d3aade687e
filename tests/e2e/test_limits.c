/*
 * test_limits.c - what `portier serve` refuses, and how fairly it shares:
 * a stranger's body is never read (401 before it is sent, RSS and the
 * spool unmoved), slow or idle connections are closed, a client address is
 * held to its cap, every malformed request gets its status, a burst does
 * not overfill the queue, webhook URLs are checked, and one account's dead
 * endpoint does not hold up another's webhook.
 *
 * All of it over raw sockets on loopback against the real binary (API
 * only: --workers 0), with counted facts, never timings.
 */
#define _GNU_SOURCE
#include "server/keys.h"
#include "server/store.h"
#include "tests/support/testhttp.h"
#include "tests/support/testmain.h"
#include "tests/support/testserve.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- Raw HTTP ------------------------------------------------------------ */

#define HEALTHZ "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
#define HEALTHZ_CLOSE "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

static int port_of(const ts_server *s)
{
    const char *c = strrchr(s->base, ':');
    return c ? atoi(c + 1) : 0;
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void raw_send(int fd, const void *data, size_t len)
{
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads until the peer closes or wait_ms pass; what came (new string). */
static char *raw_read(int fd, int wait_ms, int *closed)
{
    size_t cap = 65536, len = 0;
    char *out = calloc(1, cap + 1);
    int64_t until = pt_mono_ms() + wait_ms;
    *closed = 0;
    while (len < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = until - pt_mono_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, out + len, cap - len, 0);
        if (n <= 0) {
            *closed = 1;
            break;
        }
        len += (size_t)n;
    }
    return out;
}

static int status_of(const char *reply)
{
    int st = 0;
    return sscanf(reply, "HTTP/1.1 %d", &st) == 1 ? st : 0;
}

/* Sends one request on a new connection; the status it gets (0: none). */
static int raw_status(int port, const void *req, size_t len, int wait_ms)
{
    int fd = raw_connect(port), closed;
    raw_send(fd, req, len);
    char *reply = raw_read(fd, wait_ms, &closed);
    int st = status_of(reply);
    free(reply);
    close(fd);
    return st;
}

/* A connection the other side has not closed (no FIN, no reset), whatever
 * it sent that is still unread. */
static int still_open(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) == 0;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* Files under dir and its folders (a node spools in a folder of its own). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char sub[1200];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        DIR *in = opendir(sub);
        if (in) {
            closedir(in);
            n += count_files(sub);
        } else {
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- The server ------------------------------------------------------------ */

typedef struct env {
    ts_server s;
    char key[128];
    int port;
} env;

/* An account with an SOP, then `portier serve` (API only) with extra. */
static void start(env *e, const char *name, const char *const *extra, const char *const *envs)
{
    ts_init(&e->s, name);
    char *out = NULL, sop_file[4200];
    const char *create[] = {"account", "create", "acme", NULL};
    assert_int_equal(ts_cli(&e->s, create, NULL, &out), 0);
    cJSON *o = cJSON_Parse(strchr(out, '{'));
    snprintf(e->key, sizeof(e->key), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "api_key")));
    cJSON_Delete(o);
    free(out);
    snprintf(sop_file, sizeof(sop_file), "%s/sops/sandbox/check_eligibility.sop",
             PORTIER_SOURCE_DIR);
    const char *setsop[] = {"account", "set-sop", "acme", "check_eligibility", sop_file, NULL};
    assert_int_equal(ts_cli(&e->s, setsop, NULL, NULL), 0);
    const char *args[24] = {"--workers", "0"};
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(ts_start(&e->s, args, envs), 0);
    e->port = port_of(&e->s);
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
    ts_cleanup(&e->s);
}

/* "POST path" with the key (or none), these headers and that body. */
static char *request(const env *e, const char *line, int with_key, const char *headers,
                     const char *body)
{
    char *r = NULL;
    int n = asprintf(&r, "%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s%s\r\n%s", line,
                     with_key ? "Authorization: Bearer " : "", with_key ? e->key : "",
                     with_key ? "\r\n" : "", headers ? headers : "", body ? body : "");
    assert_true(n > 0);
    return r;
}

/* ---- 1. A stranger's body is never read --------------------------------- */

/* Ten connections announce 24 MiB bodies without a key: each gets its 401
 * before sending a byte of it; ten multipart ones the same, and nothing
 * lands in the spool; a keyless route takes no big body either (413). The
 * server's RSS stays where it was. */
static void test_unauthenticated_body_never_read(void **state)
{
    (void)state;
    env e;
    start(&e, "lim-unauth", NULL, NULL);
    long before = rss_kib(e.s.pid);
    int fds[20], got401 = 0;
    for (int i = 0; i < 20; i++) {
        char *req =
            request(&e, "POST /tasks", 0,
                    i < 10 ? "Content-Type: application/json\r\nContent-Length: 25165824\r\n"
                           : "Content-Type: multipart/form-data; boundary=xYz\r\n"
                             "Content-Length: 25165824\r\n",
                    NULL);
        fds[i] = raw_connect(e.port);
        raw_send(fds[i], req, strlen(req));
        free(req);
    }
    for (int i = 0; i < 20; i++) {
        int closed;
        char *reply = raw_read(fds[i], 10000, &closed);
        got401 += status_of(reply) == 401 && closed;
        free(reply);
        close(fds[i]);
    }
    assert_int_equal(got401, 20);
    char *sink = request(&e, "POST /_portier/webhook-sink", 0,
                         "Content-Type: application/json\r\nContent-Length: 25165824\r\n", NULL);
    assert_int_equal(raw_status(e.port, sink, strlen(sink), 10000), 413);
    free(sink);
    long after = rss_kib(e.s.pid);
    char spool[700];
    snprintf(spool, sizeof(spool), "%s/spool", e.s.data);
    assert_int_equal(count_files(spool), 0);
    assert_true(before > 0 && after > 0);
    if (after - before > 8 * 1024)
        fail_msg("RSS went from %ld to %ld KiB", before, after);
    /* the key's owner is let through to the body */
    const char *json = "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                       "dob: 1949-12-23\"}";
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\nContent-Length: %zu\r\n",
             strlen(json));
    char *ok = request(&e, "POST /tasks", 1, hdr, json);
    assert_int_equal(raw_status(e.port, ok, strlen(ok), 10000), 200);
    free(ok);
    stop(&e);
}

/* ---- Deadlines and the per-address cap ---------------------------------- */

/* Twenty connections trickle a head a byte at a time, and one trickles an
 * admitted body: the server closes every one of them (400 for the heads,
 * 408 for the body) though the client never stops. An idle keep-alive
 * connection is closed too. */
static void test_slow_clients_are_closed(void **state)
{
    (void)state;
    env e;
    const char *extra[] = {"--header-timeout", "1", "--min-body-rate", "1024", NULL};
    start(&e, "lim-slow", extra, NULL);
    enum { N = 20 };
    int fds[N + 1], closed[N + 1] = {0}, status[N + 1] = {0};
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(e.port);
        const char *head = "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ";
        raw_send(fds[i], head, strlen(head));
    }
    char *body = request(&e, "POST /tasks", 1,
                         "Content-Type: application/json\r\nContent-Length: 100000\r\n", NULL);
    fds[N] = raw_connect(e.port);
    raw_send(fds[N], body, strlen(body));
    free(body);
    int open_left = N + 1;
    int64_t until = pt_mono_ms() + 60000;
    while (open_left && pt_mono_ms() < until) {
        for (int i = 0; i <= N; i++) {
            if (closed[i])
                continue;
            int c;
            char *reply = raw_read(fds[i], 20, &c); /* before sending: nothing is lost */
            if (!status[i])
                status[i] = status_of(reply);
            free(reply);
            if (c) {
                closed[i] = 1;
                open_left--;
            } else {
                send(fds[i], "a", 1, MSG_NOSIGNAL);
            }
        }
        pt_sleep_ms(200);
    }
    assert_int_equal(open_left, 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(status[i], 400);
    assert_int_equal(status[N], 408);
    for (int i = 0; i <= N; i++)
        close(fds[i]);
    /* idle keep-alive: one answered request, then nothing */
    int fd = raw_connect(e.port), c;
    raw_send(fd, HEALTHZ, strlen(HEALTHZ));
    char *reply = raw_read(fd, 30000, &c);
    assert_int_equal(status_of(reply), 200);
    assert_int_equal(c, 1);
    free(reply);
    close(fd);
    stop(&e);
}

/* With --max-conns-per-ip 8, a ninth connection from the address is closed
 * without an answer while eight are open; once they close, it is served. */
static void test_connections_per_address_capped(void **state)
{
    (void)state;
    env e;
    const char *extra[] = {"--max-conns-per-ip", "8", "--header-timeout", "60", NULL};
    start(&e, "lim-cap", extra, NULL);
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = raw_connect(e.port);
    pt_sleep_ms(300); /* let the server take them before the ninth */
    int refused = 0;
    for (int k = 0; k < 5; k++) {
        int fd = raw_connect(e.port), c;
        send(fd, HEALTHZ, strlen(HEALTHZ), MSG_NOSIGNAL);
        char *reply = raw_read(fd, 10000, &c);
        refused += c && status_of(reply) == 0;
        free(reply);
        close(fd);
    }
    assert_int_equal(refused, 5);
    for (int i = 0; i < 8; i++)
        assert_true(still_open(fds[i]));
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    int served = 0;
    for (int k = 0; k < 50 && !served; k++) {
        served = raw_status(e.port, HEALTHZ_CLOSE, strlen(HEALTHZ_CLOSE), 5000) == 200;
        if (!served)
            pt_sleep_ms(100);
    }
    assert_true(served);
    stop(&e);
}

/* ---- 9. Strict HTTP ------------------------------------------------------ */

/* Each malformed request gets its own status, and the key's owner is
 * answered normally right after on the same server. */
static void test_malformed_requests_get_their_status(void **state)
{
    (void)state;
    env e;
    const char *extra[] = {"--header-timeout", "1", NULL};
    start(&e, "lim-strict", extra, NULL);
    char big_cookie[20001], long_path[9001];
    memset(big_cookie, 'c', sizeof(big_cookie) - 1);
    big_cookie[sizeof(big_cookie) - 1] = '\0';
    memset(long_path, 'p', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    char *cookie_hdr = NULL, *long_line = NULL;
    assert_true(asprintf(&cookie_hdr, "Cookie: a=%s\r\n", big_cookie) > 0);
    assert_true(asprintf(&long_line, "GET /%s", long_path) > 0);
    const struct {
        const char *line, *headers, *body;
        int key, want;
    } cases[] = {
        {"POST /tasks", "Content-Length: 2\r\nContent-Length: 5\r\n", "{}", 1, 400},
        {"POST /tasks", "Content-Length: 2, 5\r\n", "{}", 1, 400},
        {"POST /tasks", "Content-Length: abc\r\n", "", 1, 400},
        {"POST /tasks", "Content-Length: -1\r\n", "", 1, 400},
        {"POST /tasks", "Content-Length: 2 2\r\n", "", 1, 400},
        {"POST /tasks", "Transfer-Encoding: chunked\r\n", "", 1, 411},
        {long_line, "", "", 1, 414},
        {"GET /tasks", cookie_hdr, "", 1, 431},
        {"GET /tasks", "X-No-Colon-Here\r\n", "", 1, 400},
        {"POST /tasks", "Content-Type: application/jsonxyz\r\nContent-Length: 2\r\n", "{}", 1, 415},
        {"POST /tasks", "Content-Type: text/json\r\nContent-Length: 2\r\n", "{}", 1, 415},
        {"POST /tasks", "Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n",
         "{}", 1, 400 /* no type: past the media type */},
        {"GET /tasks", "", "", 0, 401},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *req = request(&e, cases[i].line, cases[i].key, cases[i].headers, cases[i].body);
        int got = raw_status(e.port, req, strlen(req), 10000);
        if (got != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
        free(req);
    }
    /* a NUL in a header: the key with junk after it does not authenticate */
    char nul[512];
    int n = snprintf(nul, sizeof(nul), "GET /tasks HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s",
                     e.key);
    memcpy(nul + n, "\0junk\r\n\r\n", 9);
    assert_int_equal(raw_status(e.port, nul, (size_t)n + 9, 10000), 400);
    /* a NUL in a multipart file name: 400, not a file silently dropped */
    const char part[] = "--xYz\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n"
                        "check_eligibility\r\n--xYz\r\nContent-Disposition: form-data; "
                        "name=\"files\"; filename=\"a\0b.pdf\"\r\n\r\n%PDF\r\n--xYz--\r\n";
    char hdr[160];
    snprintf(hdr, sizeof(hdr),
             "Content-Type: multipart/form-data; boundary=xYz\r\nContent-Length: %zu\r\n",
             sizeof(part) - 1);
    char *head = request(&e, "POST /tasks", 1, hdr, NULL);
    size_t hl = strlen(head);
    char *full = malloc(hl + sizeof(part));
    memcpy(full, head, hl);
    memcpy(full + hl, part, sizeof(part) - 1);
    assert_int_equal(raw_status(e.port, full, hl + sizeof(part) - 1, 10000), 400);
    free(full);
    free(head);
    /* far past the head buffer: closed (no status is promised) */
    char *huge = malloc(120000);
    memset(huge, 'h', 120000);
    memcpy(huge, "GET /tasks HTTP/1.1\r\nX-Huge: ", 29);
    int fd = raw_connect(e.port), c;
    send(fd, huge, 120000, MSG_NOSIGNAL);
    char *reply = raw_read(fd, 10000, &c);
    assert_true(c);
    free(reply);
    close(fd);
    free(huge);
    assert_int_equal(raw_status(e.port, HEALTHZ_CLOSE, strlen(HEALTHZ_CLOSE), 5000), 200);
    free(cookie_hdr);
    free(long_line);
    stop(&e);
}

/* With a header deadline of a minute, a head that is wrong is answered as
 * soon as its line is in, long before the deadline could have passed: a
 * line without a colon, a folded line or a bare CR (400), header lines over
 * 16 KiB counting every header, unknown ones too (431). Headers just under
 * the limit are taken. */
static void test_bad_heads_answered_at_once(void **state)
{
    (void)state;
    env e;
    const char *extra[] = {"--header-timeout", "60", NULL};
    start(&e, "lim-heads", extra, NULL);
    char *pad = NULL, *under = NULL;
    pt_buf p, u;
    pt_buf_init(&p, 0);
    pt_buf_init(&u, 0);
    for (int i = 0; i < 40; i++) /* 40 unknown headers of 500 bytes: 20 KiB */
        pt_buf_appendf(&p, "X-Pad-%02d: %0500d\r\n", i, 0);
    for (int i = 0; i < 28; i++) /* 28 of them: 14 KiB */
        pt_buf_appendf(&u, "X-Pad-%02d: %0500d\r\n", i, 0);
    pt_buf_appendf(&u, "Connection: close\r\n");
    pad = pt_buf_take(&p);
    under = pt_buf_take(&u);
    const struct {
        const char *headers, *says;
        int want;
    } cases[] = {
        {"X-No-Colon-Here\r\n", "Name: value", 400},
        {"X-A: 1\r\n folded\r\n", "folded", 400},
        {"Bad Name: 1\r\n", "Name: value", 400},
        {"X-A: 1\rX-B: 2\r\n", "CR", 400},
        {pad, "16384", 431},
        {under, NULL, 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *req = request(&e, "GET /tasks?limit=1", 1, cases[i].headers, NULL);
        int fd = raw_connect(e.port), c;
        raw_send(fd, req, strlen(req)); /* and nothing more: no end to wait for */
        char *reply = raw_read(fd, cases[i].want == 200 ? 20000 : 30000, &c);
        if (status_of(reply) != cases[i].want)
            fail_msg("case %zu: got %d, want %d (within half the deadline)", i, status_of(reply),
                     cases[i].want);
        if (cases[i].says && !strstr(reply, cases[i].says))
            fail_msg("case %zu: the reply does not say why: %s", i, reply);
        free(reply);
        free(req);
        close(fd);
    }
    free(pad);
    free(under);
    stop(&e);
}

/* Keep-alive: a connection answers request after request without
 * Connection: close; requests pipelined in one write are answered in
 * order; a pipelined request whose body the client's close cuts short
 * leaves the server answering (lws 4.1's own parser spun there). */
static void test_keep_alive_and_pipelining(void **state)
{
    (void)state;
    env e;
    start(&e, "lim-keep", NULL, NULL);
    int fd = raw_connect(e.port), c;
    for (int i = 0; i < 3; i++) {
        raw_send(fd, HEALTHZ, strlen(HEALTHZ));
        char *reply = raw_read(fd, 2000, &c);
        assert_int_equal(status_of(reply), 200);
        assert_null(strcasestr(reply, "connection: close"));
        assert_int_equal(c, 0);
        free(reply);
    }
    char *list = request(&e, "GET /tasks?limit=1", 1, NULL, NULL);
    char *three = NULL;
    assert_true(asprintf(&three, "%s%s%s", HEALTHZ, list, HEALTHZ_CLOSE) > 0);
    raw_send(fd, three, strlen(three));
    char *reply = raw_read(fd, 20000, &c);
    assert_int_equal(c, 1); /* the third asked to close */
    const char *p = reply;
    int got[3] = {0}, n = 0;
    while (n < 3 && (p = strstr(p, "HTTP/1.1 ")))
        got[n++] = atoi(p += 9);
    assert_int_equal(n, 3);
    assert_int_equal(got[0], 200);
    assert_int_equal(got[1], 200);
    assert_int_equal(got[2], 200);
    assert_non_null(strstr(reply, "\"data\""));
    free(reply);
    close(fd);
    for (int k = 0; k < 5; k++) {
        char *cut = NULL;
        char *post = request(&e, "POST /tasks", 1,
                             "Content-Type: application/json\r\nContent-Length: 200\r\n",
                             "{\"type\":\"check_el");
        assert_true(asprintf(&cut, "%s%s", HEALTHZ, post) > 0);
        fd = raw_connect(e.port);
        raw_send(fd, cut, strlen(cut));
        shutdown(fd, SHUT_WR);
        free(raw_read(fd, 2000, &c));
        close(fd);
        free(cut);
        free(post);
        assert_int_equal(raw_status(e.port, HEALTHZ_CLOSE, strlen(HEALTHZ_CLOSE), 10000), 200);
    }
    free(three);
    free(list);
    stop(&e);
}

/* With --max-queue 5 and nothing running, forty requests at once admit at
 * most five, and the tasks listed are exactly the ones admitted. */
static void test_queue_limit_holds_under_a_burst(void **state)
{
    (void)state;
    env e;
    const char *extra[] = {"--max-queue", "5", NULL};
    start(&e, "lim-burst", extra, NULL);
    const char *json = "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                       "dob: 1949-12-23\"}";
    char hdr[160];
    snprintf(hdr, sizeof(hdr),
             "Content-Type: application/json\r\nConnection: close\r\nContent-Length: %zu\r\n",
             strlen(json));
    char *req = request(&e, "POST /tasks", 1, hdr, json);
    enum { N = 40 };
    int fds[N], ok = 0, full = 0;
    for (int i = 0; i < N; i++)
        fds[i] = raw_connect(e.port);
    for (int i = 0; i < N; i++)
        raw_send(fds[i], req, strlen(req));
    for (int i = 0; i < N; i++) {
        int c;
        char *reply = raw_read(fds[i], 20000, &c);
        ok += status_of(reply) == 200;
        full += status_of(reply) == 429;
        free(reply);
        close(fds[i]);
    }
    free(req);
    assert_true(ok >= 1 && ok <= 5);
    assert_int_equal(ok + full, N);
    char *list = request(&e, "GET /tasks?limit=100", 1, "Connection: close\r\n", NULL);
    int fd = raw_connect(e.port), c;
    raw_send(fd, list, strlen(list));
    char *reply = raw_read(fd, 10000, &c);
    cJSON *o = cJSON_Parse(strstr(reply, "\r\n\r\n") + 4);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "data")), ok);
    cJSON_Delete(o);
    free(reply);
    free(list);
    close(fd);
    stop(&e);
}

/* ---- 10. Webhook URLs ------------------------------------------------------ */

static int cli_status(const ts_server *s, const char *const *args)
{
    return ts_cli(s, args, NULL, NULL);
}

/* http or https only; loopback, link-local and private addresses (and a
 * name that resolves to one) refused unless --allow-private-webhooks. */
static void test_webhook_urls_are_checked(void **state)
{
    (void)state;
    ts_server s;
    ts_init(&s, "lim-urls");
    const char *create[] = {"account", "create", "acme", NULL};
    assert_int_equal(cli_status(&s, create), 0);
    static const char *const refused[] = {
        "file:///etc/passwd",     "gopher://example.com/",
        "ftp://192.0.2.1/",       "http://169.254.169.254/",
        "http://127.0.0.1:8080/", "http://localhost/hook",
        "http://10.1.2.3/",       "http://172.16.0.9/",
        "http://192.168.1.1/",    "http://[::1]/",
        "http://[fe80::1]/",      "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",        "not a url",
        "https://[fd00::5]/x",    "http://198.18.0.1/",
        "http://192.0.0.8/",      "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::]/",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *set[] = {"account", "set-webhook", "acme", refused[i], NULL};
        if (cli_status(&s, set) == 0)
            fail_msg("set-webhook took %s", refused[i]);
        const char *make[] = {"account", "create", "b", "--webhook-url", refused[i], NULL};
        if (cli_status(&s, make) == 0)
            fail_msg("create took %s", refused[i]);
    }
    const char *pub[] = {"account", "set-webhook", "acme", "https://192.0.2.10/hooks", NULL};
    assert_int_equal(cli_status(&s, pub), 0);
    const char *lo[] = {
        "account", "set-webhook", "acme", "http://127.0.0.1:9/x", "--allow-private-webhooks", NULL};
    assert_int_equal(cli_status(&s, lo), 0);
    const char *bad_scheme[] = {
        "account", "set-webhook", "acme", "file:///x", "--allow-private-webhooks", NULL};
    assert_int_not_equal(cli_status(&s, bad_scheme), 0);
    /* `webhook test` holds the stored endpoint to the same rules before it
     * sends: a loopback receiver gets nothing without the flag, the ping
     * with it */
    th_server *rx = th_start();
    th_route(rx, "/hook", "application/json", "{}", -1, 0);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", th_port(rx));
    const char *set_rx[] = {"account", "set-webhook", "acme", url, "--allow-private-webhooks",
                            NULL};
    assert_int_equal(cli_status(&s, set_rx), 0);
    const char *test[] = {"webhook", "test", "acme", NULL};
    char *out = NULL;
    assert_int_not_equal(ts_cli(&s, test, NULL, &out), 0);
    assert_non_null(strstr(out, "--allow-private-webhooks"));
    free(out);
    assert_int_equal(th_hits(rx, "/hook"), 0);
    const char *test_ok[] = {"webhook", "test", "acme", "--allow-private-webhooks", NULL};
    assert_int_equal(cli_status(&s, test_ok), 0);
    assert_int_equal(th_hits(rx, "/hook"), 1);
    th_stop(rx);
    ts_cleanup(&s);
}

/* ---- 6. Fair delivery ------------------------------------------------------ */

/* A webhook endpoint that accepts connections and never answers. */
typedef struct hang {
    int lfd, port;
    int fds[256];
    int n;
    pthread_mutex_t mu;
    pthread_t th;
} hang;

static void *hang_main(void *arg)
{
    hang *h = arg;
    for (;;) {
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&h->mu);
        if (h->n < 256)
            h->fds[h->n++] = fd;
        else
            close(fd);
        pthread_mutex_unlock(&h->mu);
    }
}

static void hang_start(hang *h)
{
    memset(h, 0, sizeof(*h));
    h->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(h->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(h->lfd, 256), 0);
    socklen_t al = sizeof(a);
    getsockname(h->lfd, (struct sockaddr *)&a, &al);
    h->port = ntohs(a.sin_port);
    pthread_mutex_init(&h->mu, NULL);
    pthread_create(&h->th, NULL, hang_main, h);
}

/* Connections it holds that the deliverer has not closed. */
static int hang_open(hang *h)
{
    int n = 0;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n; i++)
        n += still_open(h->fds[i]);
    pthread_mutex_unlock(&h->mu);
    return n;
}

static int hang_accepted(hang *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static void hang_stop(hang *h)
{
    shutdown(h->lfd, SHUT_RDWR);
    close(h->lfd);
    pthread_join(h->th, NULL);
    for (int i = 0; i < h->n; i++)
        close(h->fds[i]);
    pthread_mutex_destroy(&h->mu);
}

/* count events of the account at the outbox of a server not yet started,
 * written through the store as the server writes them: payloads sealed
 * under its master key (a PostgreSQL store holds no clear ones). Each is
 * due long ago, in the order written: next_at is its id. */
static void outbox_rows(const ts_server *s, int64_t acct, int from, int count)
{
    char err[PT_ERR_MAX] = "";
    store *st = store_open(s->db, 0, err);
    keys *k = st ? keys_load(s->db, NULL, err) : NULL;
    if (!k)
        fail_msg("the store of %s: %s", s->dir, err);
    keys_attach(k, st);
    assert_int_equal(store_begin(st), 0);
    for (int i = from; i < from + count; i++) {
        char id[64], payload[160];
        snprintf(id, sizeof(id), "evt_fair_%lld_%04d", (long long)acct, i);
        snprintf(payload, sizeof(payload),
                 "{\"id\":%d,\"accountId\":%lld,\"status\":\"completed\",\"notes\":\"n\"}",
                 100000 + i, (long long)acct);
        assert_int_equal(store_outbox_add(st, acct, 0, "task_finished", id, payload), 0);
    }
    assert_int_equal(store_commit(st), 0);
    store_close(st);
    keys_free(k);
    const char *due = "UPDATE outbox SET next_at=id";
    assert_int_equal(ts_sql(s, due, due), 0);
}

/* Account A has 100 events for an endpoint that never answers, all older
 * than account B's one: A's endpoint holds at most its share of the slots
 * (8 of 64), and B's event is delivered while A's attempts are still
 * open. */
static void test_dead_endpoint_does_not_hold_up_others(void **state)
{
    (void)state;
    hang h;
    hang_start(&h);
    th_server *b = th_start();
    th_route(b, "/ok", "application/json", "{}", -1, 0);
    ts_server s;
    ts_init(&s, "lim-fair");
    char url_a[128], url_b[128];
    snprintf(url_a, sizeof(url_a), "http://127.0.0.1:%d/hang", h.port);
    snprintf(url_b, sizeof(url_b), "http://127.0.0.1:%d/ok", th_port(b));
    const char *ca[] = {
        "account", "create", "a", "--webhook-url", url_a, "--allow-private-webhooks", NULL};
    const char *cb[] = {
        "account", "create", "b", "--webhook-url", url_b, "--allow-private-webhooks", NULL};
    assert_int_equal(ts_cli(&s, ca, NULL, NULL), 0);
    assert_int_equal(ts_cli(&s, cb, NULL, NULL), 0);
    outbox_rows(&s, 1, 0, 100);
    outbox_rows(&s, 2, 200, 1);
    const char *args[] = {"--workers", "0", "--allow-private-webhooks", NULL};
    const char *envs[] = {"PORTIER_WEBHOOK_TIMEOUT_MS=120000", NULL};
    assert_int_equal(ts_start(&s, args, envs), 0);
    int64_t until = pt_mono_ms() + 30000;
    while (pt_mono_ms() < until && (th_hits(b, "/ok") < 1 || hang_accepted(&h) < 8))
        pt_sleep_ms(100);
    assert_int_equal(th_hits(b, "/ok"), 1);
    pt_sleep_ms(1500); /* more rounds of the deliverer: A still gets no more */
    assert_int_equal(hang_accepted(&h), 8);
    assert_int_equal(hang_open(&h), 8);
    assert_int_equal(ts_stop(&s, 0), 0);
    ts_cleanup(&s);
    th_stop(b);
    hang_stop(&h);
}

/* A loopback endpoint set with --allow-private-webhooks is still refused
 * at delivery by a server started without it: no request reaches it, and
 * the attempt says why. */
static void test_private_endpoint_refused_at_delivery(void **state)
{
    (void)state;
    th_server *b = th_start();
    th_route(b, "/ok", "application/json", "{}", -1, 0);
    ts_server s;
    ts_init(&s, "lim-private");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", th_port(b));
    const char *ca[] = {"account", "create", "a", "--webhook-url", url, "--allow-private-webhooks",
                        NULL};
    assert_int_equal(ts_cli(&s, ca, NULL, NULL), 0);
    outbox_rows(&s, 1, 0, 1);
    const char *args[] = {"--workers", "0", NULL};
    const char *envs[] = {"PORTIER_WEBHOOK_RETRY_SCHEDULE=0", NULL};
    assert_int_equal(ts_start(&s, args, envs), 0);
    char *why = NULL;
    int64_t until = pt_mono_ms() + 30000;
    while (!why && pt_mono_ms() < until) {
        why = ts_sql_text(&s, "SELECT error FROM deliveries");
        if (!why)
            pt_sleep_ms(100);
    }
    assert_non_null(why);
    assert_non_null(strstr(why, "private"));
    free(why);
    assert_int_equal(th_hits(b, "/ok"), 0);
    assert_int_equal(ts_stop(&s, 0), 0);
    ts_cleanup(&s);
    th_stop(b);
}

PT_TESTS("limits", cmocka_unit_test(test_unauthenticated_body_never_read),
         cmocka_unit_test(test_slow_clients_are_closed),
         cmocka_unit_test(test_connections_per_address_capped),
         cmocka_unit_test(test_malformed_requests_get_their_status),
         cmocka_unit_test(test_bad_heads_answered_at_once),
         cmocka_unit_test(test_keep_alive_and_pipelining),
         cmocka_unit_test(test_queue_limit_holds_under_a_burst),
         cmocka_unit_test(test_webhook_urls_are_checked),
         cmocka_unit_test(test_dead_endpoint_does_not_hold_up_others),
         cmocka_unit_test(test_private_endpoint_refused_at_delivery));
