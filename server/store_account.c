/*
 * store_account.c - the store's accounts and what belongs to them: portal
 * secrets (sealed by keys.c; never seen here in the clear), input defaults
 * and SOP versions. See store.h.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void account_free(account *a)
{
    if (!a)
        return;
    free(a->name);
    free(a->portal);
    free(a->webhook_url);
    free(a->whsec);
    free(a->whsec_old);
    memset(a, 0, sizeof(*a));
}

static int dup_bytes(unsigned char **dst, const unsigned char *src, size_t n)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = malloc(n ? n : 1);
    if (!*dst)
        return -1;
    memcpy(*dst, src, n);
    return 0;
}

int account_copy(account *dst, const account *src)
{
    *dst = *src;
    dst->name = src->name ? strdup(src->name) : NULL;
    dst->portal = src->portal ? strdup(src->portal) : NULL;
    dst->webhook_url = src->webhook_url ? strdup(src->webhook_url) : NULL;
    int bad = (src->name && !dst->name) || (src->portal && !dst->portal) ||
              (src->webhook_url && !dst->webhook_url);
    bad |= dup_bytes(&dst->whsec, src->whsec, src->whsec_len) < 0;
    bad |= dup_bytes(&dst->whsec_old, src->whsec_old, src->whsec_old_len) < 0;
    if (bad) {
        account_free(dst);
        return -1;
    }
    return 0;
}

/* read_account's columns, in its order; a query may add columns after them */
#define ACCOUNT_NCOLS 12
#define ACCOUNT_COLS                                                                               \
    "id, name, portal, webhook_url, webhook_disabled, whsec, whsec_old, whsec_old_until, "         \
    "created_at, sessions_off, webhook_events, config_gen"

/* Fills *a from the statement's current row. */
static void row_account(store_stmt *s, account *a)
{
    a->id = store__col_int64(s, 0);
    a->name = store__col_text(s, 1);
    a->portal = store__col_text(s, 2);
    a->webhook_url = store__col_text(s, 3);
    a->webhook_disabled = store__col_int(s, 4);
    a->whsec = store__col_blob(s, 5, &a->whsec_len);
    a->whsec_old = store__col_blob(s, 6, &a->whsec_old_len);
    a->whsec_old_until = store__col_int64(s, 7);
    a->created_at = store__col_int64(s, 8);
    a->sessions_off = store__col_int(s, 9);
    a->webhook_events = (unsigned)store__col_int(s, 10);
    a->config_gen = store__col_int64(s, 11);
}

static int read_account(store_stmt *s, account *a)
{
    memset(a, 0, sizeof(*a));
    int rc = store__step(s);
    if (rc != STORE_ROW) {
        store__reset(s);
        return rc == STORE_DONE ? 0 : -1;
    }
    row_account(s, a);
    store__reset(s);
    return 1;
}

int store_account_by_id(store *st, int64_t id, account *a)
{
    memset(a, 0, sizeof(*a)); /* empty on every failure */
    store_stmt *s = store__q(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE id=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    return read_account(s, a);
}

int store_account_by_name(store *st, const char *name, account *a)
{
    memset(a, 0, sizeof(*a)); /* empty on every failure */
    store_stmt *s = store__q(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE name=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, name);
    return read_account(s, a);
}

int store_account_by_key(store *st, const char *key_hash, account *a)
{
    memset(a, 0, sizeof(*a));
    store_stmt *s =
        store__q(st, "SELECT " ACCOUNT_COLS ", key_hash FROM accounts WHERE key_hash=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, key_hash);
    int rc = store__step(s);
    if (rc != STORE_ROW) {
        store__reset(s);
        return rc == STORE_DONE ? 0 : -1;
    }
    /* the index found it; compare once more in constant time */
    const char *stored = store__col_str(s, ACCOUNT_NCOLS);
    int same = stored && strlen(stored) == 64 && pt_equal_ct(stored, key_hash, 64);
    if (same)
        row_account(s, a);
    store__reset(s);
    return same;
}

int store_account_create(store *st, const char *name, const char *portal, const char *webhook_url,
                         const char *key_hash, int64_t *id, char *err)
{
    store_stmt *s =
        store__q(st, "INSERT INTO accounts(name, key_hash, portal, webhook_url, created_at)"
                     " VALUES(?,?,?,?,?) RETURNING id");
    if (!s)
        return pt_errf(err, "store error");
    store__bind_text(s, 1, name);
    store__bind_text(s, 2, key_hash);
    store__bind_text(s, 3, portal);
    store__bind_text(s, 4, webhook_url);
    store__bind_int64(s, 5, pt_wall_ms());
    int rc = store__insert_id(st, s, id);
    if (rc == -2)
        return pt_errf(err, "an account named '%s' already exists", name);
    if (rc < 0)
        return pt_errf(err, "cannot create the account: %s", store__errmsg(st));
    return 0;
}

/* The account's task types with their newest SOP versions, as the API's
 * handler names ("submit_claim_2 check_eligibility_1"): a new string. */
static char *handlers(store *st, int64_t acct)
{
    store_stmt *s = store__q(st, "SELECT type, max(version) FROM sops WHERE account_id=?"
                                 " GROUP BY type ORDER BY type");
    size_t cap = 256, len = 0;
    char *out = calloc(1, cap);
    if (!s || !out)
        return out;
    store__bind_int64(s, 1, acct);
    while (store__step(s) == STORE_ROW) {
        const char *type = store__col_str(s, 0);
        char one[128];
        int n = snprintf(one, sizeof(one), "%s%s_%lld", len ? " " : "", type ? type : "",
                         (long long)store__col_int64(s, 1));
        if (n <= 0 || (size_t)n >= sizeof(one))
            continue;
        if (len + (size_t)n + 1 > cap) {
            char *grown = realloc(out, cap * 2 + (size_t)n);
            if (!grown)
                break;
            out = grown;
            cap = cap * 2 + (size_t)n;
        }
        memcpy(out + len, one, (size_t)n + 1);
        len += (size_t)n;
    }
    store__reset(s);
    return out;
}

cJSON *store_account_list(store *st)
{
    cJSON *arr = cJSON_CreateArray();
    store_stmt *s = store__q(st, "SELECT id, name, portal, webhook_url, webhook_disabled,"
                                 " sessions_off FROM accounts ORDER BY id");
    while (s && store__step(s) == STORE_ROW) {
        cJSON *o = cJSON_CreateObject();
        int64_t id = store__col_int64(s, 0);
        cJSON_AddNumberToObject(o, "id", (double)id);
        cJSON_AddStringToObject(o, "name", store__col_str(s, 1));
        const char *portal = store__col_str(s, 2);
        const char *hook = store__col_str(s, 3);
        cJSON_AddItemToObject(o, "portal",
                              portal ? cJSON_CreateString(portal) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "webhook_url",
                              hook ? cJSON_CreateString(hook) : cJSON_CreateNull());
        cJSON_AddBoolToObject(o, "webhook_disabled", store__col_int(s, 4));
        cJSON_AddBoolToObject(o, "sessions", !store__col_int(s, 5));
        char *h = handlers(st, id); /* another statement: this one's row stays */
        cJSON_AddStringToObject(o, "handlers", h ? h : "");
        free(h);
        cJSON_AddItemToArray(arr, o);
    }
    if (s)
        store__reset(s);
    return arr;
}

int store_account_set_portal(store *st, int64_t id, const char *url)
{
    return store__update_text(st, "UPDATE accounts SET portal=? WHERE id=?", id, url);
}

int store_account_set_sessions(store *st, int64_t id, int on)
{
    return store__update_int(st, "UPDATE accounts SET sessions_off=? WHERE id=?", id, !on);
}

int store_account_set_webhook(store *st, int64_t id, const char *url)
{
    return store__update_text(
        st, "UPDATE accounts SET webhook_url=?, webhook_disabled=0 WHERE id=?", id, url);
}

int store_account_set_events(store *st, int64_t id, unsigned events)
{
    return store__update_int(st, "UPDATE accounts SET webhook_events=? WHERE id=?", id,
                             (int)events);
}

int store_account_disable_webhook(store *st, int64_t id)
{
    store_stmt *s = store__q(st, "UPDATE accounts SET webhook_disabled=1 WHERE id=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    return store__run(st, s);
}

int store_account_set_key(store *st, int64_t id, const char *key_hash)
{
    /* the dashboard sessions opened with the old key end with it (a leaked
     * key's holder must not stay signed in); staff members' own stay */
    if (store_begin(st) < 0)
        return -1;
    store_stmt *s = NULL;
    if (store__update_text(st, "UPDATE accounts SET key_hash=? WHERE id=?", id, key_hash) < 0 ||
        !(s = store__q(st, "DELETE FROM web_sessions WHERE account_id=? AND user_id IS NULL"))) {
        store_rollback(st);
        return -1;
    }
    store__bind_int64(s, 1, id);
    if (store__run(st, s) < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st);
}

int store_account_set_whsec(store *st, int64_t id, const unsigned char *sealed, size_t len,
                            const unsigned char *old, size_t oldlen, int64_t old_until)
{
    store_stmt *s =
        store__q(st, "UPDATE accounts SET whsec=?, whsec_old=?, whsec_old_until=? WHERE id=?");
    if (!s)
        return -1;
    store__bind_blob(s, 1, sealed, len);
    if (old)
        store__bind_blob(s, 2, old, oldlen);
    else
        store__bind_null(s, 2);
    store__bind_int64(s, 3, old_until);
    store__bind_int64(s, 4, id);
    return store__run(st, s);
}

int store_account_data_key(store *st, int64_t id, unsigned char **wrapped, size_t *len)
{
    store_stmt *s = store__q(st, "SELECT data_key FROM accounts WHERE id=?");
    *wrapped = NULL;
    *len = 0;
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    int rc = store__step(s);
    if (rc == STORE_ROW)
        *wrapped = store__col_blob(s, 0, len);
    store__reset(s);
    return *wrapped ? 1 : rc == STORE_ROW || rc == STORE_DONE ? 0 : -1;
}

int store_account_init_data_key(store *st, int64_t id, const unsigned char *wrapped, size_t len)
{
    store_stmt *s =
        store__q(st, "UPDATE accounts SET data_key=? WHERE id=? AND data_key IS NULL");
    if (!s)
        return -1;
    store__bind_blob(s, 1, wrapped, len);
    store__bind_int64(s, 2, id);
    return store__run(st, s);
}

int store_secret_set(store *st, int64_t acct, const char *name, const unsigned char *sealed,
                     size_t len)
{
    store_stmt *s =
        store__q(st, "INSERT INTO secrets(account_id, name, value) VALUES(?1,?2,?3)"
                     " ON CONFLICT(account_id, name) DO UPDATE SET value=excluded.value");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, name);
    store__bind_blob(s, 3, sealed, len);
    return store__run(st, s);
}

int store_secret_each(store *st, int64_t acct,
                      void (*fn)(void *ud, const char *name, const unsigned char *sealed,
                                 size_t len),
                      void *ud)
{
    store_stmt *s =
        store__q(st, "SELECT name, value FROM secrets WHERE account_id=? ORDER BY name");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    int rc;
    while ((rc = store__step(s)) == STORE_ROW) {
        size_t n = 0;
        unsigned char *sealed = store__col_blob(s, 1, &n);
        fn(ud, store__col_str(s, 0), sealed, n);
        free(sealed);
    }
    store__reset(s);
    return rc == STORE_DONE ? 0 : -1;
}

/* Moves the account's config_gen, after the change it counts and in its
 * transaction (a node that read the old config under the old value then
 * reads it again). */
static int config_moved(store *st, int64_t acct)
{
    store_stmt *s = store__q(st, "UPDATE accounts SET config_gen=config_gen+1 WHERE id=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    return store__run(st, s);
}

/* Ends a config change begun with store_begin: COMMIT if rc is 0. */
static int config_end(store *st, int rc)
{
    if (rc < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st);
}

int store_default_set(store *st, int64_t acct, const char *input, const char *value)
{
    if (store_begin(st) < 0)
        return -1;
    store_stmt *s = store__q(
        st, "INSERT INTO input_defaults(account_id, input, value) VALUES(?1,?2,?3)"
            " ON CONFLICT(account_id, input) DO UPDATE SET value=excluded.value");
    if (!s)
        return config_end(st, -1);
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, input);
    store__bind_text(s, 3, value);
    return config_end(st, store__run(st, s) < 0 ? -1 : config_moved(st, acct));
}

int store_default_each(store *st, int64_t acct,
                       void (*fn)(void *ud, const char *input, const char *value), void *ud)
{
    store_stmt *s = store__q(st, "SELECT input, value FROM input_defaults WHERE account_id=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    int rc;
    while ((rc = store__step(s)) == STORE_ROW)
        fn(ud, store__col_str(s, 0), store__col_str(s, 1));
    store__reset(s);
    return rc == STORE_DONE ? 0 : -1;
}

int store_sop_add(store *st, int64_t acct, const char *type, const char *bundle_json, int *version)
{
    if (store_begin(st) < 0)
        return -1;
    store_stmt *s = store__q(st, "INSERT INTO sops(account_id, type, version, bundle, created_at)"
                                   " SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4 FROM sops"
                                   " WHERE account_id=?1 AND type=?2 RETURNING version");
    if (!s)
        return config_end(st, -1);
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    store__bind_text(s, 3, bundle_json);
    store__bind_int64(s, 4, pt_wall_ms());
    int rc = store__step(s);
    if (rc == STORE_ROW)
        *version = store__col_int(s, 0);
    while (rc == STORE_ROW)
        rc = store__step(s);
    store__reset(s);
    return config_end(st, rc != STORE_DONE ? -1 : config_moved(st, acct));
}

int store_sop_current(store *st, int64_t acct, const char *type, int *version, char **bundle)
{
    /* every POST /tasks asks for the version only: the bundle (kilobytes)
     * is not read for it (on PostgreSQL it would cross the socket) */
    static const char with[] = "SELECT version, bundle FROM sops WHERE account_id=? AND type=?"
                               " ORDER BY version DESC LIMIT 1",
                      without[] = "SELECT version FROM sops WHERE account_id=? AND type=?"
                                  " ORDER BY version DESC LIMIT 1";
    store_stmt *s = store__q(st, bundle ? with : without);
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    int rc = store__step(s), found = rc == STORE_ROW;
    if (found) {
        *version = store__col_int(s, 0);
        if (bundle)
            *bundle = store__col_text(s, 1);
    }
    store__reset(s);
    return found ? 1 : rc == STORE_DONE ? 0 : -1;
}

int store_sop_current_defaults(store *st, int64_t acct, const char *type, int *version,
                               void (*fn)(void *ud, const char *input, const char *value),
                               void *ud)
{
    /* the version's row first (kind 0), then one row per default (kind 1) */
    store_stmt *s = store__q(
        st, "SELECT 0, v.version, NULL, NULL FROM (SELECT version FROM sops"
            " WHERE account_id=?1 AND type=?2 ORDER BY version DESC LIMIT 1) v"
            " UNION ALL SELECT 1, 0, input, value FROM input_defaults WHERE account_id=?1");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    int rc, found = 0;
    while ((rc = store__step(s)) == STORE_ROW) {
        if (store__col_int(s, 0) == 0) {
            *version = store__col_int(s, 1);
            found = 1;
        } else {
            fn(ud, store__col_str(s, 2), store__col_str(s, 3));
        }
    }
    store__reset(s);
    return rc != STORE_DONE ? -1 : found;
}

int store_sop_get(store *st, int64_t acct, const char *type, int version, char **bundle)
{
    store_stmt *s =
        store__q(st, "SELECT bundle FROM sops WHERE account_id=? AND type=? AND version=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    store__bind_int64(s, 3, version);
    int rc = store__step(s), found = rc == STORE_ROW;
    if (found)
        *bundle = store__col_text(s, 0);
    store__reset(s);
    return found ? 1 : rc == STORE_DONE ? 0 : -1;
}

cJSON *store_sop_list(store *st, int64_t acct)
{
    cJSON *arr = cJSON_CreateArray();
    store_stmt *s = store__q(st, "SELECT type, max(version) FROM sops WHERE account_id=?"
                                   " GROUP BY type ORDER BY type");
    if (!s)
        return arr;
    store__bind_int64(s, 1, acct);
    while (store__step(s) == STORE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", store__col_str(s, 0));
        cJSON_AddNumberToObject(o, "version", store__col_int(s, 1));
        cJSON_AddItemToArray(arr, o);
    }
    store__reset(s);
    return arr;
}

/* "fingerprints type=T version=V": a set sealed for one SOP version opens
 * only as that one. */
static void fp_aad(char *aad, size_t n, const char *type, int version)
{
    snprintf(aad, n, "fingerprints type=%s version=%d", type, version);
}

int store_fingerprints_get(store *st, int64_t acct, const char *type, int version, char **json)
{
    char aad[256];
    *json = NULL;
    store_stmt *s = store__q(st, "SELECT data FROM fingerprints WHERE account_id=? AND type=?"
                                   " AND sop_version=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    store__bind_int64(s, 3, version);
    int rc = store__step(s), found = rc == STORE_ROW;
    if (found) {
        fp_aad(aad, sizeof(aad), type, version);
        *json = store__col_opened(st, s, 0, acct, aad);
    }
    store__reset(s);
    if (found)
        return *json ? 1 : -1;
    return rc == STORE_DONE ? 0 : -1;
}

int store_fingerprints_put(store *st, int64_t acct, const char *type, int version, const char *json,
                           int64_t now)
{
    char aad[256];
    store_stmt *s =
        store__q(st, "INSERT INTO fingerprints(account_id, type, sop_version, data, updated_at)"
                     " VALUES(?, ?, ?, ?, ?) ON CONFLICT(account_id, type, sop_version)"
                     " DO UPDATE SET data=excluded.data, updated_at=excluded.updated_at");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    store__bind_int64(s, 3, version);
    fp_aad(aad, sizeof(aad), type, version);
    if (store__bind_sealed(st, s, 4, acct, aad, json) < 0)
        return -1;
    store__bind_int64(s, 5, now);
    return store__run(st, s);
}
