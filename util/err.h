/*
 * err.h - the error convention shared by every Portier module.
 *
 * A function that can fail returns int: 0 on success, a negative code on
 * failure. When it takes `char *err`, that buffer holds PT_ERR_MAX bytes (or
 * is NULL) and receives a message a person can act on: what was wrong and
 * where. A call that fails leaves no half-built result behind.
 */
#ifndef PT_ERR_H
#define PT_ERR_H

#define PT_ERR_MAX 512

/* Writes a formatted message into err (if not NULL) and returns -1. */
int pt_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
