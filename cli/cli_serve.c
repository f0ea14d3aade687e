/*
 * cli_serve.c - `portier serve`: the task API, its workers and webhooks,
 * until SIGINT or SIGTERM. With --demo it also runs the sandbox portal and
 * sets up a demo account for it, printing the lines a new user pastes.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/account_setup.h"
#include "server/service.h"
#include "agent/vars.h"
#include "portals/sandbox/sandbox.h"
#include "util/crypto.h"
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
    fprintf(stderr,
            "portier serve: %s\n"
            "usage: portier serve [--listen 127.0.0.1:8080] [--db portier.db] [--workers N]\n"
            "                     [--browser ws://...] [--demo] [--webhook-url URL]\n"
            "                     [--hold-seconds S] [--max-body BYTES] [--max-file BYTES]\n"
            "                     [--max-queue N] [--portal-listen 127.0.0.1:8081]\n",
            why);
    return 2;
}

static long long number(const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    return *v && !*end && n >= 0 ? n : -1;
}

/* ---- The demo account ---------------------------------------------------- */

static const char *const demo_types[] = {"submit_claim", "check_eligibility",
                                         "submit_prior_authorization", "submit_appeal"};

typedef struct demo_keys {
    char api_key[64];
    char whsec[128];
} demo_keys;

static void set_secret_cb(store *st, const unsigned char *master, int64_t id, const vars *v)
{
    for (size_t i = 0; i < vars_count(v); i++)
        setup_set_secret(st, master, id, vars_name(v, i), vars_get(v, vars_name(v, i)));
}

/* Creates the demo account once, or finds it again with the keys kept in
 * DB.demo (mode 0600); points it at this run's sandbox and webhook URL. */
static int demo_setup(const char *db, const char *portal, const char *hook, demo_keys *k, char *err)
{
    store *st = NULL;
    unsigned char master[32];
    if (setup_open(db, &st, master, err) < 0)
        return -1;
    char path[4200], *text = NULL;
    snprintf(path, sizeof(path), "%s.demo", db);
    int rc = -1;
    account a = {0};
    int have = store_account_by_name(st, "demo", &a) == 1;
    cJSON *kept = pt_read_file(path, 4096, &text, NULL) == 0 ? cJSON_Parse(text) : NULL;
    const char *kkey = cJSON_GetStringValue(cJSON_GetObjectItem(kept, "api_key"));
    const char *ksec = cJSON_GetStringValue(cJSON_GetObjectItem(kept, "webhook_secret"));
    int reuse = 0;
    if (have && kkey && ksec) {
        char hash[65];
        account b;
        pt_sha256_hex(kkey, strlen(kkey), hash);
        reuse = store_account_by_key(st, hash, &b) == 1 && b.id == a.id;
        if (reuse)
            account_free(&b);
    }
    if (reuse) {
        snprintf(k->api_key, sizeof(k->api_key), "%s", kkey);
        snprintf(k->whsec, sizeof(k->whsec), "%s", ksec);
    } else {
        char *whsec = NULL;
        if (!have) {
            int64_t id;
            if (setup_create(st, master, "demo", portal, hook, &id, k->api_key, &whsec, err) < 0)
                goto out;
            have = store_account_by_id(st, id, &a) == 1;
        } else {
            /* the key file is gone: new key and secret, kept this time */
            unsigned char *sealed = NULL;
            size_t n = 0;
            whsec = webhook_new_secret();
            if (setup_rotate_key(st, a.id, k->api_key) < 0 || !whsec ||
                service_seal(master, a.id, "webhook_secret", whsec, &sealed, &n) < 0 ||
                store_account_set_whsec(st, a.id, sealed, n, NULL, 0, 0) < 0) {
                free(sealed);
                free(whsec);
                pt_errf(err, "cannot renew the demo account's keys");
                goto out;
            }
            free(sealed);
        }
        snprintf(k->whsec, sizeof(k->whsec), "%s", whsec ? whsec : "");
        free(whsec);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "api_key", k->api_key);
        cJSON_AddStringToObject(o, "webhook_secret", k->whsec);
        char *json = cJSON_Print(o);
        cJSON_Delete(o);
        int w = json ? pt_write_file(path, json, strlen(json), 0600) : -1;
        chmod(path, 0600);
        free(json);
        if (w < 0) {
            pt_errf(err, "cannot write %s", path);
            goto out;
        }
    }
    if (!have)
        goto out;
    store_account_set(st, a.id, "portal", portal);
    if (hook)
        store_account_set(st, a.id, "webhook_url", hook);
    /* the bundled sandbox SOPs and test credentials (new versions only when
     * the files changed) */
    for (size_t i = 0; i < 4; i++) {
        char sp[4200], perr[1024];
        int version;
        snprintf(sp, sizeof(sp), "sops/sandbox/%s.sop", demo_types[i]);
        char full[4400];
        pt_home_path(sp, full, sizeof(full));
        char *bundle = setup_bundle(full, perr, sizeof(perr));
        if (!bundle || setup_set_sop(st, a.id, demo_types[i], bundle, &version, 1) < 0) {
            free(bundle);
            pt_errf(err, "cannot install the demo SOP %s: %s", full, perr);
            goto out;
        }
        free(bundle);
    }
    char sec[4400];
    pt_home_path("sops/sandbox/sandbox.secrets", sec, sizeof(sec));
    vars *v = vars_new();
    if (vars_load_secrets(v, sec, err) < 0) {
        vars_free(v);
        goto out;
    }
    set_secret_cb(st, master, a.id, v);
    vars_free(v);
    rc = 0;
out:
    cJSON_Delete(kept);
    free(text);
    account_free(&a);
    OPENSSL_cleanse(master, sizeof(master));
    store_close(st);
    return rc;
}

int cli_serve(int argc, char **argv)
{
    service_options o = {.db_path = "portier.db", .port = 8080};
    char host[128] = "127.0.0.1", phost[128] = "127.0.0.1";
    int pport = 8081, demo = 0;
    const char *hook = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            serve_usage("help");
            return 0;
        }
        if (!strcmp(a, "--demo")) {
            demo = 1;
            continue;
        }
        if (!v)
            return serve_usage(strncmp(a, "--", 2) ? "unexpected argument"
                                                   : "an option needs a value");
        i++;
        long long n = number(v);
        if (!strcmp(a, "--listen")) {
            if (cli_host_port(v, host, sizeof(host), &o.port) < 0)
                return serve_usage("--listen takes HOST:PORT (port 0: any free port)");
        } else if (!strcmp(a, "--portal-listen")) {
            if (cli_host_port(v, phost, sizeof(phost), &pport) < 0)
                return serve_usage("--portal-listen takes HOST:PORT");
        } else if (!strcmp(a, "--db"))
            o.db_path = v;
        else if (!strcmp(a, "--browser"))
            o.browser_ws = v;
        else if (!strcmp(a, "--webhook-url"))
            hook = v;
        else if (!strcmp(a, "--workers") && n >= 0 && n <= 64)
            o.workers = n ? (int)n : -1; /* 0: accept tasks, run none here */
        else if (!strcmp(a, "--hold-seconds") && n >= 1)
            o.hold_seconds = (int)n;
        else if (!strcmp(a, "--max-queue") && n >= 1)
            o.max_queue = (int)n;
        else if (!strcmp(a, "--max-body") && n >= 1024)
            o.max_body = (size_t)n;
        else if (!strcmp(a, "--max-file") && n >= 1)
            o.max_file = (size_t)n;
        else
            return serve_usage("unknown option, or a value out of range");
    }
    o.host = host;
    /* Many handler threads allocate and free small buffers per request:
     * without this, glibc keeps returning heap to the kernel and taking it
     * back (measured: a fifth of the time under load went to page faults
     * and TLB shootdowns). */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);

    sigset_t set;
    cli_stop_signals(&set); /* before any thread starts */

    char err[PT_ERR_MAX];
    sandbox *sb = NULL;
    service *s = NULL;
    int rc = 1;
    if (demo) {
        char data[4200];
        snprintf(data, sizeof(data), "%s.d", o.db_path);
        mkdir(data, 0700);
        snprintf(data, sizeof(data), "%s.d/sandbox", o.db_path);
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
    if (demo && demo_setup(o.db_path, sandbox_url(sb), hook, &k, err) < 0) {
        fprintf(stderr, "portier serve: the demo account: %s\n", err);
        goto out;
    }
    if (service_start(&o, &s, err) < 0) {
        fprintf(stderr, "portier serve: %s\n", err);
        goto out;
    }
    char base[256];
    snprintf(base, sizeof(base), "http://%s:%d", host, service_port(s));
    if (demo) {
        char sinkurl[300];
        snprintf(sinkurl, sizeof(sinkurl), "%s/_portier/webhook-sink", base);
        if (!hook) { /* the built-in sink, at this run's address */
            account a;
            store *st = s->main_store;
            if (st && store_account_by_name(st, "demo", &a) == 1) {
                store_account_set(st, a.id, "webhook_url", sinkurl);
                account_free(&a);
            }
        }
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
    PT_INFO("serve", "listening on %s with %d workers", base, s->nworkers);
    int sig = 0;
    sigwait(&set, &sig);
    PT_INFO("serve", "stopping (signal %d)", sig);
    rc = 0;
out:
    OPENSSL_cleanse(&k, sizeof(k));
    service_stop(s);
    sandbox_stop(sb);
    return rc;
}
