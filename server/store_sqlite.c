/*
 * store_sqlite.c - the store's SQLite driver (store_internal.h): one file
 * in WAL mode, a connection per thread. The queries are store*.c's; this
 * file only runs them. It must never change what a query means.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct lite_stmt {
    store_stmt base;
    sqlite3_stmt *s;
} lite_stmt;

#define DB(st) ((sqlite3 *)(st)->conn)
#define S(x) (((lite_stmt *)(x))->s)

static int lite_exec(store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(DB(st), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        PT_ERROR("store", "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : -1;
}

static int lite_open(store *st, const char *path, int create, char *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    st->conn = db;
    if (rc != SQLITE_OK)
        return pt_errf(err, "cannot open the database %s: %s", path, sqlite3_errstr(rc));
    chmod(path, 0600);
    sqlite3_busy_timeout(db, 10000);
    /* secure_delete: a purged value's bytes (sealed, but its key lives on)
     * are overwritten in the file, not left in its free pages */
    if (lite_exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                      "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;") < 0)
        return pt_errf(err, "%s is not a usable SQLite database", path);
    return 0;
}

static void lite_close(store *st)
{
    sqlite3_close(DB(st));
    st->conn = NULL;
}

static void lite_finalize(store_stmt *s);

static store_stmt *lite_prepare(store *st, const char *sql)
{
    lite_stmt *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->base.drv = &store__sqlite;
    if (sqlite3_prepare_v3(DB(st), sql, -1, SQLITE_PREPARE_PERSISTENT, &l->s, NULL) != SQLITE_OK) {
        PT_ERROR("store", "cannot prepare a statement: %s", sqlite3_errmsg(DB(st)));
        lite_finalize(&l->base);
        return NULL;
    }
    return &l->base;
}

static void lite_finalize(store_stmt *s)
{
    if (!s)
        return;
    sqlite3_finalize(S(s));
    free(s);
}

static void lite_reset(store_stmt *s)
{
    sqlite3_reset(S(s));
}

static void lite_clear(store_stmt *s)
{
    sqlite3_clear_bindings(S(s));
}

static void lite_bind_int64(store_stmt *s, int i, int64_t v)
{
    sqlite3_bind_int64(S(s), i, v);
}

static void lite_bind_text(store_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(S(s), i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(S(s), i);
}

static void lite_bind_blob(store_stmt *s, int i, const void *b, size_t n)
{
    static const char empty = 0;
    /* a zero-length BLOB needs a pointer that is not NULL */
    sqlite3_bind_blob64(S(s), i, n ? b : &empty, n, SQLITE_TRANSIENT);
}

static void lite_bind_null(store_stmt *s, int i)
{
    sqlite3_bind_null(S(s), i);
}

static int lite_step(store_stmt *s)
{
    int rc = sqlite3_step(S(s));
    if (rc == SQLITE_ROW)
        return STORE_ROW;
    if (rc == SQLITE_DONE)
        return STORE_DONE;
    return (rc & 0xff) == SQLITE_CONSTRAINT ? STORE_CONSTRAINT : STORE_ERROR;
}

static int lite_col_null(store_stmt *s, int i)
{
    return sqlite3_column_type(S(s), i) == SQLITE_NULL;
}

static int lite_col_is_blob(store_stmt *s, int i)
{
    return sqlite3_column_type(S(s), i) == SQLITE_BLOB;
}

static int64_t lite_col_int64(store_stmt *s, int i)
{
    return sqlite3_column_int64(S(s), i);
}

static const char *lite_col_text(store_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(S(s), i);
}

static const unsigned char *lite_col_blob(store_stmt *s, int i, size_t *n)
{
    const unsigned char *b = sqlite3_column_blob(S(s), i);
    int len = sqlite3_column_bytes(S(s), i);
    *n = b && len > 0 ? (size_t)len : 0;
    return *n ? b : NULL;
}

static int lite_col_count(store_stmt *s)
{
    return sqlite3_column_count(S(s));
}

static const char *lite_col_name(store_stmt *s, int i)
{
    return sqlite3_column_name(S(s), i);
}

static int lite_col_kind(store_stmt *s, int i)
{
    switch (sqlite3_column_type(S(s), i)) {
    case SQLITE_NULL:
        return STORE_KIND_NULL;
    case SQLITE_INTEGER:
        return STORE_KIND_INT;
    case SQLITE_BLOB:
        return STORE_KIND_BLOB;
    default:
        return STORE_KIND_TEXT;
    }
}

static int lite_copied(store *st, const char *table)
{
    (void)st;
    (void)table; /* a rowid goes on from the largest one */
    return 0;
}

static int64_t lite_changes(store *st)
{
    return sqlite3_changes64(DB(st));
}

static int lite_in_tx(store *st)
{
    return !sqlite3_get_autocommit(DB(st));
}

/* Another connection's commit bumps PRAGMA data_version (this one's own do
 * not): polled every 50 ms, the file having no way to tell. */
static int64_t data_version(store *st)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(DB(st), "PRAGMA data_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int lite_wait_changes(store *st, int timeout_ms)
{
    int64_t until = pt_mono_ms() + timeout_ms;
    for (;;) {
        int64_t v = data_version(st);
        if (v < 0)
            return -1;
        if (v != st->data_version) {
            st->data_version = v;
            return 1;
        }
        int64_t left = until - pt_mono_ms();
        if (left <= 0)
            return 0;
        pt_sleep_ms(left < 50 ? left : 50);
    }
}

static const char *lite_errmsg(store *st)
{
    return sqlite3_errmsg(DB(st));
}

static int lite_schema_version(store *st)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(DB(st), "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int lite_set_schema_version(store *st, int v)
{
    char set[64];
    snprintf(set, sizeof(set), "PRAGMA user_version=%d", v);
    return lite_exec(st, set);
}

static char *lite_ddl(const char *sql)
{
    return strdup(sql); /* the migrations are written in SQLite's own words */
}

static int lite_begin(store *st)
{
    return store__run(st, store__q(st, "BEGIN IMMEDIATE"));
}

const store_driver store__sqlite = {
    .name = "sqlite",
    .open = lite_open,
    .close = lite_close,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .reset = lite_reset,
    .clear = lite_clear,
    .bind_int64 = lite_bind_int64,
    .bind_text = lite_bind_text,
    .bind_blob = lite_bind_blob,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .col_null = lite_col_null,
    .col_is_blob = lite_col_is_blob,
    .col_int64 = lite_col_int64,
    .col_text = lite_col_text,
    .col_blob = lite_col_blob,
    .changes = lite_changes,
    .exec = lite_exec,
    .in_tx = lite_in_tx,
    .wait_changes = lite_wait_changes,
    .errmsg = lite_errmsg,
    .schema_version = lite_schema_version,
    .set_schema_version = lite_set_schema_version,
    .ddl = lite_ddl,
    .begin = lite_begin,
    .begin_rows = lite_begin,
    .col_count = lite_col_count,
    .col_name = lite_col_name,
    .col_kind = lite_col_kind,
    .tables_sql = "SELECT name FROM sqlite_master WHERE type='table'"
                  " AND name NOT LIKE 'sqlite_%' ORDER BY name",
    .copied = lite_copied,
};
