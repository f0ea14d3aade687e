/*
 * store.h - the embedded store: one SQLite file in WAL mode, with versioned
 * migrations. Accounts, their SOPs, secrets and input defaults; tasks, their
 * files and every status change (events); the webhook outbox and each
 * delivery attempt.
 *
 * One connection per thread (store_open in each): SQLite in WAL mode lets
 * readers and one writer run at once. Writes that must go together (a final
 * status and its outbox row) are one transaction here, never two calls.
 *
 * Times are epoch milliseconds (0: null). Strings in returned structs are
 * owned by the struct (the matching _free).
 */
#ifndef PORTIER_STORE_H
#define PORTIER_STORE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

#define STORE_SCHEMA_VERSION 1

/* Opens (creating if need be) and, with migrate, brings the schema up to
 * date; a database newer than this binary is refused with a clear error. */
store *store_open(const char *path, int migrate, char *err);
void store_close(store *st);
const char *store_path(const store *st);

int store_begin(store *st);  /* BEGIN IMMEDIATE (waits for the writer lock) */
int store_commit(store *st); /* COMMIT, or ROLLBACK if it fails */
void store_rollback(store *st);

/* ---- Accounts ------------------------------------------------------------ */

typedef struct account {
    int64_t id;
    char *name;
    char *portal;
    char *webhook_url;
    int webhook_disabled;
    unsigned char *whsec, *whsec_old; /* sealed "whsec_..." (pt_seal) */
    size_t whsec_len, whsec_old_len;
    int64_t whsec_old_until;
    int64_t created_at;
} account;

void account_free(account *a);
/* Fills *a by id, name or API key hash: 1 found, 0 not, -1 error. */
int store_account_by_id(store *st, int64_t id, account *a);
int store_account_by_name(store *st, const char *name, account *a);
int store_account_by_key(store *st, const char *key_hash, account *a);
int store_account_create(store *st, const char *name, const char *portal, const char *webhook_url,
                         const char *key_hash, int64_t *id, char *err);
/* Lists accounts as a JSON array (id, name, portal, webhook_url, sops). */
cJSON *store_account_list(store *st);
int store_account_set(store *st, int64_t id, const char *column, const char *value);
int store_account_set_whsec(store *st, int64_t id, const unsigned char *sealed, size_t len,
                            const unsigned char *old, size_t oldlen, int64_t old_until);

/* Secrets, sealed by the caller (the store never sees them in the clear). */
int store_secret_set(store *st, int64_t acct, const char *name, const unsigned char *sealed,
                     size_t len);
/* Calls fn for each of the account's secrets. */
int store_secret_each(store *st, int64_t acct,
                      void (*fn)(void *ud, const char *name, const unsigned char *sealed,
                                 size_t len),
                      void *ud);
int store_default_set(store *st, int64_t acct, const char *input, const char *value);
int store_default_each(store *st, int64_t acct,
                       void (*fn)(void *ud, const char *input, const char *value), void *ud);

/* An SOP version: the main file's name and every file's text, as a JSON
 * object {"files": {"name.sop": "text", ...}, "main": "name.sop"}. */
int store_sop_add(store *st, int64_t acct, const char *type, const char *bundle_json, int *version);
/* The newest version for that type: 1 found (*bundle malloc'd), 0 none. */
int store_sop_current(store *st, int64_t acct, const char *type, int *version, char **bundle);
int store_sop_get(store *st, int64_t acct, const char *type, int version, char **bundle);

/* ---- Tasks --------------------------------------------------------------- */

typedef struct task {
    int64_t id, account_id, task_number, trajectory_id;
    char type[48];
    int sop_version;
    char status[24];
    char *title, *instructions, *data, *notes;
    int64_t started_at, completed_at, failed_at, created_at, updated_at;
    int committed, attempts, approve, cancel_requested;
    char *ask_name, *ask_prompt;
    char *answers; /* JSON object, name -> value */
    char *review_comment;
} task;

void task_free(task *t);
int task_is_final(const char *status);
/* The task object clients see, fields named and ordered as in the
 * reference; with_trajectory adds trajectory_id (the webhook's copy). */
cJSON *task_to_json(const task *t, int with_trajectory);

typedef struct task_file_in {
    const char *field, *filename, *path, *content_type;
    size_t size;
} task_file_in;

/* Creates a task in one transaction: its number, the idempotency key (if
 * any), the first event. If the key was used by that account in the last
 * 24 h, *t is that task and 1 is returned; a new task returns 0; -1 error.
 * Files are moved (rename) into files_dir/<task id>/. */
int store_task_create(store *st, int64_t acct, const char *type, int sop_version,
                      const char *title_fmt, const char *instructions, const char *data,
                      const char *idem_key, const task_file_in *files, size_t nfiles,
                      const char *files_dir, task *t, char *err);
/* The task an Idempotency-Key of the account made in the last 24 h:
 * 1 and *t, 0 none, -1 error. */
int store_task_by_idempotency(store *st, int64_t acct, const char *key, task *t);
/* Group commit: between these, store_task_create calls share one
 * transaction (each a savepoint of its own); the batch is durable at
 * store_batch_end (0, or -1 if the COMMIT failed: then none of it is). */
int store_batch_begin(store *st);
int store_batch_end(store *st);
/* 1 found (and of that account unless account is 0), 0 not, -1 error. */
int store_task_get(store *st, int64_t acct, int64_t id, task *t);
/* Newest first, id < after (0: from the newest); status/type may be NULL. */
cJSON *store_task_list(store *st, int64_t acct, const char *status, const char *type, int limit,
                       int64_t after, int64_t *next);
/* Files of a task, as paths (a NULL-terminated array; free with
 * store_strings_free). */
char **store_task_files(store *st, int64_t taskid, size_t *n);
void store_strings_free(char **v);

/* Moves a task from one of the statuses in `from` (comma-separated; NULL:
 * any) to `to`, recording the event. Sets the matching timestamps and
 * notes; a final status also writes the webhook outbox row in the same
 * transaction. Returns 1 moved, 0 it was not in `from`, -1 error. */
int store_task_move(store *st, int64_t id, const char *from, const char *to, const char *notes,
                    const char *event_note);
/* Claims the oldest pending task: pending -> dispatching. 1 and *id, 0 none. */
int store_task_claim(store *st, int64_t *id);
int store_task_set_int(store *st, int64_t id, const char *column, int64_t value);
int store_task_set_text(store *st, int64_t id, const char *column, const char *value);
/* Counts tasks by status into a JSON object {status: n}. */
cJSON *store_task_counts(store *st);
int64_t store_task_count_status(store *st, const char *status);
/* Ids of tasks in a status (for recovery), as a malloc'd array. */
int64_t *store_task_ids(store *st, const char *status, size_t *n);
/* The task's events as a JSON array. */
cJSON *store_task_events(store *st, int64_t id);
int64_t store_trajectory_add(store *st, int64_t taskid, const char *dir);
/* The trajectory folder of a task's newest run, malloc'd, or NULL. */
char *store_trajectory_dir(store *st, int64_t taskid);

/* ---- Webhook outbox ------------------------------------------------------ */

typedef struct outbox_row {
    int64_t id, account_id, task_id, created_at, next_at;
    char event_id[64];
    char event[32];
    char *payload; /* the `data` object's JSON */
    int attempts;
} outbox_row;

void outbox_row_free(outbox_row *o);
/* Adds an event for a task (used by store_task_move and redeliver). */
int store_outbox_add(store *st, int64_t acct, int64_t taskid, const char *event,
                     const char *event_id, const char *payload);
/* Due rows (state pending, next_at <= now), oldest first, at most max,
 * skipping ids in `busy`. */
int store_outbox_due(store *st, int64_t now, const int64_t *busy, size_t nbusy, outbox_row *rows,
                     size_t max, size_t *n);
/* The earliest next_at of a pending row, or 0. */
int64_t store_outbox_next_at(store *st);
/* Records an attempt; state is pending (with next_at), delivered, dead or
 * disabled. */
int store_outbox_attempt(store *st, int64_t id, int64_t at, int http_status, int64_t latency_ms,
                         const char *error, const char *state, int64_t next_at);
/* The newest event of a task: 1 and *row, 0 none. */
int store_outbox_for_task(store *st, int64_t taskid, outbox_row *row);
int store_outbox_requeue(store *st, int64_t id);
cJSON *store_deliveries(store *st, int64_t taskid);
/* Counts by state into a JSON object, and attempts/failures in all. */
cJSON *store_outbox_counts(store *st);

#endif
