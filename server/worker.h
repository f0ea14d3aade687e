/*
 * worker.h - the workers: threads that claim pending tasks and run them in
 * the shared browser, and the holds that keep a run's browser context open
 * while it waits for input or review.
 *
 * A run that reaches an `ask` or `review` step parks: it frees its worker at
 * once (another task starts) and holds its browser context up to
 * hold_seconds for the API to hand it an answer or a decision, then goes on
 * where it stopped, on the next free worker. At most max_parked runs park;
 * past that the oldest, like one past its hold time, lets its context go
 * (the task stays waiting, and runs again from the start once answered).
 * Every status change is a move of server/task.h.
 */
#ifndef PORTIER_WORKER_H
#define PORTIER_WORKER_H

#include "server/bundle.h"
#include "server/dispatch.h"
#include "server/keys.h"
#include "server/pool.h"
#include "server/task.h"

#define WORKER_DURATION_BUCKETS 10

typedef struct workers workers;

/* What the workers run with: all borrowed; each outlives the workers. */
typedef struct worker_env {
    const char *db_path;  /* each worker opens its own store connection */
    const char *data_dir; /* trajectories go under data_dir/trajectories/ */
    int hold_seconds;
    int max_attempts; /* runs of a task its interruptions allow; 0: TASK_MAX_ATTEMPTS */
    int max_parked; /* runs that may hold their context while they wait; 0: none */
    dispatch *dispatch;
    pool *pool;
    bundle_cache *sops;
    const keys *keys;
    /* told after every move a worker makes (task_ctx.moved) */
    void (*moved)(void *ud, int64_t id, enum task_status to);
    void *ud;
    const char *node_id; /* what the workers claim is leased to this node */
    int64_t lease_ms;    /* for this long, renewed by server/node.c */
} worker_env;

/* Starts n workers (n may be 0). NULL with err. */
workers *workers_start(int n, const worker_env *env, char *err);
/* No new runs; holds end now. Runs in progress stop at their next step
 * (pool_stop cuts them short). */
void workers_stop(workers *w);
/* Joins the workers (after workers_stop and pool_stop) and frees them. */
void workers_free(workers *w);

/* If a worker holds task id waiting for input: moves it back to running
 * (task_answer) and hands the worker `answer` (copied). PT_FOUND if it did;
 * PT_NONE if no worker holds it or the move did not happen. */
int workers_answer(workers *w, task_ctx *cx, int64_t id, const char *answer);
/* If a worker holds task id pending review: approves (task_approve) or
 * rejects (task_reject with notes) it and hands the worker the decision and
 * comment (copied). PT_FOUND if a worker held it, else PT_NONE. */
int workers_decide(workers *w, task_ctx *cx, int64_t id, int approve, const char *notes,
                   const char *comment);
/* Tells the worker running task id (if any) to stop at its next step.
 * PT_FOUND if one runs it (*held: it is holding), else PT_NONE. */
int workers_cancel(workers *w, int64_t id, int *held);

/* The tasks this node's workers hold now (running or parked), at most max
 * into ids: their number. server/node.c renews their leases. */
size_t workers_held(workers *w, int64_t *ids, size_t max);
/* Task id's lease is no longer this node's (another node took it over):
 * the run holding it stops at its next step and moves nothing. */
void workers_lost(workers *w, int64_t id);
/* Draining: no new claims; runs in progress go on; parked runs let their
 * browser context go (the task keeps waiting for its answer). */
void workers_drain(workers *w);
/* Waits until no worker holds a task, or deadline_ms (monotonic) passes:
 * the number still held. */
int workers_wait_idle(workers *w, int64_t deadline_ms);
/* What is still held when the workers stop is handed back by the commit
 * rule (task_interrupt), not left for take-over: call before
 * workers_stop. */
void workers_hand_back(workers *w);

typedef struct worker_stats {
    int workers, busy, parked;
    long runs;                             /* finished runs timed */
    long ms_sum;                           /* their total time */
    long buckets[WORKER_DURATION_BUCKETS]; /* runs <= each bound (cumulative) */
} worker_stats;
/* The bounds of the buckets in ms (the last, 0, is +Inf). */
extern const long worker_duration_bounds[WORKER_DURATION_BUCKETS];
void workers_stats(workers *w, worker_stats *out);

#endif
