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

#include <sqlite3.h>
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

/* read_account's columns, in its order; a query may add columns after them */
#define ACCOUNT_NCOLS 11
#define ACCOUNT_COLS                                                                               \
    "id, name, portal, webhook_url, webhook_disabled, whsec, whsec_old, whsec_old_until, "         \
    "created_at, sessions_off, webhook_events"

static int read_account(sqlite3_stmt *s, account *a)
{
    memset(a, 0, sizeof(*a));
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : -1;
    }
    a->id = sqlite3_column_int64(s, 0);
    a->name = store__col_text(s, 1);
    a->portal = store__col_text(s, 2);
    a->webhook_url = store__col_text(s, 3);
    a->webhook_disabled = sqlite3_column_int(s, 4);
    a->whsec = store__col_blob(s, 5, &a->whsec_len);
    a->whsec_old = store__col_blob(s, 6, &a->whsec_old_len);
    a->whsec_old_until = sqlite3_column_int64(s, 7);
    a->created_at = sqlite3_column_int64(s, 8);
    a->sessions_off = sqlite3_column_int(s, 9);
    a->webhook_events = (unsigned)sqlite3_column_int(s, 10);
    sqlite3_reset(s);
    return 1;
}

int store_account_by_id(store *st, int64_t id, account *a)
{
    sqlite3_stmt *s = store__q(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return read_account(s, a);
}

int store_account_by_name(store *st, const char *name, account *a)
{
    sqlite3_stmt *s = store__q(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE name=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, name);
    return read_account(s, a);
}

int store_account_by_key(store *st, const char *key_hash, account *a)
{
    sqlite3_stmt *s =
        store__q(st, "SELECT " ACCOUNT_COLS ", key_hash FROM accounts WHERE key_hash=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, key_hash);
    memset(a, 0, sizeof(*a));
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : -1;
    }
    /* the index found it; compare once more in constant time */
    const char *stored = (const char *)sqlite3_column_text(s, ACCOUNT_NCOLS);
    int same = stored && strlen(stored) == 64 && pt_equal_ct(stored, key_hash, 64);
    sqlite3_reset(s);
    if (!same)
        return 0;
    sqlite3_bind_text(s, 1, key_hash, -1, SQLITE_TRANSIENT);
    return read_account(s, a);
}

int store_account_create(store *st, const char *name, const char *portal, const char *webhook_url,
                         const char *key_hash, int64_t *id, char *err)
{
    sqlite3_stmt *s =
        store__q(st, "INSERT INTO accounts(name, key_hash, portal, webhook_url, created_at)"
                     " VALUES(?,?,?,?,?)");
    if (!s)
        return pt_errf(err, "store error");
    store__bind_text(s, 1, name);
    store__bind_text(s, 2, key_hash);
    store__bind_text(s, 3, portal);
    store__bind_text(s, 4, webhook_url);
    sqlite3_bind_int64(s, 5, pt_wall_ms());
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_CONSTRAINT)
        return pt_errf(err, "an account named '%s' already exists", name);
    if (rc != SQLITE_DONE)
        return pt_errf(err, "cannot create the account: %s", sqlite3_errmsg(st->db));
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

cJSON *store_account_list(store *st)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *s = store__q(
        st, "SELECT a.id, a.name, a.portal, a.webhook_url, a.webhook_disabled,"
            " (SELECT group_concat(type || '_' || v, ' ') FROM"
            "   (SELECT type, max(version) AS v FROM sops WHERE account_id=a.id GROUP BY type)),"
            " a.sessions_off FROM accounts a ORDER BY a.id");
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(s, 0));
        cJSON_AddStringToObject(o, "name", (const char *)sqlite3_column_text(s, 1));
        const char *portal = (const char *)sqlite3_column_text(s, 2);
        const char *hook = (const char *)sqlite3_column_text(s, 3);
        const char *sops = (const char *)sqlite3_column_text(s, 5);
        cJSON_AddItemToObject(o, "portal",
                              portal ? cJSON_CreateString(portal) : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "webhook_url",
                              hook ? cJSON_CreateString(hook) : cJSON_CreateNull());
        cJSON_AddBoolToObject(o, "webhook_disabled", sqlite3_column_int(s, 4));
        cJSON_AddStringToObject(o, "handlers", sops ? sops : "");
        cJSON_AddBoolToObject(o, "sessions", !sqlite3_column_int(s, 6));
        cJSON_AddItemToArray(arr, o);
    }
    if (s)
        sqlite3_reset(s);
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
    sqlite3_stmt *s = store__q(st, "UPDATE accounts SET webhook_disabled=1 WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return store__run(st, s);
}

int store_account_set_key(store *st, int64_t id, const char *key_hash)
{
    return store__update_text(st, "UPDATE accounts SET key_hash=? WHERE id=?", id, key_hash);
}

int store_account_set_whsec(store *st, int64_t id, const unsigned char *sealed, size_t len,
                            const unsigned char *old, size_t oldlen, int64_t old_until)
{
    sqlite3_stmt *s =
        store__q(st, "UPDATE accounts SET whsec=?, whsec_old=?, whsec_old_until=? WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_blob(s, 1, sealed, (int)len, SQLITE_TRANSIENT);
    if (old)
        sqlite3_bind_blob(s, 2, old, (int)oldlen, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_int64(s, 3, old_until);
    sqlite3_bind_int64(s, 4, id);
    return store__run(st, s);
}

int store_account_data_key(store *st, int64_t id, unsigned char **wrapped, size_t *len)
{
    sqlite3_stmt *s = store__q(st, "SELECT data_key FROM accounts WHERE id=?");
    *wrapped = NULL;
    *len = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *wrapped = store__col_blob(s, 0, len);
    sqlite3_reset(s);
    return *wrapped ? 1 : rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_account_init_data_key(store *st, int64_t id, const unsigned char *wrapped, size_t len)
{
    sqlite3_stmt *s =
        store__q(st, "UPDATE accounts SET data_key=? WHERE id=? AND data_key IS NULL");
    if (!s)
        return -1;
    sqlite3_bind_blob(s, 1, wrapped, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, id);
    return store__run(st, s);
}

int store_secret_set(store *st, int64_t acct, const char *name, const unsigned char *sealed,
                     size_t len)
{
    sqlite3_stmt *s =
        store__q(st, "INSERT OR REPLACE INTO secrets(account_id, name, value) VALUES(?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, name);
    sqlite3_bind_blob(s, 3, sealed, (int)len, SQLITE_TRANSIENT);
    return store__run(st, s);
}

int store_secret_each(store *st, int64_t acct,
                      void (*fn)(void *ud, const char *name, const unsigned char *sealed,
                                 size_t len),
                      void *ud)
{
    sqlite3_stmt *s =
        store__q(st, "SELECT name, value FROM secrets WHERE account_id=? ORDER BY name");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    while (sqlite3_step(s) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(s, 0), sqlite3_column_blob(s, 1),
           (size_t)sqlite3_column_bytes(s, 1));
    sqlite3_reset(s);
    return 0;
}

int store_default_set(store *st, int64_t acct, const char *input, const char *value)
{
    sqlite3_stmt *s = store__q(
        st, "INSERT OR REPLACE INTO input_defaults(account_id, input, value) VALUES(?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, input);
    store__bind_text(s, 3, value);
    return store__run(st, s);
}

int store_default_each(store *st, int64_t acct,
                       void (*fn)(void *ud, const char *input, const char *value), void *ud)
{
    sqlite3_stmt *s = store__q(st, "SELECT input, value FROM input_defaults WHERE account_id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    while (sqlite3_step(s) == SQLITE_ROW)
        fn(ud, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1));
    sqlite3_reset(s);
    return 0;
}

int store_sop_add(store *st, int64_t acct, const char *type, const char *bundle_json, int *version)
{
    sqlite3_stmt *s = store__q(st, "INSERT INTO sops(account_id, type, version, bundle, created_at)"
                                   " SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4 FROM sops"
                                   " WHERE account_id=?1 AND type=?2 RETURNING version");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    store__bind_text(s, 3, bundle_json);
    sqlite3_bind_int64(s, 4, pt_wall_ms());
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_sop_current(store *st, int64_t acct, const char *type, int *version, char **bundle)
{
    sqlite3_stmt *s = store__q(st, "SELECT version, bundle FROM sops WHERE account_id=? AND type=?"
                                   " ORDER BY version DESC LIMIT 1");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found) {
        *version = sqlite3_column_int(s, 0);
        if (bundle)
            *bundle = store__col_text(s, 1);
    }
    sqlite3_reset(s);
    return found ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_sop_get(store *st, int64_t acct, const char *type, int version, char **bundle)
{
    sqlite3_stmt *s =
        store__q(st, "SELECT bundle FROM sops WHERE account_id=? AND type=? AND version=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    sqlite3_bind_int(s, 3, version);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found)
        *bundle = store__col_text(s, 0);
    sqlite3_reset(s);
    return found ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

cJSON *store_sop_list(store *st, int64_t acct)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *s = store__q(st, "SELECT type, max(version) FROM sops WHERE account_id=?"
                                   " GROUP BY type ORDER BY type");
    if (!s)
        return arr;
    sqlite3_bind_int64(s, 1, acct);
    while (sqlite3_step(s) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", (const char *)sqlite3_column_text(s, 0));
        cJSON_AddNumberToObject(o, "version", sqlite3_column_int(s, 1));
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_reset(s);
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
    sqlite3_stmt *s = store__q(st, "SELECT data FROM fingerprints WHERE account_id=? AND type=?"
                                   " AND sop_version=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    sqlite3_bind_int(s, 3, version);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found) {
        fp_aad(aad, sizeof(aad), type, version);
        *json = store__col_opened(st, s, 0, acct, aad);
    }
    sqlite3_reset(s);
    if (found)
        return *json ? 1 : -1;
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_fingerprints_put(store *st, int64_t acct, const char *type, int version, const char *json,
                           int64_t now)
{
    char aad[256];
    sqlite3_stmt *s =
        store__q(st, "INSERT INTO fingerprints(account_id, type, sop_version, data, updated_at)"
                     " VALUES(?, ?, ?, ?, ?) ON CONFLICT(account_id, type, sop_version)"
                     " DO UPDATE SET data=excluded.data, updated_at=excluded.updated_at");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    store__bind_text(s, 2, type);
    sqlite3_bind_int(s, 3, version);
    fp_aad(aad, sizeof(aad), type, version);
    if (store__bind_sealed(st, s, 4, acct, aad, json) < 0)
        return -1;
    sqlite3_bind_int64(s, 5, now);
    return store__run(st, s);
}
