/*
 * fuzz_multipart.c - fuzz target: the streaming multipart parser on
 * arbitrary bytes, split at places the input itself chooses (its first
 * byte), with small limits so they are hit too.
 */
#include "http/multipart.h"
#include "util/err.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_begin(void *ud, const char *name, const char *filename, const char *type, char *err)
{
    (void)ud;
    (void)name;
    (void)filename;
    (void)type;
    (void)err;
    return 0;
}

static int on_data(void *ud, const char *d, size_t n, char *err)
{
    (void)err;
    size_t *total = ud;
    for (size_t i = 0; i < n; i++)
        *total += (unsigned char)d[i]; /* touch every byte handed out */
    return 0;
}

static int on_end(void *ud, char *err)
{
    (void)ud;
    (void)err;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mp_callbacks cb = {on_begin, on_data, on_end};
    mp_limits lim = {.max_parts = 8, .max_header_bytes = 256, .max_part_bytes = 4096,
                     .max_total_bytes = 65536};
    char err[PT_ERR_MAX];
    size_t total = 0;
    size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;
    mp_parser *p = mp_new("multipart/form-data; boundary=xYz", &lim, &cb, &total, err);
    if (!p)
        return 0;
    int rc = 0;
    for (size_t off = 0; off < size && !rc; off += chunk)
        rc = mp_feed(p, (const char *)data + off, off + chunk <= size ? chunk : size - off, err);
    if (!rc)
        mp_finish(p, err);
    mp_free(p);
    return 0;
}
