/*
 * cdp.h - a Chrome DevTools Protocol client: Portier's only way to a browser.
 *
 * It owns launching Chromium (or connecting to one that runs elsewhere), the
 * websocket to it, command ids and replies, events, flattened sessions,
 * browser contexts, pages, frames (out-of-process iframes included),
 * navigation, evaluation, screenshots, JS dialogs, input (mouse, keys,
 * text), element handles and network interception: every protocol method
 * and event name is spelled inside cdp/ and nowhere else.
 *
 * It knows nothing of SOPs, tasks, HTTP or storage, and never will.
 *
 * Threads: each browser has one service thread (libwebsockets lives there and
 * nowhere else). Any other thread may call cdp_call() and friends at once;
 * they block until the reply, the timeout, or the browser's end. Event
 * listeners (cdp_on) run on the service thread: they must not block and must
 * not call cdp_call(); they may call cdp_send(), cdp_on() and cdp_off().
 *
 * Errors: functions return 0 or a negative CDP_E* code (util/err.h's codes,
 * see enum cdp_error), look-ups PT_FOUND or PT_NONE, and fill `err` (a
 * buffer of CDP_ERR_MAX bytes, or NULL) with a message that says what failed:
 * "Page.navigate: Cannot navigate to invalid URL (-32000)", "browser exited
 * (signal 9)", "Runtime.evaluate: no reply within 15000 ms".
 */
#ifndef PORTIER_CDP_H
#define PORTIER_CDP_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "util/err.h"

#define CDP_ERR_MAX PT_ERR_MAX
/* Largest message accepted from the browser (a full-page screenshot of a
 * long form is tens of MB; nothing legitimate comes near this). */
#define CDP_MAX_MESSAGE (256u << 20)

/* The codes of util/err.h, named for what they mean here, and two of
 * cdp's own. */
enum cdp_error {
    CDP_OK = PT_OK,
    CDP_EFAIL = PT_EFAIL,       /* anything else: launch failed, bad argument, ... */
    CDP_ETIMEOUT = PT_ETIMEOUT, /* no reply (or no event) within the timeout */
    CDP_EGONE = PT_ECLOSED,     /* the browser exited or the connection closed */
    CDP_ETOOBIG = PT_ELIMIT,    /* the reply exceeded CDP_MAX_MESSAGE */
    CDP_EDETACHED = PT_EGONE,   /* the session's target closed, crashed or detached */
    CDP_EPROTOCOL = -20,        /* the browser answered with an error */
    CDP_EJS = -21,              /* evaluated script threw */
    CDP_ECONTEXT = -22,         /* the call named an execution context that a
                                   navigation destroyed: worth a retry */
    CDP_ENOOBJECT = -23,        /* the call named a remote object that is no
                                   more (released, or its context gone) */
};

typedef struct cdp_browser cdp_browser;
typedef struct cdp_session cdp_session;
typedef struct cdp_waiter cdp_waiter;
typedef struct cdp_page cdp_page;

/* ---- Browsers ---------------------------------------------------------- */

typedef struct cdp_launch_options {
    const char *executable;        /* NULL: $PORTIER_CHROMIUM, else "chromium" on PATH */
    const char *const *extra_args; /* NULL or NULL-terminated extra flags */
    int startup_timeout_ms;        /* 0: 30000 */
    int keep_stderr;               /* copy Chromium's stderr to ours (debugging) */
} cdp_launch_options;

/* Launches a headless Chromium with a fresh profile in its own process group,
 * set to die with the calling process, and drives it over a pipe
 * (--remote-debugging-pipe: no TCP port is open). The profile is
 * removed by cdp_close(). `opts` may be NULL. On success *out is a new
 * browser the caller closes with cdp_close(). */
int cdp_launch(const cdp_launch_options *opts, cdp_browser **out, char *err);

/* Connects to a browser already running at ws_url
 * ("ws://127.0.0.1:9222/devtools/browser/<id>"). cdp_close() disconnects
 * and leaves that browser running. */
int cdp_connect(const char *ws_url, cdp_browser **out, char *err);

/* cdp_connect(ws_url) when ws_url is non-NULL, else cdp_launch(NULL). */
int cdp_open(const char *ws_url, cdp_browser **out, char *err);

/* Disconnects, stops a launched browser (its whole process group) and
 * removes its profile. Pending calls fail with CDP_EGONE. NULL is a no-op. */
void cdp_close(cdp_browser *b);

/* Gives up on the browser from any thread (not a signal handler): every
 * pending and later call fails at once with CDP_EGONE and `why`. The caller
 * still calls cdp_close(). For Ctrl-C and shutdown. */
void cdp_abort(cdp_browser *b, const char *why);

/* The launched browser's pid, or 0 when connected to a remote one. */
int cdp_browser_pid(const cdp_browser *b);
/* The websocket URL of a browser from cdp_connect (borrowed, valid until
 * cdp_close()), or NULL for a launched one: it is driven over a pipe and
 * opens no port. */
const char *cdp_browser_ws_url(const cdp_browser *b);
/* 1 once the browser has gone (why, if asked: CDP_ERR_MAX bytes), else 0. */
int cdp_browser_gone(cdp_browser *b, char *why);
/* The browser-level session (Target.*, Browser.*). Borrowed. */
cdp_session *cdp_browser_session(cdp_browser *b);

/* ---- Commands ---------------------------------------------------------- */

/* Sends method with params on session s and waits up to timeout_ms for the
 * reply. Takes ownership of params (may be NULL). On success, if result is
 * not NULL, *result is the reply's "result" object, which the caller frees
 * with cJSON_Delete. Must not be called from an event listener. */
int cdp_call(cdp_session *s, const char *method, cJSON *params, cJSON **result, int timeout_ms,
             char *err);

/* How many round trips (calls that waited for a reply) page.c, handle.c
 * and input.c made on the calling thread so far: what a step or a run costs
 * in protocol calls, for PORTIER_LOG=debug and the bench. */
unsigned long cdp_calls_here(void);

/* Sends without waiting; the reply is dropped. Takes ownership of params.
 * Safe from listeners. Returns 0 or CDP_EGONE/CDP_EDETACHED. */
int cdp_send(cdp_session *s, const char *method, cJSON *params);

/* ---- Events ------------------------------------------------------------ */

/* Called on the service thread with the event's params (borrowed). */
typedef void (*cdp_event_fn)(cdp_session *s, const char *method, const cJSON *params, void *ud);
/* Decides whether a waiter wants an event; runs on the service thread. */
typedef int (*cdp_event_match)(const cJSON *params, void *ud);

/* Calls fn for every event of `method` (NULL: every event) on s. Returns a
 * listener id (> 0) for cdp_off(), or a negative code. */
int cdp_on(cdp_session *s, const char *method, cdp_event_fn fn, void *ud);
void cdp_off(cdp_session *s, int listener_id);

/* Starts collecting events of `method` on s that `match` accepts (NULL: all).
 * Begin before the command that causes the event, so none is missed. */
cdp_waiter *cdp_wait_begin(cdp_session *s, const char *method, cdp_event_match match, void *ud);
/* Takes the next collected event, waiting up to timeout_ms. *params is new
 * (caller frees). CDP_ETIMEOUT, CDP_EGONE or CDP_EDETACHED otherwise. */
int cdp_wait_next(cdp_waiter *w, int timeout_ms, cJSON **params, char *err);
/* Stops collecting and frees w. NULL is a no-op. */
void cdp_wait_end(cdp_waiter *w);

/* ---- Sessions ---------------------------------------------------------- */

/* Sessions are reference counted; one reference is held while attached. */
cdp_session *cdp_session_ref(cdp_session *s);
void cdp_session_unref(cdp_session *s);
const char *cdp_session_id(const cdp_session *s);          /* NULL for the browser */
const char *cdp_session_target_id(const cdp_session *s);   /* NULL for the browser */
const char *cdp_session_target_type(const cdp_session *s); /* "page", "iframe", ... */
cdp_browser *cdp_session_browser(const cdp_session *s);
int cdp_session_detached(cdp_session *s);

/* ---- Contexts, pages, frames ------------------------------------------- */

/* Creates an isolated browser context (own cookies, storage, cache).
 * *id is a new string the caller frees. */
int cdp_context_create(cdp_browser *b, char **id, char *err);
int cdp_context_dispose(cdp_browser *b, const char *id, char *err);

/* Opens about:blank in context_id (NULL: the default context), attached with
 * flattened sessions and auto-attach to its iframes, recursively. JS dialogs
 * are answered (accepted by default) and recorded. Free with cdp_page_close. */
int cdp_page_open(cdp_browser *b, const char *context_id, cdp_page **out, char *err);
/* Closes the target and frees p. NULL is a no-op. */
void cdp_page_close(cdp_page *p);
/* The page's top-level session. Borrowed; valid until cdp_page_close. */
cdp_session *cdp_page_session(cdp_page *p);
/* The top frame's id. Borrowed. */
const char *cdp_page_main_frame(cdp_page *p);

enum {
    CDP_WAIT_LOAD = 1,         /* the load event */
    CDP_WAIT_NETWORK_IDLE = 2, /* no request in flight for 500 ms */
};
/* Navigates the top frame and waits as flags say. A URL that fails to load
 * (connection refused, DNS) is an error naming the URL and the reason. */
int cdp_page_navigate(cdp_page *p, const char *url, unsigned flags, int timeout_ms, char *err);
/* Waits for the top frame's current document to reach `flags`. */
int cdp_page_wait_load(cdp_page *p, unsigned flags, int timeout_ms, char *err);

/* Evaluates expr in the main world of frame_id (NULL: the top frame),
 * awaiting a promise, and returns its value as JSON (*value new; the caller
 * frees; undefined becomes null). A throw is CDP_EJS with its message. */
int cdp_page_eval(cdp_page *p, const char *frame_id, const char *expr, cJSON **value,
                  int timeout_ms, char *err);

/* A count that goes up whenever Chromium reports something after which one
 * of the page's documents may look different: a document created or
 * destroyed, a frame attached, navigated or detached, a lifecycle event of
 * the top frame (DOMContentLoaded, load, network idle, ...), a dialog. */
unsigned long cdp_page_changes(cdp_page *p);

/* Waits at most timeout_ms for something that may change what a script in
 * frame_id (NULL: the top frame) sees. Returns at once when the page's
 * count of changes is no longer `since` (taken before the caller last
 * looked); while the frame has no document, waits for the page's events;
 * else calls fn (a function's source in static storage, as
 * cdp_page_call_kept does, with args: taken) there, which is to return a
 * promise that settles on the first change it sees in its document or
 * after its own cap, at most timeout_ms.
 * A navigation that destroys the document ends the call at once: that is a
 * change too. 0 however the wait ended, or CDP_EGONE / CDP_EDETACHED (err)
 * when the browser or the page is gone. */
int cdp_page_wait_change(cdp_page *p, const char *frame_id, unsigned long since, const char *fn,
                         cJSON *args, int timeout_ms, char *err);

typedef struct cdp_frame {
    char *id;
    char *parent_id; /* NULL for the top frame */
    char *url;
    char *name;
    int out_of_process; /* runs in a separate target (cross-site iframe) */
} cdp_frame;

/* A snapshot of the page's frames, top first. Free with cdp_frames_free. */
int cdp_page_frames(cdp_page *p, cdp_frame **frames, size_t *n);
void cdp_frames_free(cdp_frame *frames, size_t n);

/* The id of the frame that the <iframe>/<frame> matched by css inside
 * frame_id (NULL: top) shows. Waits up to timeout_ms for the element and its
 * frame to exist. *child_id is new; the caller frees. */
int cdp_page_child_frame(cdp_page *p, const char *frame_id, const char *css, char **child_id,
                         int timeout_ms, char *err);

/* The session that owns frame_id and the id of that frame's main-world
 * execution context, waiting up to timeout_ms for the context to exist.
 * *session is a new reference (cdp_session_unref). */
int cdp_page_frame_context(cdp_page *p, const char *frame_id, cdp_session **session,
                           int *context_id, int timeout_ms, char *err);

/* 1 while the top frame navigates: a navigation was requested or a new
 * document is loading and has not finished (its load event, its frames'),
 * else 0. */
int cdp_page_navigating(cdp_page *p);
/* Waits (on events, not polling) until the top frame is not navigating; 0
 * at once when it is not. CDP_ETIMEOUT saying what it still waits for, or
 * CDP_EGONE. A wait over a second is logged at debug. */
int cdp_page_wait_navigation(cdp_page *p, int timeout_ms, char *err);

/* Captures a PNG of the viewport (full_page: the whole document). *png is
 * new (free()). A navigation in the way is waited for, within timeout_ms
 * (cdp_page_capture_begin). */
int cdp_page_screenshot(cdp_page *p, int full_page, unsigned char **png, size_t *len,
                        int timeout_ms, char *err);

/* A screenshot in flight: sent, its picture collected later, so the caller
 * goes on meanwhile. */
typedef struct cdp_capture cdp_capture;
/* Starts capturing the viewport (full_page: the whole document) as JPEG
 * at quality 1-100, or PNG when quality is 0. Waits first for a navigation
 * of the top frame to load (Chromium does not answer a capture sent while
 * it navigates). timeout_ms bounds everything up to cdp_capture_finish.
 * Until then, input to p and navigations wait (up to 3 s) for the picture,
 * so it shows the page as it was when begun. *out is new: end it with
 * cdp_capture_finish, before cdp_page_close. */
int cdp_page_capture_begin(cdp_page *p, int full_page, int quality, int timeout_ms,
                           cdp_capture **out, char *err);
/* Waits for c's picture until its deadline. A navigation that overtakes
 * the capture makes it wait for the new document and capture again (up to
 * three sends in all). *img is new (free()); frees c, on failure too. */
int cdp_capture_finish(cdp_capture *c, unsigned char **img, size_t *len, char *err);

/* How the page answers alert/confirm/prompt/beforeunload from now on. */
void cdp_page_set_dialog_answer(cdp_page *p, int accept, const char *prompt_text);
/* Forgets the dialogs and exceptions recorded so far and answers dialogs as
 * a new page does: for a page that one run hands to the next (a kept
 * session), so nothing of the last run is reported as this one's. */
void cdp_page_forget(cdp_page *p);

typedef struct cdp_dialog {
    char *type; /* alert, confirm, prompt, beforeunload */
    char *message;
    int accepted;
} cdp_dialog;
/* A copy of the dialogs seen so far, oldest first. Free with cdp_dialogs_free. */
int cdp_page_dialogs(cdp_page *p, cdp_dialog **dialogs, size_t *n);
void cdp_dialogs_free(cdp_dialog *dialogs, size_t n);

/* Uncaught exceptions thrown by any frame of the page so far, oldest first
 * ("TypeError: x is undefined at http://...:12"). Free with
 * cdp_strings_free. */
int cdp_page_exceptions(cdp_page *p, char ***messages, size_t *n);
void cdp_strings_free(char **strings, size_t n);

/* ---- Element handles (handle.c) ---------------------------------------- */

/* A reference to an object in one of the page's frames (an element, most
 * often), valid until its document goes away. Opaque; release it. */
typedef struct cdp_handle cdp_handle;

/* What a function called in the page gave back. */
typedef struct cdp_value {
    cJSON *value;       /* by value: the value (null for undefined); with
                           CDP_RETURN_HANDLE: a primitive's value, else NULL;
                           with CDP_RETURN_BOTH: the value, always */
    cdp_handle *handle; /* with CDP_RETURN_HANDLE or _BOTH: the object, else
                           NULL */
} cdp_value;

enum {
    CDP_RETURN_HANDLE = 1, /* return an object as a handle, not by value */
    CDP_RETURN_BOTH = 2,   /* an object as a handle and, in the same reply, its
                              JSON-like value (own enumerable properties, four
                              levels deep; DOM nodes and functions as null) */
};

/* Arguments for cdp_page_call and cdp_handle_call: a cJSON array whose
 * items are made by these. cdp_arg takes ownership of value (NULL: null);
 * cdp_arg_handle borrows h for as long as the array lives. */
cJSON *cdp_arg(cJSON *value);
cJSON *cdp_arg_handle(const cdp_handle *h);

/* Calls the JavaScript function `fn` (its source) with args (taken; may be
 * NULL) in the main world of frame_id (NULL: the top frame), waiting up to
 * timeout_ms for the frame's document, and awaits a returned promise. *out
 * is the caller's: cJSON_Delete(out->value), cdp_handle_release(out->handle).
 * A throw is CDP_EJS with the exception's description. */
int cdp_page_call(cdp_page *p, const char *frame_id, const char *fn, cJSON *args, unsigned flags,
                  cdp_value *out, int timeout_ms, char *err);
/* cdp_page_call for a function called often (dom.js: tens of kilobytes,
 * tens of calls a step): fn, in static storage, is installed once in each
 * document's context, and each call then sends only its arguments. The
 * installed function is held by the protocol, never by the page (no
 * global names it). The same outcomes as cdp_page_call. */
int cdp_page_call_kept(cdp_page *p, const char *frame_id, const char *fn, cJSON *args,
                       unsigned flags, cdp_value *out, int timeout_ms, char *err);
/* The same with `this` bound to h, in h's frame. Borrows h. */
int cdp_handle_call(const cdp_handle *h, const char *fn, cJSON *args, unsigned flags,
                    cdp_value *out, int timeout_ms, char *err);

/* The frame that the <iframe>/<frame> element h shows: PT_FOUND with
 * *frame_id (new; the caller frees), PT_NONE when h is not a frame element,
 * or a negative code. */
int cdp_handle_content_frame(const cdp_handle *h, char **frame_id, int timeout_ms, char *err);

/* Sets the files of the <input type=file> h (absolute paths, borrowed). */
int cdp_handle_set_files(const cdp_handle *h, const char *const *paths, size_t n, char *err);

/* Lets the browser free the object and frees h. NULL is a no-op. */
void cdp_handle_release(cdp_handle *h);

/* Evaluates expr in execution context context_id of session s (as
 * cdp_page_frame_context gives them), by value, not awaiting promises. *value
 * is new (the caller frees; undefined becomes null). A throw is CDP_EJS. */
int cdp_session_eval(cdp_session *s, int context_id, const char *expr, cJSON **value,
                     int timeout_ms, char *err);

/* ---- Input (input.c) ----------------------------------------------------
 * Real input to the page's top-level target, at points in its viewport:
 * Chromium routes it into frames (out-of-process ones too) itself. */

enum cdp_mouse_event { CDP_MOUSE_MOVE, CDP_MOUSE_PRESS, CDP_MOUSE_RELEASE };

/* One mouse event with the left button; clicks is the click count. */
int cdp_input_mouse(cdp_page *p, enum cdp_mouse_event type, double x, double y, int clicks,
                    char *err);
/* Moves to (x, y), presses and releases the left button there. */
int cdp_input_click(cdp_page *p, double x, double y, char *err);
/* Drags the files at paths (absolute) from outside the page and drops them
 * at (x, y), as a person drops files from their desktop: dragenter,
 * dragover and drop with the files in dataTransfer. */
int cdp_input_drop_files(cdp_page *p, double x, double y, const char *const *paths, size_t n,
                         char *err);

enum { CDP_MOD_ALT = 1, CDP_MOD_CTRL = 2, CDP_MOD_META = 4, CDP_MOD_SHIFT = 8 };

typedef struct cdp_key {
    char key[16];       /* the DOM key: "Enter", "a" */
    char code[16];      /* the DOM code: "Enter"; "" for none */
    char text[8];       /* what a key down types ("\r", "a"); "" for none */
    int key_code;       /* the Windows virtual key code */
    unsigned modifiers; /* CDP_MOD_* */
} cdp_key;

/* The key named `name` (case-insensitive): Enter, Tab, Escape, Backspace,
 * Delete, the arrows (ArrowDown ...), Home, End, PageUp, PageDown, Space, or
 * any one character. PT_FOUND with *k, or PT_NONE. */
int cdp_key_named(const char *name, cdp_key *k);

enum cdp_key_event { CDP_KEY_DOWN, CDP_KEY_UP };
/* One key event; a key down types k->text, a key up types nothing. */
int cdp_input_key(cdp_page *p, enum cdp_key_event type, const cdp_key *k, char *err);
/* A key down, then its key up. */
int cdp_input_press(cdp_page *p, const cdp_key *k, char *err);
/* Inserts text where the focus is, as an IME would (no key events). */
int cdp_input_insert_text(cdp_page *p, const char *text, char *err);
/* What the focused field holds replaced, as a person would: Ctrl+A, then
 * text inserted (or, for "", Delete), in order, waited for together. (Not
 * sent with the click that focuses the field: a field in another process's
 * frame takes keys only once the browser knows it has the focus.) */
int cdp_input_replace(cdp_page *p, const char *text, char *err);

/* ---- Network interception (intercept.c) ---------------------------------
 * On the page and on every frame of it, out-of-process ones included
 * (enabled before such a frame runs): every request pauses, at the request
 * stage or, with response_stage, once its response headers are in. fn gets
 * each paused request (borrowed for the call) with the session to answer
 * on, on a thread of the page's own, so it may block; it must answer the
 * request: continue, fulfil or fail it. Set it before the first navigation. */

typedef struct cdp_request {
    const char *id;                /* what the answers below name */
    const char *method;            /* "GET" */
    const char *url;               /* may be NULL */
    const char *post_data;         /* the request body, or NULL */
    const char *resource_type;     /* "Document", "XHR", ...; may be NULL */
    const cJSON *headers;          /* the request's: an object, name -> value */
    int has_response;              /* response stage, with a response: */
    int status;                    /*   its status code */
    const char *status_text;       /*   may be NULL */
    const cJSON *response_headers; /* [{"name", "value"}], or NULL; without
                                      Set-Cookie, which Chromium leaves out
                                      here (cdp_page_network has it) */
    const char *network_id;        /* the Network domain's requestId, or NULL */
} cdp_request;

typedef void (*cdp_intercept_fn)(cdp_session *s, const cdp_request *req, void *ud);
int cdp_page_intercept(cdp_page *p, int response_stage, cdp_intercept_fn fn, void *ud, char *err);

/* What the browser says about the page's requests and loads, from the
 * page and every frame of it (cdp_page_network): a request sent (its wall
 * time), its response (status and the browser's own timing, a
 * Network.ResourceTiming object), the response's raw headers (Set-Cookie
 * included, which interception leaves out), its body all in; and the top
 * document's DOMContentLoaded and load. Borrowed for the call. */
enum cdp_net_kind {
    CDP_NET_SENT,
    CDP_NET_RESPONSE,
    CDP_NET_RAW_HEADERS,
    CDP_NET_FINISHED,
    CDP_NET_DOM_CONTENT,
    CDP_NET_LOAD,
};
typedef struct cdp_net_event {
    enum cdp_net_kind kind;
    const char *request_id; /* as cdp_request.network_id; NULL for the loads */
    double wall_time;       /* SENT: seconds since the epoch */
    double timestamp;       /* monotonic seconds (all but RESPONSE and RAW_HEADERS) */
    int status;             /* RESPONSE, RAW_HEADERS */
    const cJSON *timing;    /* RESPONSE: the ResourceTiming, or NULL */
    const cJSON *headers;   /* RAW_HEADERS: an object, name -> value (repeats
                               joined by a line break) */
} cdp_net_event;
typedef void (*cdp_net_fn)(const cdp_net_event *ev, void *ud);
/* Sends fn those events, on the service thread (a listener: it must not
 * block). For a recorder: set it with the interception, before the first
 * navigation; it stays until the page closes. 0, or a negative code with
 * err. */
int cdp_page_network(cdp_page *p, cdp_net_fn fn, void *ud, char *err);

/* Lets the request go on to the network unchanged. */
int cdp_request_continue(cdp_session *s, const char *request_id, char *err);
/* Ends the request as a network failure. */
int cdp_request_fail(cdp_session *s, const char *request_id, char *err);
/* Answers the request: status and phrase (NULL: the standard one), headers
 * ([{"name", "value"}], borrowed; NULL: none) and body_b64 (the body in
 * base64, borrowed). */
int cdp_request_fulfil(cdp_session *s, const char *request_id, int status, const char *phrase,
                       const cJSON *headers, const char *body_b64, char *err);
/* The body of a paused response: *body new (the caller frees), *base64 set
 * when *body is base64 (binary), else it is the text itself. */
int cdp_request_body(cdp_session *s, const char *request_id, char **body, int *base64, char *err);

#endif
