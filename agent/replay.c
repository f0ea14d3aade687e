/*
 * replay.c - record, replay and offline lint. See replay.h.
 */
#define _GNU_SOURCE
#include "agent/replay.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/json.h"

#include <ctype.h>
#include <errno.h>
#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define INLINE_MAX (32 * 1024) /* larger bodies are files beside the HAR */

/* ---- Placeholders ---------------------------------------------------------
 * What must not be stored, and what it becomes. Secrets go wherever they
 * appear (raw, URL-encoded, JSON-escaped); everything else only as a whole
 * value. */
typedef struct subst {
    char *value;
    char *placeholder;
    int anywhere; /* secrets: any occurrence */
} subst;

typedef struct entry {
    char *method, *url, *post; /* normalised */
    int status;
    char *status_text;
    cJSON *headers; /* response headers [{name, value}] */
    char *body;     /* normalised text, or base64 when binary */
    int base64;
    int used;
} entry;

struct rr {
    int recording;
    char dir[4096];
    const sop *s;
    const vars *inputs, *secrets, *answers;
    char *portal;
    int fallback;
    pthread_mutex_t mu;
    const sop_step *cur; /* the last step that acts: what requests are attributed to */
    /* recording */
    cJSON *entries;
    cJSON *steps;
    cJSON *net;   /* what the Network domain said, by its requestId (net_event) */
    cJSON *loads; /* the top document's [kind, monotonic s]: "dcl" or "load" */
    int ndoms, nbodies;
    char **dom_hashes;
    /* replay */
    entry *e;
    size_t ne;
    char *missing; /* the first request the recording lacks */
    int body_diffs;
};

static void subst_add(subst **v, size_t *n, const char *value, const char *ph, int anywhere)
{
    if (!value || strlen(value) < (anywhere ? 3 : 4))
        return;
    subst *nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return;
    *v = nv;
    nv[*n] = (subst){strdup(value), strdup(ph), anywhere};
    (*n)++;
}

static int by_length(const void *a, const void *b)
{
    return (int)strlen(((const subst *)b)->value) - (int)strlen(((const subst *)a)->value);
}

static char *url_encode(const char *s, int plus)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (isalnum(*c) || strchr("-_.~", *c))
            pt_buf_append(&b, c, 1);
        else if (*c == ' ' && plus)
            pt_buf_append(&b, "+", 1);
        else
            pt_buf_appendf(&b, "%%%02X", *c);
    }
    return pt_buf_take(&b);
}

/* The table for now: this run's values (and this minute's TOTP codes). */
static subst *table(const rr *r, size_t *n)
{
    subst *v = NULL;
    *n = 0;
    char ph[256];
    int64_t now = pt_wall_ms() / 1000;
    for (size_t i = 0; r->secrets && i < vars_count(r->secrets); i++) {
        const char *name = vars_name(r->secrets, i), *val = vars_get(r->secrets, name);
        snprintf(ph, sizeof(ph), "{{secret.%s}}", name);
        subst_add(&v, n, val, ph, 1);
        char *enc = url_encode(val, 0), *encp = url_encode(val, 1);
        subst_add(&v, n, enc, ph, 1);
        subst_add(&v, n, encp, ph, 1);
        free(enc);
        free(encp);
        snprintf(ph, sizeof(ph), "{{totp.%s}}", name);
        for (int k = -2; k <= 1; k++) {
            char code[7];
            if (pt_totp(val, now + k * 30, code) == 0)
                subst_add(&v, n, code, ph, 0);
        }
    }
    for (size_t i = 0; r->answers && i < vars_count(r->answers); i++) {
        const char *name = vars_name(r->answers, i);
        snprintf(ph, sizeof(ph), "{{answer.%s}}", name);
        subst_add(&v, n, vars_get(r->answers, name), ph, 0);
    }
    for (size_t i = 0; r->inputs && i < vars_count(r->inputs); i++) {
        const char *name = vars_name(r->inputs, i), *val = vars_get(r->inputs, name);
        snprintf(ph, sizeof(ph), "{{input.%s}}", name);
        subst_add(&v, n, val, ph, 0);
        char *enc = url_encode(val, 1);
        subst_add(&v, n, enc, ph, 0);
        free(enc);
        if (vars_is_date(r->inputs, name) && strlen(val) == 10) { /* 1949-12-23 */
            char us[16];
            snprintf(us, sizeof(us), "%.2s/%.2s/%.4s", val + 5, val + 8, val);
            snprintf(ph, sizeof(ph), "{{input.%s:us}}", name);
            subst_add(&v, n, us, ph, 0);
            char *e2 = url_encode(us, 1);
            subst_add(&v, n, e2, ph, 0);
            free(e2);
        }
    }
    qsort(v, *n, sizeof(*v), by_length);
    return v;
}

static void table_free(subst *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].value);
        free(v[i].placeholder);
    }
    free(v);
}

/* Is text[at, at+len) a whole value: a form field, a query parameter, a
 * JSON string, an attribute or a whole text node? */
static int whole(const char *text, size_t at, size_t len)
{
    /* right beside a delimiter: a quote, = and & (forms, queries), > and <
     * (text nodes), a line break (multipart part values) */
    char before = at > 0 ? text[at - 1] : '\0';
    int left_ok = !before || strchr("\"'=>\n", before);
    if (!left_ok && strchr(" \t\r", before)) { /* an indented text node */
        size_t l = at;
        while (l > 0 && strchr(" \t\r\n", text[l - 1]))
            l--;
        left_ok = l == 0 || text[l - 1] == '>';
    }
    const char *after = text + at + len;
    int right_ok = !*after || strchr("\"'&<\r\n#", *after);
    if (!right_ok && strchr(" \t", *after)) {
        while (*after && strchr(" \t\r\n", *after))
            after++;
        right_ok = !*after || *after == '<';
    }
    return left_ok && right_ok;
}

/* A JSON-escaped form of s (what a value looks like inside a JSON text). */
static char *json_escaped(const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *p = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!p)
        return NULL;
    size_t n = strlen(p);
    memmove(p, p + 1, n - 2); /* drop the quotes */
    p[n - 2] = '\0';
    return p;
}

static char *replace_in(const char *text, const char *value, const char *ph, int anywhere)
{
    size_t vl = strlen(value);
    if (!vl || !strstr(text, value))
        return NULL;
    pt_buf b;
    pt_buf_init(&b, 0);
    const char *p = text;
    int changed = 0;
    for (const char *hit; (hit = strstr(p, value));) {
        size_t at = (size_t)(hit - text);
        pt_buf_append(&b, p, (size_t)(hit - p));
        if (anywhere || whole(text, at, vl)) {
            pt_buf_append(&b, ph, strlen(ph));
            changed = 1;
        } else {
            pt_buf_append(&b, hit, vl);
        }
        p = hit + vl;
    }
    pt_buf_append(&b, p, strlen(p));
    if (!changed) {
        pt_buf_free(&b);
        return NULL;
    }
    return pt_buf_take(&b);
}

/* text with every value of the table replaced by its placeholder (new). */
static char *redact(const subst *t, size_t n, const char *text)
{
    char *out = strdup(text ? text : "");
    for (size_t i = 0; out && i < n; i++) {
        char *r = replace_in(out, t[i].value, t[i].placeholder, t[i].anywhere);
        if (r) {
            free(out);
            out = r;
        }
        if (t[i].anywhere) { /* and inside JSON strings */
            char *esc = json_escaped(t[i].value);
            if (esc && strcmp(esc, t[i].value) && (r = replace_in(out, esc, t[i].placeholder, 1))) {
                free(out);
                out = r;
            }
            free(esc);
        }
    }
    return out;
}

/* The inverse for replay: placeholders back to this run's values. */
static char *restore(const subst *t, size_t n, const char *text)
{
    char *out = strdup(text ? text : "");
    for (size_t i = 0; out && i < n; i++) {
        if (!strstr(out, t[i].placeholder))
            continue;
        /* the plain value (the table has encoded variants after it) */
        const char *val = t[i].value;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(t[k].placeholder, t[i].placeholder) && strlen(t[k].value) < strlen(val) &&
                !strchr(t[k].value, '%'))
                val = t[k].value;
        char *r = replace_in(out, t[i].placeholder, val, 1);
        if (r) {
            free(out);
            out = r;
        }
    }
    return out;
}

/* Multipart boundaries differ from run to run. */
static char *normalise_boundaries(char *text)
{
    const char *marks[] = {"----WebKitFormBoundary", "----formdata-"};
    for (size_t m = 0; text && m < 2; m++) {
        for (char *p = strstr(text, marks[m]); p; p = strstr(p + 1, marks[m])) {
            char *q = p + strlen(marks[m]);
            while (isalnum((unsigned char)*q))
                *q++ = 'X';
        }
    }
    return text;
}

static void where(const sop_step *st, char *out, size_t n)
{
    const char *b = st && st->file ? strrchr(st->file, '/') : NULL;
    if (st)
        snprintf(out, n, "%s:%d", b ? b + 1 : st->file, st->line);
    else
        snprintf(out, n, "(before the first step)");
}

/* ---- Recording ----------------------------------------------------------- */

/* Cookie values never reach the disk: each becomes COOKIE_PLACEHOLDER, the
 * names and a Set-Cookie's attributes stay. */
#define COOKIE_PLACEHOLDER "{{cookie}}"

/* One "name=value" pair (len bytes at p) with its value replaced, into b;
 * its name into cookies (a HAR cookie object), when given. */
static void mask_pair(pt_buf *b, const char *p, size_t len, cJSON *cookies)
{
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    const char *eq = memchr(p, '=', len);
    size_t nl = eq ? (size_t)(eq - p) : len;
    pt_buf_appendf(b, "%.*s=%s", (int)nl, p, COOKIE_PLACEHOLDER);
    if (cookies) {
        cJSON *o = cJSON_CreateObject();
        char *name = strndup(p, nl);
        cJSON_AddStringToObject(o, "name", name ? name : "");
        cJSON_AddStringToObject(o, "value", COOKIE_PLACEHOLDER);
        free(name);
        cJSON_AddItemToArray(cookies, o);
    }
}

/* A Cookie header ("a=1; b=2") or Set-Cookie lines ("sid=x; Path=/", one
 * per line) with every value masked: a new string. */
static char *mask_cookies(const char *v, int set_cookie, cJSON *cookies)
{
    pt_buf b;
    pt_buf_init(&b, 1 << 20);
    pt_buf_append(&b, "", 0);
    const char *sep = set_cookie ? "\n" : ";";
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, sep);
        if (set_cookie) { /* the first pair is the cookie; its attributes stay */
            size_t pl = strcspn(p, ";\n");
            mask_pair(&b, p, pl, cookies);
            pt_buf_append(&b, p + pl, len - pl);
        } else if (len)
            mask_pair(&b, p, len, cookies);
        p += len;
        if (*p) {
            pt_buf_append(&b, set_cookie ? "\n" : "; ", set_cookie ? 1 : 2);
            p++;
        }
    }
    return pt_buf_take(&b);
}

/* The value of header `name` as the HAR keeps it: cookies masked, then
 * secrets and inputs replaced. A new string. */
static char *har_value(const char *name, const char *v, const subst *t, size_t n, cJSON *cookies)
{
    int is_cookie = name && !strcasecmp(name, "cookie"),
        is_set = name && !strcasecmp(name, "set-cookie");
    char *masked = v && (is_cookie || is_set) ? mask_cookies(v, is_set, cookies) : NULL;
    char *out = redact(t, n, masked ? masked : v);
    free(masked);
    return out;
}

static cJSON *har_headers(const cJSON *h, const subst *t, size_t n, cJSON *cookies)
{
    cJSON *arr = cJSON_CreateArray();
    if (cJSON_IsArray(h)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, h)
        {
            char *v = har_value(pt_json_str(x, "name"), pt_json_str(x, "value"), t, n, cookies);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name",
                                    pt_json_str(x, "name") ? pt_json_str(x, "name") : "");
            cJSON_AddStringToObject(o, "value", v ? v : "");
            free(v);
            cJSON_AddItemToArray(arr, o);
        }
    } else if (cJSON_IsObject(h)) { /* request headers come as an object */
        for (const cJSON *x = h->child; x; x = x->next) {
            char *v = har_value(x->string, cJSON_GetStringValue(x), t, n, cookies);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", x->string);
            cJSON_AddStringToObject(o, "value", v ? v : "");
            free(v);
            cJSON_AddItemToArray(arr, o);
        }
    }
    return arr;
}

static const char *header_value(const cJSON *arr, const char *name)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        const char *n = pt_json_str(x, "name");
        if (n && !strcasecmp(n, name))
            return pt_json_str(x, "value");
    }
    return NULL;
}

static int textual(const char *mime)
{
    return !mime || !*mime || !strncmp(mime, "text/", 5) || strstr(mime, "json") ||
           strstr(mime, "javascript") || strstr(mime, "xml") || strstr(mime, "html") ||
           strstr(mime, "x-www-form-urlencoded");
}

static cJSON *query_string(const char *url)
{
    cJSON *arr = cJSON_CreateArray();
    const char *q = strchr(url, '?');
    if (!q)
        return arr;
    char *copy = strdup(q + 1), *save = NULL;
    char *hash = copy ? strchr(copy, '#') : NULL;
    if (hash)
        *hash = '\0';
    for (char *kv = copy ? strtok_r(copy, "&", &save) : NULL; kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        cJSON *o = cJSON_CreateObject();
        if (eq)
            *eq = '\0';
        cJSON_AddStringToObject(o, "name", kv);
        cJSON_AddStringToObject(o, "value", eq ? eq + 1 : "");
        cJSON_AddItemToArray(arr, o);
    }
    free(copy);
    return arr;
}

static void record_paused(cdp_session *s, const cdp_request *req, void *ud)
{
    rr *r = ud;
    char err[PT_ERR_MAX];
    int64_t t0 = pt_wall_ms();
    char *raw = NULL;
    int b64 = 0;
    if (req->has_response && (req->status < 300 || req->status >= 400) &&
        cdp_request_body(s, req->id, &raw, &b64, err))
        raw = NULL;
    cdp_request_continue(s, req->id, err);
    if (!req->has_response) {
        free(raw);
        return; /* failed before a response: nothing to keep */
    }

    size_t nt;
    subst *t = table(r, &nt);
    char *url = redact(t, nt, req->url);
    const char *method = req->method;
    cJSON *e = cJSON_CreateObject();
    char iso[32];
    pt_iso8601(t0, iso);
    cJSON_AddStringToObject(e, "startedDateTime", iso);
    cJSON_AddNumberToObject(e, "time", 0);
    cJSON *rq = cJSON_AddObjectToObject(e, "request");
    cJSON_AddStringToObject(rq, "method", method ? method : "GET");
    cJSON_AddStringToObject(rq, "url", url ? url : "");
    cJSON_AddStringToObject(rq, "httpVersion", "HTTP/1.1");
    cJSON *rqc = cJSON_AddArrayToObject(rq, "cookies");
    cJSON *rqh = har_headers(req->headers, t, nt, rqc);
    cJSON_AddItemToObject(rq, "headers", rqh);
    cJSON_AddItemToObject(rq, "queryString", query_string(url ? url : ""));
    const char *post = req->post_data;
    if (post) {
        char *rp = normalise_boundaries(redact(t, nt, post));
        cJSON *pd = cJSON_AddObjectToObject(rq, "postData");
        const char *ct = header_value(rqh, "content-type");
        cJSON_AddStringToObject(pd, "mimeType", ct ? ct : "");
        cJSON_AddStringToObject(pd, "text", rp ? rp : "");
        free(rp);
    }
    cJSON_AddNumberToObject(rq, "headersSize", -1);
    cJSON_AddNumberToObject(rq, "bodySize", post ? (double)strlen(post) : 0);

    cJSON *rs = cJSON_AddObjectToObject(e, "response");
    cJSON_AddNumberToObject(rs, "status", req->status);
    cJSON_AddStringToObject(rs, "statusText", req->status_text ? req->status_text : "");
    cJSON_AddStringToObject(rs, "httpVersion", "HTTP/1.1");
    cJSON *rsc = cJSON_AddArrayToObject(rs, "cookies");
    cJSON *rsh = har_headers(req->response_headers, t, nt, rsc);
    cJSON_AddItemToObject(rs, "headers", rsh);
    const char *ctype = header_value(rsh, "content-type");
    char mime[128] = "";
    snprintf(mime, sizeof(mime), "%s", ctype ? ctype : "");
    cJSON *content = cJSON_AddObjectToObject(rs, "content");
    char *text = NULL;
    size_t size = 0;
    if (raw && b64 && textual(mime)) { /* text sent as base64: redact it as text */
        size_t dl;
        unsigned char *d = pt_b64_decode(raw, strlen(raw), &dl);
        if (d && !memchr(d, 0, dl)) {
            char *z = realloc(d, dl + 1);
            if (z) {
                z[dl] = '\0';
                text = redact(t, nt, z);
                size = dl;
                free(z);
                d = NULL;
            }
        }
        free(d);
        if (text)
            b64 = 0;
    } else if (raw && !b64) {
        text = redact(t, nt, raw);
        size = strlen(raw);
    }
    cJSON_AddNumberToObject(content, "size", (double)(text ? size : raw ? strlen(raw) * 3 / 4 : 0));
    cJSON_AddStringToObject(content, "mimeType", mime);
    const char *stored = text ? text : raw;
    pthread_mutex_lock(&r->mu);
    if (stored && strlen(stored) > INLINE_MAX) {
        char rel[64], path[4200];
        snprintf(rel, sizeof(rel), "bodies/%d.%s", ++r->nbodies, text ? "txt" : "b64");
        snprintf(path, sizeof(path), "%s/%s", r->dir, rel);
        pt_write_file(path, stored, strlen(stored), 0600);
        cJSON_AddStringToObject(content, "_file", rel);
        if (!text)
            cJSON_AddStringToObject(content, "encoding", "base64");
    } else if (stored) {
        cJSON_AddStringToObject(content, "text", stored);
        if (!text)
            cJSON_AddStringToObject(content, "encoding", "base64");
    }
    const char *loc = header_value(rsh, "location");
    cJSON_AddStringToObject(rs, "redirectURL", loc ? loc : "");
    cJSON_AddNumberToObject(rs, "headersSize", -1);
    cJSON_AddNumberToObject(rs, "bodySize", (double)size);
    cJSON_AddItemToObject(e, "cache", cJSON_CreateObject());
    cJSON *tm = cJSON_AddObjectToObject(e, "timings");
    int64_t took = pt_wall_ms() - t0;
    cJSON_AddNumberToObject(tm, "send", 0);
    cJSON_AddNumberToObject(tm, "wait", (double)took);
    cJSON_AddNumberToObject(tm, "receive", 0);
    cJSON_ReplaceItemInObject(e, "time", cJSON_CreateNumber((double)took));
    char at[256];
    where(r->cur, at, sizeof(at));
    cJSON_AddStringToObject(e, "_step", at);
    if (req->resource_type)
        cJSON_AddStringToObject(e, "_resourceType", req->resource_type);
    if (req->network_id) /* what the Network domain adds is merged at the end */
        cJSON_AddStringToObject(e, "_networkId", req->network_id);
    cJSON_AddItemToArray(r->entries, e);
    pthread_mutex_unlock(&r->mu);
    free(text);
    free(url);
    free(raw);
    table_free(t, nt);
}

/* Requests follow actions (a click submits, a goto loads), often after the
 * next step (a wait) has begun: they are put down to the last step that
 * acted. */
static void hook_step(void *ud, const sop_step *st)
{
    rr *r = ud;
    switch (st->kind) {
    case SOP_GOTO:
    case SOP_CLICK:
    case SOP_FILL:
    case SOP_TYPE:
    case SOP_PRESS:
    case SOP_SELECT:
    case SOP_CHOOSE:
    case SOP_CHECK:
    case SOP_UNCHECK:
    case SOP_UPLOAD:
        pthread_mutex_lock(&r->mu);
        r->cur = st;
        pthread_mutex_unlock(&r->mu);
        break;
    default:
        break;
    }
}

static void hook_snapshot(void *ud, const sop_step *st, const char *url, const char *html)
{
    rr *r = ud;
    if (!r->recording)
        return;
    size_t nt;
    subst *t = table(r, &nt);
    char *clean = redact(t, nt, html), *curl = redact(t, nt, url);
    table_free(t, nt);
    if (!clean || !curl) {
        free(clean);
        free(curl);
        return;
    }
    char hash[65], rel[64];
    pt_sha256_hex(clean, strlen(clean), hash);
    pthread_mutex_lock(&r->mu);
    int found = -1;
    for (int i = 0; i < r->ndoms && found < 0; i++)
        if (!strcmp(r->dom_hashes[i], hash))
            found = i;
    if (found < 0) {
        char **n = realloc(r->dom_hashes, (size_t)(r->ndoms + 1) * sizeof(*n));
        if (n) {
            r->dom_hashes = n;
            n[r->ndoms] = strdup(hash);
            found = r->ndoms++;
            char path[4200];
            snprintf(path, sizeof(path), "%s/dom/%d.html", r->dir, found + 1);
            pt_write_file(path, clean, strlen(clean), 0600);
        }
    }
    if (found >= 0) {
        snprintf(rel, sizeof(rel), "dom/%d.html", found + 1);
        const char *b = strrchr(st->file, '/');
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", b ? b + 1 : st->file);
        cJSON_AddNumberToObject(o, "line", st->line);
        cJSON_AddStringToObject(o, "source", st->source ? st->source : "");
        cJSON_AddStringToObject(o, "step", sop_step_name(st->kind));
        cJSON_AddStringToObject(o, "url", curl);
        cJSON_AddStringToObject(o, "dom", rel);
        cJSON_AddItemToArray(r->steps, o);
    }
    pthread_mutex_unlock(&r->mu);
    free(clean);
    free(curl);
}

/* ---- Replay -------------------------------------------------------------- */

static void replay_paused(cdp_session *s, const cdp_request *req, void *ud)
{
    rr *r = ud;
    size_t nt;
    subst *t = table(r, &nt);
    char *url = redact(t, nt, req->url);
    const char *method = req->method ? req->method : "GET";
    char *post = req->post_data ? normalise_boundaries(redact(t, nt, req->post_data)) : NULL;
    pthread_mutex_lock(&r->mu);
    entry *hit = NULL, *last = NULL;
    for (size_t i = 0; i < r->ne && !hit; i++)
        if (!strcmp(r->e[i].method, method) && url && !strcmp(r->e[i].url, url)) {
            if (!r->e[i].used)
                hit = &r->e[i];
            else
                last = &r->e[i];
        }
    if (!hit)
        hit = last; /* asked again more often than recorded: the latest answer */
    if (hit) {
        hit->used = 1;
        if (post && hit->post && strcmp(post, hit->post)) {
            size_t k = 0;
            while (post[k] && post[k] == hit->post[k])
                k++;
            r->body_diffs++;
            fprintf(stderr,
                    "replay: %s %s: the request body differs from the recording at byte %zu\n",
                    method, url, k);
        }
    } else if (!r->missing && !r->fallback) {
        char at[256];
        where(r->cur, at, sizeof(at));
        char *src = r->cur ? vars_mask(r->cur->source, r->secrets) : NULL;
        if (asprintf(&r->missing,
                     "the recording has no %s %s, requested after %s%s%s (replaying %s)", method,
                     url ? url : "?", at, src ? ": " : "", src ? src : "", r->dir) < 0)
            r->missing = NULL;
        free(src);
        fprintf(stderr, "replay: %s %s is not in the recording (during %s)\n", method,
                url ? url : "?", at);
    }
    /* copy what the answer needs, then answer without the lock */
    int status = hit ? hit->status : 0;
    cJSON *headers = hit ? cJSON_Duplicate(hit->headers, 1) : NULL;
    char *body =
        hit ? (hit->base64 ? strdup(hit->body ? hit->body : "") : restore(t, nt, hit->body)) : NULL;
    int b64 = hit && hit->base64;
    const char *st_text = hit && hit->status_text && *hit->status_text ? hit->status_text : NULL;
    char *status_text = st_text ? strdup(st_text) : NULL;
    pthread_mutex_unlock(&r->mu);

    if (!hit) {
        if (r->fallback)
            cdp_request_continue(s, req->id, NULL);
        else
            cdp_request_fail(s, req->id, NULL);
    } else {
        cJSON *hs = cJSON_CreateArray();
        cJSON *h;
        cJSON_ArrayForEach(h, headers)
        {
            const char *n = pt_json_str(h, "name");
            if (!n || !strcasecmp(n, "content-length") || !strcasecmp(n, "content-encoding") ||
                !strcasecmp(n, "transfer-encoding"))
                continue;
            char *v = restore(t, nt, pt_json_str(h, "value"));
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", n);
            cJSON_AddStringToObject(o, "value", v ? v : "");
            free(v);
            cJSON_AddItemToArray(hs, o);
        }
        char *enc = b64 ? NULL : pt_b64_encode(body ? body : "", body ? strlen(body) : 0);
        char err[PT_ERR_MAX];
        if (cdp_request_fulfil(s, req->id, status, status_text, hs,
                               b64   ? (body ? body : "")
                               : enc ? enc
                                     : "",
                               err))
            fprintf(stderr, "replay: cannot answer %s %s: %s\n", method, url, err);
        free(enc);
        cJSON_Delete(hs);
    }
    cJSON_Delete(headers);
    free(body);
    free(status_text);
    free(url);
    free(post);
    table_free(t, nt);
}

static const char *hook_stop(void *ud)
{
    rr *r = ud;
    pthread_mutex_lock(&r->mu);
    const char *m = r->missing;
    pthread_mutex_unlock(&r->mu);
    return m;
}

/* The browser's word on a request, kept by its id until the HAR is
 * written: when it was sent (wall clock and monotonic), its timing and
 * status, the raw response headers of each response (with Set-Cookie,
 * which interception does not show), when it finished; and the top
 * document's loads. Service thread: only the lock. */
static void net_event(const cdp_net_event *ev, void *ud)
{
    rr *r = ud;
    pthread_mutex_lock(&r->mu);
    if (ev->kind == CDP_NET_DOM_CONTENT || ev->kind == CDP_NET_LOAD) {
        cJSON *x = cJSON_CreateArray();
        cJSON_AddItemToArray(x, cJSON_CreateString(ev->kind == CDP_NET_LOAD ? "load" : "dcl"));
        cJSON_AddItemToArray(x, cJSON_CreateNumber(ev->timestamp));
        cJSON_AddItemToArray(r->loads, x);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    cJSON *n = ev->request_id ? cJSON_GetObjectItemCaseSensitive(r->net, ev->request_id) : NULL;
    if (!n && ev->request_id)
        n = cJSON_AddObjectToObject(r->net, ev->request_id);
    if (!n) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    if (ev->kind == CDP_NET_SENT && !cJSON_HasObjectItem(n, "wall")) {
        cJSON_AddNumberToObject(n, "wall", ev->wall_time);
        cJSON_AddNumberToObject(n, "ts", ev->timestamp);
    } else if (ev->kind == CDP_NET_RESPONSE) {
        cJSON_DeleteItemFromObject(n, "timing");
        cJSON_DeleteItemFromObject(n, "status");
        if (ev->timing)
            cJSON_AddItemToObject(n, "timing", cJSON_Duplicate(ev->timing, 1));
        cJSON_AddNumberToObject(n, "status", ev->status);
    } else if (ev->kind == CDP_NET_RAW_HEADERS) {
        cJSON *extra = cJSON_GetObjectItemCaseSensitive(n, "extra");
        if (!extra)
            extra = cJSON_AddArrayToObject(n, "extra");
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "status", ev->status);
        cJSON_AddItemToObject(x, "headers",
                              ev->headers ? cJSON_Duplicate(ev->headers, 1) : cJSON_CreateObject());
        cJSON_AddItemToArray(extra, x);
    } else if (ev->kind == CDP_NET_FINISHED && !cJSON_HasObjectItem(n, "finished")) {
        cJSON_AddNumberToObject(n, "finished", ev->timestamp);
    }
    pthread_mutex_unlock(&r->mu);
}

static int hook_page(void *ud, cdp_page *page, char *err)
{
    rr *r = ud;
    if (r->recording && cdp_page_network(page, net_event, r, err))
        return -1;
    return cdp_page_intercept(page, r->recording, r->recording ? record_paused : replay_paused, r,
                              err)
               ? -1
               : 0;
}

/* ---- Set-up -------------------------------------------------------------- */

static rr *rr_new(const char *dir, const sop *s, const vars *inputs, const vars *secrets,
                  const vars *answers)
{
    rr *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    r->s = s;
    r->inputs = inputs;
    r->secrets = secrets;
    r->answers = answers;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

rr *rr_record(const char *dir, const sop *s, const vars *inputs, const vars *secrets,
              const vars *answers, const char *portal, char *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/session.har", dir);
    if (access(path, F_OK) == 0) {
        pt_errf(err, "%s already holds a recording (remove it to record again)", dir);
        return NULL;
    }
    if ((mkdir(dir, 0755) < 0 && errno != EEXIST)) {
        pt_errf(err, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/dom", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/bodies", dir);
    mkdir(path, 0755);
    rr *r = rr_new(dir, s, inputs, secrets, answers);
    if (!r) {
        pt_errf(err, "out of memory");
        return NULL;
    }
    r->recording = 1;
    r->portal = portal ? strdup(portal) : NULL;
    r->entries = cJSON_CreateArray();
    r->steps = cJSON_CreateArray();
    r->net = cJSON_CreateObject();
    r->loads = cJSON_CreateArray();
    return r;
}

static char *read_body_file(const char *dir, const char *rel)
{
    char path[4400], *t = NULL;
    if (strstr(rel, ".."))
        return NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return pt_read_file(path, 256u << 20, &t, NULL) == 0 ? t : NULL;
}

rr *rr_replay(const char *dir, const sop *s, const vars *inputs, const vars *secrets,
              const vars *answers, int fallback_network, char *err)
{
    char path[4200], *text = NULL;
    snprintf(path, sizeof(path), "%s/session.har", dir);
    if (pt_read_file(path, 512u << 20, &text, NULL) < 0) {
        pt_errf(err, "no recording in %s (no session.har)", dir);
        return NULL;
    }
    cJSON *har = cJSON_Parse(text);
    free(text);
    cJSON *log = cJSON_GetObjectItem(har, "log");
    cJSON *entries = cJSON_GetObjectItem(log, "entries");
    if (!cJSON_IsArray(entries)) {
        cJSON_Delete(har);
        pt_errf(err, "%s is not a HAR file (no log.entries)", path);
        return NULL;
    }
    rr *r = rr_new(dir, s, inputs, secrets, answers);
    r->fallback = fallback_network;
    const char *portal = pt_json_str(cJSON_GetObjectItem(log, "_portier"), "portal");
    r->portal = portal ? strdup(portal) : NULL;
    r->e = calloc((size_t)cJSON_GetArraySize(entries) + 1, sizeof(*r->e));
    cJSON *x;
    cJSON_ArrayForEach(x, entries)
    {
        cJSON *rq = cJSON_GetObjectItem(x, "request"), *rs = cJSON_GetObjectItem(x, "response");
        cJSON *content = cJSON_GetObjectItem(rs, "content");
        entry *e = &r->e[r->ne];
        e->method = strdup(pt_json_str(rq, "method") ? pt_json_str(rq, "method") : "GET");
        e->url = strdup(pt_json_str(rq, "url") ? pt_json_str(rq, "url") : "");
        const char *post = pt_json_str(cJSON_GetObjectItem(rq, "postData"), "text");
        e->post = post ? strdup(post) : NULL;
        cJSON *st = cJSON_GetObjectItem(rs, "status");
        e->status = cJSON_IsNumber(st) ? st->valueint : 200;
        e->status_text = strdup(pt_json_str(rs, "statusText") ? pt_json_str(rs, "statusText") : "");
        e->headers = cJSON_Duplicate(cJSON_GetObjectItem(rs, "headers"), 1);
        const char *enc = pt_json_str(content, "encoding");
        e->base64 = enc && !strcmp(enc, "base64");
        const char *file = pt_json_str(content, "_file");
        const char *body = pt_json_str(content, "text");
        e->body = file ? read_body_file(dir, file) : strdup(body ? body : "");
        r->ne++;
    }
    cJSON_Delete(har);
    return r;
}

const char *rr_portal(const rr *r)
{
    return r->portal;
}

void rr_attach(rr *r, agent_options *o)
{
    o->page_opened = hook_page;
    o->snapshot = r->recording ? hook_snapshot : NULL;
    o->stop_reason = r->recording ? NULL : hook_stop;
    o->step_begin = hook_step;
    o->rr_ud = r;
}

static double num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* An interval of a ResourceTiming (ms from its requestTime; -1 if none). */
static double span(const cJSON *t, const char *from, const char *to)
{
    double a = num(t, from, -1), b = num(t, to, -1);
    return a >= 0 && b >= a ? b - a : -1;
}

/* HAR timings from the protocol's own figures (Network.Response.timing,
 * and loadingFinished for the body): blocked until the first of DNS,
 * connect or send; dns, connect (ssl within it), send; wait until the
 * headers were in; receive until the body was. The recorder's own pause at
 * the response stage (reading the body) falls in receive. */
static void har_timings(cJSON *e, const cJSON *n)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(n, "timing");
    double req = num(t, "requestTime", -1), send0 = num(t, "sendStart", -1),
           send1 = num(t, "sendEnd", -1), headers = num(t, "receiveHeadersEnd", -1);
    if (!t || req < 0 || send0 < 0 || send1 < send0 || headers < send1)
        return;
    double first = num(t, "dnsStart", -1) >= 0       ? num(t, "dnsStart", -1)
                   : num(t, "connectStart", -1) >= 0 ? num(t, "connectStart", -1)
                                                     : send0;
    double fin = num(n, "finished", -1);
    double v[7] = {first,
                   span(t, "dnsStart", "dnsEnd"),
                   span(t, "connectStart", "connectEnd"),
                   send1 - send0,
                   headers - send1,
                   fin >= req ? (fin - req) * 1000 - headers : 0,
                   span(t, "sslStart", "sslEnd")};
    if (v[5] < 0)
        v[5] = 0;
    static const char *const names[] = {"blocked", "dns",     "connect", "send",
                                        "wait",    "receive", "ssl"};
    cJSON *tm = cJSON_CreateObject();
    double total = 0;
    for (int i = 0; i < 7; i++) {
        cJSON_AddNumberToObject(tm, names[i], v[i] < 0 ? -1 : (double)(long)(v[i] * 1000) / 1000);
        total += i < 6 && v[i] > 0 ? v[i] : 0; /* ssl is counted in connect */
    }
    cJSON_ReplaceItemInObject(e, "timings", tm);
    cJSON_ReplaceItemInObject(e, "time", cJSON_CreateNumber((double)(long)(total * 1000) / 1000));
}

/* The Network domain's figures into each entry: when it started, its
 * timings, and the Set-Cookie headers interception leaves out (the
 * response whose status matches, in order), every value masked. */
static void har_merge_network(rr *r, cJSON *entries)
{
    size_t nt;
    subst *t = table(r, &nt);
    cJSON *e;
    cJSON_ArrayForEach(e, entries)
    {
        const char *id = pt_json_str(e, "_networkId");
        cJSON *n = id ? cJSON_GetObjectItemCaseSensitive(r->net, id) : NULL;
        cJSON *rs = cJSON_GetObjectItemCaseSensitive(e, "response");
        int status = (int)num(rs, "status", 0);
        if (n && cJSON_HasObjectItem(n, "wall")) {
            char iso[32];
            pt_iso8601((int64_t)(num(n, "wall", 0) * 1000), iso);
            cJSON_ReplaceItemInObject(e, "startedDateTime", cJSON_CreateString(iso));
        }
        if (n && (int)num(n, "status", -1) == status)
            har_timings(e, n);
        cJSON *x, *extras = n ? cJSON_GetObjectItemCaseSensitive(n, "extra") : NULL;
        cJSON_ArrayForEach(x, extras)
        {
            if (cJSON_HasObjectItem(x, "used") || (int)num(x, "status", 0) != status)
                continue;
            cJSON_AddTrueToObject(x, "used");
            cJSON *h, *headers = cJSON_GetObjectItemCaseSensitive(rs, "headers");
            cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(x, "headers"))
            {
                if (!h->string || strcasecmp(h->string, "set-cookie") || !cJSON_IsString(h) ||
                    header_value(headers, "set-cookie"))
                    continue;
                char *v = har_value("set-cookie", h->valuestring, t, nt,
                                    cJSON_GetObjectItemCaseSensitive(rs, "cookies"));
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "name", "Set-Cookie");
                cJSON_AddStringToObject(o, "value", v ? v : "");
                free(v);
                cJSON_AddItemToArray(headers, o);
            }
            break;
        }
    }
    table_free(t, nt);
}

/* A page's onContentLoad or onLoad: ms from its document's request to the
 * first such event of the top document after it and before the next
 * page's request (monotonic clock, as both come from the protocol); -1 if
 * none (a frame's document, or the run ended first). */
static double page_timing(const rr *r, const char *kind, double start, double next)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, r->loads)
    {
        const char *k = cJSON_GetStringValue(cJSON_GetArrayItem(x, 0));
        double at = cJSON_GetArrayItem(x, 1)->valuedouble;
        if (k && !strcmp(k, kind) && at >= start && (next <= 0 || at < next))
            return (double)(long)((at - start) * 1e6) / 1000;
    }
    return -1;
}

/* When the Network domain saw entry e's request leave (monotonic s), or 0. */
static double sent_at(const rr *r, const cJSON *e)
{
    const char *id = pt_json_str(e, "_networkId");
    return num(id ? cJSON_GetObjectItemCaseSensitive(r->net, id) : NULL, "ts", 0);
}

/* HAR pages: each document loaded starts one (named by its URL), and the
 * entries from there on name it in `pageref`; its onContentLoad and onLoad
 * are the top document's events after it (page_timing). */
static void har_pages(const rr *r, cJSON *pages, cJSON *entries)
{
    char id[32] = "";
    cJSON *e, *pg = NULL;
    double start = 0;
    int n = 0;
    cJSON_ArrayForEach(e, entries)
    {
        const char *type = pt_json_str(e, "_resourceType");
        if (type && !strcmp(type, "Document")) {
            double next = sent_at(r, e);
            if (pg) {
                cJSON *pt = cJSON_GetObjectItemCaseSensitive(pg, "pageTimings");
                cJSON_ReplaceItemInObject(pt, "onContentLoad",
                                          cJSON_CreateNumber(page_timing(r, "dcl", start, next)));
                cJSON_ReplaceItemInObject(pt, "onLoad",
                                          cJSON_CreateNumber(page_timing(r, "load", start, next)));
            }
            start = next;
            snprintf(id, sizeof(id), "page_%d", ++n);
            pg = cJSON_CreateObject();
            const char *at = pt_json_str(e, "startedDateTime");
            cJSON_AddStringToObject(pg, "startedDateTime", at ? at : "");
            cJSON_AddStringToObject(pg, "id", id);
            const char *url = pt_json_str(cJSON_GetObjectItem(e, "request"), "url");
            cJSON_AddStringToObject(pg, "title", url ? url : "");
            cJSON *pt = cJSON_AddObjectToObject(pg, "pageTimings");
            cJSON_AddNumberToObject(pt, "onContentLoad", -1);
            cJSON_AddNumberToObject(pt, "onLoad", -1);
            cJSON_AddItemToArray(pages, pg);
        }
        if (*id)
            cJSON_AddStringToObject(e, "pageref", id);
    }
    if (pg && start > 0) {
        cJSON *pt = cJSON_GetObjectItemCaseSensitive(pg, "pageTimings");
        cJSON_ReplaceItemInObject(pt, "onContentLoad",
                                  cJSON_CreateNumber(page_timing(r, "dcl", start, 0)));
        cJSON_ReplaceItemInObject(pt, "onLoad",
                                  cJSON_CreateNumber(page_timing(r, "load", start, 0)));
    }
    cJSON_ArrayForEach(e, entries)
    {
        cJSON_DeleteItemFromObject(e, "_networkId");
    }
}

int rr_finish(rr *r, char *err)
{
    if (!r->recording) {
        if (r->body_diffs)
            fprintf(stderr, "replay: %d request bodies differed from the recording\n",
                    r->body_diffs);
        return 0;
    }
    cJSON *har = cJSON_CreateObject(), *log = cJSON_AddObjectToObject(har, "log");
    cJSON_AddStringToObject(log, "version", "1.2");
    cJSON *creator = cJSON_AddObjectToObject(log, "creator");
    cJSON_AddStringToObject(creator, "name", "portier");
    cJSON_AddStringToObject(creator, "version", PORTIER_VERSION);
    cJSON *pages = cJSON_AddArrayToObject(log, "pages");
    pthread_mutex_lock(&r->mu);
    har_merge_network(r, r->entries);
    har_pages(r, pages, r->entries);
    cJSON_AddItemToObject(log, "entries", r->entries);
    r->entries = NULL;
    cJSON *meta = cJSON_AddObjectToObject(log, "_portier");
    cJSON_AddStringToObject(meta, "portal", r->portal ? r->portal : "");
    cJSON_AddStringToObject(meta, "sop", r->s->name ? r->s->name : "");
    char *steps = cJSON_Print(r->steps);
    pthread_mutex_unlock(&r->mu);
    char *json = cJSON_Print(har);
    cJSON_Delete(har);
    char path[4200];
    snprintf(path, sizeof(path), "%s/session.har", r->dir);
    int rc = json ? pt_write_file(path, json, strlen(json), 0644) : -1;
    snprintf(path, sizeof(path), "%s/steps.json", r->dir);
    if (rc == 0)
        rc = steps ? pt_write_file(path, steps, strlen(steps), 0644) : -1;
    free(json);
    free(steps);
    return rc < 0 ? pt_errf(err, "cannot write the recording into %s", r->dir) : 0;
}

void rr_free(rr *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ne; i++) {
        free(r->e[i].method);
        free(r->e[i].url);
        free(r->e[i].post);
        free(r->e[i].status_text);
        free(r->e[i].body);
        cJSON_Delete(r->e[i].headers);
    }
    free(r->e);
    for (int i = 0; i < r->ndoms; i++)
        free(r->dom_hashes[i]);
    free(r->dom_hashes);
    cJSON_Delete(r->entries);
    cJSON_Delete(r->steps);
    cJSON_Delete(r->net);
    cJSON_Delete(r->loads);
    free(r->missing);
    free(r->portal);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- Offline lint -------------------------------------------------------- */

/* A CSS selector (the common subset: tags, #id, .class, [attr], [attr=v],
 * [attr^=v], [attr$=v], [attr*=v], descendant and > combinators, lists with
 * commas) as XPath; NULL if it uses more. */
static char *css_to_xpath(const char *css)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    const char *p = css;
    pt_buf_append(&b, "//", 2);
    int start = 1;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (*p == ',') {
            pt_buf_append(&b, " | //", 5);
            p++;
            start = 1;
            continue;
        }
        if (*p == '>') {
            b.len -= 2; /* "//" -> "/" */
            pt_buf_append(&b, "/", 1);
            p++;
            start = 1;
            continue;
        }
        if (!start)
            pt_buf_append(&b, "//", 2);
        start = 0;
        /* one compound selector */
        if (isalpha((unsigned char)*p) || *p == '*') {
            const char *q = p;
            while (isalnum((unsigned char)*q) || *q == '-' || *q == '*')
                q++;
            pt_buf_append(&b, p, (size_t)(q - p));
            p = q;
        } else {
            pt_buf_append(&b, "*", 1);
        }
        while (*p && *p != ' ' && *p != ',' && *p != '>') {
            if (*p == '#' || *p == '.') {
                char kind = *p++;
                const char *q = p;
                while (isalnum((unsigned char)*q) || *q == '-' || *q == '_')
                    q++;
                if (q == p)
                    goto unsupported;
                if (kind == '#')
                    pt_buf_appendf(&b, "[@id='%.*s']", (int)(q - p), p);
                else
                    pt_buf_appendf(
                        &b, "[contains(concat(' ', normalize-space(@class), ' '), ' %.*s ')]",
                        (int)(q - p), p);
                p = q;
            } else if (*p == '[') {
                const char *q = ++p;
                while (isalnum((unsigned char)*q) || *q == '-' || *q == '_')
                    q++;
                int nlen = (int)(q - p);
                const char *name = p;
                if (*q == ']') {
                    pt_buf_appendf(&b, "[@%.*s]", nlen, name);
                    p = q + 1;
                    continue;
                }
                char op = *q == '=' ? '=' : q[1] == '=' ? *q : 0;
                if (!op)
                    goto unsupported;
                q += op == '=' ? 1 : 2;
                char quote = (*q == '"' || *q == '\'') ? *q++ : 0;
                const char *v = q;
                while (*q && (quote ? *q != quote : *q != ']'))
                    q++;
                int vlen = (int)(q - v);
                if (quote && *q)
                    q++;
                if (*q != ']')
                    goto unsupported;
                p = q + 1;
                if (op == '=')
                    pt_buf_appendf(&b, "[@%.*s='%.*s']", nlen, name, vlen, v);
                else if (op == '^')
                    pt_buf_appendf(&b, "[starts-with(@%.*s, '%.*s')]", nlen, name, vlen, v);
                else if (op == '*')
                    pt_buf_appendf(&b, "[contains(@%.*s, '%.*s')]", nlen, name, vlen, v);
                else if (op == '$')
                    pt_buf_appendf(&b, "[substring(@%.*s, string-length(@%.*s) - %d) = '%.*s']",
                                   nlen, name, nlen, name, vlen - 1, vlen, v);
                else
                    goto unsupported;
            } else {
                goto unsupported;
            }
        }
    }
    return pt_buf_take(&b);
unsupported:
    pt_buf_free(&b);
    return NULL;
}

static const char visible_xp[] =
    "[not(ancestor-or-self::*[@hidden or contains(translate(@style, ' ', ''), 'display:none')"
    " or self::script or self::style or self::template])]";

/* An XPath string literal for s (concat() when it has both quotes). */
static void xp_literal(pt_buf *b, const char *s)
{
    if (!strchr(s, '\''))
        pt_buf_appendf(b, "'%s'", s);
    else if (!strchr(s, '"'))
        pt_buf_appendf(b, "\"%s\"", s);
    else
        pt_buf_appendf(b, "'%s'", "");
}

static int count_xpath(xmlDocPtr doc, const char *xp, int *n)
{
    xmlXPathContextPtr c = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = c ? xmlXPathEvalExpression((const xmlChar *)xp, c) : NULL;
    int ok = o != NULL;
    *n = 0;
    if (o && o->nodesetval)
        for (int i = 0; i < o->nodesetval->nodeNr; i++)
            *n += o->nodesetval->nodeTab[i]->type == XML_ELEMENT_NODE;
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(c);
    return ok ? 0 : -1;
}

/* How many elements loc finds in doc; -1 if it cannot be told offline. */
static int count_locator(xmlDocPtr doc, const sop_locator *loc)
{
    if (loc->within)
        return -1; /* a scope: told at run time */
    const char *v = loc->value;
    if (!v || strstr(v, "{{"))
        return -1;
    pt_buf b;
    pt_buf_init(&b, 0);
    int n = -1;
    switch (loc->kind) {
    case SOP_LOC_CSS: {
        char *xp = css_to_xpath(v);
        if (xp) {
            pt_buf_appendf(&b, "(%s)%s", xp, visible_xp);
            free(xp);
        }
        break;
    }
    case SOP_LOC_XPATH:
        pt_buf_appendf(&b, "%s", v);
        break;
    case SOP_LOC_TEXT:
        /* the innermost elements whose text is the text */
        pt_buf_appendf(&b, "//body//*[normalize-space(.)=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, " and not(*[normalize-space(.)=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, "])]%s", visible_xp);
        break;
    case SOP_LOC_LABEL: {
        /* the fields of labels with that text (for= or inside), else
         * aria-label or placeholder */
        pt_buf_appendf(&b,
                       "(//*[self::input or self::select or self::textarea or @role='combobox'"
                       " or @role='textbox'][@id=//label[normalize-space(translate(., '*:', ''))=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, "]/@for or ancestor::label[normalize-space(translate(., '*:', ''))=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, "] or @aria-label=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, " or @aria-labelledby=//*[normalize-space(.)=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, "]/@id or @placeholder=");
        xp_literal(&b, v);
        /* a loose label (tied to no control): the widget that follows it */
        pt_buf_appendf(&b,
                       "] | //label[not(@for) and not(.//input or .//select or .//textarea) and "
                       "normalize-space(translate(., '*:', ''))=");
        xp_literal(&b, v);
        pt_buf_appendf(&b,
                       "]/following::*[(self::input and not(@type='hidden')) or self::select or "
                       "self::textarea or self::label or @role='combobox' or @role='textbox' or "
                       "@role='listbox' or @role='searchbox' or @role='spinbutton' or "
                       "@aria-haspopup][1][not(self::label)])%s",
                       visible_xp);
        break;
    }
    case SOP_LOC_ROLE: {
        const char *role = loc->role ? loc->role : "";
        if (!strcmp(role, "button"))
            pt_buf_appendf(&b, "//*[(self::button or @role='button' or (self::input and (@type="
                               "'submit' or @type='button'))) and (normalize-space(.)=");
        else if (!strcmp(role, "link"))
            pt_buf_appendf(&b,
                           "//*[((self::a and @href) or @role='link') and (normalize-space(.)=");
        else if (!strcmp(role, "checkbox") || !strcmp(role, "radio"))
            pt_buf_appendf(&b,
                           "//*[((self::input and @type='%s') or @role='%s') and (@id=//label["
                           "normalize-space(.)=",
                           role, role);
        else
            pt_buf_appendf(&b, "//*[@role='%s' and (normalize-space(.)=", role);
        xp_literal(&b, v);
        if (!strcmp(role, "checkbox") || !strcmp(role, "radio")) {
            pt_buf_appendf(&b, "]/@for or ancestor::label[normalize-space(.)=");
            xp_literal(&b, v);
            pt_buf_appendf(&b, "]");
        }
        pt_buf_appendf(&b, " or @aria-label=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, " or @value=");
        xp_literal(&b, v);
        pt_buf_appendf(&b, ")]%s", visible_xp);
        break;
    }
    }
    if (b.len && count_xpath(doc, b.data, &n) < 0)
        n = -1;
    pt_buf_free(&b);
    /* labels and ids are per shadow tree: a miss in a snapshot with shadow
     * roots (<template shadowrootmode>) is told at run time */
    int shadow = 0;
    if (n == 0 && count_xpath(doc, "//template[@shadowrootmode]", &shadow) == 0 && shadow > 0)
        n = -1;
    return n;
}

static const char *loc_kind_name(const sop_locator *loc)
{
    switch (loc->kind) {
    case SOP_LOC_CSS:
        return "css";
    case SOP_LOC_XPATH:
        return "xpath";
    case SOP_LOC_TEXT:
        return "text";
    case SOP_LOC_LABEL:
        return "label";
    case SOP_LOC_ROLE:
        return loc->role ? loc->role : "role";
    }
    return "?";
}

typedef struct lint_ctx {
    const char *dir;
    cJSON *steps;
    sop_diags *d;
    int problems;
    int checked;
    int offset;              /* how far the lines moved: of the last step matched by its text */
    const char *offset_file; /* in this file */
} lint_ctx;

/* The recorded step that st is: the same file and line with the same text,
 * else the same text (the lines moved since the recording; the nearest
 * line among several), else the same file and line if the recording has
 * no text for it. NULL: it did not act in the recording. */
static cJSON *recorded_step(lint_ctx *L, const sop_step *st)
{
    const char *b = strrchr(st->file, '/');
    const char *file = b ? b + 1 : st->file, *src = st->source ? st->source : "";
    cJSON *x, *by_line = NULL, *by_text = NULL;
    int best = 1 << 30;
    cJSON_ArrayForEach(x, L->steps)
    {
        const char *f = pt_json_str(x, "file"), *xs = pt_json_str(x, "source");
        cJSON *line = cJSON_GetObjectItem(x, "line");
        if (!f || strcmp(f, file) || !cJSON_IsNumber(line))
            continue;
        int same_text = xs && !strcmp(xs, src);
        if (line->valueint == st->line && (same_text || !xs))
            by_line = by_line ? by_line : x;
        int dist = abs(line->valueint - st->line);
        if (same_text && dist < best) {
            best = dist;
            by_text = x;
        }
    }
    cJSON *hit = by_line ? by_line : by_text;
    if (hit) {
        L->offset = st->line - cJSON_GetObjectItem(hit, "line")->valueint;
        L->offset_file = st->file;
        return hit;
    }
    /* an edited line: where the step matched before it in this file puts
     * it, if the recorded step there begins the same (step and locator
     * kind: "fill label ") */
    if (!L->offset_file || strcmp(L->offset_file, st->file))
        return NULL;
    size_t head = strcspn(src, "\"");
    cJSON_ArrayForEach(x, L->steps)
    {
        const char *f = pt_json_str(x, "file"), *xs = pt_json_str(x, "source");
        cJSON *line = cJSON_GetObjectItem(x, "line");
        if (f && !strcmp(f, file) && xs && !strncmp(xs, src, head) && xs[head] == '"' &&
            cJSON_IsNumber(line) && line->valueint == st->line - L->offset)
            return x;
    }
    return NULL;
}

/* Checks st's locator in the document its step acted in; a step that
 * cannot be checked is a warning that says why. */
static void lint_locator(lint_ctx *L, const sop_step *st)
{
    int col = st->loc.col ? st->loc.col : st->col;
    const char *kind = loc_kind_name(&st->loc), *step = sop_step_name(st->kind);
    cJSON *snap = recorded_step(L, st);
    const char *rel = snap ? pt_json_str(snap, "dom") : NULL;
    if (!rel) {
        sop_diags_add(L->d, st->file, st->line, col, 1,
                      "%s %s \"%s\": not checked: the step did not act in this recording "
                      "(a branch not taken, or a step added since)",
                      step, kind, st->loc.value);
        return;
    }
    char *html = read_body_file(L->dir, rel);
    const char *url = pt_json_str(snap, "url") ? pt_json_str(snap, "url") : "?";
    htmlDocPtr doc = html ? htmlReadMemory(html, (int)strlen(html), url, "UTF-8",
                                           HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                               HTML_PARSE_NOWARNING | HTML_PARSE_NONET)
                          : NULL;
    int n = doc ? count_locator(doc, &st->loc) : -2;
    if (strstr(st->loc.value, "{{")) {
        sop_diags_add(L->d, st->file, st->line, col, 1,
                      "%s %s \"%s\": not checked: its value comes from the task (a template)", step,
                      kind, st->loc.value);
    } else if (n < 0) {
        sop_diags_add(L->d, st->file, st->line, col, 1, "%s %s \"%s\": not checked: %s", step, kind,
                      st->loc.value,
                      n == -2 ? "its recorded document cannot be read"
                              : "this locator cannot be evaluated offline");
    } else {
        L->checked++;
        if (n == 0) {
            L->problems++;
            sop_diags_add(L->d, st->file, st->line, col, 0, "%s %s \"%s\": no match in %s", step,
                          kind, st->loc.value, url);
        } else if ((st->loc.nth == 0 && n > 1) || st->loc.nth > n) {
            L->problems++;
            sop_diags_add(L->d, st->file, st->line, col, 0, "%s %s \"%s\": %d matches in %s%s",
                          step, kind, st->loc.value, n, url,
                          st->loc.nth ? "" : " (say which with first, last or nth N)");
        }
    }
    xmlFreeDoc(doc);
    free(html);
}

static void lint_step(lint_ctx *L, const sop_step *st)
{
    if (st->has_loc && st->loc.value)
        lint_locator(L, st);
    for (size_t i = 0; i < st->body.n; i++)
        lint_step(L, &st->body.steps[i]);
    for (size_t i = 0; i < st->otherwise.n; i++)
        lint_step(L, &st->otherwise.steps[i]);
}

int rr_lint_against(const sop *s, const char *dir, sop_diags *d, char *err)
{
    char path[4200], *text = NULL;
    snprintf(path, sizeof(path), "%s/steps.json", dir);
    if (pt_read_file(path, 64u << 20, &text, NULL) < 0)
        return pt_errf(err, "no recording in %s (no steps.json)", dir);
    lint_ctx L = {dir, cJSON_Parse(text), d, 0, 0, 0, NULL};
    free(text);
    if (!cJSON_IsArray(L.steps)) {
        cJSON_Delete(L.steps);
        return pt_errf(err, "%s is not a step map", path);
    }
    xmlInitParser();
    for (size_t i = 0; i < s->steps.n; i++)
        lint_step(&L, &s->steps.steps[i]);
    cJSON_Delete(L.steps);
    PT_INFO("lint", "%d locators checked against %s", L.checked, dir);
    return L.problems;
}
