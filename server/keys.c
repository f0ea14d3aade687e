/*
 * keys.c - the master key and everything sealed under it. See keys.h.
 *
 * Owns the only copy of the master key in a process (in a `keys` handle)
 * and the only code paths where a secret is in the clear between the store
 * and its user. It must never log a value, and wipes every clear copy it
 * makes once it is done with it.
 */
#define _GNU_SOURCE
#include "server/keys.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct keys {
    unsigned char master[32];
};

static int hex_key(const char *hex, unsigned char key[32])
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        key[i] = (unsigned char)v;
    }
    return 0;
}

/* Reads DB.key, or makes it (mode 0600) with a new random key. */
static int key_file(const char *db_path, unsigned char key[32], char *err)
{
    char path[4200], *text = NULL;
    snprintf(path, sizeof(path), "%s.key", db_path);
    if (pt_read_file(path, 4096, &text, NULL) == 0) {
        text[strcspn(text, "\r\n")] = '\0';
        int rc = hex_key(text, key);
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        return rc < 0 ? pt_errf(err, "%s is not a master key (64 hex digits)", path) : 0;
    }
    char hex[65];
    if (pt_random_hex(hex, 64) < 0)
        return pt_errf(err, "no randomness for a master key");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return pt_errf(err, "cannot create the master key file %s: %s", path, strerror(errno));
    int ok = write(fd, hex, 64) == 64 && write(fd, "\n", 1) == 1;
    ok = close(fd) == 0 && ok;
    if (!ok)
        return pt_errf(err, "cannot write the master key file %s", path);
    PT_INFO("service", "created a master key file beside the database (mode 0600)");
    hex_key(hex, key);
    OPENSSL_cleanse(hex, sizeof(hex));
    return 0;
}

keys *keys_load(const char *db_path, char *err)
{
    keys *k = calloc(1, sizeof(*k));
    if (!k) {
        pt_errc(err, PT_ENOMEM, "out of memory");
        return NULL;
    }
    const char *env = getenv("PORTIER_MASTER_KEY");
    int rc = 0;
    if (env && *env) {
        if (hex_key(env, k->master) < 0)
            rc = pt_errf(err, "PORTIER_MASTER_KEY must be 64 hex digits (32 bytes)");
    } else {
        rc = key_file(db_path, k->master, err);
    }
    if (rc < 0) {
        keys_free(k);
        return NULL;
    }
    return k;
}

void keys_free(keys *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k->master, sizeof(k->master));
    free(k);
}

static void secret_aad(char *aad, size_t n, int64_t acct, const char *name)
{
    snprintf(aad, n, "portier secret v1 account=%lld name=%s", (long long)acct, name);
}

int keys_seal(const keys *k, int64_t acct, const char *name, const char *value, unsigned char **out,
              size_t *outlen)
{
    char aad[256];
    secret_aad(aad, sizeof(aad), acct, name);
    return pt_seal(k->master, aad, value, strlen(value), out, outlen);
}

char *keys_open(const keys *k, int64_t acct, const char *name, const unsigned char *sealed,
                size_t len)
{
    char aad[256], *plain = NULL;
    secret_aad(aad, sizeof(aad), acct, name);
    return pt_open(k->master, aad, sealed, len, &plain, NULL) == 0 ? plain : NULL;
}

void keys_wipe(char *plain)
{
    if (!plain)
        return;
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
}

/* ---- Portal secrets ------------------------------------------------------ */

int keys_set_secret(const keys *k, store *st, int64_t acct, const char *name, const char *value)
{
    unsigned char *sealed = NULL;
    size_t n = 0;
    if (keys_seal(k, acct, name, value, &sealed, &n) < 0)
        return PT_EFAIL;
    int rc = store_secret_set(st, acct, name, sealed, n);
    free(sealed);
    return rc;
}

typedef struct opener {
    const keys *k;
    int64_t acct;
    vars *into;
} opener;

static void open_one(void *ud, const char *name, const unsigned char *sealed, size_t len)
{
    opener *o = ud;
    char *plain = keys_open(o->k, o->acct, name, sealed, len);
    if (!plain) {
        PT_ERROR("task", "account %lld's secret %s cannot be opened (wrong master key?)",
                 (long long)o->acct, name);
        return;
    }
    vars_set(o->into, name, plain, 0);
    pt_log_mask(plain);
    keys_wipe(plain);
}

int keys_load_secrets(const keys *k, store *st, int64_t acct, vars *into)
{
    opener o = {k, acct, into};
    return store_secret_each(st, acct, open_one, &o);
}

/* ---- API keys ------------------------------------------------------------ */

void keys_api_key_hash(const char *key, char hash[65])
{
    pt_sha256_hex(key, strlen(key), hash);
}

static void new_api_key(char key[64], char hash[65])
{
    memcpy(key, "pk_", 3);
    pt_random_hex(key + 3, 48);
    keys_api_key_hash(key, hash);
}

/* A new signing secret, "whsec_" + base64 of 32 random bytes (a new
 * string), or NULL. */
static char *new_webhook_secret(void)
{
    unsigned char raw[32];
    if (pt_random(raw, sizeof(raw)) < 0)
        return NULL;
    char *b = pt_b64_encode(raw, sizeof(raw)), *out = NULL;
    OPENSSL_cleanse(raw, sizeof(raw));
    if (b && asprintf(&out, "whsec_%s", b) < 0)
        out = NULL;
    keys_wipe(b);
    return out;
}

/* Seals whsec as the account's current secret (and `old`, if any, as the
 * previous one until `until`) and stores both. */
static int store_whsec(const keys *k, store *st, int64_t acct, const char *whsec, const char *old,
                       int64_t until)
{
    unsigned char *sealed = NULL, *osealed = NULL;
    size_t n = 0, on = 0;
    int rc = PT_EFAIL;
    if (keys_seal(k, acct, "webhook_secret", whsec, &sealed, &n) < 0 ||
        (old && keys_seal(k, acct, "webhook_secret_old", old, &osealed, &on) < 0))
        goto out;
    rc = store_account_set_whsec(st, acct, sealed, n, osealed, on, old ? until : 0);
out:
    free(sealed);
    free(osealed);
    return rc;
}

int keys_create_account(const keys *k, store *st, const char *name, const char *portal,
                        const char *webhook_url, int64_t *id, char key[64], char **whsec, char *err)
{
    char hash[65];
    new_api_key(key, hash);
    *whsec = NULL;
    if (store_begin(st) < 0)
        return pt_errf(err, "the database is busy");
    if (store_account_create(st, name, portal, webhook_url, hash, id, err) < 0) {
        store_rollback(st);
        return PT_EFAIL;
    }
    *whsec = new_webhook_secret();
    if (!*whsec || store_whsec(k, st, *id, *whsec, NULL, 0) < 0 || store_commit(st) < 0) {
        store_rollback(st);
        return pt_errf(err, "cannot store the account's webhook secret");
    }
    return PT_OK;
}

int keys_rotate_api_key(store *st, int64_t id, char key[64])
{
    char hash[65];
    new_api_key(key, hash);
    return store_account_set_key(st, id, hash);
}

int keys_add_user(store *st, int64_t acct, const char *name, char key[64], char *err)
{
    char hash[65];
    new_api_key(key, hash);
    memcpy(key, "pu_", 3); /* a person's key, told apart from the account's at a glance */
    keys_api_key_hash(key, hash);
    return store_user_add(st, acct, name, hash, err);
}

/* ---- Webhook secrets ----------------------------------------------------- */

char *keys_webhook_secret(const keys *k, const account *a)
{
    return a->whsec ? keys_open(k, a->id, "webhook_secret", a->whsec, a->whsec_len) : NULL;
}

void keys_webhook_secrets(const keys *k, const account *a, char *out[2], size_t *n)
{
    *n = 0;
    if ((out[*n] = keys_webhook_secret(k, a)))
        (*n)++;
    if (a->whsec_old && a->whsec_old_until > pt_wall_ms() &&
        (out[*n] = keys_open(k, a->id, "webhook_secret_old", a->whsec_old, a->whsec_old_len)))
        (*n)++;
}

int keys_renew_webhook_secret(const keys *k, store *st, int64_t acct, char **whsec)
{
    *whsec = new_webhook_secret();
    if (*whsec && store_whsec(k, st, acct, *whsec, NULL, 0) == 0)
        return PT_OK;
    free(*whsec);
    *whsec = NULL;
    return PT_EFAIL;
}

int keys_rotate_webhook_secret(const keys *k, store *st, const account *a, int64_t until,
                               char **fresh)
{
    *fresh = new_webhook_secret();
    char *cur = keys_webhook_secret(k, a);
    int rc = *fresh ? store_whsec(k, st, a->id, *fresh, cur, until) : PT_EFAIL;
    keys_wipe(cur);
    if (rc < 0) {
        free(*fresh);
        *fresh = NULL;
    }
    return rc;
}
