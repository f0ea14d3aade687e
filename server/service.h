/*
 * service.h - the running task service behind `portier serve`: the store
 * (migrated at start), keys, the task writer and dispatch, the workers and
 * their shared browser, the webhook deliverer, and the task API on the HTTP
 * layer. The handle is opaque: start it, kick it, stop it.
 *
 * A task's life, and who moves it, is drawn in server/task.h.
 */
#ifndef PORTIER_SERVICE_H
#define PORTIER_SERVICE_H

#include <stddef.h>
#include <stdint.h>

typedef struct service service;

typedef struct service_options {
    const char *db_path;    /* the SQLite file, or a PostgreSQL connection string */
    const char *data_dir;   /* files, trajectories, SOPs; NULL: DB.d/ (PostgreSQL: portier.d/) */
    const char *browser_ws; /* NULL: launch Debian's chromium */
    int workers;            /* tasks at once; 0: 2; < 0: none (API only) */
    int browsers;           /* launched browsers the workers share; 0: 2 (1 with one worker) */
    int max_attempts;       /* runs of a task interruptions allow; 0: 3 */
        int hold_seconds;       /* a waiting task keeps its session this long; 0: 300 */
    int max_parked;         /* waiting tasks that keep their session; 0: 8; < 0: none */
    int max_queue;          /* pending tasks past which POST /tasks is 429; 0: 10000 */
    size_t max_body;        /* request bytes; 0: 25 MiB */
    size_t max_file;        /* bytes per uploaded file; 0: max_body */
    const char *host;       /* listen address; NULL: 127.0.0.1 */
    int port;               /* 0: a free port */
    int webhook_sink;       /* route the demo's webhook receiver (serve --demo) */
    int session_max_age;    /* s a kept browser session lives; 0: 1200; < 0: keep none */
    int session_idle;       /* s it may sit unused; 0: 300 */
    /* the HTTP layer's per-connection limits (http_options; docs/limits.md) */
    int header_timeout_ms;  /* 0: 10000 */
    size_t min_body_rate;   /* bytes/s; 0: 1024 */
    int max_conns_per_peer; /* 0: 64 */
    /* deliver webhooks to loopback, link-local and private addresses too
     * (serve --allow-private-webhooks; the demo's sink implies it) */
    int allow_private_webhooks;
    const char *master_key_file; /* NULL: PORTIER_MASTER_KEY, else DB.key (keys.h) */
    int64_t retain_ms;      /* final tasks' data is purged after this; 0: 30 days; < 0: never */
    /* several nodes on one database (server/node.h) */
    const char *node_id;    /* NULL: HOST:PID */
    int lease_seconds;      /* a running task's lease; 0: 30 */
} service_options;

/* Opens the store (migrating it), reads or creates the master key,
 * recovers interrupted tasks, starts the deliverer, the workers and the HTTP
 * server. The options' strings are borrowed for the service's life.
 * 0, or negative with err. */
int service_start(const service_options *o, service **out, char *err);
/* Drains the node (SIGTERM): it stops claiming tasks and waits up to
 * drain_ms for its runs (parked ones included) to end; what is still held
 * then is handed back by the commit rule when service_stop follows. */
void service_drain(service *s, int64_t drain_ms);
/* Stops everything and frees it. A run in progress is cut short: handed
 * back after service_drain, else left to take-over (this node's next
 * start, or another node at once: the node is marked stopped). */
void service_stop(service *s);
/* The node's id (borrowed: it lives as long as s). */
const char *service_node_id(const service *s);
/* The port the API listens on. */
int service_port(const service *s);
/* Whether the master key came from a file beside the database
 * (keys_beside_db): `serve` warns about it outside --demo. */
int service_key_beside_db(const service *s);
/* The number of workers. */
int service_workers(const service *s);
/* Wakes the workers (a task may be pending) and the webhook deliverer. */
void service_kick(service *s);

#endif
