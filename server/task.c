/*
 * task.c - a task's life: the status names (spelled here and nowhere else),
 * the moves between statuses, and the task object clients see. See task.h
 * for the diagram. A move is one store transaction; this file never wakes a
 * thread itself (the context's `moved` does) and never touches a browser.
 */
#define _GNU_SOURCE
#include "server/task.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[TASK_NSTATUS] = {
    [TASK_PENDING] = "pending",
    [TASK_DISPATCHING] = "dispatching",
    [TASK_RUNNING] = "running",
    [TASK_WAITING_FOR_INPUT] = "waiting_for_input",
    [TASK_PENDING_REVIEW] = "pending_review",
    [TASK_COMPLETED] = "completed",
    [TASK_COMPLETED_WITH_ISSUES] = "completed_with_issues",
    [TASK_FAILED] = "failed",
};

static const char *const type_names[TASK_NTYPES] = {
    "submit_prior_authorization", "check_eligibility", "submit_claim", "submit_appeal"};

const char *task_status_name(enum task_status s)
{
    return (unsigned)s < TASK_NSTATUS ? status_names[s] : "unknown";
}

int task_status_parse(const char *name, enum task_status *s)
{
    for (int i = 0; name && i < TASK_NSTATUS; i++)
        if (!strcmp(name, status_names[i])) {
            *s = (enum task_status)i;
            return PT_FOUND;
        }
    return PT_NONE;
}

enum task_status task_status_of(const task *t)
{
    enum task_status s = TASK_FAILED;
    task_status_parse(t->status, &s);
    return s;
}

int task_status_is_final(enum task_status s)
{
    return s == TASK_COMPLETED || s == TASK_COMPLETED_WITH_ISSUES || s == TASK_FAILED;
}

const char *task_type_name(size_t i)
{
    return i < TASK_NTYPES ? type_names[i] : NULL;
}

int task_type_known(const char *type)
{
    for (size_t i = 0; type && i < TASK_NTYPES; i++)
        if (!strcmp(type, type_names[i]))
            return 1;
    return 0;
}

const char *task_types_text(void)
{
    return "submit_prior_authorization, check_eligibility, submit_claim, submit_appeal";
}

static void add_string_or_null(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* question, review and outputs: what the task asks, what a person is to
 * confirm, what the run found. */
static void add_client_side(cJSON *o, const task *t)
{
    enum task_status s = task_status_of(t);
    if (s == TASK_WAITING_FOR_INPUT && t->ask_name) {
        cJSON *q = cJSON_AddObjectToObject(o, "question");
        cJSON_AddStringToObject(q, "name", t->ask_name);
        cJSON_AddStringToObject(q, "prompt", t->ask_prompt ? t->ask_prompt : "");
    } else {
        cJSON_AddNullToObject(o, "question");
    }
    if (s == TASK_PENDING_REVIEW) {
        cJSON *r = cJSON_AddObjectToObject(o, "review");
        const char *p = t->review_prompt ? t->review_prompt : t->notes;
        cJSON_AddStringToObject(r, "prompt", p ? p : "");
    } else {
        cJSON_AddNullToObject(o, "review");
    }
    cJSON *out = t->outputs ? cJSON_Parse(t->outputs) : NULL;
    if (!cJSON_IsObject(out)) {
        cJSON_Delete(out);
        out = cJSON_CreateObject();
    }
    cJSON_AddItemToObject(o, "outputs", out);
}

cJSON *task_to_json(const task *t)
{
    cJSON *o = cJSON_CreateObject();
    char handler[80];
    snprintf(handler, sizeof(handler), "%s_%d", t->type, t->sop_version);
    cJSON_AddNumberToObject(o, "id", (double)t->id);
    cJSON_AddNumberToObject(o, "accountId", (double)t->account_id);
    cJSON_AddNumberToObject(o, "task_number", (double)t->task_number);
    cJSON_AddStringToObject(o, "status", t->status);
    cJSON_AddStringToObject(o, "handler", handler);
    cJSON_AddStringToObject(o, "title", t->title ? t->title : "");
    cJSON_AddStringToObject(o, "instructions", t->instructions ? t->instructions : "");
    if (t->trajectory_id)
        cJSON_AddNumberToObject(o, "trajectory_id", (double)t->trajectory_id);
    else
        cJSON_AddNullToObject(o, "trajectory_id");
    store_json_time(o, "startedAt", t->started_at);
    store_json_time(o, "completedAt", t->completed_at);
    store_json_time(o, "failedAt", t->failed_at);
    add_string_or_null(o, "notes", t->notes);
    store_json_time(o, "createdAt", t->created_at);
    store_json_time(o, "updatedAt", t->updated_at);
    cJSON_AddStringToObject(o, "type", t->type);
    add_client_side(o, t);
    return o;
}

/* ---- Moves --------------------------------------------------------------- */

#define BIT(s) (1u << (s))
#define OPEN_STATUSES                                                                              \
    (BIT(TASK_PENDING) | BIT(TASK_DISPATCHING) | BIT(TASK_RUNNING) | BIT(TASK_WAITING_FOR_INPUT) | \
     BIT(TASK_PENDING_REVIEW))
#define MID_RUN                                                                                    \
    (BIT(TASK_DISPATCHING) | BIT(TASK_RUNNING) | BIT(TASK_WAITING_FOR_INPUT) |                     \
     BIT(TASK_PENDING_REVIEW))

/* The webhook event of a move, in its transaction: task_finished for a
 * final status; task_waiting when the task now needs a person (a question
 * or a review) and its account asked for that event. */
static int add_outbox_row(store *st, int64_t id, int64_t acct, enum task_status to)
{
    const char *event = NULL;
    if (task_status_is_final(to)) {
        event = "task_finished";
    } else if (to == TASK_WAITING_FOR_INPUT || to == TASK_PENDING_REVIEW) {
        account a;
        if (store_account_by_id(st, acct, &a) != 1)
            return -1;
        if (a.webhook_events & STORE_EVENT_WAITING)
            event = "task_waiting";
        account_free(&a);
    }
    if (!event)
        return 0;
    task done;
    if (store_task_get(st, 0, id, &done) != 1)
        return -1;
    cJSON *data = task_to_json(&done);
    char *payload = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    task_free(&done);
    char eid[40] = "evt_";
    pt_random_hex(eid + 4, 32);
    int rc = payload ? store_outbox_add(st, acct, id, event, eid, payload) : -1;
    free(payload);
    return rc;
}

/* Whether cx may move task id: the API may (no node); a node only while
 * the task's lease is its own (in the move's transaction). */
static int leased_to(task_ctx *cx, int64_t id)
{
    if (!cx->node)
        return 1;
    char holder[64] = "";
    int64_t until = 0;
    if (store_task_lease(cx->st, id, holder, &until) != 1)
        return 0;
    if (!strcmp(holder, cx->node))
        return 1;
    PT_WARN("task", "task %lld is no longer this node's (%s): its move is dropped", (long long)id,
            holder[0] ? "another node took it over" : "it was moved meanwhile");
    return 0;
}

/* Moves task id from one of the statuses in `from` (a set of BIT()s; a final
 * status is never in it) to `to`, with its timestamps, event and (final)
 * outbox row, in one transaction. */
static int move(task_ctx *cx, int64_t id, unsigned from, enum task_status to, const char *notes,
                const char *event_note)
{
    store *st = cx->st;
    int64_t now = pt_wall_ms();
    if (store_begin(st) < 0)
        return PT_EFAIL;
    if (store_task_lock(st, id) < 0) { /* a claim on another node waits, or we wait for it */
        store_rollback(st);
        return PT_EFAIL;
    }
    task t;
    int found = store_task_get(st, 0, id, &t);
    if (found != 1) {
        store_rollback(st);
        return found < 0 ? PT_EFAIL : PT_NONE;
    }
    enum task_status was = task_status_of(&t);
    if (task_status_is_final(was) || !(from & BIT(was)) || !leased_to(cx, id)) {
        task_free(&t);
        store_rollback(st);
        return PT_NONE;
    }
    unsigned stamps =
        (to == TASK_RUNNING ? STORE_STAMP_STARTED : 0) |
        (to == TASK_COMPLETED || to == TASK_COMPLETED_WITH_ISSUES ? STORE_STAMP_COMPLETED : 0) |
        (to == TASK_FAILED ? STORE_STAMP_FAILED : 0);
    if (store_task_set_status(st, id, task_status_name(to), now, notes, stamps) < 0 ||
        store_task_event_add(st, id, now, t.status, task_status_name(to), event_note) < 0 ||
        add_outbox_row(st, id, t.account_id, to) < 0)
        goto fail;
    /* pending and final: no worker holds it any more */
    if ((to == TASK_PENDING || task_status_is_final(to)) &&
        store_task_lease_release(st, id, NULL, 0) < 0)
        goto fail;
    task_free(&t);
    return store_commit(st) < 0 ? PT_EFAIL : PT_FOUND;
fail:
    task_free(&t);
    store_rollback(st);
    return PT_EFAIL;
}

/* A move that tells the context (and the log) when it happened. */
static int move_told(task_ctx *cx, int64_t id, unsigned from, enum task_status to,
                     const char *notes, const char *event_note)
{
    int rc = move(cx, id, from, to, notes, event_note);
    if (rc == PT_FOUND) {
        PT_INFO("task", "task %lld: %s", (long long)id, task_status_name(to));
        if (cx->moved)
            cx->moved(cx->ud, id, to);
    }
    return rc;
}

int task_create(task_ctx *cx, const task_new *n, task *t, char *err)
{
    return store_task_create(cx->st, n, task_status_name(TASK_PENDING), t, err);
}

int task_dispatch(task_ctx *cx, int64_t *id)
{
    store *st = cx->st;
    int64_t cand = 0, now = pt_wall_ms();
    const char *from = task_status_name(TASK_PENDING), *to = task_status_name(TASK_DISPATCHING);
    /* a read first: an empty queue costs no write lock */
    int got = store_task_oldest(st, from, now, &cand);
    if (got != PT_FOUND)
        return got;
    if (store_begin_rows(st) < 0) /* the claim locks its row, not the store */
        return PT_EFAIL;
    int64_t lease = cx->lease_ms > 0 ? cx->lease_ms : 30000;
    uint64_t run = 0;
    pt_random(&run, sizeof(run));
    cx->run = (int64_t)(run >> 1) + 1; /* positive, never 0 ("any") */
    got = store_task_claim(st, from, to, cx->node, now, now + lease, cx->run, id);
    char note[128];
    snprintf(note, sizeof(note), "claimed by a worker%s%s", cx->node ? " of node " : "",
             cx->node ? cx->node : "");
    if (got == PT_FOUND && store_task_event_add(st, *id, now, from, to, note) < 0)
        got = PT_EFAIL;
    if (got != PT_FOUND) {
        store_rollback(st);
        return got;
    }
    return store_commit(st) < 0 ? PT_EFAIL : PT_FOUND;
}

int task_start(task_ctx *cx, int64_t id)
{
    return move_told(cx, id, BIT(TASK_DISPATCHING) | BIT(TASK_PENDING), TASK_RUNNING, NULL,
                     "running");
}

int task_wait_for_input(task_ctx *cx, int64_t id, const char *event_note)
{
    return move_told(cx, id, BIT(TASK_RUNNING), TASK_WAITING_FOR_INPUT, NULL, event_note);
}

int task_hold_for_review(task_ctx *cx, int64_t id, const char *notes, const char *event_note)
{
    return move_told(cx, id, BIT(TASK_RUNNING), TASK_PENDING_REVIEW, notes, event_note);
}

int task_escalate(task_ctx *cx, int64_t id, const char *notes, const char *event_note)
{
    return move_told(cx, id, BIT(TASK_WAITING_FOR_INPUT) | BIT(TASK_RUNNING), TASK_PENDING_REVIEW,
                     notes, event_note);
}

int task_escalate_waiting(task_ctx *cx, int64_t id, const char *notes, const char *event_note)
{
    return move_told(cx, id, BIT(TASK_WAITING_FOR_INPUT), TASK_PENDING_REVIEW, notes, event_note);
}

int task_answer(task_ctx *cx, int64_t id)
{
    return move_told(cx, id, BIT(TASK_WAITING_FOR_INPUT), TASK_RUNNING, NULL, "answered");
}

int task_approve(task_ctx *cx, int64_t id)
{
    return move_told(cx, id, BIT(TASK_PENDING_REVIEW), TASK_RUNNING, NULL, "approved");
}

int task_requeue(task_ctx *cx, int64_t id, enum task_status from, const char *event_note)
{
    if (from != TASK_WAITING_FOR_INPUT && from != TASK_PENDING_REVIEW)
        return PT_NONE;
    return move_told(cx, id, BIT(from), TASK_PENDING, NULL, event_note);
}

int task_reject(task_ctx *cx, int64_t id, const char *notes)
{
    return move_told(cx, id, BIT(TASK_PENDING_REVIEW), TASK_FAILED, notes, "rejected");
}

int task_accept(task_ctx *cx, int64_t id, const char *notes)
{
    return move_told(cx, id, BIT(TASK_PENDING_REVIEW), TASK_COMPLETED_WITH_ISSUES, notes,
                     "approved");
}

int task_cancel(task_ctx *cx, int64_t id, const char *notes)
{
    return move_told(cx, id,
                     BIT(TASK_PENDING) | BIT(TASK_WAITING_FOR_INPUT) | BIT(TASK_PENDING_REVIEW),
                     TASK_FAILED, notes, "cancelled");
}

int task_finish(task_ctx *cx, int64_t id, enum task_status to, const char *notes)
{
    if (!task_status_is_final(to))
        return PT_EINVAL;
    return move_told(cx, id, OPEN_STATUSES, to, notes, "finished");
}

int task_fail(task_ctx *cx, int64_t id, const char *notes, const char *event_note)
{
    return move_told(cx, id, OPEN_STATUSES, TASK_FAILED, notes, event_note);
}

int64_t task_retry_delay_ms(int attempts)
{
    int64_t ms = TASK_RETRY_FIRST_MS;
    for (int i = 1; i < attempts && ms < TASK_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < TASK_RETRY_MAX_MS ? ms : TASK_RETRY_MAX_MS;
}

/* t's interruptions with "attempt N: what" added (new string), or NULL. */
static char *add_interruption(const task *t, int attempts, const char *what)
{
    char *log = NULL;
    int n = t->interruptions && *t->interruptions
                ? asprintf(&log, "%s; attempt %d: %s", t->interruptions, attempts, what)
                : asprintf(&log, "attempt %d: %s", attempts, what);
    return n < 0 ? NULL : log;
}

int task_interrupt(task_ctx *cx, int64_t id, int committed, int attempts, int max_attempts,
                   const char *what)
{
    char note[1024];
    if (committed) {
        snprintf(note, sizeof(note),
                 "%s after the task crossed its commit point: the portal may already have the "
                 "submission. Check the portal, then approve (it is there) or reject.",
                 what);
        return move_told(cx, id, MID_RUN, TASK_PENDING_REVIEW, note, what);
    }
    if (max_attempts <= 0)
        max_attempts = TASK_MAX_ATTEMPTS;
    task t;
    if (store_task_get(cx->st, 0, id, &t) != 1)
        return PT_NONE;
    char *log = add_interruption(&t, attempts, what);
    task_free(&t);
    char *notes = NULL;
    int rc = PT_EFAIL;
    if (!log)
        return rc;
    if (attempts < max_attempts) {
        int64_t wait = task_retry_delay_ms(attempts);
        if (asprintf(&notes,
                     "Interrupted before its commit point, so nothing was submitted (%s). "
                     "Attempt %d of %d runs in %lld s.",
                     log, attempts + 1, max_attempts, (long long)((wait + 999) / 1000)) < 0)
            notes = NULL;
        snprintf(note, sizeof(note), "%s; running it again in %lld ms (nothing was submitted)",
                 what, (long long)wait);
        if (notes && store_task_set_retry(cx->st, id, pt_wall_ms() + wait, log) == 0)
            rc = move_told(cx, id, MID_RUN, TASK_PENDING, notes, note);
    } else {
        if (asprintf(&notes,
                     "Interrupted %d times before its commit point, so nothing was submitted "
                     "(%s); not retrying again.",
                     attempts, log) < 0)
            notes = NULL;
        if (notes && store_task_set_retry(cx->st, id, 0, log) == 0)
            rc = move_told(cx, id, MID_RUN, TASK_FAILED, notes, what);
    }
    free(notes);
    free(log);
    return rc;
}

char *task_retry_notes(const task *t, int max_attempts, const char *notes)
{
    if (!t->interruptions || !*t->interruptions)
        return NULL;
    char *out = NULL;
    if (asprintf(&out,
                 "%s%sRan on attempt %d of %d; the earlier ones were interrupted before the "
                 "commit point and submitted nothing (%s).",
                 notes ? notes : "", notes && *notes ? "\n\n" : "", t->attempts + 1,
                 max_attempts > 0 ? max_attempts : TASK_MAX_ATTEMPTS, t->interruptions) < 0)
        return NULL;
    return out;
}
