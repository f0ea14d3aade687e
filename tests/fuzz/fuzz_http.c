/*
 * fuzz_http.c - fuzz target: Portier's own request handling on top of
 * libwebsockets, whole. The input is the raw bytes of one connection (a
 * request line, headers, maybe a body, maybe more requests), sent over
 * loopback to a task service running in this process (API only, a
 * throw-away SQLite file): the layer's checks (Content-Length, NULs, sizes,
 * media types), admission by key before the body, routing, query strings,
 * multipart, the handlers. "@KEY@" in the input becomes a valid API key,
 * so the fuzzer reaches past authentication too.
 *
 * Each input ends with the client's half-close; the reply is read to the
 * server's close (or a short timeout), and the service must still answer
 * /healthz afterwards: a crash, a hang or a wedged server is a finding.
 */
#define _GNU_SOURCE
#include "server/keys.h"
#include "server/service.h"
#include "server/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static service *svc;
static char *dir;
static char key[64];
static int port;

static void teardown(void)
{
    service_stop(svc);
    if (dir)
        pt_rmtree(dir);
    free(dir);
}

/* A fresh database with one account (its key kept), then the service. */
static void setup(void)
{
    char err[PT_ERR_MAX], db[4200];
    pt_log_set_level(PT_LOG_ERROR);
    dir = pt_mkdtemp("fuzz-http");
    if (!dir)
        abort();
    snprintf(db, sizeof(db), "%s/portier.db", dir);
    store *st = store_open(db, 1, err);
    keys *k = st ? keys_load(db, NULL, err) : NULL;
    int64_t id;
    char *whsec = NULL;
    if (!k || keys_create_account(k, st, "fuzz", NULL, NULL, &id, key, &whsec, err) < 0) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    keys_wipe(whsec);
    keys_free(k);
    store_close(st);
    static char db_path[4200];
    snprintf(db_path, sizeof(db_path), "%s", db);
    service_options o = {.db_path = db_path,
                         .browser_ws = "ws://127.0.0.1:9/devtools/browser/none",
                         .workers = -1,
                         .max_body = 1u << 20,
                         .header_timeout_ms = 2000,
                         .max_conns_per_peer = 1000};
    if (service_start(&o, &svc, err) < 0) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    port = service_port(svc);
    atexit(teardown);
}

/* The input with every "@KEY@" replaced by the key (new buffer). */
static char *with_key(const uint8_t *data, size_t size, size_t *out_len)
{
    size_t klen = strlen(key), cap = size + 1, n = 0;
    for (size_t i = 0; i + 5 <= size; i++)
        cap += memcmp(data + i, "@KEY@", 5) == 0 ? klen : 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (size_t i = 0; i < size;) {
        if (i + 5 <= size && memcmp(data + i, "@KEY@", 5) == 0) {
            memcpy(out + n, key, klen);
            n += klen;
            i += 5;
        } else {
            out[n++] = (char)data[i++];
        }
    }
    *out_len = n;
    return out;
}

/* One connection: send it all, half-close, read to the server's close.
 * The number of reply bytes, or -1 if the server could not be reached. */
static long exchange(const char *req, size_t len, int wait_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    long got = 0;
    char buf[16384];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        got += n;
    }
    close(fd);
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!svc)
        setup();
    size_t len;
    char *req = with_key(data, size, &len);
    exchange(req, len, 300); /* a cut-short request may get no answer: no waiting for it */
    free(req);
    static const char healthz[] = "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    long got = 0;
    for (int i = 0; i < 3 && got <= 0; i++)
        got = exchange(healthz, sizeof(healthz) - 1, 10000);
    if (got <= 0) {
        fprintf(stderr, "fuzz_http: the service stopped answering (%s)\n",
                got < 0 ? "no connection" : "no reply");
        abort();
    }
    return 0;
}
