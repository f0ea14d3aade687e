/*
 * store.c - the embedded SQLite store: opening a connection, the schema and
 * its migrations, the statement cache and transactions. The tables' own
 * operations are in store_account.c, store_task.c and store_outbox.c. It
 * never interprets what it stores (a task's status is task.c's, a secret
 * arrives sealed by keys.c) and never sends anything anywhere.
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction survives
 * the process being killed (kill -9); only a power loss may take the last
 * few back, never corrupting the file.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
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
    /* 2: an account may turn kept browser sessions off */
    "ALTER TABLE accounts ADD COLUMN sessions_off INTEGER NOT NULL DEFAULT 0;",
    /* 3: a task interrupted before its commit point waits until not_before
     * (wall ms) to run again; interruptions says which attempts were cut
     * short and why (our words, never task data) */
    "ALTER TABLE tasks ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN interruptions TEXT;",
    /* 4: PHI sealed at rest under a key per account (wrapped by the master
     * key); retention marks a final task whose data it purged */
    "ALTER TABLE accounts ADD COLUMN data_key BLOB;"
    "ALTER TABLE tasks ADD COLUMN purged_at INTEGER;",
    /* 5: what a client sees of a task (outputs, what review asks), the
     * idempotency key's request, the account's events, and attempts that
     * say which attempt, where and what came back */
    "ALTER TABLE tasks ADD COLUMN outputs TEXT;"
    "ALTER TABLE tasks ADD COLUMN review_prompt TEXT;"
    "ALTER TABLE idempotency ADD COLUMN request_hash TEXT;"
    "ALTER TABLE accounts ADD COLUMN webhook_events INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE outbox ADD COLUMN round_start INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deliveries ADD COLUMN attempt INTEGER;"
    "ALTER TABLE deliveries ADD COLUMN url TEXT;"
    "ALTER TABLE deliveries ADD COLUMN reply TEXT;",
    /* 6: the dashboard: members of staff with personal keys, signed-in
     * browser sessions, and who answered, decided, cancelled or redelivered */
    "CREATE TABLE users(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,"
    "  UNIQUE(account_id, name));"
    "CREATE TABLE web_sessions(id_hash TEXT PRIMARY KEY, account_id INTEGER NOT NULL,"
    "  user_id INTEGER, actor TEXT NOT NULL, csrf TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  seen_at INTEGER NOT NULL);"
    "CREATE TABLE actions(id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL);"
    "CREATE INDEX actions_by_task ON actions(task_id);",
    /* 7: several nodes on one database (server/node.c): each serve process
     * is a row of nodes, beating while it lives; a task a node runs is
     * leased to it until lease_until (wall ms), renewed by its beat, and
     * taken over by another node only once that has run out (or the holder
     * is known dead), and lease_run names the claim (one run of it); an outbox row being sent is claimed the same way, so
     * that no two nodes send one event at once */
    "CREATE TABLE nodes(id TEXT PRIMARY KEY, host TEXT NOT NULL, proc_key TEXT NOT NULL,"
    "  pid INTEGER NOT NULL, started_at INTEGER NOT NULL, seen_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL);"
    "ALTER TABLE tasks ADD COLUMN lease_node TEXT;"
    "ALTER TABLE tasks ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN lease_run INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX tasks_by_lease ON tasks(lease_node);"
    "ALTER TABLE outbox ADD COLUMN claimed_by TEXT;"
    "ALTER TABLE outbox ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;",
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
    for (int i = 0; i < STORE_NCACHE; i++)
        sqlite3_finalize(st->cache[i].stmt);
    sqlite3_close(st->db);
    free(st->sealer);
    free(st->path);
    free(st);
}

const char *store_path(const store *st)
{
    return st->path;
}

void store_set_sealer(store *st, const store_sealer *s)
{
    struct store_sealer *c = malloc(sizeof(*c));
    if (!c) {
        PT_ERROR("store", "out of memory: values are written in the clear");
        return;
    }
    *c = *s;
    free(st->sealer);
    st->sealer = c;
}

void store__task_aad(char *aad, size_t n, int64_t taskid, const char *field)
{
    snprintf(aad, n, "task=%lld field=%s", (long long)taskid, field);
}

int store__bind_sealed(store *st, sqlite3_stmt *s, int i, int64_t acct, const char *aad,
                       const char *value)
{
    if (!value || !st->sealer) {
        store__bind_text(s, i, value);
        return 0;
    }
    unsigned char *out = NULL;
    size_t n = 0;
    if (st->sealer->seal(st->sealer->ud, st, acct, aad, value, strlen(value), &out, &n) < 0) {
        PT_ERROR("store", "cannot seal %s of account %lld", aad, (long long)acct);
        return -1;
    }
    sqlite3_bind_blob(s, i, out, (int)n, free);
    return 0;
}

char *store__col_opened(store *st, sqlite3_stmt *s, int i, int64_t acct, const char *aad)
{
    if (sqlite3_column_type(s, i) != SQLITE_BLOB)
        return store__col_text(s, i); /* NULL, or written before sealing */
    const unsigned char *b = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);
    char *plain = NULL;
    if (n == 0)
        return NULL; /* purged */
    if (!st->sealer ||
        st->sealer->open(st->sealer->ud, st, acct, aad, b, (size_t)n, &plain, NULL) < 0) {
        PT_ERROR("store", "%s of account %lld does not open (another master key, or the "
                          "account's key was deleted)", aad, (long long)acct);
        return NULL;
    }
    return plain;
}

sqlite3_stmt *store__q(store *st, const char *sql)
{
    int free_slot = -1;
    for (int i = 0; i < STORE_NCACHE; i++) {
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

void store__bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

char *store__col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

unsigned char *store__col_blob(sqlite3_stmt *s, int i, size_t *len)
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

int store__run(store *st, sqlite3_stmt *s)
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

int store__update_text(store *st, const char *sql, int64_t id, const char *value)
{
    sqlite3_stmt *s = store__q(st, sql);
    if (!s)
        return -1;
    store__bind_text(s, 1, value);
    sqlite3_bind_int64(s, 2, id);
    return store__run(st, s);
}

int store__update_int(store *st, const char *sql, int64_t id, int64_t value)
{
    sqlite3_stmt *s = store__q(st, sql);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, value);
    sqlite3_bind_int64(s, 2, id);
    return store__run(st, s);
}

int store_begin(store *st)
{
    return store__run(st, store__q(st, "BEGIN IMMEDIATE"));
}

int store_commit(store *st)
{
    if (store__run(st, store__q(st, "COMMIT")) == 0)
        return 0;
    store_rollback(st);
    return -1;
}

void store_rollback(store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

void store_json_time(cJSON *o, const char *name, int64_t ms)
{
    char iso[32];
    if (!ms) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    pt_iso8601(ms, iso);
    cJSON_AddStringToObject(o, name, iso);
}
