/*
 * store.h - the store: one SQLite file in WAL mode (the default), or a
 * PostgreSQL database (for several nodes), with the same versioned
 * migrations and the same behaviour on both. Accounts, their SOPs, secrets and input defaults; tasks, their
 * files and every status change (events); the webhook outbox and each
 * delivery attempt.
 *
 * One connection per thread (store_open in each): SQLite in WAL mode lets
 * readers and one writer run at once; on PostgreSQL a transaction takes
 * the same one writer lock (store_begin), reads run beside it. Writes that must go together (a final
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

/* Whether target names a PostgreSQL database: a postgres:// or
 * postgresql:// URL, or libpq's "host=... dbname=..." form. Anything else
 * is a SQLite file. */
int store_is_pg(const char *target);
/* Opens path (a SQLite file, created if need be; or a PostgreSQL
 * connection string: the database must exist) and, with migrate, brings
 * the schema up to date; a database newer than this binary is refused
 * with a clear error. */
store *store_open(const char *path, int migrate, char *err);
void store_close(store *st);
/* 1 if path holds a store (a SQLite file exists; a PostgreSQL database has
 * portier's schema), 0 if not, -1 (with err) if it cannot be asked.
 * Creates nothing: for the commands that only read. */
int store_exists(const char *path, char *err);
/* The schema version this binary brings a store to. */
int store_schema_version(void);
/* What store_open was given (a PostgreSQL string may hold a password:
 * never log it). */
const char *store_path(const store *st);
/* How messages name the store: the file, or the URL without a password. */
const char *store_label(const store *st);
/* "sqlite" or "postgresql". */
const char *store_backend(const store *st);

/* Copies every table's rows of from into to (an empty store of the same
 * schema version; a store with rows is refused), in one transaction, with
 * to's ids going on past the copied ones. Values move as they are (sealed
 * bytes stay sealed: use to with the same master key); a value from before
 * sealing is sealed by to's sealer on its way to PostgreSQL. *rows: how
 * many were copied. 0, or negative with err (then to is as it was). */
int store_copy(store *from, store *to, int64_t *rows, char *err);

int store_begin(store *st);  /* BEGIN IMMEDIATE (waits for the writer lock) */
/* BEGIN for writes that lock only their rows (the claim): store_begin on
 * SQLite; on PostgreSQL no writer lock, so claims from several nodes do
 * not queue behind each other or behind task creation. Its statements
 * must check what they change in the statement itself (WHERE status=...),
 * never read first and write after. */
int store_begin_rows(store *st);
int store_commit(store *st); /* COMMIT, or ROLLBACK if it fails */
void store_rollback(store *st);
/* The transaction st is inside (store_begin .. commit or rollback): a
 * number of its own on this connection, or 0 outside one. */
unsigned long store_transaction(store *st);

/* ---- Sealing -------------------------------------------------------------
 * Columns that carry PHI or a secret (a task's data, notes, question,
 * answers and review comment; an outbox payload) are sealed before they are
 * written and opened as they are read, by the sealer the connection's owner
 * attaches (server/keys.c: AES-256-GCM under the account's own key). The
 * store only passes bytes through it: it never holds a key. `aad` names the
 * row and column the bytes belong to, so sealed bytes moved elsewhere do
 * not open. A sealed value is a BLOB; a TEXT value is one written before
 * sealing existed and is read as it is (see docs: "Data at rest"). */
typedef struct task_file_in task_file_in;

typedef struct store_sealer {
    /* A new buffer (*out, *outlen; the caller frees it): 0 or negative. */
    int (*seal)(void *ud, store *st, int64_t acct, const char *aad, const void *plain, size_t n,
                unsigned char **out, size_t *outlen);
    /* A new NUL-terminated plaintext (*plain, *plainlen): 0 or negative. */
    int (*open)(void *ud, store *st, int64_t acct, const char *aad, const unsigned char *in,
                size_t n, char **plain, size_t *plainlen);
    /* Writes the upload f sealed as `to` and removes its spooled copy: 0
     * or negative (then `to` does not exist). NULL: written as they are. */
    int (*seal_file)(void *ud, store *st, int64_t acct, const char *aad, const task_file_in *f,
                     const char *to);
    void *ud;
} store_sealer;

/* Attaches a sealer (copied; its ud is borrowed and must outlive st).
 * Without one, values are written in the clear and sealed ones read NULL. */
void store_set_sealer(store *st, const store_sealer *s);

/* Adds name: the time as ISO-8601 UTC with milliseconds, or null for 0
 * (how the API writes every time). */
void store_json_time(cJSON *o, const char *name, int64_t ms);

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
    int sessions_off;        /* no kept browser sessions (account set-session NAME off) */
    unsigned webhook_events; /* STORE_EVENT_* the endpoint gets */
    /* moves with every change to the account's SOPs or input defaults
     * (store_sop_add, store_default_set): what was read of them under
     * one value is still what the store holds while the row says it */
    int64_t config_gen;
} account;

/* The events an account's endpoint may get (task_finished by default). */
enum { STORE_EVENT_FINISHED = 1, STORE_EVENT_WAITING = 2 };

void account_free(account *a);
/* A deep copy of src into dst: 0, or -1 (out of memory; dst then empty). */
int account_copy(account *dst, const account *src);
/* Fills *a by id, name or API key hash: 1 found, 0 not, -1 error. */
int store_account_by_id(store *st, int64_t id, account *a);
int store_account_by_name(store *st, const char *name, account *a);
int store_account_by_key(store *st, const char *key_hash, account *a);
int store_account_create(store *st, const char *name, const char *portal, const char *webhook_url,
                         const char *key_hash, int64_t *id, char *err);
/* Lists accounts as a JSON array (id, name, portal, webhook_url, sops). */
cJSON *store_account_list(store *st);
/* The account's portal URL. */
int store_account_set_portal(store *st, int64_t id, const char *url);
/* Whether the account's tasks may reuse kept browser sessions. */
int store_account_set_sessions(store *st, int64_t id, int on);
/* The account's webhook endpoint (which re-enables a disabled one). */
int store_account_set_webhook(store *st, int64_t id, const char *url);
/* Which events (STORE_EVENT_*) the endpoint gets. */
int store_account_set_events(store *st, int64_t id, unsigned events);
/* The endpoint answered 410 Gone: no more deliveries until it is set again. */
int store_account_disable_webhook(store *st, int64_t id);
/* The hash of the account's API key (the old key stops working). */
int store_account_set_key(store *st, int64_t id, const char *key_hash);
int store_account_set_whsec(store *st, int64_t id, const unsigned char *sealed, size_t len,
                            const unsigned char *old, size_t oldlen, int64_t old_until);
/* The account's data key, wrapped by keys.c: 1 and a new buffer in *wrapped
 * (the caller frees it), 0 none yet, -1 error. */
int store_account_data_key(store *st, int64_t id, unsigned char **wrapped, size_t *len);
/* Sets the wrapped data key only if the account has none (two threads may
 * race to make the first one: the loser reads the winner's). */
int store_account_init_data_key(store *st, int64_t id, const unsigned char *wrapped, size_t len);

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
/* What a new task of that type needs, in one read (POST /tasks; on
 * PostgreSQL one round trip, not two): the newest version and fn for each
 * of the account's input defaults. 1 found, 0 no SOP for the type, -1
 * error. */
int store_sop_current_defaults(store *st, int64_t acct, const char *type, int *version,
                               void (*fn)(void *ud, const char *input, const char *value),
                               void *ud);
/* The newest version of each of the account's task types, by type:
 * [{"type", "version"}]. */
cJSON *store_sop_list(store *st, int64_t acct);

/* Element fingerprints (agent/fingerprint.h) of an account's SOP type and
 * version: the set the last successful run left, as JSON text, sealed at
 * rest. get: 1 found (*json malloc'd), 0 none, -1 (it does not open). put:
 * replaces it; 0 or -1. */
int store_fingerprints_get(store *st, int64_t acct, const char *type, int version, char **json);
int store_fingerprints_put(store *st, int64_t acct, const char *type, int version,
                           const char *json, int64_t now);

/* ---- Tasks ---------------------------------------------------------------
 * The store keeps a task's status as the name server/task.c gives it; what
 * the statuses mean and which moves are allowed is task.h's. */

typedef struct task {
    int64_t id, account_id, task_number, trajectory_id;
    char type[48];
    int sop_version;
    char status[24]; /* task_status_of() reads it */
    char *title, *instructions, *data, *notes;
    int64_t started_at, completed_at, failed_at, created_at, updated_at;
    int committed, attempts, approve, cancel_requested;
    char *ask_name, *ask_prompt;
    char *answers; /* JSON object, name -> value */
    char *review_comment;
    int64_t not_before;  /* wall ms: a retried task runs no earlier */
    char *interruptions; /* "attempt 1: why; attempt 2: why", or NULL */
    char *outputs;       /* JSON object, name -> value (masked), or NULL */
    char *review_prompt; /* what the last `review` step asks to confirm */
} task;

void task_free(task *t);

struct task_file_in {
    const char *field, *filename, *path, *content_type;
    size_t size;
    /* reads path's bytes as they were sent (a spool is enciphered): a new
     * buffer, 0 or -1; NULL: path holds them as they are */
    int (*read)(const void *src, char **data, size_t *len);
    const void *src;
};

/* What a new task is made of (all borrowed for the call). */
typedef struct task_new {
    int64_t account;
    const char *type;
    int sop_version;
    const char *title_fmt; /* ours ("Submit claim #%lld"): the task number fills it */
    const char *instructions, *data;
    const char *idem_key;  /* NULL: none */
    const char *idem_hash; /* the request's hash, kept with the key */
    const task_file_in *files;
    size_t nfiles;
    const char *files_dir; /* files are moved (rename) into files_dir/<task id>/ */
} task_new;

/* Creates a task in status `status` in one transaction: its number, the
 * idempotency key (if any), the first event. If the key was used by that
 * account in the last 24 h, *t is that task and 1 is returned; a new task
 * returns 0; -1 error (with err). */
int store_task_create(store *st, const task_new *n, const char *status, task *t, char *err);
/* The task an Idempotency-Key of the account made in the last 24 h:
 * 1 and *t, 0 none, -1 error; hash (65 bytes) receives the hash of the
 * request that made it ("" if the key was stored without one). */
int store_task_by_idempotency(store *st, int64_t acct, const char *key, task *t, char *hash);
/* Group commit: between these, store_task_create calls share one
 * transaction (each a savepoint of its own); the batch is durable at
 * store_batch_end: 0; -1 when the batch is surely not stored; PT_ECLOSED
 * (a fast batch) when its COMMIT failed, so it may be stored or not. */
int store_batch_begin(store *st);
int store_batch_end(store *st);
/* Group commit without a round trip per task, for at most n creations
 * without uploads, where the backend can (PostgreSQL): the batch's task
 * ids are reserved at once, each account's task numbers are read once and
 * counted here, and every creation's statements ride one pipeline, with
 * no savepoints. 1: that batch began; 0: a store_batch_begin batch began
 * instead (the backend has no such path, or the ids could not be
 * reserved); -1: none began. (1 and 0 rather than 0 alone: the caller
 * needs to know which, see below.) In a fast batch one failed creation
 * fails the whole batch, found before its COMMIT (store_batch_end -1,
 * nothing of it stored): run it again as a store_batch_begin batch, where
 * each creation stands alone. Never run again one that ended PT_ECLOSED:
 * it may be stored. */
int store_batch_begin_fast(store *st, size_t n);
/* 1 found (and of that account unless account is 0), 0 not, -1 error. */
int store_task_get(store *st, int64_t acct, int64_t id, task *t);
/* Which tasks a page lists: statuses_json a JSON array of status names
 * (NULL: any), type (NULL: any), created strictly after / before (ms; 0:
 * no bound), id < after (0: from the newest), at most limit. */
typedef struct task_filter {
    const char *statuses_json, *type;
    int64_t created_after, created_before, after;
    int limit;
} task_filter;
/* A page of tasks, newest first. *rows is malloc'd (free with
 * store_tasks_free); *next is the cursor of the next page, 0 if none. 0, or
 * -1 error. */
int store_task_list(store *st, int64_t acct, const task_filter *f, task **rows, size_t *n,
                    int64_t *next);
void store_tasks_free(task *rows, size_t n);
/* The folders of every trajectory of a task (as store_task_files). */
char **store_trajectory_dirs(store *st, int64_t taskid, size_t *n);
/* The aad an uploaded file is sealed with: "file task=ID name=BASENAME",
 * BASENAME the last part of its path (into aad, n bytes). */
void store_file_aad(char *aad, size_t n, int64_t taskid, const char *path);
/* Files of a task, as paths (a NULL-terminated array, empty if none; free
 * with store_strings_free); NULL when the store could not be read. */
char **store_task_files(store *st, int64_t taskid, size_t *n);
void store_strings_free(char **v);

/* Timestamps a status change sets (the first time, for started). */
enum { STORE_STAMP_STARTED = 1, STORE_STAMP_COMPLETED = 2, STORE_STAMP_FAILED = 4 };
/* Sets a task's status at `now` (notes: NULL keeps them) with the stamped
 * times; the caller holds a transaction and writes the event. */
int store_task_set_status(store *st, int64_t id, const char *status, int64_t now, const char *notes,
                          unsigned stamps);
/* Records a status change in the task's events. */
int store_task_event_add(store *st, int64_t id, int64_t at, const char *from, const char *to,
                         const char *note);
/* The oldest task in a status whose not_before is at most now (wall ms):
 * PT_FOUND and *id, PT_NONE, or -1. */
int store_task_oldest(store *st, const char *status, int64_t now, int64_t *id);

/* The run crossed its SOP's commit point (durable before the next step). */
int store_task_mark_committed(store *st, int64_t id);
/* Runs so far, this one included. */
int store_task_set_attempts(store *st, int64_t id, int attempts);
/* An interrupted run: the task runs again no earlier than not_before (wall
 * ms), and interruptions (copied; our words) replaces the list. */
int store_task_set_retry(store *st, int64_t id, int64_t not_before, const char *interruptions);
/* What an `ask` step asks for (name and prompt). */
int store_task_set_ask(store *st, int64_t id, const char *name, const char *prompt);
/* The run's extracted values (a JSON object, masked by the caller). */
int store_task_set_outputs(store *st, int64_t id, const char *outputs_json);
/* What a `review` step asks a person to confirm. */
int store_task_set_review_prompt(store *st, int64_t id, const char *prompt);
/* Every answer given so far (a JSON object, name -> value). */
int store_task_set_answers(store *st, int64_t id, const char *answers_json);
/* A reviewer's decision: the comment, and approval (an approval is kept:
 * a later reject does not clear it). */
int store_task_set_review(store *st, int64_t id, int approve, const char *comment);
/* The client asked to cancel the task. */
int store_task_request_cancel(store *st, int64_t id);

/* Counts tasks by status into a JSON object {status: {type: n}}. */
cJSON *store_task_counts(store *st);
int64_t store_task_count_status(store *st, const char *status);
/* Ids of tasks in a status (for recovery), as a malloc'd array. */
int64_t *store_task_ids(store *st, const char *status, size_t *n);
/* The task's events as a JSON array. */
cJSON *store_task_events(store *st, int64_t id);
/* Retention: final tasks updated before `before` (epoch ms) whose data
 * was not purged yet, at most max of them (a malloc'd array, *n). */
int64_t *store_task_purgeable(store *st, int64_t before, size_t max, size_t *n);
/* Purges a final task's data: data, notes, question, answers, review
 * comment, its files' rows and trajectories' rows (the files themselves
 * are the caller's); the row keeps its status and times. */
int store_task_purge(store *st, int64_t id);
/* A new run's trajectory folder (it becomes the task's trajectory_id). */
int64_t store_trajectory_add(store *st, int64_t taskid, const char *dir);
/* The trajectory folder of a task's newest run, malloc'd, or NULL. */
char *store_trajectory_dir(store *st, int64_t taskid);

/* ---- Nodes and leases ----------------------------------------------------
 * Several `portier serve` processes (nodes) may work one database; what
 * that means for a task is server/node.h's. The store keeps a row per node
 * (its beat), the lease on each task a node runs, and the claim on each
 * outbox row a node sends. Every write here is one statement or one
 * transaction, so that two nodes never both win. */

typedef struct store_node {
    char id[64];
    char host[128];     /* the host name, for people */
    char proc_key[160]; /* boot id and pid namespace: pids compare only within one */
    int64_t pid, started_at, seen_at;
    char state[16]; /* "active", "draining", "stopped" */
} store_node;

/* Writes node n's row (a restart under the same id replaces it). */
int store_node_put(store *st, const store_node *n);
/* 1 and *n, 0 no such node, -1 error. */
int store_node_get(store *st, const char *id, store_node *n);
/* The node's beat: seen_at now, and its state. */
int store_node_beat(store *st, const char *id, int64_t now, const char *state);
/* Nodes seen at or after since (not stopped). */
int64_t store_node_count_live(store *st, int64_t since);

/* Waits up to timeout_ms for another connection (another node, or
 * another thread of this one) to commit: 1 something changed, 0 timed out,
 * -1 error. SQLite: a poll of PRAGMA data_version every 50 ms (cheap: it
 * reads the WAL index, no lock). PostgreSQL: LISTEN portier_work, and the
 * writes that make work (a new or requeued task, an outbox row) NOTIFY it
 * in their transaction; the wait is on the connection's socket. */
int store_wait_changes(store *st, int timeout_ms);

/* THE claim: moves the oldest task in status `from` whose not_before is at
 * most now to status `to`, leased to node until lease_until, in one
 * statement, the claim named run (a token: the run that releases the
 * lease names it); the caller holds the transaction (store_begin_rows:
 * BEGIN IMMEDIATE on SQLite, whose write lock makes it atomic across
 * processes) and writes the event. PT_FOUND and *id, PT_NONE (nothing to
 * claim), or -1. On PostgreSQL the subquery takes FOR UPDATE SKIP LOCKED
 * and no writer lock is held, so nodes claim different rows without
 * waiting on each other or on task creation. */
int store_task_claim(store *st, const char *from, const char *to, const char *node, int64_t now,
                     int64_t lease_until, int64_t run, int64_t *id);
/* Locks task id's row until the transaction ends (store_begin's), for a
 * read-then-write of the task: on PostgreSQL a claim holds row locks only
 * (store_begin_rows), so without it the claim could move the task between
 * the read and the write. After it, a read sees the claim if it committed.
 * SQLite: nothing to do (the writer lock keeps every claim out). 0 or -1. */
int store_task_lock(store *st, int64_t id);
/* The task's lease: 1 with node (64 bytes; "" for none) and *until, 0 no
 * such task, -1 error. */
int store_task_lease(store *st, int64_t id, char *node, int64_t *until);
/* Renews node's lease on task id: PT_FOUND (and *cancel: the client asked
 * to cancel it), PT_NONE when the task is no longer leased to node (taken
 * over, or moved by someone else), or -1. */
int store_task_lease_renew(store *st, int64_t id, const char *node, int64_t until, int *cancel);
/* Takes the lease of task id for node until `until`, if it is still what
 * the caller saw: held by `was` ("" or NULL: none) until was_until.
 * PT_FOUND taken, PT_NONE someone moved first, -1 error. */
int store_task_lease_take(store *st, int64_t id, const char *was, int64_t was_until,
                          const char *node, int64_t until);
/* Drops the lease of task id: only node's (any with node NULL), and only
 * that claim's when run is not 0 (an older run of the task on the same
 * node ending late leaves a newer claim's lease alone). */
int store_task_lease_release(store *st, int64_t id, const char *node, int64_t run);
/* Records the commit point only while node holds the lease: PT_FOUND, or
 * PT_NONE when it does not (another node took the task over: the run must
 * not submit), or -1. */
int store_task_commit_leased(store *st, int64_t id, const char *node);
/* A task in a status a node holds, with its lease (for take-over). */
typedef struct task_lease {
    int64_t id, until;
    char status[24], node[64]; /* node "": none */
    int committed, attempts;
} task_lease;
/* Tasks whose status is one of statuses (n of them) and whose lease is
 * not node's (NULL: any lease; leased_only: only tasks with a lease),
 * oldest first, at most max: a malloc'd array (*n). */
task_lease *store_task_leases(store *st, const char *const *statuses, size_t nstatuses,
                              const char *node, int leased_only, size_t max, size_t *n);
/* Tasks leased to node now (for /metrics). */
int64_t store_task_count_leased(store *st, const char *node);

/* ---- Webhook outbox ------------------------------------------------------ */

typedef struct outbox_row {
    int64_t id, account_id, task_id, created_at, next_at;
    char event_id[64];
    char event[32];
    char *payload; /* the `data` object's JSON */
    int attempts;
    int round_start; /* attempts before the last redelivery: its schedule starts here */
} outbox_row;

/* What an attempt's record says besides its outcome: its number (1 for
 * the first, counting every round), where it went, the reply's first bytes
 * (either may be NULL). */
typedef struct outbox_attempt {
    int attempt;
    const char *url, *reply;
} outbox_attempt;

/* An event's delivery state (a row's state column). */
enum outbox_state {
    OUTBOX_PENDING,       /* to send at next_at */
    OUTBOX_DELIVERED,     /* a 2xx came back */
    OUTBOX_DEAD,          /* the last scheduled attempt failed */
    OUTBOX_DISABLED,      /* the endpoint answered 410 Gone */
    OUTBOX_UNDELIVERABLE, /* nowhere to send it (no endpoint, no secret) */
};

void outbox_row_free(outbox_row *o);
/* Adds an event for a task (the final move writes it in its transaction). */
int store_outbox_add(store *st, int64_t acct, int64_t taskid, const char *event,
                     const char *event_id, const char *payload);
/* Claims due rows for node until claim_until: state pending, next_at <=
 * now, not claimed by another node whose claim still runs; oldest first,
 * at most max and at most per_account of any one account (its oldest;
 * busy ones count), skipping ids in `busy`. One transaction, each row
 * claimed by a statement that checks the claim again: two nodes never
 * claim one row. */
int store_outbox_due(store *st, const char *node, int64_t now, int64_t claim_until,
                     const int64_t *busy, size_t nbusy, size_t per_account, outbox_row *rows,
                     size_t max, size_t *n);
/* Gives back node's claims on rows still pending (it stops, or another
 * node found it dead). */
int store_outbox_release(store *st, const char *node);
/* The nodes holding claims that still run at now on pending rows, at most
 * max of them (node ids, 64 bytes each, into ids): their number. */
size_t store_outbox_claimers(store *st, int64_t now, char (*ids)[64], size_t max);
/* The earliest next_at of a pending row, or 0. */
int64_t store_outbox_next_at(store *st);
/* Records an attempt and the row's new state (next_at for pending); the
 * row's claim ends with it. */
int store_outbox_attempt(store *st, int64_t id, int64_t at, int http_status, int64_t latency_ms,
                         const char *error, enum outbox_state state, int64_t next_at,
                         const outbox_attempt *rec);
/* The newest event of a task: 1 and *row, 0 none. */
int store_outbox_for_task(store *st, int64_t taskid, outbox_row *row);
/* Sends the event again now, on a fresh retry schedule. */
int store_outbox_requeue(store *st, int64_t id);
/* Re-queues (as store_outbox_requeue) every event of the account that
 * failed for good (dead, disabled, undeliverable) with an attempt at or
 * after since; *n receives how many. */
int store_outbox_recover(store *st, int64_t acct, int64_t since, int64_t *n);
/* A task's attempts, oldest first, as a JSON array. */
cJSON *store_deliveries(store *st, int64_t taskid);
/* The account's newest attempts (at most max), newest first. */
cJSON *store_account_attempts(store *st, int64_t acct, int max);
/* Counts by state into a JSON object, and attempts/failures in all. */
cJSON *store_outbox_counts(store *st);

/* ---- Members of staff and their dashboard sessions ------------------------
 * A user is one person of an account with a personal key (only its hash is
 * kept, like an API key's); a web session is a signed-in browser, kept by
 * the hash of its cookie. What a session may do and when it ends is
 * server/dashboard.c's. */

/* Adds a user: 0, or -1 with err (the name is taken, or a store error). */
int store_user_add(store *st, int64_t acct, const char *name, const char *key_hash, char *err);
/* Removes a user and ends their sessions: 1 removed, 0 no such user, -1. */
int store_user_remove(store *st, int64_t acct, const char *name);
/* The user a key hash is, with their account: 1 found, 0 not, -1 error. */
int store_user_by_key(store *st, const char *key_hash, int64_t *acct, int64_t *user,
                      char name[64]);

typedef struct web_session {
    int64_t account_id, user_id; /* user_id 0: signed in with the API key */
    char actor[64];              /* who its moves are recorded as */
    char csrf[65];
    int64_t created_at, seen_at;
} web_session;

int store_session_add(store *st, const char *id_hash, const web_session *ws);
/* 1 and *ws, 0 none, -1 error. */
int store_session_get(store *st, const char *id_hash, web_session *ws);
int store_session_touch(store *st, const char *id_hash, int64_t now);
int store_session_end(store *st, const char *id_hash);

/* Records that actor did action ("answered", "approved", ...) to a task. */
int store_action_add(store *st, int64_t taskid, const char *actor, const char *action);
/* The task's actions, oldest first: [{"at", "actor", "action"}]. */
cJSON *store_actions(store *st, int64_t taskid);

#endif
