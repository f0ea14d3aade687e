/*
 * retention.h - purging final tasks' data after the retention period
 * (`serve --retain-days N`): their files, trajectories and sealed columns
 * (data, notes, question, answers, review comment, the delivered webhook's
 * payload). The task row keeps its status and times. Runs in a thread of
 * its own with its own store connection, and logs counts, never a value.
 */
#ifndef PORTIER_RETENTION_H
#define PORTIER_RETENTION_H

#include "server/store.h"

#include <stdint.h>

typedef struct retention retention;

/* Starts the sweeper: a final task untouched for retain_ms is purged
 * (db_path is copied). It looks every minute, or every tenth of retain_ms
 * when that is shorter (at least every second). NULL with err. */
retention *retention_start(const char *db_path, int64_t retain_ms, char *err);
/* Stops and frees it (NULL: no-op). */
void retention_stop(retention *r);

/* One sweep on st: purges what is due at `now`, at most max tasks.
 * *tasks, *files and *trajectories count what went. 0 or -1. */
int retention_sweep(store *st, int64_t now, int64_t retain_ms, size_t max, size_t *tasks,
                    size_t *files, size_t *trajectories);

#endif
