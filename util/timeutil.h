/*
 * timeutil.h - clocks and time formats used across Portier.
 */
#ifndef PT_TIMEUTIL_H
#define PT_TIMEUTIL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock: for timeouts and durations. */
int64_t pt_mono_ms(void);
/* Milliseconds since the Unix epoch: for timestamps. */
int64_t pt_wall_ms(void);
/* Formats epoch milliseconds as 2025-03-18T12:00:00.000Z into out (>= 25 bytes). */
void pt_iso8601(int64_t epoch_ms, char out[25]);
/* Parses an ISO-8601 date (2025-03-18, UTC midnight) or date-time with a
 * zone (2025-03-18T12:00:00Z, ...:00.000Z, ...:00+02:00; seconds optional)
 * into *epoch_ms. 0, or -1 when text is not one of those forms. */
int pt_iso8601_parse(const char *text, int64_t *epoch_ms);
/* An absolute CLOCK_MONOTONIC deadline `ms` from now, for pthread_cond_timedwait
 * on a condition variable created with pt_cond_init_monotonic(). */
struct timespec pt_deadline(int64_t ms);
void pt_cond_init_monotonic(pthread_cond_t *c);
void pt_sleep_ms(int64_t ms);

#endif
