/*
 * store_internal.h - what the store's files share and nothing outside them
 * includes: the connection, its statement cache, and the driver a backend
 * (store_sqlite.c, store_pg.c) provides underneath one copy of the queries.
 *
 * Queries are written once, in the SQL both backends speak: ?N (or ?)
 * placeholders, RETURNING for a new row's id, ON CONFLICT for an upsert,
 * integers compared (x<>0) rather than used as booleans. The PostgreSQL
 * driver turns ?N into $N; nothing else is translated in a query. The
 * migrations' DDL is SQLite's, and the PostgreSQL driver maps its types
 * (store_pg.c, pg_ddl) so a new migration is written once too.
 */
#ifndef PORTIER_STORE_INTERNAL_H
#define PORTIER_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct task_file_in task_file_in;
typedef struct store_stmt store_stmt;
typedef struct store_driver store_driver;
struct store_sealer;

#define STORE_NCACHE 128 /* more than the store has statements: none is ever evicted */

/* What a column's value is (store copy moves each as it is). */
enum { STORE_KIND_NULL, STORE_KIND_INT, STORE_KIND_TEXT, STORE_KIND_BLOB };

/* What a step returns. */
enum { STORE_ERROR = -1, STORE_DONE = 0, STORE_ROW = 1, STORE_CONSTRAINT = 2 };

/* A prepared statement: each driver's own struct starts with this. */
struct store_stmt {
    const store_driver *drv;
};

/* A backend. Statements are the connection's (finalized at close); a
 * column's text or bytes are borrowed until the statement's next step or
 * reset. Binding copies the value. Indexes: parameters from 1 (as in the
 * SQL's ?N), columns from 0. */
struct store_driver {
    const char *name; /* "sqlite", "postgresql": how errors name the backend */
    /* Connects st->conn to target; create: may create it (SQLite's file).
     * 0, or -1 with err. */
    int (*open)(store *st, const char *target, int create, char *err);
    void (*close)(store *st);
    store_stmt *(*prepare)(store *st, const char *sql); /* NULL (logged) */
    void (*finalize)(store_stmt *s);
    void (*reset)(store_stmt *s); /* ends a run; the bindings stay */
    void (*clear)(store_stmt *s); /* the bindings are NULL again */
    void (*bind_int64)(store_stmt *s, int i, int64_t v);
    void (*bind_text)(store_stmt *s, int i, const char *v); /* NULL: NULL */
    void (*bind_blob)(store_stmt *s, int i, const void *b, size_t n);
    void (*bind_null)(store_stmt *s, int i);
    int (*step)(store_stmt *s); /* STORE_ROW, STORE_DONE, STORE_CONSTRAINT, STORE_ERROR */
    /* a step whose rows nobody reads: it may answer STORE_DONE at once and
     * report a failure at the transaction's next waiting statement (NULL:
     * step) */
    int (*run)(store_stmt *s);
    int (*col_null)(store_stmt *s, int i);
    int (*col_is_blob)(store_stmt *s, int i); /* bytes rather than text */
    int64_t (*col_int64)(store_stmt *s, int i);
    const char *(*col_text)(store_stmt *s, int i);                      /* NULL for NULL */
    const unsigned char *(*col_blob)(store_stmt *s, int i, size_t *n); /* NULL for NULL/empty */
    int (*col_count)(store_stmt *s);               /* after a step */
    const char *(*col_name)(store_stmt *s, int i); /* after a step */
    int (*col_kind)(store_stmt *s, int i);         /* STORE_KIND_* of this row's value */
    int64_t (*changes)(store *st); /* rows the last statement changed */
    int (*exec)(store *st, const char *sql); /* statements without parameters; -1 (logged) */
    int (*in_tx)(store *st);                 /* inside a transaction */
    const char *(*errmsg)(store *st);        /* the last error, our words or the engine's */
    /* the schema's version: -1 if it cannot be read; set: within migrate's transaction */
    int (*schema_version)(store *st);
    int (*set_schema_version)(store *st, int v);
    /* a migration's DDL as this backend runs it: a new string (the caller frees it) */
    char *(*ddl)(const char *sql);
    /* BEGIN, holding the writer lock until COMMIT or ROLLBACK (SQLite's
     * BEGIN IMMEDIATE; on PostgreSQL an advisory lock): writers queue as
     * they do on SQLite, so a read-then-write in a transaction sees no
     * other writer in between, except on PostgreSQL the claim (begin_rows):
     * a read-then-write of a pending task takes its row first
     * (store_task_lock). 0 or -1 (logged). */
    int (*begin)(store *st);
    /* BEGIN for a transaction whose writes lock only the rows they touch
     * (the claim): SQLite has one write lock, so this is begin; PostgreSQL
     * takes no writer lock, and the claim's FOR UPDATE SKIP LOCKED keeps
     * two nodes off one row without either waiting. 0 or -1 (logged). */
    int (*begin_rows)(store *st);
    /* whether a SELECT that picks rows to claim ends with FOR UPDATE SKIP
     * LOCKED (PostgreSQL; SQLite has no such clause, nor needs it) */
    int skip_locked;
    /* store_batch_begin_fast: a query of ?1 new task ids, one per row
     * (NULL: the backend has no fast batch) */
    const char *reserve_task_ids_sql;
    /* The fast batch's ends, each riding with other statements (NULL: begin
     * and COMMIT). begin_deferred is begin whose answer comes with the
     * next statement that reads rows (the id reservation); commit_deferred
     * sends COMMIT behind the statements still unanswered and reads them
     * all: 0 committed, -1 one of them failed (COMMIT did not run: nothing
     * is stored, the transaction is to be rolled back), PT_ECLOSED the
     * COMMIT itself failed (it may be stored). */
    int (*begin_deferred)(store *st);
    int (*commit_deferred)(store *st);
    /* store_wait_changes: 1 once another connection committed a change
     * since the last call, 0 after timeout_ms, -1 on error */
    int (*wait_changes)(store *st, int timeout_ms);
    /* store copy: a query of the names of the store's tables (one column),
     * and what to do once a table's rows are in (PostgreSQL moves its
     * identity sequence past the copied ids) */
    const char *tables_sql;
    int (*copied)(store *st, const char *table);
};

extern const store_driver store__sqlite;
extern const store_driver store__pg;

struct store {
    const store_driver *drv;
    void *conn;  /* the driver's connection */
    char *path;  /* what store_open was given */
    char *label; /* how messages name it (a PostgreSQL URL without its password) */
    int in_batch; /* store_batch_begin: task creation uses savepoints */
    struct store_fast_batch *fast; /* store_batch_begin_fast's (NULL: none) */
    unsigned long tx_gen; /* store_begin's count: store_transaction */
    int64_t data_version; /* store_wait_changes: the last PRAGMA data_version seen */
    struct store_sealer *sealer; /* store_set_sealer (a copy); NULL: none */
    struct {
        const char *sql;
        store_stmt *stmt;
    } cache[STORE_NCACHE];
};

/* A prepared statement for sql (a string literal: cached by its address),
 * reset and with bindings cleared; NULL (logged) if it does not prepare.
 * The statement belongs to the connection. */
store_stmt *store__q(store *st, const char *sql);
/* The driver's begin_deferred and commit_deferred (or begin and COMMIT);
 * a failed commit rolls back. */
int store__begin_deferred(store *st);
int store__commit_deferred(store *st);

static inline int store__step(store_stmt *s)
{
    return s->drv->step(s);
}
static inline void store__reset(store_stmt *s)
{
    s->drv->reset(s);
}
static inline void store__bind_int64(store_stmt *s, int i, int64_t v)
{
    s->drv->bind_int64(s, i, v);
}
/* Binds v (copied), or NULL for a NULL pointer. */
static inline void store__bind_text(store_stmt *s, int i, const char *v)
{
    s->drv->bind_text(s, i, v);
}
/* Binds n bytes (copied; an empty value for n 0), or NULL for a NULL pointer. */
static inline void store__bind_blob(store_stmt *s, int i, const void *b, size_t n)
{
    if (b)
        s->drv->bind_blob(s, i, b, n);
    else
        s->drv->bind_null(s, i);
}
static inline void store__bind_null(store_stmt *s, int i)
{
    s->drv->bind_null(s, i);
}
static inline int store__col_null(store_stmt *s, int i)
{
    return s->drv->col_null(s, i);
}
static inline int64_t store__col_int64(store_stmt *s, int i)
{
    return s->drv->col_int64(s, i);
}
static inline int store__col_int(store_stmt *s, int i)
{
    return (int)s->drv->col_int64(s, i);
}
/* Column i's text, borrowed (see store_driver), or NULL. */
static inline const char *store__col_str(store_stmt *s, int i)
{
    return s->drv->col_text(s, i);
}

/* Column i as a new string (the caller frees it), or NULL. */
char *store__col_text(store_stmt *s, int i);
/* Column i as a new buffer of *len bytes (the caller frees it), or NULL. */
unsigned char *store__col_blob(store_stmt *s, int i, size_t *len);
/* Binds value sealed for the account with aad (a BLOB), or in the clear
 * without a sealer, or NULL for a NULL pointer. 0, or -1 if it cannot be
 * sealed (nothing is bound then). */
int store__bind_sealed(store *st, store_stmt *s, int i, int64_t acct, const char *aad,
                       const char *value);
/* Column i opened (a BLOB) or as it is (TEXT, from before sealing): a new
 * string the caller frees, or NULL (NULL, or it does not open). */
char *store__col_opened(store *st, store_stmt *s, int i, int64_t acct, const char *aad);
/* The aad of a task's sealed column: "task=ID field=NAME". */
void store__task_aad(char *aad, size_t n, int64_t taskid, const char *field);
/* Steps a statement that returns no rows. 0 or -1 (logged). */
int store__run(store *st, store_stmt *s);
/* Steps an INSERT ... RETURNING id: 0 and *id, or -1 (logged; with
 * STORE_CONSTRAINT's -2 if a constraint refused the row). */
int store__insert_id(store *st, store_stmt *s, int64_t *id);
/* Runs an UPDATE of one row that binds value as ?1 and the id as ?2. */
int store__update_text(store *st, const char *sql, int64_t id, const char *value);
int store__update_int(store *st, const char *sql, int64_t id, int64_t value);
/* The rows the last statement changed. */
int64_t store__changes(store *st);
/* Whether a migration marks table.column as holding sealed bytes (a TEXT
 * column with the "sealed" comment, BYTEA on PostgreSQL). */
int store__sealed_column(const char *table, const char *column);
/* The last error's message (never a value: the engines name columns). */
const char *store__errmsg(store *st);

#endif
