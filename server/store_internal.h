/*
 * store_internal.h - what the store's files share (store.c, store_account.c,
 * store_task.c, store_outbox.c) and nothing outside them includes: the
 * connection, its statement cache and the binding helpers.
 */
#ifndef PORTIER_STORE_INTERNAL_H
#define PORTIER_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct task_file_in task_file_in;
struct store_sealer;

#define STORE_NCACHE 128 /* more than the store has statements: none is ever evicted */

struct store {
    sqlite3 *db;
    char *path;
    int in_batch; /* store_batch_begin: task creation uses savepoints */
    int64_t data_version; /* store_wait_changes: the last PRAGMA data_version seen */
    struct store_sealer *sealer; /* store_set_sealer (a copy); NULL: none */
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STORE_NCACHE];
};

/* A prepared statement for sql (a string literal: cached by its address),
 * reset and with bindings cleared; NULL (logged) if it does not prepare.
 * The statement belongs to the connection. */
sqlite3_stmt *store__q(store *st, const char *sql);
/* Binds v (copied), or NULL for a NULL pointer. */
void store__bind_text(sqlite3_stmt *s, int i, const char *v);
/* Column i as a new string (the caller frees it), or NULL. */
char *store__col_text(sqlite3_stmt *s, int i);
/* Column i as a new buffer of *len bytes (the caller frees it), or NULL. */
unsigned char *store__col_blob(sqlite3_stmt *s, int i, size_t *len);
/* Binds value sealed for the account with aad (a BLOB), or in the clear
 * without a sealer, or NULL for a NULL pointer. 0, or -1 if it cannot be
 * sealed (nothing is bound then). */
int store__bind_sealed(store *st, sqlite3_stmt *s, int i, int64_t acct, const char *aad,
                       const char *value);
/* Column i opened (a BLOB) or as it is (TEXT, from before sealing): a new
 * string the caller frees, or NULL (NULL, or it does not open). */
char *store__col_opened(store *st, sqlite3_stmt *s, int i, int64_t acct, const char *aad);
/* The aad of a task's sealed column: "task=ID field=NAME". */
void store__task_aad(char *aad, size_t n, int64_t taskid, const char *field);
/* Steps a statement that returns no rows. 0 or -1 (logged). */
int store__run(store *st, sqlite3_stmt *s);
/* Runs an UPDATE of one row that binds value as ?1 and the id as ?2. */
int store__update_text(store *st, const char *sql, int64_t id, const char *value);
int store__update_int(store *st, const char *sql, int64_t id, int64_t value);

#endif
