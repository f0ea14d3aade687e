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
#include <pthread.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Accounts' data keys, once unwrapped: a row's sealed columns and a
 * trajectory's files each need one, and unwrapping is a query and a
 * decryption. */
#define KEY_CACHE 64

struct keys {
    unsigned char master[32];
    int beside_db; /* read from (or made as) a file in the database's folder */
    pthread_mutex_t mu; /* guards the cache: every thread's store uses it */
    struct {
        int64_t acct;
        unsigned char key[32];
        /* a key this connection made inside a transaction not yet
         * committed: only that transaction may use it (a rollback takes the
         * key's row with it, and a key the database does not hold must
         * never seal anything after) */
        const store *provisional;
        unsigned long tx; /* ...and that transaction */
    } cache[KEY_CACHE];
    size_t ncache, next; /* next: the slot to replace when it is full */
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

/* Reads a key file (64 hex digits). */
static int read_key_file(const char *path, unsigned char key[32], char *err)
{
    char *text = NULL;
    if (pt_read_file(path, 4096, &text, NULL) < 0)
        return pt_errf(err, "cannot read the master key file %s: %s", path, strerror(errno));
    text[strcspn(text, "\r\n")] = '\0';
    int rc = hex_key(text, key);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return rc < 0 ? pt_errf(err, "%s is not a master key (64 hex digits)", path) : 0;
}

/* Reads DB.key, or makes it (mode 0600) with a new random key. */
static int key_file(const char *db_path, unsigned char key[32], char *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s.key", db_path);
    if (access(path, F_OK) == 0)
        return read_key_file(path, key, err);
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

/* The folder a path is in, canonical (into out), or "" if it has none. */
static void folder_of(const char *path, char *out, size_t n)
{
    char *copy = strdup(path), *real = NULL;
    out[0] = '\0';
    if (!copy)
        return;
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (slash == copy ? "/" : (*slash = '\0', copy)) : ".";
    if ((real = realpath(dir, NULL)))
        snprintf(out, n, "%s", real);
    free(real);
    free(copy);
}

/* Whether key_path is in the database's folder or under its DB.d/. */
static int is_beside(const char *db_path, const char *key_path)
{
    char dbdir[4200], keydir[4200], data[4300];
    folder_of(db_path, dbdir, sizeof(dbdir));
    folder_of(key_path, keydir, sizeof(keydir));
    char *real = realpath(db_path, NULL);
    snprintf(data, sizeof(data), "%s.d", real ? real : db_path);
    free(real);
    return (dbdir[0] && !strcmp(dbdir, keydir)) || !strncmp(keydir, data, strlen(data));
}

keys *keys_load(const char *db_path, const char *key_path, char *err)
{
    keys *k = calloc(1, sizeof(*k));
    if (!k) {
        pt_errc(err, PT_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&k->mu, NULL);
    const char *env = getenv("PORTIER_MASTER_KEY");
    if (!key_path || !*key_path)
        key_path = getenv("PORTIER_MASTER_KEY_FILE");
    int rc = 0;
    if (env && *env) {
        if (hex_key(env, k->master) < 0)
            rc = pt_errf(err, "PORTIER_MASTER_KEY must be 64 hex digits (32 bytes)");
    } else if (key_path && *key_path) {
        rc = read_key_file(key_path, k->master, err);
        k->beside_db = !store_is_pg(db_path) && is_beside(db_path, key_path);
    } else if (store_is_pg(db_path)) {
        /* nodes share one database and must share its key, which the
         * database itself must never hold */
        rc = pt_errf(err, "with a PostgreSQL database the master key comes from "
                          "PORTIER_MASTER_KEY (64 hex digits) or --master-key-file FILE; "
                          "neither is set");
    } else {
        rc = key_file(db_path, k->master, err);
        k->beside_db = 1;
    }
    if (rc < 0) {
        keys_free(k);
        return NULL;
    }
    return k;
}

int keys_beside_db(const keys *k)
{
    return k->beside_db;
}

void keys_free(keys *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k->master, sizeof(k->master));
    OPENSSL_cleanse(k->cache, sizeof(k->cache));
    pthread_mutex_destroy(&k->mu);
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

/* ---- Data at rest -------------------------------------------------------- */

/* What a sealed file starts with (then pt_seal's bytes). */
static const char file_mark[8] = "PTSEAL1\n";

static void data_key_aad(char *aad, size_t n, int64_t acct)
{
    snprintf(aad, n, "portier data key v1 account=%lld", (long long)acct);
}

/* The cached key of acct for a use on st: 1 found, 0 not (a provisional
 * one whose transaction has ended is dropped: it is read again, committed
 * or made anew). */
static int cached_key(const keys *k, store *st, int64_t acct, unsigned char key[32])
{
    keys *m = (keys *)k; /* the cache is the handle's only mutable part */
    int found = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->ncache && !found; i++) {
        if (m->cache[i].acct != acct)
            continue;
        if (m->cache[i].provisional &&
            (m->cache[i].provisional != st || store_transaction(st) != m->cache[i].tx)) {
            if (m->cache[i].provisional == st) /* its transaction ended: read it again */
                m->cache[i].acct = INT64_MIN;
            continue;
        }
        memcpy(key, m->cache[i].key, 32);
        found = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

static void cache_key(const keys *k, int64_t acct, const unsigned char key[32],
                      const store *provisional, unsigned long tx)
{
    keys *m = (keys *)k;
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < m->ncache && m->cache[i].acct != acct)
        i++;
    for (size_t j = 0; i == m->ncache && j < m->ncache; j++)
        if (m->cache[j].acct == INT64_MIN)
            i = j; /* a dropped one's place */
    if (i == m->ncache)
        i = m->ncache < KEY_CACHE ? m->ncache++ : m->next++ % KEY_CACHE;
    m->cache[i].acct = acct;
    memcpy(m->cache[i].key, key, 32);
    m->cache[i].provisional = provisional;
    m->cache[i].tx = tx;
    pthread_mutex_unlock(&m->mu);
}

static int unwrap_key(const keys *k, store *st, int64_t acct, unsigned char key[32], int *made);

/* The account's data key, made (and stored wrapped) on first use; kept
 * unwrapped in the handle for as long as it lives (one made inside a
 * transaction: once that has committed). */
static int account_key(const keys *k, store *st, int64_t acct, unsigned char key[32])
{
    if (cached_key(k, st, acct, key))
        return PT_OK;
    int made = 0, rc = unwrap_key(k, st, acct, key, &made);
    if (rc < 0)
        return rc;
    unsigned long tx = store_transaction(st);
    cache_key(k, acct, key, made && tx ? st : NULL, tx);
    return PT_OK;
}

static int unwrap_key(const keys *k, store *st, int64_t acct, unsigned char key[32], int *made)
{
    unsigned char *w = NULL;
    size_t n = 0;
    char aad[96], *plain = NULL;
    size_t plen = 0;
    data_key_aad(aad, sizeof(aad), acct);
    int rc = store_account_data_key(st, acct, &w, &n);
    if (rc == 0) {
        unsigned char fresh[32];
        if (pt_random(fresh, sizeof(fresh)) < 0 ||
            pt_seal(k->master, aad, fresh, sizeof(fresh), &w, &n) < 0)
            return PT_EFAIL;
        OPENSSL_cleanse(fresh, sizeof(fresh));
        store_account_init_data_key(st, acct, w, n);
        *made = 1;
        free(w);
        rc = store_account_data_key(st, acct, &w, &n); /* ours, or a racer's */
    }
    if (rc != 1)
        return rc < 0 ? PT_ECLOSED : PT_EFAIL;
    rc = pt_open(k->master, aad, w, n, &plain, &plen) == 0 && plen == 32 ? 0 : PT_EFAIL;
    if (rc == 0)
        memcpy(key, plain, 32);
    if (plain) {
        OPENSSL_cleanse(plain, plen);
        free(plain);
    }
    free(w);
    return rc;
}

static void data_aad(char *full, size_t n, int64_t acct, const char *aad)
{
    snprintf(full, n, "portier data v1 account=%lld %s", (long long)acct, aad);
}

int keys_seal_data(const keys *k, store *st, int64_t acct, const char *aad, const void *plain,
                   size_t n, unsigned char **out, size_t *outlen)
{
    unsigned char key[32];
    char full[512];
    int rc = account_key(k, st, acct, key);
    if (rc < 0)
        return rc; /* PT_ECLOSED: the store could not say */
    data_aad(full, sizeof(full), acct, aad);
    rc = pt_seal(key, full, plain, n, out, outlen);
    OPENSSL_cleanse(key, sizeof(key));
    return rc < 0 ? PT_EFAIL : PT_OK;
}

int keys_open_data(const keys *k, store *st, int64_t acct, const char *aad,
                   const unsigned char *in, size_t len, char **plain, size_t *n)
{
    unsigned char key[32];
    char full[512];
    int rc = account_key(k, st, acct, key);
    if (rc < 0)
        return rc;
    data_aad(full, sizeof(full), acct, aad);
    rc = pt_open(key, full, in, len, plain, n);
    OPENSSL_cleanse(key, sizeof(key));
    return rc < 0 ? PT_EFAIL : PT_OK;
}

static int seal_cb(void *ud, store *st, int64_t acct, const char *aad, const void *plain,
                   size_t n, unsigned char **out, size_t *outlen)
{
    return keys_seal_data(ud, st, acct, aad, plain, n, out, outlen);
}

static int open_cb(void *ud, store *st, int64_t acct, const char *aad, const unsigned char *in,
                   size_t n, char **plain, size_t *plainlen)
{
    return keys_open_data(ud, st, acct, aad, in, n, plain, plainlen);
}

/* An upload: read from the spool, written sealed, the spool's copy gone. */
static int seal_file_cb(void *ud, store *st, int64_t acct, const char *aad, const task_file_in *f,
                        const char *to)
{
    char *data = NULL;
    size_t n = 0;
    if (f->read ? f->read(f->src, &data, &n) < 0
                : pt_read_file(f->path, (size_t)1 << 31, &data, &n) < 0)
        return PT_EFAIL;
    int rc = keys_write_file(ud, st, acct, aad, to, data, n);
    OPENSSL_cleanse(data, n);
    free(data);
    if (rc == 0)
        unlink(f->path);
    return rc;
}

void keys_attach(const keys *k, store *st)
{
    store_sealer s = {seal_cb, open_cb, seal_file_cb, (void *)k};
    store_set_sealer(st, &s);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int keys_write_file(const keys *k, store *st, int64_t acct, const char *aad, const char *path,
                    const void *data, size_t n)
{
    unsigned char *sealed = NULL;
    size_t sn = 0;
    if (keys_seal_data(k, st, acct, aad, data, n, &sealed, &sn) < 0)
        return PT_EFAIL;
    char tmp[4400];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write_all(fd, file_mark, sizeof(file_mark)) == 0 &&
             write_all(fd, sealed, sn) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    free(sealed);
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return PT_EFAIL;
    }
    return PT_OK;
}

int keys_read_file(const keys *k, store *st, int64_t acct, const char *aad, const char *path,
                   size_t max, char **out, size_t *n)
{
    char *raw = NULL;
    size_t len = 0;
    *out = NULL;
    if (pt_read_file(path, max + sizeof(file_mark) + PT_SEAL_OVERHEAD, &raw, &len) < 0)
        return PT_EFAIL;
    if (len < sizeof(file_mark) || memcmp(raw, file_mark, sizeof(file_mark)) != 0) {
        *out = raw; /* written before sealing */
        *n = len;
        return PT_OK;
    }
    int rc = keys_open_data(k, st, acct, aad, (const unsigned char *)raw + sizeof(file_mark),
                            len - sizeof(file_mark), out, n);
    free(raw);
    return rc;
}

/* A trajectory file's path and aad (its run's folder's name and its own). */
static void trajectory_names(char *path, size_t pn, char *aad, size_t an, int64_t taskid,
                             const char *dir, const char *name)
{
    const char *run = strrchr(dir, '/');
    snprintf(path, pn, "%s/%s", dir, name);
    snprintf(aad, an, "trajectory task=%lld run=%s file=%s", (long long)taskid,
             run ? run + 1 : dir, name);
}

int keys_write_trajectory(const keys *k, store *st, int64_t acct, int64_t taskid, const char *dir,
                          const char *name, const void *data, size_t n)
{
    char path[4400], aad[512];
    trajectory_names(path, sizeof(path), aad, sizeof(aad), taskid, dir, name);
    return keys_write_file(k, st, acct, aad, path, data, n);
}

int keys_read_trajectory(const keys *k, store *st, int64_t acct, int64_t taskid, const char *dir,
                         const char *name, size_t max, char **out, size_t *n)
{
    char path[4400], aad[512];
    trajectory_names(path, sizeof(path), aad, sizeof(aad), taskid, dir, name);
    return keys_read_file(k, st, acct, aad, path, max, out, n);
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
