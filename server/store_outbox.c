/*
 * store_outbox.c - the store's webhook outbox: one row per event, written in
 * the same transaction as the task's final status, and one deliveries row
 * per attempt. See store.h. It never sends anything (server/webhook.c does).
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/timeutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    sqlite3_stmt *s =
        store__q(st, "INSERT INTO outbox(event_id, account_id, task_id, event, payload,"
                     " created_at, next_at) VALUES(?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    int64_t now = pt_wall_ms();
    store__bind_text(s, 1, event_id);
    sqlite3_bind_int64(s, 2, acct);
    if (taskid)
        sqlite3_bind_int64(s, 3, taskid);
    else
        sqlite3_bind_null(s, 3);
    store__bind_text(s, 4, event);
    char aad[96];
    snprintf(aad, sizeof(aad), "outbox event=%s", event_id);
    if (store__bind_sealed(st, s, 5, acct, aad, payload) < 0)
        return -1;
    sqlite3_bind_int64(s, 6, now);
    sqlite3_bind_int64(s, 7, now);
    return store__run(st, s);
}

static void row_outbox(store *st, sqlite3_stmt *s, outbox_row *o)
{
    memset(o, 0, sizeof(*o));
    o->id = sqlite3_column_int64(s, 0);
    snprintf(o->event_id, sizeof(o->event_id), "%s", (const char *)sqlite3_column_text(s, 1));
    o->account_id = sqlite3_column_int64(s, 2);
    o->task_id = sqlite3_column_int64(s, 3);
    snprintf(o->event, sizeof(o->event), "%s", (const char *)sqlite3_column_text(s, 4));
    char aad[96];
    snprintf(aad, sizeof(aad), "outbox event=%s", o->event_id);
    o->payload = store__col_opened(st, s, 5, o->account_id, aad);
    o->created_at = sqlite3_column_int64(s, 6);
    o->attempts = sqlite3_column_int(s, 7);
    o->next_at = sqlite3_column_int64(s, 8);
    o->round_start = sqlite3_column_int(s, 9);
}

#define OUTBOX_COLS                                                                                \
    "id, event_id, account_id, task_id, event, payload, created_at, attempts, next_at, "          \
    "round_start"

/* Claims row id for node if no other node's claim runs: 1 won, 0 not. */
static int claim_row(store *st, int64_t id, const char *node, int64_t now, int64_t claim_until)
{
    sqlite3_stmt *c = store__q(st, "UPDATE outbox SET claimed_by=?2, claim_until=?4 WHERE id=?1"
                                   " AND state='pending' AND (claimed_by IS NULL OR claimed_by=?2"
                                   " OR claim_until<?3)");
    if (!c)
        return -1;
    sqlite3_bind_int64(c, 1, id);
    store__bind_text(c, 2, node);
    sqlite3_bind_int64(c, 3, now);
    sqlite3_bind_int64(c, 4, claim_until);
    if (store__run(st, c) < 0)
        return -1;
    return sqlite3_changes(st->db) > 0;
}

int store_outbox_due(store *st, const char *node, int64_t now, int64_t claim_until,
                     const int64_t *busy, size_t nbusy, size_t per_account, outbox_row *rows,
                     size_t max, size_t *n)
{
    /* the oldest per_account of each account's due rows, so one account's
     * backlog cannot fill the answer; a row another node claimed (and
     * whose claim runs) is that node's to send. Read first (no lock when
     * nothing is due), then each row claimed by a statement that checks
     * the claim again: of two nodes that read one row, one wins it.
     * PostgreSQL: one UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
     * LOCKED) RETURNING does both. */
    sqlite3_stmt *s = store__q(
        st, "SELECT " OUTBOX_COLS " FROM (SELECT *, row_number() OVER (PARTITION BY account_id"
            " ORDER BY next_at, id) AS rk FROM outbox WHERE state='pending' AND next_at<=?1"
            " AND (claimed_by IS NULL OR claimed_by=?4 OR claim_until<?1))"
            " WHERE rk<=?3 ORDER BY next_at, id LIMIT ?2");
    *n = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)(max + nbusy));
    sqlite3_bind_int64(s, 3, (sqlite3_int64)per_account);
    store__bind_text(s, 4, node);
    while (*n < max && sqlite3_step(s) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        int skip = 0;
        for (size_t i = 0; i < nbusy && !skip; i++)
            skip = busy[i] == id;
        if (!skip)
            row_outbox(st, s, &rows[(*n)++]);
    }
    sqlite3_reset(s);
    if (!*n)
        return 0;
    int rc = store_begin(st);
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        int won = rc == 0 ? claim_row(st, rows[i].id, node, now, claim_until) : 0;
        if (won < 0)
            rc = -1;
        if (won == 1 && rc == 0)
            rows[kept++] = rows[i];
        else
            outbox_row_free(&rows[i]);
    }
    if (rc == 0 && store_commit(st) == 0) {
        *n = kept;
        return 0;
    }
    store_rollback(st);
    for (size_t i = 0; i < kept; i++)
        outbox_row_free(&rows[i]);
    *n = 0;
    return -1;
}

size_t store_outbox_claimers(store *st, int64_t now, char (*ids)[64], size_t max)
{
    sqlite3_stmt *s = store__q(st, "SELECT DISTINCT claimed_by FROM outbox WHERE state='pending'"
                                   " AND claimed_by IS NOT NULL AND claim_until>=?");
    size_t n = 0;
    if (!s)
        return 0;
    sqlite3_bind_int64(s, 1, now);
    while (n < max && sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(ids[n++], 64, "%s", t ? (const char *)t : "");
    }
    sqlite3_reset(s);
    return n;
}

int store_outbox_release(store *st, const char *node)
{
    sqlite3_stmt *s = store__q(st, "UPDATE outbox SET claimed_by=NULL, claim_until=0"
                                   " WHERE claimed_by=? AND state='pending'");
    if (!s)
        return -1;
    store__bind_text(s, 1, node);
    return store__run(st, s);
}

int64_t store_outbox_next_at(store *st)
{
    sqlite3_stmt *s = store__q(st, "SELECT min(next_at) FROM outbox WHERE state='pending'");
    if (!s)
        return 0;
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return v;
}

int store_outbox_attempt(store *st, int64_t id, int64_t at, int http_status, int64_t latency_ms,
                         const char *error, enum outbox_state state, int64_t next_at,
                         const outbox_attempt *rec)
{
    if (store_begin(st) < 0)
        return -1;
    sqlite3_stmt *s = store__q(
        st, "INSERT INTO deliveries(outbox_id, event_id, task_id, at, http_status,"
            " latency_ms, error, attempt, url, reply) SELECT id, event_id, task_id, ?2, ?3, ?4, ?5,"
            " coalesce(?6, attempts + 1), ?7, ?8 FROM outbox WHERE id=?1");
    if (!s)
        goto fail;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    if (http_status)
        sqlite3_bind_int(s, 3, http_status);
    else
        sqlite3_bind_null(s, 3);
    sqlite3_bind_int64(s, 4, latency_ms);
    store__bind_text(s, 5, error);
    if (rec && rec->attempt > 0)
        sqlite3_bind_int(s, 6, rec->attempt);
    else
        sqlite3_bind_null(s, 6);
    store__bind_text(s, 7, rec ? rec->url : NULL);
    store__bind_text(s, 8, rec ? rec->reply : NULL);
    if (store__run(st, s) < 0)
        goto fail;
    /* the states' names are the schema's: spelled here, in SQL, only */
    s = store__q(st, "UPDATE outbox SET attempts=attempts+1, next_at=?3, claimed_by=NULL,"
                     " claim_until=0, state=CASE ?2"
                     " WHEN 1 THEN 'delivered' WHEN 2 THEN 'dead' WHEN 3 THEN 'disabled'"
                     " WHEN 4 THEN 'undeliverable' ELSE 'pending' END WHERE id=?1");
    if (!s)
        goto fail;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, (int)state);
    sqlite3_bind_int64(s, 3, next_at);
    if (store__run(st, s) < 0)
        goto fail;
    return store_commit(st);
fail:
    store_rollback(st);
    return -1;
}

int store_outbox_for_task(store *st, int64_t taskid, outbox_row *row)
{
    sqlite3_stmt *s = store__q(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE task_id=?"
                                   " AND event='task_finished' ORDER BY id DESC LIMIT 1");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, taskid);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        row_outbox(st, s, row);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_outbox_requeue(store *st, int64_t id)
{
    sqlite3_stmt *s = store__q(
        st, "UPDATE outbox SET state='pending', next_at=?, round_start=attempts WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, pt_wall_ms());
    sqlite3_bind_int64(s, 2, id);
    return store__run(st, s);
}

int store_outbox_recover(store *st, int64_t acct, int64_t since, int64_t *n)
{
    *n = 0;
    sqlite3_stmt *s = store__q(
        st, "UPDATE outbox SET state='pending', next_at=?3, round_start=attempts"
            " WHERE account_id=?1 AND state IN ('dead', 'disabled', 'undeliverable')"
            " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.outbox_id=outbox.id AND d.at>=?2)");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, acct);
    sqlite3_bind_int64(s, 2, since);
    sqlite3_bind_int64(s, 3, pt_wall_ms());
    if (store__run(st, s) < 0)
        return -1;
    *n = sqlite3_changes(st->db);
    return 0;
}

#define ATTEMPT_COLS                                                                               \
    "d.event_id, d.at, d.http_status, d.latency_ms, d.error, o.event, d.attempt, d.url, d.reply,"  \
    " d.task_id"

/* One attempt's record as clients see it. */
static cJSON *row_attempt(sqlite3_stmt *s)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "event_id", (const char *)sqlite3_column_text(s, 0));
    cJSON_AddStringToObject(d, "event", (const char *)sqlite3_column_text(s, 5));
    if (sqlite3_column_type(s, 9) == SQLITE_NULL)
        cJSON_AddNullToObject(d, "task_id");
    else
        cJSON_AddNumberToObject(d, "task_id", (double)sqlite3_column_int64(s, 9));
    if (sqlite3_column_type(s, 6) == SQLITE_NULL)
        cJSON_AddNullToObject(d, "attempt");
    else
        cJSON_AddNumberToObject(d, "attempt", sqlite3_column_int(s, 6));
    store_json_time(d, "at", sqlite3_column_int64(s, 1));
    const char *url = (const char *)sqlite3_column_text(s, 7);
    cJSON_AddItemToObject(d, "url", url ? cJSON_CreateString(url) : cJSON_CreateNull());
    if (sqlite3_column_type(s, 2) == SQLITE_NULL)
        cJSON_AddNullToObject(d, "http_status");
    else
        cJSON_AddNumberToObject(d, "http_status", sqlite3_column_int(s, 2));
    cJSON_AddNumberToObject(d, "latency_ms", (double)sqlite3_column_int64(s, 3));
    const char *e = (const char *)sqlite3_column_text(s, 4);
    cJSON_AddItemToObject(d, "error", e ? cJSON_CreateString(e) : cJSON_CreateNull());
    const char *reply = (const char *)sqlite3_column_text(s, 8);
    cJSON_AddItemToObject(d, "reply", reply ? cJSON_CreateString(reply) : cJSON_CreateNull());
    return d;
}

cJSON *store_deliveries(store *st, int64_t taskid)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *s = store__q(st, "SELECT " ATTEMPT_COLS " FROM deliveries d JOIN outbox o"
                                   " ON o.id=d.outbox_id WHERE d.task_id=? ORDER BY d.id");
    if (!s)
        return arr;
    sqlite3_bind_int64(s, 1, taskid);
    while (sqlite3_step(s) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, row_attempt(s));
    sqlite3_reset(s);
    return arr;
}

cJSON *store_account_attempts(store *st, int64_t acct, int max)
{
    cJSON *arr = cJSON_CreateArray();
    sqlite3_stmt *s = store__q(st, "SELECT " ATTEMPT_COLS " FROM deliveries d JOIN outbox o"
                                   " ON o.id=d.outbox_id WHERE o.account_id=? ORDER BY d.id DESC"
                                   " LIMIT ?");
    if (!s)
        return arr;
    sqlite3_bind_int64(s, 1, acct);
    sqlite3_bind_int(s, 2, max);
    while (sqlite3_step(s) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, row_attempt(s));
    sqlite3_reset(s);
    return arr;
}

cJSON *store_outbox_counts(store *st)
{
    cJSON *o = cJSON_CreateObject();
    sqlite3_stmt *s = store__q(st, "SELECT state, count(*) FROM outbox GROUP BY state");
    while (s && sqlite3_step(s) == SQLITE_ROW)
        cJSON_AddNumberToObject(o, (const char *)sqlite3_column_text(s, 0),
                                (double)sqlite3_column_int64(s, 1));
    if (s)
        sqlite3_reset(s);
    s = store__q(st, "SELECT count(*), coalesce(sum(http_status IS NULL OR http_status<200 OR"
                     " http_status>299), 0) FROM deliveries");
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        cJSON_AddNumberToObject(o, "attempts", (double)sqlite3_column_int64(s, 0));
        cJSON_AddNumberToObject(o, "failures", (double)sqlite3_column_int64(s, 1));
    }
    if (s)
        sqlite3_reset(s);
    return o;
}
