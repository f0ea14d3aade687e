/*
 * testcurl.h - an HTTP client for tests (libcurl), with a cookie jar per
 * client so a test can sign in and stay signed in.
 */
#ifndef PT_TESTCURL_H
#define PT_TESTCURL_H

#include <stddef.h>

typedef struct tc_client tc_client;

typedef struct tc_response {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char *headers; /* raw response headers */
} tc_response;

tc_client *tc_new(void);
void tc_free(tc_client *c);
/* Extra request header for every request of this client ("Name: value"). */
void tc_header(tc_client *c, const char *line);
/* method "GET"/"POST"/...; body may be NULL; content_type NULL: none. */
tc_response tc_request(tc_client *c, const char *method, const char *url, const char *content_type,
                       const char *body, size_t len);
void tc_response_free(tc_response *r);
/* A header's value from r->headers (new string), or NULL. */
char *tc_response_header(const tc_response *r, const char *name);

#endif
