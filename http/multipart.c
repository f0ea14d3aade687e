/*
 * multipart.c - streaming multipart/form-data parser. See multipart.h.
 *
 *   PREAMBLE --"--B"--> AFTER_DELIM --CRLF--> HEADERS --CRLFCRLF--> BODY
 *                          |   ^                                     |
 *                          |   +----------- "CRLF--B" --------------+
 *                          +--"--"--> EPILOGUE (done; the rest is ignored)
 *
 * Bytes not yet decided on wait in `pending`: at most a part's headers, or
 * the few bytes at the end of a chunk that may begin a boundary. A part's
 * body is passed on as soon as it is known not to be part of a boundary.
 */
#define _GNU_SOURCE
#include "http/multipart.h"
#include "util/buf.h"
#include "util/err.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum state { PREAMBLE, AFTER_DELIM, HEADERS, BODY, EPILOGUE, FAILED };

struct mp_parser {
    mp_limits lim;
    mp_callbacks cb;
    void *ud;
    char delim[80]; /* "\r\n--" boundary */
    size_t dlen;
    enum state st;
    pt_buf pending;
    size_t pos;      /* first undecided byte in pending */
    size_t consumed; /* bytes of the body before pending[pos] */
    size_t fed;      /* bytes fed in all */
    size_t parts;
    size_t part_bytes;
    int failed; /* the code of the failure that stopped it (FAILED) */
};

mp_parser *mp_new(const char *content_type, const mp_limits *limits, const mp_callbacks *cb,
                  void *ud, char *err)
{
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19) != 0) {
        pt_errf(err, "Content-Type is not multipart/form-data");
        return NULL;
    }
    const char *b = strcasestr(content_type, "boundary=");
    if (!b) {
        pt_errf(err, "multipart/form-data without a boundary");
        return NULL;
    }
    b += 9;
    char boundary[72];
    size_t n = 0;
    if (*b == '"') {
        for (b++; *b && *b != '"' && n < sizeof(boundary) - 1; b++)
            boundary[n++] = *b;
        if (*b != '"') {
            pt_errf(err, "the multipart boundary is not closed, or is over 70 characters");
            return NULL;
        }
    } else {
        for (; *b && *b != ';' && !isspace((unsigned char)*b) && n < sizeof(boundary) - 1; b++)
            boundary[n++] = *b;
        if (*b && *b != ';' && !isspace((unsigned char)*b)) {
            pt_errf(err, "the multipart boundary is over 70 characters");
            return NULL;
        }
    }
    boundary[n] = '\0';
    if (n < 1 || n > 70) {
        pt_errf(err, "the multipart boundary must be 1 to 70 characters");
        return NULL;
    }
    mp_parser *p = calloc(1, sizeof(*p));
    if (!p) {
        pt_errf(err, "out of memory");
        return NULL;
    }
    p->lim.max_parts = limits && limits->max_parts ? limits->max_parts : 64;
    p->lim.max_header_bytes = limits && limits->max_header_bytes ? limits->max_header_bytes : 8192;
    p->lim.max_part_bytes = limits && limits->max_part_bytes ? limits->max_part_bytes : 25u << 20;
    p->lim.max_total_bytes =
        limits && limits->max_total_bytes ? limits->max_total_bytes : 25u << 20;
    p->cb = *cb;
    p->ud = ud;
    p->dlen = (size_t)snprintf(p->delim, sizeof(p->delim), "\r\n--%s", boundary);
    pt_buf_init(&p->pending, 0);
    return p;
}

void mp_free(mp_parser *p)
{
    if (!p)
        return;
    pt_buf_free(&p->pending);
    free(p);
}

/* Stops the parser for good with code (PT_ELIMIT for a cap, PT_EINVAL for a
 * malformed body, ...) and the message; returns code. */
static int fail(mp_parser *p, char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(mp_parser *p, char *err, int code, const char *fmt, ...)
{
    char msg[PT_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->st = FAILED;
    p->failed = code;
    return pt_errc(err, code, "%s", msg);
}

/* A callback said stop (rc non-zero): its code if it gave one, its words if
 * it left some. */
static int refused(mp_parser *p, int rc, char *err, const char *fallback)
{
    return fail(p, err, rc < 0 ? rc : PT_EFAIL, "%s", err && *err ? err : fallback);
}

static const char *undecided(mp_parser *p, size_t *len)
{
    *len = p->pending.len - p->pos;
    return p->pending.data ? p->pending.data + p->pos : "";
}

static void consume(mp_parser *p, size_t n)
{
    p->pos += n;
    p->consumed += n;
}

static int emit(mp_parser *p, const char *data, size_t len, char *err)
{
    if (!len)
        return 0;
    if (len > p->lim.max_part_bytes - p->part_bytes)
        return fail(p, err, PT_ELIMIT, "a part is over the %zu-byte limit (at byte %zu)",
                    p->lim.max_part_bytes, p->consumed + (p->lim.max_part_bytes - p->part_bytes));
    p->part_bytes += len;
    int rc = p->cb.part_data ? p->cb.part_data(p->ud, data, len, err) : 0;
    return rc ? refused(p, rc, err, "stopped while reading a part") : 0;
}

/* A parameter of a header value: name="x" or name=x. New string or NULL. */
static char *param(const char *value, const char *key)
{
    size_t klen = strlen(key);
    for (const char *s = value; (s = strcasestr(s, key)) != NULL; s += klen) {
        /* a whole parameter name: after ';' or a space, before '=' */
        if (s != value && s[-1] != ';' && s[-1] != ' ' && s[-1] != '\t')
            continue;
        const char *v = s + klen;
        while (*v == ' ')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ')
            v++;
        char *out = malloc(strlen(v) + 1);
        if (!out)
            return NULL;
        size_t n = 0;
        if (*v == '"') {
            for (v++; *v && *v != '"'; v++) {
                if (*v == '\\' && v[1])
                    v++;
                out[n++] = *v;
            }
            if (*v != '"') {
                free(out);
                return NULL;
            }
        } else {
            while (*v && *v != ';' && !isspace((unsigned char)*v))
                out[n++] = *v++;
        }
        out[n] = '\0';
        return out;
    }
    return NULL;
}

/* Parses a part's header block (without the blank line) and begins it. */
static int begin_part(mp_parser *p, const char *h, size_t len, size_t at, char *err)
{
    if (memchr(h, '\0', len))
        return fail(p, err, PT_EINVAL, "a part header holds a NUL byte (at byte %zu)", at);
    char *block = strndup(h, len);
    char *disposition = NULL, *type = NULL;
    int rc = 0;
    if (!block)
        return fail(p, err, PT_ENOMEM, "out of memory");
    for (char *save = NULL, *line = strtok_r(block, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            rc = fail(p, err, PT_EINVAL, "a part header is not 'Name: value' (at byte %zu)", at);
            goto out;
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!strcasecmp(line, "Content-Disposition"))
            disposition = v;
        else if (!strcasecmp(line, "Content-Type"))
            type = v;
    }
    if (!disposition || strncasecmp(disposition, "form-data", 9) != 0) {
        rc = fail(p, err, PT_EINVAL, "a part has no Content-Disposition: form-data (at byte %zu)",
                  at);
        goto out;
    }
    char *name = param(disposition, "name");
    char *filename = param(disposition, "filename");
    if (!name || !*name)
        rc = fail(p, err, PT_EINVAL, "a part has no name (at byte %zu)", at);
    else if (p->cb.part_begin && (rc = p->cb.part_begin(p->ud, name, filename, type, err)) != 0)
        rc = refused(p, rc, err, "a part was refused");
    free(name);
    free(filename);
out:
    free(block);
    return rc;
}

static int already_failed(const mp_parser *p, char *err)
{
    return pt_errc(err, p->failed ? p->failed : PT_ESTATE, "the multipart body already failed");
}

static int step(mp_parser *p, int *progress, char *err)
{
    size_t len;
    const char *d = undecided(p, &len);
    *progress = 0;
    switch (p->st) {
    case PREAMBLE: {
        /* the first boundary may open the body, or follow a preamble */
        if (len >= p->dlen - 2 && !memcmp(d, p->delim + 2, p->dlen - 2)) {
            consume(p, p->dlen - 2);
            p->st = AFTER_DELIM;
            *progress = 1;
            return 0;
        }
        const char *hit = memmem(d, len, p->delim, p->dlen);
        if (hit) {
            consume(p, (size_t)(hit - d) + p->dlen);
            p->st = AFTER_DELIM;
            *progress = 1;
        } else if (len > p->dlen) {
            consume(p, len - p->dlen); /* preamble: ignored */
            *progress = 1;
        }
        return 0;
    }
    case AFTER_DELIM: {
        size_t i = 0;
        while (i < len && (d[i] == ' ' || d[i] == '\t')) /* transport padding */
            i++;
        if (len - i < 2)
            return 0;
        if (d[i] == '-' && d[i + 1] == '-') {
            consume(p, i + 2);
            p->st = EPILOGUE;
        } else if (d[i] == '\r' && d[i + 1] == '\n') {
            if (++p->parts > p->lim.max_parts)
                return fail(p, err, PT_ELIMIT, "more than %zu parts (at byte %zu)",
                            p->lim.max_parts, p->consumed);
            consume(p, i + 2);
            p->st = HEADERS;
        } else {
            return fail(p, err, PT_EINVAL,
                        "expected a line break or -- after the boundary at byte %zu",
                        p->consumed + i);
        }
        *progress = 1;
        return 0;
    }
    case HEADERS: {
        const char *end = memmem(d, len, "\r\n\r\n", 4);
        size_t hlen = end ? (size_t)(end - d) : len;
        if (hlen > p->lim.max_header_bytes)
            return fail(p, err, PT_ELIMIT, "a part's headers are over %zu bytes (at byte %zu)",
                        p->lim.max_header_bytes, p->consumed);
        if (!end) {
            if (len == 2 && !memcmp(d, "\r\n", 2)) { /* a part with no headers */
                return fail(p, err, PT_EINVAL,
                            "a part has no Content-Disposition: form-data (at byte %zu)",
                            p->consumed);
            }
            return 0;
        }
        int rc = begin_part(p, d, hlen, p->consumed, err);
        if (rc < 0)
            return rc;
        consume(p, hlen + 4);
        p->part_bytes = 0;
        p->st = BODY;
        *progress = 1;
        return 0;
    }
    case BODY: {
        const char *hit = memmem(d, len, p->delim, p->dlen);
        if (hit) {
            size_t n = (size_t)(hit - d);
            int rc = emit(p, d, n, err);
            if (rc < 0)
                return rc;
            if (p->cb.part_end && (rc = p->cb.part_end(p->ud, err)) != 0)
                return refused(p, rc, err, "a part was refused");
            consume(p, n + p->dlen);
            p->st = AFTER_DELIM;
            *progress = 1;
        } else if (len >= p->dlen) {
            /* all but what may be the start of a boundary */
            size_t n = len - (p->dlen - 1);
            int rc = emit(p, d, n, err);
            if (rc < 0)
                return rc;
            consume(p, n);
            *progress = 1;
        }
        return 0;
    }
    case EPILOGUE:
        consume(p, len);
        return 0;
    case FAILED:
        return already_failed(p, err);
    }
    return 0;
}

int mp_feed(mp_parser *p, const char *data, size_t len, char *err)
{
    if (p->st == FAILED)
        return already_failed(p, err);
    if (len > p->lim.max_total_bytes - p->fed)
        return fail(p, err, PT_ELIMIT, "the body is over the %zu-byte limit (at byte %zu)",
                    p->lim.max_total_bytes, p->lim.max_total_bytes);
    p->fed += len;
    if (p->st == EPILOGUE)
        return 0;
    /* drop what is decided, then add the new bytes */
    if (p->pos) {
        memmove(p->pending.data, p->pending.data + p->pos, p->pending.len - p->pos);
        p->pending.len -= p->pos;
        p->pos = 0;
    }
    if (pt_buf_append(&p->pending, data, len) < 0)
        return fail(p, err, PT_ENOMEM, "out of memory");
    int progress = 1;
    while (progress && p->st != EPILOGUE) {
        int rc = step(p, &progress, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mp_finish(mp_parser *p, char *err)
{
    if (p->st == FAILED)
        return already_failed(p, err);
    if (p->st != EPILOGUE)
        return fail(p, err, PT_EINVAL, "the body ended at byte %zu before its closing boundary",
                    p->fed);
    return 0;
}
