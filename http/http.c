/*
 * http.c - the HTTP/1.1 server: libwebsockets on one service thread,
 * handlers on a worker pool. See http.h.
 *
 * lws accepts the connections and moves their bytes (its raw-socket role);
 * the HTTP itself is read and written here. lws 4.1's own HTTP parser could
 * not be held to the limits: a header line without a colon is folded into
 * the next one (the request then hangs until a deadline), headers it does
 * not know are neither counted nor listed, and a pipelined request whose
 * body the client's close cuts short makes its buffered-input path spin.
 * Here every byte of a head is seen as it arrives, so each limit is
 * answered at once, and a connection is kept alive: while a response is
 * pending, reading pauses (what the client pipelines waits in the socket,
 * and a client's half-close is seen only once its response is out).
 *
 * A request's life, and who owns it at each point (s->mu guards the
 * hand-offs):
 *
 *   READING  service thread: head parsed, body arriving (capped)
 *      |  complete
 *   QUEUED -> RUNNING  a worker runs the handler
 *      |  done: put on the ready list, lws_cancel_service()
 *   READY   service thread: written out when the socket is writable, then
 *           freed, and the connection reads its next request
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

#include <ctype.h>
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

#define MAX_HEADERS 16384 /* the header lines' bytes past which a request is 431 */
#define MAX_URL 8192      /* the request target's bytes past which it is 414 */
#define READ_SIZE 65536   /* what lws reads from a socket at a time */
#define WRITE_CHUNK 65536
#define TICK_US 250000      /* how often a connection's deadlines are looked at */
#define BODY_WINDOW_MS 5000 /* the body rate is measured over windows this long */
#define LINGER_MS 2000      /* after a last response: how long the client's close is awaited */

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
    size_t clen; /* the announced Content-Length */
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

/* The connections of one client address (service thread only). */
typedef struct peer_conns {
    struct peer_conns *next;
    char addr[64];
    int n;
} peer_conns;

/* One connection, from accept to close (lws's per-session space; service
 * thread only):
 *
 *   HEAD     its next request's line and headers arriving, each line
 *    |       checked as it comes: header_timeout_ms from the connection's
 *    |       start or the previous response
 *    |  head in, admitted
 *   BODY     its body arriving: min_body_rate per BODY_WINDOW_MS
 *    |  body in (or none)
 *   BUSY     queued, handled, written out, reading paused; then HEAD
 *    |       again (keep-alive), with what the client pipelined
 *    |  a refusal, or no keep-alive: the last response out
 *   CLOSING  half-closed: what comes is dropped until the client closes,
 *            at most LINGER_MS (closing over unread bytes would reset the
 *            connection, and the response with it)
 */
enum conn_phase { C_HEAD, C_BODY, C_BUSY, C_CLOSING };
typedef struct pss {
    http_request *req; /* the request read, handled or written now */
    peer_conns *peer;  /* NULL until counted (conn_open) */
    enum conn_phase phase;
    int64_t since; /* ms: the phase's start, or the body window's */
    size_t window_bytes;
    char *in; /* received and not yet taken (capped) */
    size_t in_len, in_cap;
    size_t scanned;    /* HEAD: the bytes of in checked line by line */
    size_t head_bytes; /* HEAD: the header lines' bytes so far */
    int have_line;     /* HEAD: the request line is in */
    size_t body_left;  /* BODY: bytes still to come */
    int keep_alive;    /* the request allows another on this connection */
    int last;          /* no more requests: after this response, CLOSING */
    int paused;        /* reading paused: a response is pending */
} pss;
/* The n bytes at p as a new string; p need not be NUL-terminated (a head
 * in the input buffer is not). */
static char *dup_n(const char *p, size_t n)
{
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

static void kv_add(kvlist *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
    kv *n = realloc(l->items, (l->n + 1) * sizeof(*n));
    if (!n)
        return;
    l->items = n;
    n[l->n].name = dup_n(name, nlen);
    n[l->n].value = dup_n(value, vlen);
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
    n[r->nfiles] =
        (http_file){strdup(name),   strdup(filename), ctype ? strdup(ctype) : NULL, strdup(path), 0,
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_phase(pss *c, enum conn_phase phase)
{
    c->phase = phase;
    c->since = now_ms();
    c->window_bytes = 0;
}

/* Reading on or off. Off while a response is pending: lws closes a raw
 * socket as soon as it reads the client's end of input, so a client that
 * half-closed after its request would lose the response. */
static void conn_reading(struct lws *wsi, pss *c, int on)
{
    if (c->paused == !on)
        return;
    lws_rx_flow_control(wsi, on);
    c->paused = !on;
}

/* The request cannot be taken and its reply is filled: it is written as
 * soon as the socket takes it, nothing more is read from the connection
 * (what the client still sends is dropped, never held), and it closes
 * after. Always 0: the connection stays until the reply is out. */
static int refused(http_request *r)
{
    pss *c = lws_wsi_user(r->wsi);
    pt_buf_free(&r->body);
    mp_free(r->mp);
    r->mp = NULL;
    r->state = READY;
    c->last = 1;
    c->in_len = 0;
    conn_phase(c, C_BUSY);
    conn_reading(r->wsi, c, 0);
    lws_callback_on_writable(r->wsi);
    return 0;
}

/* The request cannot be taken: the error is answered and the connection
 * closes (refused). 0, for the callback to return. */
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

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"};

static http_request *request_new(http_server *s, struct lws *wsi)
{
    http_request *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->s = s;
    r->wsi = wsi;
    r->status = 200;
    pt_buf_init(&r->body, s->opts.max_body);
    pt_buf_init(&r->out, 0);
    lws_get_peer_simple(wsi, r->peer, sizeof(r->peer));
    return r;
}

/* A head could not be read (no request to answer yet): a bare one carries
 * the error, and the connection closes after it. */
static int refuse_head(http_server *s, struct lws *wsi, pss *c, int status, const char *code,
                       const char *msg)
{
    http_request *r = request_new(s, wsi);
    if (!r)
        return -1;
    r->path = strdup("/");
    c->req = r;
    http_reply_error(r, status, code, "%s", msg);
    return refused(r);
}

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* p[0, n) percent-decoded (and '+' as a space with plus) into a new
 * string; NULL for a bad escape or a NUL. */
static char *decode(const char *p, size_t n, int plus)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto bad;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        if (!ch)
            goto bad;
        *o++ = (char)ch;
    }
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* The decoded path with "//", "/./" and "/../" resolved in place (never
 * above the root). */
static void normalise_path(char *path)
{
    char *out = path;
    for (const char *p = path; *p;) {
        if (*p == '/') {
            while (p[1] == '/')
                p++;
            if (p[1] == '.' && (p[2] == '/' || !p[2])) {
                p += 2;
                continue;
            }
            if (p[1] == '.' && p[2] == '.' && (p[3] == '/' || !p[3])) {
                while (out > path && *--out != '/')
                    ;
                p += 3;
                continue;
            }
        }
        *out++ = *p++;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

/* The request target (origin form: /path?query): path and arguments. 0, or
 * -1 when it is not one. */
static int parse_target(http_request *r, const char *t, size_t n)
{
    if (n >= 7 && !strncasecmp(t, "http://", 7)) { /* absolute form: its path */
        const char *slash = memchr(t + 7, '/', n - 7);
        n -= slash ? (size_t)(slash - t) : n;
        t = slash ? slash : t;
    }
    if (!n || *t != '/')
        return -1;
    const char *q = memchr(t, '?', n);
    size_t plen = q ? (size_t)(q - t) : n;
    const char *hash = memchr(t, '#', n);
    if (hash && (!q || hash < q))
        plen = (size_t)(hash - t);
    if (!(r->path = decode(t, plen, 0)))
        return -1;
    normalise_path(r->path);
    if (!q)
        return 0;
    const char *end = t + n;
    if (hash && hash > q)
        end = hash;
    for (const char *a = q + 1; a < end;) {
        const char *amp = memchr(a, '&', (size_t)(end - a));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(a, '=', (size_t)(stop - a));
        if (stop > a) {
            char *name = decode(a, (size_t)((eq ? eq : stop) - a), 1);
            char *value = eq ? decode(eq + 1, (size_t)(stop - eq - 1), 1) : strdup("");
            if (name && value)
                kv_add(&r->args, name, strlen(name), value, strlen(value));
            free(name);
            free(value);
            if (!name || !value)
                return -1;
        }
        a = stop + 1;
    }
    return 0;
}

static void parse_cookies(http_request *r)
{
    for (size_t i = 0; i < r->headers.n; i++) {
        if (strcasecmp(r->headers.items[i].name, "cookie"))
            continue;
        const char *c = r->headers.items[i].value;
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
}

static int is_token_char(int ch)
{
    return ch > 32 && ch < 127 && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

/* The head in c->in[0, len), every line already checked (take_head):
 * the request, or why not (*status and *why). */
static http_request *read_head(http_server *s, struct lws *wsi, pss *c, size_t len, int *status,
                               const char **why)
{
    http_request *r = request_new(s, wsi);
    if (!r) {
        *status = 500, *why = "out of memory";
        return NULL;
    }
    const char *p = c->in, *end = c->in + len;
    const char *nl = memchr(p, '\n', len);
    size_t ll = (size_t)(nl - p);
    if (ll && p[ll - 1] == '\r')
        ll--;
    /* METHOD SP target SP HTTP/1.x */
    const char *sp1 = memchr(p, ' ', ll);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - p)) : NULL;
    *status = 400;
    *why = "the request line is not 'METHOD /path HTTP/1.1'";
    if (!sp1 || !sp2 || sp2 == sp1 + 1)
        goto fail;
    size_t vl = ll - (size_t)(sp2 + 1 - p);
    if (vl != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) || (sp2[8] != '0' && sp2[8] != '1'))
        goto fail;
    if ((size_t)(sp2 - sp1 - 1) > MAX_URL) {
        *status = 414, *why = "the URL is over the 8192-byte limit";
        goto fail;
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if ((size_t)(sp1 - p) == strlen(methods[i]) && !strncmp(p, methods[i], strlen(methods[i])))
            snprintf(r->method, sizeof(r->method), "%s", methods[i]);
    if (!*r->method) {
        *status = 501, *why = "the method is not one this server implements";
        goto fail;
    }
    if (parse_target(r, sp1 + 1, (size_t)(sp2 - sp1 - 1)) < 0) {
        *why = "the URL is not a path with an optional query (bad %-escape, or a NUL)";
        goto fail;
    }
    int http10 = sp2[8] == '0';
    /* Name: value lines */
    for (p = nl + 1; p < end;) {
        nl = memchr(p, '\n', (size_t)(end - p));
        ll = (size_t)(nl - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (!ll)
            break;
        const char *colon = memchr(p, ':', ll);
        const char *v = colon + 1, *ve = p + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        kv_add(&r->headers, p, (size_t)(colon - p), v, (size_t)(ve - v));
        p = nl + 1;
    }
    const char *conn = kv_get(&r->headers, "connection");
    c->keep_alive = !http10 && !(conn && strcasestr(conn, "close"));
    parse_cookies(r);
    return r;
fail:
    req_free(r);
    return NULL;
}

/* ---- Hand-offs ---------------------------------------------------------- */

static void enqueue(http_server *s, http_request *r)
{
    pss *c = lws_wsi_user(r->wsi);
    conn_phase(c, C_BUSY);
    conn_reading(r->wsi, c, 0);
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

static const char *reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } t[] = {{100, "Continue"},
             {200, "OK"},
             {201, "Created"},
             {202, "Accepted"},
             {204, "No Content"},
             {301, "Moved Permanently"},
             {302, "Found"},
             {303, "See Other"},
             {304, "Not Modified"},
             {307, "Temporary Redirect"},
             {400, "Bad Request"},
             {401, "Unauthorized"},
             {403, "Forbidden"},
             {404, "Not Found"},
             {405, "Method Not Allowed"},
             {408, "Request Timeout"},
             {409, "Conflict"},
             {410, "Gone"},
             {411, "Length Required"},
             {413, "Payload Too Large"},
             {414, "URI Too Long"},
             {415, "Unsupported Media Type"},
             {422, "Unprocessable Entity"},
             {429, "Too Many Requests"},
             {431, "Request Header Fields Too Large"},
             {500, "Internal Server Error"},
             {501, "Not Implemented"},
             {502, "Bad Gateway"},
             {503, "Service Unavailable"},
             {504, "Gateway Timeout"}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].status == status)
            return t[i].text;
    return "Status";
}

/* Appends a header value with any CR or LF dropped (a handler's value can
 * never split the response). */
static void header_line(pt_buf *b, const char *name, const char *value)
{
    pt_buf_appendf(b, "%s: ", name);
    for (const char *v = value; *v; v++)
        if (*v != '\r' && *v != '\n')
            pt_buf_append(b, v, 1);
    pt_buf_append(b, "\r\n", 2);
}

/* Writes what the socket takes of r's response: the head (with the body
 * when it is small, in one write), then the body in chunks. 1 once all is
 * out, 0 to be called again when writable, -1 on error. */
static int write_response(struct lws *wsi, pss *c, http_request *r)
{
    int head = !strcmp(r->method, "HEAD");
    if (!r->headers_sent) {
        const char *conn = kv_get(&r->out_headers, "connection");
        if (conn && strcasestr(conn, "close"))
            c->last = 1;
        if (!c->keep_alive)
            c->last = 1;
        pt_buf h;
        pt_buf_init(&h, 0);
        pt_buf_append(&h, (char[LWS_PRE]){0}, LWS_PRE);
        pt_buf_appendf(&h, "HTTP/1.1 %d %s\r\n", r->status, reason(r->status));
        header_line(&h, "Content-Type", r->type ? r->type : "text/plain; charset=utf-8");
        pt_buf_appendf(&h, "Content-Length: %zu\r\n", r->out.len);
        for (size_t i = 0; i < r->out_headers.n; i++)
            if (strcasecmp(r->out_headers.items[i].name, "connection"))
                header_line(&h, r->out_headers.items[i].name, r->out_headers.items[i].value);
        if (c->last)
            pt_buf_append(&h, "Connection: close\r\n", 19);
        pt_buf_append(&h, "\r\n", 2);
        int small = r->out.len <= WRITE_CHUNK && !head;
        if (small && r->out.len)
            pt_buf_append(&h, r->out.data, r->out.len);
        int w = h.data ? lws_write(wsi, (unsigned char *)h.data + LWS_PRE, h.len - LWS_PRE,
                                   LWS_WRITE_RAW)
                       : -1;
        pt_buf_free(&h);
        if (w < 0)
            return -1;
        r->headers_sent = 1;
        if (small || head || !r->out.len)
            return 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t left = r->out.len - r->sent;
    size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : left;
    unsigned char *chunk = malloc(LWS_PRE + n);
    if (!chunk)
        return -1;
    memcpy(chunk + LWS_PRE, r->out.data + r->sent, n);
    int w = lws_write(wsi, chunk + LWS_PRE, n, LWS_WRITE_RAW);
    free(chunk);
    if (w < 0)
        return -1;
    r->sent += n;
    if (r->sent < r->out.len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return 1;
}

static void detach(http_server *s, pss *c)
{
    http_request *r = c->req;
    if (!r)
        return;
    c->req = NULL;
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

/* The Content-Length, from every one of its headers and every
 * comma-separated value in them: all must be the same number. 0 and *out
 * (0 without the header), or -1. */
static int content_length(const http_request *r, unsigned long long *out)
{
    int seen = 0;
    *out = 0;
    for (size_t i = 0; i < r->headers.n; i++) {
        if (strcasecmp(r->headers.items[i].name, "content-length"))
            continue;
        const char *v = r->headers.items[i].value, *end = v + strlen(v);
        for (const char *p = v; p <= end; p++) {
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

/* What the layer refuses from the head alone, whoever owns the server:
 * -1 answered (and the connection closes after), 0 go on. */
static int check_request(http_server *s, http_request *r)
{
    unsigned long long clen = 0;
    if (content_length(r, &clen) < 0)
        refuse(r, 400, "malformed_request",
               "Content-Length must be one decimal number (given once, or repeated the same)");
    /* chunked request bodies are not read: say so, and close */
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

/* A request's head is in: refuse now what cannot be taken (a malformed
 * head, a body over the cap, one the owner's admit hook turns away, a
 * multipart body without a usable boundary). Otherwise it waits for its
 * body, or goes to a worker. */
static int on_request(http_server *s, pss *c, http_request *r)
{
    c->req = r;
    r->state = READING;
    if (check_request(s, r) < 0)
        return 0;
    if (s->opts.admit && s->opts.admit(r, s->ud) != 0)
        return refused(r);
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
        if (r->clen == 0)
            return refuse(r, 400, "malformed_multipart", "the multipart body is empty");
    }
    if (r->clen > 0) { /* the body follows, whatever the method */
        const char *expect = kv_get(&r->headers, "expect");
        static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
        unsigned char buf[LWS_PRE + sizeof(go_on)];
        memcpy(buf + LWS_PRE, go_on, sizeof(go_on) - 1);
        if (expect && !strcasecmp(expect, "100-continue") &&
            lws_write(r->wsi, buf + LWS_PRE, sizeof(go_on) - 1, LWS_WRITE_RAW) < 0)
            return -1;
        c->body_left = r->clen;
        conn_phase(c, C_BODY);
        return 0;
    }
    enqueue(s, r);
    return 0;
}

/* The next bytes of the body: to the multipart parser, or held (capped).
 * A refusal stops it. */
static void on_body(http_server *s, http_request *r, const char *in, size_t len)
{
    if (r->mp) {
        char err[PT_ERR_MAX] = "";
        int rc = mp_feed(r->mp, in, len, err);
        if (rc == PT_ELIMIT)
            refuse(r, 413, "payload_too_large", "%s", err);
        else if (rc < 0)
            refuse(r, 400, "malformed_multipart", "%s", err);
        return;
    }
    if (pt_buf_append(&r->body, in, len) < 0)
        refuse(r, 413, "payload_too_large", "request body is over the %zu-byte limit",
               s->opts.max_body);
}

static void on_body_done(http_server *s, http_request *r)
{
    char err[PT_ERR_MAX];
    if (r->mp && mp_finish(r->mp, err) < 0)
        refuse(r, 400, "malformed_multipart", "%s", err);
    else
        enqueue(s, r);
}

/* ---- The connection's input (service thread) ---------------------------- */

static void consume(pss *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

static int hold(pss *c, const char *data, size_t len)
{
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap < c->in_len + len)
            cap *= 2;
        char *n = realloc(c->in, cap);
        if (!n)
            return -1;
        c->in = n;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    return 0;
}

/* HEAD: checks each line of the head as it arrives, so that whatever is
 * wrong is answered at once: a NUL, a line without a colon or one that
 * continues the previous (folded), a URL over MAX_URL (414), header lines
 * over MAX_HEADERS in all (431), counting every byte of them. 1 once a
 * request is taken (or refused), 0 for more input, -1 to close. */
static int take_head(http_server *s, struct lws *wsi, pss *c)
{
    while (c->scanned < c->in_len) {
        const char *line = c->in + c->scanned;
        size_t avail = c->in_len - c->scanned;
        const char *nl = memchr(line, '\n', avail);
        size_t n = nl ? (size_t)(nl - line) : avail;
        if (memchr(line, '\0', n))
            return refuse_head(s, wsi, c, 400, "malformed_request",
                               c->have_line ? "a header's value holds a NUL byte"
                                            : "the request line holds a NUL byte");
        if (!nl) { /* a partial line: refused now if it can only be too long */
            if (!c->have_line && n > MAX_URL + 32)
                return refuse_head(s, wsi, c, 414, "uri_too_long",
                                   "the URL is over the 8192-byte limit");
            if (c->have_line && c->head_bytes + n > MAX_HEADERS)
                return refuse_head(s, wsi, c, 431, "headers_too_large",
                                   "the request's headers are over the 16384-byte limit");
            return 0;
        }
        size_t ll = n && line[n - 1] == '\r' ? n - 1 : n;
        if (memchr(line, '\r', ll)) /* a bare CR: a line end to some, not to others */
            return refuse_head(s, wsi, c, 400, "malformed_request",
                               "a line of the head holds a CR that does not end it");
        c->scanned += n + 1;
        if (!c->have_line) {
            if (!ll) { /* empty lines before a request are allowed */
                consume(c, c->scanned);
                c->scanned = 0;
                continue;
            }
            c->have_line = 1;
            continue;
        }
        if (!ll) { /* the end of the head */
            int status;
            const char *why;
            size_t len = c->scanned;
            http_request *r = read_head(s, wsi, c, len, &status, &why);
            consume(c, len);
            c->scanned = 0;
            c->head_bytes = 0;
            c->have_line = 0;
            if (!r)
                return refuse_head(s, wsi, c, status,
                                   status == 414   ? "uri_too_long"
                                   : status == 501 ? "not_implemented"
                                                   : "malformed_request",
                                   why);
            return on_request(s, c, r) < 0 ? -1 : 1;
        }
        c->head_bytes += n + 1;
        if (c->head_bytes > MAX_HEADERS)
            return refuse_head(s, wsi, c, 431, "headers_too_large",
                               "the request's headers are over the 16384-byte limit");
        if (line[0] == ' ' || line[0] == '\t')
            return refuse_head(s, wsi, c, 400, "malformed_request",
                               "a header line starts with a space (folded lines are not taken)");
        const char *colon = memchr(line, ':', ll);
        int named = colon && colon > line;
        for (const char *p = line; named && p < colon; p++)
            named = is_token_char((unsigned char)*p);
        if (!named)
            return refuse_head(s, wsi, c, 400, "malformed_request",
                               "a header line is not 'Name: value' (no colon, or a bad name)");
    }
    return 0;
}

/* BODY: hands what arrived to the request. 1 once the body is in, 0 for
 * more input. */
static int take_body(http_server *s, pss *c)
{
    http_request *r = c->req;
    size_t n = c->in_len < c->body_left ? c->in_len : c->body_left;
    if (n) {
        on_body(s, r, c->in, n);
        if (c->last) /* refused: what it holds was dropped */
            return 1;
        consume(c, n);
        c->body_left -= n;
    }
    if (c->body_left)
        return 0;
    on_body_done(s, r);
    return 1;
}

/* Takes requests from the input while the connection reads (HEAD, BODY);
 * while one is handled, what followed it in the same read waits in the
 * buffer. -1: close. */
static int conn_take(http_server *s, struct lws *wsi, pss *c)
{
    for (;;) {
        int rc = c->phase == C_HEAD   ? take_head(s, wsi, c)
                 : c->phase == C_BODY ? take_body(s, c)
                                      : 0;
        if (rc < 0)
            return -1;
        if (rc == 0 || c->last)
            break;
    }
    return 0;
}

static int on_rx(http_server *s, struct lws *wsi, pss *c, const char *in, size_t len)
{
    if (c->phase == C_BODY)
        c->window_bytes += len;
    if (c->last || c->phase == C_CLOSING)
        return 0; /* refused, or the last response goes out: dropped unread */
    if (hold(c, in, len) < 0)
        return -1;
    return conn_take(s, wsi, c);
}

/* Writes what it can of the response; once it is all out, frees the
 * request, and the connection reads its next one (what was pipelined
 * first), or closes. -1: close now. */
static int on_writable(http_server *s, pss *c, struct lws *wsi)
{
    http_request *r = c->req;
    if (!r) {
        if (c->last && c->phase != C_CLOSING) {
            /* the last response is out (lws wrote what it held before
             * calling back): half-close, and let the client close */
            shutdown(lws_get_socket_fd(wsi), SHUT_WR);
            conn_phase(c, C_CLOSING);
            conn_reading(wsi, c, 1); /* to drop what comes, until the client closes */
        }
        return 0;
    }
    if (r->state != READY)
        return 0;
    int rc = write_response(wsi, c, r);
    if (rc <= 0)
        return rc;
    c->req = NULL;
    pthread_mutex_lock(&s->mu);
    for (http_request **pp = &s->ready; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    req_free(r);
    if (c->last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    conn_phase(c, C_HEAD); /* keep-alive: the next head has its deadline too */
    conn_reading(wsi, c, 1);
    return conn_take(s, wsi, c);
}

/* ---- Connections: the per-address cap and the deadlines (service thread) */

/* A new connection: counted against its address (closed past the cap),
 * its header deadline started. -1: close it. */
static int conn_open(http_server *s, struct lws *wsi, pss *c)
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
    if (!p) {
        if (!(p = calloc(1, sizeof(*p))))
            return -1;
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        p->next = s->peers;
        s->peers = p;
    }
    p->n++;
    memset(c, 0, sizeof(*c));
    c->peer = p;
    conn_phase(c, C_HEAD);
    lws_set_timer_usecs(wsi, TICK_US);
    return 0;
}

/* The connection is gone: its request let go (a worker's frees itself),
 * its input freed, its address's count down. */
static void conn_close(http_server *s, pss *c)
{
    detach(s, c);
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    if (!c->peer)
        return;
    if (--c->peer->n == 0)
        for (peer_conns **pp = &s->peers; *pp; pp = &(*pp)->next)
            if (*pp == c->peer) {
                *pp = c->peer->next;
                free(c->peer);
                break;
            }
    c->peer = NULL;
}

/* A head that did not complete in time. A request line, or part of one,
 * says the rest never came: 400. An idle connection just closes. */
static int head_late(http_server *s, struct lws *wsi, pss *c)
{
    if (!c->in_len)
        return -1;
    char msg[256];
    snprintf(msg, sizeof(msg),
             "the request's headers did not end within %d ms (each line is 'Name: value')",
             s->opts.header_timeout_ms);
    return refuse_head(s, wsi, c, 400, "malformed_request", msg);
}

/* Every TICK_US: is the connection within its deadline? -1: close it. */
static int conn_tick(http_server *s, struct lws *wsi, pss *c)
{
    int64_t now = now_ms();
    int rc = 0;
    if (c->phase == C_HEAD && !c->last && now - c->since > s->opts.header_timeout_ms)
        rc = head_late(s, wsi, c);
    else if (c->phase == C_CLOSING && now - c->since > LINGER_MS)
        rc = -1;
    else if (c->phase == C_BODY && !c->last && now - c->since >= BODY_WINDOW_MS) {
        if (c->window_bytes < s->opts.min_body_rate * BODY_WINDOW_MS / 1000)
            rc = refuse(c->req, 408, "request_timeout",
                        "the body arrived slower than %zu bytes a second (over %d ms)",
                        s->opts.min_body_rate, BODY_WINDOW_MS);
        else {
            c->since = now;
            c->window_bytes = 0;
        }
    }
    if (rc == 0)
        lws_set_timer_usecs(wsi, TICK_US);
    return rc;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    http_server *s = ctx ? lws_context_user(ctx) : NULL;
    pss *c = user;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        return s && c ? conn_open(s, wsi, c) : -1;
    case LWS_CALLBACK_RAW_RX:
        return s && c ? on_rx(s, wsi, c, in, len) : -1;
    case LWS_CALLBACK_RAW_WRITEABLE:
        return s && c ? on_writable(s, c, wsi) : 0;
    case LWS_CALLBACK_TIMER:
        return s && c && c->peer ? conn_tick(s, wsi, c) : 0;
    case LWS_CALLBACK_RAW_CLOSE:
    case LWS_CALLBACK_WSI_DESTROY:
        if (s && c)
            conn_close(s, c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (!s)
            return 0;
        pthread_mutex_lock(&s->mu);
        for (http_request *q = s->ready; q; q = q->next)
            if (q->wsi && !q->headers_sent)
                lws_callback_on_writable(q->wsi);
        pthread_mutex_unlock(&s->mu);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(pss), READ_SIZE, 0, NULL, 0},
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
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.iface = s->opts.host;
    info.protocols = protocols;
    info.user = s;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.pt_serv_buf_size = READ_SIZE + LWS_PRE;
    info.timeout_secs = 60;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        pt_errf(err, "could not create the HTTP context");
        goto fail;
    }
    /* every connection a raw socket of the "http" protocol: the HTTP is
     * this file's (see the top) */
    info.port = s->opts.port > 0 ? s->opts.port : 0;
    info.options |= LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
    info.listen_accept_role = "raw-skt";
    info.listen_accept_protocol = "http";
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
