/*
 * ws.c - the transports to the browser, and the service thread that owns
 * them.
 *
 * One libwebsockets context and one service thread per browser. The thread
 * is born with the browser and dies with it: when it launches Chromium it is
 * also the thread that forks it, so PR_SET_PDEATHSIG (which fires when the
 * forking *thread* exits) ties Chromium's life to this thread's.
 *
 * A launched Chromium is spoken to over its pipes (launch.c): lws adopts
 * both ends as raw files, and messages end with a NUL byte. A remote one
 * (cdp_connect) over a websocket. Either way, other threads never touch lws
 * except through lws_cancel_service(): they queue a message in the core
 * (conn.c) and wake this thread, which writes it when the pipe or socket is
 * writable.
 *
 *   starting --connect ok--> ready --socket closed--> gone
 *       \--spawn/connect failed--> failed         (pending calls fail at once)
 */
#define _GNU_SOURCE
#include "cdp/cdp_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CDP_PRE >= LWS_PRE, "CDP_PRE must leave room for the websocket header");

static void wake(cdp_browser *b)
{
    /* b->mu is held by the caller; lws_ctx is only cleared under it. */
    if (b->lws_ctx)
        lws_cancel_service(b->lws_ctx);
}

static const cdp_transport lws_transport = {wake};

static void set_state(cdp_browser *b, int state, const char *err)
{
    cdp__lock(b);
    if (b->state == 0) {
        b->state = state;
        if (err)
            snprintf(b->start_err, sizeof(b->start_err), "%s", err);
        pthread_cond_broadcast(&b->state_cond);
    }
    cdp__unlock(b);
}

/* The socket closed or never opened: say why, in the words a person needs. */
static void connection_lost(cdp_browser *b, const char *detail)
{
    char why[CDP_ERR_MAX];
    if (b->stop && b->state == 1)
        return; /* we are the ones closing it */
    if (b->pid && cdp__reap(b, 2000))
        cdp__describe_exit(b, why, sizeof(why));
    else if (b->pid)
        snprintf(why, sizeof(why), "browser connection closed (%s)", detail);
    else
        snprintf(why, sizeof(why), "browser connection to %s closed (%s)", b->ws_url, detail);
    if (b->state == 1)
        PT_WARN("cdp", "%s", why);
    set_state(b, -1, why);
    cdp__conn_gone(b, CDP_EGONE, why);
    b->wsi = NULL;
    b->stop = 1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    cdp_browser *b = ctx ? lws_context_user(ctx) : NULL;
    if (!b)
        return 0;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        b->wsi = wsi;
        set_state(b, 1, NULL);
        if (cdp__has_out(b))
            lws_callback_on_writable(wsi);
        break;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", in ? (const char *)in : "connection error");
        connection_lost(b, detail);
        break;
    }

    case LWS_CALLBACK_CLIENT_RECEIVE: {
        int final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
        cdp__rx(b, in, len, final);
        break;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        if (b->stop)
            return -1;
        cdp_outmsg *m = cdp__next_out(b);
        if (!m)
            break;
        int n = lws_write(wsi, m->data + CDP_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (n < 0) {
            connection_lost(b, "write failed");
            return -1;
        }
        if (cdp__has_out(b))
            lws_callback_on_writable(wsi);
        break;
    }

    case LWS_CALLBACK_CLIENT_CLOSED:
        connection_lost(b, "closed by the browser");
        break;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (!b->piped && b->wsi && cdp__has_out(b))
            lws_callback_on_writable(b->wsi);
        break;

    default:
        break;
    }
    return 0;
}

/* ---- The pipe ------------------------------------------------------------ */

/* Reads what the browser wrote, up to a few MiB per call so that writes get
 * their turn. -1 when the pipe closed or failed. */
static int pipe_read(cdp_browser *b, int fd)
{
    char buf[64 * 1024];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            cdp__rx_framed(b, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        connection_lost(b, n == 0 ? "the browser closed its pipe" : "could not read the pipe");
        return -1;
    }
    return 0;
}

/* Writes queued messages, each followed by its NUL, until the pipe is full
 * or nothing is queued. -1 when it failed. (lws ignores a request for
 * another WRITEABLE made inside this callback: the service loop asks again
 * while b->wr_msg is unfinished.) */
static int pipe_write(cdp_browser *b, int fd)
{
    for (;;) {
        if (!b->wr_msg) {
            b->wr_msg = cdp__next_out(b);
            b->wr_off = 0;
            if (!b->wr_msg)
                return 0;
        }
        cdp_outmsg *m = b->wr_msg;
        while (b->wr_off <= m->len) {
            const unsigned char *from =
                b->wr_off < m->len ? m->data + CDP_PRE + b->wr_off : (const unsigned char *)"";
            size_t left = b->wr_off < m->len ? m->len - b->wr_off : 1;
            ssize_t n = write(fd, from, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return 0;
            if (n < 0) {
                connection_lost(b, "could not write to the pipe");
                return -1;
            }
            b->wr_off += (size_t)n;
        }
        free(m);
        b->wr_msg = NULL;
    }
}

static int pipe_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    struct lws_context *ctx = lws_get_context(wsi);
    cdp_browser *b = ctx ? lws_context_user(ctx) : NULL;
    if (!b)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        return pipe_read(b, lws_get_socket_fd(wsi));
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (b->stop)
            return -1;
        return pipe_write(b, lws_get_socket_fd(wsi));
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (wsi == b->wsi)
            b->wsi = NULL;
        connection_lost(b, "the browser closed its pipe");
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (b->piped && b->wsi && cdp__has_out(b))
            lws_callback_on_writable(b->wsi);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"cdp", callback, 0, 1 << 20, 0, NULL, 0},
    {"cdp-pipe", pipe_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* libwebsockets' own lines: debug only, in Portier's format. */
static void lws_log(int level, const char *line)
{
    (void)level;
    pt_log_foreign("lws", line);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static void init_lws_log(void)
{
    lws_set_log_level(pt_log_enabled(PT_LOG_DEBUG) ? LLL_ERR | LLL_WARN : 0, lws_log);
}

/* Splits ws://host:port/path. Returns 0 or -1. */
static int parse_ws_url(const char *url, char *host, size_t hostsz, int *port, char *path,
                        size_t pathsz)
{
    if (strncmp(url, "ws://", 5) != 0)
        return -1;
    const char *h = url + 5;
    const char *slash = strchr(h, '/');
    const char *hend = slash ? slash : h + strlen(h);
    const char *colon = NULL;
    for (const char *p = h; p < hend; p++)
        if (*p == ':')
            colon = p;
    if (h[0] == '[') { /* [::1]:9222 */
        const char *rb = memchr(h, ']', (size_t)(hend - h));
        if (!rb)
            return -1;
        colon = rb[1] == ':' ? rb + 1 : NULL;
    }
    const char *name_end = colon ? colon : hend;
    if (name_end == h || (size_t)(name_end - h) >= hostsz)
        return -1;
    memcpy(host, h, (size_t)(name_end - h));
    host[name_end - h] = '\0';
    *port = colon ? atoi(colon + 1) : 80;
    if (*port <= 0 || *port > 65535)
        return -1;
    snprintf(path, pathsz, "%s", slash ? slash : "/");
    return 0;
}

/* Adopts the pipe's two ends (launch.c made them) into ctx: the read end
 * for replies and events, the write end (b->wsi) for commands. */
static int adopt_pipe(cdp_browser *b, struct lws_context *ctx, char *err)
{
    struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
    if (!vh)
        return pt_errf(err, "no libwebsockets vhost for the browser's pipe");
    lws_sock_file_fd_type rd = {.filefd = b->pipe_rd}, wr = {.filefd = b->pipe_wr};
    b->pipe_rd = b->pipe_wr = -1; /* lws owns them now, or has closed them */
    struct lws *r = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, rd, "cdp-pipe", NULL);
    struct lws *w = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, wr, "cdp-pipe", NULL);
    if (!r || !w)
        return pt_errf(err, "could not watch the browser's pipe");
    cdp__lock(b);
    b->piped = 1;
    b->wsi = w;
    if (cdp__has_out(b))
        lws_callback_on_writable(w);
    cdp__unlock(b);
    return 0;
}

/* Opens the websocket to b->ws_url in ctx (the state turns ready when the
 * handshake is done). */
static int connect_ws(cdp_browser *b, struct lws_context *ctx, char *err)
{
    char host[256], hosthdr[300], path[1024];
    int port;
    if (parse_ws_url(b->ws_url, host, sizeof(host), &port, path, sizeof(path)) < 0)
        return pt_errf(err, "not a ws:// URL: %s", b->ws_url);
    /* Chrome refuses a handshake with an Origin header, and a Host that is
     * not an IP or localhost: send the address as the Host, and no Origin. */
    snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = hosthdr;
    ci.origin = NULL;
    ci.protocol = NULL;
    ci.local_protocol_name = "cdp";
    if (!lws_client_connect_via_info(&ci))
        return pt_errf(err, "could not connect to %s", b->ws_url);
    return 0;
}

static struct lws_context *make_context(cdp_browser *b)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.user = b;
    info.fd_limit_per_thread = 64; /* a socket or two pipes, plus lws's own */
    return lws_create_context(&info);
}

static void *service_main(void *arg)
{
    cdp_browser *b = arg;
    char err[CDP_ERR_MAX];
    struct lws_context *ctx = NULL;

    b->service_tid = pthread_self();
    /* a write to the pipe of a browser that just died fails with EPIPE
     * instead of killing the process (the signal is this thread's) */
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
    if (b->launching && cdp__spawn(b, err) < 0) {
        set_state(b, -1, err);
        goto out;
    }
    ctx = make_context(b);
    if (!ctx) {
        set_state(b, -1, "could not create the websocket context");
        goto out;
    }
    cdp__lock(b);
    b->lws_ctx = ctx;
    cdp__unlock(b);
    if (b->launching ? adopt_pipe(b, ctx, err) : connect_ws(b, ctx, err)) {
        set_state(b, -1, err);
        goto out;
    }
    if (b->launching)
        set_state(b, 1, NULL); /* it answered on the pipe already */
    while (!b->stop) {
        if (lws_service(ctx, 0) < 0)
            break;
        cdp__lock(b);
        int closing = b->stop;
        if (b->piped && b->wsi && b->wr_msg)
            lws_callback_on_writable(b->wsi); /* the rest of a long message */
        cdp__unlock(b);
        if (closing)
            break;
    }

out:
    if (ctx) {
        cdp__lock(b);
        b->lws_ctx = NULL;
        cdp__unlock(b);
        lws_context_destroy(ctx);
    }
    free(b->wr_msg);
    b->wr_msg = NULL;
    if (b->pipe_rd >= 0)
        close(b->pipe_rd);
    if (b->pipe_wr >= 0)
        close(b->pipe_wr);
    b->pipe_rd = b->pipe_wr = -1;
    if (b->pid)
        cdp__terminate(b);
    cdp__conn_gone(b, CDP_EGONE, b->state == 1 ? "browser closed" : b->start_err);
    return NULL;
}

static int start(cdp_browser *b, char *err)
{
    pthread_once(&log_once, init_lws_log);
    pt_cond_init_monotonic(&b->state_cond);
    if (pthread_create(&b->thread, NULL, service_main, b) != 0) {
        pt_errf(err, "could not start the browser's service thread");
        return CDP_EFAIL;
    }
    b->have_thread = 1;
    cdp__lock(b);
    while (b->state == 0)
        pthread_cond_wait(&b->state_cond, &b->mu);
    int state = b->state;
    cdp__unlock(b);
    if (state < 0) {
        pt_errf(err, "%s", b->start_err);
        return CDP_EFAIL;
    }
    return 0;
}

static cdp_browser *browser_new(void)
{
    cdp_browser *b = calloc(1, sizeof(*b));
    if (b) {
        cdp__conn_init(b, &lws_transport);
        b->pipe_rd = b->pipe_wr = -1;
    }
    return b;
}

static void browser_free(cdp_browser *b)
{
    if (b->have_thread) {
        cdp__lock(b);
        b->stop = 1;
        if (b->lws_ctx)
            lws_cancel_service(b->lws_ctx);
        cdp__unlock(b);
        pthread_join(b->thread, NULL);
    }
    cdp__conn_destroy(b);
    pthread_cond_destroy(&b->state_cond);
    free(b->ws_url);
    free(b->tmpdir);
    free(b);
}

int cdp_launch(const cdp_launch_options *opts, cdp_browser **out, char *err)
{
    *out = NULL;
    cdp_browser *b = browser_new();
    if (!b)
        return pt_errf(err, "out of memory"), CDP_EFAIL;
    if (opts)
        b->launch = *opts;
    b->launching = 1;
    int rc = start(b, err);
    if (rc) {
        browser_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int cdp_connect(const char *ws_url, cdp_browser **out, char *err)
{
    *out = NULL;
    cdp_browser *b = browser_new();
    if (!b || !(b->ws_url = strdup(ws_url))) {
        if (b)
            browser_free(b);
        return pt_errf(err, "out of memory"), CDP_EFAIL;
    }
    int rc = start(b, err);
    if (rc) {
        browser_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

int cdp_open(const char *ws_url, cdp_browser **out, char *err)
{
    return ws_url && *ws_url ? cdp_connect(ws_url, out, err) : cdp_launch(NULL, out, err);
}

void cdp_close(cdp_browser *b)
{
    if (b)
        browser_free(b);
}

void cdp_abort(cdp_browser *b, const char *why)
{
    cdp__conn_gone(b, CDP_EGONE, why);
    cdp__lock(b);
    b->stop = 1;
    if (b->lws_ctx)
        lws_cancel_service(b->lws_ctx);
    cdp__unlock(b);
}

int cdp_browser_pid(const cdp_browser *b)
{
    return (int)b->pid;
}

const char *cdp_browser_ws_url(const cdp_browser *b)
{
    return b->ws_url;
}
