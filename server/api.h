/*
 * api.h - the task API (docs/openapi.yaml) as an HTTP handler: it checks
 * requests, then asks the service's parts (dispatch, workers, the store,
 * task moves) to act. It owns no task state of its own.
 */
#ifndef PORTIER_API_H
#define PORTIER_API_H

#include "http/http.h"
#include "server/bundle.h"
#include "server/dispatch.h"
#include "server/keys.h"
#include "server/node.h"
#include "server/pool.h"
#include "server/task.h"
#include "server/webhook.h"
#include "server/worker.h"

#include <pthread.h>
#include <stdatomic.h>

#define API_IDEM_INFLIGHT 64
/* API keys the admit hook found valid lately, kept (by hash) for
 * API_ADMIT_SEEN_MS so that it answers them without a store read */
#define API_ADMIT_SEEN 256
#define API_ADMIT_SEEN_MS 10000
/* (account, task type)s whose SOP version and input defaults this node
 * keeps, each while the account's config_gen stays what it was */
#define API_CONFIGS 64
/* API keys whose store reads are shared by the requests that wait on them */
#define API_KEY_FLIGHTS 16

/* What the handlers work with: the parts are borrowed and outlive the HTTP
 * server; set them, then api_init before the first request. */
/* The store reads of one API key (api.c's key_read). */
typedef struct api_key_flight {
    char hash[65];              /* the key's hash; "" free */
    unsigned long epoch;        /* moves when another key takes the slot */
    unsigned long begun, ended; /* reads of it begun and ended (in this epoch) */
    int busy;                   /* one is under way */
    int rc;                     /* the last one's answer (store_account_by_key) */
    account a;                  /* its account, when rc is 1 */
} api_key_flight;

typedef struct api_env {
    const char *db_path;   /* each handler thread opens its own connection */
    const char *files_dir; /* uploads move to files_dir/<task id>/ */
    int max_queue;         /* pending tasks past which POST /tasks is 429 */
    int webhook_sink;      /* route the demo's webhook receiver (serve --demo) */
    /* a webhook endpoint set here may be non-public (webhook_url_check's
     * allow_private): serve --allow-private-webhooks or --demo */
    int allow_private_webhooks;
    int64_t started_ms;
    dispatch *dispatch;
    workers *workers;
    pool *pool;
    webhooks *hooks;
    bundle_cache *sops;
    const keys *keys;
    /* told after every move a handler makes (task_ctx.moved) */
    void (*moved)(void *ud, int64_t id, enum task_status to);
    void *ud;
    node *node; /* this node: /metrics labels, /healthz while draining */

    /* the handlers' own: api_init sets them */
    pthread_key_t store_key;
    atomic_long requests;
    pthread_mutex_t admit_mu; /* the queue's admission: depth + admitting */
    int admitting;            /* POST /tasks past the queue check, not yet created */
    pthread_mutex_t idem_mu;                    /* guards idem_inflight */
    char idem_inflight[API_IDEM_INFLIGHT][300]; /* "account:key" being answered; "" free */
    pthread_mutex_t seen_mu;                    /* guards admit_seen */
    struct {
        char hash[65];   /* a key's hash; "" free */
        int64_t until;   /* pt_mono_ms past which it is read from the store again */
    } admit_seen[API_ADMIT_SEEN];
    pthread_mutex_t config_mu; /* guards configs */
    struct {
        int64_t account; /* 0: free */
        int64_t gen;     /* the account's config_gen when they were read */
        char type[40];
        int version;
        vars *defaults;
    } configs[API_CONFIGS];
    pthread_mutex_t flight_mu; /* guards flights */
    pthread_cond_t flight_cv;  /* a read of a key ended */
    api_key_flight flights[API_KEY_FLIGHTS];
} api_env;

/* The body a request without an API key may carry (the demo's webhook
 * sink; /healthz and /metrics take none): past it, 413 before reading. */
#define API_OPEN_BODY_MAX 65536

/* Prepares e's own fields. 0 or negative. */
int api_init(api_env *e);
/* After the HTTP server stopped (its threads closed their connections). */
void api_fini(api_env *e);
/* The HTTP layer's admit hook (http_options.admit; ud is the api_env): a
 * request under /tasks is authenticated by its headers alone, before one
 * byte of its body is read (401 otherwise); any other carries at most
 * API_OPEN_BODY_MAX bytes. Runs on the HTTP service thread, with a store
 * connection of its own; a key it found valid in the last
 * API_ADMIT_SEEN_MS passes from memory (no store round trip on the thread
 * that reads every connection). It is a gate, not the check: the handler
 * authenticates every request against the store, so a key rotated in
 * those seconds has its body read and is answered 401 all the same. */
int api_admit(http_request *r, void *ud);
/* The HTTP handler; ud is the api_env. */
void api_handle(http_request *r, void *ud);

#endif
