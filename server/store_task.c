/*
 * store_task.c - the store's tasks: rows, their files, events and
 * trajectories, and task creation with its group commit. See store.h. It
 * stores a status as the name it is given; which moves are allowed is
 * server/task.c's, and so is the task object clients see.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void task_free(task *t)
{
    if (!t)
        return;
    free(t->title);
    free(t->instructions);
    free(t->data);
    free(t->notes);
    free(t->ask_name);
    free(t->ask_prompt);
    free(t->answers);
    free(t->review_comment);
    free(t->interruptions);
    free(t->outputs);
    free(t->review_prompt);
    memset(t, 0, sizeof(*t));
}

#define TASK_COLS                                                                                  \
    "id, account_id, task_number, type, sop_version, status, title, instructions, data, notes, "   \
    "started_at, completed_at, failed_at, created_at, updated_at, committed, attempts, approve, "  \
    "cancel_requested, ask_name, ask_prompt, answers, review_comment, trajectory_id, "             \
    "not_before, interruptions, outputs, review_prompt"

/* Opens a task's sealed column i (field names it in the aad). */
static char *col_task(store *st, store_stmt *s, int i, const task *t, const char *field)
{
    char aad[96];
    store__task_aad(aad, sizeof(aad), t->id, field);
    return store__col_opened(st, s, i, t->account_id, aad);
}

/* Binds a task's column sealed (see col_task). */
static int bind_task(store *st, store_stmt *s, int i, int64_t acct, int64_t id, const char *field,
                     const char *value)
{
    char aad[96];
    store__task_aad(aad, sizeof(aad), id, field);
    return store__bind_sealed(st, s, i, acct, aad, value);
}

/* The account a task belongs to (0 if none). */
static int64_t task_account(store *st, int64_t id)
{
    store_stmt *s = store__q(st, "SELECT account_id FROM tasks WHERE id=?");
    if (!s)
        return 0;
    store__bind_int64(s, 1, id);
    int64_t acct = store__step(s) == STORE_ROW ? store__col_int64(s, 0) : 0;
    store__reset(s);
    return acct;
}

/* Updates one sealed column of a task of account acct (0: looked up; sql
 * binds the value as ?1, the id as ?2). */
static int update_sealed_of(store *st, int64_t acct, const char *sql, int64_t id,
                            const char *field, const char *value)
{
    store_stmt *s = store__q(st, sql);
    if (!s || bind_task(st, s, 1, acct ? acct : task_account(st, id), id, field, value) < 0)
        return -1;
    store__bind_int64(s, 2, id);
    return store__run(st, s);
}

static int update_sealed(store *st, const char *sql, int64_t id, const char *field,
                         const char *value)
{
    return update_sealed_of(st, 0, sql, id, field, value);
}

static void row_task(store *st, store_stmt *s, task *t)
{
    memset(t, 0, sizeof(*t));
    t->id = store__col_int64(s, 0);
    t->account_id = store__col_int64(s, 1);
    t->task_number = store__col_int64(s, 2);
    snprintf(t->type, sizeof(t->type), "%s", store__col_str(s, 3));
    t->sop_version = store__col_int(s, 4);
    snprintf(t->status, sizeof(t->status), "%s", store__col_str(s, 5));
    t->title = store__col_text(s, 6);
    t->instructions = store__col_text(s, 7);
    t->data = col_task(st, s, 8, t, "data");
    t->notes = col_task(st, s, 9, t, "notes");
    t->started_at = store__col_int64(s, 10);
    t->completed_at = store__col_int64(s, 11);
    t->failed_at = store__col_int64(s, 12);
    t->created_at = store__col_int64(s, 13);
    t->updated_at = store__col_int64(s, 14);
    t->committed = store__col_int(s, 15);
    t->attempts = store__col_int(s, 16);
    t->approve = store__col_int(s, 17);
    t->cancel_requested = store__col_int(s, 18);
    t->ask_name = store__col_text(s, 19);
    t->ask_prompt = col_task(st, s, 20, t, "ask_prompt");
    t->answers = col_task(st, s, 21, t, "answers");
    t->review_comment = col_task(st, s, 22, t, "review_comment");
    t->trajectory_id = store__col_int64(s, 23);
    t->not_before = store__col_int64(s, 24);
    t->interruptions = store__col_text(s, 25);
    t->outputs = col_task(st, s, 26, t, "outputs");
    t->review_prompt = col_task(st, s, 27, t, "review_prompt");
}

int store_task_get(store *st, int64_t acct, int64_t id, task *t)
{
    store_stmt *s =
        store__q(st, "SELECT " TASK_COLS " FROM tasks WHERE id=?1 AND (?2=0 OR account_id=?2)");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_int64(s, 2, acct);
    int rc = store__step(s);
    if (rc == STORE_ROW)
        row_task(st, s, t);
    store__reset(s);
    return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

int store_task_event_add(store *st, int64_t taskid, int64_t at, const char *from, const char *to,
                         const char *note)
{
    store_stmt *s = store__q(st, "INSERT INTO events(task_id, at, from_status, to_status, note)"
                                   " VALUES(?,?,?,?,?)");
    if (!s)
        return -1;
    store__bind_int64(s, 1, taskid);
    store__bind_int64(s, 2, at);
    store__bind_text(s, 3, from);
    store__bind_text(s, 4, to);
    store__bind_text(s, 5, note);
    return store__run(st, s);
}

/* The key's task (1), an expired key (2) or none (0); hash (65 bytes, may
 * be NULL) receives the request's hash ("" for a key stored before hashes). */
static int find_idempotent(store *st, int64_t acct, const char *key, int64_t now, int64_t *id,
                           char *hash)
{
    store_stmt *s = store__q(st, "SELECT task_id, created_at, request_hash FROM idempotency"
                                   " WHERE account_id=? AND key=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, key);
    int found = 0, rc = store__step(s);
    if (rc != STORE_ROW && rc != STORE_DONE)
        found = -1; /* an error (in a fast batch, perhaps an earlier creation's) */
    if (rc == STORE_ROW) {
        int64_t at = store__col_int64(s, 1);
        *id = store__col_int64(s, 0);
        found = now - at < 24LL * 3600 * 1000 ? 1 : 2; /* 2: expired */
        const char *h = store__col_str(s, 2);
        if (hash)
            snprintf(hash, 65, "%s", h ? h : "");
    }
    store__reset(s);
    return found;
}

/* store_batch_begin_fast's state: the reserved ids, each account's next
 * task number as this batch has counted it, and whether a creation failed
 * (the transaction is then lost: store_batch_end rolls it back). */
typedef struct fast_account {
    int64_t id, next;
} fast_account;
struct store_fast_batch {
    int64_t *ids;
    size_t nids, used;
    fast_account *accts;
    size_t naccts;
    int failed;
};

static void fast_free(store *st)
{
    if (st->fast) {
        free(st->fast->ids);
        free(st->fast->accts);
        free(st->fast);
        st->fast = NULL;
    }
}

/* A task's creation is its own transaction, a savepoint inside a batch
 * (group commit: one COMMIT for many creations), or in a fast batch
 * nothing of its own (a failure fails the batch). */
static int tx_begin(store *st)
{
    if (st->fast)
        return st->fast->failed ? -1 : 0;
    return st->in_batch ? store__run(st, store__q(st, "SAVEPOINT task_create")) : store_begin(st);
}

static int tx_commit(store *st)
{
    if (st->fast)
        return st->fast->failed ? -1 : 0;
    return st->in_batch ? store__run(st, store__q(st, "RELEASE task_create")) : store_commit(st);
}

static void tx_rollback(store *st)
{
    if (st->fast) {
        st->fast->failed = 1;
        return;
    }
    if (!st->in_batch) {
        store_rollback(st);
        return;
    }
    store__run(st, store__q(st, "ROLLBACK TO task_create"));
    store__run(st, store__q(st, "RELEASE task_create"));
}

int store_batch_begin(store *st)
{
    if (store_begin(st) < 0)
        return -1;
    st->in_batch = 1;
    return 0;
}

int store_batch_begin_fast(store *st, size_t n)
{
    const char *sql = st->drv->reserve_task_ids_sql;
    if (!sql || !n)
        return store_batch_begin(st);
    /* the BEGIN rides with the reservation: one round trip for both */
    if (store__begin_deferred(st) < 0) {
        store_rollback(st); /* whatever of it was sent */
        return store_batch_begin(st);
    }
    st->in_batch = 1;
    struct store_fast_batch *f = calloc(1, sizeof(*f));
    store_stmt *s = f && (f->ids = calloc(n, sizeof(*f->ids))) ? store__q(st, sql) : NULL;
    if (s) {
        store__bind_int64(s, 1, (int64_t)n);
        while (f->nids < n && store__step(s) == STORE_ROW)
            f->ids[f->nids++] = store__col_int64(s, 0);
        store__reset(s);
    }
    st->fast = f;
    if (!s || f->nids != n) {
        /* the savepoint batch needs no sequence of its own (a role may
         * insert rows without being allowed to take ids) */
        PT_WARN("store", "cannot reserve task ids for a batch (%s): creating them one by one",
                store__errmsg(st));
        fast_free(st);
        st->in_batch = 0;
        store_rollback(st);
        return store_batch_begin(st);
    }
    return 1;
}

int store_batch_end(store *st)
{
    if (!st->fast) {
        st->in_batch = 0;
        return store_commit(st);
    }
    /* each account's counter moves once, past the numbers the batch gave
     * (one row updated many times in a transaction is as many row
     * versions). These and the COMMIT ride behind the creations, read
     * together: a creation the server refused makes it skip the COMMIT,
     * so the batch is surely not stored and may be run again (-1) */
    int failed = st->fast->failed;
    for (size_t i = 0; !failed && i < st->fast->naccts; i++) {
        store_stmt *s = store__q(st, "UPDATE accounts SET next_task_number=?1 WHERE id=?2");
        if (s) {
            store__bind_int64(s, 1, st->fast->accts[i].next);
            store__bind_int64(s, 2, st->fast->accts[i].id);
        }
        failed = !s || store__run(st, s) < 0;
    }
    fast_free(st);
    st->in_batch = 0;
    if (failed) {
        store_rollback(st);
        return -1;
    }
    /* PT_ECLOSED: the COMMIT itself failed, and the server may have stored
     * it all (a connection lost on the way back); only a person's retry
     * with the same Idempotency-Key can tell */
    return store__commit_deferred(st);
}

/* Whether the fast batch has a reserved id left. */
static int f_ids_left(const store *st)
{
    return st->fast && st->fast->used < st->fast->nids;
}

/* A fast batch's next task number of account acct (read once per batch:
 * the batch holds the writer lock, so no one else moves it meanwhile), and
 * the id the task takes. PT_FOUND, PT_NONE (no such account), or -1. */
static int fast_next(store *st, int64_t acct, int64_t *id, int64_t *number)
{
    struct store_fast_batch *f = st->fast;
    if (f->used == f->nids)
        return -1;
    fast_account *a = NULL;
    for (size_t i = 0; i < f->naccts && !a; i++)
        if (f->accts[i].id == acct)
            a = &f->accts[i];
    if (!a) {
        store_stmt *s = store__q(st, "SELECT next_task_number FROM accounts WHERE id=?");
        if (!s)
            return -1;
        store__bind_int64(s, 1, acct);
        int rc = store__step(s);
        int64_t next = rc == STORE_ROW ? store__col_int64(s, 0) : 0;
        store__reset(s);
        if (rc != STORE_ROW)
            return rc == STORE_DONE ? PT_NONE : -1;
        fast_account *na = realloc(f->accts, (f->naccts + 1) * sizeof(*na));
        if (!na)
            return -1;
        f->accts = na;
        a = &f->accts[f->naccts++];
        a->id = acct;
        a->next = next;
    }
    *id = f->ids[f->used++];
    *number = a->next++;
    return PT_FOUND;
}

int store_task_by_idempotency(store *st, int64_t acct, const char *key, task *t, char *hash)
{
    int64_t id = 0;
    int f = find_idempotent(st, acct, key, pt_wall_ms(), &id, hash);
    if (f != 1)
        return f < 0 ? -1 : 0;
    return store_task_get(st, acct, id, t);
}

void store_file_aad(char *aad, size_t n, int64_t taskid, const char *path)
{
    const char *base = strrchr(path, '/');
    snprintf(aad, n, "file task=%lld name=%s", (long long)taskid, base ? base + 1 : path);
}

/* Puts an upload at path: sealed with a sealer, else as it was sent. */
static int place_file(store *st, int64_t acct, const char *aad, const task_file_in *f,
                      const char *path)
{
    if (st->sealer && st->sealer->seal_file)
        return st->sealer->seal_file(st->sealer->ud, st, acct, aad, f, path);
    if (!f->read)
        return rename(f->path, path);
    char *data = NULL;
    size_t n = 0;
    int rc = f->read(f->src, &data, &n) == 0 && pt_write_file(path, data, n, 0600) == 0 ? 0 : -1;
    free(data);
    return rc;
}

/* Moves (sealing, with a sealer) a new task's uploads into files_dir/<id>/ and records them; dir
 * receives that folder (for the caller to remove if the task fails). */
static int add_files(store *st, int64_t id, const task_new *n, char *dir, size_t dirsz)
{
    snprintf(dir, dirsz, "%s/%lld", n->files_dir, (long long)id);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    for (size_t i = 0; i < n->nfiles; i++) {
        const task_file_in *f = &n->files[i];
        /* keep the client's name for the portal, minus any path */
        const char *base = f->filename ? strrchr(f->filename, '/') : NULL;
        base = base ? base + 1 : f->filename;
        char safe[128] = "";
        for (size_t k = 0; base && base[k] && k < sizeof(safe) - 1; k++)
            safe[k] = (base[k] == '\\' || (unsigned char)base[k] < 32) ? '_' : base[k];
        if (!safe[0] || !strcmp(safe, ".") || !strcmp(safe, ".."))
            snprintf(safe, sizeof(safe), "file");
        char path[4400];
        snprintf(path, sizeof(path), "%s/%zu-%s", dir, i + 1, safe);
        char aad[4500];
        store_file_aad(aad, sizeof(aad), id, path);
        if (place_file(st, n->account, aad, f, path) < 0)
            return -1;
        store_stmt *s = store__q(st, "INSERT INTO task_files(task_id, field, filename,"
                                       " content_type, path, size) VALUES(?,?,?,?,?,?)");
        if (!s)
            return -1;
        store__bind_int64(s, 1, id);
        store__bind_text(s, 2, f->field);
        store__bind_text(s, 3, f->filename);
        store__bind_text(s, 4, f->content_type);
        store__bind_text(s, 5, path);
        store__bind_int64(s, 6, (int64_t)f->size);
        if (store__run(st, s) < 0)
            return -1;
    }
    return 0;
}

int store_task_create(store *st, const task_new *n, const char *status, task *t, char *err)
{
    int64_t acct = n->account;
    const char *idem_key = n->idem_key;
    int64_t now = pt_wall_ms(), id = 0, number = 0;
    char dir[4200] = "";
    memset(t, 0, sizeof(*t));
    if (tx_begin(st) < 0)
        return pt_errf(err, "the store is busy");
    if (st->fast && n->nfiles) { /* a failed fast batch runs again: uploads would be gone */
        tx_rollback(st);
        return pt_errf(err, "cannot store the task: uploads in a fast batch");
    }
    if (idem_key) {
        int f = find_idempotent(st, acct, idem_key, now, &id, NULL);
        if (f < 0)
            goto fail;
        if (f == 1) {
            /* a fast batch wrote nothing for it: nothing to undo */
            if (!st->fast)
                tx_rollback(st);
            if (store_task_get(st, acct, id, t) == 1)
                return 1;
            if (st->fast) /* the read failed: neither is the rest of the batch sure */
                tx_rollback(st);
            return pt_errf(err, "store error");
        }
        if (f == 2) {
            store_stmt *d = store__q(st, "DELETE FROM idempotency WHERE account_id=? AND key=?");
            store__bind_int64(d, 1, acct);
            store__bind_text(d, 2, idem_key);
            if (store__run(st, d) < 0)
                goto fail;
        }
    }
    /* title_fmt is ours ("Submit claim #%lld"), never a client's text: the
     * number goes where %lld is, in the INSERT itself, so that the row and
     * its number are one statement (one round trip on PostgreSQL). The
     * account's counter is read here and moved on just after, inside the
     * transaction: store_begin's writer lock keeps any other writer out in
     * between, on SQLite and PostgreSQL alike. */
    char pre[128], post[128], title[256];
    const char *mark = strstr(n->title_fmt, "%lld");
    snprintf(pre, sizeof(pre), "%.*s", mark ? (int)(mark - n->title_fmt) : 127, n->title_fmt);
    snprintf(post, sizeof(post), "%s", mark ? mark + 4 : "");
    if (st->fast) {
        /* the id and number known here: the row, its number and its
         * sealed data are one statement, and nothing waits for it */
        int got = fast_next(st, acct, &id, &number);
        /* its row was never sent: the batch goes on (an expired key's
         * DELETE, if sent, stands: the key had expired) */
        if (got == PT_NONE)
            return pt_errf(err, "cannot store the task: no such account");
        if (got < 0) {
            tx_rollback(st);
            return pt_errf(err, "cannot store the task: %s",
                           f_ids_left(st) ? store__errmsg(st)
                                          : "more creations than the batch reserved");
        }
        snprintf(title, sizeof(title), "%s%lld%s", pre, (long long)number, post);
        store_stmt *s = store__q(
            st, "INSERT INTO tasks(id, account_id, task_number, type, sop_version, status, title,"
                " instructions, data, created_at, updated_at)"
                " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?10)");
        if (!s)
            goto fail;
        store__bind_int64(s, 1, id);
        store__bind_int64(s, 2, acct);
        store__bind_int64(s, 3, number);
        store__bind_text(s, 4, n->type);
        store__bind_int64(s, 5, n->sop_version);
        store__bind_text(s, 6, status);
        store__bind_text(s, 7, title);
        store__bind_text(s, 8, n->instructions);
        store__bind_int64(s, 10, now);
        /* the account's counter moves at store_batch_end */
        if (bind_task(st, s, 9, acct, id, "data", n->data) < 0 || store__run(st, s) < 0)
            goto fail;
    } else {
        store_stmt *s = store__q(
            st, "INSERT INTO tasks(account_id, task_number, type, sop_version, status, title,"
                " instructions, created_at, updated_at) SELECT id, next_task_number, ?2, ?3,"
                " ?4, ?5 || next_task_number || ?6, ?7, ?8, ?8 FROM accounts WHERE id=?1"
                " RETURNING id, task_number");
        if (!s)
            goto fail;
        store__bind_int64(s, 1, acct);
        store__bind_text(s, 2, n->type);
        store__bind_int64(s, 3, n->sop_version);
        store__bind_text(s, 4, status);
        store__bind_text(s, 5, pre);
        store__bind_text(s, 6, post);
        store__bind_text(s, 7, n->instructions);
        store__bind_int64(s, 8, now);
        int rc = store__step(s);
        if (rc == STORE_ROW) {
            id = store__col_int64(s, 0);
            number = store__col_int64(s, 1);
        }
        while (rc == STORE_ROW)
            rc = store__step(s);
        store__reset(s);
        if (!id || !number || rc != STORE_DONE)
            goto fail;
        snprintf(title, sizeof(title), "%s%lld%s", pre, (long long)number, post);
        if (store__update_int(st, "UPDATE accounts SET next_task_number=?1+1 WHERE id=?2", acct,
                              number) < 0)
            goto fail;
        if (n->data && update_sealed_of(st, acct, "UPDATE tasks SET data=? WHERE id=?", id,
                                        "data", n->data) < 0)
            goto fail;
    }
    if (store_task_event_add(st, id, now, NULL, status, "created") < 0)
        goto fail;
    if (idem_key) {
        store_stmt *s = store__q(
            st, "INSERT INTO idempotency(account_id, key, task_id, created_at, request_hash)"
                " VALUES(?,?,?,?,?)");
        store__bind_int64(s, 1, acct);
        store__bind_text(s, 2, idem_key);
        store__bind_int64(s, 3, id);
        store__bind_int64(s, 4, now);
        store__bind_text(s, 5, n->idem_hash);
        if (store__run(st, s) < 0)
            goto fail;
    }
    if (n->nfiles && add_files(st, id, n, dir, sizeof(dir)) < 0)
        goto fail;
    if (tx_commit(st) < 0)
        goto fail;
    /* the row as store_task_get would read it back, without the round trip
     * (the writer's time is the group commit's throughput) */
    t->id = id;
    t->account_id = acct;
    t->task_number = number;
    snprintf(t->type, sizeof(t->type), "%s", n->type);
    t->sop_version = n->sop_version;
    snprintf(t->status, sizeof(t->status), "%s", status);
    t->created_at = t->updated_at = now;
    t->title = strdup(title);
    t->instructions = strdup(n->instructions);
    t->data = n->data ? strdup(n->data) : NULL;
    if (!t->title || !t->instructions || (n->data && !t->data)) {
        task_free(t);
        return pt_errf(err, "out of memory");
    }
    return 0;
fail:
    tx_rollback(st);
    if (dir[0])
        pt_rmtree(dir); /* with the files already moved into it */
    return pt_errf(err, "cannot store the task: %s", store__errmsg(st));
}

int store_task_list(store *st, int64_t acct, const task_filter *f, task **rows, size_t *n,
                    int64_t *next)
{
    store_stmt *s = store__q(
        st, "SELECT " TASK_COLS " FROM tasks WHERE account_id=?1"
            /* ?2 is a JSON array of known status names (api.c checks them):
             * a status is in it if its quoted name is */
            " AND (?2 IS NULL OR ?2 LIKE '%\"' || status || '\"%')"
            " AND (?3 IS NULL OR type=?3) AND (?4=0 OR id<?4)"
            " AND (?6=0 OR created_at>?6) AND (?7=0 OR created_at<?7) ORDER BY id DESC LIMIT ?5");
    int limit = f->limit;
    *next = 0;
    *n = 0;
    *rows = calloc((size_t)limit + 1, sizeof(**rows));
    if (!s || !*rows) {
        free(*rows);
        *rows = NULL;
        return -1;
    }
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, f->statuses_json);
    store__bind_text(s, 3, f->type);
    store__bind_int64(s, 4, f->after);
    store__bind_int64(s, 5, limit + 1);
    store__bind_int64(s, 6, f->created_after);
    store__bind_int64(s, 7, f->created_before);
    while (store__step(s) == STORE_ROW) {
        if (*n == (size_t)limit) { /* one more row exists: the page has a next */
            *next = (*rows)[*n - 1].id;
            break;
        }
        row_task(st, s, &(*rows)[(*n)++]);
    }
    store__reset(s);
    return 0;
}

void store_tasks_free(task *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        task_free(&rows[i]);
    free(rows);
}

/* The first column of sql's rows for a task id, as a NULL-terminated
 * array of new strings. */
static char **task_strings(store *st, const char *sql, int64_t taskid, size_t *n)
{
    store_stmt *s = store__q(st, sql);
    *n = 0;
    char **v = calloc(1, sizeof(*v));
    if (!s || !v) {
        free(v);
        return NULL;
    }
    store__bind_int64(s, 1, taskid);
    int rc;
    while ((rc = store__step(s)) == STORE_ROW) {
        char **nv = realloc(v, (*n + 2) * sizeof(*v));
        if (!nv)
            break;
        v = nv;
        v[(*n)++] = store__col_text(s, 0);
        v[*n] = NULL;
    }
    store__reset(s);
    if (rc != STORE_DONE) { /* a part of the list is no list */
        store_strings_free(v);
        *n = 0;
        return NULL;
    }
    return v;
}

char **store_task_files(store *st, int64_t taskid, size_t *n)
{
    return task_strings(st, "SELECT path FROM task_files WHERE task_id=? ORDER BY id", taskid, n);
}

char **store_trajectory_dirs(store *st, int64_t taskid, size_t *n)
{
    return task_strings(st, "SELECT dir FROM trajectories WHERE task_id=? ORDER BY id", taskid, n);
}

int64_t *store_task_purgeable(store *st, int64_t before, size_t max, size_t *n)
{
    /* not while its event is still to be sent: the client would never
     * learn the outcome (with --retain-days 0 the sweep meets it at once) */
    store_stmt *s = store__q(st, "SELECT id FROM tasks WHERE purged_at IS NULL AND updated_at<?"
                                   " AND status IN ('completed', 'completed_with_issues', 'failed')"
                                   " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE"
                                   " o.task_id=tasks.id AND o.state='pending')"
                                   " ORDER BY id LIMIT ?");
    *n = 0;
    int64_t *v = calloc(max ? max : 1, sizeof(*v));
    if (!s || !v)
        return v;
    store__bind_int64(s, 1, before);
    store__bind_int64(s, 2, (int64_t)max);
    while (*n < max && store__step(s) == STORE_ROW)
        v[(*n)++] = store__col_int64(s, 0);
    store__reset(s);
    return v;
}

int store_task_purge(store *st, int64_t id)
{
    static const char *const sql[] = {
        "UPDATE tasks SET data=NULL, notes=NULL, ask_prompt=NULL, answers=NULL,"
        " review_comment=NULL, outputs=NULL, review_prompt=NULL, purged_at=?2 WHERE id=?1",
        "DELETE FROM task_files WHERE task_id=?1 AND ?2>0",
        "DELETE FROM trajectories WHERE task_id=?1 AND ?2>0",
        "UPDATE outbox SET payload=?3 WHERE task_id=?1 AND ?2>0",
        /* an endpoint's reply may echo the event back */
        "UPDATE deliveries SET reply=NULL WHERE task_id=?1 AND ?2>0",
    };
    if (store_begin(st) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        store_stmt *s = store__q(st, sql[i]);
        if (!s) {
            store_rollback(st);
            return -1;
        }
        store__bind_int64(s, 1, id);
        store__bind_int64(s, 2, pt_wall_ms());
        store__bind_blob(s, 3, "", 0); /* an empty BLOB: purged (store__col_opened) */
        if (store__run(st, s) < 0) {
            store_rollback(st);
            return -1;
        }
    }
    return store_commit(st);
}

void store_strings_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int store_task_set_status(store *st, int64_t id, const char *status, int64_t now, const char *notes,
                          unsigned stamps)
{
    /* a final move (completed or failed stamped) drops the answers: an
     * answer is often a one-time code, of no use once the task is over */
    store_stmt *s = store__q(st, "UPDATE tasks SET status=?2, updated_at=?3,"
                                   " notes=coalesce(?4, notes),"
                                   " answers=CASE WHEN ?6<>0 OR ?7<>0 THEN NULL ELSE answers END,"
                                   " started_at=CASE WHEN ?5<>0 AND started_at IS NULL"
                                   "   THEN ?3 ELSE started_at END,"
                                   " completed_at=CASE WHEN ?6<>0 THEN ?3 ELSE completed_at END,"
                                   " failed_at=CASE WHEN ?7<>0 THEN ?3 ELSE failed_at END"
                                   " WHERE id=?1");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_text(s, 2, status);
    store__bind_int64(s, 3, now);
    if (bind_task(st, s, 4, task_account(st, id), id, "notes", notes) < 0)
        return -1;
    store__bind_int64(s, 5, (stamps & STORE_STAMP_STARTED) != 0);
    store__bind_int64(s, 6, (stamps & STORE_STAMP_COMPLETED) != 0);
    store__bind_int64(s, 7, (stamps & STORE_STAMP_FAILED) != 0);
    return store__run(st, s);
}

int store_task_oldest(store *st, const char *status, int64_t now, int64_t *id)
{
    store_stmt *s =
        store__q(st, "SELECT id FROM tasks WHERE status=? AND not_before<=? ORDER BY id LIMIT 1");
    if (!s)
        return -1;
    store__bind_text(s, 1, status);
    store__bind_int64(s, 2, now);
    int rc = store__step(s);
    if (rc == STORE_ROW)
        *id = store__col_int64(s, 0);
    store__reset(s);
    return rc == STORE_ROW ? PT_FOUND : rc == STORE_DONE ? PT_NONE : -1;
}

int store_task_mark_committed(store *st, int64_t id)
{
    return store__update_int(st, "UPDATE tasks SET committed=? WHERE id=?", id, 1);
}

int store_task_set_attempts(store *st, int64_t id, int attempts)
{
    return store__update_int(st, "UPDATE tasks SET attempts=? WHERE id=?", id, attempts);
}

int store_task_set_retry(store *st, int64_t id, int64_t not_before, const char *interruptions)
{
    store_stmt *s = store__q(st, "UPDATE tasks SET not_before=?2, interruptions=?3 WHERE id=?1");
    if (!s)
        return -1;
    store__bind_int64(s, 1, id);
    store__bind_int64(s, 2, not_before);
    store__bind_text(s, 3, interruptions);
    return store__run(st, s);
}

int store_task_request_cancel(store *st, int64_t id)
{
    return store__update_int(st, "UPDATE tasks SET cancel_requested=? WHERE id=?", id, 1);
}

int store_task_set_ask(store *st, int64_t id, const char *name, const char *prompt)
{
    store_stmt *s = store__q(st, "UPDATE tasks SET ask_name=?, ask_prompt=? WHERE id=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, name);
    if (bind_task(st, s, 2, task_account(st, id), id, "ask_prompt", prompt) < 0)
        return -1;
    store__bind_int64(s, 3, id);
    return store__run(st, s);
}

int store_task_set_outputs(store *st, int64_t id, const char *outputs_json)
{
    return update_sealed(st, "UPDATE tasks SET outputs=? WHERE id=?", id, "outputs", outputs_json);
}

int store_task_set_review_prompt(store *st, int64_t id, const char *prompt)
{
    return update_sealed(st, "UPDATE tasks SET review_prompt=? WHERE id=?", id, "review_prompt",
                         prompt);
}

int store_task_set_answers(store *st, int64_t id, const char *answers_json)
{
    return update_sealed(st, "UPDATE tasks SET answers=? WHERE id=?", id, "answers", answers_json);
}

int store_task_set_review(store *st, int64_t id, int approve, const char *comment)
{
    store_stmt *s = store__q(st, "UPDATE tasks SET review_comment=?1,"
                                   " approve=CASE WHEN ?2<>0 THEN 1 ELSE approve END WHERE id=?3");
    if (!s || bind_task(st, s, 1, task_account(st, id), id, "review_comment", comment) < 0)
        return -1;
    store__bind_int64(s, 2, approve != 0);
    store__bind_int64(s, 3, id);
    return store__run(st, s);
}

cJSON *store_task_counts(store *st)
{
    cJSON *o = cJSON_CreateObject();
    store_stmt *s =
        store__q(st, "SELECT status, type, count(*) FROM tasks GROUP BY status, type");
    while (s && store__step(s) == STORE_ROW) {
        const char *status = store__col_str(s, 0);
        const char *type = store__col_str(s, 1);
        cJSON *by = cJSON_GetObjectItem(o, status);
        if (!by)
            by = cJSON_AddObjectToObject(o, status);
        cJSON_AddNumberToObject(by, type, (double)store__col_int64(s, 2));
    }
    if (s)
        store__reset(s);
    return o;
}

int64_t store_task_count_status(store *st, const char *status)
{
    store_stmt *s = store__q(st, "SELECT count(*) FROM tasks WHERE status=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, status);
    int64_t n = store__step(s) == STORE_ROW ? store__col_int64(s, 0) : -1;
    store__reset(s);
    return n;
}

int64_t *store_task_ids(store *st, const char *status, size_t *n)
{
    store_stmt *s = store__q(st, "SELECT id FROM tasks WHERE status=? ORDER BY id");
    *n = 0;
    int64_t *v = NULL;
    if (!s)
        return NULL;
    store__bind_text(s, 1, status);
    while (store__step(s) == STORE_ROW) {
        int64_t *nv = realloc(v, (*n + 1) * sizeof(*v));
        if (!nv)
            break;
        v = nv;
        v[(*n)++] = store__col_int64(s, 0);
    }
    store__reset(s);
    return v;
}

cJSON *store_task_events(store *st, int64_t id)
{
    cJSON *arr = cJSON_CreateArray();
    store_stmt *s = store__q(
        st, "SELECT at, from_status, to_status, note FROM events WHERE task_id=? ORDER BY id");
    if (!s)
        return arr;
    store__bind_int64(s, 1, id);
    while (store__step(s) == STORE_ROW) {
        cJSON *e = cJSON_CreateObject();
        store_json_time(e, "at", store__col_int64(s, 0));
        const char *from = store__col_str(s, 1);
        const char *note = store__col_str(s, 3);
        cJSON_AddItemToObject(e, "from", from ? cJSON_CreateString(from) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "to", store__col_str(s, 2));
        cJSON_AddItemToObject(e, "note", note ? cJSON_CreateString(note) : cJSON_CreateNull());
        cJSON_AddItemToArray(arr, e);
    }
    store__reset(s);
    return arr;
}

int64_t store_trajectory_add(store *st, int64_t taskid, const char *dir)
{
    store_stmt *s = store__q(
        st, "INSERT INTO trajectories(task_id, dir, created_at) VALUES(?,?,?) RETURNING id");
    if (!s)
        return -1;
    store__bind_int64(s, 1, taskid);
    store__bind_text(s, 2, dir);
    store__bind_int64(s, 3, pt_wall_ms());
    int64_t id = 0;
    if (store__insert_id(st, s, &id) < 0)
        return -1;
    store__update_int(st, "UPDATE tasks SET trajectory_id=? WHERE id=?", taskid, id);
    return id;
}

char *store_trajectory_dir(store *st, int64_t taskid)
{
    store_stmt *s =
        store__q(st, "SELECT dir FROM trajectories WHERE task_id=? ORDER BY id DESC LIMIT 1");
    if (!s)
        return NULL;
    store__bind_int64(s, 1, taskid);
    char *d = store__step(s) == STORE_ROW ? store__col_text(s, 0) : NULL;
    store__reset(s);
    return d;
}
