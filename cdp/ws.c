/*
 * ws.c - the websocket to the browser, and the service thread that owns it.
 *
 * One libwebsockets context and one service thread per browser. The thread
 * is born with the browser and dies with it: when it launches Chromium it is
 * also the thread that forks it, so PR_SET_PDEATHSIG (which fires when the
 * forking *thread* exits) ties Chromium's life to this thread's.
 *
 * Other threads never touch lws except through lws_cancel_service(): they
 * queue a message in the core (conn.c) and wake this thread, which writes it
 * when the socket is writable.
 *
 *   starting --connect ok--> ready --socket closed--> gone
 *       \--spawn/connect failed--> failed         (pending calls fail at once)
 */
#define _GNU_SOURCE
#include "cdp/cdp_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <libwebsockets.h>
#include <signal.h>
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
        if (b->wsi && cdp__has_out(b))
            lws_callback_on_writable(b->wsi);
        break;

    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"cdp", callback, 0, 1 << 20, 0, NULL, 0},
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

static void *service_main(void *arg)
{
    cdp_browser *b = arg;
    char err[CDP_ERR_MAX];
    char host[256], hosthdr[300], path[1024];
    int port;
    struct lws_context *ctx = NULL;

    b->service_tid = pthread_self();
    if (b->launching && cdp__spawn(b, err) < 0) {
        set_state(b, -1, err);
        goto out;
    }
    if (parse_ws_url(b->ws_url, host, sizeof(host), &port, path, sizeof(path)) < 0) {
        pt_errf(err, "not a ws:// URL: %s", b->ws_url);
        set_state(b, -1, err);
        goto out;
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.user = b;
    info.fd_limit_per_thread = 64; /* one socket, plus lws's own pipe */
    ctx = lws_create_context(&info);
    if (!ctx) {
        set_state(b, -1, "could not create the websocket context");
        goto out;
    }
    cdp__lock(b);
    b->lws_ctx = ctx;
    cdp__unlock(b);

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
    if (!lws_client_connect_via_info(&ci)) {
        pt_errf(err, "could not connect to %s", b->ws_url);
        set_state(b, -1, err);
        goto out;
    }
    while (!b->stop) {
        if (lws_service(ctx, 0) < 0)
            break;
        cdp__lock(b);
        int closing = b->stop;
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
    if (b)
        cdp__conn_init(b, &lws_transport);
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
