/*
 * test_sealing.c - PHI sealed at rest, end to end: `portier serve --demo`
 * runs the quickstart claim and an appeal with an uploaded file; then the
 * database, its WAL and the data folder (the sandbox's own records aside)
 * hold none of the task's values, the seeded secrets, the file's bytes or a
 * picture, while the API still answers with all of them opened; and while
 * an upload's body arrives, its spool holds nothing readable. Also:
 * retention purges what is due and says how much; rows written before
 * sealing still read; answers go once a task is final; the element
 * fingerprints the runs leave are sealed too.
 */
#define _GNU_SOURCE
#include "server/keys.h"
#include "server/store.h"
#include "tests/support/testapi.h"
#include "tests/support/testcurl.h"
#include "tests/support/testmain.h"
#include "tests/support/testserve.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char quickstart[] =
    "{\n\"type\": \"submit_claim\",\n\"data\": \"member_id: 300059049\\npatient: Louise "
    "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: 2025-03-25\"\n}";

typedef struct needle {
    const char *what;
    const void *bytes;
    size_t len;
} needle;

/* How many of the needles occur in the file at path (each named on stderr). */
static int hits_in_file(const char *path, const needle *nd, size_t nn)
{
    char *data = NULL;
    size_t len = 0;
    if (pt_read_file(path, 1u << 30, &data, &len) < 0)
        return 0;
    int hits = 0;
    for (size_t i = 0; i < nn; i++)
        if (memmem(data, len, nd[i].bytes, nd[i].len)) {
            fprintf(stderr, "found %s in %s\n", nd[i].what, path);
            hits++;
        }
    free(data);
    return hits;
}

/* Needles in every file under dir, except the folder named skip. */
static int hits_in_tree(const char *dir, const char *skip, const needle *nd, size_t nn,
                        int *files)
{
    DIR *d = opendir(dir);
    int hits = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4200];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (lstat(p, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (!skip || strcmp(e->d_name, skip))
                hits += hits_in_tree(p, NULL, nd, nn, files);
        } else if (S_ISREG(sb.st_mode)) {
            (*files)++;
            hits += hits_in_file(p, nd, nn);
        }
    }
    if (d)
        closedir(d);
    return hits;
}

/* Hex digits into n bytes (a new buffer), or NULL if they are not hex. */
static unsigned char *from_hex(const char *hex, size_t *n)
{
    size_t len = strlen(hex) / 2;
    unsigned char *b = malloc(len + 1);
    for (size_t i = 0; b && i < len; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(b);
            return NULL;
        }
        b[i] = (unsigned char)v;
    }
    *n = len;
    return b;
}

/* Needles in what a PostgreSQL database holds: every column of every
 * table, read back through SQL as bytes (BYTEA as it is, the rest as their
 * UTF-8 text). Its files on disk are no stand-in for SQLite's: they live in
 * the test server's own cluster, and TOAST may compress a long value, so a
 * clear value there need not show. *tables: how many were read. */
static int hits_in_pg(const ts_server *s, const needle *nd, size_t nn, int *tables)
{
    char *cols = ts_sql_text(s, "SELECT string_agg(table_name || ' ' || column_name || ' '"
                                " || (data_type = 'bytea')::int, E'\\n'"
                                " ORDER BY table_name, ordinal_position)"
                                " FROM information_schema.columns"
                                " WHERE table_schema = current_schema()");
    assert_non_null(cols);
    int hits = 0;
    pt_buf q;
    pt_buf_init(&q, 0);
    /* a line per column, a table's together: one query per table */
    for (char *line = cols; line && *line;) {
        char *next = strchr(line, '\n');
        next = next ? next + 1 : NULL;
        char t[128], c[128], next_t[128] = "";
        int bytes = 0;
        assert_int_equal(sscanf(line, "%127s %127s %d", t, c, &bytes), 3);
        if (next)
            sscanf(next, "%127s", next_t);
        line = next;
        if (!q.len)
            pt_buf_appendf(&q, "SELECT encode(coalesce(string_agg(''::bytea");
        /* a NUL after each column: no needle is made of two of them */
        if (bytes)
            pt_buf_appendf(&q, " || coalesce(\"%s\", '') || '\\x00'", c);
        else
            pt_buf_appendf(&q, " || coalesce(convert_to(\"%s\"::text, 'UTF8'), '') || '\\x00'", c);
        if (!strcmp(next_t, t))
            continue; /* more of this table's columns */
        pt_buf_appendf(&q, ", '\\x0a'::bytea), ''::bytea), 'hex') FROM \"%s\"", t);
        char *sql = pt_buf_take(&q);
        char *hex = ts_sql_text(s, sql);
        assert_non_null(hex);
        size_t len = 0;
        unsigned char *data = from_hex(hex, &len);
        assert_non_null(data);
        for (size_t i = 0; i < nn; i++)
            if (memmem(data, len, nd[i].bytes, nd[i].len)) {
                fprintf(stderr, "found %s in table %s\n", nd[i].what, t);
                hits++;
            }
        (*tables)++;
        free(data);
        free(hex);
        free(sql);
    }
    free(cols);
    return hits;
}

/* Runs a task to completed; its notes (new). */
static char *completed_notes(const ts_server *s, long long id)
{
    cJSON *t = ts_wait_status(s, id, "completed,completed_with_issues,failed", 90000);
    assert_string_equal(ts_str(t, "status"), "completed");
    char *notes = strdup(ts_str(t, "notes"));
    cJSON_Delete(t);
    return notes;
}

/* Posts the appeal with its letter; the task's id. */
static long long post_appeal(const ts_server *s, char **pdf, size_t *pdflen)
{
    char path[4200], *data = NULL;
    pt_home_path("sops/sandbox/examples/submit_appeal/appeal-letter.pdf", path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1u << 20, pdf, pdflen), 0);
    pt_home_path("sops/sandbox/examples/submit_appeal.txt", path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1u << 20, &data, NULL), 0);
    tc_response r = ts_post_form(s, "submit_appeal", data, "appeal-letter.pdf", *pdf, *pdflen);
    free(data);
    assert_int_equal(r.status, 200);
    cJSON *t = cJSON_Parse(r.body);
    tc_response_free(&r);
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    return id;
}

/* The task's trajectory opens through the API: steps, and a screenshot
 * that is a JPEG. Returns the number of screenshots. */
static int trajectory_opens(const ts_server *s, long long id)
{
    char path[128];
    snprintf(path, sizeof(path), "/tasks/%lld/trajectory", id);
    tc_response r = ts_api(s, s->key, "GET", path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_non_null(o);
    int shots = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(o, "steps"))
    {
        const char *url = ts_str(st, "screenshot_url");
        if (!url)
            continue;
        r = ts_api(s, s->key, "GET", url, NULL, NULL, 0);
        assert_int_equal(r.status, 200);
        assert_true(r.len > 1000 && !memcmp(r.body, "\xff\xd8\xff", 3));
        tc_response_free(&r);
        shots++;
    }
    cJSON_Delete(o);
    snprintf(path, sizeof(path), "/tasks/%lld/trajectory/trajectory.html", id);
    r = ts_api(s, s->key, "GET", path, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "data:image/jpeg;base64,"));
    tc_response_free(&r);
    return shots;
}

/* While an upload's body is still arriving, its spool in the data folder
 * holds nothing readable: the first half of a multipart body is sent, the
 * spool looked at, then the connection dropped. */
static void spool_while_uploading(const ts_server *s, const char *pdf, size_t pdflen)
{
    const char *bd = "sealSpoolBoundary";
    char head[1024], part[512];
    int plen = snprintf(part, sizeof(part),
                        "--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n"
                        "submit_appeal\r\n--%s\r\nContent-Disposition: form-data; "
                        "name=\"files\"; filename=\"a.pdf\"\r\n\r\n",
                        bd, bd);
    int port = atoi(strrchr(s->base, ':') + 1);
    int hlen = snprintf(head, sizeof(head),
                        "POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Authorization: Bearer %s\r\n"
                        "Content-Type: multipart/form-data; boundary=%s\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        s->key, bd, (size_t)plen + pdflen + 64);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_true(write(fd, head, (size_t)hlen) == hlen && write(fd, part, (size_t)plen) == plen);
    assert_true(write(fd, pdf, pdflen) == (ssize_t)pdflen); /* all but the end */
    const needle nd[] = {{"a PDF header", "%PDF-", 5}, {"the file", pdf + pdflen / 2, 64}};
    char spool[700];
    snprintf(spool, sizeof(spool), "%s/spool", s->data);
    int files = 0, hits = 0;
    for (int i = 0; i < 50 && !files; i++) { /* until the server has spooled it */
        pt_sleep_ms(100);
        files = 0;
        hits = hits_in_tree(spool, NULL, nd, 2, &files);
    }
    assert_int_equal(files, 1);
    assert_int_equal(hits, 0);
    close(fd);
}

static void test_sealed_at_rest(void **state)
{
    (void)state;
    ts_server s;
    ts_start_demo(&s, "seal-rest", NULL);
    cJSON *t = ts_post_json(&s, quickstart, 200);
    long long claim = ts_num(t, "id");
    cJSON_Delete(t);
    char *pdf = NULL;
    size_t pdflen = 0;
    long long appeal = post_appeal(&s, &pdf, &pdflen);
    spool_while_uploading(&s, pdf, pdflen);
    char *claim_notes = completed_notes(&s, claim);
    char *appeal_notes = completed_notes(&s, appeal);
    /* the portal's claim number, as the notes say it ("... CLM-...") */
    const char *clm = strstr(claim_notes, "CLM-");
    assert_non_null(clm);
    char number[32];
    snprintf(number, sizeof(number), "%.*s", (int)strspn(clm, "CLM-0123456789"), clm);
    /* the API opens what is sealed */
    assert_true(trajectory_opens(&s, claim) >= 3);
    assert_true(trajectory_opens(&s, appeal) >= 3);

    const needle nd[] = {
        {"the member id", "300059049", 9},
        {"the patient's name", "Golicic", 7},
        {"the date of birth", "1949-12-23", 10},
        {"the appeal's text", "medically necessary", 19},
        {"the claim number in the notes", number, strlen(number)},
        {"the portal user", "portier.demo", 12},
        {"the portal password", "Sandbox!2025", 12},
        {"the TOTP seed", "PORTIERSANDBOXSEEDTOTP", 22},
        {"the uploaded file", pdf + pdflen / 2, 64},
        {"a PDF header", "%PDF-", 5},
        /* whole headers: three bytes occur by chance in megabytes of ciphertext */
        {"a JPEG header", "\xff\xd8\xff\xe0\x00\x10JFIF", 10},
        {"a PNG header", "\x89PNG\r\n\x1a\n", 8},
        /* the element fingerprints the runs left, had they been kept in the clear */
        {"a fingerprint", "\"label\":\"Member ID\"", sizeof("\"label\":\"Member ID\"") - 1},
    };
    size_t nn = sizeof(nd) / sizeof(nd[0]);
    char p[700];
    int files = 0, hits = 0;
    if (ts_pg(&s)) {
        int tables = 0;
        hits += hits_in_pg(&s, nd, nn, &tables);
        assert_true(tables >= 8); /* accounts, secrets, tasks, outbox... were read */
    } else {
        hits += hits_in_file(s.db, nd, nn);
        snprintf(p, sizeof(p), "%s-wal", s.db);
        hits += hits_in_file(p, nd, nn);
    }
    hits += hits_in_tree(s.data, "sandbox", nd, nn, &files);
    assert_int_equal(hits, 0);
    assert_true(files >= 8); /* the upload, trajectories, screenshots were looked at */
    /* each SOP that ran left its fingerprints, sealed. SQLite: a BLOB (a
     * clear set is TEXT). PostgreSQL holds either in BYTEA: a clear set is
     * "[]" or has entries with a "step" member (agent/fingerprint.c), and
     * sealed bytes are longer than the one (PT_SEAL_OVERHEAD) and lack the
     * other. */
    assert_int_equal(ts_sql_int(&s, ts_pg(&s) ? "SELECT count(*) FROM fingerprints"
                                                " WHERE position(convert_to('\"step\":', 'UTF8')"
                                                " IN data) = 0 AND length(data) > 28"
                                                " AND type IN ('submit_claim', 'submit_appeal')"
                                              : "SELECT count(*) FROM fingerprints"
                                                " WHERE typeof(data)='blob'"
                                                " AND type IN ('submit_claim', 'submit_appeal')"),
                     2);
    free(claim_notes);
    free(appeal_notes);
    free(pdf);
    ts_finish(&s);
}

/* Entries in a folder (0 if it is gone). */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_retention_purges(void **state)
{
    (void)state;
    ts_server s;
    const char *const extra[] = {"--retain-days", "0", NULL};
    setenv("PORTIER_LOG", "info", 1); /* the purge's counts are logged at info */
    ts_start_demo(&s, "seal-retain", extra);
    char *pdf = NULL;
    size_t pdflen = 0;
    long long id = post_appeal(&s, &pdf, &pdflen);
    cJSON *t = ts_wait_status(&s, id, "completed,completed_with_issues,failed", 90000);
    if (strcmp(ts_str(t, "status"), "completed"))
        fail_msg("%s: %s", ts_str(t, "status"), ts_str(t, "notes"));
    cJSON_Delete(t);
    /* the sweep comes within a second or two of the final move */
    const char *want = "retention: purged 1 final tasks (1 files, 1 trajectories)";
    char *log = NULL;
    for (int i = 0; i < 100; i++) {
        free(log);
        log = ts_log(&s);
        if (strstr(log, want))
            break;
        pt_sleep_ms(100);
    }
    if (!strstr(log, want))
        fprintf(stderr, "%s\n", log);
    assert_non_null(strstr(log, want));
    free(log);
    t = ts_get_task(&s, s.key, id);
    assert_string_equal(ts_str(t, "status"), "completed"); /* the row keeps status and times */
    assert_non_null(ts_str(t, "completedAt"));
    const cJSON *notes = cJSON_GetObjectItem(t, "notes");
    assert_true(cJSON_IsNull(notes) || !strcmp(cJSON_GetStringValue(notes), ""));
    /* what the run extracted goes too (it was served after the purge) */
    const cJSON *outputs = cJSON_GetObjectItem(t, "outputs");
    assert_true(!outputs || cJSON_IsNull(outputs) || !cJSON_GetArraySize(outputs));
    cJSON_Delete(t);
    /* the event was delivered before the purge (it waits for that), and the
     * endpoint's reply to it is gone */
    char dp[128];
    snprintf(dp, sizeof(dp), "/tasks/%lld/deliveries", id);
    tc_response dr = ts_api(&s, s.key, "GET", dp, NULL, NULL, 0);
    assert_int_equal(dr.status, 200);
    cJSON *d = cJSON_Parse(dr.body);
    tc_response_free(&dr);
    const cJSON *att, *list = cJSON_IsArray(d) ? d : cJSON_GetObjectItem(d, "data");
    int delivered = 0;
    cJSON_ArrayForEach(att, list)
    {
        const cJSON *reply = cJSON_GetObjectItem(att, "reply");
        assert_true(!reply || cJSON_IsNull(reply));
        const cJSON *hs = cJSON_GetObjectItem(att, "http_status");
        if (!hs)
            hs = cJSON_GetObjectItem(att, "status");
        delivered += cJSON_IsNumber(hs) && hs->valueint >= 200 && hs->valueint < 300;
    }
    cJSON_Delete(d);
    assert_true(delivered >= 1);
    /* and it is not sent again: there is nothing left to send */
    snprintf(dp, sizeof(dp), "/tasks/%lld/webhook/redeliver", id);
    dr = ts_api(&s, s.key, "POST", dp, NULL, NULL, 0);
    assert_int_equal(dr.status, 409);
    assert_non_null(strstr(dr.body, "purged"));
    tc_response_free(&dr);
    char p[700];
    snprintf(p, sizeof(p), "/tasks/%lld/trajectory", id);
    tc_response r = ts_api(&s, s.key, "GET", p, NULL, NULL, 0);
    assert_int_equal(r.status, 404);
    tc_response_free(&r);
    snprintf(p, sizeof(p), "%s/trajectories", s.data);
    assert_int_equal(entries(p), 0);
    snprintf(p, sizeof(p), "%s/files", s.data);
    assert_int_equal(entries(p), 0);
    free(pdf);
    ts_finish(&s);
}

/* A row written before sealing existed (TEXT) reads as it was; a new
 * write is sealed (a BLOB) and reads back the same; another account's key
 * or a cleared data key does not open it.
 *
 * PostgreSQL has no rows from before sealing: its sealed columns are BYTEA,
 * where a value written in the clear cannot be told from sealed bytes (it
 * does not open), and `portier store copy` seals such a value on its way in
 * (test_store_copy). There the task's data is sealed from its first write,
 * and the rest holds as on SQLite. */
static void test_plaintext_rows_still_read(void **state)
{
    (void)state;
    ts_server s;
    ts_init(&s, "seal-plain");
    char err[512];
    store *st = store_open(s.db, 1, err);
    keys *k = keys_load(s.db, NULL, err);
    assert_non_null(st);
    assert_non_null(k);
    int64_t acct = 0;
    char key[64], *whsec = NULL;
    assert_int_equal(keys_create_account(k, st, "a", NULL, NULL, &acct, key, &whsec, err), 0);
    free(whsec);
    task_new n = {.account = acct, .type = "submit_claim", .title_fmt = "Submit claim #%lld",
                  .instructions = "x", .data = "member_id: 300059049"};
    task t;
    if (ts_pg(&s))
        keys_attach(k, st);
    /* SQLite: no sealer yet, so in the clear (TEXT) */
    assert_int_equal(store_task_create(st, &n, "pending", &t, err), 0);
    int64_t id = t.id;
    task_free(&t);
    if (!ts_pg(&s))
        keys_attach(k, st);
    assert_int_equal(store_task_get(st, 0, id, &t), 1);
    assert_string_equal(t.data, "member_id: 300059049");
    task_free(&t);
    assert_int_equal(store_task_set_answers(st, id, "{\"sms_code\":\"481516\"}"), 0);
    assert_int_equal(store_task_get(st, 0, id, &t), 1);
    assert_string_equal(t.answers, "{\"sms_code\":\"481516\"}");
    task_free(&t);
    /* a final move drops the answers */
    assert_int_equal(store_task_set_status(st, id, "failed", pt_wall_ms(), "Golicic",
                                           STORE_STAMP_FAILED),
                     0);
    assert_int_equal(store_task_get(st, 0, id, &t), 1);
    assert_string_equal(t.notes, "Golicic");
    assert_null(t.answers);
    task_free(&t);
    if (ts_pg(&s)) {
        /* both BYTEA: sealed, neither holds its value in the clear */
        assert_int_equal(ts_sql_int(&s,
                                    "SELECT count(*) FROM tasks"
                                    " WHERE position(convert_to('300059049', 'UTF8') IN data) = 0"
                                    " AND position(convert_to('Golicic', 'UTF8') IN notes) = 0"),
                         1);
    } else {
        char *types = ts_sql_text(&s, "SELECT typeof(data) || ' ' || typeof(notes) FROM tasks");
        assert_non_null(types);
        assert_string_equal(types, "text blob");
        free(types);
    }
    /* the account's key deleted: its sealed data no longer opens */
    const char *forget = "UPDATE accounts SET data_key=NULL";
    assert_int_equal(ts_sql(&s, forget, forget), 0);
    keys_free(k); /* a running process keeps the keys it unwrapped: start anew */
    k = keys_load(s.db, NULL, err);
    keys_attach(k, st);
    assert_int_equal(store_task_get(st, 0, id, &t), 1);
    assert_null(t.notes);
    task_free(&t);
    keys_free(k);
    store_close(st);
    ts_cleanup(&s);
}

/* An SOP version's fingerprints: sealed for the account, opened as they
 * were written, one set per version, the newer write replacing the older;
 * a set sealed for one version does not open as another's. */
static void test_fingerprints_sealed_per_version(void **state)
{
    (void)state;
    ts_server s;
    ts_init(&s, "seal-fp");
    char err[512];
    store *st = store_open(s.db, 1, err);
    keys *k = keys_load(s.db, NULL, err);
    assert_non_null(st);
    assert_non_null(k);
    keys_attach(k, st);
    int64_t acct = 0;
    char key[64], *whsec = NULL, *json = NULL;
    assert_int_equal(keys_create_account(k, st, "a", NULL, NULL, &acct, key, &whsec, err), 0);
    free(whsec);
    assert_int_equal(store_fingerprints_get(st, acct, "submit_claim", 1, &json), 0);
    assert_int_equal(store_fingerprints_put(st, acct, "submit_claim", 1, "[\"one\"]", 1), 0);
    assert_int_equal(store_fingerprints_put(st, acct, "submit_claim", 1, "[\"two\"]", 2), 0);
    assert_int_equal(store_fingerprints_put(st, acct, "submit_claim", 2, "[\"v2\"]", 3), 0);
    assert_int_equal(store_fingerprints_get(st, acct, "submit_claim", 1, &json), 1);
    assert_string_equal(json, "[\"two\"]");
    free(json);
    assert_int_equal(store_fingerprints_get(st, acct, "submit_claim", 2, &json), 1);
    assert_string_equal(json, "[\"v2\"]");
    free(json);
    /* sealed. SQLite: a BLOB (a clear set is TEXT). PostgreSQL holds either
     * in BYTEA: there, the bytes do not hold the set written. */
    assert_int_equal(
        ts_sql_int(&s, ts_pg(&s) ? "SELECT count(*) FROM fingerprints WHERE position(convert_to("
                                   "CASE sop_version WHEN 1 THEN '[\"two\"]' ELSE '[\"v2\"]' END,"
                                   " 'UTF8') IN data) = 0"
                                 : "SELECT count(*) FROM fingerprints WHERE typeof(data)='blob'"),
        2);
    /* version 2's sealed set moved under version 1: it does not open there */
    const char *move = "DELETE FROM fingerprints WHERE sop_version=1;"
                       "UPDATE fingerprints SET sop_version=1";
    assert_int_equal(ts_sql(&s, move, move), 0);
    assert_int_equal(store_fingerprints_get(st, acct, "submit_claim", 1, &json), -1);
    assert_null(json);
    keys_free(k);
    store_close(st);
    ts_cleanup(&s);
}

/* Bug: an account's first data key, made inside a transaction that then
 * rolled back, stayed cached: what was sealed next used a key the database
 * never held, and after a restart (a new key) it never opened again. */
static void test_data_key_of_a_rolled_back_transaction(void **state)
{
    (void)state;
    ts_server s;
    ts_init(&s, "seal-rollback");
    char err[512];
    store *st = store_open(s.db, 1, err);
    keys *k = keys_load(s.db, NULL, err);
    assert_non_null(st);
    assert_non_null(k);
    int64_t acct = 0;
    assert_int_equal(store_account_create(st, "a", NULL, NULL, "hash-a", &acct, err), 0);
    keys_attach(k, st); /* the account has no data key yet */
    task_new n = {.account = acct, .type = "submit_claim", .title_fmt = "Submit claim #%lld",
                  .instructions = "x", .data = "member_id: 300059049"};
    task t;
    assert_int_equal(store_batch_begin(st), 0); /* a transaction, as the writer's batch */
    assert_int_equal(store_task_create(st, &n, "pending", &t, err), 0); /* makes the key */
    task_free(&t);
    store_rollback(st); /* and the key's row goes with it */
    (void)store_batch_end(st); /* nothing is left to commit: it ends the batch */
    assert_int_equal(store_task_create(st, &n, "pending", &t, err), 0);
    int64_t id = t.id;
    task_free(&t);
    unsigned char *wk = NULL;
    size_t wn = 0;
    assert_int_equal(store_account_data_key(st, acct, &wk, &wn), 1); /* stored this time */
    free(wk);
    /* a restart: nothing cached; what was sealed opens with what is stored */
    keys_free(k);
    store_close(st);
    st = store_open(s.db, 0, err);
    k = keys_load(s.db, NULL, err);
    keys_attach(k, st);
    assert_int_equal(store_task_get(st, 0, id, &t), 1);
    assert_non_null(t.data);
    assert_string_equal(t.data, "member_id: 300059049");
    task_free(&t);
    keys_free(k);
    store_close(st);
    ts_cleanup(&s);
}

PT_TESTS("sealing", cmocka_unit_test(test_plaintext_rows_still_read),
         cmocka_unit_test(test_data_key_of_a_rolled_back_transaction),
         cmocka_unit_test(test_fingerprints_sealed_per_version),
         cmocka_unit_test(test_sealed_at_rest), cmocka_unit_test(test_retention_purges));
