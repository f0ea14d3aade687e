/*
 * service.c - the service's start-up, recovery and stop: it makes the parts
 * (keys, dispatch, the browser pool, the SOP cache, the workers, the webhook
 * deliverer, the API) in order, wires them together, and takes them down in
 * the reverse order. See service.h. It holds no lock of its own: each part
 * owns its state.
 */
#define _GNU_SOURCE
#include "server/retention.h"
#include "server/service.h"
#include "server/api.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct service {
    service_options o;
    char data_dir[4096];
    char files_dir[4200];
    char spool_dir[4200];
    store *main_store; /* the starting thread's: migrations */
    keys *keys;
    node *node;
    retention *retention;
    dispatch *dispatch;
    pool *pool;
    bundle_cache *sops;
    workers *workers;
    webhooks *hooks;
    api_env api;
    int api_ready;
    http_server *http;
};

/* Every move's aftermath: a final status (or a wait) has a webhook to send, a pending
 * task a worker to wake. */
static void moved(void *ud, int64_t id, enum task_status to)
{
    service *s = ud;
    (void)id;
    if (task_status_is_final(to) || to == TASK_WAITING_FOR_INPUT || to == TASK_PENDING_REVIEW)
        webhooks_kick(s->hooks); /* task_finished, or task_waiting if wanted */
    else if (to == TASK_PENDING)
        service_kick(s);
}

void service_kick(service *s)
{
    dispatch_kick(s->dispatch);
    webhooks_kick(s->hooks);
}

static int mkdirs(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* DB.d/ and its folders. */
static int make_folders(service *s, char *err)
{
    /* a PostgreSQL string names no folder: its data folder is --data-dir's */
    if (s->o.data_dir)
        snprintf(s->data_dir, sizeof(s->data_dir), "%s", s->o.data_dir);
    else if (store_is_pg(s->o.db_path))
        snprintf(s->data_dir, sizeof(s->data_dir), "portier.d");
    else
        snprintf(s->data_dir, sizeof(s->data_dir), "%s.d", s->o.db_path);
    if (mkdirs(s->data_dir) < 0)
        return pt_errf(err, "cannot create the data folder %s", s->data_dir);
    static const char *const subs[] = {"files", "trajectories", "sops", "spool"};
    char sub[4200];
    for (size_t i = 0; i < 4; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", s->data_dir, subs[i]);
        mkdirs(sub);
    }
    snprintf(s->files_dir, sizeof(s->files_dir), "%s/files", s->data_dir);
    return 0;
}

/* The node's own spool, DB.d/spool/<node id>/, emptied (uploads of
 * requests that never finished): nodes on one host share DB.d/, and one
 * node's start must not take another's uploads in flight. */
static void make_spool(service *s)
{
    char id[64];
    snprintf(id, sizeof(id), "%s", node_id(s->node));
    for (char *p = id; *p; p++)
        if (*p == '/' || *p == '.')
            *p = '_';
    snprintf(s->spool_dir, sizeof(s->spool_dir), "%s/spool/%s", s->data_dir, id);
    pt_rmtree(s->spool_dir);
    mkdirs(s->spool_dir);
}

static void defaults(service_options *o)
{
    if (!o->workers)
        o->workers = 2;
    if (o->workers < 0) /* an API-only node: tasks wait for a node with workers */
        o->workers = 0;
    if (!o->hold_seconds)
        o->hold_seconds = 300;
    if (!o->max_attempts)
        o->max_attempts = TASK_MAX_ATTEMPTS;
    /* a crash interrupts only the runs in that browser, but each browser
     * costs about 125 MB: two at most by default (README, "How tasks run") */
    if (!o->browsers)
        o->browsers = o->workers >= 2 ? 2 : 1;
    if (!o->max_parked)
        o->max_parked = 8;
    if (o->max_parked < 0)
        o->max_parked = 0;
    if (!o->max_queue)
        o->max_queue = 10000;
    if (!o->session_max_age)
        o->session_max_age = 20 * 60;
    if (!o->session_idle)
        o->session_idle = 5 * 60;
    if (!o->retain_ms)
        o->retain_ms = 30LL * 24 * 3600 * 1000;
    if (!o->lease_seconds)
        o->lease_seconds = 30;
}

static int start_http(service *s, char *err)
{
    s->api = (api_env){.db_path = s->o.db_path,
                       .files_dir = s->files_dir,
                       .max_queue = s->o.max_queue,
                       .webhook_sink = s->o.webhook_sink,
                       .allow_private_webhooks = s->o.allow_private_webhooks || s->o.webhook_sink,
                       .started_ms = pt_wall_ms(),
                       .dispatch = s->dispatch,
                       .workers = s->workers,
                       .pool = s->pool,
                       .hooks = s->hooks,
                       .sops = s->sops,
                       .keys = s->keys,
                       .moved = moved,
                       .ud = s,
                       .node = s->node};
    if (api_init(&s->api) < 0)
        return pt_errf(err, "cannot start the API");
    s->api_ready = 1;
    http_options ho = {.host = s->o.host,
                       .port = s->o.port,
                       /* handlers mostly wait on the store: enough of them
                        * that a group commit has requests to group. On
                        * PostgreSQL each waits a round trip more (bench api
                        * pg: 8 of them 3,600 req/s, 16 4,200-4,600, 32
                        * 4,800); on SQLite 16 are plenty, and each one more
                        * is a connection with a page cache of its own */
                       .workers = store_is_pg(s->o.db_path) ? 32 : 16,
                       .max_body = s->o.max_body,
                       .max_file = s->o.max_file,
                       .spool_dir = s->spool_dir,
                       .admit = api_admit,
                       .header_timeout_ms = s->o.header_timeout_ms,
                       .min_body_rate = s->o.min_body_rate,
                       .max_conns_per_peer = s->o.max_conns_per_peer};
    return http_start(&ho, api_handle, &s->api, &s->http, err);
}

int service_start(const service_options *o, service **out, char *err)
{
    service *s = calloc(1, sizeof(*s));
    if (!s)
        return pt_errc(err, PT_ENOMEM, "out of memory");
    s->o = *o;
    defaults(&s->o);
    /* Every thread that allocates would get a malloc arena of its own, and
     * with heap trimming off (cli_serve) each keeps its high-water mark:
     * measured with 4 workers, four arenas of about 3 MB each. Two arenas
     * share that space; a lock is nothing beside a page's round trips. */
    mallopt(M_ARENA_MAX, 2);
    /* the key first: a PostgreSQL store without one is refused before
     * anything is made (folders, schema) */
    if (!(s->keys = keys_load(o->db_path, o->master_key_file, err)) || make_folders(s, err) < 0 ||
        !(s->main_store = store_open(o->db_path, 1, err)))
        goto fail;
    keys_attach(s->keys, s->main_store);
    node_options no = {.db_path = o->db_path,
                       .id = o->node_id,
                       .lease_ms = (int64_t)s->o.lease_seconds * 1000,
                       .max_attempts = s->o.max_attempts};
    if (!(s->node = node_open(&no, s->keys, err)))
        goto fail;
    make_spool(s);
    if (!(s->hooks = webhooks_start(o->db_path, node_id(s->node), s->keys, err)) ||
        !(s->dispatch = dispatch_start(o->db_path, s->keys, s->o.max_queue, err)))
        goto fail;
    webhooks_allow_private(s->hooks, o->allow_private_webhooks || o->webhook_sink);
    /* what a dead node left mid-run (this node's predecessor, at once if
     * it ran on this host; another's once its lease ran out) */
    node_take_over(s->node, 1, moved, s);
    if (s->o.retain_ms > 0 && !(s->retention = retention_start(o->db_path, s->o.retain_ms, err)))
        goto fail;
    s->pool = pool_new(o->browser_ws, s->o.browsers);
    s->sops = bundle_cache_new(s->data_dir);
    if (!s->pool || !s->sops) {
        pt_errc(err, PT_ENOMEM, "out of memory");
        goto fail;
    }
    /* an account keeps at most as many signed-in sessions as there are
     * workers to use them */
    pool_session_limits(s->pool, s->o.session_max_age < 0 ? 0 : s->o.workers,
                        (int64_t)s->o.session_max_age * 1000, (int64_t)s->o.session_idle * 1000);
    worker_env we = {.db_path = o->db_path,
                     .data_dir = s->data_dir,
                     .hold_seconds = s->o.hold_seconds,
                     .max_attempts = s->o.max_attempts,
                     .max_parked = s->o.max_parked,
                     .dispatch = s->dispatch,
                     .pool = s->pool,
                     .sops = s->sops,
                     .keys = s->keys,
                     .moved = moved,
                     .ud = s,
                     .node_id = node_id(s->node),
                     .lease_ms = node_lease_ms(s->node)};
    if (!(s->workers = workers_start(s->o.workers, &we, err)) ||
        node_run(s->node, s->workers, s->dispatch, s->hooks, moved, s, err) < 0 ||
        start_http(s, err) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    service_stop(s);
    return PT_EFAIL;
}

int service_port(const service *s)
{
    return http_port(s->http);
}

int service_key_beside_db(const service *s)
{
    return keys_beside_db(s->keys);
}

int service_workers(const service *s)
{
    return s->o.workers;
}

const char *service_node_id(const service *s)
{
    return node_id(s->node);
}

void service_drain(service *s, int64_t drain_ms)
{
    if (!s || !s->workers)
        return;
    node_drain(s->node);
    workers_drain(s->workers);
    PT_INFO("service", "node %s draining: no new tasks; waiting up to %lld s for its runs",
            node_id(s->node), (long long)(drain_ms / 1000));
    int left = workers_wait_idle(s->workers, pt_mono_ms() + drain_ms);
    if (left) {
        PT_WARN("service", "%d task%s still held after the drain: handing them back", left,
                left == 1 ? "" : "s");
        workers_hand_back(s->workers);
    } else {
        PT_INFO("service", "drained: every run ended");
    }
}

void service_stop(service *s)
{
    if (!s)
        return;
    if (s->http) {
        http_stop(s->http); /* no request waits on a part below any more */
        s->http = NULL;
    }
    workers_stop(s->workers);
    dispatch_stop(s->dispatch);
    if (s->pool)
        pool_stop(s->pool); /* cuts runs short: handed back, or left to take-over */
    node_stop(s->node); /* before the workers go: it asks them what they hold */
    workers_free(s->workers);
    node_free(s->node); /* marked stopped: what it still leases is free now */
    s->node = NULL;
    pool_free(s->pool);
    dispatch_free(s->dispatch);
    webhooks_stop(s->hooks);
    retention_stop(s->retention);
    bundle_cache_free(s->sops);
    if (s->api_ready)
        api_fini(&s->api);
    store_close(s->main_store);
    keys_free(s->keys);
    free(s);
}
