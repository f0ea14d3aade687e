/*
 * page.c - browser contexts, pages and their frames.
 *
 * A cdp_page is one tab attached with a flattened session. It keeps a table
 * of its frames, fed by events on the service thread:
 *
 *   Page.frameAttached / frameNavigated / frameDetached   the tree
 *   Runtime.executionContextCreated / Destroyed / Cleared the main world of
 *                                                          each frame
 *   Target.attachedToTarget (type "iframe")               a cross-site frame
 *                                                          moved to its own
 *                                                          process: its rows
 *                                                          now belong to the
 *                                                          child session
 *
 * Auto-attach is set on every session with waitForDebuggerOnStart, so a new
 * out-of-process frame is paused until its domains are enabled; nothing it
 * does is missed. Dialogs on any of the page's sessions are answered at once
 * (a dialog left open stalls the page) and recorded.
 */
#define _GNU_SOURCE
#include "cdp/cdp_internal.h"
#include "util/b64.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/json.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT 15000
#define LOADERS 8
/* how much longer than its own cap a waiting script may take to answer */
#define CHANGE_SLACK 2000

typedef struct frame {
    char *id;
    char *parent;
    char *url;
    char *name;
    cdp_session *s; /* the session whose target renders it (not a reference) */
    int ctx;        /* main-world execution context in s, 0 while none */
    int oop;
    /* a function installed in the current context (cdp__page_fn): its
     * source (static storage, compared by address) and its object there;
     * frame_set_ctx forgets both */
    const char *fn;
    char *fn_oid;
    unsigned gen; /* goes up with every change of ctx, never 0 once set */
} frame;

typedef struct sub {
    cdp_session *s; /* a reference */
    int listener;
} sub;

enum { LIFE_LOAD = CDP_WAIT_LOAD, LIFE_IDLE = CDP_WAIT_NETWORK_IDLE };

struct cdp_page {
    cdp_browser *b;
    cdp_session *s;
    char *target_id;
    frame *frames;
    size_t nframes;
    sub *subs;
    size_t nsubs;
    /* lifecycle of the top frame's recent documents, newest at [0] */
    struct {
        char id[64];
        unsigned bits;
    } loaders[LOADERS];
    /* the top frame's navigation (see nav_state below) */
    int nav_requested, nav_loading;
    unsigned nav_gen; /* counts navigations started */
    char nav_url[256];
    cdp_capture *inflight; /* the screenshot in flight, or NULL */
    int dialog_accept;
    char *prompt_text;
    cdp_dialog *dialogs;
    size_t ndialogs;
    char **exceptions;
    size_t nexceptions;
    /* goes up on every event that may change what a script in one of the
     * page's documents sees (cdp_page_changes) */
    unsigned long changes;
    /* network interception (cdp_page_intercept): Fetch is enabled on every
     * session of the page, paused requests are queued by the service
     * thread and answered by fn on a thread of the page's own */
    cdp_intercept_fn icpt_fn;
    void *icpt_ud;
    char *icpt_patterns; /* Fetch.enable params, JSON */
    struct paused {
        struct paused *next;
        cdp_session *s; /* a reference */
        cJSON *params;
    } * icpt_head, *icpt_tail;
    pthread_mutex_t icpt_mu;
    pthread_cond_t icpt_cv;
    pthread_t icpt_thread;
    int icpt_running, icpt_stop;
    /* the Network domain's events (cdp_page_network), on every session */
    cdp_net_fn net_fn;
    void *net_ud;
};

static void set_str(char **dst, const char *src)
{
    if (!src)
        return;
    char *n = strdup(src);
    if (n) {
        free(*dst);
        *dst = n;
    }
}

/* ---- The frame table (b->mu held) -------------------------------------- */

static frame *frame_find(cdp_page *p, const char *id)
{
    for (size_t i = 0; i < p->nframes; i++)
        if (strcmp(p->frames[i].id, id) == 0)
            return &p->frames[i];
    return NULL;
}

static frame *frame_add(cdp_page *p, const char *id, const char *parent, cdp_session *s)
{
    frame *f = frame_find(p, id);
    if (f) {
        if (parent && !f->parent)
            set_str(&f->parent, parent);
        return f;
    }
    frame *n = realloc(p->frames, (p->nframes + 1) * sizeof(*n));
    if (!n)
        return NULL;
    p->frames = n;
    f = &p->frames[p->nframes];
    memset(f, 0, sizeof(*f));
    f->id = strdup(id);
    if (!f->id)
        return NULL;
    f->parent = parent ? strdup(parent) : NULL;
    f->s = s;
    p->nframes++;
    return f;
}

static void frame_remove(cdp_page *p, const char *id)
{
    /* children first: they name this frame as their parent */
    for (size_t i = 0; i < p->nframes;) {
        if (p->frames[i].parent && strcmp(p->frames[i].parent, id) == 0) {
            char *child = strdup(p->frames[i].id);
            if (!child)
                return;
            frame_remove(p, child);
            free(child);
            i = 0;
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < p->nframes; i++) {
        if (strcmp(p->frames[i].id, id) != 0)
            continue;
        frame *f = &p->frames[i];
        free(f->id);
        free(f->parent);
        free(f->url);
        free(f->name);
        free(f->fn_oid);
        memmove(f, f + 1, (p->nframes - i - 1) * sizeof(*f));
        p->nframes--;
        return;
    }
}

/* A frame's context is ctx now (0: none): a new one, even under an id
 * seen before (ids start again in another renderer process). What was
 * installed in the one before goes with it. */
static void frame_set_ctx(frame *f, int ctx)
{
    free(f->fn_oid);
    f->fn_oid = NULL;
    f->fn = NULL;
    f->ctx = ctx;
    if (++f->gen == 0)
        f->gen = 1;
}

static void lifecycle(cdp_page *p, const char *loader, const char *name)
{
    if (!loader || strlen(loader) >= sizeof(p->loaders[0].id))
        return;
    int i = 0;
    while (i < LOADERS && strcmp(p->loaders[i].id, loader) != 0)
        i++;
    if (i == LOADERS) {
        memmove(&p->loaders[1], &p->loaders[0], sizeof(p->loaders[0]) * (LOADERS - 1));
        snprintf(p->loaders[0].id, sizeof(p->loaders[0].id), "%s", loader);
        p->loaders[0].bits = 0;
        i = 0;
    }
    if (strcmp(name, "load") == 0)
        p->loaders[i].bits |= LIFE_LOAD;
    else if (strcmp(name, "networkIdle") == 0)
        p->loaders[i].bits |= LIFE_IDLE;
}

static void watch_session(cdp_page *p, cdp_session *s);

static int on_execution_context_created(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(params, "context");
    const cJSON *aux = cJSON_GetObjectItemCaseSensitive(c, "auxData");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
    const char *fid = pt_json_str(aux, "frameId");
    if (fid && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(aux, "isDefault")) &&
        cJSON_IsNumber(id)) {
        frame *f = frame_add(p, fid, NULL, s);
        if (f) {
            f->s = s;
            frame_set_ctx(f, id->valueint);
        }
    }
    return 1;
}

static int on_execution_context_destroyed(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(params, "executionContextId");
    for (size_t i = 0; i < p->nframes; i++)
        if (p->frames[i].s == s && cJSON_IsNumber(id) && p->frames[i].ctx == id->valueint)
            frame_set_ctx(&p->frames[i], 0);
    return 1;
}

static int on_execution_contexts_cleared(cdp_page *p, cdp_session *s, const cJSON *params)
{
    (void)params;
    for (size_t i = 0; i < p->nframes; i++)
        if (p->frames[i].s == s)
            frame_set_ctx(&p->frames[i], 0);
    return 1;
}

static int on_frame_attached(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const char *fid = pt_json_str(params, "frameId");
    if (fid)
        frame_add(p, fid, pt_json_str(params, "parentFrameId"), s);
    return 1;
}

static int on_frame_navigated(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(params, "frame");
    const char *fid = pt_json_str(fr, "id");
    frame *f = fid ? frame_add(p, fid, pt_json_str(fr, "parentId"), s) : NULL;
    if (f) {
        set_str(&f->url, pt_json_str(fr, "url"));
        set_str(&f->name, pt_json_str(fr, "name"));
    }
    return 1;
}

static int on_frame_detached(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const char *fid = pt_json_str(params, "frameId");
    const char *reason = pt_json_str(params, "reason");
    frame *f = fid ? frame_find(p, fid) : NULL;
    if (f && reason && strcmp(reason, "swap") == 0) {
        if (f->s == s)
            frame_set_ctx(f, 0); /* moving to another process */
    } else if (f) {
        frame_remove(p, fid);
    }
    return 1;
}

static int on_lifecycle_event(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const char *fid = pt_json_str(params, "frameId");
    const char *name = pt_json_str(params, "name");
    if (fid && name && s == p->s && strcmp(fid, p->target_id) == 0)
        lifecycle(p, pt_json_str(params, "loaderId"), name);
    return 1;
}

/* The top frame's navigation, as the Page domain tells it:
 *
 *   idle --frameRequestedNavigation--> requested --frameStartedLoading--> loading
 *    ^  <-navigatedWithinDocument,      |                                   |
 *    |    frameClearedScheduledNavigation                                   |
 *    +----------------------- frameStoppedLoading --------------------------+
 *
 * "Navigating" is requested or loading. frameStoppedLoading comes after the
 * new document's load event (and its frames'). Chromium does not answer a
 * screenshot sent while the top frame navigates, so captures wait for idle
 * and watch nav_gen for a navigation that overtakes them. */
static int top_frame_event(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const char *fid = pt_json_str(params, "frameId");
    return s == p->s && fid && strcmp(fid, p->target_id) == 0;
}

static int on_frame_requested_navigation(cdp_page *p, cdp_session *s, const cJSON *params)
{
    const char *disposition = pt_json_str(params, "disposition");
    if (!top_frame_event(p, s, params) || (disposition && strcmp(disposition, "currentTab") != 0))
        return 0;
    p->nav_requested = 1;
    p->nav_gen++;
    snprintf(p->nav_url, sizeof(p->nav_url), "%s",
             pt_json_str(params, "url") ? pt_json_str(params, "url") : "");
    return 1;
}

static int on_frame_started_loading(cdp_page *p, cdp_session *s, const cJSON *params)
{
    if (!top_frame_event(p, s, params))
        return 0;
    p->nav_loading = 1;
    p->nav_gen++;
    return 1;
}

static int on_frame_stopped_loading(cdp_page *p, cdp_session *s, const cJSON *params)
{
    if (!top_frame_event(p, s, params))
        return 0;
    p->nav_requested = p->nav_loading = 0;
    return 1;
}

static int on_navigation_dropped(cdp_page *p, cdp_session *s, const cJSON *params)
{
    if (!top_frame_event(p, s, params))
        return 0;
    p->nav_requested = 0;
    return 1;
}

static int on_javascript_dialog_opening(cdp_page *p, cdp_session *s, const cJSON *params)
{
    cJSON *answer = cJSON_CreateObject();
    cJSON_AddBoolToObject(answer, "accept", p->dialog_accept);
    if (p->prompt_text)
        cJSON_AddStringToObject(answer, "promptText", p->prompt_text);
    cdp_send(s, "Page.handleJavaScriptDialog", answer);
    cdp_dialog *d = realloc(p->dialogs, (p->ndialogs + 1) * sizeof(*d));
    if (d) {
        p->dialogs = d;
        d = &p->dialogs[p->ndialogs++];
        d->type = strdup(pt_json_str(params, "type") ? pt_json_str(params, "type") : "alert");
        d->message = strdup(pt_json_str(params, "message") ? pt_json_str(params, "message") : "");
        d->accepted = p->dialog_accept;
    }
    PT_DEBUG("cdp", "answered a %s dialog",
             pt_json_str(params, "type") ? pt_json_str(params, "type") : "?");
    return 1;
}

static int on_exception_thrown(cdp_page *p, cdp_session *s, const cJSON *params)
{
    (void)s;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(params, "exceptionDetails");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(d, "exception");
    const char *desc =
        pt_json_str(ex, "description") ? pt_json_str(ex, "description") : pt_json_str(d, "text");
    const char *url = pt_json_str(d, "url");
    char *msg = NULL;
    if (asprintf(&msg, "%s%s%s", desc ? desc : "exception", url ? " at " : "", url ? url : "") >=
            0 &&
        p->nexceptions < 1000) {
        char **n = realloc(p->exceptions, (p->nexceptions + 1) * sizeof(*n));
        if (n) {
            p->exceptions = n;
            p->exceptions[p->nexceptions++] = msg;
            msg = NULL;
        }
    }
    free(msg);
    return 1;
}

static int on_request_paused(cdp_page *p, cdp_session *s, const cJSON *params)
{
    if (!p->icpt_fn)
        return 1;
    struct paused *q = calloc(1, sizeof(*q));
    if (q && (q->params = cJSON_Duplicate(params, 1))) {
        q->s = cdp_session_ref(s);
        pthread_mutex_lock(&p->icpt_mu);
        if (p->icpt_tail)
            p->icpt_tail->next = q;
        else
            p->icpt_head = q;
        p->icpt_tail = q;
        pthread_cond_signal(&p->icpt_cv);
        pthread_mutex_unlock(&p->icpt_mu);
    } else {
        free(q);
    }
    return 1;
}

static int on_attached_to_target(cdp_page *p, cdp_session *s, const cJSON *params)
{
    (void)s;
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(params, "targetInfo");
    const char *sid = pt_json_str(params, "sessionId");
    const char *type = pt_json_str(info, "type");
    const char *tid = pt_json_str(info, "targetId");
    cdp_session *child = sid ? cdp__session_find(p->b, sid) : NULL;
    if (!child)
        return 0;
    if (type && tid && strcmp(type, "iframe") == 0) {
        frame *f = frame_add(p, tid, NULL, child);
        if (f) {
            f->s = child;
            frame_set_ctx(f, 0);
            f->oop = 1;
        }
        watch_session(p, child);
    } else {
        /* workers and the like: let them run, we do not drive them */
        cdp_send(child, "Runtime.runIfWaitingForDebugger", NULL);
    }
    return 1;
}

/* The events the frame table, dialogs, exceptions and interception follow.
 * A handler returns 0 when nothing changed that a waiter could want; `doc`
 * marks the events after which a document may look different (a new
 * document, a frame, a load, an answered dialog): they count as changes. */
static const struct page_event {
    const char *method;
    int (*fn)(cdp_page *p, cdp_session *s, const cJSON *params);
    int doc;
} page_events[] = {
    {"Runtime.executionContextCreated", on_execution_context_created, 1},
    {"Runtime.executionContextDestroyed", on_execution_context_destroyed, 1},
    {"Runtime.executionContextsCleared", on_execution_contexts_cleared, 1},
    {"Page.frameAttached", on_frame_attached, 1},
    {"Page.frameNavigated", on_frame_navigated, 1},
    {"Page.frameDetached", on_frame_detached, 1},
    {"Page.lifecycleEvent", on_lifecycle_event, 1},
    {"Page.frameRequestedNavigation", on_frame_requested_navigation, 1},
    {"Page.frameStartedLoading", on_frame_started_loading, 1},
    {"Page.frameStoppedLoading", on_frame_stopped_loading, 1},
    {"Page.navigatedWithinDocument", on_navigation_dropped, 1},
    {"Page.frameClearedScheduledNavigation", on_navigation_dropped, 0},
    {"Page.javascriptDialogOpening", on_javascript_dialog_opening, 1},
    {"Runtime.exceptionThrown", on_exception_thrown, 0},
    {"Fetch.requestPaused", on_request_paused, 0},
    {"Target.attachedToTarget", on_attached_to_target, 1},
};

static void on_event(cdp_session *s, const char *m, const cJSON *params, void *ud)
{
    cdp_page *p = ud;
    cdp_net_event ev;
    int net = !strncmp(m, "Network.", 8);
    /* the loads of the top document only (a frame's target has its own) */
    if (p->net_fn && (net || s == p->s) && cdp__net_view(m, params, &ev) == 0)
        p->net_fn(&ev, p->net_ud);
    if (net) /* nothing a waiter wants */
        return;
    for (size_t i = 0; i < sizeof(page_events) / sizeof(page_events[0]); i++)
        if (strcmp(m, page_events[i].method) == 0) {
            if (!page_events[i].fn(p, s, params))
                return;
            p->changes += (unsigned long)page_events[i].doc;
            break;
        }
    pthread_cond_broadcast(&p->b->changed);
}

/* Subscribes to s and enables what the frame table needs. On a new child
 * this runs on the service thread, so it only queues (cdp_send). */
static void watch_session(cdp_page *p, cdp_session *s)
{
    sub *n = realloc(p->subs, (p->nsubs + 1) * sizeof(*n));
    if (!n)
        return;
    p->subs = n;
    p->subs[p->nsubs].s = cdp_session_ref(s);
    p->subs[p->nsubs].listener = cdp_on(s, NULL, on_event, p);
    p->nsubs++;
    s->owner = p;
    if (s == p->s)
        return; /* the top session is enabled synchronously by cdp_page_open */
    cJSON *on = cJSON_CreateObject();
    cJSON_AddBoolToObject(on, "enabled", 1);
    cJSON *aa = cJSON_CreateObject();
    cJSON_AddBoolToObject(aa, "autoAttach", 1);
    cJSON_AddBoolToObject(aa, "waitForDebuggerOnStart", 1);
    cJSON_AddBoolToObject(aa, "flatten", 1);
    cdp_send(s, "Page.enable", NULL);
    cdp_send(s, "Runtime.enable", NULL);
    cdp_send(s, "Page.setLifecycleEventsEnabled", on);
    if (p->net_fn)
        cdp_send(s, "Network.enable", NULL);
    if (p->icpt_fn) /* before the frame runs: none of its requests escapes */
        cdp_send(s, "Fetch.enable", cJSON_Parse(p->icpt_patterns));
    cdp_send(s, "Target.setAutoAttach", aa);
    cdp_send(s, "Runtime.runIfWaitingForDebugger", NULL);
}

/* ---- Contexts and pages ------------------------------------------------- */

int cdp_context_create(cdp_browser *b, char **id, char *err)
{
    cJSON *res = NULL;
    *id = NULL;
    int rc = cdp__call(cdp_browser_session(b), "Target.createBrowserContext", NULL, &res,
                       CALL_TIMEOUT, err);
    if (rc)
        return rc;
    const char *v = pt_json_str(res, "browserContextId");
    *id = v ? strdup(v) : NULL;
    cJSON_Delete(res);
    if (!*id)
        return pt_errf(err, "Target.createBrowserContext: no browserContextId"), CDP_EFAIL;
    return 0;
}

int cdp_context_dispose(cdp_browser *b, const char *id, char *err)
{
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "browserContextId", id);
    return cdp__call(cdp_browser_session(b), "Target.disposeBrowserContext", params, NULL,
                     CALL_TIMEOUT, err);
}

static int call_simple(cdp_session *s, const char *method, cJSON *params, char *err)
{
    return cdp__call(s, method, params, NULL, CALL_TIMEOUT, err);
}

int cdp_page_open(cdp_browser *b, const char *context_id, cdp_page **out, char *err)
{
    cdp_session *root = cdp_browser_session(b);
    cJSON *res = NULL;
    int rc;
    *out = NULL;

    cdp_page *p = calloc(1, sizeof(*p));
    if (!p)
        return pt_errf(err, "out of memory"), CDP_EFAIL;
    p->b = b;
    p->dialog_accept = 1;

    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "url", "about:blank");
    if (context_id)
        cJSON_AddStringToObject(params, "browserContextId", context_id);
    if ((rc = cdp__call(root, "Target.createTarget", params, &res, CALL_TIMEOUT, err)))
        goto fail;
    p->target_id = pt_json_str(res, "targetId") ? strdup(pt_json_str(res, "targetId")) : NULL;
    cJSON_Delete(res);
    res = NULL;
    if (!p->target_id) {
        rc = pt_errf(err, "Target.createTarget: no targetId");
        goto fail;
    }

    params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "targetId", p->target_id);
    cJSON_AddBoolToObject(params, "flatten", 1);
    if ((rc = cdp__call(root, "Target.attachToTarget", params, &res, CALL_TIMEOUT, err)))
        goto fail;
    const char *sid = pt_json_str(res, "sessionId");
    cdp_session *s = sid ? cdp__session_attach(b, sid, p->target_id, "page") : NULL;
    cJSON_Delete(res);
    res = NULL;
    if (!s) {
        rc = pt_errf(err, "Target.attachToTarget: no session");
        goto fail;
    }
    p->s = cdp_session_ref(s);
    cdp__lock(b);
    watch_session(p, s);
    frame_add(p, p->target_id, NULL, s);
    cdp__unlock(b);

    /* each call's params are made just before it: a failing call takes
     * (and frees) only its own */
    if ((rc = call_simple(s, "Page.enable", NULL, err)))
        goto fail;
    cJSON *on = cJSON_CreateObject();
    cJSON_AddBoolToObject(on, "enabled", 1);
    if ((rc = call_simple(s, "Page.setLifecycleEventsEnabled", on, err)) ||
        (rc = call_simple(s, "Runtime.enable", NULL, err)))
        goto fail;
    cJSON *aa = cJSON_CreateObject();
    cJSON_AddBoolToObject(aa, "autoAttach", 1);
    cJSON_AddBoolToObject(aa, "waitForDebuggerOnStart", 1);
    cJSON_AddBoolToObject(aa, "flatten", 1);
    if ((rc = call_simple(s, "Target.setAutoAttach", aa, err)))
        goto fail;
    *out = p;
    return 0;

fail:
    cdp_page_close(p);
    return rc ? rc : CDP_EFAIL;
}

static void intercept_stop(cdp_page *p)
{
    if (!p->icpt_running)
        return;
    pthread_mutex_lock(&p->icpt_mu);
    p->icpt_stop = 1;
    pthread_cond_broadcast(&p->icpt_cv);
    pthread_mutex_unlock(&p->icpt_mu);
    pthread_join(p->icpt_thread, NULL);
    p->icpt_running = 0;
    while (p->icpt_head) {
        struct paused *q = p->icpt_head;
        p->icpt_head = q->next;
        cdp_session_unref(q->s);
        cJSON_Delete(q->params);
        free(q);
    }
    pthread_mutex_destroy(&p->icpt_mu);
    pthread_cond_destroy(&p->icpt_cv);
}

void cdp_page_close(cdp_page *p)
{
    if (!p)
        return;
    cdp__lock(p->b);
    p->icpt_fn = NULL; /* no more queueing */
    p->net_fn = NULL;
    cdp__unlock(p->b);
    intercept_stop(p);
    free(p->icpt_patterns);
    cdp__lock(p->b);
    for (size_t i = 0; i < p->nsubs; i++) {
        cdp_off(p->subs[i].s, p->subs[i].listener);
        p->subs[i].s->owner = NULL;
    }
    cdp__unlock(p->b);
    if (p->target_id && !cdp_browser_gone(p->b, NULL)) {
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "targetId", p->target_id);
        cdp__call(cdp_browser_session(p->b), "Target.closeTarget", params, NULL, 5000, NULL);
    }
    for (size_t i = 0; i < p->nsubs; i++)
        cdp_session_unref(p->subs[i].s);
    free(p->subs);
    cdp_session_unref(p->s);
    while (p->nframes)
        frame_remove(p, p->frames[0].id);
    free(p->frames);
    cdp_dialogs_free(p->dialogs, p->ndialogs);
    cdp_strings_free(p->exceptions, p->nexceptions);
    free(p->prompt_text);
    free(p->target_id);
    free(p);
}

cdp_session *cdp_page_session(cdp_page *p)
{
    return p->s;
}

const char *cdp_page_main_frame(cdp_page *p)
{
    return p->target_id;
}

/* ---- Navigation --------------------------------------------------------- */

static unsigned loader_bits(cdp_page *p, const char *loader)
{
    for (int i = 0; i < LOADERS; i++)
        if (strcmp(p->loaders[i].id, loader) == 0)
            return p->loaders[i].bits;
    return 0;
}

/* Waits until the document `loader` (NULL: the newest) has every flag. */
static int wait_loader(cdp_page *p, const char *loader, unsigned flags, int timeout_ms, char *err)
{
    struct timespec deadline = pt_deadline(timeout_ms);
    int rc = 0;
    cdp__lock(p->b);
    for (;;) {
        const char *id = loader ? loader : p->loaders[0].id;
        if ((loader_bits(p, id) & flags) == flags)
            break;
        if (cdp_session_detached(p->s)) {
            char why[CDP_ERR_MAX];
            if (!cdp_browser_gone(p->b, why))
                snprintf(why, sizeof(why), "%s", p->s->why);
            rc = pt_errf(err, "page gone while loading: %s", why);
            rc = CDP_EGONE;
            break;
        }
        if (cdp__cond_wait_until(p->b, &p->b->changed, &deadline) == ETIMEDOUT) {
            pt_errf(err, "page did not finish loading (%s) within %d ms",
                    flags & LIFE_IDLE ? "network idle" : "load event", timeout_ms);
            rc = CDP_ETIMEOUT;
            break;
        }
    }
    cdp__unlock(p->b);
    return rc;
}

int cdp_page_navigate(cdp_page *p, const char *url, unsigned flags, int timeout_ms, char *err)
{
    cJSON *params = cJSON_CreateObject(), *res = NULL;
    cJSON_AddStringToObject(params, "url", url);
    int64_t start = pt_mono_ms();
    cdp__page_fence(p);
    int rc = cdp__call(p->s, "Page.navigate", params, &res, timeout_ms, err);
    if (rc)
        return rc;
    const char *error_text = pt_json_str(res, "errorText");
    if (error_text && *error_text) {
        pt_errf(err, "could not load %s: %s", url, error_text);
        cJSON_Delete(res);
        return CDP_EFAIL;
    }
    char loader[64] = "";
    if (pt_json_str(res, "loaderId"))
        snprintf(loader, sizeof(loader), "%s", pt_json_str(res, "loaderId"));
    cJSON_Delete(res);
    if (!loader[0] || !flags)
        return 0; /* same-document navigation: nothing to load */
    int left = timeout_ms - (int)(pt_mono_ms() - start);
    return wait_loader(p, loader, flags, left > 0 ? left : 0, err);
}

int cdp_page_wait_load(cdp_page *p, unsigned flags, int timeout_ms, char *err)
{
    return wait_loader(p, NULL, flags, timeout_ms, err);
}

int cdp_page_navigating(cdp_page *p)
{
    cdp__lock(p->b);
    int busy = p->nav_requested || p->nav_loading;
    cdp__unlock(p->b);
    return busy;
}

/* b->mu held. */
static void describe_navigation(cdp_page *p, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%s%s", p->nav_loading ? "loading" : "requested",
             p->nav_url[0] ? " " : "", p->nav_url);
}

int cdp_page_wait_navigation(cdp_page *p, int timeout_ms, char *err)
{
    int64_t start = pt_mono_ms();
    struct timespec deadline = pt_deadline(timeout_ms);
    struct timespec second = pt_deadline(timeout_ms < 1000 ? timeout_ms : 1000);
    int rc = 0, logged = 0;
    char what[300];
    cdp__lock(p->b);
    while (p->nav_requested || p->nav_loading) {
        if (cdp_session_detached(p->s)) {
            char why[CDP_ERR_MAX];
            if (!cdp_browser_gone(p->b, why))
                snprintf(why, sizeof(why), "%s", p->s->why);
            rc = CDP_EGONE;
            pt_errf(err, "page gone while navigating: %s", why);
            break;
        }
        if (cdp__cond_wait_until(p->b, &p->b->changed, logged ? &deadline : &second) != ETIMEDOUT)
            continue;
        describe_navigation(p, what, sizeof(what));
        if (logged || timeout_ms <= 1000) {
            pt_errf(err, "the page was still navigating (%s) after %d ms", what, timeout_ms);
            rc = CDP_ETIMEOUT;
            break;
        }
        logged = 1;
        PT_DEBUG("cdp", "waiting up to %d ms for the top frame's navigation to load (%s)",
                 timeout_ms, what);
    }
    cdp__unlock(p->b);
    if (logged && !rc)
        PT_DEBUG("cdp", "the top frame's navigation loaded after %lld ms",
                 (long long)(pt_mono_ms() - start));
    return rc;
}

/* ---- Frames and evaluation ---------------------------------------------- */

int cdp_page_frames(cdp_page *p, cdp_frame **frames, size_t *n)
{
    cdp__lock(p->b);
    cdp_frame *out = calloc(p->nframes ? p->nframes : 1, sizeof(*out));
    size_t k = 0;
    if (out) {
        /* top frame first, then the rest in the order they appeared */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < p->nframes; i++) {
                frame *f = &p->frames[i];
                int top = strcmp(f->id, p->target_id) == 0;
                if (top != (pass == 0))
                    continue;
                out[k].id = strdup(f->id);
                out[k].parent_id = f->parent ? strdup(f->parent) : NULL;
                out[k].url = strdup(f->url ? f->url : "");
                out[k].name = strdup(f->name ? f->name : "");
                out[k].out_of_process = f->oop;
                k++;
            }
    }
    cdp__unlock(p->b);
    *frames = out;
    *n = k;
    return out ? 0 : CDP_EFAIL;
}

void cdp_frames_free(cdp_frame *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(frames[i].id);
        free(frames[i].parent_id);
        free(frames[i].url);
        free(frames[i].name);
    }
    free(frames);
}

int cdp_page_frame_context(cdp_page *p, const char *frame_id, cdp_session **session,
                           int *context_id, int timeout_ms, char *err)
{
    if (!frame_id)
        frame_id = p->target_id;
    struct timespec deadline = pt_deadline(timeout_ms);
    int rc = 0;
    *session = NULL;
    cdp__lock(p->b);
    for (;;) {
        frame *f = frame_find(p, frame_id);
        if (f && f->ctx && f->s && !f->s->detached) {
            *session = cdp_session_ref(f->s);
            *context_id = f->ctx;
            break;
        }
        if (cdp_browser_gone(p->b, err)) {
            rc = CDP_EGONE;
            break;
        }
        if (cdp__cond_wait_until(p->b, &p->b->changed, &deadline) == ETIMEDOUT) {
            pt_errf(err,
                    f ? "frame %s has no document to run script in after %d ms"
                      : "no frame %s (it may have been removed) after %d ms",
                    frame_id, timeout_ms);
            rc = CDP_ETIMEOUT;
            break;
        }
    }
    cdp__unlock(p->b);
    return rc;
}

int cdp__page_fn(cdp_page *p, const char *frame_id, const char *fn, cdp_session **session,
                 int *context_id, unsigned *gen, char **oid, int timeout_ms, char *err)
{
    *oid = NULL;
    *gen = 0;
    int rc = cdp_page_frame_context(p, frame_id, session, context_id, timeout_ms, err);
    if (rc)
        return rc;
    cdp__lock(p->b);
    frame *f = frame_find(p, frame_id ? frame_id : p->target_id);
    if (f && f->s == *session && f->ctx == *context_id) {
        *gen = f->gen;
        if (f->fn == fn && f->fn_oid)
            *oid = strdup(f->fn_oid);
    }
    cdp__unlock(p->b);
    return 0;
}

void cdp__page_fn_keep(cdp_page *p, const char *frame_id, cdp_session *s, unsigned gen,
                       const char *fn, const char *oid)
{
    cdp__lock(p->b);
    frame *f = frame_find(p, frame_id ? frame_id : p->target_id);
    char *copy = gen && f && f->s == s && f->gen == gen ? strdup(oid) : NULL;
    if (copy) {
        free(f->fn_oid);
        f->fn_oid = copy;
        f->fn = fn;
    }
    cdp__unlock(p->b);
}

void cdp__page_fn_forget(cdp_page *p, const char *frame_id, unsigned gen, const char *fn)
{
    cdp__lock(p->b);
    frame *f = frame_find(p, frame_id ? frame_id : p->target_id);
    if (gen && f && f->gen == gen && f->fn == fn) {
        free(f->fn_oid);
        f->fn_oid = NULL;
        f->fn = NULL;
    }
    cdp__unlock(p->b);
}

unsigned long cdp_page_changes(cdp_page *p)
{
    cdp__lock(p->b);
    unsigned long n = p->changes;
    cdp__unlock(p->b);
    return n;
}

/* Waits on the page's events until its count of changes is no longer since
 * (1), frame_id has a document to run script in (0), the page or browser is
 * gone (< 0, err) or the deadline passes (1: nothing to wait in). */
static int wait_document(cdp_page *p, const char *frame_id, unsigned long since, int timeout_ms,
                         char *err)
{
    struct timespec deadline = pt_deadline(timeout_ms);
    int rc = 1;
    cdp__lock(p->b);
    for (;;) {
        frame *f = frame_find(p, frame_id);
        if (p->changes != since)
            break;
        if (cdp_browser_gone(p->b, err)) {
            rc = CDP_EGONE;
            break;
        }
        if (cdp_session_detached(p->s)) {
            pt_errf(err, "page gone: %s", p->s->why);
            rc = CDP_EDETACHED;
            break;
        }
        if (f && f->ctx && f->s && !f->s->detached) {
            rc = 0;
            break;
        }
        if (cdp__cond_wait_until(p->b, &p->b->changed, &deadline) == ETIMEDOUT)
            break;
    }
    cdp__unlock(p->b);
    return rc;
}

int cdp_page_wait_change(cdp_page *p, const char *frame_id, unsigned long since, const char *fn,
                         cJSON *args, int timeout_ms, char *err)
{
    int rc = wait_document(p, frame_id ? frame_id : p->target_id, since, timeout_ms, err);
    if (rc) {
        cJSON_Delete(args);
        return rc < 0 ? rc : 0;
    }
    /* fn waits in the document; a navigation that destroys it ends the
     * call at once, with an error that means only "it changed" */
    cdp_value v;
    rc = cdp_page_call_kept(p, frame_id, fn, args, 0, &v, timeout_ms + CHANGE_SLACK, err);
    cJSON_Delete(v.value);
    if (rc && cdp_browser_gone(p->b, err))
        return CDP_EGONE;
    if (rc && cdp_session_detached(p->s))
        return pt_errf(err, "page gone: %s", p->s->why), CDP_EDETACHED;
    return 0;
}

/* Evaluates in frame_id; returns the raw Runtime.evaluate result. */
static int evaluate(cdp_page *p, const char *frame_id, const char *expr, int by_value,
                    cdp_session **where, cJSON **result, int timeout_ms, char *err)
{
    int64_t until = pt_mono_ms() + timeout_ms;
    char e[CDP_ERR_MAX];
    for (;;) {
        int left = (int)(until - pt_mono_ms());
        cdp_session *s = NULL;
        int ctx = 0;
        int rc = cdp_page_frame_context(p, frame_id, &s, &ctx, left > 0 ? left : 0, err);
        if (rc)
            return rc;
        cJSON *params = cJSON_CreateObject(), *res = NULL;
        cJSON_AddStringToObject(params, "expression", expr);
        cJSON_AddNumberToObject(params, "contextId", ctx);
        cJSON_AddBoolToObject(params, "returnByValue", by_value);
        cJSON_AddBoolToObject(params, "awaitPromise", 1);
        cJSON_AddBoolToObject(params, "userGesture", 1);
        left = (int)(until - pt_mono_ms());
        rc = cdp__call(s, "Runtime.evaluate", params, &res, left > 0 ? left : 1, e);
        if (rc == CDP_ECONTEXT && pt_mono_ms() < until) {
            /* the document changed under us: forget that context, retry */
            cdp__lock(p->b);
            for (size_t i = 0; i < p->nframes; i++)
                if (p->frames[i].s == s && p->frames[i].ctx == ctx)
                    frame_set_ctx(&p->frames[i], 0);
            cdp__unlock(p->b);
            cdp_session_unref(s);
            pt_sleep_ms(10);
            continue;
        }
        if (rc) {
            cdp_session_unref(s);
            return pt_errf(err, "%s", e), rc;
        }
        const cJSON *exc = cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails");
        if (exc) {
            const cJSON *ex = cJSON_GetObjectItemCaseSensitive(exc, "exception");
            const char *desc = pt_json_str(ex, "description");
            pt_errf(err, "script threw: %s",
                    desc                       ? desc
                    : pt_json_str(exc, "text") ? pt_json_str(exc, "text")
                                               : "?");
            cJSON_Delete(res);
            cdp_session_unref(s);
            return CDP_EJS;
        }
        if (where)
            *where = s;
        else
            cdp_session_unref(s);
        *result = res;
        return 0;
    }
}

int cdp_page_eval(cdp_page *p, const char *frame_id, const char *expr, cJSON **value,
                  int timeout_ms, char *err)
{
    cJSON *res = NULL;
    *value = NULL;
    int rc = evaluate(p, frame_id, expr, 1, NULL, &res, timeout_ms, err);
    if (rc)
        return rc;
    cJSON *r = cJSON_GetObjectItemCaseSensitive(res, "result");
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(r, "value");
    *value = v ? v : cJSON_CreateNull();
    cJSON_Delete(res);
    return 0;
}

int cdp_page_child_frame(cdp_page *p, const char *frame_id, const char *css, char **child_id,
                         int timeout_ms, char *err)
{
    int64_t until = pt_mono_ms() + timeout_ms;
    *child_id = NULL;
    cJSON *sel = cJSON_CreateString(css);
    char *quoted = cJSON_PrintUnformatted(sel);
    cJSON_Delete(sel);
    if (!quoted)
        return pt_errf(err, "out of memory"), CDP_EFAIL;
    size_t n = strlen(quoted) + 64;
    char *expr = malloc(n);
    if (!expr) {
        free(quoted);
        return pt_errf(err, "out of memory"), CDP_EFAIL;
    }
    snprintf(expr, n, "document.querySelector(%s)", quoted);
    free(quoted);

    int rc;
    for (;;) {
        /* each look gets a fair chance even when the deadline is near */
        int left = (int)(until - pt_mono_ms());
        cdp_session *s = NULL;
        cJSON *res = NULL;
        rc = evaluate(p, frame_id, expr, 0, &s, &res, left > 1000 ? left : 1000, err);
        if (rc)
            break;
        const char *oid = pt_json_str(cJSON_GetObjectItemCaseSensitive(res, "result"), "objectId");
        int matched = oid != NULL; /* oid lives in res, freed below */
        cdp_handle *h = oid ? cdp__handle_new(s, oid) : NULL;
        char *fid = NULL;
        if (h && cdp_handle_content_frame(h, &fid, CALL_TIMEOUT, NULL) != PT_FOUND)
            fid = NULL;
        cdp_handle_release(h);
        cJSON_Delete(res);
        cdp_session_unref(s);
        if (fid) {
            cdp__lock(p->b);
            int known = frame_find(p, fid) != NULL;
            cdp__unlock(p->b);
            if (known) {
                *child_id = fid;
                rc = 0;
                break;
            }
            free(fid);
        }
        if (pt_mono_ms() >= until) {
            pt_errf(err,
                    matched ? "%s is not a frame with a document after %d ms"
                            : "no element matches %s after %d ms",
                    css, timeout_ms);
            rc = CDP_ETIMEOUT;
            break;
        }
        pt_sleep_ms(25);
    }
    free(expr);
    return rc;
}

/* ---- Screenshots and dialogs -------------------------------------------- */

/* A screenshot in flight (cdp_page_capture_begin .. cdp_capture_finish).
 * call and gen change under b->mu only. */
struct cdp_capture {
    cdp_page *p;
    cJSON *params;     /* Page.captureScreenshot's, kept for a resend */
    cdp_pending *call; /* NULL between a dropped capture and its resend */
    unsigned gen;      /* p->nav_gen when it was sent */
    int64_t until;     /* its deadline (pt_mono_ms) */
    int timeout_ms;
    int sends;
};

/* Page.captureScreenshot's params: PNG, or JPEG at quality; the whole
 * document with full_page. New, or NULL with err. */
static cJSON *capture_params(cdp_page *p, int full_page, int quality, int timeout_ms, char *err)
{
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "format", quality > 0 ? "jpeg" : "png");
    if (quality > 0)
        cJSON_AddNumberToObject(params, "quality", quality > 100 ? 100 : quality);
    if (!full_page)
        return params;
    cJSON *metrics = NULL;
    if (cdp__call(p->s, "Page.getLayoutMetrics", NULL, &metrics, timeout_ms, err)) {
        cJSON_Delete(params);
        return NULL;
    }
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(metrics, "cssContentSize");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(size, "width");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(size, "height");
    if (cJSON_IsNumber(w) && cJSON_IsNumber(h)) {
        cJSON *clip = cJSON_AddObjectToObject(params, "clip");
        cJSON_AddNumberToObject(clip, "x", 0);
        cJSON_AddNumberToObject(clip, "y", 0);
        cJSON_AddNumberToObject(clip, "width", w->valuedouble);
        cJSON_AddNumberToObject(clip, "height", h->valuedouble);
        cJSON_AddNumberToObject(clip, "scale", 1);
        cJSON_AddBoolToObject(params, "captureBeyondViewport", 1);
    }
    cJSON_Delete(metrics);
    return params;
}

static int capture_left(const cdp_capture *c)
{
    int64_t left = c->until - pt_mono_ms();
    return left > 0 ? (int)left : 0;
}

/* Waits for the top frame to finish navigating, then sends the capture. */
static int capture_send(cdp_capture *c, char *err)
{
    int rc = cdp_page_wait_navigation(c->p, capture_left(c), err);
    if (rc)
        return rc;
    cdp_pending *call = NULL;
    cdp__lock(c->p->b);
    unsigned gen = c->p->nav_gen;
    cdp__unlock(c->p->b);
    rc = cdp__call_begin(c->p->s, "Page.captureScreenshot", cJSON_Duplicate(c->params, 1), &call,
                         err);
    if (rc)
        return rc;
    cdp__lock(c->p->b);
    c->call = call;
    c->gen = gen;
    c->sends++;
    cdp__unlock(c->p->b);
    return 0;
}

static void capture_free(cdp_capture *c)
{
    cdp__lock(c->p->b);
    if (c->p->inflight == c)
        c->p->inflight = NULL;
    cdp_pending *call = c->call;
    c->call = NULL;
    cdp__unlock(c->p->b);
    if (call)
        cdp__call_finish(call, NULL, 0, NULL); /* its late reply is dropped */
    cJSON_Delete(c->params);
    free(c);
}

int cdp_page_capture_begin(cdp_page *p, int full_page, int quality, int timeout_ms,
                           cdp_capture **out, char *err)
{
    *out = NULL;
    cdp_capture *c = calloc(1, sizeof(*c));
    if (!c)
        return pt_errf(err, "out of memory"), CDP_EFAIL;
    c->p = p;
    c->timeout_ms = timeout_ms;
    c->until = pt_mono_ms() + timeout_ms;
    c->params = capture_params(p, full_page, quality, timeout_ms, err);
    int rc = c->params ? capture_send(c, err) : CDP_EFAIL;
    if (rc) {
        capture_free(c);
        return rc;
    }
    cdp__lock(p->b);
    if (!p->inflight)
        p->inflight = c;
    cdp__unlock(p->b);
    *out = c;
    return 0;
}

/* Waits (b->mu held) until c's reply is in, a navigation overtook it, or
 * until; 1 when the reply is in. */
static int capture_wait_locked(cdp_capture *c, const struct timespec *until)
{
    while (c->call && !c->call->done && c->gen == c->p->nav_gen)
        if (cdp__cond_wait_until(c->p->b, &c->p->b->changed, until) == ETIMEDOUT)
            break;
    return c->call && c->call->done;
}

int cdp_capture_finish(cdp_capture *c, unsigned char **img, size_t *len, char *err)
{
    *img = NULL;
    *len = 0;
    int rc = CDP_ETIMEOUT;
    for (;;) {
        struct timespec until = pt_deadline(capture_left(c));
        cdp__lock(c->p->b);
        int answered = capture_wait_locked(c, &until);
        int overtaken = !answered && c->gen != c->p->nav_gen;
        cdp_pending *call = c->call;
        c->call = NULL;
        cdp__unlock(c->p->b);
        cJSON *res = NULL;
        if (answered) {
            rc = cdp__call_finish(call, &res, 0, err);
            /* refused as it met the swap of one document for the next (a
             * click's navigation committing just as it was asked): as if
             * the navigation had overtaken it */
            overtaken = rc == CDP_EPROTOCOL && strstr(err, "Not attached to an active page");
            if (!overtaken) {
                const char *data = rc ? NULL : pt_json_str(res, "data");
                if (data)
                    *img = pt_b64_decode(data, strlen(data), len);
                cJSON_Delete(res);
                if (!rc && !*img) {
                    pt_errf(err, "Page.captureScreenshot: no image data");
                    rc = CDP_EFAIL;
                }
                break;
            }
        } else {
            cdp__call_finish(call, NULL, 0, NULL);
            if (!overtaken) {
                pt_errf(err, "Page.captureScreenshot: no reply within %d ms%s", c->timeout_ms,
                        cdp_page_navigating(c->p) ? " (the page is navigating)" : "");
                break;
            }
        }
        /* Chromium drops a capture that a navigation overtakes: once the new
         * document has loaded, ask again */
        PT_DEBUG("cdp", "a navigation overtook a screenshot; taking it again after the load");
        if (c->sends >= 3) {
            pt_errf(err, "the page navigated during each of %d screenshots", c->sends);
            rc = CDP_EFAIL;
            break;
        }
        if ((rc = capture_send(c, err)))
            break;
    }
    capture_free(c);
    return rc;
}

void cdp__page_fence(cdp_page *p)
{
    struct timespec cap = pt_deadline(3000);
    cdp__lock(p->b);
    cdp_capture *c = p->inflight;
    int answered = c ? capture_wait_locked(c, &cap) : 1;
    int overtaken = c && c->gen != p->nav_gen;
    cdp__unlock(p->b);
    if (!answered && !overtaken)
        PT_DEBUG("cdp", "input goes on with a screenshot still in flight after 3000 ms");
}

int cdp_page_screenshot(cdp_page *p, int full_page, unsigned char **png, size_t *len,
                        int timeout_ms, char *err)
{
    cdp_capture *c = NULL;
    *png = NULL;
    *len = 0;
    int rc = cdp_page_capture_begin(p, full_page, 0, timeout_ms, &c, err);
    return rc ? rc : cdp_capture_finish(c, png, len, err);
}

void cdp_page_set_dialog_answer(cdp_page *p, int accept, const char *prompt_text)
{
    cdp__lock(p->b);
    p->dialog_accept = accept;
    free(p->prompt_text);
    p->prompt_text = prompt_text ? strdup(prompt_text) : NULL;
    cdp__unlock(p->b);
}

void cdp_page_forget(cdp_page *p)
{
    cdp__lock(p->b);
    cdp_dialogs_free(p->dialogs, p->ndialogs);
    p->dialogs = NULL;
    p->ndialogs = 0;
    cdp_strings_free(p->exceptions, p->nexceptions);
    p->exceptions = NULL;
    p->nexceptions = 0;
    p->dialog_accept = 1;
    free(p->prompt_text);
    p->prompt_text = NULL;
    cdp__unlock(p->b);
}

int cdp_page_dialogs(cdp_page *p, cdp_dialog **dialogs, size_t *n)
{
    cdp__lock(p->b);
    cdp_dialog *out = calloc(p->ndialogs ? p->ndialogs : 1, sizeof(*out));
    if (out)
        for (size_t i = 0; i < p->ndialogs; i++) {
            out[i].type = strdup(p->dialogs[i].type ? p->dialogs[i].type : "");
            out[i].message = strdup(p->dialogs[i].message ? p->dialogs[i].message : "");
            out[i].accepted = p->dialogs[i].accepted;
        }
    *n = out ? p->ndialogs : 0;
    cdp__unlock(p->b);
    *dialogs = out;
    return out ? 0 : CDP_EFAIL;
}

void cdp_dialogs_free(cdp_dialog *dialogs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(dialogs[i].type);
        free(dialogs[i].message);
    }
    free(dialogs);
}

int cdp_page_exceptions(cdp_page *p, char ***messages, size_t *n)
{
    cdp__lock(p->b);
    char **out = calloc(p->nexceptions ? p->nexceptions : 1, sizeof(*out));
    size_t k = 0;
    for (size_t i = 0; out && i < p->nexceptions; i++)
        if ((out[k] = strdup(p->exceptions[i])))
            k++;
    cdp__unlock(p->b);
    *messages = out;
    *n = k;
    return out ? 0 : CDP_EFAIL;
}

void cdp_strings_free(char **strings, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

/* ---- Network interception ------------------------------------------------ */

static void *intercept_main(void *arg)
{
    cdp_page *p = arg;
    pthread_mutex_lock(&p->icpt_mu);
    for (;;) {
        while (!p->icpt_head && !p->icpt_stop)
            pthread_cond_wait(&p->icpt_cv, &p->icpt_mu);
        if (p->icpt_stop)
            break;
        struct paused *q = p->icpt_head;
        p->icpt_head = q->next;
        if (!p->icpt_head)
            p->icpt_tail = NULL;
        pthread_mutex_unlock(&p->icpt_mu);
        cdp_intercept_fn fn = p->icpt_fn;
        if (fn && !cdp_session_detached(q->s)) {
            cdp_request req;
            cdp__request_view(q->params, &req);
            fn(q->s, &req, p->icpt_ud);
        }
        cdp_session_unref(q->s);
        cJSON_Delete(q->params);
        free(q);
        pthread_mutex_lock(&p->icpt_mu);
    }
    pthread_mutex_unlock(&p->icpt_mu);
    return NULL;
}

int cdp_page_intercept(cdp_page *p, int response_stage, cdp_intercept_fn fn, void *ud, char *err)
{
    if (p->icpt_running)
        return pt_errf(err, "this page is already intercepted"), CDP_EFAIL;
    cJSON *params = cJSON_CreateObject(), *pats = cJSON_AddArrayToObject(params, "patterns");
    cJSON *pat = cJSON_CreateObject();
    cJSON_AddStringToObject(pat, "urlPattern", "*");
    cJSON_AddStringToObject(pat, "requestStage", response_stage ? "Response" : "Request");
    cJSON_AddItemToArray(pats, pat);
    char *json = cJSON_PrintUnformatted(params);
    pthread_mutex_init(&p->icpt_mu, NULL);
    pthread_cond_init(&p->icpt_cv, NULL);
    p->icpt_stop = 0;
    if (!json || pthread_create(&p->icpt_thread, NULL, intercept_main, p) != 0) {
        free(json);
        cJSON_Delete(params);
        pthread_mutex_destroy(&p->icpt_mu);
        pthread_cond_destroy(&p->icpt_cv);
        return pt_errf(err, "cannot start intercepting"), CDP_EFAIL;
    }
    p->icpt_running = 1;
    cdp__lock(p->b);
    p->icpt_patterns = json;
    p->icpt_ud = ud;
    p->icpt_fn = fn;
    /* sessions already attached (the page's own; frames made so far) */
    size_t n = p->nsubs;
    cdp_session **ss = calloc(n ? n : 1, sizeof(*ss));
    for (size_t i = 0; ss && i < n; i++)
        ss[i] = cdp_session_ref(p->subs[i].s);
    cdp__unlock(p->b);
    int rc = 0;
    for (size_t i = 0; ss && i < n; i++) {
        if (!rc)
            rc = cdp__call(ss[i], "Fetch.enable", cJSON_Duplicate(params, 1), NULL, CALL_TIMEOUT,
                           err);
        cdp_session_unref(ss[i]);
    }
    free(ss);
    cJSON_Delete(params);
    return rc;
}

int cdp_page_network(cdp_page *p, cdp_net_fn fn, void *ud, char *err)
{
    cdp__lock(p->b);
    p->net_ud = ud;
    p->net_fn = fn;
    /* sessions already attached (the page's own; frames made so far) */
    size_t n = p->nsubs;
    cdp_session **ss = calloc(n ? n : 1, sizeof(*ss));
    for (size_t i = 0; ss && i < n; i++)
        ss[i] = cdp_session_ref(p->subs[i].s);
    cdp__unlock(p->b);
    int rc = ss ? 0 : (pt_errf(err, "out of memory"), CDP_EFAIL);
    for (size_t i = 0; ss && i < n; i++) {
        if (!rc)
            rc = cdp__call(ss[i], "Network.enable", NULL, NULL, CALL_TIMEOUT, err);
        cdp_session_unref(ss[i]);
    }
    free(ss);
    return rc;
}
