/*
 * dispatch.c - task creation's group commit and the workers' wake-up. See
 * dispatch.h. Owns the writer thread, the creation queue and the "work"
 * condition, each under its own lock; it never runs a task.
 */
#include "server/dispatch.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A task creation waiting for the writer (on the requesting thread's stack). */
typedef struct create_req {
    struct create_req *next;
    const task_new *in;
    task *out;
    int rc;
    char err[PT_ERR_MAX];
    int done;
    pthread_cond_t done_cv; /* its own: a batch's end wakes only its requests */
} create_req;

struct dispatch {
    char *db_path;
    const keys *keys;
    int max_queue;
    pthread_t writer;
    int writer_started;
    pthread_mutex_t create_mu; /* guards create_q, create_stop, create_req.done */
    int create_stop;
    pthread_cond_t create_wake;
    create_req *create_q;

    pthread_mutex_t work_mu; /* guards stopping; with work */
    pthread_cond_t work;     /* a task may be pending */
    int stopping;

    atomic_llong queued;
    atomic_llong queued_at;
};

/* Whether r may add a task to a queue of `pending`: a retry of a key
 * already used gets its task whatever the queue holds. */
static int has_room(dispatch *d, store *st, const create_req *r, long long pending)
{
    if (d->max_queue <= 0 || pending < d->max_queue)
        return 1;
    task t;
    int replay = r->in->idem_key &&
                 store_task_by_idempotency(st, r->in->account, r->in->idem_key, &t, NULL) == 1;
    if (replay)
        task_free(&t);
    return replay;
}

/* How far below the limit the queue may look (by dispatch_queue_depth's
 * count, at most 100 ms old near the limit) for a batch to skip the exact
 * count: more than all the nodes create in 100 ms (one node makes 5,000
 * to 7,000 a second on PostgreSQL, bench api). Counting a long queue for
 * every batch would make POST /tasks slower the longer the queue. */
#define QUEUE_EXACT_SLACK 2000
/* Below the limit by more than this, the count may be a second old: ten
 * times the slack's 100 ms, and the slack again. */
#define QUEUE_FAR (11 * QUEUE_EXACT_SLACK)

/* Runs one batch of creations in one transaction (a savepoint each; with
 * fast, where the backend can, none: store_batch_begin_fast). Near the
 * limit the queue is counted inside it: on SQLite the batch holds the
 * write lock, so no other node adds a task between the count and the
 * COMMIT (PostgreSQL: store_begin's transaction-level advisory lock, for
 * the same reason). 0, or -1 when a fast batch failed as a whole before
 * its COMMIT (nothing of it stored, no request answered: run it again
 * without fast). */
static int create_batch_once(dispatch *d, store *st, create_req *batch, int fast)
{
    task_ctx cx = {st, NULL, NULL, NULL, 0};
    long long nbatch = 0, pending = -1; /* -1: far from the limit, not counted */
    for (create_req *r = batch; r; r = r->next)
        nbatch++;
    int began = !st    ? -1
                : fast ? store_batch_begin_fast(st, (size_t)nbatch)
                       : store_batch_begin(st);
    int ok = began >= 0;
    fast = began == 1;
    if (ok && d->max_queue > 0 && d->queued + nbatch + QUEUE_EXACT_SLACK >= d->max_queue)
        pending = store_task_count_status(st, task_status_name(TASK_PENDING));
    for (create_req *r = batch; r; r = r->next) {
        char e[PT_ERR_MAX] = "";
        if (!ok)
            r->rc = pt_errf(e, "the store is not available");
        else if (pending >= 0 && !has_room(d, st, r, pending))
            r->rc = pt_errc(e, PT_ELIMIT, "%lld tasks are waiting to run (the limit is %d)",
                            pending, d->max_queue);
        else if ((r->rc = task_create(&cx, r->in, r->out, e)) == 0 && pending >= 0)
            pending++;
        snprintf(r->err, sizeof(r->err), "%s", e);
    }
    int ended = ok ? store_batch_end(st) : 0;
    if (ended < 0) {
        for (create_req *r = batch; r; r = r->next) {
            if (r->rc >= 0)
                task_free(r->out);
            r->rc = -1;
            snprintf(r->err, sizeof(r->err), "the store could not commit the task");
        }
        /* a COMMIT that failed may have stored it (PT_ECLOSED): not again */
        return fast && ended == -1 ? -1 : 0;
    }
    return 0;
}

/* A batch without uploads goes in one pipeline first; if that fails, each
 * creation in it is tried on its own (savepoints), so one bad request
 * fails alone. */
static void create_batch(dispatch *d, store *st, create_req *batch)
{
    int fast = 1;
    for (create_req *r = batch; r && fast; r = r->next)
        fast = r->in->nfiles == 0;
    if (fast && create_batch_once(d, st, batch, 1) == 0)
        return;
    if (fast)
        PT_WARN("service", "a batch of task creations failed as one: trying each on its own");
    create_batch_once(d, st, batch, 0);
}

/* Takes every waiting creation, runs them in one transaction, commits once,
 * then answers them all: under load, one WAL commit serves many requests
 * instead of each contending for the lock. */
static void *writer_main(void *arg)
{
    dispatch *d = arg;
    char err[PT_ERR_MAX];
    store *st = store_open(d->db_path, 0, err);
    if (!st)
        PT_ERROR("service", "the task writer cannot open the store: %s", err);
    else
        keys_attach(d->keys, st);
    pthread_mutex_lock(&d->create_mu);
    for (;;) {
        while (!d->create_q && !d->create_stop)
            pthread_cond_wait(&d->create_wake, &d->create_mu);
        if (!d->create_q && d->create_stop)
            break;
        create_req *batch = d->create_q;
        d->create_q = NULL;
        pthread_mutex_unlock(&d->create_mu);
        /* the queue was pushed newest first: run them in arrival order */
        create_req *rev = NULL;
        while (batch) {
            create_req *n = batch->next;
            batch->next = rev;
            rev = batch;
            batch = n;
        }
        create_batch(d, st, rev);
        pthread_mutex_lock(&d->create_mu);
        for (create_req *r = rev, *next; r; r = next) {
            next = r->next; /* r is the requester's, gone once it wakes */
            r->done = 1;
            pthread_cond_signal(&r->done_cv);
        }
        pthread_mutex_unlock(&d->create_mu);
        dispatch_kick(d); /* new pending tasks */
        pthread_mutex_lock(&d->create_mu);
    }
    pthread_mutex_unlock(&d->create_mu);
    store_close(st);
    return NULL;
}

dispatch *dispatch_start(const char *db_path, const keys *k, int max_queue, char *err)
{
    dispatch *d = calloc(1, sizeof(*d));
    if (!d || !(d->db_path = strdup(db_path))) {
        free(d);
        pt_errc(err, PT_ENOMEM, "out of memory");
        return NULL;
    }
    d->keys = k;
    d->max_queue = max_queue;
    pthread_mutex_init(&d->create_mu, NULL);
    pthread_cond_init(&d->create_wake, NULL);
    pthread_mutex_init(&d->work_mu, NULL);
    pt_cond_init_monotonic(&d->work);
    if (pthread_create(&d->writer, NULL, writer_main, d) != 0) {
        pt_errf(err, "cannot start the task writer");
        dispatch_free(d);
        return NULL;
    }
    d->writer_started = 1;
    return d;
}

void dispatch_stop(dispatch *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->work_mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->work);
    pthread_mutex_unlock(&d->work_mu);
    pthread_mutex_lock(&d->create_mu);
    d->create_stop = 1;
    pthread_cond_broadcast(&d->create_wake);
    pthread_mutex_unlock(&d->create_mu);
    if (d->writer_started) {
        pthread_join(d->writer, NULL);
        d->writer_started = 0;
    }
}

void dispatch_free(dispatch *d)
{
    if (!d)
        return;
    dispatch_stop(d);
    pthread_cond_destroy(&d->create_wake);
    pthread_mutex_destroy(&d->create_mu);
    pthread_cond_destroy(&d->work);
    pthread_mutex_destroy(&d->work_mu);
    free(d->db_path);
    free(d);
}

int dispatch_create(dispatch *d, const task_new *n, task *t, char *err)
{
    create_req req = {.in = n, .out = t};
    pthread_mutex_lock(&d->create_mu);
    if (d->create_stop) {
        pthread_mutex_unlock(&d->create_mu);
        return pt_errc(err, PT_ESTATE, "the service is stopping");
    }
    pthread_cond_init(&req.done_cv, NULL);
    req.next = d->create_q;
    d->create_q = &req;
    pthread_cond_signal(&d->create_wake);
    while (!req.done)
        pthread_cond_wait(&req.done_cv, &d->create_mu);
    pthread_mutex_unlock(&d->create_mu);
    pthread_cond_destroy(&req.done_cv);
    if (req.rc == 0)
        d->queued++;
    if (req.rc < 0 && err)
        snprintf(err, PT_ERR_MAX, "%s", req.err);
    return req.rc;
}

void dispatch_kick(dispatch *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->work_mu);
    pthread_cond_broadcast(&d->work);
    pthread_mutex_unlock(&d->work_mu);
}

int dispatch_next(dispatch *d, task_ctx *cx, int64_t *id)
{
    pthread_mutex_lock(&d->work_mu);
    int stopping = d->stopping;
    pthread_mutex_unlock(&d->work_mu);
    if (stopping)
        return PT_ESTATE;
    int got = cx->st ? task_dispatch(cx, id) : PT_EFAIL;
    if (got == PT_FOUND)
        return PT_FOUND;
    struct timespec until = pt_deadline(got < 0 ? 1000 : 500);
    pthread_mutex_lock(&d->work_mu);
    if (!d->stopping)
        pthread_cond_timedwait(&d->work, &d->work_mu, &until);
    pthread_mutex_unlock(&d->work_mu);
    return PT_NONE;
}

long long dispatch_queue_depth(dispatch *d, store *st)
{
    long long now = pt_mono_ms(), at = d->queued_at;
    /* this node's creations are counted as they happen (dispatch_create);
     * far below the limit, other nodes' take a second or more to matter
     * (QUEUE_EXACT_SLACK's rate): a long queue is counted once a second,
     * not ten times */
    long long every = d->max_queue <= 0 || d->max_queue - d->queued > QUEUE_FAR ? 1000 : 100;
    /* one caller counts; the others meanwhile take the last count */
    if (now - at > every && atomic_compare_exchange_strong(&d->queued_at, &at, now)) {
        long long n = store_task_count_status(st, task_status_name(TASK_PENDING));
        if (n >= 0)
            d->queued = n;
    }
    return d->queued;
}

long long dispatch_queue_counted(dispatch *d)
{
    return d->queued;
}
