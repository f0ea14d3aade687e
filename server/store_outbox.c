/*
 * store_outbox.c - the store's webhook outbox: one row per event, written in
 * the same transaction as the task's final status, and one deliveries row
 * per attempt. See store.h. It never sends anything (server/webhook.c does).
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/timeutil.h"

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
    store_stmt *s =
        store__q(st, "INSERT INTO outbox(event_id, account_id, task_id, event, payload,"
                     " created_at, next_at) VALUES(?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    int64_t now = pt_wall_ms();
    store__bind_text(s, 1, event_id);
    store__bind_int64(s, 2, acct);
    if (taskid)
        store__bind_int64(s, 3, taskid);
    else
        store__bind_null(s, 3);
    store__bind_text(s, 4, event);
    char aad[96];
    snprintf(aad, sizeof(aad), "outbox event=%s", event_id);
    if (store__bind_sealed(st, s, 5, acct, aad, payload) < 0)
        return -1;
    store__bind_int64(s, 6, now);
    store__bind_int64(s, 7, now);
    return store__run(st, s);
}

static void row_outbox(store *st, store_stmt *s, outbox_row *o)
{
    memset(o, 0, sizeof(*o));
    o->id = store__col_int64(s, 0);
    snprintf(o->event_id, sizeof(o->event_id), "%s", store__col_str(s, 1));
    o->account_id = store__col_int64(s, 2);
    o->task_id = store__col_int64(s, 3);
    snprintf(o->event, sizeof(o->event), "%s", store__col_str(s, 4));
    char aad[96];
    snprintf(aad, sizeof(aad), "outbox event=%s", o->event_id);
    o->payload = store__col_opened(st, s, 5, o->account_id, aad);
    o->created_at = store__col_int64(s, 6);
    o->attempts = store__col_int(s, 7);
    o->next_at = store__col_int64(s, 8);
    o->round_start = store__col_int(s, 9);
}

#define OUTBOX_COLS                                                                                \
    "id, event_id, account_id, task_id, event, payload, created_at, attempts, next_at, "          \
    "round_start"

/* Claims row id for node if no other node's claim runs: 1 won, 0 not. */
static int claim_row(store *st, int64_t id, const char *node, int64_t now, int64_t claim_until)
{
    store_stmt *c = store__q(st, "UPDATE outbox SET claimed_by=?2, claim_until=?4 WHERE id=?1"
                                   " AND state='pending' AND (claimed_by IS NULL OR claimed_by=?2"
                                   " OR claim_until<?3)");
    if (!c)
        return -1;
    store__bind_int64(c, 1, id);
    store__bind_text(c, 2, node);
    store__bind_int64(c, 3, now);
    store__bind_int64(c, 4, claim_until);
    if (store__run(st, c) < 0)
        return -1;
    return store__changes(st) > 0;
}

int store_outbox_due(store *st, const char *node, int64_t now, int64_t claim_until,
                     const int64_t *busy, size_t nbusy, size_t per_account, outbox_row *rows,
                     size_t max, size_t *n)
{
    /* the oldest per_account of each account's due rows, so one account's
     * backlog cannot fill the answer; a row another node claimed (and
     * whose claim runs) is that node's to send. Read first (no lock when
     * nothing is due), then each row claimed by a statement that checks
     * the claim again: of two nodes that read one row, one wins it (on
     * both backends; the per-account window function cannot take FOR
     * UPDATE SKIP LOCKED, so PostgreSQL claims as SQLite does). */
    store_stmt *s = store__q(
        st, "SELECT " OUTBOX_COLS " FROM (SELECT *, row_number() OVER (PARTITION BY account_id"
            " ORDER BY next_at, id) AS rk FROM outbox WHERE state='pending' AND next_at<=?1"
            " AND (claimed_by IS NULL OR claimed_by=?4 OR claim_until<?1)) AS due"
            " WHERE rk<=?3 ORDER BY next_at, id LIMIT ?2");
    *n = 0;
    if (!s)
        return -1;
    store__bind_int64(s, 1, now);
    store__bind_int64(s, 2, (int64_t)(max + nbusy));
    store__bind_int64(s, 3, (int64_t)per_account);
    store__bind_text(s, 4, node);
    while (*n < max && store__step(s) == STORE_ROW) {
        int64_t id = store__col_int64(s, 0);
        int skip = 0;
        for (size_t i = 0; i < nbusy && !skip; i++)
            skip = busy[i] == id;
        if (!skip)
            row_outbox(st, s, &rows[(*n)++]);
    }
    store__reset(s);
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
    store_stmt *s = store__q(st, "SELECT DISTINCT claimed_by FROM outbox WHERE state='pending'"
                                   " AND claimed_by IS NOT NULL AND claim_until>=?");
    size_t n = 0;
    if (!s)
        return 0;
    store__bind_int64(s, 1, now);
    while (n < max && store__step(s) == STORE_ROW) {
        const char *t = store__col_str(s, 0);
        snprintf(ids[n++], 64, "%s", t ? t : "");
    }
    store__reset(s);
    return n;
}

int store_outbox_release(store *st, const char *node)
{
    store_stmt *s = store__q(st, "UPDATE outbox SET claimed_by=NULL, claim_until=0"
                                   " WHERE claimed_by=? AND state='pending'");
    if (!s)
        return -1;
    store__bind_text(s, 1, node);
    return store__run(st, s);
}

int64_t store_outbox_next_at(store *st)
{
    store_stmt *s = store__q(st, "SELECT min(next_at) FROM outbox WHERE state='pending'");
    if (!s)
        return 0;
    int64_t v = store__step(s) == STORE_ROW ? store__col_int64(s, 0) : 0;
    store__reset(s);
    return v;
}

int store_outbox_attempt(store *st, int64_t id, int64_t at, int http_status, int64_t latency_ms,
                         const char *error, enum outbox_state state, int64_t next_at,
                         const outbox_attempt *rec)
{
    if (store_begin(st) < 0)
        return -1;
    store_stmt *s = store__q(
        st, "INSERT INTO deliveries(outbox_id, event_id, task_id, at, http_status,"
            " latency_ms, error, attempt, url, reply) SELECT id, event_id, task_id, ?2, ?3, ?4, ?5,"
            " coalesce(?6, attempts + 1), ?7, ?8 FROM outbox WHERE id=?1");
    if (!s)
        goto fail;
    store__bind_int64(s, 1, id);
    store__bind_int64(s, 2, at);
    if (http_status)
        store__bind_int64(s, 3, http_status);
    else
        store__bind_null(s, 3);
    store__bind_int64(s, 4, latency_ms);
    store__bind_text(s, 5, error);
    if (rec && rec->attempt > 0)
        store__bind_int64(s, 6, rec->attempt);
    else
        store__bind_null(s, 6);
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
    store__bind_int64(s, 1, id);
    store__bind_int64(s, 2, (int)state);
    store__bind_int64(s, 3, next_at);
    if (store__run(st, s) < 0)
        goto fail;
    return store_commit(st);
fail:
    store_rollback(st);
    return -1;
}

int store_outbox_for_task(store *st, int64_t taskid, outbox_row *row)
{
    store_stmt *s = store__q(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE task_id=?"
                                   " AND event='task_finished' ORDER BY id DESC LIMIT 1");
    if (!s)
        return -1;
    store__bind_int64(s, 1, taskid);
    int rc = store__step(s);
    if (rc == STORE_ROW)
        row_outbox(st, s, row);
    store__reset(s);
    return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

int store_outbox_requeue(store *st, int64_t id)
{
    store_stmt *s = store__q(
        st, "UPDATE outbox SET state='pending', next_at=?, round_start=attempts WHERE id=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, pt_wall_ms());
    store__bind_int64(s, 2, id);
    return store__run(st, s);
}

int store_outbox_recover(store *st, int64_t acct, int64_t since, int64_t *n)
{
    *n = 0;
    store_stmt *s = store__q(
        st, "UPDATE outbox SET state='pending', next_at=?3, round_start=attempts"
            " WHERE account_id=?1 AND state IN ('dead', 'disabled', 'undeliverable')"
            " AND length(payload)>0" /* a purged task's event is not sent again */
            " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.outbox_id=outbox.id AND d.at>=?2)");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_int64(s, 2, since);
    store__bind_int64(s, 3, pt_wall_ms());
    if (store__run(st, s) < 0)
        return -1;
    *n = store__changes(st);
    return 0;
}

#define ATTEMPT_COLS                                                                               \
    "d.event_id, d.at, d.http_status, d.latency_ms, d.error, o.event, d.attempt, d.url, d.reply,"  \
    " d.task_id"

/* One attempt's record as clients see it. */
static cJSON *row_attempt(store_stmt *s)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "event_id", store__col_str(s, 0));
    cJSON_AddStringToObject(d, "event", store__col_str(s, 5));
    if (store__col_null(s, 9))
        cJSON_AddNullToObject(d, "task_id");
    else
        cJSON_AddNumberToObject(d, "task_id", (double)store__col_int64(s, 9));
    if (store__col_null(s, 6))
        cJSON_AddNullToObject(d, "attempt");
    else
        cJSON_AddNumberToObject(d, "attempt", store__col_int(s, 6));
    store_json_time(d, "at", store__col_int64(s, 1));
    const char *url = store__col_str(s, 7);
    cJSON_AddItemToObject(d, "url", url ? cJSON_CreateString(url) : cJSON_CreateNull());
    if (store__col_null(s, 2))
        cJSON_AddNullToObject(d, "http_status");
    else
        cJSON_AddNumberToObject(d, "http_status", store__col_int(s, 2));
    cJSON_AddNumberToObject(d, "latency_ms", (double)store__col_int64(s, 3));
    const char *e = store__col_str(s, 4);
    cJSON_AddItemToObject(d, "error", e ? cJSON_CreateString(e) : cJSON_CreateNull());
    const char *reply = store__col_str(s, 8);
    cJSON_AddItemToObject(d, "reply", reply ? cJSON_CreateString(reply) : cJSON_CreateNull());
    return d;
}

cJSON *store_deliveries(store *st, int64_t taskid)
{
    cJSON *arr = cJSON_CreateArray();
    store_stmt *s = store__q(st, "SELECT " ATTEMPT_COLS " FROM deliveries d JOIN outbox o"
                                   " ON o.id=d.outbox_id WHERE d.task_id=? ORDER BY d.id");
    if (!s)
        return arr;
    store__bind_int64(s, 1, taskid);
    while (store__step(s) == STORE_ROW)
        cJSON_AddItemToArray(arr, row_attempt(s));
    store__reset(s);
    return arr;
}

cJSON *store_account_attempts(store *st, int64_t acct, int max)
{
    cJSON *arr = cJSON_CreateArray();
    store_stmt *s = store__q(st, "SELECT " ATTEMPT_COLS " FROM deliveries d JOIN outbox o"
                                   " ON o.id=d.outbox_id WHERE o.account_id=? ORDER BY d.id DESC"
                                   " LIMIT ?");
    if (!s)
        return arr;
    store__bind_int64(s, 1, acct);
    store__bind_int64(s, 2, max);
    while (store__step(s) == STORE_ROW)
        cJSON_AddItemToArray(arr, row_attempt(s));
    store__reset(s);
    return arr;
}

cJSON *store_outbox_counts(store *st)
{
    cJSON *o = cJSON_CreateObject();
    store_stmt *s = store__q(st, "SELECT state, count(*) FROM outbox GROUP BY state");
    while (s && store__step(s) == STORE_ROW)
        cJSON_AddNumberToObject(o, store__col_str(s, 0),
                                (double)store__col_int64(s, 1));
    if (s)
        store__reset(s);
    s = store__q(st, "SELECT count(*), coalesce(sum(CASE WHEN http_status IS NULL OR"
                     " http_status<200 OR http_status>299 THEN 1 ELSE 0 END), 0) FROM deliveries");
    if (s && store__step(s) == STORE_ROW) {
        cJSON_AddNumberToObject(o, "attempts", (double)store__col_int64(s, 0));
        cJSON_AddNumberToObject(o, "failures", (double)store__col_int64(s, 1));
    }
    if (s)
        store__reset(s);
    return o;
}
