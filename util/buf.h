/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * Everything that accumulates bytes from the network grows through this, so
 * nothing grows without bound: past `cap` an append fails and the buffer is
 * left as it was. The data is always NUL-terminated (not counted in len).
 */
#ifndef PT_BUF_H
#define PT_BUF_H

#include <stddef.h>

typedef struct pt_buf {
    char *data;  /* owned; NULL until the first append */
    size_t len;  /* bytes in use */
    size_t size; /* bytes allocated */
    size_t cap;  /* most bytes it may ever hold; 0 means SIZE_MAX/2 */
} pt_buf;

void pt_buf_init(pt_buf *b, size_t cap);
/* Returns 0, or -1 when the append would pass the cap or memory ran out. */
int pt_buf_append(pt_buf *b, const void *data, size_t len);
int pt_buf_appendf(pt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for `extra` more bytes (plus the NUL) without changing len. */
int pt_buf_reserve(pt_buf *b, size_t extra);
void pt_buf_reset(pt_buf *b); /* len = 0, keeps the memory */
void pt_buf_free(pt_buf *b);
/* Hands the data to the caller (who frees it) and empties the buffer. */
char *pt_buf_take(pt_buf *b);

#endif
