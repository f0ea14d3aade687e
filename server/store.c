/*
 * store.c - the embedded SQLite store. See store.h.
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction survives
 * the process being killed (kill -9); only a power loss may take the last
 * few back, never corrupting the file.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NCACHE 64

struct store {
    sqlite3 *db;
    char *path;
    int in_batch; /* store_batch_begin: task creation uses savepoints */
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[NCACHE];
};

/* ---- Schema ---------------------------------------------------------------
 * Each migration brings the schema from version i to i + 1; user_version
 * holds the version. Never edit a released migration: add one. */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE accounts("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, key_hash TEXT NOT NULL UNIQUE,"
    "  portal TEXT, webhook_url TEXT, webhook_disabled INTEGER NOT NULL DEFAULT 0,"
    "  whsec BLOB, whsec_old BLOB, whsec_old_until INTEGER NOT NULL DEFAULT 0,"
    "  next_task_number INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL);"
    "CREATE TABLE secrets(account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  name TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY(account_id, name));"
    "CREATE TABLE input_defaults(account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  input TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(account_id, input));"
    "CREATE TABLE sops(account_id INTEGER NOT NULL REFERENCES accounts(id), type TEXT NOT NULL,"
    "  version INTEGER NOT NULL, bundle TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  PRIMARY KEY(account_id, type, version));"
    "CREATE TABLE tasks("
    "  id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  task_number INTEGER NOT NULL, type TEXT NOT NULL, sop_version INTEGER NOT NULL,"
    "  status TEXT NOT NULL, title TEXT NOT NULL, instructions TEXT NOT NULL, data TEXT,"
    "  notes TEXT, started_at INTEGER, completed_at INTEGER, failed_at INTEGER,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  committed INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    "  approve INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  ask_name TEXT, ask_prompt TEXT, answers TEXT, review_comment TEXT,"
    "  trajectory_id INTEGER, UNIQUE(account_id, task_number));"
    "CREATE INDEX tasks_by_account ON tasks(account_id, id);"
    "CREATE INDEX tasks_by_status ON tasks(status, id);"
    "CREATE TABLE idempotency(account_id INTEGER NOT NULL, key TEXT NOT NULL,"
    "  task_id INTEGER NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY(account_id, key));"
    "CREATE TABLE task_files(id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL REFERENCES tasks(id),"
    "  field TEXT, filename TEXT, content_type TEXT, path TEXT NOT NULL, size INTEGER NOT NULL);"
    "CREATE INDEX task_files_by_task ON task_files(task_id);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, at INTEGER NOT NULL,"
    "  from_status TEXT, to_status TEXT NOT NULL, note TEXT);"
    "CREATE INDEX events_by_task ON events(task_id);"
    "CREATE TABLE trajectories(id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL,"
    "  dir TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE outbox(id INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
    "  account_id INTEGER NOT NULL, task_id INTEGER, event TEXT NOT NULL, payload TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL);"
    "CREATE INDEX outbox_due ON outbox(state, next_at);"
    "CREATE INDEX outbox_by_task ON outbox(task_id);"
    "CREATE TABLE deliveries(id INTEGER PRIMARY KEY, outbox_id INTEGER NOT NULL,"
    "  event_id TEXT NOT NULL, task_id INTEGER, at INTEGER NOT NULL, http_status INTEGER,"
    "  latency_ms INTEGER, error TEXT);"
    "CREATE INDEX deliveries_by_task ON deliveries(task_id);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int exec(store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        PT_ERROR("store", "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : -1;
}

static int user_version(store *st)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int migrate(store *st, char *err)
{
    if (exec(st, "BEGIN IMMEDIATE") < 0)
        return pt_errf(err, "%s: cannot lock the database to migrate it", st->path);
    int v = user_version(st);
    if (v > NMIGRATIONS) {
        exec(st, "ROLLBACK");
        return pt_errf(err,
                       "%s has schema version %d, newer than this portier knows (%d): "
                       "run a newer portier, or restore a backup",
                       st->path, v, NMIGRATIONS);
    }
    for (; v < NMIGRATIONS; v++) {
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version=%d", v + 1);
        if (exec(st, migrations[v]) < 0 || exec(st, set) < 0) {
            exec(st, "ROLLBACK");
            return pt_errf(err, "%s: migration %d failed", st->path, v + 1);
        }
        PT_INFO("store", "schema migrated to version %d", v + 1);
    }
    return exec(st, "COMMIT") < 0 ? pt_errf(err, "%s: cannot commit the migration", st->path) : 0;
}

store *store_open(const char *path, int migrate_it, char *err)
{
    store *st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(path))) {
        free(st);
        pt_errf(err, "out of memory");
        return NULL;
    }
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        pt_errf(err, "cannot open the database %s: %s", path, sqlite3_errstr(rc));
        store_close(st);
        return NULL;
    }
    chmod(path, 0600);
    sqlite3_busy_timeout(st->db, 10000);
    if (exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;") <
        0) {
        pt_errf(err, "%s is not a usable SQLite database", path);
        store_close(st);
        return NULL;
    }
    if (migrate_it ? migrate(st, err) < 0 : user_version(st) != NMIGRATIONS) {
        if (!migrate_it)
            pt_errf(err, "%s has schema version %d; this portier needs %d", path, user_version(st),
                    NMIGRATIONS);
        store_close(st);
        return NULL;
    }
    return st;
}

void store_close(store *st)
{
    if (!st)
        return;
    for (int i = 0; i < NCACHE; i++)
        sqlite3_finalize(st->cache[i].stmt);
    sqlite3_close(st->db);
    free(st->path);
    free(st);
}

const char *store_path(const store *st)
{
    return st->path;
}

/* A prepared statement for sql (a string literal: cached by its address),
 * reset and with bindings cleared. */
static sqlite3_stmt *q(store *st, const char *sql)
{
    int free_slot = -1;
    for (int i = 0; i < NCACHE; i++) {
        if (st->cache[i].sql == sql) {
            sqlite3_reset(st->cache[i].stmt);
            sqlite3_clear_bindings(st->cache[i].stmt);
            return st->cache[i].stmt;
        }
        if (!st->cache[i].sql && free_slot < 0)
            free_slot = i;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        PT_ERROR("store", "cannot prepare a statement: %s", sqlite3_errmsg(st->db));
        return NULL;
    }
    if (free_slot < 0) { /* full: replace one (never happens with this file's queries) */
        free_slot = 0;
        sqlite3_finalize(st->cache[0].stmt);
    }
    st->cache[free_slot].sql = sql;
    st->cache[free_slot].stmt = s;
    return s;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static unsigned char *col_blob(sqlite3_stmt *s, int i, size_t *len)
{
    const void *b = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);
    *len = 0;
    if (!b || n <= 0)
        return NULL;
    unsigned char *c = malloc((size_t)n);
    if (c) {
        memcpy(c, b, (size_t)n);
        *len = (size_t)n;
    }
    return c;
}

/* Steps a statement that returns no rows. 0 or -1. */
static int run(store *st, sqlite3_stmt *s)
{
    if (!s)
        return -1;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        PT_ERROR("store", "write failed: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

int store_begin(store *st)
{
    return run(st, q(st, "BEGIN IMMEDIATE"));
}

int store_commit(store *st)
{
    if (run(st, q(st, "COMMIT")) == 0)
        return 0;
    store_rollback(st);
    return -1;
}

void store_rollback(store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- Accounts ------------------------------------------------------------ */

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

#define ACCOUNT_COLS                                                                               \
    "id, name, portal, webhook_url, webhook_disabled, whsec, whsec_old, whsec_old_until, "         \
    "created_at"

static int read_account(sqlite3_stmt *s, account *a)
{
    memset(a, 0, sizeof(*a));
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : -1;
    }
    a->id = sqlite3_column_int64(s, 0);
    a->name = col_text(s, 1);
    a->portal = col_text(s, 2);
    a->webhook_url = col_text(s, 3);
    a->webhook_disabled = sqlite3_column_int(s, 4);
    a->whsec = col_blob(s, 5, &a->whsec_len);
    a->whsec_old = col_blob(s, 6, &a->whsec_old_len);
    a->whsec_old_until = sqlite3_column_int64(s, 7);
    a->created_at = sqlite3_column_int64(s, 8);
    sqlite3_reset(s);
    return 1;
}

int store_account_by_id(store *st, int64_t id, account *a)
{
    sqlite3_stmt *s = q(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return read_account(s, a);
}

int store_account_by_name(store *st, const char *name, account *a)
{
    sqlite3_stmt *s = q(st, "SELECT " ACCOUNT_COLS " FROM accounts WHERE name=?");
    if (!s)
        return -1;
    bind_text(s, 1, name);
    return read_account(s, a);
}

int store_account_by_key(store *st, const char *key_hash, account *a)
{
    sqlite3_stmt *s = q(st, "SELECT " ACCOUNT_COLS ", key_hash FROM accounts WHERE key_hash=?");
    if (!s)
        return -1;
    bind_text(s, 1, key_hash);
    memset(a, 0, sizeof(*a));
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : -1;
    }
    /* the index found it; compare once more in constant time */
    const char *stored = (const char *)sqlite3_column_text(s, 9);
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
    sqlite3_stmt *s = q(st, "INSERT INTO accounts(name, key_hash, portal, webhook_url, created_at)"
                            " VALUES(?,?,?,?,?)");
    if (!s)
        return pt_errf(err, "store error");
    bind_text(s, 1, name);
    bind_text(s, 2, key_hash);
    bind_text(s, 3, portal);
    bind_text(s, 4, webhook_url);
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
    sqlite3_stmt *s =
        q(st, "SELECT a.id, a.name, a.portal, a.webhook_url, a.webhook_disabled,"
              " (SELECT group_concat(type || '_' || v, ' ') FROM"
              "   (SELECT type, max(version) AS v FROM sops WHERE account_id=a.id GROUP BY type))"
              " FROM accounts a ORDER BY a.id");
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
        cJSON_AddItemToArray(arr, o);
    }
    if (s)
        sqlite3_reset(s);
    return arr;
}

/* The statement of a one-column setter: sqls maps a column name to its
 * UPDATE (value bound as ?1, id as ?2); NULL for a column not in it. */
static sqlite3_stmt *setter(store *st, const char *const (*sqls)[2], size_t n, const char *column)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(sqls[i][0], column))
            return q(st, sqls[i][1]);
    return NULL;
}

int store_account_set(store *st, int64_t id, const char *column, const char *value)
{
    static const char *const sqls[][2] = {
        {"portal", "UPDATE accounts SET portal=? WHERE id=?"},
        {"webhook_url", "UPDATE accounts SET webhook_url=?, webhook_disabled=0 WHERE id=?"},
        {"key_hash", "UPDATE accounts SET key_hash=? WHERE id=?"},
        {"webhook_disabled", "UPDATE accounts SET webhook_disabled=? WHERE id=?"},
    };
    sqlite3_stmt *s = setter(st, sqls, sizeof(sqls) / sizeof(sqls[0]), column);
    if (!s)
        return -1;
    bind_text(s, 1, value);
    sqlite3_bind_int64(s, 2, id);
    return run(st, s);
}

int store_account_set_whsec(store *st, int64_t id, const unsigned char *sealed, size_t len,
                            const unsigned char *old, size_t oldlen, int64_t old_until)
{
    sqlite3_stmt *s =
        q(st, "UPDATE accounts SET whsec=?, whsec_old=?, whsec_old_until=? WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_blob(s, 1, sealed, (int)len, SQLITE_TRANSIENT);
    if (old)
        sqlite3_bind_blob(s, 2, old, (int)oldlen, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_int64(s, 3, old_until);
    sqlite3_bind_int64(s, 4, id);
    return run(st, s);
}

int store_secret_set(store *st, int64_t acct, const char *name, const unsigned char *sealed,
                     size_t len)
{
    sqlite3_stmt *s =
        q(st, "INSERT OR REPLACE INTO secrets(account_id, name, value) VALUES(?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, name);
    sqlite3_bind_blob(s, 3, sealed, (int)len, SQLITE_TRANSIENT);
    return run(st, s);
}

int store_secret_each(store *st, int64_t acct,
                      void (*fn)(void *ud, const char *name, const unsigned char *sealed,
                                 size_t len),
                      void *ud)
{
    sqlite3_stmt *s = q(st, "SELECT name, value FROM secrets WHERE account_id=? ORDER BY name");
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
    sqlite3_stmt *s =
        q(st, "INSERT OR REPLACE INTO input_defaults(account_id, input, value) VALUES(?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, input);
    bind_text(s, 3, value);
    return run(st, s);
}

int store_default_each(store *st, int64_t acct,
                       void (*fn)(void *ud, const char *input, const char *value), void *ud)
{
    sqlite3_stmt *s = q(st, "SELECT input, value FROM input_defaults WHERE account_id=?");
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
    sqlite3_stmt *s = q(st, "INSERT INTO sops(account_id, type, version, bundle, created_at)"
                            " SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4 FROM sops"
                            " WHERE account_id=?1 AND type=?2 RETURNING version");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, type);
    bind_text(s, 3, bundle_json);
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
    sqlite3_stmt *s = q(st, "SELECT version, bundle FROM sops WHERE account_id=? AND type=?"
                            " ORDER BY version DESC LIMIT 1");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, type);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found) {
        *version = sqlite3_column_int(s, 0);
        if (bundle)
            *bundle = col_text(s, 1);
    }
    sqlite3_reset(s);
    return found ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_sop_get(store *st, int64_t acct, const char *type, int version, char **bundle)
{
    sqlite3_stmt *s = q(st, "SELECT bundle FROM sops WHERE account_id=? AND type=? AND version=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, type);
    sqlite3_bind_int(s, 3, version);
    int rc = sqlite3_step(s), found = rc == SQLITE_ROW;
    if (found)
        *bundle = col_text(s, 0);
    sqlite3_reset(s);
    return found ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* ---- Tasks --------------------------------------------------------------- */

void task_free(task *t)
{
    if (!t)
        return;
    free(t->title);
    free(t->instructions);
    free(t->data);
    free(t->notes);
    free(t->ask_name);
    free(t->ask_prompt);
    free(t->answers);
    free(t->review_comment);
    memset(t, 0, sizeof(*t));
}

int task_is_final(const char *status)
{
    return !strcmp(status, "completed") || !strcmp(status, "completed_with_issues") ||
           !strcmp(status, "failed");
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char iso[32];
    if (!ms) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    pt_iso8601(ms, iso);
    cJSON_AddStringToObject(o, name, iso);
}

cJSON *task_to_json(const task *t, int with_trajectory)
{
    cJSON *o = cJSON_CreateObject();
    char handler[80];
    snprintf(handler, sizeof(handler), "%s_%d", t->type, t->sop_version);
    cJSON_AddNumberToObject(o, "id", (double)t->id);
    cJSON_AddNumberToObject(o, "accountId", (double)t->account_id);
    cJSON_AddNumberToObject(o, "task_number", (double)t->task_number);
    cJSON_AddStringToObject(o, "status", t->status);
    cJSON_AddStringToObject(o, "handler", handler);
    cJSON_AddStringToObject(o, "title", t->title ? t->title : "");
    cJSON_AddStringToObject(o, "instructions", t->instructions ? t->instructions : "");
    if (with_trajectory) {
        if (t->trajectory_id)
            cJSON_AddNumberToObject(o, "trajectory_id", (double)t->trajectory_id);
        else
            cJSON_AddNullToObject(o, "trajectory_id");
    }
    add_time(o, "startedAt", t->started_at);
    add_time(o, "completedAt", t->completed_at);
    add_time(o, "failedAt", t->failed_at);
    if (t->notes)
        cJSON_AddStringToObject(o, "notes", t->notes);
    else
        cJSON_AddNullToObject(o, "notes");
    add_time(o, "createdAt", t->created_at);
    add_time(o, "updatedAt", t->updated_at);
    return o;
}

#define TASK_COLS                                                                                  \
    "id, account_id, task_number, type, sop_version, status, title, instructions, data, notes, "   \
    "started_at, completed_at, failed_at, created_at, updated_at, committed, attempts, approve, "  \
    "cancel_requested, ask_name, ask_prompt, answers, review_comment, trajectory_id"

static void row_task(sqlite3_stmt *s, task *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->account_id = sqlite3_column_int64(s, 1);
    t->task_number = sqlite3_column_int64(s, 2);
    snprintf(t->type, sizeof(t->type), "%s", (const char *)sqlite3_column_text(s, 3));
    t->sop_version = sqlite3_column_int(s, 4);
    snprintf(t->status, sizeof(t->status), "%s", (const char *)sqlite3_column_text(s, 5));
    t->title = col_text(s, 6);
    t->instructions = col_text(s, 7);
    t->data = col_text(s, 8);
    t->notes = col_text(s, 9);
    t->started_at = sqlite3_column_int64(s, 10);
    t->completed_at = sqlite3_column_int64(s, 11);
    t->failed_at = sqlite3_column_int64(s, 12);
    t->created_at = sqlite3_column_int64(s, 13);
    t->updated_at = sqlite3_column_int64(s, 14);
    t->committed = sqlite3_column_int(s, 15);
    t->attempts = sqlite3_column_int(s, 16);
    t->approve = sqlite3_column_int(s, 17);
    t->cancel_requested = sqlite3_column_int(s, 18);
    t->ask_name = col_text(s, 19);
    t->ask_prompt = col_text(s, 20);
    t->answers = col_text(s, 21);
    t->review_comment = col_text(s, 22);
    t->trajectory_id = sqlite3_column_int64(s, 23);
}

int store_task_get(store *st, int64_t acct, int64_t id, task *t)
{
    sqlite3_stmt *s =
        q(st, "SELECT " TASK_COLS " FROM tasks WHERE id=?1 AND (?2=0 OR account_id=?2)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, acct);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        row_task(s, t);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int add_event(store *st, int64_t taskid, int64_t at, const char *from, const char *to,
                     const char *note)
{
    sqlite3_stmt *s = q(st, "INSERT INTO events(task_id, at, from_status, to_status, note)"
                            " VALUES(?,?,?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, taskid);
    sqlite3_bind_int64(s, 2, at);
    bind_text(s, 3, from);
    bind_text(s, 4, to);
    bind_text(s, 5, note);
    return run(st, s);
}

static int find_idempotent(store *st, int64_t acct, const char *key, int64_t now, int64_t *id)
{
    sqlite3_stmt *s = q(st, "SELECT task_id, created_at FROM idempotency"
                            " WHERE account_id=? AND key=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, key);
    int found = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        int64_t at = sqlite3_column_int64(s, 1);
        *id = sqlite3_column_int64(s, 0);
        found = now - at < 24LL * 3600 * 1000 ? 1 : 2; /* 2: expired */
    }
    sqlite3_reset(s);
    return found;
}

/* A task's creation is its own transaction, or a savepoint inside a batch
 * (group commit: one COMMIT for many creations). */
static int tx_begin(store *st)
{
    return st->in_batch ? run(st, q(st, "SAVEPOINT task_create")) : store_begin(st);
}

static int tx_commit(store *st)
{
    return st->in_batch ? run(st, q(st, "RELEASE task_create")) : store_commit(st);
}

static void tx_rollback(store *st)
{
    if (!st->in_batch) {
        store_rollback(st);
        return;
    }
    run(st, q(st, "ROLLBACK TO task_create"));
    run(st, q(st, "RELEASE task_create"));
}

int store_batch_begin(store *st)
{
    if (store_begin(st) < 0)
        return -1;
    st->in_batch = 1;
    return 0;
}

int store_batch_end(store *st)
{
    st->in_batch = 0;
    return store_commit(st);
}

int store_task_by_idempotency(store *st, int64_t acct, const char *key, task *t)
{
    int64_t id = 0;
    int f = find_idempotent(st, acct, key, pt_wall_ms(), &id);
    if (f != 1)
        return f < 0 ? -1 : 0;
    return store_task_get(st, acct, id, t);
}

int store_task_create(store *st, int64_t acct, const char *type, int sop_version,
                      const char *title_fmt, const char *instructions, const char *data,
                      const char *idem_key, const task_file_in *files, size_t nfiles,
                      const char *files_dir, task *t, char *err)
{
    int64_t now = pt_wall_ms(), id = 0, number = 0;
    char dir[4200] = "";
    memset(t, 0, sizeof(*t));
    if (tx_begin(st) < 0)
        return pt_errf(err, "the store is busy");
    if (idem_key) {
        int f = find_idempotent(st, acct, idem_key, now, &id);
        if (f == 1) {
            tx_rollback(st);
            return store_task_get(st, acct, id, t) == 1 ? 1 : pt_errf(err, "store error");
        }
        if (f == 2) {
            sqlite3_stmt *d = q(st, "DELETE FROM idempotency WHERE account_id=? AND key=?");
            sqlite3_bind_int64(d, 1, acct);
            bind_text(d, 2, idem_key);
            if (run(st, d) < 0)
                goto fail;
        }
    }
    sqlite3_stmt *s = q(st, "UPDATE accounts SET next_task_number=next_task_number+1 WHERE id=?"
                            " RETURNING next_task_number-1");
    if (!s)
        goto fail;
    sqlite3_bind_int64(s, 1, acct);
    if (sqlite3_step(s) == SQLITE_ROW)
        number = sqlite3_column_int64(s, 0);
    while (sqlite3_step(s) == SQLITE_ROW)
        ;
    sqlite3_reset(s);
    if (!number)
        goto fail;
    /* title_fmt is ours ("Submit claim #%lld"), never a client's text */
    char title[256];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(title, sizeof(title), title_fmt, (long long)number);
#pragma GCC diagnostic pop
    s = q(st, "INSERT INTO tasks(account_id, task_number, type, sop_version, status, title,"
              " instructions, data, created_at, updated_at) VALUES(?,?,?,?,'pending',?,?,?,?,?)");
    if (!s)
        goto fail;
    sqlite3_bind_int64(s, 1, acct);
    sqlite3_bind_int64(s, 2, number);
    bind_text(s, 3, type);
    sqlite3_bind_int(s, 4, sop_version);
    bind_text(s, 5, title);
    bind_text(s, 6, instructions);
    bind_text(s, 7, data);
    sqlite3_bind_int64(s, 8, now);
    sqlite3_bind_int64(s, 9, now);
    if (run(st, s) < 0)
        goto fail;
    id = sqlite3_last_insert_rowid(st->db);
    if (add_event(st, id, now, NULL, "pending", "created") < 0)
        goto fail;
    if (idem_key) {
        s = q(st, "INSERT INTO idempotency(account_id, key, task_id, created_at) VALUES(?,?,?,?)");
        sqlite3_bind_int64(s, 1, acct);
        bind_text(s, 2, idem_key);
        sqlite3_bind_int64(s, 3, id);
        sqlite3_bind_int64(s, 4, now);
        if (run(st, s) < 0)
            goto fail;
    }
    if (nfiles) {
        snprintf(dir, sizeof(dir), "%s/%lld", files_dir, (long long)id);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            goto fail;
        for (size_t i = 0; i < nfiles; i++) {
            /* keep the client's name for the portal, minus any path */
            const char *base = files[i].filename ? strrchr(files[i].filename, '/') : NULL;
            base = base ? base + 1 : files[i].filename;
            char safe[128] = "";
            for (size_t k = 0; base && base[k] && k < sizeof(safe) - 1; k++)
                safe[k] = (base[k] == '\\' || (unsigned char)base[k] < 32) ? '_' : base[k];
            if (!safe[0] || !strcmp(safe, ".") || !strcmp(safe, ".."))
                snprintf(safe, sizeof(safe), "file");
            char path[4400];
            snprintf(path, sizeof(path), "%s/%zu-%s", dir, i + 1, safe);
            if (rename(files[i].path, path) < 0)
                goto fail;
            s = q(st, "INSERT INTO task_files(task_id, field, filename, content_type, path, size)"
                      " VALUES(?,?,?,?,?,?)");
            sqlite3_bind_int64(s, 1, id);
            bind_text(s, 2, files[i].field);
            bind_text(s, 3, files[i].filename);
            bind_text(s, 4, files[i].content_type);
            bind_text(s, 5, path);
            sqlite3_bind_int64(s, 6, (sqlite3_int64)files[i].size);
            if (run(st, s) < 0)
                goto fail;
        }
    }
    if (tx_commit(st) < 0)
        goto fail;
    return store_task_get(st, acct, id, t) == 1 ? 0 : pt_errf(err, "store error");
fail:
    tx_rollback(st);
    if (dir[0])
        pt_rmtree(dir); /* with the files already moved into it */
    return pt_errf(err, "cannot store the task: %s", sqlite3_errmsg(st->db));
}

cJSON *store_task_list(store *st, int64_t acct, const char *status, const char *type, int limit,
                       int64_t after, int64_t *next)
{
    sqlite3_stmt *s = q(st, "SELECT " TASK_COLS " FROM tasks WHERE account_id=?1"
                            " AND (?2 IS NULL OR status=?2) AND (?3 IS NULL OR type=?3)"
                            " AND (?4=0 OR id<?4) ORDER BY id DESC LIMIT ?5");
    *next = 0;
    if (!s)
        return NULL;
    sqlite3_bind_int64(s, 1, acct);
    bind_text(s, 2, status);
    bind_text(s, 3, type);
    sqlite3_bind_int64(s, 4, after);
    sqlite3_bind_int(s, 5, limit + 1);
    cJSON *arr = cJSON_CreateArray();
    int n = 0;
    int64_t last = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n++ == limit) { /* one more row exists: the page has a next */
            *next = last;
            break;
        }
        task t;
        row_task(s, &t);
        last = t.id;
        cJSON_AddItemToArray(arr, task_to_json(&t, 0));
        task_free(&t);
    }
    sqlite3_reset(s);
    return arr;
}

char **store_task_files(store *st, int64_t taskid, size_t *n)
{
    sqlite3_stmt *s = q(st, "SELECT path FROM task_files WHERE task_id=? ORDER BY id");
    *n = 0;
    char **v = calloc(1, sizeof(*v));
    if (!s || !v)
        return v;
    sqlite3_bind_int64(s, 1, taskid);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char **nv = realloc(v, (*n + 2) * sizeof(*v));
        if (!nv)
            break;
        v = nv;
        v[(*n)++] = col_text(s, 0);
        v[*n] = NULL;
    }
    sqlite3_reset(s);
    return v;
}

void store_strings_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int in_list(const char *status, const char *list)
{
    if (!list)
        return 1;
    size_t n = strlen(status);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !strncmp(p, status, n))
            return 1;
        p += len + (c ? 1 : 0);
    }
    return 0;
}

int store_task_move(store *st, int64_t id, const char *from, const char *to, const char *notes,
                    const char *event_note)
{
    int64_t now = pt_wall_ms();
    if (store_begin(st) < 0)
        return -1;
    task t;
    int found = store_task_get(st, 0, id, &t);
    if (found != 1 || !in_list(t.status, from) || task_is_final(t.status)) {
        if (found == 1)
            task_free(&t);
        store_rollback(st);
        return found < 0 ? -1 : 0;
    }
    int final = task_is_final(to);
    sqlite3_stmt *s = q(st, "UPDATE tasks SET status=?2, updated_at=?3,"
                            " notes=CASE WHEN ?4 IS NULL THEN notes ELSE ?4 END,"
                            " started_at=CASE WHEN ?2='running' AND started_at IS NULL"
                            "   THEN ?3 ELSE started_at END,"
                            " completed_at=CASE WHEN ?2 IN ('completed','completed_with_issues')"
                            "   THEN ?3 ELSE completed_at END,"
                            " failed_at=CASE WHEN ?2='failed' THEN ?3 ELSE failed_at END"
                            " WHERE id=?1");
    if (!s)
        goto fail;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, to);
    sqlite3_bind_int64(s, 3, now);
    bind_text(s, 4, notes);
    if (run(st, s) < 0 || add_event(st, id, now, t.status, to, event_note) < 0)
        goto fail;
    if (final) {
        task done;
        if (store_task_get(st, 0, id, &done) != 1)
            goto fail;
        cJSON *data = task_to_json(&done, 1);
        char *payload = cJSON_PrintUnformatted(data);
        cJSON_Delete(data);
        task_free(&done);
        char eid[40] = "evt_";
        pt_random_hex(eid + 4, 32);
        int rc =
            payload ? store_outbox_add(st, t.account_id, id, "task_finished", eid, payload) : -1;
        free(payload);
        if (rc < 0)
            goto fail;
    }
    task_free(&t);
    return store_commit(st) < 0 ? -1 : 1;
fail:
    task_free(&t);
    store_rollback(st);
    return -1;
}

int store_task_claim(store *st, int64_t *id)
{
    sqlite3_stmt *s = q(st, "SELECT id FROM tasks WHERE status='pending' ORDER BY id LIMIT 1");
    if (!s)
        return -1;
    for (int tries = 0; tries < 5; tries++) {
        int rc = sqlite3_step(s);
        int64_t cand = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (!cand)
            return rc == SQLITE_DONE ? 0 : -1;
        int m = store_task_move(st, cand, "pending", "dispatching", NULL, "claimed by a worker");
        if (m == 1) {
            *id = cand;
            return 1;
        }
        if (m < 0)
            return -1;
    }
    return 0;
}

int store_task_set_int(store *st, int64_t id, const char *column, int64_t value)
{
    static const char *const sqls[][2] = {
        {"committed", "UPDATE tasks SET committed=? WHERE id=?"},
        {"attempts", "UPDATE tasks SET attempts=? WHERE id=?"},
        {"approve", "UPDATE tasks SET approve=? WHERE id=?"},
        {"cancel_requested", "UPDATE tasks SET cancel_requested=? WHERE id=?"},
        {"trajectory_id", "UPDATE tasks SET trajectory_id=? WHERE id=?"},
    };
    sqlite3_stmt *s = setter(st, sqls, sizeof(sqls) / sizeof(sqls[0]), column);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, value);
    sqlite3_bind_int64(s, 2, id);
    return run(st, s);
}

int store_task_set_text(store *st, int64_t id, const char *column, const char *value)
{
    static const char *const sqls[][2] = {
        {"ask_name", "UPDATE tasks SET ask_name=? WHERE id=?"},
        {"ask_prompt", "UPDATE tasks SET ask_prompt=? WHERE id=?"},
        {"answers", "UPDATE tasks SET answers=? WHERE id=?"},
        {"review_comment", "UPDATE tasks SET review_comment=? WHERE id=?"},
    };
    sqlite3_stmt *s = setter(st, sqls, sizeof(sqls) / sizeof(sqls[0]), column);
    if (!s)
        return -1;
    bind_text(s, 1, value);
    sqlite3_bind_int64(s, 2, id);
    return run(st, s);
}

cJSON *store_task_counts(store *st)
{
    cJSON *o = cJSON_CreateObject();
    sqlite3_stmt *s = q(st, "SELECT status, type, count(*) FROM tasks GROUP BY status, type");
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(s, 0);
        const char *type = (const char *)sqlite3_column_text(s, 1);
        cJSON *by = cJSON_GetObjectItem(o, status);
        if (!by)
            by = cJSON_AddObjectToObject(o, status);
        cJSON_AddNumberToObject(by, type, (double)sqlite3_column_int64(s, 2));
    }
    if (s)
        sqlite3_reset(s);
    return o;
}

int64_t store_task_count_status(store *st, const char *status)
{
    sqlite3_stmt *s = q(st, "SELECT count(*) FROM tasks WHERE status=?");
    if (!s)
        return -1;
    bind_text(s, 1, status);
    int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return n;
}

int64_t *store_task_ids(store *st, const char *status, size_t *n)
{
    sqlite3_stmt *s = q(st, "SELECT id FROM tasks WHERE status=? ORDER BY id");
    *n = 0;
    int64_t *v = NULL;
    if (!s)
        return NULL;
    bind_text(s, 1, status);
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t *nv = realloc(v, (*n + 1) * sizeof(*v));
        if (!nv)
            break;
        v = nv;
        v[(*n)++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return v;
}

cJSON *store_task_events(store *st, int64_t id)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *s =
        q(st, "SELECT at, from_status, to_status, note FROM events WHERE task_id=? ORDER BY id");
    if (!s)
        return arr;
    sqlite3_bind_int64(s, 1, id);
    while (sqlite3_step(s) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();
        add_time(e, "at", sqlite3_column_int64(s, 0));
        const char *from = (const char *)sqlite3_column_text(s, 1);
        const char *note = (const char *)sqlite3_column_text(s, 3);
        cJSON_AddItemToObject(e, "from", from ? cJSON_CreateString(from) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "to", (const char *)sqlite3_column_text(s, 2));
        cJSON_AddItemToObject(e, "note", note ? cJSON_CreateString(note) : cJSON_CreateNull());
        cJSON_AddItemToArray(arr, e);
    }
    sqlite3_reset(s);
    return arr;
}

int64_t store_trajectory_add(store *st, int64_t taskid, const char *dir)
{
    sqlite3_stmt *s = q(st, "INSERT INTO trajectories(task_id, dir, created_at) VALUES(?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, taskid);
    bind_text(s, 2, dir);
    sqlite3_bind_int64(s, 3, pt_wall_ms());
    if (run(st, s) < 0)
        return -1;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    store_task_set_int(st, taskid, "trajectory_id", id);
    return id;
}

char *store_trajectory_dir(store *st, int64_t taskid)
{
    sqlite3_stmt *s =
        q(st, "SELECT dir FROM trajectories WHERE task_id=? ORDER BY id DESC LIMIT 1");
    if (!s)
        return NULL;
    sqlite3_bind_int64(s, 1, taskid);
    char *d = sqlite3_step(s) == SQLITE_ROW ? col_text(s, 0) : NULL;
    sqlite3_reset(s);
    return d;
}

/* ---- Outbox -------------------------------------------------------------- */

void outbox_row_free(outbox_row *o)
{
    if (o) {
        free(o->payload);
        o->payload = NULL;
    }
}

int store_outbox_add(store *st, int64_t acct, int64_t taskid, const char *event,
                     const char *event_id, const char *payload)
{
    sqlite3_stmt *s = q(st, "INSERT INTO outbox(event_id, account_id, task_id, event, payload,"
                            " created_at, next_at) VALUES(?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    int64_t now = pt_wall_ms();
    bind_text(s, 1, event_id);
    sqlite3_bind_int64(s, 2, acct);
    if (taskid)
        sqlite3_bind_int64(s, 3, taskid);
    else
        sqlite3_bind_null(s, 3);
    bind_text(s, 4, event);
    bind_text(s, 5, payload);
    sqlite3_bind_int64(s, 6, now);
    sqlite3_bind_int64(s, 7, now);
    return run(st, s);
}

static void row_outbox(sqlite3_stmt *s, outbox_row *o)
{
    memset(o, 0, sizeof(*o));
    o->id = sqlite3_column_int64(s, 0);
    snprintf(o->event_id, sizeof(o->event_id), "%s", (const char *)sqlite3_column_text(s, 1));
    o->account_id = sqlite3_column_int64(s, 2);
    o->task_id = sqlite3_column_int64(s, 3);
    snprintf(o->event, sizeof(o->event), "%s", (const char *)sqlite3_column_text(s, 4));
    o->payload = col_text(s, 5);
    o->created_at = sqlite3_column_int64(s, 6);
    o->attempts = sqlite3_column_int(s, 7);
    o->next_at = sqlite3_column_int64(s, 8);
}

#define OUTBOX_COLS                                                                                \
    "id, event_id, account_id, task_id, event, payload, created_at, attempts, next_at"

int store_outbox_due(store *st, int64_t now, const int64_t *busy, size_t nbusy, outbox_row *rows,
                     size_t max, size_t *n)
{
    sqlite3_stmt *s = q(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE state='pending'"
                            " AND next_at<=? ORDER BY next_at, id LIMIT ?");
    *n = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)(max + nbusy));
    while (*n < max && sqlite3_step(s) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        int skip = 0;
        for (size_t i = 0; i < nbusy && !skip; i++)
            skip = busy[i] == id;
        if (!skip)
            row_outbox(s, &rows[(*n)++]);
    }
    sqlite3_reset(s);
    return 0;
}

int64_t store_outbox_next_at(store *st)
{
    sqlite3_stmt *s = q(st, "SELECT min(next_at) FROM outbox WHERE state='pending'");
    if (!s)
        return 0;
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return v;
}

int store_outbox_attempt(store *st, int64_t id, int64_t at, int http_status, int64_t latency_ms,
                         const char *error, const char *state, int64_t next_at)
{
    if (store_begin(st) < 0)
        return -1;
    sqlite3_stmt *s = q(st, "INSERT INTO deliveries(outbox_id, event_id, task_id, at, http_status,"
                            " latency_ms, error) SELECT id, event_id, task_id, ?2, ?3, ?4, ?5"
                            " FROM outbox WHERE id=?1");
    if (!s)
        goto fail;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    if (http_status)
        sqlite3_bind_int(s, 3, http_status);
    else
        sqlite3_bind_null(s, 3);
    sqlite3_bind_int64(s, 4, latency_ms);
    bind_text(s, 5, error);
    if (run(st, s) < 0)
        goto fail;
    s = q(st, "UPDATE outbox SET attempts=attempts+1, state=?2, next_at=?3 WHERE id=?1");
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, state);
    sqlite3_bind_int64(s, 3, next_at);
    if (run(st, s) < 0)
        goto fail;
    return store_commit(st);
fail:
    store_rollback(st);
    return -1;
}

int store_outbox_for_task(store *st, int64_t taskid, outbox_row *row)
{
    sqlite3_stmt *s = q(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE task_id=?"
                            " AND event='task_finished' ORDER BY id DESC LIMIT 1");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, taskid);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        row_outbox(s, row);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_outbox_requeue(store *st, int64_t id)
{
    sqlite3_stmt *s = q(st, "UPDATE outbox SET state='pending', next_at=? WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, pt_wall_ms());
    sqlite3_bind_int64(s, 2, id);
    return run(st, s);
}

cJSON *store_deliveries(store *st, int64_t taskid)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *s = q(st, "SELECT d.event_id, d.at, d.http_status, d.latency_ms, d.error,"
                            " o.event FROM deliveries d JOIN outbox o ON o.id=d.outbox_id"
                            " WHERE d.task_id=? ORDER BY d.id");
    if (!s)
        return arr;
    sqlite3_bind_int64(s, 1, taskid);
    while (sqlite3_step(s) == SQLITE_ROW) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "event_id", (const char *)sqlite3_column_text(s, 0));
        cJSON_AddStringToObject(d, "event", (const char *)sqlite3_column_text(s, 5));
        add_time(d, "at", sqlite3_column_int64(s, 1));
        if (sqlite3_column_type(s, 2) == SQLITE_NULL)
            cJSON_AddNullToObject(d, "http_status");
        else
            cJSON_AddNumberToObject(d, "http_status", sqlite3_column_int(s, 2));
        cJSON_AddNumberToObject(d, "latency_ms", (double)sqlite3_column_int64(s, 3));
        const char *e = (const char *)sqlite3_column_text(s, 4);
        cJSON_AddItemToObject(d, "error", e ? cJSON_CreateString(e) : cJSON_CreateNull());
        cJSON_AddItemToArray(arr, d);
    }
    sqlite3_reset(s);
    return arr;
}

cJSON *store_outbox_counts(store *st)
{
    cJSON *o = cJSON_CreateObject();
    sqlite3_stmt *s = q(st, "SELECT state, count(*) FROM outbox GROUP BY state");
    while (s && sqlite3_step(s) == SQLITE_ROW)
        cJSON_AddNumberToObject(o, (const char *)sqlite3_column_text(s, 0),
                                (double)sqlite3_column_int64(s, 1));
    if (s)
        sqlite3_reset(s);
    s = q(st, "SELECT count(*), coalesce(sum(http_status IS NULL OR http_status<200 OR"
              " http_status>299), 0) FROM deliveries");
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        cJSON_AddNumberToObject(o, "attempts", (double)sqlite3_column_int64(s, 0));
        cJSON_AddNumberToObject(o, "failures", (double)sqlite3_column_int64(s, 1));
    }
    if (s)
        sqlite3_reset(s);
    return o;
}
