/*
 * store_pg.c - the store's PostgreSQL driver (store_internal.h), on libpq:
 * a connection per thread, each statement prepared once per connection
 * (named, on its first run, with the parameters' types of that run), text
 * results, BYTEA for sealed bytes.
 *
 * Two translations, both mechanical, so that the store's SQL and its
 * migrations are written once: a query's ?N (or ?) placeholders become $N,
 * and a migration's SQLite types become PostgreSQL's (pg_ddl). The schema's
 * version is a one-row table, portier_schema. It never logs a value: a
 * connection string may hold a password, a row may hold PHI.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL's type ids (catalog/pg_type_d.h, not in libpq's headers) */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

/* The key of the advisory lock every writing transaction holds (store_begin):
 * "portier" in the low bytes, so no other application's lock is ours. */
#define WRITER_LOCK "7596556955640946"

typedef struct pg_conn {
    PGconn *c;
    unsigned next_name; /* statements are named s1, s2, ... */
    unsigned gen;       /* bumped by a reset: statements prepared before are gone */
    int64_t changes;
    int pending; /* statements sent in a pipeline whose results are not read yet */
    int listening; /* LISTEN portier_changes was sent (store_wait_changes) */
    int tx_open;   /* a BEGIN was sent, and no COMMIT or ROLLBACK since */
    /* the connection was made again while tx_open: what the transaction
     * did is gone, and until its ROLLBACK nothing runs (else the rest of
     * it would commit piece by piece on the new connection) */
    int tx_lost;
    char err[256];
} pg_conn;

/* Every writing transaction notifies this channel (pg_begin; delivered at
 * its COMMIT, never for a ROLLBACK): the nodes wake on it, no polling. */
#define CHANGES_CHANNEL "portier_changes"

typedef struct pg_stmt {
    store_stmt base;
    pg_conn *pc;
    char name[16];
    char *sql; /* with $N */
    int nparams;
    unsigned prepared_gen; /* 0: not prepared */
    char **vals;
    int *lens, *fmts;
    Oid *types;
    PGresult *res;
    int row, nrows;
    unsigned char **scratch; /* a column's bytes, decoded (one per column) */
    int nscratch;
} pg_stmt;

#define PC(st) ((pg_conn *)(st)->conn)
#define P(x) ((pg_stmt *)(x))

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("relation already exists, skipping") are not errors */
}

/* The primary message of a failed result (never DETAIL: it holds values). */
static void keep_error(pg_conn *pc, const PGresult *r)
{
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (!m)
        m = PQerrorMessage(pc->c);
    snprintf(pc->err, sizeof(pc->err), "%s%s%s%s", m && *m ? m : "the server did not answer",
             code ? " (SQLSTATE " : "", code ? code : "", code ? ")" : "");
    pc->err[strcspn(pc->err, "\n")] = '\0';
}

/* libpq keeps a connection's own error; messages name it without a password. */
static void label_of(store *st, PGconn *c)
{
    char buf[512];
    const char *host = PQhost(c);
    snprintf(buf, sizeof(buf), "postgresql://%s@%s%s%s/%s", PQuser(c),
             host && host[0] != '/' ? host : "", host && host[0] == '/' ? "" : ":",
             host && host[0] == '/' ? "" : PQport(c), PQdb(c));
    free(st->label);
    st->label = strdup(buf);
}

static int flush(pg_conn *pc);
static void recover(pg_conn *pc);

/* Whether sql ends the transaction (COMMIT, ROLLBACK; not ROLLBACK TO). */
static int ends_tx(const char *sql)
{
    return !strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK");
}

/* Refuses (1, pc->err says why) a statement of a transaction whose
 * connection was made again, but for the ROLLBACK that ends it. */
static int tx_gone(pg_conn *pc, const char *sql)
{
    if (!pc->tx_lost || !strcmp(sql, "ROLLBACK"))
        return 0;
    snprintf(pc->err, sizeof(pc->err),
             "the connection to PostgreSQL was lost inside a transaction: what it did is gone");
    return 1;
}

/* Keeps tx_open (and tx_lost) after sql was sent: a COMMIT or ROLLBACK
 * ends the transaction whatever its answer; a BEGIN opens one once sent
 * into a pipeline (its answer comes later), or once answered (ok: it
 * did; a BEGIN that failed opened nothing to lose). */
static void tx_sent(pg_conn *pc, const char *sql, int ok)
{
    if (!strncmp(sql, "BEGIN", 5) && ok)
        pc->tx_open = 1;
    else if (ends_tx(sql))
        pc->tx_open = pc->tx_lost = 0;
}

/* Whether a COMMIT's answer is a commit: a COMMIT of a transaction that
 * had failed is answered "ROLLBACK", without an error. */
static int committed(const char *sql, PGresult *r)
{
    return strcmp(sql, "COMMIT") != 0 || !strcmp(PQcmdStatus(r), "COMMIT");
}

static int pg_exec(store *st, const char *sql)
{
    pg_conn *pc = PC(st);
    if ((flush(pc) < 0 && strncmp(sql, "ROLLBACK", 8)) || tx_gone(pc, sql)) {
        PT_ERROR("store", "%s", pc->err);
        return -1;
    }
    PGresult *r = PQexec(pc->c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) && committed(sql, r);
    /* a BEGIN; ... that failed after its BEGIN left a failed transaction:
     * open until its ROLLBACK (store_begin sends it) */
    tx_sent(pc, sql, ok || PQtransactionStatus(pc->c) == PQTRANS_INERROR);
    if (!ok) {
        if (committed(sql, r))
            keep_error(pc, r);
        else
            snprintf(pc->err, sizeof(pc->err), "the transaction had failed: COMMIT rolled it back");
        PT_ERROR("store", "%s", pc->err);
    }
    PQclear(r);
    if (!ok)
        recover(pc);
    return ok ? 0 : -1;
}

static int pg_open(store *st, const char *target, int create, char *err)
{
    (void)create; /* a database is the administrator's to create: never here */
    pg_conn *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return pt_errf(err, "out of memory");
    st->conn = pc;
    pc->c = PQconnectdb(target);
    if (!pc->c || PQstatus(pc->c) != CONNECTION_OK) {
        /* libpq's message names the host and what failed, not the password */
        char why[256];
        snprintf(why, sizeof(why), "%s", pc->c ? PQerrorMessage(pc->c) : "out of memory");
        why[strcspn(why, "\n")] = '\0';
        return pt_errf(err, "cannot connect to the PostgreSQL database: %s", why);
    }
    PQsetNoticeProcessor(pc->c, quiet, NULL);
    label_of(st, pc->c);
    if (pg_exec(st, "SET client_min_messages=warning") < 0)
        return pt_errf(err, "%s is not a usable PostgreSQL database", st->label);
    return 0;
}

static void pg_close(store *st)
{
    pg_conn *pc = PC(st);
    if (pc) {
        PQfinish(pc->c);
        free(pc);
    }
    st->conn = NULL;
}

/* A query's ?N and ? placeholders as $N (outside quotes), and how many
 * parameters it has: a new string. */
static char *dollars(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 4 + 1), *o = out;
    int seq = 0, max = 0;
    char quote = 0;
    if (!out)
        return NULL;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
            continue;
        }
        if (*p != '?') {
            *o++ = *p;
            continue;
        }
        int idx;
        if (p[1] >= '0' && p[1] <= '9') {
            idx = (int)strtol(p + 1, (char **)&p, 10);
            p--;
        } else {
            idx = ++seq;
        }
        if (idx > max)
            max = idx;
        o += sprintf(o, "$%d", idx);
    }
    *o = '\0';
    *nparams = max;
    return out;
}

static void pg_finalize(store_stmt *s);

static store_stmt *pg_prepare(store *st, const char *sql)
{
    pg_conn *pc = PC(st);
    pg_stmt *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->base.drv = &store__pg;
    p->pc = pc;
    snprintf(p->name, sizeof(p->name), "s%u", ++pc->next_name);
    if (!(p->sql = dollars(sql, &p->nparams)))
        goto fail;
    if (p->nparams) {
        p->vals = calloc((size_t)p->nparams, sizeof(*p->vals));
        p->lens = calloc((size_t)p->nparams, sizeof(*p->lens));
        p->fmts = calloc((size_t)p->nparams, sizeof(*p->fmts));
        p->types = calloc((size_t)p->nparams, sizeof(*p->types));
        if (!p->vals || !p->lens || !p->fmts || !p->types)
            goto fail;
    }
    return &p->base; /* prepared on its first run, when its parameters' types are known */
fail:
    PT_ERROR("store", "out of memory preparing a statement");
    pg_finalize(&p->base);
    return NULL;
}

static void drop_scratch(pg_stmt *p)
{
    for (int i = 0; i < p->nscratch; i++) {
        free(p->scratch[i]);
        p->scratch[i] = NULL;
    }
}

static void pg_reset(store_stmt *s)
{
    pg_stmt *p = P(s);
    PQclear(p->res);
    p->res = NULL;
    p->row = p->nrows = 0;
    drop_scratch(p);
}

static void pg_clear(store_stmt *s)
{
    pg_stmt *p = P(s);
    for (int i = 0; i < p->nparams; i++) {
        free(p->vals[i]);
        p->vals[i] = NULL;
        p->lens[i] = p->fmts[i] = 0;
    }
}

static void pg_finalize(store_stmt *s)
{
    if (!s)
        return;
    pg_stmt *p = P(s);
    pg_reset(s);
    if (p->vals)
        pg_clear(s);
    /* the connection drops its prepared statements when it closes */
    free(p->scratch);
    free(p->vals);
    free(p->lens);
    free(p->fmts);
    free(p->types);
    free(p->sql);
    free(p);
}

/* Parameter i (from 1) takes v (owned), format fmt, type: an index past
 * the query's parameters is ignored, as SQLite ignores it. */
static void put(pg_stmt *p, int i, char *v, int len, int fmt, Oid type)
{
    if (i < 1 || i > p->nparams) {
        free(v);
        return;
    }
    free(p->vals[i - 1]);
    p->vals[i - 1] = v;
    p->lens[i - 1] = len;
    p->fmts[i - 1] = fmt;
    /* the type of its first non-NULL binding is the one it is prepared with */
    if (type && !p->types[i - 1] && !p->prepared_gen)
        p->types[i - 1] = type;
}

static void pg_bind_int64(store_stmt *s, int i, int64_t v)
{
    char *t = NULL;
    if (asprintf(&t, "%lld", (long long)v) < 0)
        t = NULL;
    put(P(s), i, t, 0, 0, OID_INT8);
}

static void pg_bind_text(store_stmt *s, int i, const char *v)
{
    put(P(s), i, v ? strdup(v) : NULL, 0, 0, v ? OID_TEXT : 0);
}

static void pg_bind_blob(store_stmt *s, int i, const void *b, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c && n)
        memcpy(c, b, n);
    put(P(s), i, c, (int)n, 1, OID_BYTEA);
}

static void pg_bind_null(store_stmt *s, int i)
{
    put(P(s), i, NULL, 0, 0, 0);
}

static int is_constraint(const PGresult *r)
{
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return code && !strncmp(code, "23", 2); /* integrity constraint violation */
}

/* After a failure: a broken connection is made again (outside a
 * transaction), its statements to be prepared anew. */
static void recover(pg_conn *pc)
{
    if (PQstatus(pc->c) != CONNECTION_BAD)
        return;
    PQreset(pc->c);
    pc->gen++;
    pc->listening = 0; /* the new connection listens to nothing yet */
    if (pc->tx_open)
        pc->tx_lost = 1;
    if (PQstatus(pc->c) == CONNECTION_OK)
        PT_WARN("store", "the connection to PostgreSQL was lost and made again");
}

static int pg_step(store_stmt *s);

static int simple(pg_conn *pc, const char *sql)
{
    PGresult *r = PQexec(pc->c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : -1;
}

/* Prepares the statement with its parameters' types. A parameter first
 * bound NULL and only tested (?3 IS NULL) has no type PostgreSQL can tell
 * (42P08): it is text then. Inside a transaction the attempt is a
 * savepoint of its own, so its failure does not end the transaction. */
static int prepare(pg_stmt *p)
{
    pg_conn *pc = p->pc;
    /* a failed transaction takes no savepoint; what it runs then (ROLLBACK
     * TO, ROLLBACK) prepares anyway */
    int in_tx = PQtransactionStatus(pc->c) == PQTRANS_INTRANS;
    if (in_tx && simple(pc, "SAVEPOINT store_prepare") < 0)
        return -1;
    PGresult *r = PQprepare(pc->c, p->name, p->sql, p->nparams, p->types);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const char *code = ok ? NULL : PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code && !strcmp(code, "42P08")) {
        for (int i = 0; i < p->nparams; i++)
            if (!p->types[i])
                p->types[i] = OID_TEXT;
        PQclear(r);
        if (in_tx)
            simple(pc, "ROLLBACK TO SAVEPOINT store_prepare");
        r = PQprepare(pc->c, p->name, p->sql, p->nparams, p->types);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    }
    if (!ok) {
        keep_error(pc, r);
        PT_ERROR("store", "cannot prepare a statement: %s", pc->err);
    }
    PQclear(r);
    if (in_tx)
        simple(pc, ok ? "RELEASE SAVEPOINT store_prepare"
                      : "ROLLBACK TO SAVEPOINT store_prepare");
    return ok ? 0 : -1;
}

/* ---- Pipelining --------------------------------------------------------
 * Inside a transaction, a statement whose rows nobody reads (store__run: a
 * SAVEPOINT, an INSERT, an UPDATE) is sent without waiting for its answer;
 * the answers are read with the next statement that needs its own (one
 * round trip for all of them), or at RELEASE / COMMIT / ROLLBACK, which
 * always wait. A deferred statement that failed makes that next statement
 * fail with its error, still inside the savepoint or transaction it was
 * part of, so a caller's rollback undoes what it should. Group commit's
 * throughput on PostgreSQL is this: a task's creation costs three round
 * trips instead of eight. */

/* The results of one sent statement (until libpq's NULL): 0, or -1 with
 * the first error kept. keep: where its last result goes (NULL: cleared). */
static int read_one(pg_conn *pc, PGresult **keep, int failed)
{
    PGresult *r;
    while ((r = PQgetResult(pc->c)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
            const char *n = PQcmdTuples(r);
            pc->changes = n && *n ? atoll(n) : 0;
        } else if (!failed) {
            if (s != PGRES_PIPELINE_ABORTED)
                keep_error(pc, r);
            failed = 1;
        }
        if (keep) {
            PQclear(*keep);
            *keep = r;
        } else {
            PQclear(r);
        }
    }
    return failed ? -1 : 0;
}

/* Ends the pipeline: sync, read every pending answer (and, with last, the
 * answer of one statement sent after them into *last). 0, or -1 if one of
 * them failed (pc->err says why). */
static int pipeline_end(pg_conn *pc, PGresult **last)
{
    int failed = PQpipelineSync(pc->c) != 1;
    if (failed)
        keep_error(pc, NULL);
    for (int i = 0; i < pc->pending; i++)
        failed = read_one(pc, NULL, failed) < 0 || failed;
    if (last)
        read_one(pc, last, 1); /* its own status is the caller's to judge */
    PGresult *r;
    while ((r = PQgetResult(pc->c)) != NULL) /* the sync's, and nothing after it */
        PQclear(r);
    pc->pending = 0;
    if (PQexitPipelineMode(pc->c) != 1)
        failed = 1;
    return failed ? -1 : 0;
}

/* Reads every pending answer: before anything that waits for the server. */
static int flush(pg_conn *pc)
{
    return pc->pending ? pipeline_end(pc, NULL) : 0;
}

static int ensure_prepared(pg_stmt *p)
{
    pg_conn *pc = p->pc;
    if (p->prepared_gen == pc->gen + 1)
        return 0;
    if (flush(pc) < 0 || prepare(p) < 0) {
        recover(pc);
        return -1;
    }
    p->prepared_gen = pc->gen + 1;
    return 0;
}

static int send(pg_stmt *p)
{
    return PQsendQueryPrepared(p->pc->c, p->name, p->nparams, (const char *const *)p->vals,
                               p->lens, p->fmts, 0);
}

static int run(pg_stmt *p)
{
    pg_conn *pc = p->pc;
    /* a rollback must not ride in a pipeline that a failure aborted: it
     * would be skipped with the rest */
    if (!strncmp(p->sql, "ROLLBACK", 8))
        flush(pc);
    if (tx_gone(pc, p->sql) || ensure_prepared(p) < 0)
        return STORE_ERROR;
    int earlier_failed = 0;
    if (pc->pending) { /* this one rides with the deferred ones: one round trip */
        if (!send(p)) {
            keep_error(pc, NULL);
            pipeline_end(pc, NULL);
            recover(pc);
            return STORE_ERROR;
        }
        tx_sent(pc, p->sql, 1);
        earlier_failed = pipeline_end(pc, &p->res) < 0;
    } else {
        p->res = PQexecPrepared(pc->c, p->name, p->nparams, (const char *const *)p->vals,
                                p->lens, p->fmts, 0);
        tx_sent(pc, p->sql, PQresultStatus(p->res) == PGRES_COMMAND_OK);
    }
    ExecStatusType s = PQresultStatus(p->res);
    if (!earlier_failed && (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) &&
        committed(p->sql, p->res)) {
        const char *n = PQcmdTuples(p->res);
        pc->changes = n && *n ? atoll(n) : 0;
        p->nrows = s == PGRES_TUPLES_OK ? PQntuples(p->res) : 0;
        p->row = -1;
        return STORE_DONE;
    }
    if (!earlier_failed && !committed(p->sql, p->res))
        snprintf(pc->err, sizeof(pc->err), "the transaction had failed: COMMIT rolled it back");
    else if (!earlier_failed)
        keep_error(pc, p->res);
    int rc = !earlier_failed && is_constraint(p->res) ? STORE_CONSTRAINT : STORE_ERROR;
    PQclear(p->res);
    p->res = NULL;
    recover(pc);
    return rc;
}

/* Whether a statement's answer may wait (see Pipelining). */
static int deferrable(const pg_stmt *p)
{
    static const char *const waits[] = {"COMMIT", "RELEASE", "ROLLBACK"};
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++)
        if (!strncmp(p->sql, waits[i], strlen(waits[i])))
            return 0;
    return p->pc->pending || PQtransactionStatus(p->pc->c) == PQTRANS_INTRANS;
}

/* store__run's step: a statement whose rows nobody reads. */
static int pg_run(store_stmt *s)
{
    pg_stmt *p = P(s);
    if (!deferrable(p))
        return pg_step(s);
    if (tx_gone(p->pc, p->sql) || ensure_prepared(p) < 0)
        return STORE_ERROR;
    if (!p->pc->pending && PQenterPipelineMode(p->pc->c) != 1)
        return pg_step(s);
    if (!send(p)) {
        keep_error(p->pc, NULL);
        pipeline_end(p->pc, NULL);
        recover(p->pc);
        return STORE_ERROR;
    }
    tx_sent(p->pc, p->sql, 1);
    p->pc->pending++;
    return STORE_DONE;
}

static int pg_step(store_stmt *s)
{
    pg_stmt *p = P(s);
    if (!p->res) {
        int rc = run(p);
        if (rc != STORE_DONE)
            return rc;
    }
    drop_scratch(p);
    if (p->row + 1 >= p->nrows) {
        p->row = p->nrows;
        return STORE_DONE;
    }
    p->row++;
    return STORE_ROW;
}

static int has_row(pg_stmt *p, int i)
{
    return p->res && p->row >= 0 && p->row < p->nrows && i >= 0 && i < PQnfields(p->res);
}

static int pg_col_null(store_stmt *s, int i)
{
    pg_stmt *p = P(s);
    return !has_row(p, i) || PQgetisnull(p->res, p->row, i);
}

static int pg_col_is_blob(store_stmt *s, int i)
{
    pg_stmt *p = P(s);
    return !pg_col_null(s, i) && PQftype(p->res, i) == OID_BYTEA;
}

static const char *pg_col_text(store_stmt *s, int i)
{
    pg_stmt *p = P(s);
    return pg_col_null(s, i) ? NULL : PQgetvalue(p->res, p->row, i);
}

static int64_t pg_col_int64(store_stmt *s, int i)
{
    const char *t = pg_col_text(s, i);
    if (!t)
        return 0;
    if (!strcmp(t, "t") || !strcmp(t, "f")) /* a boolean, as SQLite's 1 and 0 */
        return t[0] == 't';
    return strtoll(t, NULL, 10);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                               : -1;
}

/* BYTEA arrives in text results as "\x" and hex digits (bytea_output's
 * default): decoded into the column's scratch buffer. */
static const unsigned char *pg_col_blob(store_stmt *s, int i, size_t *n)
{
    pg_stmt *p = P(s);
    *n = 0;
    const char *t = pg_col_text(s, i);
    if (!t)
        return NULL;
    if (PQftype(p->res, i) != OID_BYTEA) { /* text: its bytes */
        *n = strlen(t);
        return *n ? (const unsigned char *)t : NULL;
    }
    if (t[0] != '\\' || t[1] != 'x')
        return NULL;
    size_t len = (strlen(t) - 2) / 2;
    if (!len)
        return NULL;
    if (i >= p->nscratch) {
        int want = PQnfields(p->res);
        unsigned char **ns = realloc(p->scratch, (size_t)want * sizeof(*ns));
        if (!ns)
            return NULL;
        for (int k = p->nscratch; k < want; k++)
            ns[k] = NULL;
        p->scratch = ns;
        p->nscratch = want;
    }
    unsigned char *b = malloc(len);
    if (!b)
        return NULL;
    for (size_t k = 0; k < len; k++) {
        int hi = hexval(t[2 + 2 * k]), lo = hexval(t[3 + 2 * k]);
        if (hi < 0 || lo < 0) {
            free(b);
            return NULL;
        }
        b[k] = (unsigned char)(hi << 4 | lo);
    }
    free(p->scratch[i]);
    p->scratch[i] = b;
    *n = len;
    return b;
}

static char *scalar(store *st, const char *sql, int *failed);

static int pg_col_count(store_stmt *s)
{
    return P(s)->res ? PQnfields(P(s)->res) : 0;
}

static const char *pg_col_name(store_stmt *s, int i)
{
    return P(s)->res ? PQfname(P(s)->res, i) : NULL;
}

static int pg_col_kind(store_stmt *s, int i)
{
    if (pg_col_null(s, i))
        return STORE_KIND_NULL;
    Oid t = PQftype(P(s)->res, i);
    return t == OID_BYTEA ? STORE_KIND_BLOB
           : t == OID_INT8 || t == 21 || t == 23 ? STORE_KIND_INT /* int8, int2, int4 */
                                                : STORE_KIND_TEXT;
}

/* A table's identity sequence (the copy calls this for a table with an id
 * column) moves past the largest copied id, so the next row does not take
 * a copied one. */
static int pg_copied(store *st, const char *table)
{
    char sql[512];
    int failed = 0;
    snprintf(sql, sizeof(sql), "SELECT pg_get_serial_sequence('\"%s\"', 'id')", table);
    char *seq = scalar(st, sql, &failed);
    if (failed || !seq) {
        free(seq);
        return failed ? -1 : 0; /* an id that is no identity: nothing to move */
    }
    snprintf(sql, sizeof(sql),
             "SELECT setval('%s', coalesce(max(id), 0) + 1, false) FROM \"%s\"", seq, table);
    free(seq);
    return pg_exec(st, sql);
}

static int64_t pg_changes(store *st)
{
    flush(PC(st));
    return PC(st)->changes;
}

static int pg_in_tx(store *st)
{
    /* tx_open too: a broken connection's status is UNKNOWN, and the
     * ROLLBACK that store_rollback then sends is what clears it */
    if (PC(st)->pending || PC(st)->tx_open || PC(st)->tx_lost)
        return 1;
    PGTransactionStatusType t = PQtransactionStatus(PC(st)->c);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static const char *pg_errmsg(store *st)
{
    return PC(st)->err[0] ? PC(st)->err : "no error";
}

/* One value of a query without parameters, as a new string (NULL: none or
 * an error). */
static char *scalar(store *st, const char *sql, int *failed)
{
    pg_conn *pc = PC(st);
    *failed = tx_gone(pc, sql) || flush(pc) < 0;
    if (*failed)
        return NULL;
    PGresult *r = PQexec(pc->c, sql);
    char *v = NULL;
    *failed = PQresultStatus(r) != PGRES_TUPLES_OK;
    if (*failed)
        keep_error(pc, r);
    else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int pg_schema_version(store *st)
{
    int failed = 0;
    char *has = scalar(st, "SELECT to_regclass('portier_schema') IS NOT NULL", &failed);
    int v = failed ? -1 : 0;
    if (has && has[0] == 't') {
        char *t = scalar(st, "SELECT max(version) FROM portier_schema", &failed);
        v = failed ? -1 : t ? atoi(t) : 0;
        free(t);
    }
    free(has);
    return v;
}

static int pg_set_schema_version(store *st, int v)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS portier_schema(version INTEGER NOT NULL);"
             "DELETE FROM portier_schema; INSERT INTO portier_schema VALUES(%d)",
             v);
    return pg_exec(st, sql);
}

/* SQLite's types in a migration, as PostgreSQL's. A rowid (INTEGER PRIMARY
 * KEY) becomes an identity column; a TEXT column marked as holding sealed
 * bytes, and a BLOB, become BYTEA; every INTEGER is 64-bit, as SQLite's. */
static const struct {
    const char *from, *to;
} ddl_types[] = {
    {"INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"},
    {"TEXT /*sealed*/", "BYTEA"},
    {"INTEGER", "BIGINT"},
    {"BLOB", "BYTEA"},
};

static int word_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static char *pg_ddl(const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 4 + 1), *o = out;
    char quote = 0;
    if (!out)
        return NULL;
    for (const char *p = sql; *p;) {
        if (quote || *p == '\'') {
            quote = quote ? (*p == quote ? 0 : quote) : *p;
            *o++ = *p++;
            continue;
        }
        size_t k = 0, m = sizeof(ddl_types) / sizeof(ddl_types[0]);
        for (; k < m; k++) {
            size_t len = strlen(ddl_types[k].from);
            if (!strncmp(p, ddl_types[k].from, len) && (p == sql || !word_char(p[-1])) &&
                !word_char(p[len]))
                break;
        }
        if (k == m) {
            *o++ = *p++;
            continue;
        }
        o += sprintf(o, "%s", ddl_types[k].to);
        p += strlen(ddl_types[k].from);
    }
    *o = '\0';
    return out;
}

static int pg_begin(store *st)
{
    return pg_exec(st, "BEGIN; SELECT pg_advisory_xact_lock(" WRITER_LOCK "); NOTIFY " CHANGES_CHANNEL);
}

/* pg_begin's statements and the COMMIT, prepared and sent in a pipeline:
 * the batch's first query and its last statements carry them, a round
 * trip each instead of one more each. */
static const char *const deferred_begin[] = {
    "BEGIN", "SELECT pg_advisory_xact_lock(" WRITER_LOCK ")", "NOTIFY " CHANGES_CHANNEL};
static const char deferred_commit[] = "COMMIT";

/* Sends a prepared statement into the pipeline, its answer unread. */
static int defer(pg_stmt *p)
{
    pg_conn *pc = p->pc;
    if (tx_gone(pc, p->sql))
        return -1;
    if (!pc->pending && PQenterPipelineMode(pc->c) != 1) {
        keep_error(pc, NULL);
        return -1;
    }
    if (!send(p)) {
        keep_error(pc, NULL);
        pipeline_end(pc, NULL);
        recover(pc);
        return -1;
    }
    tx_sent(pc, p->sql, 1);
    pc->pending++;
    return 0;
}

static int pg_begin_deferred(store *st)
{
    pg_conn *pc = PC(st);
    pg_stmt *p[4];
    /* prepared before the first is sent: preparing waits for the server */
    for (size_t i = 0; i < 4; i++) {
        store_stmt *q = store__q(st, i < 3 ? deferred_begin[i] : deferred_commit);
        if (!q || ensure_prepared(p[i] = P(q)) < 0)
            return -1;
    }
    if (flush(pc) < 0)
        return -1;
    for (size_t i = 0; i < 3; i++)
        if (defer(p[i]) < 0)
            return -1;
    return 0;
}

static int pg_commit_deferred(store *st)
{
    pg_conn *pc = PC(st);
    store_stmt *q = store__q(st, deferred_commit);
    /* not sent (the transaction gone with its connection, or the COMMIT
     * not prepared): nothing is stored */
    if (!q || tx_gone(pc, deferred_commit) || ensure_prepared(P(q)) < 0)
        return -1;
    pg_stmt *p = P(q);
    if (!pc->pending) {
        if (PQtransactionStatus(pc->c) != PQTRANS_INTRANS)
            return -1; /* failed or never begun: a COMMIT would store nothing */
        return run(p) == STORE_DONE ? 0 : PT_ECLOSED;
    }
    if (!send(p)) {
        keep_error(pc, NULL);
        pipeline_end(pc, NULL);
        recover(pc);
        return -1; /* not sent: not run */
    }
    tx_sent(pc, deferred_commit, 1);
    int earlier_failed = pipeline_end(pc, &p->res) < 0;
    int ok = !earlier_failed && PQresultStatus(p->res) == PGRES_COMMAND_OK &&
             committed(deferred_commit, p->res);
    /* "not stored" only on the server's word (an error answered, the
     * COMMIT then skipped): a connection lost on the way may have taken
     * the COMMIT in and its answer with it */
    int lost = PQstatus(pc->c) == CONNECTION_BAD;
    if (!earlier_failed && !ok)
        keep_error(pc, p->res);
    PQclear(p->res);
    p->res = NULL;
    recover(pc);
    return ok ? 0 : earlier_failed && !lost ? -1 : PT_ECLOSED;
}

/* No writer lock and no NOTIFY: a claim makes no work for anyone. */
static int pg_begin_rows(store *st)
{
    return pg_exec(st, "BEGIN");
}

/* Drains the notifications libpq holds: how many there were. */
static int drain_notifies(pg_conn *pc)
{
    int n = 0;
    PGnotify *nf;
    while ((nf = PQnotifies(pc->c)) != NULL) {
        n++;
        PQfreemem(nf);
    }
    return n;
}

static int pg_wait_changes(store *st, int timeout_ms)
{
    pg_conn *pc = PC(st);
    if (!pc->listening) {
        if (pg_exec(st, "LISTEN " CHANGES_CHANNEL) < 0) {
            pt_sleep_ms(timeout_ms); /* no spin while the server is away */
            return -1;
        }
        pc->listening = 1;
    }
    if (flush(pc) < 0 || !PQconsumeInput(pc->c) || PQsocket(pc->c) < 0) {
        /* made again for the next call (which listens anew), after the
         * wait: a caller that loops on it does not spin */
        recover(pc);
        pt_sleep_ms(timeout_ms);
        return -1;
    }
    if (drain_notifies(pc))
        return 1;
    int fd = PQsocket(pc->c);
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    if (rc == 0)
        return 0;
    if (!PQconsumeInput(pc->c))
        return -1;
    return drain_notifies(pc) > 0;
}

const store_driver store__pg = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .clear = pg_clear,
    .bind_int64 = pg_bind_int64,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .run = pg_run,
    .col_null = pg_col_null,
    .col_is_blob = pg_col_is_blob,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .changes = pg_changes,
    .exec = pg_exec,
    .in_tx = pg_in_tx,
    .errmsg = pg_errmsg,
    .schema_version = pg_schema_version,
    .set_schema_version = pg_set_schema_version,
    .ddl = pg_ddl,
    .begin = pg_begin,
    .begin_rows = pg_begin_rows,
    .skip_locked = 1,
    .reserve_task_ids_sql = "SELECT nextval(pg_get_serial_sequence('tasks', 'id'))"
                            " FROM generate_series(1, ?1)",
    .begin_deferred = pg_begin_deferred,
    .commit_deferred = pg_commit_deferred,
    .wait_changes = pg_wait_changes,
    .col_count = pg_col_count,
    .col_name = pg_col_name,
    .col_kind = pg_col_kind,
    .tables_sql = "SELECT tablename FROM pg_tables WHERE schemaname=current_schema()"
                  " AND tablename<>'portier_schema' ORDER BY tablename",
    .copied = pg_copied,
};
