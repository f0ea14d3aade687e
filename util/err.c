/*
 * err.c - see err.h.
 */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

int pt_errf(char *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, PT_ERR_MAX, fmt, ap);
        va_end(ap);
    }
    return -1;
}
