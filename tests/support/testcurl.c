/*
 * testcurl.c - see testcurl.h.
 */
#define _GNU_SOURCE
#include "tests/support/testcurl.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tc_client {
    CURL *h;
    struct curl_slist *headers;
};

typedef struct sink {
    char *data;
    size_t len;
} sink;

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t add = size * n;
    char *nd = realloc(s->data, s->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + s->len, p, add);
    s->data = nd;
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

tc_client *tc_new(void)
{
    tc_client *c = calloc(1, sizeof(*c));
    c->h = curl_easy_init();
    curl_easy_setopt(c->h, CURLOPT_COOKIEFILE, ""); /* in-memory jar */
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 60L);
    if (getenv("TC_VERBOSE"))
        curl_easy_setopt(c->h, CURLOPT_VERBOSE, 1L);
    return c;
}

void tc_free(tc_client *c)
{
    if (!c)
        return;
    curl_slist_free_all(c->headers);
    curl_easy_cleanup(c->h);
    free(c);
}

void tc_header(tc_client *c, const char *line)
{
    c->headers = curl_slist_append(c->headers, line);
}

tc_response tc_request(tc_client *c, const char *method, const char *url, const char *content_type,
                       const char *body, size_t len)
{
    tc_response r = {0};
    sink b = {0}, h = {0};
    struct curl_slist *hs = NULL;
    for (struct curl_slist *i = c->headers; i; i = i->next)
        hs = curl_slist_append(hs, i->data);
    if (content_type) {
        char line[256];
        snprintf(line, sizeof(line), "Content-Type: %s", content_type);
        hs = curl_slist_append(hs, line);
    }
    hs = curl_slist_append(hs, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c->h, CURLOPT_HEADERDATA, &h);
    if (body) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        /* back to a plain request: no body, and no upload mode (or size)
         * left over from the last request on this handle */
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c->h, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    if (curl_easy_perform(c->h) == CURLE_OK)
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hs);
    r.body = b.data ? b.data : calloc(1, 1);
    r.len = b.len;
    r.headers = h.data ? h.data : calloc(1, 1);
    return r;
}

void tc_response_free(tc_response *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

char *tc_response_header(const tc_response *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = r->headers; l && *l;) {
        const char *e = strstr(l, "\r\n");
        if (!e)
            e = l + strlen(l);
        if ((size_t)(e - l) > n && strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(e - v));
        }
        l = *e ? e + 2 : e;
    }
    return NULL;
}
