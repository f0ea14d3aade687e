/*
 * cli_account.c - `portier account ...` and `portier webhook test`: how an
 * operator sets an account up (SOPs, portal secrets, API key, webhook) before
 * it calls the API. Results are JSON on stdout; secrets read from stdin.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "cli/account_setup.h"
#include "server/service.h"
#include "agent/sop.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const task_types[] = {"submit_prior_authorization", "check_eligibility",
                                         "submit_claim", "submit_appeal"};

static int account_usage(const char *why)
{
    fprintf(stderr,
            "portier account: %s\n"
            "usage: portier account create NAME [--portal URL] [--webhook-url URL]\n"
            "       portier account list\n"
            "       portier account set-secret NAME KEY          (the value is read from stdin)\n"
            "       portier account set-sop NAME TYPE FILE\n"
            "       portier account set-default NAME INPUT VALUE\n"
            "       portier account set-webhook NAME URL\n"
            "       portier account set-portal NAME URL\n"
            "       portier account rotate-key NAME\n"
            "       portier account rotate-webhook-secret NAME [--grace-hours H]\n"
            "  every command takes --db FILE (default portier.db)\n",
            why);
    return 2;
}

int setup_open(const char *db, store **st, unsigned char master[32], char *err)
{
    *st = store_open(db, 1, err);
    if (!*st)
        return -1;
    if (service_master_key(db, master, err) < 0) {
        store_close(*st);
        *st = NULL;
        return -1;
    }
    return 0;
}

int setup_create(store *st, const unsigned char master[32], const char *name, const char *portal,
                 const char *webhook_url, int64_t *id, char key[64], char **whsec, char *err)
{
    char hash[65];
    service_new_key(key, hash);
    if (store_begin(st) < 0)
        return pt_errf(err, "the database is busy");
    if (store_account_create(st, name, portal, webhook_url, hash, id, err) < 0) {
        store_rollback(st);
        return -1;
    }
    *whsec = webhook_new_secret();
    unsigned char *sealed = NULL;
    size_t n = 0;
    if (!*whsec || service_seal(master, *id, "webhook_secret", *whsec, &sealed, &n) < 0 ||
        store_account_set_whsec(st, *id, sealed, n, NULL, 0, 0) < 0 || store_commit(st) < 0) {
        store_rollback(st);
        free(sealed);
        return pt_errf(err, "cannot store the account's webhook secret");
    }
    free(sealed);
    return 0;
}

int setup_rotate_key(store *st, int64_t id, char key[64])
{
    char hash[65];
    service_new_key(key, hash);
    return store_account_set(st, id, "key_hash", hash);
}

int setup_set_secret(store *st, const unsigned char master[32], int64_t id, const char *name,
                     const char *value)
{
    unsigned char *sealed = NULL;
    size_t n = 0;
    if (service_seal(master, id, name, value, &sealed, &n) < 0)
        return -1;
    int rc = store_secret_set(st, id, name, sealed, n);
    free(sealed);
    return rc;
}

char *setup_bundle(const char *path, char *err, size_t errsz)
{
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    sop_diags_print(&d, stderr);
    sop_diags_free(&d);
    if (!s) {
        snprintf(err, errsz, "%s has errors (above); nothing was stored", path);
        return NULL;
    }
    cJSON *b = cJSON_CreateObject(), *files = cJSON_AddObjectToObject(b, "files");
    const char *base = strrchr(path, '/');
    cJSON_AddStringToObject(b, "main", base ? base + 1 : path);
    int ok = 1;
    for (size_t i = 0; i < s->nfiles && ok; i++) {
        char *text = NULL;
        const char *fb = strrchr(s->files[i], '/');
        fb = fb ? fb + 1 : s->files[i];
        if (cJSON_GetObjectItem(files, fb))
            continue;
        if (pt_read_file(s->files[i], 1u << 20, &text, NULL) < 0) {
            snprintf(err, errsz, "cannot read %s", s->files[i]);
            ok = 0;
            break;
        }
        cJSON_AddStringToObject(files, fb, text);
        free(text);
    }
    sop_free(s);
    char *json = ok ? cJSON_PrintUnformatted(b) : NULL;
    cJSON_Delete(b);
    return json;
}

int setup_set_sop(store *st, int64_t id, const char *type, const char *bundle, int *version,
                  int only_if_changed)
{
    if (only_if_changed) {
        char *cur = NULL;
        int v = 0;
        if (store_sop_current(st, id, type, &v, &cur) == 1 && cur && !strcmp(cur, bundle)) {
            free(cur);
            *version = v;
            return 0;
        }
        free(cur);
    }
    return store_sop_add(st, id, type, bundle, version);
}

static char *read_all_stdin(void)
{
    size_t cap = 1024, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, stdin)) > 0;) {
        n += r;
        if (n + 1 >= cap) {
            char *nb = cap < (1u << 20) ? realloc(b, cap *= 2) : NULL;
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
        }
    }
    if (b) {
        b[n] = '\0';
        while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
            b[--n] = '\0';
    }
    return b;
}

static int print_json(cJSON *o)
{
    char *s = cJSON_Print(o);
    printf("%s\n", s ? s : "{}");
    fflush(stdout);
    free(s);
    cJSON_Delete(o);
    return 0;
}

int cli_account(int argc, char **argv)
{
    const char *db = "portier.db", *pos[4] = {0}, *portal = NULL, *hook = NULL;
    double grace_hours = 24;
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            account_usage("help");
            return 0;
        }
        if (!strncmp(a, "--", 2)) {
            if (!v)
                return account_usage("an option needs a value");
            i++;
            if (!strcmp(a, "--db"))
                db = v;
            else if (!strcmp(a, "--portal"))
                portal = v;
            else if (!strcmp(a, "--webhook-url"))
                hook = v;
            else if (!strcmp(a, "--grace-hours"))
                grace_hours = atof(v);
            else
                return account_usage("unknown option");
            continue;
        }
        if (npos == 4)
            return account_usage("too many arguments");
        pos[npos++] = a;
    }
    if (!npos)
        return account_usage("no command");
    const char *cmd = pos[0];
    static const struct {
        const char *name;
        int nargs;
    } cmds[] = {{"create", 1},     {"list", 0},        {"set-secret", 2},
                {"set-sop", 3},    {"set-default", 3}, {"set-webhook", 2},
                {"set-portal", 2}, {"rotate-key", 1},  {"rotate-webhook-secret", 1}};
    int known = -1;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(cmd, cmds[i].name))
            known = (int)i;
    if (known < 0)
        return account_usage("unknown command");
    if (npos - 1 != cmds[known].nargs)
        return account_usage("wrong number of arguments");

    char err[PT_ERR_MAX];
    store *st = NULL;
    unsigned char master[32];
    if (setup_open(db, &st, master, err) < 0) {
        fprintf(stderr, "portier account: %s\n", err);
        return 1;
    }
    int rc = 0;
    account a = {0};
    if (!strcmp(cmd, "create")) {
        int64_t id;
        char key[64], *whsec = NULL;
        if (setup_create(st, master, pos[1], portal, hook, &id, key, &whsec, err) < 0) {
            fprintf(stderr, "portier account: %s\n", err);
            rc = 1;
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)id);
            cJSON_AddStringToObject(o, "name", pos[1]);
            cJSON_AddStringToObject(o, "api_key", key);
            cJSON_AddStringToObject(o, "webhook_secret", whsec);
            cJSON_AddStringToObject(o, "note", "the API key is shown once: store it now");
            print_json(o);
        }
        free(whsec);
        goto out;
    }
    if (!strcmp(cmd, "list")) {
        print_json(store_account_list(st));
        goto out;
    }
    if (store_account_by_name(st, pos[1], &a) != 1) {
        fprintf(stderr, "portier account: no account named '%s' in %s\n", pos[1], db);
        rc = 1;
        goto out;
    }
    if (!strcmp(cmd, "set-secret")) {
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "value for %s (then Enter, Ctrl-D): ", pos[2]);
        char *value = read_all_stdin();
        if (!value || !*value) {
            fprintf(stderr, "portier account: no value on stdin\n");
            rc = 1;
        } else if (setup_set_secret(st, master, a.id, pos[2], value) < 0) {
            fprintf(stderr, "portier account: cannot store the secret\n");
            rc = 1;
        } else
            fprintf(stderr, "secret %s stored for %s (encrypted)\n", pos[2], a.name);
        if (value)
            OPENSSL_cleanse(value, strlen(value));
        free(value);
    } else if (!strcmp(cmd, "set-sop")) {
        int ok = 0;
        for (size_t i = 0; i < 4; i++)
            ok |= !strcmp(pos[2], task_types[i]);
        if (!ok) {
            fprintf(stderr,
                    "portier account: '%s' is not a task type (submit_prior_authorization, "
                    "check_eligibility, submit_claim, submit_appeal)\n",
                    pos[2]);
            rc = 2;
            goto out;
        }
        char perr[1024];
        char *bundle = setup_bundle(pos[3], perr, sizeof(perr));
        int version = 0;
        if (!bundle) {
            fprintf(stderr, "portier account: %s\n", perr);
            rc = 1;
        } else if (setup_set_sop(st, a.id, pos[2], bundle, &version, 0) < 0) {
            fprintf(stderr, "portier account: cannot store the SOP\n");
            rc = 1;
        } else {
            cJSON *o = cJSON_CreateObject();
            char handler[96];
            snprintf(handler, sizeof(handler), "%s_%d", pos[2], version);
            cJSON_AddStringToObject(o, "account", a.name);
            cJSON_AddStringToObject(o, "handler", handler);
            print_json(o);
        }
        free(bundle);
    } else if (!strcmp(cmd, "set-default")) {
        rc = store_default_set(st, a.id, pos[2], pos[3]) < 0;
    } else if (!strcmp(cmd, "set-webhook")) {
        rc = store_account_set(st, a.id, "webhook_url", pos[2]) < 0;
    } else if (!strcmp(cmd, "set-portal")) {
        rc = store_account_set(st, a.id, "portal", pos[2]) < 0;
    } else if (!strcmp(cmd, "rotate-key")) {
        char key[64];
        if (setup_rotate_key(st, a.id, key) < 0)
            rc = 1;
        else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "account", a.name);
            cJSON_AddStringToObject(o, "api_key", key);
            cJSON_AddStringToObject(o, "note", "the old key no longer works");
            print_json(o);
        }
    } else if (!strcmp(cmd, "rotate-webhook-secret")) {
        char *fresh = webhook_new_secret();
        unsigned char *sealed = NULL, *old = NULL;
        size_t n = 0, on = 0;
        char *cur = a.whsec
                        ? service_open_secret(master, a.id, "webhook_secret", a.whsec, a.whsec_len)
                        : NULL;
        int64_t until = pt_wall_ms() + (int64_t)(grace_hours * 3600 * 1000);
        if (!fresh || service_seal(master, a.id, "webhook_secret", fresh, &sealed, &n) < 0 ||
            (cur && service_seal(master, a.id, "webhook_secret_old", cur, &old, &on) < 0) ||
            store_account_set_whsec(st, a.id, sealed, n, old, on, cur ? until : 0) < 0) {
            fprintf(stderr, "portier account: cannot rotate the webhook secret\n");
            rc = 1;
        } else {
            cJSON *o = cJSON_CreateObject();
            char iso[32];
            pt_iso8601(until, iso);
            cJSON_AddStringToObject(o, "account", a.name);
            cJSON_AddStringToObject(o, "webhook_secret", fresh);
            cJSON_AddStringToObject(o, "previous_secret_valid_until", iso);
            print_json(o);
        }
        free(fresh);
        free(sealed);
        free(old);
        if (cur)
            OPENSSL_cleanse(cur, strlen(cur));
        free(cur);
    }
    if (rc == 1 && strncmp(cmd, "rotate", 6) && strcmp(cmd, "set-sop") && strcmp(cmd, "set-secret"))
        fprintf(stderr, "portier account: %s failed\n", cmd);
out:
    account_free(&a);
    OPENSSL_cleanse(master, sizeof(master));
    store_close(st);
    return rc;
}

int cli_webhook(int argc, char **argv)
{
    const char *db = "portier.db", *name = NULL;
    int test = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strcmp(argv[i], "test") && !test)
            test = 1;
        else if (argv[i][0] != '-' && test && !name)
            name = argv[i];
        else {
            fprintf(stderr, "usage: portier webhook test NAME [--db FILE]\n");
            return 2;
        }
    }
    if (!test || !name) {
        fprintf(stderr, "usage: portier webhook test NAME [--db FILE]\n");
        return 2;
    }
    char err[PT_ERR_MAX];
    store *st = NULL;
    unsigned char master[32];
    if (setup_open(db, &st, master, err) < 0) {
        fprintf(stderr, "portier webhook: %s\n", err);
        return 1;
    }
    account a;
    int rc = 1;
    if (store_account_by_name(st, name, &a) != 1) {
        fprintf(stderr, "portier webhook: no account named '%s'\n", name);
        store_close(st);
        return 1;
    }
    char *secret =
        a.whsec ? service_open_secret(master, a.id, "webhook_secret", a.whsec, a.whsec_len) : NULL;
    if (!a.webhook_url || !secret) {
        fprintf(stderr, "portier webhook: the account has no %s\n",
                !a.webhook_url ? "webhook endpoint (account set-webhook)" : "readable secret");
        goto out;
    }
    char eid[40] = "evt_";
    pt_random_hex(eid + 4, 32);
    char data[256];
    snprintf(data, sizeof(data), "{\"accountId\":%lld,\"message\":\"ping from portier\"}",
             (long long)a.id);
    char *body = webhook_envelope("ping", pt_wall_ms(), data, secret);
    const char *secrets[1] = {secret};
    long status = 0;
    char *reply = NULL;
    int64_t latency = 0;
    int sent = webhook_send(a.webhook_url, secrets, 1, eid, body ? body : "{}", &status, &reply,
                            &latency, err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "url", a.webhook_url);
    cJSON_AddStringToObject(o, "event_id", eid);
    if (status)
        cJSON_AddNumberToObject(o, "http_status", status);
    else
        cJSON_AddNullToObject(o, "http_status");
    cJSON_AddNumberToObject(o, "latency_ms", (double)latency);
    cJSON_AddStringToObject(o, "reply", reply ? reply : "");
    if (sent < 0)
        cJSON_AddStringToObject(o, "error", err);
    cJSON_AddBoolToObject(o, "ok", sent == 0 && status >= 200 && status < 300);
    rc = sent == 0 && status >= 200 && status < 300 ? 0 : 1;
    print_json(o);
    free(body);
    free(reply);
out:
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    account_free(&a);
    OPENSSL_cleanse(master, sizeof(master));
    store_close(st);
    return rc;
}
