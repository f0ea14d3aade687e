/*
 * node.c - this serve process among the nodes of one database: its row and
 * beat, lease renewal for its workers' tasks, take-over of dead nodes'
 * tasks, and wake-ups from other nodes' writes. See node.h. Owns the
 * node's thread and its store connection; it never runs a task (workers
 * do) and never decides a status by itself (task_interrupt's commit rule
 * does).
 *
 *   the node's thread, every lease/3:      between beats:
 *     beat (seen_at, state)                  store_wait_changes (250 ms)
 *     renew the leases of held tasks           -> kick workers, webhooks
 *       lost -> workers_lost (stop, move nothing)
 *       cancel asked on another node -> workers_cancel
 *     take-over pass
 */
#define _GNU_SOURCE
#include "server/node.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NODE_HELD_MAX 512 /* tasks one node's workers hold at once (workers + parked) */
#define NODE_PASS_MAX 256 /* tasks one take-over pass looks at */
#define NODE_WAIT_MS 250  /* one wait for other nodes' writes */

struct node {
    store *st; /* the node thread's (the starting thread's until node_run) */
    store_node self;
    int64_t lease_ms;
    int max_attempts;
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards stop */
    int stop;
    atomic_int draining;
    atomic_int beat_now; /* the state changed: beat at once */
    atomic_long taken; /* tasks taken over, in all */
    workers *w;
    dispatch *d;
    webhooks *h;
    void (*moved)(void *, int64_t, enum task_status);
    void *ud;
};

/* ---- Identity --------------------------------------------------------------- */

/* What makes pids comparable: the kernel's boot and the pid namespace
 * (two containers on one host share the first, not the second). */
static void proc_key(char *out, size_t n)
{
    char boot[64] = "", ns[64] = "";
    char *t = NULL;
    if (pt_read_file("/proc/sys/kernel/random/boot_id", 64, &t, NULL) == 0) {
        snprintf(boot, sizeof(boot), "%s", t);
        boot[strcspn(boot, "\n")] = '\0';
    }
    free(t);
    ssize_t len = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
    ns[len > 0 ? len : 0] = '\0';
    snprintf(out, n, "%s/%s", boot, ns);
}

/* Whether node row r is known dead (not merely silent): stopped, or a
 * process of this host whose pid is gone. A pid reused by another process
 * only makes it look alive: then its lease has to run out. */
static int known_dead(const node *n, const store_node *r)
{
    if (!strcmp(r->state, "stopped"))
        return 1;
    if (strcmp(r->proc_key, n->self.proc_key) || r->pid == n->self.pid || r->pid <= 0)
        return 0;
    return kill((pid_t)r->pid, 0) < 0 && errno == ESRCH;
}

/* Whether the id belongs to a node that may be alive now. */
static int id_in_use(node *n, const char *id, int64_t now)
{
    store_node r;
    if (store_node_get(n->st, id, &r) != 1)
        return 0;
    return r.seen_at + n->lease_ms > now && !known_dead(n, &r);
}

node *node_open(const node_options *o, const keys *k, char *err)
{
    node *n = calloc(1, sizeof(*n));
    if (!n) {
        pt_errc(err, PT_ENOMEM, "out of memory");
        return NULL;
    }
    n->lease_ms = o->lease_ms > 0 ? o->lease_ms : 30000;
    n->max_attempts = o->max_attempts;
    pthread_mutex_init(&n->mu, NULL);
    if (!(n->st = store_open(o->db_path, 0, err)))
        goto fail;
    keys_attach(k, n->st);
    char host[100] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(n->self.host, sizeof(n->self.host), "%s", host[0] ? host : "localhost");
    proc_key(n->self.proc_key, sizeof(n->self.proc_key));
    n->self.pid = getpid();
    int64_t now = pt_wall_ms();
    if (o->id) {
        snprintf(n->self.id, sizeof(n->self.id), "%s", o->id);
        if (id_in_use(n, o->id, now)) {
            pt_errf(err,
                    "node id %s is in use by a live node (seen in the last %lld s); give this "
                    "one another --node-id, or stop that one",
                    o->id, (long long)(n->lease_ms / 1000));
            goto fail;
        }
    } else {
        snprintf(n->self.id, sizeof(n->self.id), "%.40s:%lld", n->self.host,
                 (long long)n->self.pid);
        if (id_in_use(n, n->self.id, now)) { /* a container's pid 1 again: make it unique */
            char r[9];
            pt_random_hex(r, 8);
            size_t len = strlen(n->self.id);
            snprintf(n->self.id + (len < 50 ? len : 50), sizeof(n->self.id) - 50, "-%s", r);
        }
    }
    n->self.started_at = n->self.seen_at = now;
    snprintf(n->self.state, sizeof(n->self.state), "active");
    if (store_node_put(n->st, &n->self) < 0) {
        pt_errf(err, "cannot record node %s in the database", n->self.id);
        goto fail;
    }
    PT_INFO("node", "node %s (lease %lld s)", n->self.id, (long long)(n->lease_ms / 1000));
    return n;
fail:
    store_close(n->st);
    pthread_mutex_destroy(&n->mu);
    free(n);
    return NULL;
}

const char *node_id(const node *n)
{
    return n->self.id;
}

int64_t node_lease_ms(const node *n)
{
    return n->lease_ms;
}

/* ---- Take-over --------------------------------------------------------------- */

/* Whether the holder of lease l is dead. At start-up, a lease under this
 * node's own id is a predecessor's (node_open refused a live one). */
static int holder_dead(node *n, const task_lease *l, int64_t now, int startup)
{
    if (!l->node[0] || l->until < now)
        return 1; /* no lease (a task from before leases), or it ran out */
    if (!strcmp(l->node, n->self.id))
        return startup;
    store_node r;
    return store_node_get(n->st, l->node, &r) == 1 && known_dead(n, &r);
}

/* Applies the commit rule to one task this node now holds the lease of. */
static int take_one(node *n, task_ctx *cx, const task_lease *l)
{
    enum task_status s = TASK_FAILED;
    task_status_parse(l->status, &s);
    int moved = 0;
    if (s == TASK_DISPATCHING || s == TASK_RUNNING) {
        PT_WARN("node", "task %lld was %s on node %s, which stopped; taking it over",
                (long long)l->id, l->status, l->node[0] ? l->node : "(none)");
        moved = task_interrupt(cx, l->id, l->committed, l->attempts, n->max_attempts,
                               "Portier stopped") == PT_FOUND;
    } else if (s == TASK_WAITING_FOR_INPUT && l->committed) {
        /* its browser context is gone and it cannot start over */
        moved = task_interrupt(cx, l->id, 1, l->attempts, n->max_attempts,
                               "Portier stopped while it waited") == PT_FOUND;
    }
    /* a task that waits for a person (an answer, a review) needs no node:
     * only the lease goes */
    store_task_lease_release(n->st, l->id, n->self.id, 0);
    return moved;
}

/* One take-over pass over tasks in the statuses `which` (n of them);
 * leased_only: only tasks that carry a lease. */
static int pass(node *n, int startup, const enum task_status *which, size_t nwhich,
                int leased_only, task_ctx *cx)
{
    const char *names[4];
    for (size_t i = 0; i < nwhich && i < 4; i++)
        names[i] = task_status_name(which[i]);
    size_t count = 0;
    task_lease *ls = store_task_leases(n->st, names, nwhich, startup ? NULL : n->self.id,
                                       leased_only, NODE_PASS_MAX, &count);
    int64_t now = pt_wall_ms();
    int taken = 0;
    for (size_t i = 0; ls && i < count; i++) {
        task_lease *l = &ls[i];
        if (!holder_dead(n, l, now, startup))
            continue;
        /* the lease as it was seen: if another node took it first, that
         * node handles the task */
        if (store_task_lease_take(n->st, l->id, l->node, l->until, n->self.id,
                                  now + n->lease_ms) != PT_FOUND)
            continue;
        taken += take_one(n, cx, l);
    }
    free(ls);
    return taken;
}

/* Webhook events a dead node had claimed go back to the outbox at once
 * (else they would wait for the claim to run out). 1 if any did. */
static int free_claims(node *n)
{
    char ids[16][64];
    int64_t now = pt_wall_ms();
    size_t k = store_outbox_claimers(n->st, now, ids, 16);
    int freed = 0;
    for (size_t i = 0; i < k; i++) {
        /* this node's own claims (a predecessor's under the same id too)
         * are its deliverer's to take again */
        task_lease l = {.until = INT64_MAX};
        snprintf(l.node, sizeof(l.node), "%s", ids[i]);
        if (!strcmp(ids[i], n->self.id) || !holder_dead(n, &l, now, 0))
            continue;
        PT_INFO("node", "webhook events claimed by node %s, which stopped, go back", ids[i]);
        freed |= store_outbox_release(n->st, ids[i]) == 0;
    }
    return freed;
}

int node_take_over(node *n, int startup, void (*moved)(void *, int64_t, enum task_status),
                   void *ud)
{
    if (free_claims(n) && n->h)
        webhooks_kick(n->h);
    /* a run in progress always has a lease (a task without one is from
     * before leases); a task waiting for a person has one only while a
     * worker holds its browser context */
    static const enum task_status runs[] = {TASK_DISPATCHING, TASK_RUNNING};
    static const enum task_status waits[] = {TASK_WAITING_FOR_INPUT, TASK_PENDING_REVIEW};
    task_ctx cx = {n->st, moved, ud, n->self.id, n->lease_ms};
    int taken = pass(n, startup, runs, 2, 0, &cx) + pass(n, startup, waits, 2, 1, &cx);
    n->taken += taken;
    return taken;
}

/* ---- The node's thread --------------------------------------------------------- */

/* A cancel asked through another node's API: this node's worker acts. */
static void cancel_here(node *n, task_ctx *cx, int64_t id)
{
    int held = 0;
    if (workers_cancel(n->w, id, &held) != PT_FOUND || !held)
        return; /* a run in progress stops at its next step */
    task t;
    if (store_task_get(n->st, 0, id, &t) != 1)
        return;
    task_cancel(cx, id,
                t.committed ? "Cancelled by the client after the commit point: the portal may "
                              "already have the submission."
                            : "Cancelled by the client.");
    task_free(&t);
}

/* The beat: the node's row, then the leases of what its workers hold. */
static void beat(node *n)
{
    int64_t now = pt_wall_ms();
    store_node_beat(n->st, n->self.id, now, n->draining ? "draining" : "active");
    int64_t ids[NODE_HELD_MAX];
    size_t k = workers_held(n->w, ids, NODE_HELD_MAX);
    task_ctx cx = {n->st, n->moved, n->ud, n->self.id, n->lease_ms};
    int rc[NODE_HELD_MAX], cancel[NODE_HELD_MAX];
    /* one transaction (one commit) for every renewal; acted on once it
     * is durable */
    if (!k || store_begin(n->st) < 0)
        return;
    for (size_t i = 0; i < k; i++)
        rc[i] = store_task_lease_renew(n->st, ids[i], n->self.id, now + n->lease_ms, &cancel[i]);
    if (store_commit(n->st) < 0)
        return;
    for (size_t i = 0; i < k; i++) {
        if (rc[i] == PT_NONE)
            workers_lost(n->w, ids[i]);
        else if (rc[i] == PT_FOUND && cancel[i])
            cancel_here(n, &cx, ids[i]);
    }
}

static int stopping(node *n)
{
    pthread_mutex_lock(&n->mu);
    int s = n->stop;
    pthread_mutex_unlock(&n->mu);
    return s;
}

static void *node_main(void *arg)
{
    node *n = arg;
    int64_t next_beat = 0;
    while (!stopping(n)) {
        if (pt_mono_ms() >= next_beat || atomic_exchange(&n->beat_now, 0)) {
            beat(n);
            if (node_take_over(n, 0, n->moved, n->ud) > 0)
                dispatch_kick(n->d);
            next_beat = pt_mono_ms() + n->lease_ms / 3;
        }
        /* another node's write (a new task, a final status with its event)
         * wakes this node's workers and deliverer */
        if (store_wait_changes(n->st, NODE_WAIT_MS) > 0) {
            dispatch_kick(n->d);
            webhooks_kick(n->h);
        }
    }
    return NULL;
}

int node_run(node *n, workers *w, dispatch *d, webhooks *h,
             void (*moved)(void *, int64_t, enum task_status), void *ud, char *err)
{
    n->w = w;
    n->d = d;
    n->h = h;
    n->moved = moved;
    n->ud = ud;
    if (pthread_create(&n->thread, NULL, node_main, n) != 0)
        return pt_errf(err, "cannot start the node's thread");
    n->started = 1;
    return 0;
}

void node_drain(node *n)
{
    n->draining = 1;
    n->beat_now = 1; /* the node's thread writes it (its connection) */
}

int node_draining(const node *n)
{
    return n->draining;
}

void node_metrics(const node *n, store *st, const char *labels, pt_buf *out)
{
    int64_t live = st ? store_node_count_live(st, pt_wall_ms() - n->lease_ms) : -1;
    int64_t leased = st ? store_task_count_leased(st, n->self.id) : -1;
    pt_buf_appendf(out,
                   "# HELP portier_nodes Nodes working this database (seen within a lease).\n"
                   "# TYPE portier_nodes gauge\nportier_nodes{%s} %lld\n"
                   "# HELP portier_node_leases Tasks leased to this node now.\n"
                   "# TYPE portier_node_leases gauge\nportier_node_leases{%s} %lld\n"
                   "# HELP portier_node_draining 1 while this node drains.\n"
                   "# TYPE portier_node_draining gauge\nportier_node_draining{%s} %d\n"
                   "# HELP portier_node_takeovers_total Tasks this node took over from dead "
                   "nodes.\n"
                   "# TYPE portier_node_takeovers_total counter\n"
                   "portier_node_takeovers_total{%s} %ld\n",
                   labels, (long long)live, labels, (long long)leased, labels, n->draining,
                   labels, (long)n->taken);
}

void node_stop(node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = 1;
    pthread_mutex_unlock(&n->mu);
    if (n->started)
        pthread_join(n->thread, NULL);
    n->started = 0;
}

void node_free(node *n)
{
    if (!n)
        return;
    node_stop(n);
    /* the workers are gone: whatever still carries this node's lease is
     * free for any node now */
    store_node_beat(n->st, n->self.id, pt_wall_ms(), "stopped");
    store_close(n->st);
    pthread_mutex_destroy(&n->mu);
    free(n);
}
