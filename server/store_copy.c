/*
 * store_copy.c - moving an installation from one store to another (`portier
 * store copy`, SQLite to PostgreSQL): every table, every row, every value
 * as it is, in one transaction on the target. See store.h. Sealed bytes
 * move sealed (the target is used with the same master key); a value from
 * before sealing existed (TEXT in a sealed column) is sealed on its way
 * to a PostgreSQL target, whose sealed columns hold bytes only. The tables
 * are the source's catalog's, so a table a new migration adds moves with
 * no change here.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/err.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TABLES 64
#define MAX_COLS 64

/* The store's tables, in the order rows may be inserted: the ones others
 * reference first (accounts, users, tasks), then the rest by name. */
static int list_tables(store *st, char names[][64], int *n, char *err)
{
    static const char *const first[] = {"accounts", "users", "tasks"};
    char all[MAX_TABLES][64];
    int count = 0;
    store_stmt *s = st->drv->prepare(st, st->drv->tables_sql);
    if (!s)
        return pt_errf(err, "%s: cannot list its tables", st->label);
    while (store__step(s) == STORE_ROW && count < MAX_TABLES)
        snprintf(all[count++], 64, "%.63s", store__col_str(s, 0));
    st->drv->finalize(s);
    *n = 0;
    for (size_t f = 0; f < sizeof(first) / sizeof(first[0]); f++)
        for (int i = 0; i < count; i++)
            if (!strcmp(all[i], first[f])) {
                snprintf(names[(*n)++], 64, "%.63s", all[i]);
                all[i][0] = '\0';
            }
    for (int i = 0; i < count; i++)
        if (all[i][0])
            snprintf(names[(*n)++], 64, "%.63s", all[i]);
    return 0;
}

static int has_rows(store *st, const char *table)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM \"%.63s\" LIMIT 1", table);
    store_stmt *s = st->drv->prepare(st, sql);
    if (!s)
        return -1;
    int rc = store__step(s);
    st->drv->finalize(s);
    return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

/* What one table's copy needs to know of its columns. */
typedef struct table_cols {
    int n;
    char name[MAX_COLS][64];
    int sealed[MAX_COLS];
    int id, account, event; /* columns "id", "account_id", "event_id", or -1 */
} table_cols;

static void read_cols(store_stmt *s, const char *table, table_cols *c)
{
    c->n = s->drv->col_count(s);
    if (c->n > MAX_COLS)
        c->n = MAX_COLS;
    c->id = c->account = c->event = -1;
    for (int i = 0; i < c->n; i++) {
        snprintf(c->name[i], 64, "%s", s->drv->col_name(s, i));
        c->sealed[i] = store__sealed_column(table, c->name[i]);
        if (!strcmp(c->name[i], "id"))
            c->id = i;
        else if (!strcmp(c->name[i], "account_id"))
            c->account = i;
        else if (!strcmp(c->name[i], "event_id"))
            c->event = i;
    }
}

/* INSERT INTO table(cols) VALUES(?1, ...): a new string. */
static char *insert_sql(const char *table, const table_cols *c)
{
    size_t cap = 128 + (size_t)c->n * 80;
    char *sql = malloc(cap);
    if (!sql)
        return NULL;
    size_t len = (size_t)snprintf(sql, cap, "INSERT INTO \"%s\"(", table);
    for (int i = 0; i < c->n; i++)
        len += (size_t)snprintf(sql + len, cap - len, "%s\"%s\"", i ? ", " : "", c->name[i]);
    len += (size_t)snprintf(sql + len, cap - len, ") VALUES(");
    for (int i = 0; i < c->n; i++)
        len += (size_t)snprintf(sql + len, cap - len, "%s?%d", i ? ", " : "", i + 1);
    snprintf(sql + len, cap - len, ")");
    return sql;
}

/* The aad a clear value of a sealed column is sealed with, as the store's
 * own writes make it; 0, or -1 if the table is not one whose aad is known. */
static int legacy_aad(const char *table, const table_cols *c, store_stmt *row, int col, char *aad,
                      size_t n)
{
    if (!strcmp(table, "tasks") && c->id >= 0) {
        store__task_aad(aad, n, store__col_int64(row, c->id), c->name[col]);
        return 0;
    }
    if (!strcmp(table, "outbox") && c->event >= 0 && store__col_str(row, c->event)) {
        snprintf(aad, n, "outbox event=%s", store__col_str(row, c->event));
        return 0;
    }
    return -1;
}

/* Binds column i of the source row as parameter i + 1 of ins. */
static int bind_value(store *to, const char *table, const table_cols *c, store_stmt *row, int i,
                      store_stmt *ins, char *err)
{
    switch (row->drv->col_kind(row, i)) {
    case STORE_KIND_NULL:
        store__bind_null(ins, i + 1);
        return 0;
    case STORE_KIND_INT:
        store__bind_int64(ins, i + 1, store__col_int64(row, i));
        return 0;
    case STORE_KIND_BLOB: {
        size_t len = 0;
        const unsigned char *b = row->drv->col_blob(row, i, &len);
        store__bind_blob(ins, i + 1, b ? (const void *)b : "", len);
        return 0;
    }
    default:
        break;
    }
    const char *text = store__col_str(row, i);
    if (!c->sealed[i] || to->drv != &store__pg) {
        store__bind_text(ins, i + 1, text);
        return 0;
    }
    /* a value from before sealing, into a column that holds bytes only */
    char aad[200];
    int64_t acct = c->account >= 0 ? store__col_int64(row, c->account) : 0;
    if (!to->sealer || legacy_aad(table, c, row, i, aad, sizeof(aad)) < 0)
        return pt_errf(err, "%s.%s holds a value from before sealing, and %s", table, c->name[i],
                       to->sealer ? "its table's values cannot be sealed here"
                                  : "no master key was given to seal it");
    return store__bind_sealed(to, ins, i + 1, acct, aad, text) < 0
               ? pt_errf(err, "%s.%s: a value does not seal", table, c->name[i])
               : 0;
}

static int copy_table(store *from, store *to, const char *table, int64_t *rows, char *err)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT * FROM \"%.63s\"", table);
    store_stmt *s = from->drv->prepare(from, sql), *ins = NULL;
    char *isql = NULL;
    table_cols c;
    int rc = 0, step;
    if (!s)
        return pt_errf(err, "%s: cannot read table %s", from->label, table);
    while ((step = store__step(s)) == STORE_ROW) {
        if (!ins) {
            read_cols(s, table, &c);
            if (!(isql = insert_sql(table, &c)) || !(ins = to->drv->prepare(to, isql))) {
                rc = pt_errf(err, "%s: cannot write table %s", to->label, table);
                break;
            }
        }
        for (int i = 0; i < c.n && rc == 0; i++)
            rc = bind_value(to, table, &c, s, i, ins, err);
        if (rc < 0)
            break;
        int w = store__step(ins);
        store__reset(ins);
        if (w != STORE_DONE) {
            rc = pt_errf(err, "%s: a row of %s was refused: %s", to->label, table,
                         store__errmsg(to));
            break;
        }
        (*rows)++;
    }
    if (rc == 0 && step != STORE_DONE)
        rc = pt_errf(err, "%s: reading table %s failed: %s", from->label, table,
                     store__errmsg(from));
    if (rc == 0 && ins && c.id >= 0 && to->drv->copied(to, table) < 0)
        rc = pt_errf(err, "%s: cannot move the ids of %s past the copied ones", to->label, table);
    if (ins)
        to->drv->finalize(ins);
    from->drv->finalize(s);
    free(isql);
    return rc;
}

int store_copy(store *from, store *to, int64_t *rows, char *err)
{
    char tables[MAX_TABLES][64], target[MAX_TABLES][64];
    int n = 0, nt = 0;
    *rows = 0;
    if (list_tables(from, tables, &n, err) < 0 || list_tables(to, target, &nt, err) < 0)
        return PT_EFAIL;
    /* copying into an installation would merge two: refused */
    for (int i = 0; i < nt; i++) {
        int r = has_rows(to, target[i]);
        if (r != 0)
            return r < 0 ? pt_errf(err, "%s: cannot read table %s", to->label, target[i])
                         : pt_errf(err, "%s is not empty (table %s has rows): copy into a new "
                                        "database",
                                   to->label, target[i]);
    }
    if (store_begin(to) < 0)
        return pt_errf(err, "%s: cannot start the copy's transaction", to->label);
    for (int i = 0; i < n; i++) {
        int64_t before = *rows;
        if (copy_table(from, to, tables[i], rows, err) < 0) {
            store_rollback(to);
            *rows = 0;
            return PT_EFAIL;
        }
        PT_INFO("store", "copied %lld rows of %s", (long long)(*rows - before), tables[i]);
    }
    if (store_commit(to) < 0)
        return pt_errf(err, "%s: the copy did not commit: %s", to->label, store__errmsg(to));
    return 0;
}
