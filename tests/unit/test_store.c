/*
 * test_store.c - the store through its public interface, on the backend
 * the run names (SQLite by default; PostgreSQL with PORTIER_TEST_DB=pg, as
 * ctest's test_store_pg.* do): the same cases and the same answers on both.
 * Sealed columns go through keys.c's real sealer.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testpg.h"
#include "server/bundle.h"
#include "server/dispatch.h"
#include "server/keys.h"
#include "server/retention.h"
#include "server/task.h"
#include "server/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    char dir[512];
    char db[700];
    keys *k;
    store *st;
} fixture;

static const char *const KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char *d = pt_mkdtemp("store");
    snprintf(f->dir, sizeof(f->dir), "%s", d);
    free(d);
    if (tpg_enabled()) {
        if (tpg_new_db(f->db, sizeof(f->db)) < 0)
            return -1;
    } else {
        snprintf(f->db, sizeof(f->db), "%s/portier.db", f->dir);
    }
    setenv("PORTIER_MASTER_KEY", KEY, 1);
    char err[PT_ERR_MAX] = "";
    f->st = store_open(f->db, 1, err);
    if (!f->st) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    f->k = keys_load(f->db, NULL, err);
    if (!f->k)
        return -1;
    keys_attach(f->k, f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    keys_free(f->k);
    pt_rmtree(f->dir);
    free(f);
    return 0;
}

/* Sets the schema's version behind the store's back (how a newer binary
 * would have left it). */
static void force_version(const fixture *f, int v)
{
    char sql[128];
    if (tpg_enabled()) {
        snprintf(sql, sizeof(sql), "UPDATE portier_schema SET version=%d", v);
        assert_int_equal(tpg_exec(f->db, sql), 0);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void schema_is_versioned_and_newer_is_refused(void **state)
{
    fixture *f = *state;
    char err[PT_ERR_MAX] = "";
    assert_int_equal(store_exists(f->db, err), 1);
    assert_string_equal(store_backend(f->st), tpg_enabled() ? "postgresql" : "sqlite");
    /* a second open finds the schema current: no migration, same data */
    int64_t id = 0;
    assert_int_equal(store_account_create(f->st, "acme", NULL, NULL, "h1", &id, err), 0);
    store *again = store_open(f->db, 0, err);
    assert_non_null(again);
    account a;
    assert_int_equal(store_account_by_id(again, id, &a), 1);
    assert_string_equal(a.name, "acme");
    account_free(&a);
    store_close(again);
    /* a schema newer than this binary is refused, with or without migrate */
    force_version(f, store_schema_version() + 1);
    assert_null(store_open(f->db, 1, err));
    assert_non_null(strstr(err, "newer than this portier knows"));
    assert_null(store_open(f->db, 0, err));
    force_version(f, store_schema_version());
}

static void accounts_keys_and_upserts(void **state)
{
    fixture *f = *state;
    char err[PT_ERR_MAX] = "";
    int64_t id = 0, id2 = 0;
    assert_int_equal(store_account_create(f->st, "acme", "http://portal", NULL,
                                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &id,
                                          err),
                     0);
    assert_true(id > 0);
    assert_int_equal(store_account_create(f->st, "acme", NULL, NULL, "other", &id2, err), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(store_account_create(f->st, "beta", NULL, NULL, "bbbb", &id2, err), 0);
    assert_true(id2 > id);
    account a;
    assert_int_equal(
        store_account_by_key(f->st, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &a),
        1);
    assert_int_equal(a.id, id);
    assert_string_equal(a.portal, "http://portal");
    assert_null(a.webhook_url);
    assert_int_equal(a.webhook_events, STORE_EVENT_FINISHED);
    account_free(&a);
    /* bytes with a NUL and high bits come back as they went in */
    const unsigned char sealed[] = {0, 1, 0xff, 0x80, 0, 'x'};
    assert_int_equal(store_account_set_whsec(f->st, id, sealed, sizeof(sealed), NULL, 0, 0), 0);
    assert_int_equal(store_account_by_name(f->st, "acme", &a), 1);
    assert_int_equal(a.whsec_len, sizeof(sealed));
    assert_memory_equal(a.whsec, sealed, sizeof(sealed));
    assert_null(a.whsec_old);
    account_free(&a);
    /* the data key is set once: a second writer does not replace it */
    unsigned char *w = NULL;
    size_t wn = 0;
    assert_int_equal(store_account_data_key(f->st, id2, &w, &wn), 0);
    assert_int_equal(store_account_init_data_key(f->st, id2, (const unsigned char *)"one", 3), 0);
    assert_int_equal(store_account_init_data_key(f->st, id2, (const unsigned char *)"two", 3), 0);
    assert_int_equal(store_account_data_key(f->st, id2, &w, &wn), 1);
    assert_memory_equal(w, "one", 3);
    free(w);
    /* a secret and a default set twice keep the second value, once */
    assert_int_equal(keys_set_secret(f->k, f->st, id, "password", "first"), 0);
    assert_int_equal(keys_set_secret(f->k, f->st, id, "password", "second"), 0);
    vars *v = vars_new();
    assert_int_equal(keys_load_secrets(f->k, f->st, id, v), 0);
    assert_int_equal(vars_count(v), 1);
    assert_string_equal(vars_get(v, "password"), "second");
    vars_free(v);
    assert_int_equal(store_default_set(f->st, id, "place", "home"), 0);
    assert_int_equal(store_default_set(f->st, id, "place", "office"), 0);
    /* SOP versions count per type; the list names the newest of each */
    int ver = 0;
    assert_int_equal(store_sop_add(f->st, id, "submit_claim", "{\"v\":1}", &ver), 0);
    assert_int_equal(ver, 1);
    assert_int_equal(store_sop_add(f->st, id, "submit_claim", "{\"v\":2}", &ver), 0);
    assert_int_equal(ver, 2);
    assert_int_equal(store_sop_add(f->st, id, "check_eligibility", "{}", &ver), 0);
    assert_int_equal(ver, 1);
    char *bundle = NULL;
    assert_int_equal(store_sop_current(f->st, id, "submit_claim", &ver, &bundle), 1);
    assert_int_equal(ver, 2);
    assert_string_equal(bundle, "{\"v\":2}");
    free(bundle);
    assert_int_equal(store_sop_get(f->st, id, "submit_claim", 1, &bundle), 1);
    assert_string_equal(bundle, "{\"v\":1}");
    free(bundle);
    /* what a new task needs in one read; every change to it (two
     * defaults, three SOPs) moved the account's config_gen */
    v = vars_new();
    assert_int_equal(store_sop_current_defaults(f->st, id, "submit_claim", &ver,
                                                bundle_add_default, v), 1);
    assert_int_equal(ver, 2);
    assert_int_equal(vars_count(v), 1);
    assert_string_equal(vars_get(v, "place"), "office");
    vars_free(v);
    v = vars_new();
    assert_int_equal(store_sop_current_defaults(f->st, id, "request_auth", &ver,
                                                bundle_add_default, v), 0);
    vars_free(v);
    account a5;
    assert_int_equal(store_account_by_id(f->st, id, &a5), 1);
    assert_int_equal(a5.config_gen, 5);
    account_free(&a5);
    cJSON *list = store_account_list(f->st);
    assert_int_equal(cJSON_GetArraySize(list), 2);
    cJSON *first = cJSON_GetArrayItem(list, 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "handlers")),
                        "check_eligibility_1 submit_claim_2");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "handlers")), "");
    cJSON_Delete(list);
}

static int64_t an_account(fixture *f)
{
    char err[PT_ERR_MAX];
    int64_t id = 0;
    assert_int_equal(store_account_create(f->st, "acme", NULL, NULL, "hash", &id, err), 0);
    return id;
}

static void new_task(fixture *f, int64_t acct, const char *data, const char *idem, task *t,
                     int expect)
{
    char err[PT_ERR_MAX] = "";
    task_new n = {.account = acct, .type = "submit_claim", .sop_version = 1,
                  .title_fmt = "Submit claim #%lld", .instructions = "do it", .data = data,
                  .idem_key = idem, .idem_hash = idem ? "h" : NULL, .files_dir = f->dir};
    assert_int_equal(store_task_create(f->st, &n, "pending", t, err), expect);
}

static void tasks_seal_number_filter_and_purge(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    task t, again;
    new_task(f, acct, "member_id: 123", "k1", &t, 0);
    assert_int_equal(t.task_number, 1);
    assert_string_equal(t.title, "Submit claim #1");
    assert_string_equal(t.data, "member_id: 123");
    assert_string_equal(t.status, "pending");
    /* the same idempotency key gives the same task back */
    new_task(f, acct, "member_id: 999", "k1", &again, 1);
    assert_int_equal(again.id, t.id);
    assert_string_equal(again.data, "member_id: 123");
    task_free(&again);
    char hash[65];
    assert_int_equal(store_task_by_idempotency(f->st, acct, "k1", &again, hash), 1);
    assert_string_equal(hash, "h");
    task_free(&again);
    /* group commit: three creations, one COMMIT */
    assert_int_equal(store_batch_begin(f->st), 0);
    task b[3];
    for (int i = 0; i < 3; i++)
        new_task(f, acct, "x", NULL, &b[i], 0);
    assert_int_equal(store_batch_end(f->st), 0);
    assert_int_equal(b[2].task_number, 4);
    /* a status change with its stamps and an event, in one transaction */
    int64_t now = pt_wall_ms();
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_task_set_status(f->st, b[0].id, "running", now, NULL,
                                           STORE_STAMP_STARTED),
                     0);
    assert_int_equal(store_task_event_add(f->st, b[0].id, now, "pending", "running", "go"), 0);
    assert_int_equal(store_commit(f->st), 0);
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_task_set_status(f->st, b[0].id, "completed", now + 1, "all done",
                                           STORE_STAMP_COMPLETED),
                     0);
    assert_int_equal(store_outbox_add(f->st, acct, b[0].id, "task_finished", "evt_1", "{\"a\":1}"),
                     0);
    assert_int_equal(store_commit(f->st), 0);
    /* a rolled-back change leaves nothing */
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_task_set_status(f->st, b[1].id, "failed", now, "no", STORE_STAMP_FAILED),
                     0);
    store_rollback(f->st);
    task g;
    assert_int_equal(store_task_get(f->st, acct, b[1].id, &g), 1);
    assert_string_equal(g.status, "pending");
    task_free(&g);
    assert_int_equal(store_task_get(f->st, acct, b[0].id, &g), 1);
    assert_string_equal(g.status, "completed");
    assert_string_equal(g.notes, "all done");
    assert_true(g.started_at == now && g.completed_at == now + 1 && !g.failed_at);
    task_free(&g);
    assert_int_equal(store_task_get(f->st, acct + 1, b[0].id, &g), 0); /* another account's */
    cJSON *ev = store_task_events(f->st, b[0].id);
    assert_int_equal(cJSON_GetArraySize(ev), 2); /* created, running */
    cJSON_Delete(ev);
    /* the listing: by status (a JSON array), newest first, paged */
    task *rows = NULL;
    size_t n = 0;
    int64_t next = 0;
    task_filter flt = {.statuses_json = "[\"pending\"]", .limit = 2};
    assert_int_equal(store_task_list(f->st, acct, &flt, &rows, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, b[2].id);
    assert_int_equal(rows[1].id, b[1].id);
    assert_int_equal(next, b[1].id);
    store_tasks_free(rows, n);
    flt.after = next;
    assert_int_equal(store_task_list(f->st, acct, &flt, &rows, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, t.id);
    assert_int_equal(next, 0);
    store_tasks_free(rows, n);
    task_filter done = {.statuses_json = "[\"completed\",\"failed\"]", .limit = 10,
                        .created_after = now - 3600 * 1000};
    assert_int_equal(store_task_list(f->st, acct, &done, &rows, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, b[0].id);
    store_tasks_free(rows, n);
    assert_int_equal(store_task_count_status(f->st, "pending"), 3);
    int64_t oldest = 0;
    assert_int_equal(store_task_oldest(f->st, "pending", now + 10, &oldest), PT_FOUND);
    assert_int_equal(oldest, t.id);
    /* trajectories take ids; purge keeps the row, drops the data */
    assert_true(store_trajectory_add(f->st, b[0].id, "/tmp/tr1") > 0);
    char *dir = store_trajectory_dir(f->st, b[0].id);
    assert_string_equal(dir, "/tmp/tr1");
    free(dir);
    /* not while its event is still to be sent: the client would never learn
     * the outcome */
    size_t np = 0;
    int64_t *ids = store_task_purgeable(f->st, now + 60000, 10, &np);
    assert_int_equal(np, 0);
    free(ids);
    outbox_row o;
    assert_int_equal(store_outbox_for_task(f->st, b[0].id, &o), 1);
    assert_string_equal(o.payload, "{\"a\":1}");
    outbox_attempt rec = {1, "https://example.com/hook", "ok"};
    assert_int_equal(store_outbox_attempt(f->st, o.id, now, 200, 5, NULL, OUTBOX_DELIVERED, 0, &rec),
                     0);
    outbox_row_free(&o);
    ids = store_task_purgeable(f->st, now + 60000, 10, &np);
    assert_int_equal(np, 1);
    assert_int_equal(ids[0], b[0].id);
    free(ids);
    assert_int_equal(store_task_purge(f->st, b[0].id), 0);
    assert_int_equal(store_task_get(f->st, acct, b[0].id, &g), 1);
    assert_null(g.data);
    assert_null(g.notes);
    assert_null(g.outputs);
    assert_string_equal(g.status, "completed");
    task_free(&g);
    assert_int_equal(store_outbox_for_task(f->st, b[0].id, &o), 1);
    assert_null(o.payload); /* the event's data went with the task's */
    outbox_row_free(&o);
    cJSON *att = store_deliveries(f->st, b[0].id);
    assert_int_equal(cJSON_GetArraySize(att), 1);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(att, 0), "reply")));
    cJSON_Delete(att);
    for (int i = 0; i < 3; i++)
        task_free(&b[i]);
    task_free(&t);
}

/* Runs SQL that differs by backend on the fixture's database. */
static void exec_on(const fixture *f, const char *sqlite_sql, const char *pg_sql)
{
    if (tpg_enabled()) {
        assert_int_equal(tpg_exec(f->db, pg_sql), 0);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sqlite_sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Group commit: a creation whose last write fails (its event, refused by
 * a trigger; on PostgreSQL a write whose answer is read later) is undone
 * alone, inside its savepoint; the others of the batch commit, and the
 * numbers have no gap. */
static void a_failed_creation_leaves_the_batch_whole(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    exec_on(f,
            "CREATE TRIGGER no_second BEFORE UPDATE OF data ON tasks"
            " WHEN NEW.instructions='refuse' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            "CREATE FUNCTION no_second() RETURNS trigger AS $$ BEGIN"
            " IF NEW.instructions='refuse' THEN RAISE EXCEPTION 'refused'; END IF;"
            " RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER no_second BEFORE UPDATE OF"
            " data ON tasks FOR EACH ROW EXECUTE FUNCTION no_second()");
    char err[PT_ERR_MAX] = "";
    task_new n = {.account = acct, .type = "submit_claim", .sop_version = 1,
                  .title_fmt = "Submit claim #%lld", .instructions = "do it", .data = "d",
                  .files_dir = f->dir};
    task t[3];
    int rc[3];
    assert_int_equal(store_batch_begin(f->st), 0);
    for (int i = 0; i < 3; i++) {
        n.instructions = i == 1 ? "refuse" : "do it";
        rc[i] = store_task_create(f->st, &n, "pending", &t[i], err);
    }
    assert_int_equal(store_batch_end(f->st), 0);
    assert_int_equal(rc[0], 0);
    assert_int_equal(rc[1], -1);
    assert_int_equal(rc[2], 0);
    assert_int_equal(t[2].task_number, 2);
    task g;
    assert_int_equal(store_task_get(f->st, acct, t[0].id, &g), 1);
    assert_int_equal(g.task_number, 1);
    task_free(&g);
    assert_int_equal(store_task_get(f->st, acct, t[2].id, &g), 1);
    assert_int_equal(g.task_number, 2);
    assert_string_equal(g.instructions, "do it");
    assert_string_equal(g.data, "d");
    task_free(&g);
    assert_int_equal(store_task_count_status(f->st, "pending"), 2);
    task_free(&t[0]);
    task_free(&t[2]);
}

/* The database refuses to insert a task whose instructions are "refuse"
 * (a trigger), the way a constraint would. */
static void refuse_tasks_marked_refuse(const fixture *f)
{
    exec_on(f,
            "CREATE TRIGGER no_insert BEFORE INSERT ON tasks"
            " WHEN NEW.instructions='refuse' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            "CREATE FUNCTION no_insert() RETURNS trigger AS $$ BEGIN"
            " IF NEW.instructions='refuse' THEN RAISE EXCEPTION 'refused'; END IF;"
            " RETURN NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER no_insert BEFORE INSERT"
            " ON tasks FOR EACH ROW EXECUTE FUNCTION no_insert()");
}

/* PostgreSQL: a connection lost inside a transaction (its backend
 * terminated) is made again by the next statement that waits for the
 * server, but the rest of the transaction is refused until its ROLLBACK,
 * in a savepoint batch and in a fast one alike: nothing of it commits
 * piece by piece on the new connection, and the batch's end says it is
 * not stored. In the fast batch the loss is met by the read of a second
 * account's next number; a third creation after it is refused. Then the
 * store works as before. */
static void a_transaction_lost_with_its_connection_runs_no_more(void **state)
{
    fixture *f = *state;
    if (!tpg_enabled())
        skip();
    int64_t acct = an_account(f), other = 0;
    char err[PT_ERR_MAX];
    assert_int_equal(store_account_create(f->st, "other", NULL, NULL, "hash2", &other, err), 0);
    /* waits (up to 5 s) until the store's backend is gone */
    static const char kill[] = "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                               " WHERE datname=current_database() AND pid<>pg_backend_pid()";
    for (int fast = 0; fast < 2; fast++) {
        task a, b, c;
        assert_true(fast ? store_batch_begin_fast(f->st, 3) == 1 : store_batch_begin(f->st) == 0);
        new_task(f, acct, "member_id: 1", NULL, &a, 0);
        task_free(&a);
        assert_int_equal(tpg_exec(f->db, kill), 0);
        task_new n = {.account = other, .type = "submit_claim", .sop_version = 1,
                      .title_fmt = "Submit claim #%lld", .instructions = "do it",
                      .data = "member_id: 2", .files_dir = f->dir};
        assert_int_equal(store_task_create(f->st, &n, "pending", &b, err), -1);
        n.account = acct;
        n.data = "member_id: 3";
        assert_int_equal(store_task_create(f->st, &n, "pending", &c, err), -1);
        assert_int_equal(store_batch_end(f->st), -1);
        char *count = tpg_value(f->db, "SELECT count(*) FROM tasks");
        assert_string_equal(count, "0");
        free(count);
    }
    task after;
    new_task(f, acct, "after", NULL, &after, 0);
    assert_int_equal(after.task_number, 1);
    task_free(&after);
}

/* The fast batch (PostgreSQL: ids reserved, numbers counted here, one
 * pipeline; SQLite: a savepoint batch): consecutive numbers, sealed data
 * that opens, an idempotency key used twice in one batch is one task, and
 * the account's counter moves past the batch. One refused creation fails
 * the whole fast batch: nothing of it is stored, the counter stays. */
static void a_fast_batch_is_whole_or_nothing(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    task t0, b[3];
    new_task(f, acct, "before", NULL, &t0, 0);
    int fast = store_batch_begin_fast(f->st, 4);
    assert_int_equal(fast, tpg_enabled() ? 1 : 0);
    new_task(f, acct, "member_id: 1", "fk", &b[0], 0);
    new_task(f, acct, "member_id: 2", "fk", &b[1], 1); /* the same key: the same task */
    new_task(f, acct, "member_id: 3", NULL, &b[2], 0);
    char err[PT_ERR_MAX] = "";
    task none;
    task_new stranger = {.account = acct + 1000, .type = "submit_claim", .sop_version = 1,
                         .title_fmt = "Submit claim #%lld", .instructions = "do it",
                         .data = "x", .files_dir = f->dir};
    /* a creation for no account fails alone, and the batch goes on */
    assert_int_equal(store_task_create(f->st, &stranger, "pending", &none, err), -1);
    assert_int_equal(store_batch_end(f->st), 0);
    assert_int_equal(b[1].id, b[0].id);
    assert_int_equal(b[0].task_number, 2);
    assert_int_equal(b[2].task_number, 3);
    assert_string_equal(b[2].title, "Submit claim #3");
    task g;
    assert_int_equal(store_task_get(f->st, acct, b[2].id, &g), 1);
    assert_string_equal(g.data, "member_id: 3");
    assert_int_equal(g.task_number, 3);
    task_free(&g);
    assert_int_equal(store_task_by_idempotency(f->st, acct, "fk", &g, NULL), 1);
    assert_int_equal(g.id, b[0].id);
    assert_string_equal(g.data, "member_id: 1");
    task_free(&g);
    for (int i = 0; i < 3; i++)
        task_free(&b[i]);
    task after;
    new_task(f, acct, "after", NULL, &after, 0);
    assert_int_equal(after.task_number, 4);
    task_free(&after);

    /* a creation the database refuses (a trigger on the row itself) */
    refuse_tasks_marked_refuse(f);
    long long before = store_task_count_status(f->st, "pending");
    task_new n = stranger;
    n.account = acct;
    task c[3];
    int rc[3];
    assert_true(store_batch_begin_fast(f->st, 3) >= 0);
    for (int i = 0; i < 3; i++) {
        n.instructions = i == 1 ? "refuse" : "do it";
        rc[i] = store_task_create(f->st, &n, "pending", &c[i], err);
    }
    int end = store_batch_end(f->st);
    if (tpg_enabled()) { /* one pipeline: its failure is the batch's */
        assert_int_equal(end, -1);
        assert_int_equal(store_task_count_status(f->st, "pending"), before);
    } else { /* savepoints: the refused one alone is undone */
        assert_int_equal(end, 0);
        assert_int_equal(rc[1], -1);
        assert_int_equal(store_task_count_status(f->st, "pending"), before + 2);
    }
    for (int i = 0; i < 3; i++)
        if (rc[i] == 0)
            task_free(&c[i]);
    /* the counter is where the stored tasks left it */
    new_task(f, acct, "last", NULL, &after, 0);
    assert_int_equal(after.task_number, tpg_enabled() ? 5 : 7);
    task_free(&after);
    task_free(&t0);
}

/* The writer's batches (dispatch.c): a batch without uploads is tried as
 * one fast batch first; when one creation in it is refused, each is tried
 * again on its own, so only that one fails. Creations from several
 * threads at once, so that batches hold more than one. */
typedef struct create_job {
    dispatch *d;
    task_new n;
    task t;
    int rc;
} create_job;

static void *create_one(void *arg)
{
    create_job *j = arg;
    char err[PT_ERR_MAX] = "";
    j->rc = dispatch_create(j->d, &j->n, &j->t, err);
    return NULL;
}

static void the_writer_runs_a_failed_batch_again_one_by_one(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    refuse_tasks_marked_refuse(f);
    char err[PT_ERR_MAX] = "";
    dispatch *d = dispatch_start(f->db, f->k, 0, err);
    assert_non_null(d);
    enum { N = 24 };
    create_job jobs[N];
    pthread_t th[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            jobs[i] = (create_job){.d = d,
                                   .n = {.account = acct, .type = "submit_claim",
                                         .sop_version = 1, .title_fmt = "Submit claim #%lld",
                                         .instructions = i % 8 == 3 ? "refuse" : "do it",
                                         .data = "member_id: 7", .files_dir = f->dir}};
            assert_int_equal(pthread_create(&th[i], NULL, create_one, &jobs[i]), 0);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(jobs[i].rc, i % 8 == 3 ? -1 : 0);
            if (jobs[i].rc == 0)
                task_free(&jobs[i].t);
        }
    }
    dispatch_stop(d);
    dispatch_free(d);
    /* every accepted one stored, numbered 1..n without a gap */
    long long stored = store_task_count_status(f->st, "pending");
    assert_int_equal(stored, 3 * (N - N / 8));
    task last;
    new_task(f, acct, "last", NULL, &last, 0);
    assert_int_equal(last.task_number, stored + 1);
    task_free(&last);
}

/* A claim holds the task's row only (PostgreSQL: no writer lock), so a
 * move that reads the task and then writes it must see a claim that
 * commits in between: a cancel of a pending task that another connection
 * is claiming waits for the claim and then finds it dispatching (and
 * leaves it to the run), instead of failing a task that a worker holds. */
typedef struct cancel_job {
    fixture *f;
    int64_t id;
    int rc;
} cancel_job;

static void *cancel_one(void *arg)
{
    cancel_job *j = arg;
    char err[PT_ERR_MAX] = "";
    store *st = store_open(j->f->db, 0, err);
    assert_non_null(st);
    keys_attach(j->f->k, st);
    task_ctx cx = {st, NULL, NULL, NULL, 0, 0};
    j->rc = task_cancel(&cx, j->id, "Cancelled by the client.");
    store_close(st);
    return NULL;
}

static void a_move_waits_for_a_claim_in_flight(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    task t;
    new_task(f, acct, "member_id: 5", NULL, &t, 0);
    char sql[200];
    snprintf(sql, sizeof(sql),
             "UPDATE tasks SET status='dispatching', lease_node='n1' WHERE id=%lld"
             " AND status='pending'",
             (long long)t.id);
    /* the claim: begun and not committed, on a connection of its own */
    PGconn *pg = NULL;
    sqlite3 *lite = NULL;
    if (tpg_enabled()) {
        pg = PQconnectdb(f->db);
        assert_int_equal(PQstatus(pg), CONNECTION_OK);
        PGresult *r = PQexec(pg, "BEGIN");
        PQclear(r);
        r = PQexec(pg, sql);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    } else {
        assert_int_equal(sqlite3_open(f->db, &lite), SQLITE_OK);
        assert_int_equal(sqlite3_exec(lite, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(lite, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    cancel_job j = {f, t.id, -100};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_one, &j), 0);
    pt_sleep_ms(300); /* the cancel reads the task now, and waits */
    if (pg) {
        PGresult *r = PQexec(pg, "COMMIT");
        PQclear(r);
        PQfinish(pg);
    } else {
        assert_int_equal(sqlite3_exec(lite, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(lite);
    }
    pthread_join(th, NULL);
    assert_int_equal(j.rc, PT_NONE); /* not pending any more: not cancelled here */
    task g;
    assert_int_equal(store_task_get(f->st, acct, t.id, &g), 1);
    assert_string_equal(g.status, "dispatching");
    task_free(&g);
    task_free(&t);
}

/* A list the store could not read is no list (NULL), never an empty one:
 * a run would start without its uploads, and the retention sweep would
 * purge a task whose folders it then never removes. The task waits for a
 * sweep that can read them. */
static void a_list_the_store_cannot_read_is_none(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    task t;
    new_task(f, acct, "x", NULL, &t, 0);
    int64_t now = pt_wall_ms();
    assert_int_equal(store_task_set_status(f->st, t.id, "failed", now - 10, "no",
                                           STORE_STAMP_FAILED),
                     0);
    size_t n = 9;
    char **v = store_task_files(f->st, t.id, &n);
    assert_non_null(v);
    assert_int_equal(n, 0);
    store_strings_free(v);
    exec_on(f, "ALTER TABLE task_files RENAME TO task_files_away",
            "ALTER TABLE task_files RENAME TO task_files_away");
    n = 9;
    assert_null(store_task_files(f->st, t.id, &n));
    assert_int_equal(n, 0);
    size_t tasks = 9, files = 0, trajectories = 0;
    assert_int_equal(retention_sweep(f->st, now, 0, 10, &tasks, &files, &trajectories), -1);
    assert_int_equal(tasks, 0);
    task g;
    assert_int_equal(store_task_get(f->st, acct, t.id, &g), 1);
    assert_non_null(g.data); /* not purged */
    task_free(&g);
    exec_on(f, "ALTER TABLE task_files_away RENAME TO task_files",
            "ALTER TABLE task_files_away RENAME TO task_files");
    assert_int_equal(retention_sweep(f->st, now, 0, 10, &tasks, &files, &trajectories), 0);
    assert_int_equal(tasks, 1);
    task_free(&t);
}

static void outbox_due_attempts_and_recovery(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof(id), "evt_%d", i);
        assert_int_equal(store_outbox_add(f->st, acct, 0, "task_finished", id, "{}"), 0);
    }
    outbox_row rows[8];
    size_t n = 0;
    int64_t now = pt_wall_ms() + 1000;
    assert_int_equal(store_outbox_due(f->st, "test-node", now, now + 60000, NULL, 0, 2, rows, 8, &n), 0);
    assert_int_equal(n, 2); /* at most two of one account */
    int64_t first = rows[0].id;
    assert_string_equal(rows[0].event_id, "evt_0");
    for (size_t i = 0; i < n; i++)
        outbox_row_free(&rows[i]);
    assert_int_equal(store_outbox_due(f->st, "test-node", now, now + 60000, &first, 1, 5, rows, 8, &n), 0);
    assert_int_equal(n, 2); /* the busy one skipped */
    for (size_t i = 0; i < n; i++)
        outbox_row_free(&rows[i]);
    outbox_attempt rec = {.attempt = 1, .url = "http://x", .reply = "nope"};
    assert_int_equal(store_outbox_attempt(f->st, first, now, 500, 12, "HTTP 500", OUTBOX_DEAD, 0,
                                          &rec),
                     0);
    assert_int_equal(store_outbox_attempt(f->st, rows[0].id + 1, now, 200, 3, NULL,
                                          OUTBOX_DELIVERED, 0, NULL),
                     0);
    cJSON *c = store_outbox_counts(f->st);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "dead")), 1);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "delivered")), 1);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "pending")), 1);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "attempts")), 2);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(c, "failures")), 1);
    cJSON_Delete(c);
    cJSON *att = store_account_attempts(f->st, acct, 10);
    assert_int_equal(cJSON_GetArraySize(att), 2);
    cJSON *dead = cJSON_GetArrayItem(att, 1);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(dead, "http_status")), 500);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(dead, "task_id")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(dead, "reply")), "nope");
    cJSON_Delete(att);
    int64_t back = 0;
    assert_int_equal(store_outbox_recover(f->st, acct, now - 1, &back), 0);
    assert_int_equal(back, 1);
    assert_true(store_outbox_next_at(f->st) > 0);
}

static void users_and_sessions(void **state)
{
    fixture *f = *state;
    int64_t acct = an_account(f);
    char err[PT_ERR_MAX] = "";
    const char *h = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    assert_int_equal(store_user_add(f->st, acct, "ann", h, err), 0);
    assert_int_equal(store_user_add(f->st, acct, "ann", "dddd", err), -1);
    assert_non_null(strstr(err, "already has a user named"));
    int64_t a = 0, u = 0;
    char name[64];
    assert_int_equal(store_user_by_key(f->st, h, &a, &u, name), 1);
    assert_int_equal(a, acct);
    assert_string_equal(name, "ann");
    web_session ws = {.account_id = acct, .user_id = u, .actor = "ann", .csrf = "tok",
                      .created_at = 5, .seen_at = 5};
    assert_int_equal(store_session_add(f->st, "sess1", &ws), 0);
    assert_int_equal(store_session_touch(f->st, "sess1", 9), 0);
    web_session got;
    assert_int_equal(store_session_get(f->st, "sess1", &got), 1);
    assert_int_equal(got.seen_at, 9);
    assert_string_equal(got.csrf, "tok");
    assert_int_equal(store_user_remove(f->st, acct, "ann"), 1);
    assert_int_equal(store_session_get(f->st, "sess1", &got), 0); /* ended with the user */
    assert_int_equal(store_user_remove(f->st, acct, "ann"), 0);
    assert_int_equal(store_action_add(f->st, 1, "ann", "approved"), 0);
    cJSON *acts = store_actions(f->st, 1);
    assert_int_equal(cJSON_GetArraySize(acts), 1);
    cJSON_Delete(acts);
}

/* Which --db names PostgreSQL, and that its master key never comes from
 * beside the database (there is no beside: keys_load refuses). */
static void postgres_targets_and_their_key(void **state)
{
    (void)state;
    assert_true(store_is_pg("postgres://u@h:5432/db"));
    assert_true(store_is_pg("postgresql:///db?host=/tmp"));
    assert_true(store_is_pg("host=/tmp port=5432 dbname=t1"));
    assert_true(store_is_pg("dbname=portier"));
    assert_false(store_is_pg("portier.db"));
    assert_false(store_is_pg("/var/lib/portier/portier.db"));
    assert_false(store_is_pg("./a=b.db"));
    char *saved = getenv("PORTIER_MASTER_KEY") ? strdup(getenv("PORTIER_MASTER_KEY")) : NULL;
    char *saved_file =
        getenv("PORTIER_MASTER_KEY_FILE") ? strdup(getenv("PORTIER_MASTER_KEY_FILE")) : NULL;
    unsetenv("PORTIER_MASTER_KEY");
    unsetenv("PORTIER_MASTER_KEY_FILE");
    char err[PT_ERR_MAX] = "";
    assert_null(keys_load("host=/nonexistent dbname=portier", NULL, err));
    assert_non_null(strstr(err, "PORTIER_MASTER_KEY"));
    assert_non_null(strstr(err, "--master-key-file"));
    setenv("PORTIER_MASTER_KEY", KEY, 1);
    keys *k = keys_load("postgres://u@h/db", NULL, err);
    assert_non_null(k);
    assert_false(keys_beside_db(k));
    keys_free(k);
    if (saved)
        setenv("PORTIER_MASTER_KEY", saved, 1);
    if (saved_file)
        setenv("PORTIER_MASTER_KEY_FILE", saved_file, 1);
    free(saved);
    free(saved_file);
}

PT_TESTS("store", cmocka_unit_test(postgres_targets_and_their_key),
         cmocka_unit_test_setup_teardown(schema_is_versioned_and_newer_is_refused, setup, teardown),
         cmocka_unit_test_setup_teardown(accounts_keys_and_upserts, setup, teardown),
         cmocka_unit_test_setup_teardown(tasks_seal_number_filter_and_purge, setup, teardown),
         cmocka_unit_test_setup_teardown(a_failed_creation_leaves_the_batch_whole, setup, teardown),
         cmocka_unit_test_setup_teardown(a_fast_batch_is_whole_or_nothing, setup, teardown),
         cmocka_unit_test_setup_teardown(a_transaction_lost_with_its_connection_runs_no_more,
                                         setup, teardown),
         cmocka_unit_test_setup_teardown(a_move_waits_for_a_claim_in_flight, setup, teardown),
         cmocka_unit_test_setup_teardown(the_writer_runs_a_failed_batch_again_one_by_one, setup,
                                         teardown),
         cmocka_unit_test_setup_teardown(a_list_the_store_cannot_read_is_none, setup, teardown),
         cmocka_unit_test_setup_teardown(outbox_due_attempts_and_recovery, setup, teardown),
         cmocka_unit_test_setup_teardown(users_and_sessions, setup, teardown));
