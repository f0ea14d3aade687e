/*
 * b64.h - standard base64 (RFC 4648, with padding).
 */
#ifndef PT_B64_H
#define PT_B64_H

#include <stddef.h>

/* Returns a new NUL-terminated string; the caller frees it. NULL on OOM. */
char *pt_b64_encode(const void *data, size_t len);
/* Decodes into a new buffer (caller frees), setting *outlen. Whitespace is
 * skipped. Returns NULL on invalid input or OOM. */
unsigned char *pt_b64_decode(const char *s, size_t len, size_t *outlen);

#endif
