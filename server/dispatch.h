/*
 * dispatch.h - the queue between the API and the workers: new tasks are
 * written by one group-commit writer (many requests, one COMMIT), and
 * workers claim pending tasks oldest first, waking when one may be there.
 */
#ifndef PORTIER_DISPATCH_H
#define PORTIER_DISPATCH_H

#include "server/keys.h"
#include "server/task.h"

typedef struct dispatch dispatch;

/* Starts the writer thread with its own store connection on db_path
 * (copied), sealing under k (borrowed: it outlives the dispatch). At most
 * max_queue tasks are pending (0: no limit): near the limit they are
 * counted in the writer's own transaction, so the limit holds for every
 * node on the database.
 * NULL with err. */
dispatch *dispatch_start(const char *db_path, const keys *k, int max_queue, char *err);
/* Stops the writer (no request may be waiting in dispatch_create: stop the
 * HTTP server first) and wakes every dispatch_next. */
void dispatch_stop(dispatch *d);
/* Frees it after dispatch_stop, once no worker calls dispatch_next. */
void dispatch_free(dispatch *d);

/* Creates a task through the writer (task_create's result and return;
 * err holds PT_ERR_MAX bytes); PT_ELIMIT when the queue is full. */
int dispatch_create(dispatch *d, const task_new *n, task *t, char *err);
/* A task may be pending: wake a waiting worker. */
void dispatch_kick(dispatch *d);
/* Claims the oldest pending task (task_dispatch): PT_FOUND and *id; or
 * waits for a kick (at most half a second, a second after an error) and
 * returns PT_NONE; PT_ESTATE once stopped. A task another node created
 * comes with a kick from server/node.c (its wait for the store's
 * changes), else within the half second. */
int dispatch_next(dispatch *d, task_ctx *cx, int64_t *id);
/* Pending tasks (counted at most every 100 ms, every second while far
 * below the limit, by one caller at a time: a COUNT per request would
 * make POST /tasks slower the longer the queue). */
long long dispatch_queue_depth(dispatch *d, store *st);
/* The last count, with this node's creations since (no store read). */
long long dispatch_queue_counted(dispatch *d);

#endif
