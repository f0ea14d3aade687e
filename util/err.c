/*
 * err.c - see err.h.
 */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

static void vfill(char *err, const char *fmt, va_list ap)
{
    if (err)
        vsnprintf(err, PT_ERR_MAX, fmt, ap);
}

int pt_errf(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfill(err, fmt, ap);
    va_end(ap);
    return PT_EFAIL;
}

int pt_errc(char *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfill(err, fmt, ap);
    va_end(ap);
    return code;
}

const char *pt_err_name(int code)
{
    switch (code) {
    case PT_OK:
        return "ok";
    case PT_FOUND:
        return "found";
    case PT_EFAIL:
        return "failed";
    case PT_EINVAL:
        return "invalid";
    case PT_ELIMIT:
        return "limit";
    case PT_ETIMEOUT:
        return "timeout";
    case PT_EGONE:
        return "gone";
    case PT_ECLOSED:
        return "closed";
    case PT_ESTATE:
        return "state";
    case PT_ENOMEM:
        return "no memory";
    default:
        return "error";
    }
}
