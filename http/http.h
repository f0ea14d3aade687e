/*
 * http.h - Portier's HTTP/1.1 server: the layer under the task API and the
 * sandbox portal.
 *
 * libwebsockets accepts connections and parses requests on one service
 * thread; handlers run on a pool of worker threads, so a slow handler (a
 * store write, the sandbox's simulated latency) never stalls the others.
 * Request bodies are held in memory up to a cap (413 past it), and only once
 * the owner's admit hook took the headers; multipart is parsed here, never
 * by lws (see DESIGN.md). The layer is strict, and says so as soon as the
 * offending line arrives: 400 for a malformed or conflicting
 * Content-Length, a NUL in a header, or a header line that is not
 * "Name: value"; 431 for header lines over 16 KiB in all (every byte
 * counts); 414 for a URL over 8 KiB. Connections are kept alive (HTTP/1.1),
 * pipelined requests answered in order.
 *
 * A handler reads the request through the accessors below and fills the
 * response; everything it is given is borrowed and valid only during the
 * call.
 */
#ifndef PORTIER_HTTP_H
#define PORTIER_HTTP_H

#include <stddef.h>

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef void (*http_handler)(http_request *req, void *ud);
/* Decides, from a request's line and headers alone, whether its body is read
 * at all: 0 to go on (read the body, then the handler), anything else after
 * filling the reply (http_reply_error): it is sent at once, the connection
 * closes, and not one byte of the body is read into memory or a spool.
 * Runs on the service thread: it must be quick (no waiting on anything
 * slow). ud is the handler's. */
typedef int (*http_admit)(http_request *req, void *ud);

typedef struct http_options {
    const char *host; /* address to listen on; NULL: 127.0.0.1 */
    int port;         /* 0: a free port (see http_port) */
    int workers;      /* handler threads; 0: 4 */
    size_t max_body;  /* bytes; 0: 25 MiB */
    /* multipart/form-data bodies: with spool_dir set, they are parsed as they
     * arrive (http/multipart.c), file parts written to a folder under
     * spool_dir and other parts kept as form values; the handler sees
     * http_form_*() and no body. 400 for a malformed body (with its byte
     * offset), 413 past a cap. NULL: multipart is a body like any other. */
    const char *spool_dir;
    size_t max_file;  /* bytes per file part; 0: max_body */
    size_t max_parts; /* 0: 64 */
    http_admit admit; /* NULL: every request's body is read */
    /* Per-connection limits (docs/limits.md): a request's line and
     * headers must be in within header_timeout_ms of the connection opening
     * or of the previous response (so an idle keep-alive connection closes
     * then too); a body must arrive at min_body_rate bytes a second or more,
     * measured over each 5-second window; a client address holds at most
     * max_conns_per_peer connections (more are closed as they arrive). */
    int header_timeout_ms;  /* 0: 10000 */
    size_t min_body_rate;   /* bytes/s; 0: 1024 */
    int max_conns_per_peer; /* 0: 64 */
} http_options;

/* Starts listening; every request goes to handler(req, ud). On success *out
 * is a new server (http_stop frees it). */
int http_start(const http_options *opts, http_handler handler, void *ud, http_server **out,
               char *err);
int http_port(const http_server *s);
/* Stops accepting, waits for running handlers, closes every connection. */
void http_stop(http_server *s);

/* ---- The route table ---------------------------------------------------
 *
 * A server lists what it answers once, as a table, and the layer picks the
 * handler: the first route (in table order) whose method and path match.
 * A path segment written {name} matches any one non-empty segment
 * ("/tasks/{id}/input" takes "/tasks/42/input"); the handler reads it from
 * http_path if it needs it.
 * A path no route has is answered 404; a path that routes have, but not for
 * this method, 405 with an Allow header naming their methods ("GET, POST").
 * How those two are written is the owner's (reject); by default they are
 * {"error":"not_found"|"method_not_allowed","message":...}.
 *
 *   static const http_route routes[] = {
 *       {"GET", "/healthz", healthz},
 *       {"POST", "/tasks", create_task},
 *       {"GET", "/tasks/{id}", get_task, .head = 1},
 *       {"GET", "/static/", static_file, HTTP_PREFIX},
 *   };
 *   http_router rt = {routes, sizeof(routes) / sizeof(routes[0]), NULL};
 *   http_start_router(&opts, &rt, service, &server, err);
 */

enum http_match {
    HTTP_EXACT = 0, /* the path is the whole path */
    HTTP_PREFIX,    /* the path is how it starts ("/static/" takes "/static/a.css") */
};

typedef struct http_route {
    const char *method;   /* "GET", "POST", ...: matched exactly (a HEAD route is its own) */
    const char *path;     /* decoded, without the query, as http_path() gives it */
    http_handler handler; /* called with the router's ud */
    enum http_match match;
    int head; /* 1: HEAD runs it too (with no body sent); Allow still names only method */
} http_route;

/* Answers a request that no route takes. status is 404 (no route has that
 * path) or 405 (allow names the methods routes have for it; the Allow header
 * is already set). Borrowed: allow is valid during the call. */
typedef void (*http_reject)(http_request *r, int status, const char *allow, void *ud);

typedef struct http_router {
    const http_route *routes; /* borrowed: must outlive every server using it */
    size_t nroutes;
    http_reject reject; /* NULL: http_reject_json */
} http_router;

/* Runs the route that takes r, with ud; else rejects it (404 or 405).
 * Returns PT_FOUND if a route ran, PT_NONE if it was rejected. For a server
 * that does some work of its own before routing. */
int http_route_request(const http_router *rt, http_request *r, void *ud);
/* The default reject: 404 {"error":"not_found","message":"no route PATH"},
 * 405 {"error":"method_not_allowed","message":"M PATH: allowed methods are
 * ALLOW"}. ud is unused. */
void http_reject_json(http_request *r, int status, const char *allow, void *ud);
/* http_start, with every request routed by rt (copied; its routes are
 * borrowed) and its handlers given ud. */
int http_start_router(const http_options *opts, const http_router *rt, void *ud, http_server **out,
                      char *err);

/* ---- The request (borrowed strings, valid during the handler) ---------- */

const char *http_method(const http_request *r); /* "GET", "POST", ... */
const char *http_path(const http_request *r);   /* decoded, without the query */
/* A query argument's decoded value, or NULL. */
const char *http_query(const http_request *r, const char *name);
/* The name of the i-th query argument in the order sent (repeats included),
 * or NULL past the last. */
const char *http_query_name(const http_request *r, size_t i);
/* A header's value (name case-insensitive), or NULL. */
const char *http_header(const http_request *r, const char *name);
/* The request's media type is exactly type (case-insensitive; parameters
 * such as "; charset=utf-8" allowed, "application/jsonx" is not
 * "application/json"). */
int http_type_is(const http_request *r, const char *type);
/* The body's length as the Content-Length header announced it (0 without
 * one); what admit may judge before any of it is read. */
size_t http_content_length(const http_request *r);
/* A cookie's value, or NULL. */
const char *http_cookie(const http_request *r, const char *name);
const char *http_body(const http_request *r, size_t *len); /* NUL-terminated */
/* The peer's address, for logs. */
const char *http_peer(const http_request *r);

/* A multipart/form-data request (with spool_dir): its parts. */
typedef struct http_file {
    const char *field;        /* the part's name, "files" */
    const char *filename;     /* as the client sent it (untrusted) */
    const char *content_type; /* may be NULL */
    const char *path;         /* where it was spooled (enciphered: read it
                                 with http_file_read); deleted after the
                                 handler unless moved away */
    size_t size;
    struct pt_stream *spool; /* the spool's cipher (util/crypto.h): its key
                                lives in this request's memory only */
} http_file;
/* The spooled file's bytes, deciphered: a new buffer (*data, *len; the
 * caller frees it). 0 or -1. */
int http_file_read(const http_file *f, char **data, size_t *len);
int http_is_form(const http_request *r);
/* A non-file part's value (the first with that name), or NULL. */
const char *http_form_value(const http_request *r, const char *name);
size_t http_form_nfiles(const http_request *r);
const http_file *http_form_file(const http_request *r, size_t i);

/* ---- The response ------------------------------------------------------ */

void http_set_status(http_request *r, int status);
/* Adds a header (both strings copied); Set-Cookie may be added many times. */
void http_add_header(http_request *r, const char *name, const char *value);
void http_set_type(http_request *r, const char *content_type);
void http_write(http_request *r, const void *data, size_t len);
void http_printf(http_request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* status, Content-Type: application/json, and the text as the body. */
void http_reply_json(http_request *r, int status, const char *json);
/* {"error": code, "message": message} with that status. */
void http_reply_error(http_request *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
