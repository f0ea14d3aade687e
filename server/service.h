/*
 * service.h - the running task service behind `portier serve`: the store,
 * the workers that run tasks in a shared browser, the webhook deliverer,
 * and the task API on the HTTP layer. Private to server/.
 *
 * A task's life (every arrow is a row in the events table):
 *
 *   pending -> dispatching (a worker claimed it) -> running
 *     running -> waiting_for_input | pending_review   (ask / review steps)
 *       the worker keeps the browser context for hold_seconds; an answer or
 *       decision within that time resumes the run where it stopped; later,
 *       the task goes back to pending and runs again from the start (only if
 *       it had not crossed `commit`; otherwise it goes to review)
 *     running -> completed | completed_with_issues | failed  (final: the
 *       same transaction writes the webhook outbox row)
 *   Chromium dying, or the service stopping, while a task runs: it runs
 *   once more if it had not crossed `commit`, else it waits in
 *   pending_review with a note that the portal may have the submission.
 */
#ifndef PORTIER_SERVICE_H
#define PORTIER_SERVICE_H

#include "cdp/cdp.h"
#include "http/http.h"
#include "server/store.h"
#include "server/webhook.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct service_options {
    const char *db_path;    /* the SQLite file; its data folder is DB.d/ */
    const char *browser_ws; /* NULL: launch Debian's chromium */
    int workers;            /* tasks at once; 0: 2; < 0: none (API only) */
    int hold_seconds;       /* a waiting task keeps its worker this long; 0: 300 */
    int max_queue;          /* pending tasks past which POST /tasks is 429; 0: 10000 */
    size_t max_body;        /* request bytes; 0: 25 MiB */
    size_t max_file;        /* bytes per uploaded file; 0: max_body */
    const char *host;       /* listen address; NULL: 127.0.0.1 */
    int port;               /* 0: a free port */
} service_options;

enum hold_kind { HOLD_NONE, HOLD_ASK, HOLD_REVIEW };

/* What one worker is doing; guarded by service.mu. */
typedef struct worker_slot {
    struct service *svc;
    int index;
    pthread_t thread;
    int64_t task_id; /* 0: idle */
    int cancel;      /* the client cancelled the task */
    enum hold_kind hold;
    char *answer;        /* HOLD_ASK: set by the API */
    int decision;        /* HOLD_REVIEW: -1 none yet, 0 reject, 1 approve */
    char *comment;       /* the reviewer's, with a reject */
    pthread_cond_t wake; /* signalled when the above change */
} worker_slot;

#define DURATION_BUCKETS 10

/* A task creation waiting for the group-commit writer. */
typedef struct create_req {
    struct create_req *next;
    int64_t account;
    const char *type, *title_fmt, *instructions, *data, *idem_key, *files_dir;
    int sop_version;
    const task_file_in *files;
    size_t nfiles;
    task *out;
    int rc; /* store_task_create's */
    char err[512];
    int done;
} create_req;

typedef struct service {
    service_options o;
    char data_dir[4096];
    char spool_dir[4200];
    unsigned char master[32];
    pthread_key_t store_key; /* one store connection per thread */
    store *main_store;       /* this thread's */
    http_server *http;
    webhooks *hooks;
    char *sink_url; /* the built-in webhook sink (demo) */

    pthread_mutex_t mu;
    pthread_cond_t work; /* a task may be pending */
    pthread_cond_t browser_free;
    int stopping;
    worker_slot *slots;
    int nworkers;
    cdp_browser *browser;
    int browser_users;
    int browser_broken;
    int browser_launches;

    /* parsed SOPs by account/type/version (never evicted: versions are few) */
    struct sop_entry {
        int64_t acct;
        char type[48];
        int version;
        void *sop;
    } * sops;
    size_t nsops;

    /* group commit of task creations: one writer, one COMMIT per batch */
    pthread_t creator;
    int creator_started;
    pthread_mutex_t create_mu; /* guards create_q, create_stop, create_req.done */
    int create_stop;
    pthread_cond_t create_wake, create_done;
    create_req *create_q;

    /* queue depth, counted at most every 100 ms (a COUNT per request
     * would make POST /tasks slower the longer the queue) */
    atomic_llong queued;
    atomic_llong queued_at;

    /* metrics */
    atomic_long http_requests;
    atomic_int busy_workers;
    atomic_long duration_count;
    atomic_long duration_ms_sum;
    atomic_long duration_buckets[DURATION_BUCKETS];
    int64_t started_ms;
} service;

/* Opens the store (migrating it), reads or creates the master key,
 * recovers interrupted tasks, starts the deliverer, the workers and the HTTP
 * server. */
int service_start(const service_options *o, service **out, char *err);
void service_stop(service *s);
int service_port(const service *s);
/* Wakes workers (a task became pending) and the deliverer. */
void service_kick(service *s);
/* Creates a task through the group-commit writer (store_task_create's
 * arguments and result). */
int service_create_task(service *s, create_req *req);
/* Pending tasks (refreshed at most every 100 ms). */
long long service_queue_depth(service *s, store *st);
/* This thread's store connection (opened on first use). */
store *service_store(service *s);
/* Moves a task (store_task_move) and wakes the deliverer if it ended. */
int service_move(service *s, store *st, int64_t id, const char *from, const char *to,
                 const char *notes, const char *event_note);

/* The master key: PORTIER_MASTER_KEY (64 hex digits), else DB.key (made
 * with mode 0600 on first use). */
int service_master_key(const char *db_path, unsigned char key[32], char *err);
/* Seals/opens an account's secret; aad ties it to the account and name. */
int service_seal(const unsigned char key[32], int64_t acct, const char *name, const char *value,
                 unsigned char **out, size_t *outlen);
char *service_open_secret(const unsigned char key[32], int64_t acct, const char *name,
                          const unsigned char *sealed, size_t len);

/* An account's SOP for a type, parsed (cached; borrowed). NULL with err. */
const struct sop *service_sop(service *s, store *st, int64_t acct, const char *type, int version,
                              char *err);
/* Materialises and parses an SOP bundle (for CLI validation too). */
struct sop *service_parse_bundle(const char *dir, const char *bundle_json, char *err, size_t errsz);

/* api.c: the HTTP handler. */
void api_handle(http_request *r, void *ud);

/* A new API key ("pk_" + 48 hex digits) and its hash. */
void service_new_key(char key[64], char hash[65]);

#endif
