/*
 * cdp_internal.h - what the files of cdp/ share with each other (and with
 * the unit tests), never with other modules.
 *
 * conn.c   the message core: ids, pending calls, sessions, events, waiters,
 *          reassembly. Knows nothing of sockets, so tests drive it directly.
 * ws.c     the transports (the pipe to a launched Chromium, the websocket
 *          to a remote one) and the service thread.
 * launch.c spawning and stopping Chromium.
 * page.c   contexts, pages, frames, navigation, evaluation, screenshots,
 *          dialogs, and the queue of paused requests.
 * handle.c element handles: calling functions on them, their frames, files.
 * input.c  mouse, keys and inserted text.
 * intercept.c answering paused requests (continue, fulfil, fail, body).
 */
#ifndef PORTIER_CDP_INTERNAL_H
#define PORTIER_CDP_INTERNAL_H

#include "cdp/cdp.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes kept free before each outgoing message for the websocket header
 * (libwebsockets' LWS_PRE; ws.c checks that this is enough). */
#define CDP_PRE 16

typedef struct cdp_outmsg {
    struct cdp_outmsg *next;
    size_t len;
    unsigned char data[]; /* CDP_PRE spare bytes, then len bytes of JSON */
} cdp_outmsg;

typedef struct cdp_listener {
    struct cdp_listener *next;
    int id;
    char *method; /* NULL: all */
    cdp_event_fn fn;
    void *ud;
} cdp_listener;

typedef struct cdp_evq {
    struct cdp_evq *next;
    cJSON *params;
} cdp_evq;

struct cdp_waiter {
    struct cdp_waiter *next;
    cdp_session *s;
    char *method;
    cdp_event_match match;
    void *ud;
    cdp_evq *head, *tail;
    pthread_cond_t cond;
};

typedef struct cdp_pending {
    struct cdp_pending *next;
    int id;
    cdp_session *s;
    cJSON *reply; /* set by the service thread */
    int done;
    int rc;
    char err[CDP_ERR_MAX];
    char method[64]; /* for messages */
    int notify;      /* also broadcast b->changed when done (cdp__call_begin) */
    pthread_cond_t cond;
} cdp_pending;

struct cdp_session {
    cdp_session *next; /* in the browser's list while attached */
    cdp_browser *b;
    int refs;
    int detached;
    char why[128]; /* why it detached */
    char *id;      /* NULL for the browser session */
    char *target_id;
    char *target_type;
    cdp_listener *listeners;
    cdp_waiter *waiters;
    void *owner; /* page.c: the cdp_page this session belongs to */
};

/* How the core reaches its transport: wake the service thread so it sends
 * what is queued. Called with the browser lock held. */
typedef struct cdp_transport {
    void (*wake)(cdp_browser *b);
} cdp_transport;

struct cdp_browser {
    pthread_mutex_t mu; /* recursive: listeners may call cdp_send/cdp_on */
    const cdp_transport *transport;
    int next_id;
    cdp_pending *pending;
    cdp_outmsg *out_head, *out_tail;
    cdp_session root;
    cdp_session *sessions; /* attached child sessions */
    int next_listener;
    /* reassembly of incoming messages, on the service thread only */
    pt_buf rx;
    size_t max_message;
    int rx_skipping;
    int rx_skip_id;
    /* the end */
    int gone;
    int gone_code;
    char gone_msg[CDP_ERR_MAX];
    /* transport and process, owned by ws.c and launch.c */
    pthread_t thread;
    int have_thread;
    pthread_t service_tid; /* for refusing cdp_call on the service thread */
    pthread_cond_t state_cond;
    /* broadcast on every page-level event and when the browser goes: what
     * page.c waits on (frames, lifecycle), so no wait outlives the browser */
    pthread_cond_t changed;
    int state; /* 0 starting, 1 ready, -1 failed */
    char start_err[CDP_ERR_MAX];
    int stop;
    void *lws_ctx;
    void *wsi;    /* the websocket (cdp_connect), or the pipe's write end */
    char *ws_url; /* NULL for a launched browser: it has no port */
    /* the pipe to a launched browser: our ends (-1 once lws owns them or
     * without one), and the message being written, from byte wr_off */
    int pipe_rd, pipe_wr;
    int piped;
    cdp_outmsg *wr_msg;
    size_t wr_off;
    cdp_launch_options launch;
    int launching;
    pid_t pid;
    int pid_reaped;
    int exit_status;
    char *tmpdir;
};

/* conn.c */
/* Initialises the core of a zeroed browser. */
int cdp__conn_init(cdp_browser *b, const cdp_transport *t);
/* Frees what the core holds. No thread may use b any more. */
void cdp__conn_destroy(cdp_browser *b);
void cdp__lock(cdp_browser *b);
void cdp__unlock(cdp_browser *b);
/* Feeds one received chunk. `final` ends the message. Service thread. */
void cdp__rx(cdp_browser *b, const void *data, size_t len, int final);
/* Feeds bytes of the pipe transport, where each message ends with a NUL
 * byte (any number of messages and parts of one). Service thread. */
void cdp__rx_framed(cdp_browser *b, const void *data, size_t len);
/* Handles one complete message. Service thread (or a test). */
void cdp__dispatch(cdp_browser *b, const char *json, size_t len);
/* Pops the next queued outgoing message (caller frees), or NULL. */
cdp_outmsg *cdp__next_out(cdp_browser *b);
int cdp__has_out(cdp_browser *b);
/* Marks the connection gone: every pending call and waiter fails at once
 * with msg; later calls fail the same way. The first call wins. */
void cdp__conn_gone(cdp_browser *b, int code, const char *msg);
/* The attached session with this id (not a new reference), or NULL. */
cdp_session *cdp__session_find(cdp_browser *b, const char *session_id);
/* Finds or creates the attached session with this id (not a new reference):
 * for replies to Target.attachToTarget that overtake their event. */
cdp_session *cdp__session_attach(cdp_browser *b, const char *session_id, const char *target_id,
                                 const char *type);
/* Initialises a pthread condition variable on CLOCK_MONOTONIC. */
/* Waits on c (b->mu held once) until the monotonic deadline; 0 or ETIMEDOUT. */
int cdp__cond_wait_until(cdp_browser *b, pthread_cond_t *c, const struct timespec *deadline);

/* A call in flight: sent at once, its reply collected later (page.c's
 * screenshots, off the caller's critical path). When it is done, p->done
 * is set under b->mu and b->changed is broadcast, so a wait on b->changed
 * can watch it beside page events. *out is the caller's: end it with
 * cdp__call_finish, exactly once. Takes params. */
int cdp__call_begin(cdp_session *s, const char *method, cJSON *params, cdp_pending **out,
                    char *err);
/* Waits up to timeout_ms (0: not at all) for p's reply, returns as
 * cdp_call does, and frees p. A reply that comes later is dropped. */
int cdp__call_finish(cdp_pending *p, cJSON **result, int timeout_ms, char *err);

/* page.c */
/* Before input or a navigation changes the page: lets a screenshot in
 * flight be answered first (bounded), so the picture shows the page as it
 * was when the capture began. */
void cdp__page_fence(cdp_page *p);

/* cdp_call, counted for cdp_calls_here (handle.c): page.c, handle.c and
 * input.c make their round trips through it or count them. */
int cdp__call(cdp_session *s, const char *method, cJSON *params, cJSON **result, int timeout_ms,
              char *err);
/* Counts one round trip made otherwise (calls sent back to back, then
 * waited for together). */
void cdp__count_round_trip(void);

/* handle.c */
struct cdp_handle {
    cdp_session *s; /* a reference: the session of the object's frame */
    char *oid;      /* its remote object id */
};
/* A handle to object_id in s (s gets a new reference; the id is copied),
 * or NULL when out of memory. */
cdp_handle *cdp__handle_new(cdp_session *s, const char *object_id);

/* cdp_page_frame_context, and the object of function fn (its source, in
 * static storage) installed in that context by cdp__page_fn_keep, if it
 * was (*oid, a new string, else NULL). *gen names the frame's document as
 * it stood (0: it changed meanwhile): keep and forget act only while the
 * frame is still on it. A context's functions go with it: a new
 * document's context has none. */
int cdp__page_fn(cdp_page *p, const char *frame_id, const char *fn, cdp_session **session,
                 int *context_id, unsigned *gen, char **oid, int timeout_ms, char *err);
/* Keeps oid as fn's object in the frame's context, if the frame is still
 * on document gen of session s (else the document changed meanwhile, and
 * it is dropped). */
void cdp__page_fn_keep(cdp_page *p, const char *frame_id, cdp_session *s, unsigned gen,
                       const char *fn, const char *oid);
/* Forgets fn's object in the frame (one the browser no longer has), if the
 * frame is still on document gen. */
void cdp__page_fn_forget(cdp_page *p, const char *frame_id, unsigned gen, const char *fn);

/* intercept.c */
/* A view of Fetch.requestPaused params (borrowed: valid while params is). */
void cdp__request_view(const cJSON *params, cdp_request *req);
/* A view of a Network event, or of the Page load events cdp_page_network
 * forwards: 0, or -1 if method is none of them (borrowed like the above). */
int cdp__net_view(const char *method, const cJSON *params, cdp_net_event *ev);

/* launch.c */
/* Starts Chromium per b->launch; sets b->pid, b->tmpdir and the pipe's
 * ends b->pipe_rd and b->pipe_wr (non-blocking; the caller owns them).
 * Called on the service thread, which lives as long as the browser. */
int cdp__spawn(cdp_browser *b, char *err);
/* Reaps the browser if it has exited, waiting up to wait_ms. Returns 1 if
 * it has (b->exit_status holds the wait status), else 0. */
int cdp__reap(cdp_browser *b, int wait_ms);
/* Stops the browser's process group and removes its profile. */
void cdp__terminate(cdp_browser *b);
/* "browser exited (signal 9)" and the like, from b->exit_status. */
void cdp__describe_exit(cdp_browser *b, char *out, size_t outsz);

#endif
