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

typedef struct service service;

typedef struct service_options {
    const char *db_path;    /* the SQLite file; its data folder is DB.d/ */
    const char *browser_ws; /* NULL: launch Debian's chromium */
    int workers;            /* tasks at once; 0: 2; < 0: none (API only) */
    int browsers;           /* launched browsers the workers share; 0: 2 (1 with one worker) */
    int max_attempts;       /* runs of a task interruptions allow; 0: 3 */
    int hold_seconds;       /* a waiting task keeps its worker this long; 0: 300 */
    int max_queue;          /* pending tasks past which POST /tasks is 429; 0: 10000 */
    size_t max_body;        /* request bytes; 0: 25 MiB */
    size_t max_file;        /* bytes per uploaded file; 0: max_body */
    const char *host;       /* listen address; NULL: 127.0.0.1 */
    int port;               /* 0: a free port */
    int webhook_sink;       /* route the demo's webhook receiver (serve --demo) */
    int session_max_age;    /* s a kept browser session lives; 0: 1200; < 0: keep none */
    int session_idle;       /* s it may sit unused; 0: 300 */
} service_options;

/* Opens the store (migrating it), reads or creates the master key,
 * recovers interrupted tasks, starts the deliverer, the workers and the HTTP
 * server. The options' strings are borrowed for the service's life.
 * 0, or negative with err. */
int service_start(const service_options *o, service **out, char *err);
/* Stops everything (a run in progress is left for recovery) and frees it. */
void service_stop(service *s);
/* The port the API listens on. */
int service_port(const service *s);
/* The number of workers. */
int service_workers(const service *s);
/* Wakes the workers (a task may be pending) and the webhook deliverer. */
void service_kick(service *s);

#endif
