/*
 * task.h - a task's life: its statuses, the moves allowed between them, the
 * function that makes each move, and the task object clients see.
 *
 * This module owns the status names (the only place they are spelled) and
 * the wire form (docs/openapi.yaml, ../shared/reference). It never talks to
 * a browser, an HTTP client or a webhook endpoint: a move is a transaction
 * on the store (the status, its timestamps, an event row and, for a final
 * status, the webhook outbox row), then a call to the context's `moved`.
 *
 *   task_create
 *       |
 *       v
 *    pending --> dispatching --> running --> completed | completed_with_issues | failed
 *       ^                        |     ^     (final: exactly one task_finished event)
 *       |          ask / review  v     |  answer / approve (a worker holds the run)
 *       +------- requeue ----- waiting_for_input, pending_review
 *
 *   arrow                                            function
 *   (new) -> pending                                 task_create
 *   pending -> dispatching                           task_dispatch   (a worker claims it)
 *   dispatching | pending -> running                 task_start
 *   running -> waiting_for_input                     task_wait_for_input  (an `ask` step)
 *   running -> pending_review                        task_hold_for_review (a `review` step)
 *   waiting_for_input -> running                     task_answer     (the holding worker goes on)
 *   pending_review -> running                        task_approve    (the holding worker goes on)
 *   waiting_for_input | running -> pending_review    task_escalate   (input too late, past commit)
 *   waiting_for_input -> pending_review              task_escalate_waiting (an answer too late)
 *   waiting_for_input | pending_review -> pending    task_requeue    (runs again from the start)
 *   pending_review -> failed                         task_reject
 *   pending_review -> completed_with_issues          task_accept     (approved past commit)
 *   pending | waiting | review -> failed             task_cancel     (no worker runs it)
 *   any open status -> a final status                task_finish     (the run's outcome)
 *   any open status -> failed                        task_fail       (it cannot run)
 *   dispatching | running | waiting | review
 *                    -> pending | pending_review | failed   task_interrupt
 *
 *   task_interrupt: the browser died or portier stopped during a run. A task
 *   that had not crossed its SOP's `commit` goes back to pending, to run
 *   again after a backoff (1 s, doubling, at most 60 s), until it has run
 *   max_attempts times (`serve --max-attempts`, default 3): then it fails.
 *   One that had crossed it goes to pending_review, since the portal may
 *   already have the submission.
 *
 * Who calls which: the workers (server/worker.c) dispatch, start, wait for
 * input, hold for review, escalate, finish, fail and interrupt; the API
 * handlers (server/api.c, through server/worker.c when a worker holds the
 * run) answer, approve, escalate, requeue, reject, accept and cancel;
 * take-over (server/node.c) interrupts what a dead node left, at start-up
 * and while it runs.
 *
 * Leases: a task a worker holds (dispatching, running, or waiting while
 * its run is parked) is leased to the worker's node; a move to pending or
 * to a final status ends the lease, in the same transaction.
 */
#ifndef PORTIER_TASK_H
#define PORTIER_TASK_H

#include "server/store.h"

#include <cjson/cJSON.h>
#include <stdint.h>

enum task_status {
    TASK_PENDING,
    TASK_DISPATCHING,
    TASK_RUNNING,
    TASK_WAITING_FOR_INPUT,
    TASK_PENDING_REVIEW,
    TASK_COMPLETED,
    TASK_COMPLETED_WITH_ISSUES,
    TASK_FAILED,
    TASK_NSTATUS
};

/* The status's name on the wire and in the store ("waiting_for_input"). */
const char *task_status_name(enum task_status s);
/* The status named name: PT_FOUND and *s, or PT_NONE (not a status). */
int task_status_parse(const char *name, enum task_status *s);
/* A stored task's status (a row the store wrote: always a known name). */
enum task_status task_status_of(const task *t);
/* completed, completed_with_issues and failed. */
int task_status_is_final(enum task_status s);

/* The task types clients may submit, in a fixed order. */
#define TASK_NTYPES 4
const char *task_type_name(size_t i);
int task_type_known(const char *type);
/* "submit_prior_authorization, check_eligibility, submit_claim, submit_appeal"
 * (for messages). */
const char *task_types_text(void);

/* The task object clients see, in GET /tasks/{id}, the list and the
 * webhook's data alike: the reference's fields named and ordered as there
 * (trajectory_id where the webhook example has it), then type, question
 * ({"name", "prompt"} while waiting_for_input, else null), review
 * ({"prompt"} while pending_review, else null) and outputs (the run's
 * extracted values, {} until there are any). Returns a new object; the
 * caller deletes it. */
cJSON *task_to_json(const task *t);

/* ---- Moves ---------------------------------------------------------------
 * Where a move happens: this thread's store connection (borrowed), and whom
 * to tell once a move is committed (may be NULL; the service wakes its
 * workers for pending and its webhook deliverer for a final status).
 *
 * Every move returns PT_FOUND when the task moved, PT_NONE when it was not
 * in a status the move starts from (another move came first: a cancel, a
 * final status), or a negative code. A final status never moves again. */
typedef struct task_ctx {
    store *st;
    void (*moved)(void *ud, int64_t id, enum task_status to);
    void *ud;
    /* The node whose worker (or take-over) makes the moves, NULL for the
     * API's: a node's move happens only while the task's lease is that
     * node's (another node may have taken the task over: its run is the
     * one that counts). */
    const char *node;
    int64_t lease_ms; /* what task_dispatch claims is leased this long; 0: 30 s */
    int64_t run;      /* set by task_dispatch: the claim's token (store_task_claim) */
} task_ctx;

/* (none) -> pending: a new task (store_task_create's result and return). */
int task_create(task_ctx *cx, const task_new *n, task *t, char *err);
/* pending -> dispatching: claims the oldest pending task into *id, leased
 * to cx->node (one statement: two nodes never claim one task). */
int task_dispatch(task_ctx *cx, int64_t *id);
/* dispatching | pending -> running: a worker has a browser for it. */
int task_start(task_ctx *cx, int64_t id);
/* running -> waiting_for_input: an `ask` step (or its hold ran out). */
int task_wait_for_input(task_ctx *cx, int64_t id, const char *event_note);
/* running -> pending_review: a `review` step (or its hold ran out). */
int task_hold_for_review(task_ctx *cx, int64_t id, const char *notes, const char *event_note);
/* waiting_for_input | running -> pending_review: input came too late for a
 * task past its commit point; a person checks the portal. */
int task_escalate(task_ctx *cx, int64_t id, const char *notes, const char *event_note);
/* The same from waiting_for_input only (an answer that came too late: a
 * run that another answer resumed meanwhile is left alone). */
int task_escalate_waiting(task_ctx *cx, int64_t id, const char *notes, const char *event_note);
/* waiting_for_input -> running: the holding worker got the answer. */
int task_answer(task_ctx *cx, int64_t id);
/* pending_review -> running: the holding worker got the approval. */
int task_approve(task_ctx *cx, int64_t id);
/* from (waiting_for_input or pending_review) -> pending: runs again from the
 * start (nothing was submitted). */
int task_requeue(task_ctx *cx, int64_t id, enum task_status from, const char *event_note);
/* pending_review -> failed: rejected in review. */
int task_reject(task_ctx *cx, int64_t id, const char *notes);
/* pending_review -> completed_with_issues: approved after its commit point. */
int task_accept(task_ctx *cx, int64_t id, const char *notes);
/* pending | waiting_for_input | pending_review -> failed: the client cancels
 * a task no worker is running. */
int task_cancel(task_ctx *cx, int64_t id, const char *notes);
/* any open status -> final status `to`: the run's outcome. */
int task_finish(task_ctx *cx, int64_t id, enum task_status to, const char *notes);
/* any open status -> failed: the task cannot run (why in notes). */
int task_fail(task_ctx *cx, int64_t id, const char *notes, const char *event_note);
/* How often an interrupted run is tried again (task_interrupt). */
#define TASK_MAX_ATTEMPTS 3      /* runs in all, the first one included */
#define TASK_RETRY_FIRST_MS 1000 /* the wait before the second; it doubles */
#define TASK_RETRY_MAX_MS 60000

/* The wait before attempt attempts + 1, after attempts runs were cut short. */
int64_t task_retry_delay_ms(int attempts);
/* dispatching | running | waiting_for_input | pending_review -> pending,
 * pending_review or failed, by the rule above; `what` says what happened
 * ("The browser crashed"; our words, never task data). attempts counts runs
 * so far, this one included; max_attempts (0: TASK_MAX_ATTEMPTS) is the
 * limit. A task sent back to pending waits task_retry_delay_ms first, and
 * its notes list the interruptions so far. */
int task_interrupt(task_ctx *cx, int64_t id, int committed, int attempts, int max_attempts,
                   const char *what);
/* The notes of a run that ended after earlier attempts were interrupted:
 * notes, then which attempt this was and why the earlier ones stopped
 * (new string), or NULL when t had no interruption. */
char *task_retry_notes(const task *t, int max_attempts, const char *notes);

#endif
