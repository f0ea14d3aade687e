/*
 * store_node.c - the store's side of several nodes on one database: the
 * nodes' rows and beats, the claim of a pending task, and the lease each
 * running task carries. See store.h ("Nodes and leases"). What a lease
 * means (who may take a task over, when) is server/node.c's; this file
 * only makes each step atomic, and names no status itself (the caller's
 * task.c names them).
 *
 * On SQLite the nodes are processes on one host sharing the file: every
 * write runs under the database's one write lock, so a statement that
 * checks and sets (WHERE lease_node=? ...) is atomic across processes. On
 * PostgreSQL the same statements hold per row; the claim runs outside the
 * writer lock (store_begin_rows) and its subquery adds FOR UPDATE SKIP
 * LOCKED, so nodes claim different rows at once.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/err.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Nodes ---------------------------------------------------------------- */

int store_node_put(store *st, const store_node *n)
{
    store_stmt *s = store__q(
        st, "INSERT INTO nodes(id, host, proc_key, pid, started_at, seen_at, state)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(id) DO UPDATE SET host=?2, proc_key=?3,"
            " pid=?4, started_at=?5, seen_at=?6, state=?7");
    if (!s)
        return -1;
    store__bind_text(s, 1, n->id);
    store__bind_text(s, 2, n->host);
    store__bind_text(s, 3, n->proc_key);
    store__bind_int64(s, 4, n->pid);
    store__bind_int64(s, 5, n->started_at);
    store__bind_int64(s, 6, n->seen_at);
    store__bind_text(s, 7, n->state);
    return store__run(st, s);
}

static void copy_col(store_stmt *s, int i, char *out, size_t n)
{
    const char *t = store__col_str(s, i);
    snprintf(out, n, "%s", t ? t : "");
}

int store_node_get(store *st, const char *id, store_node *n)
{
    store_stmt *s = store__q(st, "SELECT id, host, proc_key, pid, started_at, seen_at, state"
                                   " FROM nodes WHERE id=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, id);
    int rc = store__step(s);
    if (rc == STORE_ROW) {
        memset(n, 0, sizeof(*n));
        copy_col(s, 0, n->id, sizeof(n->id));
        copy_col(s, 1, n->host, sizeof(n->host));
        copy_col(s, 2, n->proc_key, sizeof(n->proc_key));
        n->pid = store__col_int64(s, 3);
        n->started_at = store__col_int64(s, 4);
        n->seen_at = store__col_int64(s, 5);
        copy_col(s, 6, n->state, sizeof(n->state));
    }
    store__reset(s);
    return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

int store_node_beat(store *st, const char *id, int64_t now, const char *state)
{
    store_stmt *s = store__q(st, "UPDATE nodes SET seen_at=?2, state=?3 WHERE id=?1");
    if (!s)
        return -1;
    store__bind_text(s, 1, id);
    store__bind_int64(s, 2, now);
    store__bind_text(s, 3, state);
    return store__run(st, s);
}

int64_t store_node_count_live(store *st, int64_t since)
{
    store_stmt *s =
        store__q(st, "SELECT count(*) FROM nodes WHERE seen_at>=? AND state<>'stopped'");
    if (!s)
        return -1;
    store__bind_int64(s, 1, since);
    int64_t n = store__step(s) == STORE_ROW ? store__col_int64(s, 0) : -1;
    store__reset(s);
    return n;
}

/* ---- Wake-ups ------------------------------------------------------------- */

int store_wait_changes(store *st, int timeout_ms)
{
    return st->drv->wait_changes(st, timeout_ms);
}

/* ---- The claim and the leases ---------------------------------------------- */

int store_task_claim(store *st, const char *from, const char *to, const char *node, int64_t now,
                     int64_t lease_until, int64_t run, int64_t *id)
{
    /* One statement: the row it picks is the row it moves. On PostgreSQL
     * the pick skips a row another node's claim holds (and the outer
     * status check drops a row moved since the pick). */
#define CLAIM_SQL(lock)                                                                            \
    "UPDATE tasks SET status=?2, lease_node=?3, lease_until=?4, updated_at=?5, lease_run=?6"       \
    " WHERE id=(SELECT id FROM tasks WHERE status=?1 AND not_before<=?5"                           \
    " ORDER BY id LIMIT 1" lock ") AND status=?1 RETURNING id"
    static const char plain[] = CLAIM_SQL(""), skip[] = CLAIM_SQL(" FOR UPDATE SKIP LOCKED");
#undef CLAIM_SQL
    store_stmt *s = store__q(st, st->drv->skip_locked ? skip : plain);
    if (!s)
        return -1;
    store__bind_text(s, 1, from);
    store__bind_text(s, 2, to);
    store__bind_text(s, 3, node);
    store__bind_int64(s, 4, lease_until);
    store__bind_int64(s, 5, now);
    store__bind_int64(s, 6, run);
    int rc = store__step(s);
    if (rc == STORE_ROW)
        *id = store__col_int64(s, 0);
    while (rc == STORE_ROW && store__step(s) == STORE_ROW)
        ;
    store__reset(s);
    return rc == STORE_ROW ? PT_FOUND : rc == STORE_DONE ? PT_NONE : -1;
}

int store_task_lock(store *st, int64_t id)
{
    if (!st->drv->skip_locked)
        return 0; /* SQLite: the write lock is the transaction's already */
    store_stmt *s = store__q(st, "SELECT id FROM tasks WHERE id=? FOR UPDATE");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    int rc;
    while ((rc = store__step(s)) == STORE_ROW)
        ;
    store__reset(s);
    return rc == STORE_DONE ? 0 : -1;
}

int store_task_lease(store *st, int64_t id, char *node, int64_t *until)
{
    store_stmt *s = store__q(st, "SELECT lease_node, lease_until FROM tasks WHERE id=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    int rc = store__step(s);
    if (rc == STORE_ROW) {
        copy_col(s, 0, node, 64);
        *until = store__col_int64(s, 1);
    }
    store__reset(s);
    return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

/* The rows the last statement changed (the connection's). */
static int changed(store *st)
{
    return store__changes(st) > 0 ? PT_FOUND : PT_NONE;
}

int store_task_lease_renew(store *st, int64_t id, const char *node, int64_t until, int *cancel)
{
    store_stmt *s = store__q(st, "UPDATE tasks SET lease_until=?3 WHERE id=?1 AND lease_node=?2"
                                   " RETURNING cancel_requested");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_text(s, 2, node);
    store__bind_int64(s, 3, until);
    int rc = store__step(s);
    *cancel = rc == STORE_ROW && store__col_int(s, 0);
    while (rc == STORE_ROW && store__step(s) == STORE_ROW)
        ;
    store__reset(s);
    return rc == STORE_ROW ? PT_FOUND : rc == STORE_DONE ? PT_NONE : -1;
}

int store_task_lease_take(store *st, int64_t id, const char *was, int64_t was_until,
                          const char *node, int64_t until)
{
    store_stmt *s = store__q(st, "UPDATE tasks SET lease_node=?4, lease_until=?5 WHERE id=?1"
                                   " AND coalesce(lease_node, '')=?2 AND lease_until=?3");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_text(s, 2, was ? was : "");
    store__bind_int64(s, 3, was_until);
    store__bind_text(s, 4, node);
    store__bind_int64(s, 5, until);
    return store__run(st, s) < 0 ? -1 : changed(st);
}

int store_task_lease_release(store *st, int64_t id, const char *node, int64_t run)
{
    store_stmt *s = store__q(st, "UPDATE tasks SET lease_node=NULL, lease_until=0, lease_run=0"
                                   " WHERE id=?1 AND lease_node IS NOT NULL"
                                   " AND (?2 IS NULL OR lease_node=?2) AND (?3=0 OR lease_run=?3)");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_text(s, 2, node);
    store__bind_int64(s, 3, run);
    return store__run(st, s);
}

int store_task_commit_leased(store *st, int64_t id, const char *node)
{
    store_stmt *s =
        store__q(st, "UPDATE tasks SET committed=1 WHERE id=?1 AND (?2 IS NULL OR lease_node=?2)");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_text(s, 2, node);
    return store__run(st, s) < 0 ? -1 : changed(st);
}

task_lease *store_task_leases(store *st, const char *const *statuses, size_t nstatuses,
                              const char *node, int leased_only, size_t max, size_t *n)
{
    /* the statuses as a JSON array: one statement whatever their number
     * (matched as the task list's filter is: both engines have LIKE) */
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < nstatuses; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(statuses[i]));
    char *json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    store_stmt *s = store__q(
        st, "SELECT id, status, coalesce(lease_node, ''), lease_until, committed, attempts"
            " FROM tasks WHERE ?1 LIKE '%\"' || status || '\"%'"
            " AND (?2 IS NULL OR lease_node IS NULL OR lease_node<>?2)"
            " AND (?4=0 OR lease_node IS NOT NULL) ORDER BY id LIMIT ?3");
    *n = 0;
    task_lease *v = calloc(max ? max : 1, sizeof(*v));
    if (!s || !v || !json) {
        free(json);
        return v;
    }
    store__bind_text(s, 1, json);
    store__bind_text(s, 2, node);
    store__bind_int64(s, 3, (int64_t)max);
    store__bind_int64(s, 4, leased_only != 0);
    while (*n < max && store__step(s) == STORE_ROW) {
        task_lease *l = &v[(*n)++];
        l->id = store__col_int64(s, 0);
        copy_col(s, 1, l->status, sizeof(l->status));
        copy_col(s, 2, l->node, sizeof(l->node));
        l->until = store__col_int64(s, 3);
        l->committed = store__col_int(s, 4);
        l->attempts = store__col_int(s, 5);
    }
    store__reset(s);
    free(json);
    return v;
}

int64_t store_task_count_leased(store *st, const char *node)
{
    store_stmt *s = store__q(st, "SELECT count(*) FROM tasks WHERE lease_node=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, node);
    int64_t c = store__step(s) == STORE_ROW ? store__col_int64(s, 0) : -1;
    store__reset(s);
    return c;
}
