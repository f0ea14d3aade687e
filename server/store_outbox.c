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
    store__bind_text(s, 5, payload);
    sqlite3_bind_int64(s, 6, now);
    sqlite3_bind_int64(s, 7, now);
    return store__run(st, s);
}

static void row_outbox(sqlite3_stmt *s, outbox_row *o)
{
    memset(o, 0, sizeof(*o));
    o->id = sqlite3_column_int64(s, 0);
    snprintf(o->event_id, sizeof(o->event_id), "%s", (const char *)sqlite3_column_text(s, 1));
    o->account_id = sqlite3_column_int64(s, 2);
    o->task_id = sqlite3_column_int64(s, 3);
    snprintf(o->event, sizeof(o->event), "%s", (const char *)sqlite3_column_text(s, 4));
    o->payload = store__col_text(s, 5);
    o->created_at = sqlite3_column_int64(s, 6);
    o->attempts = sqlite3_column_int(s, 7);
    o->next_at = sqlite3_column_int64(s, 8);
}

#define OUTBOX_COLS                                                                                \
    "id, event_id, account_id, task_id, event, payload, created_at, attempts, next_at"

int store_outbox_due(store *st, int64_t now, const int64_t *busy, size_t nbusy, outbox_row *rows,
                     size_t max, size_t *n)
{
    sqlite3_stmt *s = store__q(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE state='pending'"
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
    sqlite3_stmt *s = store__q(st, "SELECT min(next_at) FROM outbox WHERE state='pending'");
    if (!s)
        return 0;
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return v;
}

int store_outbox_attempt(store *st, int64_t id, int64_t at, int http_status, int64_t latency_ms,
                         const char *error, enum outbox_state state, int64_t next_at)
{
    if (store_begin(st) < 0)
        return -1;
    sqlite3_stmt *s =
        store__q(st, "INSERT INTO deliveries(outbox_id, event_id, task_id, at, http_status,"
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
    store__bind_text(s, 5, error);
    if (store__run(st, s) < 0)
        goto fail;
    /* the states' names are the schema's: spelled here, in SQL, only */
    s = store__q(st, "UPDATE outbox SET attempts=attempts+1, next_at=?3, state=CASE ?2"
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
        row_outbox(s, row);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_outbox_requeue(store *st, int64_t id)
{
    sqlite3_stmt *s = store__q(st, "UPDATE outbox SET state='pending', next_at=? WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, pt_wall_ms());
    sqlite3_bind_int64(s, 2, id);
    return store__run(st, s);
}

/* The delivery rows of s (event_id, at, http_status, latency_ms, error,
 * event, task_id) as a JSON array; with_task adds each one's task_id. */
static cJSON *delivery_rows(sqlite3_stmt *s, int with_task)
{
    cJSON *arr = cJSON_CreateArray();
    while (sqlite3_step(s) == SQLITE_ROW) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "event_id", (const char *)sqlite3_column_text(s, 0));
        cJSON_AddStringToObject(d, "event", (const char *)sqlite3_column_text(s, 5));
        if (with_task)
            cJSON_AddNumberToObject(d, "task_id", (double)sqlite3_column_int64(s, 6));
        store_json_time(d, "at", sqlite3_column_int64(s, 1));
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

cJSON *store_deliveries(store *st, int64_t taskid)
{
    sqlite3_stmt *s = store__q(st, "SELECT d.event_id, d.at, d.http_status, d.latency_ms, d.error,"
                                   " o.event, d.task_id FROM deliveries d"
                                   " JOIN outbox o ON o.id=d.outbox_id"
                                   " WHERE d.task_id=? ORDER BY d.id");
    if (!s)
        return cJSON_CreateArray();
    sqlite3_bind_int64(s, 1, taskid);
    return delivery_rows(s, 0);
}

cJSON *store_account_deliveries(store *st, int64_t acct, int limit)
{
    sqlite3_stmt *s = store__q(st, "SELECT d.event_id, d.at, d.http_status, d.latency_ms, d.error,"
                                   " o.event, d.task_id FROM deliveries d"
                                   " JOIN outbox o ON o.id=d.outbox_id"
                                   " WHERE o.account_id=? ORDER BY d.id DESC LIMIT ?");
    if (!s)
        return cJSON_CreateArray();
    sqlite3_bind_int64(s, 1, acct);
    sqlite3_bind_int(s, 2, limit);
    return delivery_rows(s, 1);
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
