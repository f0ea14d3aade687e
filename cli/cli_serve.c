/*
 * cli_serve.c - `portier serve`: the task API, its workers and webhooks,
 * until SIGINT or SIGTERM. With --demo it also runs the sandbox portal and
 * sets up a demo account for it, printing the lines a new user pastes.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "server/bundle.h"
#include "server/service.h"
#include "server/task.h"
#include "agent/vars.h"
#include "portals/sandbox/sandbox.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"

#include <malloc.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int serve_usage(const char *why)
{
    if (strcmp(why, "help"))
        fprintf(stderr, "portier serve: %s\n", why);
    fprintf(strcmp(why, "help") ? stderr : stdout,
            "usage: portier serve [--listen 127.0.0.1:8080] [--db portier.db] [--workers N]\n"
            "                     [--browser ws://...] [--demo] [--webhook-url URL]\n"
            "                     [--hold-seconds S] [--max-parked N]\n"
            "                     [--max-body BYTES] [--max-file BYTES]\n"
            "                     [--session-max-age 20m] [--session-idle 5m]\n"
            "                     [--max-queue N] [--portal-listen 127.0.0.1:8081]\n"
            "                     [--header-timeout S] [--min-body-rate BYTES]\n"
            "                     [--max-conns-per-ip N] [--allow-private-webhooks]\n"
            "                     [--browsers N] [--max-attempts N]\n"
            "                     [--retain-days 30] [--master-key-file FILE]\n"
            "                     [--data-dir DIR]\n"
            "                     [--node-id ID] [--lease-seconds 30] [--drain-seconds 25]\n"
            "  --db takes a SQLite file or a PostgreSQL connection string\n"
            "  (postgres://USER@HOST:PORT/DB, or host=... dbname=...); with PostgreSQL\n"
            "  the master key comes from PORTIER_MASTER_KEY or --master-key-file, and\n"
            "  files live in --data-dir (default portier.d)\n");
    return 2;
}

static long long number(const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    return *v && !*end && n >= 0 ? n : -1;
}

/* A duration in seconds: 90, 90s, 20m, 2h. -1 if malformed. */
static long long seconds(const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || end == v || n < 0 || n > 7 * 24 * 3600)
        return -1;
    long long unit = !*end               ? 1
                     : !strcmp(end, "s") ? 1
                     : !strcmp(end, "m") ? 60
                     : !strcmp(end, "h") ? 3600
                                         : -1;
    return unit < 0 ? -1 : n * unit;
}

/* ---- The demo account ---------------------------------------------------- */

typedef struct demo_keys {
    char api_key[64];
    char whsec[128];
} demo_keys;

/* The keys kept in DB.demo (mode 0600), if they still open the demo account
 * `a`: 1 and *k, else 0. */
static int kept_keys(store *st, const char *path, const account *a, demo_keys *k)
{
    char *text = NULL;
    cJSON *kept = pt_read_file(path, 4096, &text, NULL) == 0 ? cJSON_Parse(text) : NULL;
    const char *kkey = cJSON_GetStringValue(cJSON_GetObjectItem(kept, "api_key"));
    const char *ksec = cJSON_GetStringValue(cJSON_GetObjectItem(kept, "webhook_secret"));
    int reuse = 0;
    if (kkey && ksec) {
        char hash[65];
        account b;
        keys_api_key_hash(kkey, hash);
        reuse = store_account_by_key(st, hash, &b) == 1 && b.id == a->id;
        if (reuse) {
            account_free(&b);
            snprintf(k->api_key, sizeof(k->api_key), "%s", kkey);
            snprintf(k->whsec, sizeof(k->whsec), "%s", ksec);
        }
    }
    cJSON_Delete(kept);
    free(text);
    return reuse;
}

/* Makes the demo account (or, if it exists, new keys for it) and keeps the
 * keys in DB.demo (mode 0600). */
static int new_keys(store *st, const keys *ks, const char *path, const char *portal,
                    const char *hook, account *a, demo_keys *k, char *err)
{
    char *whsec = NULL;
    if (!a->id) {
        int64_t id;
        if (keys_create_account(ks, st, "demo", portal, hook, &id, k->api_key, &whsec, err) < 0 ||
            store_account_by_id(st, id, a) != 1) {
            keys_wipe(whsec);
            return PT_EFAIL;
        }
    } else if (keys_rotate_api_key(st, a->id, k->api_key) < 0 ||
               keys_renew_webhook_secret(ks, st, a->id, &whsec) < 0) {
        /* the key file is gone: new key and secret, kept this time */
        return pt_errf(err, "cannot renew the demo account's keys");
    }
    snprintf(k->whsec, sizeof(k->whsec), "%s", whsec ? whsec : "");
    keys_wipe(whsec);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "api_key", k->api_key);
    cJSON_AddStringToObject(o, "webhook_secret", k->whsec);
    char *json = cJSON_Print(o);
    cJSON_Delete(o);
    int w = json ? pt_write_file(path, json, strlen(json), 0600) : -1;
    chmod(path, 0600);
    keys_wipe(json);
    return w < 0 ? pt_errf(err, "cannot write %s", path) : PT_OK;
}

/* The bundled sandbox SOPs and test credentials (new versions only when
 * the files changed). */
static int demo_sops(store *st, const keys *ks, int64_t id, char *err)
{
    for (size_t i = 0; i < TASK_NTYPES; i++) {
        char sp[4200], perr[1024] = "", full[4400];
        int version;
        snprintf(sp, sizeof(sp), "sops/sandbox/%s.sop", task_type_name(i));
        pt_home_path(sp, full, sizeof(full));
        char *bundle = bundle_from_file(full, perr, sizeof(perr));
        if (!bundle || bundle_install(st, id, task_type_name(i), bundle, &version, 1) < 0) {
            free(bundle);
            return pt_errf(err, "cannot install the demo SOP %s: %s", full, perr);
        }
        free(bundle);
    }
    char sec[4400];
    pt_home_path("sops/sandbox/sandbox.secrets", sec, sizeof(sec));
    vars *v = vars_new();
    int rc = vars_load_secrets(v, sec, err);
    for (size_t i = 0; rc == 0 && i < vars_count(v); i++)
        keys_set_secret(ks, st, id, vars_name(v, i), vars_get(v, vars_name(v, i)));
    vars_free(v);
    return rc < 0 ? PT_EFAIL : PT_OK;
}

/* Creates the demo account once, or finds it again with the keys kept in
 * DB.demo; points it at this run's sandbox and webhook URL. */
static int demo_setup(const char *db, const char *data_dir, const char *portal, const char *hook,
                      demo_keys *k, char *err)
{
    store *st = NULL;
    keys *ks = NULL;
    if (cli_open_db(db, &st, &ks, err) < 0)
        return PT_EFAIL;
    char path[4200];
    /* a PostgreSQL string is no place for a file: the data folder is */
    if (store_is_pg(db))
        snprintf(path, sizeof(path), "%s/demo", data_dir);
    else
        snprintf(path, sizeof(path), "%s.demo", db);
    int rc = PT_EFAIL;
    account a = {0};
    int have = store_account_by_name(st, "demo", &a) == 1;
    if (!(have && kept_keys(st, path, &a, k)) &&
        new_keys(st, ks, path, portal, hook, &a, k, err) < 0)
        goto out;
    store_account_set_portal(st, a.id, portal);
    if (hook)
        store_account_set_webhook(st, a.id, hook);
    rc = demo_sops(st, ks, a.id, err);
out:
    account_free(&a);
    keys_free(ks);
    store_close(st);
    return rc;
}

/* Points the demo account's webhook at the built-in sink of this run. */
static void route_to_sink(const char *db, const char *url)
{
    char err[PT_ERR_MAX];
    store *st = store_open(db, 0, err);
    account a;
    if (st && store_account_by_name(st, "demo", &a) == 1) {
        store_account_set_webhook(st, a.id, url);
        account_free(&a);
    }
    store_close(st);
}

/* The command line of `serve`. */
typedef struct serve_args {
    service_options o;
    char host[128], phost[128];
    char data_dir[4200];
    int pport, demo;
    int drain_seconds; /* -1: the default */
    const char *hook;
} serve_args;

/* A node id names the node in logs, events and /metrics labels: plain
 * characters only. */
static int node_id_ok(const char *v)
{
    size_t n = strlen(v);
    if (!n || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || strchr("._:-", v[i])))
            return 0;
    return 1;
}

/* What option a wants, or that it is unknown: why, filled. */
static const char *serve_bad_option(const char *a, char *why, size_t whysz)
{
    static const char *const wants[][2] = {
        {"--workers", "a number of workers from 0 to 64"},
        {"--hold-seconds", "seconds, 1 or more"},
        {"--max-queue", "a number of tasks, 1 or more"},
        {"--max-body", "bytes, 1024 or more"},
        {"--max-file", "bytes, 1 or more"},
        {"--session-max-age", "a duration such as 90, 90s, 20m or 2h (0: keep no session)"},
        {"--session-idle", "a duration of 1 s or more, such as 300, 5m"},
        {"--max-parked", "a number of parked tasks from 0 to 256"},
        {"--header-timeout", "seconds from 1 to 3600"},
        {"--min-body-rate", "bytes per second, 1 or more"},
        {"--max-conns-per-ip", "a number of connections from 1 to 100000"},
        {"--browsers", "a number of browsers from 1 to 64"},
        {"--max-attempts", "a number of runs from 1 to 100"},
        {"--retain-days", "days from 0 to 36500 (0: purged once final)"},
        {"--master-key-file", "the path of a file holding 64 hex digits"},
        {"--data-dir", "the path of a folder"},
        {"--node-id", "1 to 63 letters, digits and . _ : -"},
        {"--lease-seconds", "seconds from 3 to 3600"},
        {"--drain-seconds", "seconds from 0 to 86400"},
    };
    static const char *const known[] = {"--listen",
                                        "--portal-listen",
                                        "--db",
                                        "--browser",
                                        "--webhook-url",
                                        "--workers",
                                        "--hold-seconds",
                                        "--max-queue",
                                        "--max-body",
                                        "--max-file",
                                        "--session-max-age",
                                        "--session-idle",
                                        "--demo",
                                        "--help",
                                        "--max-parked",
                                        "--header-timeout",
                                        "--min-body-rate",
                                        "--max-conns-per-ip",
                                        "--browsers",
                                        "--max-attempts",
                                        "--retain-days",
                                        "--master-key-file",
                                        "--allow-private-webhooks",
                                        "--data-dir",
                                        "--node-id",
                                        "--lease-seconds",
                                        "--drain-seconds"};
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        if (!strcmp(a, wants[i][0])) {
            snprintf(why, whysz, "%s takes %s", a, wants[i][1]);
            return why;
        }
    cli_unknown_option(a, known, sizeof(known) / sizeof(known[0]), why, whysz);
    return why;
}

/* Reads the command line: -1 to go on, else the exit status. */
static int parse_serve_args(int argc, char **argv, serve_args *sa)
{
    service_options *o = &sa->o;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            serve_usage("help");
            return 0;
        }
        if (!strcmp(a, "--demo")) {
            sa->demo = 1;
            continue;
        }
        if (!strcmp(a, "--allow-private-webhooks")) {
            o->allow_private_webhooks = 1;
            continue;
        }
        if (!v) {
            char why[256];
            snprintf(why, sizeof(why), "%s %s", a,
                     strncmp(a, "--", 2) ? "is not an option" : "needs a value");
            return serve_usage(why);
        }
        i++;
        long long n = number(v);
        char why[256];
        if (!strcmp(a, "--listen")) {
            if (cli_host_port(v, sa->host, sizeof(sa->host), &o->port) < 0)
                return serve_usage("--listen takes HOST:PORT (port 0: any free port)");
        } else if (!strcmp(a, "--portal-listen")) {
            if (cli_host_port(v, sa->phost, sizeof(sa->phost), &sa->pport) < 0)
                return serve_usage("--portal-listen takes HOST:PORT");
        } else if (!strcmp(a, "--db"))
            o->db_path = v;
        else if (!strcmp(a, "--browser"))
            o->browser_ws = v;
        else if (!strcmp(a, "--webhook-url"))
            sa->hook = v;
        else if (!strcmp(a, "--workers") && n >= 0 && n <= 64)
            o->workers = n ? (int)n : -1; /* 0: accept tasks, run none here */
        else if (!strcmp(a, "--hold-seconds") && n >= 1)
            o->hold_seconds = (int)n;
        else if (!strcmp(a, "--max-parked") && n >= 0 && n <= 256)
            o->max_parked = n ? (int)n : -1; /* 0: park none */
        else if (!strcmp(a, "--max-queue") && n >= 1)
            o->max_queue = (int)n;
        else if (!strcmp(a, "--max-body") && n >= 1024)
            o->max_body = (size_t)n;
        else if (!strcmp(a, "--max-file") && n >= 1)
            o->max_file = (size_t)n;
        else if (!strcmp(a, "--session-max-age") && (n = seconds(v)) >= 0)
            o->session_max_age = n ? (int)n : -1; /* 0: keep no session */
        else if (!strcmp(a, "--session-idle") && (n = seconds(v)) >= 1)
            o->session_idle = (int)n;
        else if (!strcmp(a, "--header-timeout") && n >= 1 && n <= 3600)
            o->header_timeout_ms = (int)n * 1000;
        else if (!strcmp(a, "--min-body-rate") && n >= 1)
            o->min_body_rate = (size_t)n;
        else if (!strcmp(a, "--max-conns-per-ip") && n >= 1 && n <= 100000)
            o->max_conns_per_peer = (int)n;
        else if (!strcmp(a, "--browsers") && n >= 1 && n <= 64)
            o->browsers = (int)n;
        else if (!strcmp(a, "--max-attempts") && n >= 1 && n <= 100)
            o->max_attempts = (int)n;
        else if (!strcmp(a, "--retain-days") && n >= 0 && n <= 36500)
            o->retain_ms = n ? n * 24 * 3600 * 1000 : 1; /* 0: purged once final */
        else if (!strcmp(a, "--data-dir") && *v)
            o->data_dir = v;
        else if (!strcmp(a, "--node-id") && node_id_ok(v))
            o->node_id = v;
        else if (!strcmp(a, "--lease-seconds") && n >= 3 && n <= 3600)
            o->lease_seconds = (int)n;
        else if (!strcmp(a, "--drain-seconds") && n >= 0 && n <= 86400)
            sa->drain_seconds = (int)n;
        else if (!strcmp(a, "--master-key-file") && *v) {
            o->master_key_file = v;
            setenv("PORTIER_MASTER_KEY_FILE", v, 1); /* the demo's set-up reads it too */
        } else
            return serve_usage(serve_bad_option(a, why, sizeof(why)));
    }
    o->host = sa->host;
    /* the data folder: DB.d beside a SQLite file; a PostgreSQL string names
     * no folder, so portier.d here unless --data-dir says */
    if (o->data_dir)
        snprintf(sa->data_dir, sizeof(sa->data_dir), "%s", o->data_dir);
    else if (store_is_pg(o->db_path))
        snprintf(sa->data_dir, sizeof(sa->data_dir), "portier.d");
    else
        snprintf(sa->data_dir, sizeof(sa->data_dir), "%s.d", o->db_path);
    o->data_dir = sa->data_dir;
    return -1;
}

int cli_serve(int argc, char **argv)
{
    serve_args sa = {.o = {.db_path = "portier.db", .port = 8080},
                     .host = "127.0.0.1",
                     .phost = "127.0.0.1",
                     .pport = 8081,
                     .drain_seconds = -1};
    int parsed = parse_serve_args(argc, argv, &sa);
    if (parsed >= 0)
        return parsed;
    service_options o = sa.o;
    const char *host = sa.host, *phost = sa.phost, *hook = sa.hook;
    int pport = sa.pport, demo = sa.demo;
    /* Many handler threads allocate and free small buffers per request:
     * without this, glibc keeps returning heap to the kernel and taking it
     * back (measured: a fifth of the time under load went to page faults
     * and TLB shootdowns). Buffers of a quarter megabyte and more (a
     * screenshot's reply, a trajectory's inline HTML) are mapped and given
     * back as they are freed: kept on the heap, each worker's high-water
     * mark stayed (measured, 4 workers, fresh contexts: RSS peak 28.7 MB
     * with a 4 MB threshold, 28.1-28.3 MB with this). */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 256 << 10);

    sigset_t set;
    cli_stop_signals(&set); /* before any thread starts */

    char err[PT_ERR_MAX];
    sandbox *sb = NULL;
    service *s = NULL;
    int rc = 1;
    if (demo) {
        char data[4300];
        mkdir(o.data_dir, 0700);
        snprintf(data, sizeof(data), "%s/sandbox", o.data_dir);
        mkdir(data, 0700);
        sandbox_options so = {.host = phost, .port = pport, .data_dir = data};
        if (sandbox_start(&so, &sb, err) < 0) {
            fprintf(stderr, "portier serve: the sandbox portal: %s\n", err);
            return 1;
        }
    }
    /* the demo account points at this run's sandbox before any worker
     * starts (recovered tasks run against it) */
    demo_keys k = {0};
    if (demo && demo_setup(o.db_path, o.data_dir, sandbox_url(sb), hook, &k, err) < 0) {
        fprintf(stderr, "portier serve: the demo account: %s\n", err);
        goto out;
    }
    o.webhook_sink = demo; /* the demo's receiver is routed with --demo only */
    if (service_start(&o, &s, err) < 0) {
        fprintf(stderr, "portier serve: %s\n", err);
        goto out;
    }
    if (!demo && service_key_beside_db(s))
        PT_WARN("service", "the master key is a file beside the database: a copy or a backup of "
                           "that folder carries its own key; keep it elsewhere "
                           "(--master-key-file FILE or PORTIER_MASTER_KEY; README.md, "
                           "\"Data at rest\")");
    char base[256];
    snprintf(base, sizeof(base), "http://%s:%d", host, service_port(s));
    if (demo) {
        char sinkurl[300];
        snprintf(sinkurl, sizeof(sinkurl), "%s/_portier/webhook-sink", base);
        if (!hook) /* the built-in sink, at this run's address */
            route_to_sink(o.db_path, sinkurl);
        /* the one place a key is printed: for the person who started it */
        printf("# Portier demo: the task API at %s, the sandbox portal at %s/login\n"
               "# Paste these lines into a shell, then send the quickstart request below.\n"
               "export API_BASE=%s\n"
               "export PORTIER_API_KEY=%s\n"
               "export PORTIER_WEBHOOK_SECRET=%s\n"
               "\n"
               "curl --request POST \\\n"
               "  --url \"$API_BASE/tasks\" \\\n"
               "  --header \"Authorization: Bearer $PORTIER_API_KEY\" \\\n"
               "  --header \"Content-Type: application/json\" \\\n"
               "  --data '{\n"
               "\"type\": \"submit_claim\",\n"
               "\"data\": \"member_id: 300059049\\npatient: Louise Golicic\\nDOB: "
               "1949-12-23\\nplace_of_service: home\\nservice_date: 2025-03-25\"\n"
               "}'\n"
               "\n"
               "# Then: curl -H \"Authorization: Bearer $PORTIER_API_KEY\" \"$API_BASE/tasks/1\"\n"
               "# Webhooks go to %s (logged below).\n",
               base, sandbox_url(sb), base, k.api_key, k.whsec, hook ? hook : sinkurl);
    } else {
        printf("portier: the task API at %s (docs/openapi.yaml); Ctrl-C stops\n", base);
    }
    fflush(stdout);
    PT_INFO("serve", "node %s listening on %s with %d workers", service_node_id(s), base,
            service_workers(s));
    int sig = 0;
    sigwait(&set, &sig);
    /* a node that stops finishes what it runs first (docs/deploy.md,
     * "Draining a node"); what cannot finish in time is handed back */
    PT_INFO("serve", "stopping (signal %d)", sig);
    service_drain(s, (sa.drain_seconds < 0 ? 25 : sa.drain_seconds) * 1000LL);
    rc = 0;
out:
    OPENSSL_cleanse(&k, sizeof(k));
    service_stop(s);
    sandbox_stop(sb);
    return rc;
}
