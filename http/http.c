/*
 * http.c - the HTTP/1.1 server: libwebsockets on one service thread,
 * handlers on a worker pool. See http.h.
 *
 * A request's life, and who owns it at each point (s->mu guards the
 * hand-offs):
 *
 *   READING  service thread: headers parsed, body arriving (capped)
 *      |  complete
 *   QUEUED -> RUNNING  a worker runs the handler
 *      |  done: put on the ready list, lws_cancel_service()
 *   READY   service thread: written out when the socket is writable, then
 *           freed, and the connection waits for its next request
 *
 * If the client goes away while a worker holds the request, the connection
 * only clears req->wsi; the worker sees that and frees the request itself.
 */
#define _GNU_SOURCE
#include "http/http.h"
#include "http/multipart.h"
#include "util/fsutil.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/log.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER_VALUE 32768 /* one header's value, as copied out of lws */
#define HEAD_BUFFER 40960      /* what lws holds of a request's head: past it, it closes */
#define MAX_HEADERS 16384      /* the headers' bytes past which a request is 431 */
#define MAX_URL 8192           /* the path and query's bytes past which it is 414 */
#define WRITE_CHUNK 65536
#define TICK_US 250000      /* how often a connection's deadlines are looked at */
#define BODY_WINDOW_MS 5000 /* the body rate is measured over windows this long */

typedef struct kv {
    char *name;
    char *value;
} kv;

typedef struct kvlist {
    kv *items;
    size_t n;
} kvlist;

enum req_state { READING, QUEUED, RUNNING, READY };

struct http_request {
    struct http_request *next; /* in the work queue or the ready list */
    http_server *s;
    struct lws *wsi; /* NULL once the connection is gone */
    enum req_state state;
    char method[8];
    char *path;
    char peer[64];
    kvlist args, headers, cookies;
    pt_buf body;
    int too_big;       /* or otherwise unreadable: answered, then the connection closes */
    size_t clen;       /* the announced Content-Length */
    size_t head_bytes; /* the known headers' names and values */
    int nul;           /* a header's value holds a NUL byte */
    /* multipart/form-data, parsed as it arrives */
    mp_parser *mp;
    int is_form;
    kvlist form;
    http_file *files;
    size_t nfiles;
    char *spool;      /* this request's folder, made at its first file */
    FILE *cur;        /* the file part being written */
    pt_buf cur_value; /* the value part being read */
    char *cur_name;
    /* response */
    int status;
    char *type;
    kvlist out_headers;
    pt_buf out;
    size_t sent;
    int headers_sent;
};

struct http_server {
    http_options opts;
    http_handler handler; /* NULL: routed by router */
    http_router router;
    void *ud;
    struct lws_context *ctx;
    int port;
    pthread_t service;
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t work;
    http_request *queue, *queue_tail;
    http_request *ready;
    int stop;
    struct peer_conns *peers; /* service thread only */
};

typedef struct pss {
    http_request *req;
} pss;

/* The connections of one client address (service thread only). */
typedef struct peer_conns {
    struct peer_conns *next;
    char addr[64];
    int n;
} peer_conns;

/* One connection's deadlines, from accept to close: lws's opaque user data
 * on the wsi (its per-session space exists only once the headers are in).
 *
 *   HEAD  waiting for a request's line and headers (since the connection
 *    |    opened or the previous response went out): header_timeout_ms
 *    |  headers in
 *   BODY  its body arriving: min_body_rate per BODY_WINDOW_MS
 *    |  body in (or none)
 *   BUSY  queued, handled, written out; then HEAD again (keep-alive)
 */
enum conn_phase { C_HEAD, C_BODY, C_BUSY };
typedef struct conn {
    peer_conns *peer;
    enum conn_phase phase;
    int64_t since; /* ms: the phase's start, or the body window's */
    size_t window_bytes;
} conn;

static void kv_add(kvlist *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
    kv *n = realloc(l->items, (l->n + 1) * sizeof(*n));
    if (!n)
        return;
    l->items = n;
    n[l->n].name = strndup(name, nlen);
    n[l->n].value = strndup(value, vlen);
    if (!n[l->n].name || !n[l->n].value) {
        free(n[l->n].name);
        free(n[l->n].value);
        return;
    }
    l->n++;
}

static const char *kv_get(const kvlist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->items[i].name, name) == 0)
            return l->items[i].value;
    return NULL;
}

static void kv_free(kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void req_free(http_request *r)
{
    if (!r)
        return;
    free(r->path);
    kv_free(&r->args);
    kv_free(&r->headers);
    kv_free(&r->cookies);
    kv_free(&r->out_headers);
    pt_buf_free(&r->body);
    pt_buf_free(&r->out);
    free(r->type);
    mp_free(r->mp);
    kv_free(&r->form);
    if (r->cur)
        fclose(r->cur);
    pt_buf_free(&r->cur_value);
    free(r->cur_name);
    for (size_t i = 0; i < r->nfiles; i++) {
        unlink(r->files[i].path); /* unless the handler moved it */
        free((char *)r->files[i].field);
        free((char *)r->files[i].filename);
        free((char *)r->files[i].content_type);
        free((char *)r->files[i].path);
        pt_stream_free(r->files[i].spool);
    }
    free(r->files);
    if (r->spool)
        pt_rmtree(r->spool);
    free(r->spool);
    free(r);
}

/* ---- multipart/form-data as it arrives (service thread) ---------------- */

static int form_begin(void *ud, const char *name, const char *filename, const char *ctype,
                      char *err)
{
    http_request *r = ud;
    if (!filename) {
        free(r->cur_name);
        r->cur_name = strdup(name);
        pt_buf_init(&r->cur_value, r->s->opts.max_body);
        return r->cur_name ? 0 : pt_errc(err, PT_ENOMEM, "out of memory");
    }
    if (!r->spool) {
        char tmpl[4096];
        snprintf(tmpl, sizeof(tmpl), "%s/upload-XXXXXX", r->s->opts.spool_dir);
        if (!mkdtemp(tmpl))
            return pt_errf(err, "cannot store the upload");
        r->spool = strdup(tmpl);
    }
    http_file *n = realloc(r->files, (r->nfiles + 1) * sizeof(*n));
    if (!n || !r->spool)
        return pt_errc(err, PT_ENOMEM, "out of memory");
    r->files = n;
    char path[4200];
    snprintf(path, sizeof(path), "%s/%zu", r->spool, r->nfiles);
    r->cur = fopen(path, "wbx");
    if (!r->cur)
        return pt_errf(err, "cannot store the upload");
    /* enciphered as it is written: the spool sits in the data folder while
     * the body arrives, and nothing in it may be readable there */
    n[r->nfiles] = (http_file){strdup(name), strdup(filename), ctype ? strdup(ctype) : NULL,
                               strdup(path),  0,
                               pt_stream_new()};
    r->nfiles++;
    if (!n[r->nfiles - 1].spool)
        return pt_errc(err, PT_ENOMEM, "out of memory");
    return 0;
}

static int form_data(void *ud, const char *data, size_t len, char *err)
{
    http_request *r = ud;
    if (r->cur) {
        http_file *f = &r->files[r->nfiles - 1];
        if (len > r->s->opts.max_file - f->size)
            return pt_errc(err, PT_ELIMIT, "the file part '%s' is over the %zu-byte per-file limit",
                           f->field, r->s->opts.max_file);
        f->size += len;
        char chunk[16384];
        for (size_t off = 0; off < len;) {
            size_t k = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
            memcpy(chunk, data + off, k);
            if (pt_stream_xor(f->spool, chunk, k) < 0 || fwrite(chunk, 1, k, r->cur) != k)
                return pt_errf(err, "cannot store the upload");
            off += k;
        }
        return 0;
    }
    return pt_buf_append(&r->cur_value, data, len) < 0
               ? pt_errc(err, PT_ELIMIT, "a form value is over the %zu-byte limit",
                         r->s->opts.max_body)
               : 0;
}

static int form_end(void *ud, char *err)
{
    http_request *r = ud;
    if (r->cur) {
        int bad = fclose(r->cur) != 0;
        r->cur = NULL;
        return bad ? pt_errf(err, "cannot store the upload") : 0;
    }
    kv_add(&r->form, r->cur_name, strlen(r->cur_name), r->cur_value.data ? r->cur_value.data : "",
           r->cur_value.len);
    pt_buf_free(&r->cur_value);
    return 0;
}

static const mp_callbacks form_callbacks = {form_begin, form_data, form_end};

static int write_response(struct lws *wsi, http_request *r);
static void conn_phase(struct lws *wsi, enum conn_phase phase);

/* The request cannot be taken and its reply is filled: it is written now,
 * and the caller returns the -1 to lws, which closes the connection once
 * what it holds of the reply is out. The rest of the body is never read
 * (waiting for it, or for a writable socket, would leave lws reading a
 * body nobody wants: a client that half-closed then keeps it spinning). */
static int refused(http_request *r)
{
    r->too_big = 1;
    pt_buf_free(&r->body);
    http_add_header(r, "Connection", "close");
    conn_phase(r->wsi, C_BUSY);
    while (write_response(r->wsi, r) == 0)
        ; /* a refusal is small: this is one or two writes */
    return -1;
}

/* The request cannot be taken: the error is answered now and the
 * connection closes (refused). -1, for the callback to return. */
static int refuse(http_request *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(http_request *r, int status, const char *code, const char *fmt, ...)
{
    char msg[PT_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_reply_error(r, status, code, "%s", msg);
    return refused(r);
}

/* ---- Reading the request (service thread) ------------------------------ */

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
    {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

static void parse_cookies(http_request *r)
{
    const char *c = kv_get(&r->headers, "cookie");
    while (c && *c) {
        while (*c == ' ' || *c == ';')
            c++;
        const char *eq = strchr(c, '=');
        const char *end = strchr(c, ';');
        if (!end)
            end = c + strlen(c);
        if (eq && eq < end)
            kv_add(&r->cookies, c, (size_t)(eq - c), eq + 1, (size_t)(end - eq - 1));
        c = end;
    }
}

static http_request *read_request(http_server *s, struct lws *wsi, const char *uri)
{
    http_request *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->s = s;
    r->wsi = wsi;
    r->status = 200;
    pt_buf_init(&r->body, s->opts.max_body);
    pt_buf_init(&r->out, 0);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            snprintf(r->method, sizeof(r->method), "%s", methods[i].name);
            break;
        }
    r->path = strdup(uri && *uri ? uri : "/");

    char *buf = malloc(MAX_HEADER_VALUE);
    if (!buf || !r->path) {
        free(buf);
        req_free(r);
        return NULL;
    }
    for (int i = 0;
         lws_hdr_copy_fragment(wsi, buf, MAX_HEADER_VALUE, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
        char *eq = strchr(buf, '=');
        if (eq)
            kv_add(&r->args, buf, (size_t)(eq - buf), eq + 1, strlen(eq + 1));
        else
            kv_add(&r->args, buf, strlen(buf), "", 0);
    }
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        if (t == WSI_TOKEN_HTTP_URI_ARGS)
            continue;
        int skip = 0;
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
            skip |= (int)methods[i].tok == t;
        const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        if (skip || !name || lws_hdr_total_length(wsi, (enum lws_token_indexes)t) <= 0)
            continue;
        int n = lws_hdr_copy(wsi, buf, MAX_HEADER_VALUE, (enum lws_token_indexes)t);
        size_t nlen = strlen(name);
        r->head_bytes += nlen + (size_t)lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (n < 0)
            continue;
        r->nul |= strlen(buf) != (size_t)n;
        if (nlen && name[nlen - 1] == ':')
            nlen--;
        kv_add(&r->headers, name, nlen, buf, strlen(buf));
    }
    for (const char *const *c = s->opts.custom_headers; c && *c; c++) {
        char name[128];
        snprintf(name, sizeof(name), "%s:", *c);
        int n = lws_hdr_custom_length(wsi, name, (int)strlen(name));
        if (n > 0)
            r->head_bytes += strlen(name) + (size_t)n;
        int got = n > 0 && n < MAX_HEADER_VALUE
                      ? lws_hdr_custom_copy(wsi, buf, MAX_HEADER_VALUE, name, (int)strlen(name))
                      : -1;
        if (got < 0)
            continue;
        r->nul |= strlen(buf) != (size_t)got;
        kv_add(&r->headers, *c, strlen(*c), buf, strlen(buf));
    }
    free(buf);
    parse_cookies(r);
    lws_get_peer_simple(wsi, r->peer, sizeof(r->peer));
    return r;
}

/* ---- Hand-offs ---------------------------------------------------------- */

static void enqueue(http_server *s, http_request *r)
{
    conn_phase(r->wsi, C_BUSY);
    pthread_mutex_lock(&s->mu);
    r->state = QUEUED;
    r->next = NULL;
    if (s->queue_tail)
        s->queue_tail->next = r;
    else
        s->queue = r;
    s->queue_tail = r;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->queue && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (!s->queue && s->stop)
            break;
        http_request *r = s->queue;
        s->queue = r->next;
        if (!s->queue)
            s->queue_tail = NULL;
        r->state = RUNNING;
        int gone = r->wsi == NULL;
        pthread_mutex_unlock(&s->mu);
        if (!gone && s->handler)
            s->handler(r, s->ud);
        else if (!gone)
            http_route_request(&s->router, r, s->ud);
        pthread_mutex_lock(&s->mu);
        if (!r->wsi) {
            req_free(r); /* the client left meanwhile */
            continue;
        }
        r->state = READY;
        r->next = s->ready;
        s->ready = r;
        if (s->ctx)
            lws_cancel_service(s->ctx);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- Writing the response (service thread) ------------------------------ */

static int write_response(struct lws *wsi, http_request *r)
{
    if (!r->headers_sent) {
        /* one request per connection: lws 4.1 spins on a pipelined request
         * whose body is cut short by the client's close (its buffered-input
         * path never sees the end), so none is ever read */
        if (!kv_get(&r->out_headers, "connection"))
            http_add_header(r, "Connection", "close");
        size_t hsize = 4096;
        for (size_t i = 0; i < r->out_headers.n; i++)
            hsize +=
                strlen(r->out_headers.items[i].name) + strlen(r->out_headers.items[i].value) + 8;
        unsigned char *hbuf = malloc(LWS_PRE + hsize);
        if (!hbuf)
            return -1;
        unsigned char *start = hbuf + LWS_PRE, *p = start, *end = start + hsize;
        const char *type = r->type ? r->type : "text/plain; charset=utf-8";
        if (lws_add_http_common_headers(wsi, (unsigned int)r->status, type, r->out.len, &p, end))
            goto hfail;
        for (size_t i = 0; i < r->out_headers.n; i++) {
            char name[256];
            snprintf(name, sizeof(name), "%s:", r->out_headers.items[i].name);
            const char *v = r->out_headers.items[i].value;
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                            (const unsigned char *)v, (int)strlen(v), &p, end))
                goto hfail;
        }
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            goto hfail;
        free(hbuf);
        r->headers_sent = 1;
        if (r->out.len && strcmp(r->method, "HEAD") != 0) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        return 1;
    hfail:
        free(hbuf);
        return -1;
    }
    size_t left = r->out.len - r->sent;
    size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
    unsigned char *chunk = malloc(LWS_PRE + n);
    if (!chunk)
        return -1;
    memcpy(chunk + LWS_PRE, r->out.data + r->sent, n);
    int final = n == left;
    int w = lws_write(wsi, chunk + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    free(chunk);
    if (w < 0)
        return -1;
    r->sent += n;
    if (!final) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return 1;
}

static void detach(http_server *s, pss *ps)
{
    http_request *r = ps->req;
    if (!r)
        return;
    ps->req = NULL;
    pthread_mutex_lock(&s->mu);
    if (r->state == QUEUED || r->state == RUNNING) {
        r->wsi = NULL; /* the worker frees it */
        r = NULL;
    } else if (r->state == READY) {
        for (http_request **pp = &s->ready; *pp; pp = &(*pp)->next)
            if (*pp == r) {
                *pp = r->next;
                break;
            }
    }
    pthread_mutex_unlock(&s->mu);
    req_free(r);
}

/* One Content-Length value: digits, with optional spaces around. */
static int length_value(const char *v, size_t len, unsigned long long *out)
{
    size_t i = 0, digits = 0;
    unsigned long long n = 0;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++, digits++) {
        if (n > (~0ULL - 9) / 10)
            return -1;
        n = n * 10 + (unsigned long long)(v[i] - '0');
    }
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    *out = n;
    return digits && i == len ? 0 : -1;
}

/* The Content-Length, from every one of its headers (lws keeps each as a
 * fragment) and every comma-separated value in them: all must be the same
 * number. 0 and *out (0 without the header), or -1. */
static int content_length(struct lws *wsi, unsigned long long *out)
{
    char v[64];
    int seen = 0;
    *out = 0;
    for (int i = 0;; i++) {
        int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, i);
        if (n <= 0)
            break;
        if ((size_t)n >= sizeof(v) ||
            lws_hdr_copy_fragment(wsi, v, (int)sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH, i) < 0)
            return -1;
        for (const char *p = v, *end = v + n; p <= end; p++) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            unsigned long long one;
            if (length_value(p, (size_t)(stop - p), &one) < 0 || (seen && one != *out))
                return -1;
            *out = one;
            seen = 1;
            p = stop;
        }
    }
    return 0;
}

/* What the layer refuses from the headers alone, whoever owns the server:
 * -1 answered (and the connection closes), 0 go on. */
static int check_request(http_server *s, struct lws *wsi, http_request *r)
{
    size_t url = (size_t)lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + strlen(r->path);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0)
            url = (size_t)lws_hdr_total_length(wsi, methods[i].tok) +
                  (size_t)lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    unsigned long long clen = 0;
    if (url > MAX_URL)
        refuse(r, 414, "uri_too_long", "the URL is over the %d-byte limit", MAX_URL);
    else if (r->head_bytes > MAX_HEADERS)
        refuse(r, 431, "headers_too_large", "the request's headers are over the %d-byte limit",
               MAX_HEADERS);
    else if (r->nul)
        refuse(r, 400, "malformed_request", "a header's value holds a NUL byte");
    else if (content_length(wsi, &clen) < 0)
        refuse(r, 400, "malformed_request",
               "Content-Length must be one decimal number (given once, or repeated the same)");
    /* lws 4.1 does not decode chunked request bodies: its chunks would be
     * read as the next request. Say so, and close. */
    else if (kv_get(&r->headers, "transfer-encoding"))
        refuse(r, 411, "length_required",
               "send the body with a Content-Length (Transfer-Encoding is not supported)");
    else if (clen > s->opts.max_body)
        refuse(r, 413, "payload_too_large", "request body of %llu bytes is over the %zu-byte limit",
               clen, s->opts.max_body);
    else {
        r->clen = (size_t)clen;
        return 0;
    }
    return -1;
}

/* A request's headers are in: read them, and refuse now what cannot be
 * taken (a malformed head, a body over the cap, one the owner's admit
 * hook turns away, a multipart body without a usable boundary). Otherwise
 * it waits for its body, or goes to a worker. */
static int on_request(http_server *s, pss *ps, struct lws *wsi, const char *uri)
{
    detach(s, ps);
    http_request *r = read_request(s, wsi, uri);
    if (!r)
        return -1;
    ps->req = r;
    r->state = READING;
    if (check_request(s, wsi, r) < 0)
        return -1;
    if (s->opts.admit && s->opts.admit(r, s->ud) != 0)
        return refused(r);
    size_t clen = r->clen;
    const char *ct = kv_get(&r->headers, "content-type");
    if (s->opts.spool_dir && ct && http_type_is(r, "multipart/form-data")) {
        char err[PT_ERR_MAX];
        mp_limits lim = {.max_parts = s->opts.max_parts,
                         .max_part_bytes = s->opts.max_body,
                         .max_total_bytes = s->opts.max_body};
        r->is_form = 1;
        r->mp = mp_new(ct, &lim, &form_callbacks, r, err);
        if (!r->mp)
            return refuse(r, 400, "malformed_multipart", "%s", err);
        if (clen == 0)
            return refuse(r, 400, "malformed_multipart", "the multipart body is empty");
    }
    if (clen > 0)
        return 0; /* the body follows, whatever the method */
    enqueue(s, r);
    return 0;
}

/* The next bytes of the body: to the multipart parser, or held (capped).
 * -1: refused (close). */
static int on_body(http_server *s, http_request *r, const char *in, size_t len)
{
    if (r->mp) {
        char err[PT_ERR_MAX] = "";
        int rc = mp_feed(r->mp, in, len, err);
        if (rc == PT_ELIMIT)
            return refuse(r, 413, "payload_too_large", "%s", err);
        return rc < 0 ? refuse(r, 400, "malformed_multipart", "%s", err) : 0;
    }
    if (pt_buf_append(&r->body, in, len) < 0)
        return refuse(r, 413, "payload_too_large", "request body is over the %zu-byte limit",
                      s->opts.max_body);
    return 0;
}

static int on_body_done(http_server *s, http_request *r)
{
    char err[PT_ERR_MAX];
    if (r->mp && mp_finish(r->mp, err) < 0)
        return refuse(r, 400, "malformed_multipart", "%s", err);
    enqueue(s, r);
    return 0;
}

/* Writes what it can of the response; once it is all out, frees the
 * request. -1: close the connection. */
static int on_writable(http_server *s, pss *ps, struct lws *wsi)
{
    http_request *r = ps->req;
    int rc = write_response(wsi, r);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    ps->req = NULL;
    pthread_mutex_lock(&s->mu);
    for (http_request **pp = &s->ready; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    req_free(r);
    return -1; /* Connection: close (write_response) */
}

/* ---- Connections: the per-address cap and the deadlines (service thread) */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new connection: counted against its address (closed past the cap),
 * its header deadline started. -1: close it. */
static int conn_open(http_server *s, struct lws *wsi)
{
    char addr[64] = "";
    lws_get_peer_simple(wsi, addr, sizeof(addr));
    peer_conns *p = s->peers;
    while (p && strcmp(p->addr, addr) != 0)
        p = p->next;
    if (p && p->n >= s->opts.max_conns_per_peer) {
        PT_WARN("http", "a client address is at its %d-connection limit: one more closed",
                s->opts.max_conns_per_peer);
        return -1;
    }
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    if (!p) {
        if (!(p = calloc(1, sizeof(*p)))) {
            free(c);
            return -1;
        }
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        p->next = s->peers;
        s->peers = p;
    }
    p->n++;
    c->peer = p;
    c->phase = C_HEAD;
    c->since = now_ms();
    lws_set_opaque_user_data(wsi, c);
    lws_set_timer_usecs(wsi, TICK_US);
    return 0;
}

static void conn_close(http_server *s, struct lws *wsi)
{
    conn *c = lws_get_opaque_user_data(wsi);
    if (!c)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    if (--c->peer->n == 0)
        for (peer_conns **pp = &s->peers; *pp; pp = &(*pp)->next)
            if (*pp == c->peer) {
                *pp = c->peer->next;
                free(c->peer);
                break;
            }
    free(c);
}

static void conn_phase(struct lws *wsi, enum conn_phase phase)
{
    conn *c = lws_get_opaque_user_data(wsi);
    if (c) {
        c->phase = phase;
        c->since = now_ms();
        c->window_bytes = 0;
    }
}

/* A head that did not complete in time. A request line already in says the
 * rest never came (or a line had no colon: lws waits for one): 400, sent
 * as is, since lws has no request to answer yet. An idle connection just
 * closes. Always -1: close it. */
static int head_late(http_server *s, struct lws *wsi)
{
    int started = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        started |= lws_hdr_total_length(wsi, methods[i].tok) > 0;
    if (!started)
        return -1;
    char msg[256];
    int body = snprintf(msg, sizeof(msg),
                        "{\"error\":\"malformed_request\",\"message\":\"the request's headers "
                        "did not end within %d ms (each line is 'Name: value')\"}",
                        s->opts.header_timeout_ms);
    char out[512];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     body, msg);
    int fd = lws_get_socket_fd(wsi);
    if (send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        PT_WARN("http", "could not send the 400 of a late head");
    /* what the client sent meanwhile, read and dropped: closing over unread
     * bytes would reset the connection, and the 400 with it */
    char drop[4096];
    for (int i = 0; i < 16 && recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0; i++)
        ;
    shutdown(fd, SHUT_WR);
    return -1;
}

/* Every TICK_US: is the connection within its deadline? -1: close it. */
static int conn_tick(http_server *s, struct lws *wsi, pss *ps)
{
    conn *c = lws_get_opaque_user_data(wsi);
    if (!c)
        return 0;
    int64_t now = now_ms();
    if (c->phase == C_HEAD && now - c->since > s->opts.header_timeout_ms)
        return head_late(s, wsi);
    if (c->phase == C_BODY && now - c->since >= BODY_WINDOW_MS) {
        http_request *r = ps ? ps->req : NULL;
        if (c->window_bytes < s->opts.min_body_rate * BODY_WINDOW_MS / 1000) {
            if (!r || r->too_big || r->state != READING)
                return -1;
            return refuse(r, 408, "request_timeout",
                          "the body arrived slower than %zu bytes a second (over %d ms)",
                          s->opts.min_body_rate, BODY_WINDOW_MS);
        }
        c->since = now;
        c->window_bytes = 0;
    }
    lws_set_timer_usecs(wsi, TICK_US);
    return 0;
}

static void conn_body(struct lws *wsi, size_t len)
{
    conn *c = lws_get_opaque_user_data(wsi);
    if (c)
        c->window_bytes += len;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    http_server *s = ctx ? lws_context_user(ctx) : NULL;
    pss *ps = user;
    http_request *r = ps ? ps->req : NULL;

    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return s ? conn_open(s, wsi) : 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s)
            conn_close(s, wsi);
        return 0;
    case LWS_CALLBACK_TIMER:
        return s ? conn_tick(s, wsi, ps) : 0;
    case LWS_CALLBACK_HTTP:
        if (!s || !ps)
            return -1;
        conn_phase(wsi, C_BODY);
        return on_request(s, ps, wsi, in);
    case LWS_CALLBACK_HTTP_BODY:
        conn_body(wsi, len);
        return r && !r->too_big && r->state == READING ? on_body(s, r, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        conn_phase(wsi, C_BUSY);
        return r && !r->too_big && r->state == READING ? on_body_done(s, r) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return r && r->state == READY ? on_writable(s, ps, wsi) : 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (!s)
            return 0;
        pthread_mutex_lock(&s->mu);
        for (http_request *q = s->ready; q; q = q->next)
            if (q->wsi && !q->headers_sent)
                lws_callback_on_writable(q->wsi);
        pthread_mutex_unlock(&s->mu);
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (s && ps)
            detach(s, ps);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
{
    http_server *s = arg;
    while (!s->stop)
        if (lws_service(s->ctx, 0) < 0)
            break;
    return NULL;
}

/* libwebsockets' own lines: debug only, in Portier's format. */
static void lws_log(int level, const char *line)
{
    (void)level;
    pt_log_foreign("http", line);
}

/* Either handler or rt answers every request. */
static int start(const http_options *opts, http_handler handler, const http_router *rt, void *ud,
                 http_server **out, char *err)
{
    *out = NULL;
    http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return pt_errf(err, "out of memory");
    if (opts)
        s->opts = *opts;
    if (!s->opts.host)
        s->opts.host = "127.0.0.1";
    if (!s->opts.max_body)
        s->opts.max_body = 25u << 20;
    if (!s->opts.max_file || s->opts.max_file > s->opts.max_body)
        s->opts.max_file = s->opts.max_body;
    if (s->opts.header_timeout_ms <= 0)
        s->opts.header_timeout_ms = 10000;
    if (!s->opts.min_body_rate)
        s->opts.min_body_rate = 1024;
    if (s->opts.max_conns_per_peer <= 0)
        s->opts.max_conns_per_peer = 64;
    s->nworkers = s->opts.workers > 0 ? s->opts.workers : 4;
    s->handler = handler;
    if (rt)
        s->router = *rt;
    s->ud = ud;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    lws_set_log_level(pt_log_enabled(PT_LOG_DEBUG) ? LLL_ERR | LLL_WARN : 0, lws_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = s->opts.port > 0 ? s->opts.port : CONTEXT_PORT_NO_LISTEN_SERVER;
    info.iface = s->opts.host;
    info.protocols = protocols;
    info.user = s;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.max_http_header_data = HEAD_BUFFER;
    /* lws's own timeouts are the backstop; the deadlines are conn_tick's */
    info.keepalive_timeout = s->opts.header_timeout_ms / 1000 + 30;
    info.timeout_secs = 60;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        pt_errf(err, "could not create the HTTP context");
        goto fail;
    }
    info.port = s->opts.port > 0 ? s->opts.port : 0;
    struct lws_vhost *vh = lws_create_vhost(s->ctx, &info);
    if (!vh) {
        pt_errf(err, "could not listen on %s:%d (in use, or not an address of this machine?)",
                s->opts.host, s->opts.port);
        goto fail;
    }
    s->port = lws_get_vhost_listen_port(vh);
    s->workers = calloc((size_t)s->nworkers, sizeof(pthread_t));
    if (!s->workers) {
        pt_errf(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->nworkers; i++)
        pthread_create(&s->workers[i], NULL, worker_main, s);
    pthread_create(&s->service, NULL, service_main, s);
    *out = s;
    return 0;
fail:
    if (s->ctx)
        lws_context_destroy(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    free(s);
    return -1;
}

int http_start(const http_options *opts, http_handler handler, void *ud, http_server **out,
               char *err)
{
    return start(opts, handler, NULL, ud, out, err);
}

int http_start_router(const http_options *opts, const http_router *rt, void *ud, http_server **out,
                      char *err)
{
    return start(opts, NULL, rt, ud, out, err);
}

int http_port(const http_server *s)
{
    return s->port;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    lws_cancel_service(s->ctx);
    pthread_join(s->service, NULL);
    struct lws_context *ctx = s->ctx;
    lws_context_destroy(ctx); /* closes connections: their requests are freed */
    pthread_mutex_lock(&s->mu);
    s->ctx = NULL;
    while (s->queue) {
        http_request *r = s->queue;
        s->queue = r->next;
        req_free(r);
    }
    pthread_mutex_unlock(&s->mu);
    free(s->workers);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    free(s);
}

/* ---- Accessors ---------------------------------------------------------- */

const char *http_method(const http_request *r)
{
    return r->method;
}

const char *http_path(const http_request *r)
{
    return r->path;
}

const char *http_query(const http_request *r, const char *name)
{
    for (size_t i = 0; i < r->args.n; i++)
        if (strcmp(r->args.items[i].name, name) == 0)
            return r->args.items[i].value;
    return NULL;
}

const char *http_query_name(const http_request *r, size_t i)
{
    return i < r->args.n ? r->args.items[i].name : NULL;
}

const char *http_header(const http_request *r, const char *name)
{
    return kv_get(&r->headers, name);
}

int http_type_is(const http_request *r, const char *type)
{
    const char *ct = kv_get(&r->headers, "content-type");
    size_t n = strlen(type);
    if (!ct)
        return 0;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, type, n) != 0)
        return 0;
    ct += n;
    ct += strspn(ct, " \t");
    return *ct == '\0' || *ct == ';';
}

size_t http_content_length(const http_request *r)
{
    return r->clen;
}

const char *http_cookie(const http_request *r, const char *name)
{
    for (size_t i = 0; i < r->cookies.n; i++)
        if (strcmp(r->cookies.items[i].name, name) == 0)
            return r->cookies.items[i].value;
    return NULL;
}

const char *http_body(const http_request *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

const char *http_peer(const http_request *r)
{
    return r->peer;
}

void http_set_status(http_request *r, int status)
{
    r->status = status;
}

void http_add_header(http_request *r, const char *name, const char *value)
{
    kv_add(&r->out_headers, name, strlen(name), value, strlen(value));
}

void http_set_type(http_request *r, const char *content_type)
{
    free(r->type);
    r->type = strdup(content_type);
}

void http_write(http_request *r, const void *data, size_t len)
{
    pt_buf_append(&r->out, data, len);
}

void http_printf(http_request *r, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        pt_buf_append(&r->out, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pt_buf_append(&r->out, big, (size_t)n);
    free(big);
}

void http_reply_json(http_request *r, int status, const char *json)
{
    r->status = status;
    http_set_type(r, "application/json");
    pt_buf_reset(&r->out);
    pt_buf_append(&r->out, json, strlen(json));
}

/* Appends s as a JSON string literal. */
static void json_string(pt_buf *b, const char *s)
{
    pt_buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            pt_buf_append(b, e, 2);
        } else if (c < 0x20) {
            pt_buf_appendf(b, "\\u%04x", c);
        } else {
            pt_buf_append(b, s, 1);
        }
    }
    pt_buf_append(b, "\"", 1);
}

void http_reply_error(http_request *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->status = status;
    http_set_type(r, "application/json");
    pt_buf_reset(&r->out);
    pt_buf_append(&r->out, "{\"error\":", 9);
    json_string(&r->out, code);
    pt_buf_append(&r->out, ",\"message\":", 11);
    json_string(&r->out, msg);
    pt_buf_append(&r->out, "}", 1);
}

int http_is_form(const http_request *r)
{
    return r->is_form;
}

const char *http_form_value(const http_request *r, const char *name)
{
    for (size_t i = 0; i < r->form.n; i++)
        if (strcmp(r->form.items[i].name, name) == 0)
            return r->form.items[i].value;
    return NULL;
}

size_t http_form_nfiles(const http_request *r)
{
    return r->nfiles;
}

const http_file *http_form_file(const http_request *r, size_t i)
{
    return i < r->nfiles ? &r->files[i] : NULL;
}

int http_file_read(const http_file *f, char **data, size_t *len)
{
    *data = NULL;
    if (pt_read_file(f->path, f->size + 1, data, len) < 0 || *len != f->size ||
        pt_stream_rewind(f->spool) < 0 || pt_stream_xor(f->spool, *data, *len) < 0) {
        free(*data);
        *data = NULL;
        return -1;
    }
    return 0;
}
