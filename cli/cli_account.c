/*
 * cli_account.c - `portier account ...` and `portier webhook test`: how an
 * operator sets an account up (SOPs, portal secrets, API key, webhook) before
 * it calls the API. Results are JSON on stdout; secrets read from stdin.
 * Sealing is server/keys.c's and bundling server/bundle.c's: this file reads
 * arguments and prints results.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "server/bundle.h"
#include "server/task.h"
#include "server/webhook.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/timeutil.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int account_usage(const char *why)
{
    if (strcmp(why, "help"))
        fprintf(stderr, "portier account: %s\n", why);
    fprintf(strcmp(why, "help") ? stderr : stdout,
            "usage: portier account create NAME [--portal URL] [--webhook-url URL]\n"
            "                                   [--allow-private-webhooks]\n"
            "       portier account list\n"
            "       portier account set-secret NAME KEY          (the value is read from stdin)\n"
            "       portier account set-sop NAME TYPE FILE\n"
            "       portier account set-default NAME INPUT VALUE\n"
            "       portier account set-webhook NAME URL [--allow-private-webhooks]\n"
            "         (a webhook URL is http or https, and not a loopback, link-local or\n"
            "          private address unless --allow-private-webhooks)\n"
            "       portier account set-portal NAME URL\n"
            "       portier account set-session NAME on|off   (keep signed-in browser sessions)\n"
            "       portier account set-events NAME task_finished[,task_waiting]\n"
            "       portier account rotate-key NAME\n"
            "       portier account add-user NAME USER      (prints USER's dashboard key)\n"
            "       portier account remove-user NAME USER   (the key and its sessions end)\n"
            "       portier account rotate-webhook-secret NAME [--grace-hours H]\n"
            "  every command takes --db FILE (default portier.db) or a PostgreSQL\n"
            "  connection string (postgres://USER@HOST:PORT/DB; the master key then comes\n"
            "  from PORTIER_MASTER_KEY or --master-key-file FILE)\n");
    return 2;
}

int cli_open_db(const char *db, store **st, keys **k, char *err)
{
    *k = NULL;
    *st = store_open(db, 1, err);
    if (!*st)
        return PT_EFAIL;
    if (!(*k = keys_load(db, NULL, err))) {
        store_close(*st);
        *st = NULL;
        return PT_EFAIL;
    }
    keys_attach(*k, *st);
    return PT_OK;
}

int cli_db_exists(const char *who, const char *db)
{
    char err[PT_ERR_MAX];
    int e = store_exists(db, err);
    if (e < 0)
        fprintf(stderr, "%s: %s\n", who, err);
    else if (!e && store_is_pg(db))
        fprintf(stderr, "%s: the PostgreSQL database has no portier schema yet (see --db)\n", who);
    else if (!e)
        fprintf(stderr, "%s: no database at %s (see --db)\n", who, db);
    return e > 0;
}

void cli_print_json(cJSON *o)
{
    char *s = cJSON_Print(o);
    printf("%s\n", s ? s : "{}");
    fflush(stdout);
    free(s);
    cJSON_Delete(o);
}

/* ---- The commands --------------------------------------------------------
 * Each gets the open store and keys, the named account (for all but create
 * and list) and the positional arguments; it returns the exit status. */

typedef struct account_cmd {
    const char *db;
    store *st;
    keys *k;
    account a;
    const char *const *pos; /* pos[0] the command, pos[1] the name, ... */
    const char *portal, *hook;
    double grace_hours;
    int allow_private; /* --allow-private-webhooks */
} account_cmd;

static int cmd_create(account_cmd *c)
{
    int64_t id;
    char key[64], *whsec = NULL, err[PT_ERR_MAX];
    int rc = 0;
    if (keys_create_account(c->k, c->st, c->pos[1], c->portal, c->hook, &id, key, &whsec, err) <
        0) {
        fprintf(stderr, "portier account: %s\n", err);
        rc = 1;
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)id);
        cJSON_AddStringToObject(o, "name", c->pos[1]);
        cJSON_AddStringToObject(o, "api_key", key);
        cJSON_AddStringToObject(o, "webhook_secret", whsec);
        cJSON_AddStringToObject(o, "note", "the API key is shown once: store it now");
        cli_print_json(o);
    }
    keys_wipe(whsec);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

static int cmd_list(account_cmd *c)
{
    cli_print_json(store_account_list(c->st));
    return 0;
}

static int cmd_set_secret(account_cmd *c)
{
    int rc = 0;
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "value for %s (then Enter, Ctrl-D): ", c->pos[2]);
    char *value = cli_read_stdin(1u << 20, 0, 1);
    if (!value || !*value) {
        fprintf(stderr, "portier account: no value on stdin\n");
        rc = 1;
    } else if (keys_set_secret(c->k, c->st, c->a.id, c->pos[2], value) < 0) {
        fprintf(stderr, "portier account: cannot store the secret\n");
        rc = 1;
    } else
        fprintf(stderr, "secret %s stored for %s (encrypted)\n", c->pos[2], c->a.name);
    keys_wipe(value);
    return rc;
}

static int cmd_set_sop(account_cmd *c)
{
    const char *type = c->pos[2];
    if (!task_type_known(type)) {
        fprintf(stderr, "portier account: '%s' is not a task type (%s)\n", type, task_types_text());
        return 2;
    }
    char perr[1024];
    char *bundle = bundle_from_file(c->pos[3], perr, sizeof(perr));
    int version = 0, rc = 0;
    if (!bundle) {
        fprintf(stderr, "portier account: %s\n", perr);
        rc = 1;
    } else if (bundle_install(c->st, c->a.id, type, bundle, &version, 0) < 0) {
        fprintf(stderr, "portier account: cannot store the SOP\n");
        rc = 1;
    } else {
        cJSON *o = cJSON_CreateObject();
        char handler[96];
        snprintf(handler, sizeof(handler), "%s_%d", type, version);
        cJSON_AddStringToObject(o, "account", c->a.name);
        cJSON_AddStringToObject(o, "handler", handler);
        cli_print_json(o);
    }
    free(bundle);
    return rc;
}

/* A one-store-call command: 0, or 1 with "portier account: CMD failed". */
static int simple(account_cmd *c, int rc)
{
    if (rc < 0)
        fprintf(stderr, "portier account: %s failed\n", c->pos[0]);
    return rc < 0;
}

static int cmd_set_default(account_cmd *c)
{
    return simple(c, store_default_set(c->st, c->a.id, c->pos[2], c->pos[3]));
}

static int cmd_set_webhook(account_cmd *c)
{
    return simple(c, store_account_set_webhook(c->st, c->a.id, c->pos[2]));
}

static int cmd_set_portal(account_cmd *c)
{
    return simple(c, store_account_set_portal(c->st, c->a.id, c->pos[2]));
}

static int cmd_set_session(account_cmd *c)
{
    const char *v = c->pos[2];
    if (strcmp(v, "on") && strcmp(v, "off")) {
        fprintf(stderr, "portier account: set-session takes on or off, not '%.32s'\n", v);
        return 2;
    }
    /* a running server reads it at each task's start and drops the
     * account's kept sessions when it is off */
    return simple(c, store_account_set_sessions(c->st, c->a.id, !strcmp(v, "on")));
}

static int cmd_set_events(account_cmd *c)
{
    unsigned events = 0;
    char err[PT_ERR_MAX];
    if (webhook_events_parse(c->pos[2], &events, err) < 0) {
        fprintf(stderr, "portier account: set-events: %s\n", err);
        return 2;
    }
    return simple(c, store_account_set_events(c->st, c->a.id, events));
}

static int cmd_rotate_key(account_cmd *c)
{
    char key[64];
    if (keys_rotate_api_key(c->st, c->a.id, key) < 0)
        return 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "account", c->a.name);
    cJSON_AddStringToObject(o, "api_key", key);
    cJSON_AddStringToObject(o, "note", "the old key no longer works");
    cli_print_json(o);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

/* A user's name is shown on every task they act on: printable, short. */
static int user_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > 48)
        return 0;
    for (const char *p = n; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static int cmd_add_user(account_cmd *c)
{
    const char *name = c->pos[2];
    char key[64], err[PT_ERR_MAX];
    if (!user_name_ok(name)) {
        fprintf(stderr, "portier account: a user's name is 1 to 48 printable characters\n");
        return 2;
    }
    if (keys_add_user(c->st, c->a.id, name, key, err) < 0) {
        fprintf(stderr, "portier account: %s\n", err);
        return 1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "account", c->a.name);
    cJSON_AddStringToObject(o, "user", name);
    cJSON_AddStringToObject(o, "dashboard_key", key);
    cJSON_AddStringToObject(o, "note", "shown once: give it to this person only");
    cli_print_json(o);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

static int cmd_remove_user(account_cmd *c)
{
    int rc = store_user_remove(c->st, c->a.id, c->pos[2]);
    if (rc == 0)
        fprintf(stderr, "portier account: '%s' has no user named '%s'\n", c->a.name, c->pos[2]);
    if (rc != 1)
        return 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "account", c->a.name);
    cJSON_AddStringToObject(o, "removed", c->pos[2]);
    cli_print_json(o);
    return 0;
}

static int cmd_rotate_webhook_secret(account_cmd *c)
{
    char *fresh = NULL;
    int64_t until = pt_wall_ms() + (int64_t)(c->grace_hours * 3600 * 1000);
    if (keys_rotate_webhook_secret(c->k, c->st, &c->a, until, &fresh) < 0) {
        fprintf(stderr, "portier account: cannot rotate the webhook secret\n");
        return 1;
    }
    cJSON *o = cJSON_CreateObject();
    char iso[32];
    pt_iso8601(until, iso);
    cJSON_AddStringToObject(o, "account", c->a.name);
    cJSON_AddStringToObject(o, "webhook_secret", fresh);
    cJSON_AddStringToObject(o, "previous_secret_valid_until", iso);
    cli_print_json(o);
    keys_wipe(fresh);
    return 0;
}

static const struct {
    const char *name;
    int nargs;         /* after the command */
    int needs_account; /* pos[1] names an existing account */
    int (*run)(account_cmd *c);
} commands[] = {
    {"create", 1, 0, cmd_create},
    {"list", 0, 0, cmd_list},
    {"set-secret", 2, 1, cmd_set_secret},
    {"set-sop", 3, 1, cmd_set_sop},
    {"set-default", 3, 1, cmd_set_default},
    {"set-webhook", 2, 1, cmd_set_webhook},
    {"set-portal", 2, 1, cmd_set_portal},
    {"set-session", 2, 1, cmd_set_session},
    {"set-events", 2, 1, cmd_set_events},
    {"rotate-key", 1, 1, cmd_rotate_key},
    {"add-user", 2, 1, cmd_add_user},
    {"remove-user", 2, 1, cmd_remove_user},
    {"rotate-webhook-secret", 1, 1, cmd_rotate_webhook_secret},
};

/* Reads the options and positional arguments: 0, 1 (--help shown: exit 0),
 * or the usage's exit status (2) negated. */
static int parse_account_args(int argc, char **argv, account_cmd *c, const char **pos, int *npos)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            account_usage("help");
            return 1;
        }
        if (!strcmp(a, "--allow-private-webhooks")) {
            c->allow_private = 1;
            continue;
        }
        if (!strncmp(a, "--", 2)) {
            if (!v) {
                char why[256];
                snprintf(why, sizeof(why), "%s needs a value", a);
                return -account_usage(why);
            }
            i++;
            if (!strcmp(a, "--db"))
                c->db = v;
            else if (!strcmp(a, "--master-key-file"))
                setenv("PORTIER_MASTER_KEY_FILE", v, 1); /* keys_load reads it */
            else if (!strcmp(a, "--portal"))
                c->portal = v;
            else if (!strcmp(a, "--webhook-url"))
                c->hook = v;
            else if (!strcmp(a, "--grace-hours"))
                c->grace_hours = atof(v);
            else {
                static const char *const known[] = {"--db",          "--portal",
                                                    "--webhook-url", "--grace-hours",
                                                    "--help",        "--master-key-file"};
                char why[256];
                cli_unknown_option(a, known, 6, why, sizeof(why));
                return -account_usage(why);
            }
            continue;
        }
        if (*npos == 4)
            return -account_usage("too many arguments");
        pos[(*npos)++] = a;
    }
    return 0;
}

int cli_account(int argc, char **argv)
{
    const char *pos[4] = {0};
    int npos = 0;
    account_cmd c = {.db = "portier.db", .pos = pos, .grace_hours = 24};
    int parsed = parse_account_args(argc, argv, &c, pos, &npos);
    if (parsed)
        return parsed > 0 ? 0 : -parsed;
    if (!npos)
        return account_usage("no command");
    int known = -1;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(pos[0], commands[i].name))
            known = (int)i;
    if (known < 0)
        return account_usage("unknown command");
    if (npos - 1 != commands[known].nargs)
        return account_usage("wrong number of arguments");
    char err[PT_ERR_MAX];
    if (!strcmp(pos[0], "list") && !cli_db_exists("portier account", c.db)) /* read-only */
        return 1;
    const char *url = !strcmp(pos[0], "set-webhook") ? pos[2]
                      : !strcmp(pos[0], "create")    ? c.hook
                                                     : NULL;
    if (url && webhook_url_check(url, c.allow_private, err) < 0) {
        fprintf(stderr, "portier account: %s\n", err);
        return 1;
    }
    if (cli_open_db(c.db, &c.st, &c.k, err) < 0) {
        fprintf(stderr, "portier account: %s\n", err);
        return 1;
    }
    int rc = 1;
    if (commands[known].needs_account && store_account_by_name(c.st, pos[1], &c.a) != 1)
        fprintf(stderr, "portier account: no account named '%s' in %s\n", pos[1],
                store_label(c.st));
    else
        rc = commands[known].run(&c);
    account_free(&c.a);
    keys_free(c.k);
    store_close(c.st);
    return rc;
}

/* ---- portier webhook test ------------------------------------------------ */

/* Sends the signed ping and prints what came back; the exit status. */
static int ping(const account *a, const char *secret, int allow_private)
{
    int ok = 0;
    cli_print_json(webhook_ping(a, secret, allow_private, &ok));
    return ok ? 0 : 1;
}

#define WEBHOOK_USAGE                                                                              \
    "usage: portier webhook test NAME [--db FILE] [--master-key-file FILE]\n"                       \
    "                            [--allow-private-webhooks]\n"

int cli_webhook(int argc, char **argv)
{
    const char *db = "portier.db", *name = NULL;
    int test = 0, allow_private = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf(WEBHOOK_USAGE
                   "  sends a signed ping to the account's webhook endpoint; the endpoint is\n"
                   "  checked as account set-webhook checks it (http or https; loopback,\n"
                   "  link-local and private addresses only with --allow-private-webhooks)\n");
            return 0;
        }
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strcmp(argv[i], "--master-key-file") && i + 1 < argc)
            setenv("PORTIER_MASTER_KEY_FILE", argv[++i], 1); /* keys_load reads it */
        else if (!strcmp(argv[i], "--allow-private-webhooks"))
            allow_private = 1;
        else if (!strcmp(argv[i], "test") && !test)
            test = 1;
        else if (argv[i][0] != '-' && test && !name)
            name = argv[i];
        else
            test = -1;
    }
    if (test != 1 || !name) {
        fprintf(stderr, WEBHOOK_USAGE);
        return 2;
    }
    char err[PT_ERR_MAX];
    store *st = NULL;
    keys *k = NULL;
    if (!cli_db_exists("portier webhook", db)) /* a test changes nothing: create nothing */
        return 1;
    if (cli_open_db(db, &st, &k, err) < 0) {
        fprintf(stderr, "portier webhook: %s\n", err);
        return 1;
    }
    account a = {0};
    char *secret = NULL;
    int rc = 1;
    if (store_account_by_name(st, name, &a) != 1) {
        fprintf(stderr, "portier webhook: no account named '%s'\n", name);
        goto out;
    }
    secret = keys_webhook_secret(k, &a);
    if (!a.webhook_url || !secret)
        fprintf(stderr, "portier webhook: the account has no %s\n",
                !a.webhook_url ? "webhook endpoint (account set-webhook)" : "readable secret");
    else
        rc = ping(&a, secret, allow_private);
out:
    keys_wipe(secret);
    account_free(&a);
    keys_free(k);
    store_close(st);
    return rc;
}
