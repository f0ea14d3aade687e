/*
 * store.c - the store's backend-neutral core: choosing the backend (SQLite
 * for a file, PostgreSQL for a connection string), the schema and its
 * migrations, the statement cache, sealing columns and transactions. The
 * tables' own operations are in store_account.c, store_task.c,
 * store_outbox.c and store_user.c; the engines' drivers in store_sqlite.c
 * and store_pg.c. It never interprets what it stores (a task's status is
 * task.c's, a secret arrives sealed by keys.c) and never sends anything
 * anywhere.
 *
 * Durability: SQLite in WAL with synchronous=NORMAL (a committed
 * transaction survives kill -9; a power loss may take the last few back,
 * never corrupting the file); PostgreSQL with its own settings
 * (synchronous_commit on by default: a commit is on disk when it returns).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Schema ---------------------------------------------------------------
 * Each migration brings the schema from version i to i + 1; the driver
 * keeps the version (SQLite's user_version, a table on PostgreSQL). Never
 * change what a released migration does: add one. The text is SQLite's and
 * runs on PostgreSQL through its driver's type mapping (store_pg.c): a
 * TEXT column that holds sealed bytes says so with a comment, which SQLite
 * ignores, so that PostgreSQL makes it BYTEA. */
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
    "  status TEXT NOT NULL, title TEXT NOT NULL, instructions TEXT NOT NULL, data TEXT /*sealed*/,"
    "  notes TEXT /*sealed*/, started_at INTEGER, completed_at INTEGER, failed_at INTEGER,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  committed INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    "  approve INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  ask_name TEXT, ask_prompt TEXT /*sealed*/, answers TEXT /*sealed*/,"
    "  review_comment TEXT /*sealed*/,"
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
    "  account_id INTEGER NOT NULL, task_id INTEGER, event TEXT NOT NULL,"
    "  payload TEXT /*sealed*/ NOT NULL,"
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
    "ALTER TABLE tasks ADD COLUMN outputs TEXT /*sealed*/;"
    "ALTER TABLE tasks ADD COLUMN review_prompt TEXT /*sealed*/;"
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
    /* 8: element fingerprints (agent/fingerprint.h), one set per account and
     * SOP type and version, sealed for the account like its other data */
    "CREATE TABLE fingerprints(account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  type TEXT NOT NULL, sop_version INTEGER NOT NULL, data BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL, PRIMARY KEY(account_id, type, sop_version));",
    /* 9: a count of the changes to an account's SOPs and input defaults,
     * moved after each in the same transaction, so that what a node keeps
     * of them is known stale from the account's row alone */
    "ALTER TABLE accounts ADD COLUMN config_gen INTEGER NOT NULL DEFAULT 0;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_is_pg(const char *target)
{
    if (!strncmp(target, "postgres://", 11) || !strncmp(target, "postgresql://", 13))
        return 1;
    /* libpq's key=value form: "host=... dbname=..." (a file name has no
     * '=' before its first space or slash) */
    size_t word = strspn(target, "abcdefghijklmnopqrstuvwxyz_");
    return word > 0 && target[word] == '=';
}

static int exec(store *st, const char *sql)
{
    return st->drv->exec(st, sql);
}

static int migrate(store *st, char *err)
{
    if (st->drv->begin(st) < 0)
        return pt_errf(err, "%s: cannot lock the database to migrate it", st->label);
    int v = st->drv->schema_version(st);
    if (v < 0) {
        store_rollback(st);
        return pt_errf(err, "%s: cannot read the schema's version", st->label);
    }
    if (v > NMIGRATIONS) {
        store_rollback(st);
        return pt_errf(err,
                       "%s has schema version %d, newer than this portier knows (%d): "
                       "run a newer portier, or restore a backup",
                       st->label, v, NMIGRATIONS);
    }
    for (; v < NMIGRATIONS; v++) {
        char *ddl = st->drv->ddl(migrations[v]);
        int ok = ddl && exec(st, ddl) == 0 && st->drv->set_schema_version(st, v + 1) == 0;
        free(ddl);
        if (!ok) {
            store_rollback(st);
            return pt_errf(err, "%s: migration %d failed", st->label, v + 1);
        }
        PT_INFO("store", "schema migrated to version %d", v + 1);
    }
    return exec(st, "COMMIT") < 0 ? pt_errf(err, "%s: cannot commit the migration", st->label) : 0;
}

/* Whether statement stmt (up to end) creates or alters table. */
static int about_table(const char *stmt, const char *end, const char *table)
{
    static const char *const heads[] = {"CREATE TABLE ", "ALTER TABLE "};
    while (stmt < end && (*stmt == ' ' || *stmt == '\n'))
        stmt++;
    for (size_t i = 0; i < 2; i++) {
        size_t h = strlen(heads[i]), t = strlen(table);
        if (!strncmp(stmt, heads[i], h) && !strncmp(stmt + h, table, t) &&
            (stmt[h + t] == '(' || stmt[h + t] == ' '))
            return 1;
    }
    return 0;
}

int store__sealed_column(const char *table, const char *column)
{
    char mark[160];
    snprintf(mark, sizeof(mark), "%s TEXT /*sealed*/", column);
    for (int v = 0; v < NMIGRATIONS; v++) {
        for (const char *stmt = migrations[v]; *stmt;) {
            const char *end = strchr(stmt, ';');
            if (!end)
                end = stmt + strlen(stmt);
            if (about_table(stmt, end, table))
                for (const char *m = strstr(stmt, mark); m && m < end; m = strstr(m + 1, mark))
                    if (m > stmt && strchr("(, ", m[-1]))
                        return 1;
            stmt = *end ? end + 1 : end;
        }
    }
    return 0;
}

int store_schema_version(void)
{
    return NMIGRATIONS;
}

store *store_open(const char *path, int migrate_it, char *err)
{
    store *st = calloc(1, sizeof(*st));
    if (!st || !(st->path = strdup(path))) {
        free(st);
        pt_errf(err, "out of memory");
        return NULL;
    }
    st->drv = store_is_pg(path) ? &store__pg : &store__sqlite;
    if (st->drv->open(st, path, 1, err) < 0) {
        store_close(st);
        return NULL;
    }
    if (!st->label && !(st->label = strdup(path))) {
        pt_errf(err, "out of memory");
        store_close(st);
        return NULL;
    }
    int v = 0;
    if (migrate_it ? migrate(st, err) < 0 : (v = st->drv->schema_version(st)) != NMIGRATIONS) {
        if (!migrate_it)
            pt_errf(err, "%s has schema version %d; this portier needs %d", st->label, v,
                    NMIGRATIONS);
        store_close(st);
        return NULL;
    }
    return st;
}

int store_exists(const char *path, char *err)
{
    if (!store_is_pg(path))
        return access(path, F_OK) == 0 ? 1 : 0;
    store st = {.drv = &store__pg};
    if (st.drv->open(&st, path, 0, err) < 0)
        return -1;
    int v = st.drv->schema_version(&st);
    st.drv->close(&st);
    free(st.label);
    if (v < 0)
        return pt_errf(err, "cannot read the schema's version");
    return v > 0;
}

void store_close(store *st)
{
    if (!st)
        return;
    for (int i = 0; i < STORE_NCACHE; i++)
        if (st->cache[i].stmt)
            st->drv->finalize(st->cache[i].stmt);
    if (st->conn)
        st->drv->close(st);
    free(st->sealer);
    free(st->path);
    free(st->label);
    free(st);
}

const char *store_path(const store *st)
{
    return st->path;
}

const char *store_label(const store *st)
{
    return st->label;
}

const char *store_backend(const store *st)
{
    return st->drv->name;
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

int store__bind_sealed(store *st, store_stmt *s, int i, int64_t acct, const char *aad,
                       const char *value)
{
    if (!value || !st->sealer) {
        /* PostgreSQL's sealed columns are BYTEA: the clear value as bytes */
        if (value && st->drv == &store__pg)
            store__bind_blob(s, i, value, strlen(value));
        else
            store__bind_text(s, i, value);
        return 0;
    }
    unsigned char *out = NULL;
    size_t n = 0;
    if (st->sealer->seal(st->sealer->ud, st, acct, aad, value, strlen(value), &out, &n) < 0) {
        PT_ERROR("store", "cannot seal %s of account %lld", aad, (long long)acct);
        return -1;
    }
    store__bind_blob(s, i, out, n);
    free(out);
    return 0;
}

char *store__col_opened(store *st, store_stmt *s, int i, int64_t acct, const char *aad)
{
    if (!s->drv->col_is_blob(s, i))
        return store__col_text(s, i); /* NULL, or written before sealing */
    size_t n = 0;
    const unsigned char *b = s->drv->col_blob(s, i, &n);
    char *plain = NULL;
    if (!b || n == 0)
        return NULL; /* NULL, or purged */
    if (!st->sealer ||
        st->sealer->open(st->sealer->ud, st, acct, aad, b, n, &plain, NULL) < 0) {
        PT_ERROR("store", "%s of account %lld does not open (another master key, or the "
                          "account's key was deleted)", aad, (long long)acct);
        return NULL;
    }
    return plain;
}

store_stmt *store__q(store *st, const char *sql)
{
    int free_slot = -1;
    for (int i = 0; i < STORE_NCACHE; i++) {
        if (st->cache[i].sql == sql) {
            store__reset(st->cache[i].stmt);
            st->drv->clear(st->cache[i].stmt);
            return st->cache[i].stmt;
        }
        if (!st->cache[i].sql && free_slot < 0)
            free_slot = i;
    }
    store_stmt *s = st->drv->prepare(st, sql);
    if (!s)
        return NULL;
    if (free_slot < 0) { /* full: replace one (never happens with this file's queries) */
        free_slot = 0;
        st->drv->finalize(st->cache[0].stmt);
    }
    st->cache[free_slot].sql = sql;
    st->cache[free_slot].stmt = s;
    return s;
}

char *store__col_text(store_stmt *s, int i)
{
    const char *t = s->drv->col_text(s, i);
    return t ? strdup(t) : NULL;
}

unsigned char *store__col_blob(store_stmt *s, int i, size_t *len)
{
    size_t n = 0;
    const unsigned char *b = s->drv->col_blob(s, i, &n);
    *len = 0;
    if (!b || !n)
        return NULL;
    unsigned char *c = malloc(n);
    if (c) {
        memcpy(c, b, n);
        *len = n;
    }
    return c;
}

int store__run(store *st, store_stmt *s)
{
    if (!s)
        return -1;
    int rc = st->drv->run ? st->drv->run(s) : store__step(s);
    store__reset(s);
    if (rc != STORE_DONE) {
        PT_ERROR("store", "write failed: %s", store__errmsg(st));
        return -1;
    }
    return 0;
}

int store__insert_id(store *st, store_stmt *s, int64_t *id)
{
    *id = 0;
    if (!s)
        return -1;
    int rc = store__step(s);
    if (rc == STORE_ROW)
        *id = store__col_int64(s, 0);
    while (rc == STORE_ROW)
        rc = store__step(s);
    store__reset(s);
    if (rc == STORE_CONSTRAINT)
        return -2;
    if (rc != STORE_DONE || !*id) {
        PT_ERROR("store", "insert failed: %s", store__errmsg(st));
        return -1;
    }
    return 0;
}

int store__update_text(store *st, const char *sql, int64_t id, const char *value)
{
    store_stmt *s = store__q(st, sql);
    if (!s)
        return -1;
    store__bind_text(s, 1, value);
    store__bind_int64(s, 2, id);
    return store__run(st, s);
}

int store__update_int(store *st, const char *sql, int64_t id, int64_t value)
{
    store_stmt *s = store__q(st, sql);
    if (!s)
        return -1;
    store__bind_int64(s, 1, value);
    store__bind_int64(s, 2, id);
    return store__run(st, s);
}

int64_t store__changes(store *st)
{
    return st->drv->changes(st);
}

const char *store__errmsg(store *st)
{
    return st->drv->errmsg(st);
}

unsigned long store_transaction(store *st)
{
    return st->drv->in_tx(st) ? st->tx_gen : 0;
}

/* A BEGIN that failed may have left a transaction behind (PostgreSQL's
 * "BEGIN; SELECT pg_advisory_xact_lock(...)" whose lock failed), and no
 * caller rolls back a begin that failed: it is done here. */
static int begin_with(store *st, int (*begin)(store *st))
{
    st->tx_gen++;
    if (begin(st) == 0)
        return 0;
    store_rollback(st);
    return -1;
}

int store_begin(store *st)
{
    return begin_with(st, st->drv->begin);
}

int store_begin_rows(store *st)
{
    return begin_with(st, st->drv->begin_rows);
}

int store__begin_deferred(store *st)
{
    st->tx_gen++;
    return st->drv->begin_deferred ? st->drv->begin_deferred(st) : st->drv->begin(st);
}

int store__commit_deferred(store *st)
{
    if (!st->drv->commit_deferred)
        return store_commit(st) < 0 ? PT_ECLOSED : 0;
    int rc = st->drv->commit_deferred(st);
    if (rc < 0)
        store_rollback(st);
    return rc;
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
    if (st->drv->in_tx(st))
        exec(st, "ROLLBACK");
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
