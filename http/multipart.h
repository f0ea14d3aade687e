/*
 * multipart.h - a streaming multipart/form-data parser (RFC 7578), with caps.
 *
 * Portier parses multipart itself: libwebsockets 4.1's lws_spa has a heap
 * overflow no 4.1 release fixes (DESIGN.md). Bytes are fed as they arrive,
 * in chunks of any size; each part is handed to callbacks as it streams, so
 * a file can go to disk without the body ever being held in memory. Every
 * limit is enforced as bytes arrive, and every error names its byte offset.
 */
#ifndef PORTIER_MULTIPART_H
#define PORTIER_MULTIPART_H

#include <stddef.h>

typedef struct mp_parser mp_parser;

typedef struct mp_limits {
    size_t max_parts;        /* 0: 64 */
    size_t max_header_bytes; /* per part; 0: 8 KiB */
    size_t max_part_bytes;   /* per part's body; 0: 25 MiB */
    size_t max_total_bytes;  /* the whole body; 0: 25 MiB */
} mp_limits;

/* Callbacks return 0 to go on, or a negative PT_E* code to stop: mp_feed then
 * fails with that code (PT_EFAIL for a positive one) and the message they
 * left in err (PT_ERR_MAX bytes). Strings are borrowed for the call.
 * filename and content_type may be NULL. */
typedef struct mp_callbacks {
    int (*part_begin)(void *ud, const char *name, const char *filename, const char *content_type,
                      char *err);
    int (*part_data)(void *ud, const char *data, size_t len, char *err);
    int (*part_end)(void *ud, char *err);
} mp_callbacks;

/* A parser for a body whose Content-Type header is content_type (its
 * boundary is read from it). NULL with err set if it is not multipart or has
 * no usable boundary. */
mp_parser *mp_new(const char *content_type, const mp_limits *limits, const mp_callbacks *cb,
                  void *ud, char *err);
/* Feeds the next bytes. 0, or a negative code with err ("... at byte N"):
 * PT_ELIMIT past a cap (parts, a part's headers or bytes, the whole body),
 * PT_EINVAL for a malformed body, a callback's own code if it refused, or
 * PT_ENOMEM. After an error the parser accepts nothing more (and says so
 * with the same code). */
int mp_feed(mp_parser *p, const char *data, size_t len, char *err);
/* The body has ended: 0 if the closing boundary was seen, else PT_EINVAL
 * (or the code of an earlier failure). */
int mp_finish(mp_parser *p, char *err);
void mp_free(mp_parser *p);

#endif
