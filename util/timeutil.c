/*
 * timeutil.c - clocks and time formats. See timeutil.h.
 */
#include "util/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int64_t pt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pt_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pt_iso8601(int64_t epoch_ms, char out[25])
{
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char tmp[64]; /* wide enough for any int, so the compiler sees no truncation */
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
    memcpy(out, tmp, 24);
    out[24] = '\0';
}

struct timespec pt_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void pt_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void pt_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n digits at *p as a number (advancing p), or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/* The zone after a time: Z, +HH:MM or -HH:MM, into minutes east of UTC. */
static int zone(const char *p, int *minutes)
{
    if (!strcmp(p, "Z") || !strcmp(p, "z")) {
        *minutes = 0;
        return 0;
    }
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || p[3] != ':')
        return -1;
    int sign = *p == '-' ? -1 : 1;
    p++;
    int h = digits(&p, 2);
    p++;
    int m = digits(&p, 2);
    if (h < 0 || m < 0 || h > 23 || m > 59)
        return -1;
    *minutes = sign * (h * 60 + m);
    return 0;
}

int pt_iso8601_parse(const char *text, int64_t *epoch_ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int y = digits(&p, 4), mo = (*p == '-' ? (p++, digits(&p, 2)) : -1),
        d = (*p == '-' ? (p++, digits(&p, 2)) : -1);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
        return -1;
    int64_t ms = days_from_civil(y, mo, d) * 86400000LL;
    if (!*p) {
        *epoch_ms = ms;
        return 0;
    }
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    int h = digits(&p, 2), mi = (*p == ':' ? (p++, digits(&p, 2)) : -1), sec = 0, frac = 0;
    if (*p == ':' && (p++, (sec = digits(&p, 2)) < 0))
        return -1;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        if (!n)
            return -1;
        for (; n < 3; n++)
            frac *= 10;
    }
    int tz = 0;
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec > 59 || zone(p, &tz) < 0)
        return -1;
    *epoch_ms = ms + ((int64_t)h * 3600 + mi * 60 + sec - (int64_t)tz * 60) * 1000 + frac;
    return 0;
}
