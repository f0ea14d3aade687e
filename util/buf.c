/*
 * buf.c - growable byte buffer with a cap. See buf.h.
 */
#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pt_buf_init(pt_buf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap ? cap : SIZE_MAX / 2;
}

int pt_buf_reserve(pt_buf *b, size_t extra)
{
    if (extra > b->cap || b->len > b->cap - extra)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->size)
        return 0;
    size_t nsize = b->size ? b->size : 256;
    while (nsize < need)
        nsize = nsize > SIZE_MAX / 4 ? need : nsize * 2;
    char *p = realloc(b->data, nsize);
    if (!p)
        return -1;
    b->data = p;
    b->size = nsize;
    return 0;
}

int pt_buf_append(pt_buf *b, const void *data, size_t len)
{
    if (pt_buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int pt_buf_appendf(pt_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || pt_buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void pt_buf_reset(pt_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void pt_buf_free(pt_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
}

char *pt_buf_take(pt_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->size = 0;
    return p;
}
