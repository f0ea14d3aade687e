/*
 * conn.c - the CDP message core: command ids and replies, sessions, events.
 *
 * Everything here is transport-free: ws.c feeds it bytes and drains its
 * outgoing queue; the unit tests do the same without a socket. One recursive
 * mutex per browser guards all of it. Worker threads block in cdp_call() on a
 * condition variable of their own; the service thread signals it when the
 * reply with that id arrives, or when the browser goes away.
 *
 * Message routing, as the protocol's flattened mode has it:
 *   {"id":N,...}                      -> the pending call N, whatever session
 *   {"method":M,"sessionId":S,...}    -> listeners and waiters of session S
 *   {"method":M,...}                  -> the browser session
 * Target.attachedToTarget creates session S before anyone hears of it, and
 * Target.detachedFromTarget ends it (its pending calls fail at once).
 */
#include "cdp/cdp_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void session_detach_locked(cdp_session *s, const char *why);

int cdp__cond_wait_until(cdp_browser *b, pthread_cond_t *c, const struct timespec *deadline)
{
    return pthread_cond_timedwait(c, &b->mu, deadline);
}

int cdp__conn_init(cdp_browser *b, const cdp_transport *t)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&b->mu, &a);
    pthread_mutexattr_destroy(&a);
    b->transport = t;
    b->root.b = b;
    b->root.refs = 1;
    b->root.target_type = NULL;
    b->max_message = CDP_MAX_MESSAGE;
    pt_buf_init(&b->rx, 0);
    pt_cond_init_monotonic(&b->changed);
    return 0;
}

static void free_listeners(cdp_session *s)
{
    while (s->listeners) {
        cdp_listener *l = s->listeners;
        s->listeners = l->next;
        free(l->method);
        free(l);
    }
}

static void session_free(cdp_session *s)
{
    free_listeners(s);
    free(s->id);
    free(s->target_id);
    free(s->target_type);
    free(s);
}

void cdp__conn_destroy(cdp_browser *b)
{
    cdp__lock(b);
    while (b->sessions) {
        cdp_session *s = b->sessions;
        session_detach_locked(s, "browser closed");
    }
    while (b->out_head) {
        cdp_outmsg *m = b->out_head;
        b->out_head = m->next;
        free(m);
    }
    free_listeners(&b->root);
    pt_buf_free(&b->rx);
    cdp__unlock(b);
    pthread_cond_destroy(&b->changed);
    pthread_mutex_destroy(&b->mu);
}

void cdp__lock(cdp_browser *b)
{
    pthread_mutex_lock(&b->mu);
}

void cdp__unlock(cdp_browser *b)
{
    pthread_mutex_unlock(&b->mu);
}

cdp_session *cdp__session_find(cdp_browser *b, const char *session_id)
{
    if (!session_id)
        return &b->root;
    for (cdp_session *s = b->sessions; s; s = s->next)
        if (strcmp(s->id, session_id) == 0)
            return s;
    return NULL;
}

/* ---- Outgoing ----------------------------------------------------------- */

/* Serialises {id, method, params, sessionId} into a queued message. Takes
 * params. Returns NULL on OOM. */
static cdp_outmsg *encode(int id, const char *method, cJSON *params, const char *session_id)
{
    cJSON *msg = cJSON_CreateObject();
    cdp_outmsg *m = NULL;
    if (!msg) {
        cJSON_Delete(params);
        return NULL;
    }
    cJSON_AddNumberToObject(msg, "id", id);
    cJSON_AddStringToObject(msg, "method", method);
    cJSON_AddItemToObject(msg, "params", params ? params : cJSON_CreateObject());
    if (session_id)
        cJSON_AddStringToObject(msg, "sessionId", session_id);
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    m = malloc(sizeof(*m) + CDP_PRE + len);
    if (m) {
        m->next = NULL;
        m->len = len;
        memcpy(m->data + CDP_PRE, text, len);
    }
    free(text);
    return m;
}

static void enqueue_locked(cdp_browser *b, cdp_outmsg *m)
{
    if (b->out_tail)
        b->out_tail->next = m;
    else
        b->out_head = m;
    b->out_tail = m;
    if (b->transport && b->transport->wake)
        b->transport->wake(b);
}

cdp_outmsg *cdp__next_out(cdp_browser *b)
{
    cdp__lock(b);
    cdp_outmsg *m = b->out_head;
    if (m) {
        b->out_head = m->next;
        if (!b->out_head)
            b->out_tail = NULL;
        m->next = NULL;
    }
    cdp__unlock(b);
    return m;
}

int cdp__has_out(cdp_browser *b)
{
    cdp__lock(b);
    int r = b->out_head != NULL;
    cdp__unlock(b);
    return r;
}

/* Why calls on s cannot be made now, or 0 if they can. b->mu held. */
static int unusable_locked(cdp_session *s, char *err)
{
    cdp_browser *b = s->b;
    if (b->gone) {
        pt_errf(err, "%s", b->gone_msg);
        return b->gone_code;
    }
    if (s->detached) {
        pt_errf(err, "target %s: %s", s->target_id ? s->target_id : "?", s->why);
        return CDP_EDETACHED;
    }
    return 0;
}

int cdp_send(cdp_session *s, const char *method, cJSON *params)
{
    cdp_browser *b = s->b;
    cdp__lock(b);
    int rc = unusable_locked(s, NULL);
    if (rc) {
        cdp__unlock(b);
        cJSON_Delete(params);
        return rc;
    }
    int id = ++b->next_id;
    cdp_outmsg *m = encode(id, method, params, s->id);
    if (m)
        enqueue_locked(b, m);
    cdp__unlock(b);
    return m ? 0 : CDP_EFAIL;
}

static void pending_remove_locked(cdp_browser *b, cdp_pending *p)
{
    for (cdp_pending **pp = &b->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void pending_finish_locked(cdp_pending *p, int rc, cJSON *reply, const char *fmt, ...)
{
    if (p->done) {
        cJSON_Delete(reply);
        return;
    }
    p->done = 1;
    p->rc = rc;
    p->reply = reply;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof(p->err), fmt, ap);
        va_end(ap);
    }
    pthread_cond_signal(&p->cond);
    if (p->notify)
        pthread_cond_broadcast(&p->s->b->changed);
}

/* Queues the call p (b->mu held, p zeroed but for its cond). Takes params.
 * 0, or why calls on s cannot be made now. */
static int call_send_locked(cdp_session *s, cdp_pending *p, const char *method, cJSON *params,
                            char *err)
{
    cdp_browser *b = s->b;
    int rc = unusable_locked(s, err);
    if (rc) {
        cJSON_Delete(params);
        return rc;
    }
    p->s = s;
    p->id = ++b->next_id;
    snprintf(p->method, sizeof(p->method), "%s", method);
    cdp_outmsg *m = encode(p->id, method, params, s->id);
    if (!m)
        return pt_errf(err, "%s: out of memory", method), CDP_EFAIL;
    p->next = b->pending;
    b->pending = p;
    enqueue_locked(b, m);
    return 0;
}

/* The code for an error reply. Chromium gives these the same JSON-RPC code
 * (-32000) and tells them apart only in words, so this is the one place
 * that reads them: callers decide by the code. */
static int protocol_error_code(const cJSON *error)
{
    static const char *const context_gone[] = {"Cannot find context", "context was destroyed",
                                               "Inspected target navigated"};
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "message"));
    for (size_t i = 0; msg && i < sizeof(context_gone) / sizeof(context_gone[0]); i++)
        if (strstr(msg, context_gone[i]))
            return CDP_ECONTEXT;
    if (msg && strstr(msg, "Could not find object with given id"))
        return CDP_ENOOBJECT;
    return CDP_EPROTOCOL;
}

/* The outcome of the call p, removed from the pending list, as cdp_call
 * returns it. Frees p->reply. */
static int call_result(cdp_pending *p, cJSON **result, int timeout_ms, char *err)
{
    const char *method = p->method;
    if (!p->done) {
        pt_errf(err, "%s: no reply within %d ms", method, timeout_ms);
        return CDP_ETIMEOUT;
    }
    if (p->rc) {
        pt_errf(err, "%s: %s", method, p->err);
        cJSON_Delete(p->reply);
        return p->rc;
    }
    cJSON *error = cJSON_GetObjectItemCaseSensitive(p->reply, "error");
    if (error) {
        int rc = protocol_error_code(error);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(error, "message");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(error, "data");
        pt_errf(err, "%s: %s%s%s (%d)", method, cJSON_IsString(msg) ? msg->valuestring : "error",
                cJSON_IsString(data) ? ": " : "", cJSON_IsString(data) ? data->valuestring : "",
                cJSON_IsNumber(code) ? code->valueint : 0);
        cJSON_Delete(p->reply);
        return rc;
    }
    if (result) {
        *result = cJSON_DetachItemFromObjectCaseSensitive(p->reply, "result");
        if (!*result)
            *result = cJSON_CreateObject();
    }
    cJSON_Delete(p->reply);
    return 0;
}

static int on_service_thread(cdp_browser *b, const char *method, char *err)
{
    if (b->have_thread && pthread_equal(pthread_self(), b->service_tid))
        return pt_errf(err, "%s: cdp_call from the service thread would deadlock", method), 1;
    return 0;
}

int cdp_call(cdp_session *s, const char *method, cJSON *params, cJSON **result, int timeout_ms,
             char *err)
{
    cdp_browser *b = s->b;
    if (result)
        *result = NULL;
    if (on_service_thread(b, method, err)) {
        cJSON_Delete(params);
        return CDP_EFAIL;
    }
    cdp_pending p;
    memset(&p, 0, sizeof(p));
    pt_cond_init_monotonic(&p.cond);

    cdp__lock(b);
    int rc = call_send_locked(s, &p, method, params, err);
    if (rc) {
        cdp__unlock(b);
        pthread_cond_destroy(&p.cond);
        return rc;
    }
    struct timespec deadline = pt_deadline(timeout_ms > 0 ? timeout_ms : 0);
    while (!p.done)
        if (cdp__cond_wait_until(b, &p.cond, &deadline) == ETIMEDOUT)
            break;
    pending_remove_locked(b, &p);
    cdp__unlock(b);
    pthread_cond_destroy(&p.cond);
    return call_result(&p, result, timeout_ms, err);
}

int cdp__call_begin(cdp_session *s, const char *method, cJSON *params, cdp_pending **out, char *err)
{
    *out = NULL;
    cdp_pending *p = calloc(1, sizeof(*p));
    if (!p) {
        cJSON_Delete(params);
        return pt_errf(err, "%s: out of memory", method), CDP_EFAIL;
    }
    pt_cond_init_monotonic(&p->cond);
    p->notify = 1;
    cdp__lock(s->b);
    int rc = call_send_locked(s, p, method, params, err);
    cdp__unlock(s->b);
    if (rc) {
        pthread_cond_destroy(&p->cond);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int cdp__call_finish(cdp_pending *p, cJSON **result, int timeout_ms, char *err)
{
    if (result)
        *result = NULL;
    if (!p)
        return pt_errf(err, "no call"), CDP_EFAIL;
    cdp_browser *b = p->s->b;
    if (on_service_thread(b, p->method, err))
        return CDP_EFAIL; /* p stays pending: a bug, not a hang */
    cdp__lock(b);
    struct timespec deadline = pt_deadline(timeout_ms > 0 ? timeout_ms : 0);
    while (!p->done)
        if (cdp__cond_wait_until(b, &p->cond, &deadline) == ETIMEDOUT)
            break;
    pending_remove_locked(b, p);
    cdp__unlock(b);
    int rc = call_result(p, result, timeout_ms, err);
    pthread_cond_destroy(&p->cond);
    free(p);
    return rc;
}

/* ---- Incoming ----------------------------------------------------------- */

/* The id of a reply from its first bytes ({"id":123,...}), or -1. Chromium
 * always writes the id first; this lets an oversized reply fail its caller
 * at once instead of leaving it to time out. */
static int peek_id(const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end && (*p == ' ' || *p == '\n'))
        p++;
    if (end - p < 6 || memcmp(p, "{\"id\":", 6) != 0)
        return -1;
    p += 6;
    long id = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 9) {
        id = id * 10 + (*p++ - '0');
        digits++;
    }
    return digits ? (int)id : -1;
}

static cdp_pending *pending_find_locked(cdp_browser *b, int id)
{
    for (cdp_pending *p = b->pending; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

void cdp__rx_framed(cdp_browser *b, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        const char *nul = memchr(p, '\0', len);
        size_t n = nul ? (size_t)(nul - p) : len;
        cdp__rx(b, p, n, nul != NULL);
        if (!nul)
            break;
        p += n + 1;
        len -= n + 1;
    }
}

void cdp__rx(cdp_browser *b, const void *data, size_t len, int final)
{
    if (!b->rx_skipping && len > b->max_message - b->rx.len) {
        int id = peek_id(b->rx.len ? b->rx.data : data, b->rx.len ? b->rx.len : len);
        b->rx_skipping = 1;
        b->rx_skip_id = id;
        pt_buf_free(&b->rx);
        pt_buf_init(&b->rx, 0);
    }
    if (b->rx_skipping) {
        if (final) {
            b->rx_skipping = 0;
            PT_WARN("cdp", "dropped a message over the %zu-byte limit (id %d)", b->max_message,
                    b->rx_skip_id);
            cdp__lock(b);
            cdp_pending *p = pending_find_locked(b, b->rx_skip_id);
            if (p)
                pending_finish_locked(p, CDP_ETOOBIG, NULL, "reply exceeds the %zu-byte limit",
                                      b->max_message);
            cdp__unlock(b);
        }
        return;
    }
    if (pt_buf_append(&b->rx, data, len) < 0) {
        b->rx_skipping = 1;
        b->rx_skip_id = peek_id(b->rx.data ? b->rx.data : data, b->rx.len ? b->rx.len : len);
        pt_buf_free(&b->rx);
        if (final)
            cdp__rx(b, "", 0, 1);
        return;
    }
    if (!final)
        return;
    cdp__dispatch(b, b->rx.data, b->rx.len);
    /* Give back the memory of a big message (a screenshot) at once. */
    if (b->rx.size > (1u << 20))
        pt_buf_free(&b->rx);
    else
        pt_buf_reset(&b->rx);
}

static int method_matches(const char *want, const char *method)
{
    return !want || strcmp(want, method) == 0;
}

static void deliver_event_locked(cdp_session *s, const char *method, const cJSON *params)
{
    /* Listeners may add or remove listeners: walk by id, re-finding each. */
    int last = 0;
    for (;;) {
        cdp_listener *next = NULL;
        for (cdp_listener *l = s->listeners; l; l = l->next)
            if (l->id > last && method_matches(l->method, method) && (!next || l->id < next->id))
                next = l;
        if (!next)
            break;
        last = next->id;
        next->fn(s, method, params, next->ud);
    }
    for (cdp_waiter *w = s->waiters; w; w = w->next) {
        if (!method_matches(w->method, method) || (w->match && !w->match(params, w->ud)))
            continue;
        cdp_evq *e = malloc(sizeof(*e));
        if (!e)
            continue;
        e->next = NULL;
        e->params = cJSON_Duplicate(params, 1);
        if (w->tail)
            w->tail->next = e;
        else
            w->head = e;
        w->tail = e;
        pthread_cond_signal(&w->cond);
    }
}

cdp_session *cdp__session_attach(cdp_browser *b, const char *session_id, const char *target_id,
                                 const char *type)
{
    cdp__lock(b);
    cdp_session *s = cdp__session_find(b, session_id);
    if (s) {
        cdp__unlock(b);
        return s;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->b = b;
    s->refs = 1; /* held while attached */
    s->id = strdup(session_id);
    s->target_id = target_id ? strdup(target_id) : NULL;
    s->target_type = type ? strdup(type) : NULL;
    if (!s->id) {
        session_free(s);
        s = NULL;
        goto out;
    }
    s->next = b->sessions;
    b->sessions = s;
out:
    cdp__unlock(b);
    return s;
}

static void session_attach_locked(cdp_browser *b, const cJSON *params)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(params, "sessionId");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(info, "targetId");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(info, "type");
    if (cJSON_IsString(sid))
        cdp__session_attach(b, sid->valuestring, cJSON_IsString(tid) ? tid->valuestring : NULL,
                            cJSON_IsString(type) ? type->valuestring : NULL);
}

static void fail_session_calls_locked(cdp_browser *b, cdp_session *s, int code, const char *why)
{
    for (cdp_pending *p = b->pending; p; p = p->next)
        if (!s || p->s == s)
            pending_finish_locked(p, code, NULL, "%s", why);
}

static void wake_waiters_locked(cdp_session *s)
{
    for (cdp_waiter *w = s->waiters; w; w = w->next)
        pthread_cond_broadcast(&w->cond);
}

static void session_detach_locked(cdp_session *s, const char *why)
{
    cdp_browser *b = s->b;
    if (s->detached)
        return;
    s->detached = 1;
    snprintf(s->why, sizeof(s->why), "%s", why);
    for (cdp_session **pp = &b->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    s->next = NULL;
    fail_session_calls_locked(b, s, CDP_EDETACHED, why);
    wake_waiters_locked(s);
    pthread_cond_broadcast(&b->changed);
    cdp_session_unref(s);
}

void cdp__dispatch(cdp_browser *b, const char *json, size_t len)
{
    cJSON *msg = cJSON_ParseWithLength(json, len);
    if (!msg) {
        PT_WARN("cdp", "ignored a message that is not JSON (%zu bytes)", len);
        return;
    }
    cdp__lock(b);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    if (cJSON_IsNumber(id)) {
        cdp_pending *p = pending_find_locked(b, id->valueint);
        if (p) {
            pending_finish_locked(p, 0, msg, NULL);
            msg = NULL;
        }
    } else if (cJSON_IsString(method)) {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(msg, "sessionId");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
        cdp_session *s = cdp__session_find(b, cJSON_IsString(sid) ? sid->valuestring : NULL);
        const char *m = method->valuestring;
        if (strcmp(m, "Target.attachedToTarget") == 0)
            session_attach_locked(b, params);
        if (s) {
            cdp_session_ref(s);
            deliver_event_locked(s, m, params);
            if (strcmp(m, "Inspector.targetCrashed") == 0)
                session_detach_locked(s, "page crashed");
            else if (strcmp(m, "Inspector.detached") == 0)
                session_detach_locked(s, "detached by the browser");
            cdp_session_unref(s);
        }
        if (strcmp(m, "Target.detachedFromTarget") == 0) {
            const cJSON *child = cJSON_GetObjectItemCaseSensitive(params, "sessionId");
            cdp_session *c =
                cJSON_IsString(child) ? cdp__session_find(b, child->valuestring) : NULL;
            if (c && c != &b->root)
                session_detach_locked(c, "target closed");
        }
    }
    cdp__unlock(b);
    cJSON_Delete(msg);
}

void cdp__conn_gone(cdp_browser *b, int code, const char *msg)
{
    cdp__lock(b);
    if (!b->gone) {
        b->gone = 1;
        b->gone_code = code;
        snprintf(b->gone_msg, sizeof(b->gone_msg), "%s", msg);
        PT_DEBUG("cdp", "%s", msg);
    }
    fail_session_calls_locked(b, NULL, b->gone_code, b->gone_msg);
    wake_waiters_locked(&b->root);
    for (cdp_session *s = b->sessions; s; s = s->next)
        wake_waiters_locked(s);
    pthread_cond_broadcast(&b->changed);
    cdp__unlock(b);
}

int cdp_browser_gone(cdp_browser *b, char *why)
{
    cdp__lock(b);
    int g = b->gone;
    if (g && why)
        snprintf(why, CDP_ERR_MAX, "%s", b->gone_msg);
    cdp__unlock(b);
    return g;
}

cdp_session *cdp_browser_session(cdp_browser *b)
{
    return &b->root;
}

/* ---- Events API --------------------------------------------------------- */

int cdp_on(cdp_session *s, const char *method, cdp_event_fn fn, void *ud)
{
    cdp_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return CDP_EFAIL;
    l->method = method ? strdup(method) : NULL;
    l->fn = fn;
    l->ud = ud;
    cdp__lock(s->b);
    l->id = ++s->b->next_listener;
    /* appended, so listeners run in the order they were added */
    cdp_listener **pp = &s->listeners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = l;
    int id = l->id;
    cdp__unlock(s->b);
    return id;
}

void cdp_off(cdp_session *s, int listener_id)
{
    cdp__lock(s->b);
    for (cdp_listener **pp = &s->listeners; *pp; pp = &(*pp)->next)
        if ((*pp)->id == listener_id) {
            cdp_listener *l = *pp;
            *pp = l->next;
            free(l->method);
            free(l);
            break;
        }
    cdp__unlock(s->b);
}

cdp_waiter *cdp_wait_begin(cdp_session *s, const char *method, cdp_event_match match, void *ud)
{
    cdp_waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->method = method ? strdup(method) : NULL;
    w->match = match;
    w->ud = ud;
    pt_cond_init_monotonic(&w->cond);
    cdp__lock(s->b);
    w->s = cdp_session_ref(s);
    w->next = s->waiters;
    s->waiters = w;
    cdp__unlock(s->b);
    return w;
}

int cdp_wait_next(cdp_waiter *w, int timeout_ms, cJSON **params, char *err)
{
    cdp_browser *b = w->s->b;
    struct timespec deadline = pt_deadline(timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;
    *params = NULL;
    cdp__lock(b);
    for (;;) {
        if (w->head) {
            cdp_evq *e = w->head;
            w->head = e->next;
            if (!w->head)
                w->tail = NULL;
            *params = e->params;
            free(e);
            break;
        }
        if ((rc = unusable_locked(w->s, err)) != 0)
            break;
        if (cdp__cond_wait_until(b, &w->cond, &deadline) == ETIMEDOUT && !w->head) {
            pt_errf(err, "no %s event within %d ms", w->method ? w->method : "", timeout_ms);
            rc = CDP_ETIMEOUT;
            break;
        }
    }
    cdp__unlock(b);
    return rc;
}

void cdp_wait_end(cdp_waiter *w)
{
    if (!w)
        return;
    cdp_session *s = w->s;
    cdp__lock(s->b);
    for (cdp_waiter **pp = &s->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    while (w->head) {
        cdp_evq *e = w->head;
        w->head = e->next;
        cJSON_Delete(e->params);
        free(e);
    }
    cdp_session_unref(s);
    cdp__unlock(s->b);
    pthread_cond_destroy(&w->cond);
    free(w->method);
    free(w);
}

/* ---- Sessions ----------------------------------------------------------- */

cdp_session *cdp_session_ref(cdp_session *s)
{
    cdp__lock(s->b);
    s->refs++;
    cdp__unlock(s->b);
    return s;
}

void cdp_session_unref(cdp_session *s)
{
    if (!s)
        return;
    cdp_browser *b = s->b;
    cdp__lock(b);
    int last = --s->refs == 0 && s != &b->root;
    cdp__unlock(b);
    if (last)
        session_free(s);
}

const char *cdp_session_id(const cdp_session *s)
{
    return s->id;
}

const char *cdp_session_target_id(const cdp_session *s)
{
    return s->target_id;
}

const char *cdp_session_target_type(const cdp_session *s)
{
    return s->target_type ? s->target_type : "browser";
}

cdp_browser *cdp_session_browser(const cdp_session *s)
{
    return s->b;
}

int cdp_session_detached(cdp_session *s)
{
    cdp__lock(s->b);
    int d = s->detached || s->b->gone;
    cdp__unlock(s->b);
    return d;
}
