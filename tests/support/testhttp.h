/*
 * testhttp.h - a tiny HTTP/1.1 server on loopback for tests that need pages.
 *
 * It serves fixed bodies by exact path (query strings ignored), each
 * optionally after a delay, with keep-alive, one thread per connection. It
 * listens on 127.0.0.1 and [::1] at the same port, so a page on 127.0.0.1
 * can frame one on localhost (a different site: Chromium puts it out of
 * process). Test-only: no limits beyond what tests need.
 */
#ifndef PT_TESTHTTP_H
#define PT_TESTHTTP_H

typedef struct th_server th_server;

/* Starts on a free port; NULL on failure. */
th_server *th_start(void);
int th_port(th_server *s);
/* Adds or replaces a route. body is copied (len bytes; -1: strlen). */
void th_route(th_server *s, const char *path, const char *content_type, const char *body, long len,
              int delay_ms);
/* How many requests have been served for path. */
int th_hits(th_server *s, const char *path);
void th_stop(th_server *s);

#endif
