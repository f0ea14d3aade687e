/*
 * err.h - the error convention shared by every Portier module.
 *
 * A function that can fail returns int: 0 (PT_OK) on success, a negative
 * PT_E* code on failure. A look-up returns PT_FOUND (1), PT_NONE (0) or a
 * negative code. Callers decide by the code, never by reading the message:
 * the message is for a person.
 *
 * When a function takes `char *err`, that buffer holds PT_ERR_MAX bytes (or
 * is NULL) and receives a message a person can act on: what was wrong and
 * where, never a value that may be PHI or a secret. A call that fails leaves
 * no half-built result behind.
 */
#ifndef PT_ERR_H
#define PT_ERR_H

#define PT_ERR_MAX 512

enum pt_err {
    PT_OK = 0,
    PT_NONE = 0,  /* a look-up found nothing (not an error) */
    PT_FOUND = 1, /* a look-up found what it looked for */

    PT_EFAIL = -1,    /* any failure the caller handles as one */
    PT_EINVAL = -2,   /* the input is malformed: the caller's fault, say where */
    PT_ELIMIT = -3,   /* a size, count or rate cap was passed */
    PT_ETIMEOUT = -4, /* a deadline passed with no answer */
    PT_EGONE = -5,    /* the peer refuses for good (HTTP 410, a closed target) */
    PT_ECLOSED = -6,  /* the connection or process went away (browser crash) */
    PT_ESTATE = -7,   /* not allowed in the current state (a task's status) */
    PT_ENOMEM = -8,   /* out of memory */
};

/* Writes a formatted message into err (if not NULL) and returns PT_EFAIL. */
int pt_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a chosen code: returns code. */
int pt_errc(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A short name for a code ("timeout", "limit"), for logs and tests. */
const char *pt_err_name(int code);

#endif
