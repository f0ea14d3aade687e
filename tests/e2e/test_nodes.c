/*
 * test_nodes.c - several `portier serve` nodes on one database (server/
 * node.h): two real serve processes on one SQLite file (test_nodes_pg: on
 * one PostgreSQL database, sharing the master key and the data folder, as
 * docs/deploy.md asks), one sandbox portal (`portier portal`) and the Node
 * webhook receiver. The claims are real runs in real Chromium; the
 * database is read directly to see which node holds what.
 *
 * What must hold: a task is run by one node at a time, a dead node's tasks
 * are taken over by the commit rule, no claim reaches the portal twice,
 * every event is delivered and verified, the queue limit, task numbers and
 * idempotency keys hold across nodes, and a drained node finishes what it
 * runs and exits 0.
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testcurl.h"
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "tests/support/testserve.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define NCLAIMS 40

/* ---- The set-up: a portal, an account, a receiver, nodes ------------------- */

typedef struct cluster {
    ts_server a, b; /* a's folder holds the database; b's its own logs */
    pid_t portal_pid;
    char portal[128];
    ts_receiver r;
    char key[128], whsec[128];
    char master_key_file[700]; /* PostgreSQL: the one key every node is given */
} cluster;

/* `portier portal` on a free port of its own (it outlives any node). */
static void start_portal(cluster *c)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    char data[700];
    snprintf(data, sizeof(data), "%s/portal", c->a.dir);
    c->portal_pid = fork();
    if (c->portal_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        close(p[0]);
        execl(getenv("PORTIER_BIN"), "portier", "portal", "--listen", "127.0.0.1:0", "--data",
              data, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[512] = "";
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && !strstr(buf, "/login") &&
           (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(p[0]);
    const char *u = strstr(buf, "http://");
    assert_non_null(u);
    snprintf(c->portal, sizeof(c->portal), "%.*s", (int)(strstr(u, "/login") - u), u);
}

static void cli_ok(const cluster *c, const char *const *args, const char *in, char **out)
{
    int rc = ts_cli(&c->a, args, in, out);
    if (rc != 0)
        fail_msg("portier %s %s exited %d", args[0], args[1], rc);
}

/* The account the claims run under, with the sandbox's SOP and secrets,
 * and its endpoint at the receiver. */
static void make_account(cluster *c)
{
    char hook[128], sop[600];
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/ok", c->r.port);
    const char *create[] = {"account", "create", "nodes", "--portal", c->portal, "--webhook-url",
                            hook, "--allow-private-webhooks", NULL};
    char *out = NULL;
    cli_ok(c, create, NULL, &out);
    cJSON *o = cJSON_Parse(out);
    free(out);
    snprintf(c->key, sizeof(c->key), "%s", ts_str(o, "api_key"));
    snprintf(c->whsec, sizeof(c->whsec), "%s", ts_str(o, "webhook_secret"));
    cJSON_Delete(o);
    ts_receiver_add_secret(&c->r, c->whsec);
    snprintf(sop, sizeof(sop), "%s/sops/sandbox/submit_claim.sop", PORTIER_SOURCE_DIR);
    const char *set_sop[] = {"account", "set-sop", "nodes", "submit_claim", sop, NULL};
    cli_ok(c, set_sop, NULL, NULL);
    static const char *const secrets[][2] = {{"portal_user", "portier.demo\n"},
                                             {"portal_password", "Sandbox!2025\n"},
                                             {"portal_totp", "PORTIERSANDBOXSEEDTOTP234567ABCD\n"}};
    for (size_t i = 0; i < 3; i++) {
        const char *set[] = {"account", "set-secret", "nodes", secrets[i][0], NULL};
        cli_ok(c, set, secrets[i][1], NULL);
    }
}

/* Starts node `id` on the cluster's database (s: c->a or c->b). */
static void start_node(cluster *c, ts_server *s, const char *id, const char *workers)
{
    const char *args[] = {"--node-id",     id,    "--workers",        workers,
                          "--browsers",    "1",   "--lease-seconds",  "6",
                          "--drain-seconds", "120", "--allow-private-webhooks", NULL};
    assert_int_equal(ts_start(s, args, NULL), 0);
    snprintf(s->key, sizeof(s->key), "%s", c->key);
    snprintf(s->portal, sizeof(s->portal), "%s", c->portal);
}

static void cluster_start(cluster *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    ts_init(&c->a, name);
    ts_init(&c->b, name);
    snprintf(c->b.db, sizeof(c->b.db), "%s", c->a.db);       /* one database */
    snprintf(c->b.data, sizeof(c->b.data), "%s", c->a.data); /* one data folder */
    /* ts_init gives PostgreSQL runs a master key (the environment every
     * process started from here inherits): the last one is the cluster's */
    const char *mk = getenv("PORTIER_MASTER_KEY_FILE");
    snprintf(c->master_key_file, sizeof(c->master_key_file), "%s", mk ? mk : "");
    start_portal(c);
    ts_receiver_start(&c->r, c->a.dir);
    make_account(c);
}

static void cluster_stop(cluster *c)
{
    ts_receiver_stop(&c->r);
    kill(c->portal_pid, SIGTERM);
    waitpid(c->portal_pid, NULL, 0);
    ts_cleanup(&c->b);
    ts_cleanup(&c->a);
}

/* ---- Looking at the database and the portal -------------------------------- */

/* One number from the database (as it is now), e.g. a count. */
static long long db_number(const cluster *c, const char *sql)
{
    return ts_sql_int(&c->a, sql);
}

/* The claim's service date of task i: each task's own. */
static void service_date(int i, char *iso, size_t n)
{
    snprintf(iso, n, "2025-%02d-%02d", 1 + i / 28, 1 + i % 28);
}

/* How many claims the portal received for a service date. */
static int portal_claims_on(const cluster *c, const char *iso)
{
    char url[256], us[16];
    snprintf(url, sizeof(url), "%s/__sandbox/submissions", c->portal);
    snprintf(us, sizeof(us), "%.2s/%.2s/%.4s", iso + 5, iso + 8, iso);
    tc_client *cl = tc_new();
    tc_response r = tc_request(cl, "GET", url, NULL, NULL, 0);
    tc_free(cl);
    cJSON *subs = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_true(cJSON_IsArray(subs));
    int n = 0;
    for (cJSON *x = subs->child; x; x = x->next) {
        const char *d = ts_str(cJSON_GetObjectItem(x, "fields"), "service_date");
        n += !strcmp(ts_str(x, "kind"), "claim") && d && (!strcmp(d, iso) || !strcmp(d, us));
    }
    cJSON_Delete(subs);
    return n;
}

static long long post_claim(const ts_server *s, int i, const char *idem)
{
    char body[512], iso[16], h[300];
    service_date(i, iso, sizeof(iso));
    snprintf(body, sizeof(body),
             "{\"type\":\"submit_claim\",\"data\":\"member_id: 300059049\\npatient: Louise "
             "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: %s\"}",
             iso);
    tc_client *cl = tc_new();
    snprintf(h, sizeof(h), "Authorization: Bearer %s", s->key);
    tc_header(cl, h);
    if (idem) {
        snprintf(h, sizeof(h), "Idempotency-Key: %s", idem);
        tc_header(cl, h);
    }
    char url[256];
    snprintf(url, sizeof(url), "%s/tasks", s->base);
    tc_response r = tc_request(cl, "POST", url, "application/json", body, strlen(body));
    tc_free(cl);
    if (r.status != 200)
        fail_msg("POST /tasks on %s: %ld %s", s->base, r.status, r.body ? r.body : "");
    cJSON *t = cJSON_Parse(r.body);
    tc_response_free(&r);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    return id;
}

static int is_final(const char *st)
{
    return st && (!strcmp(st, "completed") || !strcmp(st, "completed_with_issues") ||
                  !strcmp(st, "failed"));
}

/* A person's review of a task the take-over sent to pending_review: it is
 * in the portal (approve) or not (reject), as the note asks. */
static void review(const cluster *c, const ts_server *s, long long id, int i)
{
    char iso[16], path[64];
    service_date(i, iso, sizeof(iso));
    int there = portal_claims_on(c, iso);
    snprintf(path, sizeof(path), "/tasks/%lld/review", id);
    tc_response r = ts_api(s, c->key, "POST", path, "application/json",
                           there ? "{\"decision\":\"approve\"}" : "{\"decision\":\"reject\"}", 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* Every delivery the receiver logged: each event verified, every task's
 * task_finished there, and an event sent twice only when one of its
 * deliveries was the killed node's (in flight, never recorded). */
static void check_webhooks(const cluster *c, const long long *ids, int n, int64_t killed_at,
                           int *dups)
{
    cJSON *got = ts_received(&c->r, "/ok", NULL);
    *dups = 0;
    for (int i = 0; i < n; i++) {
        int deliveries = 0;
        const char *first_id = NULL;
        double first_at = 0;
        cJSON *line;
        cJSON_ArrayForEach(line, got)
        {
            const char *ev = cJSON_GetStringValue(cJSON_GetObjectItem(line, "event"));
            cJSON *tid = cJSON_GetObjectItem(line, "taskId");
            if (!ev || strcmp(ev, "task_finished") || !cJSON_IsNumber(tid) ||
                (long long)tid->valuedouble != ids[i])
                continue;
            assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(line, "verifiedWith")) >= 1);
            assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(line, "bodySignatureWith")) >= 1);
            const char *eid = cJSON_GetStringValue(cJSON_GetObjectItem(line, "id"));
            double at = cJSON_GetNumberValue(cJSON_GetObjectItem(line, "at"));
            if (!first_id) {
                first_id = eid;
                first_at = at;
            } else {
                /* one event per task, and sent again only across the kill:
                 * the killed node's delivery was in flight (it died before
                 * recording it; its arrival may be logged just after the
                 * kill), so the store records at most one that succeeded.
                 * Two recorded are two sends by live nodes. */
                assert_string_equal(eid, first_id);
                char sql[200];
                assert_true(strspn(eid, "evt_0123456789abcdef") == strlen(eid));
                snprintf(sql, sizeof(sql),
                         "SELECT count(*) FROM deliveries WHERE event_id='%s'"
                         " AND http_status BETWEEN 200 AND 299",
                         eid);
                long long recorded = db_number(c, sql);
                if (recorded > 1)
                    fail_msg("task %lld's event %s was delivered twice by live nodes (first "
                             "%.0f ms after the kill)",
                             ids[i], eid, first_at - (double)killed_at);
                (*dups)++;
            }
            deliveries++;
        }
        if (!deliveries)
            fail_msg("task %lld: no task_finished delivered", ids[i]);
    }
    cJSON_Delete(got);
}

/* Waits until every task in ids is final (reviewing what take-over sent
 * to review); the number that went through review. */
static int wait_all_final(const cluster *c, const ts_server *s, const long long *ids, int n,
                          int timeout_ms)
{
    int reviewed = 0;
    int64_t until = pt_mono_ms() + timeout_ms;
    for (int i = 0; i < n; i++) {
        for (;;) {
            cJSON *t = ts_get_task(s, c->key, ids[i]);
            const char *st = t ? ts_str(t, "status") : NULL;
            int done = is_final(st), rev = st && !strcmp(st, "pending_review");
            if (rev)
                review(c, s, ids[i], i);
            reviewed += rev;
            if (!done && pt_mono_ms() > until)
                fail_msg("task %lld never became final: %s", ids[i],
                         t ? cJSON_PrintUnformatted(t) : "(none)");
            cJSON_Delete(t);
            if (done)
                break;
            pt_sleep_ms(rev ? 50 : 250);
        }
    }
    return reviewed;
}

/* SIGTERM to a node: it exits 0 and leaves no Chromium (its folder stays:
 * the database may be in it). */
/* Processes of s's Chromium left (its profiles are in s's folder; the
 * folder's name alone would also match the other node's --db). */
static int browsers_left(const ts_server *s, int wait_ms)
{
    char needle[700];
    snprintf(needle, sizeof(needle), "%s/portier-chromium", s->dir);
    return tp_wait_none(needle, wait_ms);
}

static void finish_node(ts_server *s)
{
    int rc = ts_stop(s, 0);
    if (rc != 0) {
        char *log = ts_log(s);
        fprintf(stderr, "portier serve exited %d:\n%s\n", rc, log);
        free(log);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(browsers_left(s, 10000), 0);
}

/* ---- The tests ----------------------------------------------------------------- */

/* Two nodes work 40 claims; one is killed with -9 in the middle of runs.
 * The other takes its tasks over by the commit rule; in the end every task
 * is final, none reached the portal twice, every task's event was
 * delivered and verified. Then the survivor is drained with tasks running:
 * they finish, it exits 0, and none is lost. */
static void test_two_nodes_kill9_and_drain(void **state)
{
    (void)state;
    cluster c;
    cluster_start(&c, "nodes-kill9");
    start_node(&c, &c.a, "node-a", "2");
    start_node(&c, &c.b, "node-b", "2");

    /* an Idempotency-Key used on one node and retried on the other is one
     * task */
    long long ids[NCLAIMS];
    ids[0] = post_claim(&c.a, 0, "claim-0");
    assert_int_equal(post_claim(&c.b, 0, "claim-0"), ids[0]);
    for (int i = 1; i < NCLAIMS; i++)
        ids[i] = post_claim(i % 2 ? &c.b : &c.a, i, NULL);
    /* task numbers per account: 1..40, each once, though two nodes made them */
    assert_int_equal(db_number(&c, "SELECT count(DISTINCT task_number) FROM tasks"), NCLAIMS);
    assert_int_equal(db_number(&c, "SELECT max(task_number) FROM tasks"), NCLAIMS);

    /* the middle: a quarter done, and node a running tasks */
    int64_t until = pt_mono_ms() + 240000;
    long long done = 0, a_runs = 0;
    while (pt_mono_ms() < until) {
        done = db_number(&c, "SELECT count(*) FROM tasks WHERE status IN ('completed',"
                             " 'completed_with_issues', 'failed')");
        a_runs = db_number(&c, "SELECT count(*) FROM tasks WHERE lease_node='node-a'"
                               " AND status='running'");
        if (done >= NCLAIMS / 4 && a_runs > 0)
            break;
        pt_sleep_ms(100);
    }
    assert_true(done >= NCLAIMS / 4 && a_runs > 0);
    long long by_a = db_number(&c, "SELECT count(*) FROM events WHERE note LIKE '%node node-a'");
    long long by_b = db_number(&c, "SELECT count(*) FROM events WHERE note LIKE '%node node-b'");
    int64_t killed_at = pt_wall_ms();
    assert_int_equal(ts_stop(&c.a, 1), 128 + SIGKILL);
    assert_int_equal(browsers_left(&c.a, 10000), 0); /* its Chromium died with it */
    print_message("killed node-a with %lld tasks running on it; %lld final; claims so far: "
                  "node-a %lld, node-b %lld\n",
                  a_runs, done, by_a, by_b);
    assert_true(by_a > 0 && by_b > 0); /* both nodes worked the queue */

    /* node b takes them over (the lease holder's pid is gone) and runs the
     * rest */
    int reviewed = wait_all_final(&c, &c.b, ids, NCLAIMS, 600000);
    long long taken = db_number(&c, "SELECT count(*) FROM events WHERE note LIKE"
                                    " 'Portier stopped%'");
    print_message("%d went to review after the take-over; %lld interruptions recorded\n",
                  reviewed, taken);
    assert_true(taken >= 1);
    int completed = 0;
    for (int i = 0; i < NCLAIMS; i++) {
        char iso[16];
        service_date(i, iso, sizeof(iso));
        int n = portal_claims_on(&c, iso);
        if (n > 1)
            fail_msg("service date %s was submitted %d times", iso, n);
        cJSON *t = ts_get_task(&c.b, c.key, ids[i]);
        const char *st = ts_str(t, "status");
        if (!strcmp(st, "completed")) {
            assert_int_equal(n, 1);
            completed++;
        } else if (!strcmp(st, "failed")) {
            assert_int_equal(n, 0);
        }
        cJSON_Delete(t);
    }
    print_message("%d of %d completed on their own\n", completed, NCLAIMS);
    /* every event delivered: the deliverer's outbox is empty of pending */
    until = pt_mono_ms() + 60000;
    while (pt_mono_ms() < until &&
           db_number(&c, "SELECT count(*) FROM outbox WHERE state<>'delivered'") > 0)
        pt_sleep_ms(100);
    assert_int_equal(db_number(&c, "SELECT count(*) FROM outbox WHERE state<>'delivered'"), 0);
    int dups = 0;
    check_webhooks(&c, ids, NCLAIMS, killed_at, &dups);
    print_message("webhooks: %d events, %d sent again across the kill\n", NCLAIMS, dups);

    /* a drain: node a comes back (a new process under the same id), node b
     * gets tasks and is sent SIGTERM while it runs them */
    start_node(&c, &c.a, "node-a", "2");
    long long more[4];
    for (int i = 0; i < 4; i++)
        more[i] = post_claim(&c.b, NCLAIMS + i, NULL);
    until = pt_mono_ms() + 120000;
    long long b_runs = 0;
    while (pt_mono_ms() < until && b_runs == 0) {
        b_runs = db_number(&c, "SELECT count(*) FROM tasks WHERE lease_node='node-b'"
                               " AND status='running'");
        if (!b_runs)
            pt_sleep_ms(50);
    }
    assert_true(b_runs > 0);
    finish_node(&c.b); /* drained, then exit 0 */
    char *log = ts_log(&c.b);
    assert_null(strstr(log, "handing them back")); /* its runs ended within the drain */
    free(log);
    wait_all_final(&c, &c.a, more, 4, 300000);
    /* nothing was interrupted: the drained node's runs finished there */
    assert_int_equal(db_number(&c, "SELECT count(*) FROM events WHERE note LIKE"
                                   " 'Portier stopped%'"),
                     taken);
    for (int i = 0; i < 4; i++) {
        char iso[16];
        service_date(NCLAIMS + i, iso, sizeof(iso));
        cJSON *t = ts_get_task(&c.a, c.key, more[i]);
        assert_string_equal(ts_str(t, "status"), "completed");
        assert_null(strstr(ts_str(t, "notes"), "interrupted"));
        cJSON_Delete(t);
        assert_int_equal(portal_claims_on(&c, iso), 1);
    }
    finish_node(&c.a);
    cluster_stop(&c);
}

/* A node that stalls past its lease (SIGSTOP: alive, silent) loses its
 * task to another node, which runs it; when the stalled node wakes, its
 * run stops and moves nothing (at its next beat, its commit point or its
 * final move), and the portal has the claim once. */
static void test_stalled_node_is_fenced(void **state)
{
    (void)state;
    cluster c;
    cluster_start(&c, "nodes-stall");
    start_node(&c, &c.a, "node-a", "1");
    long long id = post_claim(&c.a, 0, NULL);
    int64_t until = pt_mono_ms() + 120000;
    while (pt_mono_ms() < until &&
           db_number(&c, "SELECT count(*) FROM tasks WHERE status='running'"
                         " AND lease_node='node-a' AND committed=0") == 0)
        pt_sleep_ms(20);
    assert_int_equal(kill(c.a.pid, SIGSTOP), 0);
    start_node(&c, &c.b, "node-b", "1");
    /* b waits the lease out (a's pid lives), takes the task over, runs it */
    long long ids[1] = {id};
    wait_all_final(&c, &c.b, ids, 1, 240000);
    assert_int_equal(kill(c.a.pid, SIGCONT), 0);
    /* a's beat (every 2 s) finds the lease gone: its run stops */
    char *log = NULL;
    until = pt_mono_ms() + 60000;
    while (pt_mono_ms() < until) {
        free(log);
        log = ts_log(&c.a);
        if (strstr(log, "another node") || strstr(log, "no longer this node's"))
            break;
        pt_sleep_ms(200);
    }
    if (!strstr(log, "another node") && !strstr(log, "no longer this node's"))
        fail_msg("node-a never noticed it lost the task:\n%s", log);
    free(log);
    char iso[16];
    service_date(0, iso, sizeof(iso));
    until = pt_mono_ms() + 30000; /* a's run winds down (it may be mid-step) */
    while (pt_mono_ms() < until &&
           db_number(&c, "SELECT count(*) FROM tasks WHERE lease_node IS NOT NULL") > 0)
        pt_sleep_ms(100);
    /* never twice; once if it completed (a run that had crossed commit
     * before the stall may still submit: that is what review is for) */
    int claims = portal_claims_on(&c, iso);
    assert_true(claims <= 1);
    cJSON *t = ts_get_task(&c.b, c.key, id);
    if (!strcmp(ts_str(t, "status"), "completed"))
        assert_int_equal(claims, 1);
    print_message("stalled node: the task ended %s, %d claim in the portal\n",
                  ts_str(t, "status"), claims);
    cJSON_Delete(t);
    finish_node(&c.a);
    finish_node(&c.b);
    cluster_stop(&c);
}

/* --max-queue holds across nodes: two API-only nodes on one database with
 * a limit of 10 take exactly 10 tasks of 30 posted to both, and /metrics
 * on each says so under its own node label. */
static void test_queue_limit_across_nodes(void **state)
{
    (void)state;
    cluster c;
    cluster_start(&c, "nodes-queue");
    const char *args_a[] = {"--node-id", "qa", "--workers", "0", "--max-queue", "10", NULL};
    const char *args_b[] = {"--node-id", "qb", "--workers", "0", "--max-queue", "10", NULL};
    assert_int_equal(ts_start(&c.a, args_a, NULL), 0);
    assert_int_equal(ts_start(&c.b, args_b, NULL), 0);
    snprintf(c.a.key, sizeof(c.a.key), "%s", c.key);
    snprintf(c.b.key, sizeof(c.b.key), "%s", c.key);
    int ok = 0, full = 0;
    for (int i = 0; i < 30; i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"type\":\"submit_claim\",\"data\":\"member_id: 300059049\\npatient: P\\n"
                 "DOB: 1949-12-23\\nplace_of_service: home\\nservice_date: 2025-05-%02d\"}",
                 1 + i % 28);
        tc_response r = ts_api(i % 2 ? &c.b : &c.a, c.key, "POST", "/tasks", "application/json",
                               body, 0);
        ok += r.status == 200;
        full += r.status == 429;
        tc_response_free(&r);
    }
    assert_int_equal(ok, 10);
    assert_int_equal(full, 20);
    assert_int_equal(db_number(&c, "SELECT count(*) FROM tasks"), 10);
    const ts_server *nodes[2] = {&c.a, &c.b};
    for (int i = 0; i < 2; i++) {
        tc_response r = ts_api(nodes[i], NULL, "GET", "/metrics", NULL, NULL, 0);
        assert_int_equal(ts_metric(r.body, "portier_nodes", NULL), 2);
        assert_non_null(strstr(r.body, i ? "portier_queue_depth{node=\"qb\"} "
                                         : "portier_queue_depth{node=\"qa\"} "));
        tc_response_free(&r);
    }
    /* a second node under a live node's id is refused */
    ts_server dup;
    ts_init(&dup, "nodes-dup");
    snprintf(dup.db, sizeof(dup.db), "%s", c.a.db);
    if (c.master_key_file[0]) /* the cluster's key, not the one ts_init made */
        setenv("PORTIER_MASTER_KEY_FILE", c.master_key_file, 1);
    assert_int_not_equal(ts_start(&dup, args_a, NULL), 0);
    char *log = ts_log(&dup);
    assert_non_null(strstr(log, "node id qa is in use"));
    free(log);
    ts_cleanup(&dup);
    finish_node(&c.b);
    finish_node(&c.a);
    cluster_stop(&c);
}

PT_TESTS("nodes", cmocka_unit_test(test_queue_limit_across_nodes),
         cmocka_unit_test(test_stalled_node_is_fenced),
         cmocka_unit_test(test_two_nodes_kill9_and_drain));
