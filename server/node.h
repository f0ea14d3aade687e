/*
 * node.h - this `portier serve` process as one node of several working one
 * database: its id, its beat, the leases on the tasks its workers hold, the
 * take-over of what a dead node left, and the wake-ups that other nodes'
 * writes cause.
 *
 * A task a worker claims is leased to its node (task_dispatch) for
 * lease_ms, and the node renews the leases of what its workers hold every
 * lease_ms / 3. Another node takes a task over only once its holder is
 * dead: the lease ran out, the holder's row says it stopped, or it ran on
 * this host (same boot and pid namespace) and its pid is gone. Take-over
 * applies the commit rule (task_interrupt): before `commit` the task runs
 * again, after it the task goes to pending_review (the portal may have the
 * submission). A node whose lease was taken over finds out at its next
 * beat or at its commit point, whichever comes first, and its run stops
 * and moves nothing.
 *
 * Wake-ups: the node's thread waits on store_wait_changes (SQLite: a short
 * poll of the file's change counter; PostgreSQL: LISTEN/NOTIFY) and kicks
 * the workers and the webhook deliverer when another node wrote.
 */
#ifndef PORTIER_NODE_H
#define PORTIER_NODE_H

#include "server/dispatch.h"
#include "server/keys.h"
#include "server/task.h"
#include "server/webhook.h"
#include "server/worker.h"
#include "util/buf.h"

#include <stdint.h>

typedef struct node node;

typedef struct node_options {
    const char *db_path;
    const char *id;   /* NULL: HOST:PID */
    int64_t lease_ms; /* 0: 30 s */
    int max_attempts; /* for take-over's task_interrupt; 0: TASK_MAX_ATTEMPTS */
} node_options;

/* Opens the node's own store connection (sealing under k, borrowed) and
 * writes its row. An id that a live node holds is refused (err says
 * whose); a default id in use gets a random suffix. NULL with err. */
node *node_open(const node_options *o, const keys *k, char *err);
/* The node's id (borrowed: it lives as long as n). */
const char *node_id(const node *n);
int64_t node_lease_ms(const node *n);
/* One take-over pass on the calling thread (start-up: before the workers
 * start, tasks leased under this node's own id are a predecessor's and
 * taken too). moved is told of each move. The number of tasks taken. */
int node_take_over(node *n, int startup, void (*moved)(void *, int64_t, enum task_status),
                   void *ud);
/* Starts the node's thread: beats, lease renewal for w's tasks, a take-over
 * pass each beat, and kicks for d and h (all borrowed until node_stop).
 * 0, or -1 with err. */
int node_run(node *n, workers *w, dispatch *d, webhooks *h,
             void (*moved)(void *, int64_t, enum task_status), void *ud, char *err);
/* The node is draining: its row says so (the beat goes on). */
void node_drain(node *n);
int node_draining(const node *n);
/* Prometheus lines about the nodes (live nodes, this node's leases);
 * labels as webhooks_metrics. st is the caller's connection. */
void node_metrics(const node *n, store *st, const char *labels, pt_buf *out);
/* Stops the node's thread (before the workers are freed: it asks them
 * what they hold). */
void node_stop(node *n);
/* After the workers were joined: marks the node stopped (what still
 * carries its lease is free for any node at once) and frees it. */
void node_free(node *n);

#endif
