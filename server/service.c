/*
 * service.c - the task service: start-up and recovery, the master key, SOP
 * bundles, and the workers that run tasks. See service.h.
 */
#define _GNU_SOURCE
#include "server/service.h"
#include "agent/agent.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const int64_t duration_bounds[DURATION_BUCKETS] = {1000,  2000,  5000,   10000,  20000,
                                                          30000, 60000, 120000, 300000, 0};

/* ---- Keys and secrets ---------------------------------------------------- */

static int hex_key(const char *hex, unsigned char key[32])
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        key[i] = (unsigned char)v;
    }
    return 0;
}

int service_master_key(const char *db_path, unsigned char key[32], char *err)
{
    const char *env = getenv("PORTIER_MASTER_KEY");
    if (env && *env) {
        if (hex_key(env, key) < 0)
            return pt_errf(err, "PORTIER_MASTER_KEY must be 64 hex digits (32 bytes)");
        return 0;
    }
    char path[4200], *text = NULL;
    snprintf(path, sizeof(path), "%s.key", db_path);
    if (pt_read_file(path, 4096, &text, NULL) == 0) {
        text[strcspn(text, "\r\n")] = '\0';
        int rc = hex_key(text, key);
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        return rc < 0 ? pt_errf(err, "%s is not a master key (64 hex digits)", path) : 0;
    }
    char hex[65];
    if (pt_random_hex(hex, 64) < 0)
        return pt_errf(err, "no randomness for a master key");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return pt_errf(err, "cannot create the master key file %s: %s", path, strerror(errno));
    int ok = write(fd, hex, 64) == 64 && write(fd, "\n", 1) == 1;
    ok = close(fd) == 0 && ok;
    if (!ok)
        return pt_errf(err, "cannot write the master key file %s", path);
    PT_INFO("service", "created a master key file beside the database (mode 0600)");
    hex_key(hex, key);
    OPENSSL_cleanse(hex, sizeof(hex));
    return 0;
}

static void secret_aad(char *aad, size_t n, int64_t acct, const char *name)
{
    snprintf(aad, n, "portier secret v1 account=%lld name=%s", (long long)acct, name);
}

int service_seal(const unsigned char key[32], int64_t acct, const char *name, const char *value,
                 unsigned char **out, size_t *outlen)
{
    char aad[256];
    secret_aad(aad, sizeof(aad), acct, name);
    return pt_seal(key, aad, value, strlen(value), out, outlen);
}

char *service_open_secret(const unsigned char key[32], int64_t acct, const char *name,
                          const unsigned char *sealed, size_t len)
{
    char aad[256], *plain = NULL;
    secret_aad(aad, sizeof(aad), acct, name);
    return pt_open(key, aad, sealed, len, &plain, NULL) == 0 ? plain : NULL;
}

void service_new_key(char key[64], char hash[65])
{
    memcpy(key, "pk_", 3);
    pt_random_hex(key + 3, 48);
    pt_sha256_hex(key, strlen(key), hash);
}

/* ---- Stores per thread --------------------------------------------------- */

static void close_store(void *p)
{
    store_close(p);
}

store *service_store(service *s)
{
    store *st = pthread_getspecific(s->store_key);
    if (st)
        return st;
    char err[PT_ERR_MAX];
    st = store_open(s->o.db_path, 0, err);
    if (!st) {
        PT_ERROR("service", "%s", err);
        return NULL;
    }
    pthread_setspecific(s->store_key, st);
    return st;
}

void service_kick(service *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    webhooks_kick(s->hooks);
}

int service_move(service *s, store *st, int64_t id, const char *from, const char *to,
                 const char *notes, const char *event_note)
{
    int rc = store_task_move(st, id, from, to, notes, event_note);
    if (rc == 1) {
        PT_INFO("task", "task %lld: %s", (long long)id, to);
        if (task_is_final(to))
            webhooks_kick(s->hooks);
        else if (!strcmp(to, "pending"))
            service_kick(s);
    }
    return rc;
}

/* ---- SOP bundles --------------------------------------------------------- */

sop *service_parse_bundle(const char *dir, const char *bundle_json, char *err, size_t errsz)
{
    cJSON *b = cJSON_Parse(bundle_json);
    cJSON *files = cJSON_GetObjectItem(b, "files");
    const char *main_name = cJSON_GetStringValue(cJSON_GetObjectItem(b, "main"));
    sop *out = NULL;
    if (!cJSON_IsObject(files) || !main_name) {
        snprintf(err, errsz, "the stored SOP is not a bundle");
        goto done;
    }
    /* write the files once: a version never changes */
    char mark[4200];
    snprintf(mark, sizeof(mark), "%s/.complete", dir);
    if (access(mark, F_OK) != 0) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp-%d", dir, (int)getpid());
        pt_rmtree(tmp);
        if (mkdir(tmp, 0700) < 0) {
            snprintf(err, errsz, "cannot write the SOP files under %s", dir);
            goto done;
        }
        for (cJSON *f = files->child; f; f = f->next) {
            char path[4400];
            if (strchr(f->string, '/') || f->string[0] == '.' || !cJSON_IsString(f))
                continue;
            snprintf(path, sizeof(path), "%s/%s", tmp, f->string);
            pt_write_file(path, f->valuestring, strlen(f->valuestring), 0600);
        }
        char tmark[4300];
        snprintf(tmark, sizeof(tmark), "%s/.complete", tmp);
        pt_write_file(tmark, "", 0, 0600);
        pt_rmtree(dir);
        if (rename(tmp, dir) < 0) {
            pt_rmtree(tmp);
            if (access(mark, F_OK) != 0) {
                snprintf(err, errsz, "cannot write the SOP files under %s", dir);
                goto done;
            }
        }
    }
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, main_name);
    sop_diags d = {0};
    out = sop_parse_file(path, &d);
    if (!out) {
        char *m = NULL;
        size_t ml = 0;
        FILE *f = open_memstream(&m, &ml);
        if (f) {
            sop_diags_print(&d, f);
            fclose(f);
        }
        snprintf(err, errsz, "%s", m ? m : "the SOP does not parse");
        free(m);
    }
    sop_diags_free(&d);
done:
    cJSON_Delete(b);
    return out;
}

static int mkdirs(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

const sop *service_sop(service *s, store *st, int64_t acct, const char *type, int version,
                       char *err)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nsops; i++)
        if (s->sops[i].acct == acct && s->sops[i].version == version &&
            !strcmp(s->sops[i].type, type)) {
            const sop *found = s->sops[i].sop;
            pthread_mutex_unlock(&s->mu);
            return found;
        }
    pthread_mutex_unlock(&s->mu);
    char *bundle = NULL;
    if (store_sop_get(st, acct, type, version, &bundle) != 1) {
        pt_errf(err, "the account has no SOP %s version %d", type, version);
        return NULL;
    }
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/sops/%lld/%s", s->data_dir, (long long)acct, type);
    mkdirs(dir);
    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%d", version);
    char perr[2048];
    pthread_mutex_lock(&s->mu); /* one writer of the folder at a time */
    sop *parsed = service_parse_bundle(dir, bundle, perr, sizeof(perr));
    free(bundle);
    if (!parsed) {
        pthread_mutex_unlock(&s->mu);
        pt_errf(err, "the account's SOP %s_%d does not parse: %s", type, version, perr);
        return NULL;
    }
    struct sop_entry *n = realloc(s->sops, (s->nsops + 1) * sizeof(*n));
    if (!n) {
        pthread_mutex_unlock(&s->mu);
        sop_free(parsed);
        pt_errf(err, "out of memory");
        return NULL;
    }
    s->sops = n;
    n[s->nsops].acct = acct;
    snprintf(n[s->nsops].type, sizeof(n[s->nsops].type), "%s", type);
    n[s->nsops].version = version;
    n[s->nsops].sop = parsed;
    s->nsops++;
    pthread_mutex_unlock(&s->mu);
    return parsed;
}

/* ---- The shared browser -------------------------------------------------- */

/* A browser to run in: the shared one, relaunched if it died once nobody
 * uses the dead one any more. NULL with err if it cannot start. */
static cdp_browser *browser_get(service *s, char *err)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            pt_errf(err, "the service is stopping");
            return NULL;
        }
        if (s->browser && !s->browser_broken && !cdp_browser_gone(s->browser, NULL))
            break;
        if (s->browser && s->browser_users > 0) {
            s->browser_broken = 1;
            pthread_cond_wait(&s->browser_free, &s->mu);
            continue;
        }
        if (s->browser) {
            PT_WARN("service", "the browser is gone; starting a new one");
            cdp_close(s->browser);
            s->browser = NULL;
        }
        s->browser_broken = 0;
        cdp_browser *b = NULL;
        int rc = cdp_open(s->o.browser_ws, &b, err);
        if (rc < 0) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        s->browser = b;
        s->browser_launches++;
    }
    s->browser_users++;
    cdp_browser *b = s->browser;
    pthread_mutex_unlock(&s->mu);
    return b;
}

static void browser_put(service *s, cdp_browser *b)
{
    pthread_mutex_lock(&s->mu);
    s->browser_users--;
    if (b == s->browser && cdp_browser_gone(b, NULL))
        s->browser_broken = 1;
    pthread_cond_broadcast(&s->browser_free);
    pthread_mutex_unlock(&s->mu);
}

/* ---- Running one task ---------------------------------------------------- */

typedef struct task_run {
    service *s;
    worker_slot *slot;
    store *st;
    int64_t id;
    int committed;
} task_run;

static void add_secret(void *ud, const char *name, const unsigned char *sealed, size_t len)
{
    void **a = ud;
    service *s = a[0];
    vars *v = a[1];
    int64_t acct = *(int64_t *)a[2];
    char *plain = service_open_secret(s->master, acct, name, sealed, len);
    if (!plain) {
        PT_ERROR("task", "account %lld's secret %s cannot be opened (wrong master key?)",
                 (long long)acct, name);
        return;
    }
    vars_set(v, name, plain, 0);
    pt_log_mask(plain);
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
}

static void add_default(void *ud, const char *input, const char *value)
{
    vars_set(ud, input, value, 0);
}

static int hook_cancelled(void *ud)
{
    task_run *tr = ud;
    pthread_mutex_lock(&tr->s->mu);
    int c = tr->slot->cancel || tr->s->stopping;
    pthread_mutex_unlock(&tr->s->mu);
    return c;
}

static void hook_commit(void *ud)
{
    task_run *tr = ud;
    /* durable before the first step past the point of no return */
    store_task_set_int(tr->st, tr->id, "committed", 1);
    tr->committed = 1;
    PT_INFO("task", "task %lld crossed its commit point", (long long)tr->id);
}

/* Waits (holding the browser context) until the API fills the slot, the
 * task is cancelled, the hold time passes or the service stops. */
static void hold_wait(task_run *tr)
{
    service *s = tr->s;
    struct timespec until = pt_deadline((int64_t)s->o.hold_seconds * 1000);
    pthread_mutex_lock(&s->mu);
    while (!s->stopping && !tr->slot->cancel && !tr->slot->answer && tr->slot->decision < 0)
        if (pthread_cond_timedwait(&tr->slot->wake, &s->mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->mu);
}

static int hook_ask(void *ud, const char *name, const char *prompt, char **answer)
{
    task_run *tr = ud;
    service *s = tr->s;
    store_task_set_text(tr->st, tr->id, "ask_name", name);
    store_task_set_text(tr->st, tr->id, "ask_prompt", prompt);
    pthread_mutex_lock(&s->mu);
    tr->slot->hold = HOLD_ASK;
    free(tr->slot->answer);
    tr->slot->answer = NULL;
    pthread_mutex_unlock(&s->mu);
    char note[200];
    snprintf(note, sizeof(note), "asks for %s", name);
    service_move(s, tr->st, tr->id, "running", "waiting_for_input", NULL, note);
    hold_wait(tr);
    pthread_mutex_lock(&s->mu);
    *answer = tr->slot->answer;
    tr->slot->answer = NULL;
    tr->slot->hold = HOLD_NONE;
    pthread_mutex_unlock(&s->mu);
    return *answer ? 0 : 1;
}

static int hook_review(void *ud, const char *summary, char **comment)
{
    task_run *tr = ud;
    service *s = tr->s;
    pthread_mutex_lock(&s->mu);
    tr->slot->hold = HOLD_REVIEW;
    tr->slot->decision = -1;
    pthread_mutex_unlock(&s->mu);
    service_move(s, tr->st, tr->id, "running", "pending_review", summary, "review requested");
    hold_wait(tr);
    pthread_mutex_lock(&s->mu);
    int d = tr->slot->decision;
    *comment = tr->slot->comment;
    tr->slot->comment = NULL;
    tr->slot->hold = HOLD_NONE;
    tr->slot->decision = -1;
    pthread_mutex_unlock(&s->mu);
    return d < 0 ? 2 : d;
}

static void record_duration(service *s, int64_t ms)
{
    s->duration_count++;
    s->duration_ms_sum += ms;
    for (int i = 0; i < DURATION_BUCKETS; i++)
        if (!duration_bounds[i] || ms <= duration_bounds[i])
            s->duration_buckets[i]++;
}

/* After a run that the browser's death (or the service stopping) cut
 * short: run it again if nothing can have been submitted, else review. */
static void interrupted(service *s, store *st, int64_t id, int committed, int attempts,
                        const char *what)
{
    char note[1024];
    if (committed) {
        snprintf(note, sizeof(note),
                 "%s after the task crossed its commit point: the portal may already have the "
                 "submission. Check the portal, then approve (it is there) or reject.",
                 what);
        service_move(s, st, id, "dispatching,running,waiting_for_input,pending_review",
                     "pending_review", note, what);
    } else if (attempts < 2) {
        snprintf(note, sizeof(note), "%s; running it again (nothing was submitted)", what);
        service_move(s, st, id, "dispatching,running,waiting_for_input,pending_review", "pending",
                     NULL, note);
    } else {
        snprintf(note, sizeof(note), "%s twice; not retrying again.", what);
        service_move(s, st, id, "dispatching,running,waiting_for_input,pending_review", "failed",
                     note, what);
    }
}

static void run_task(service *s, worker_slot *slot, store *st, int64_t id)
{
    task t;
    char err[PT_ERR_MAX];
    if (store_task_get(st, 0, id, &t) != 1)
        return;
    account a = {0};
    vars *data = vars_new(), *defaults = vars_new(), *inputs = vars_new(), *secrets = vars_new(),
         *answers = vars_new();
    char **files = NULL;
    size_t nfiles = 0;
    cdp_browser *b = NULL;
    if (t.cancel_requested) {
        service_move(s, st, id, NULL, "failed", "Cancelled by the client.", "cancelled");
        goto out;
    }
    const sop *sp = service_sop(s, st, t.account_id, t.type, t.sop_version, err);
    if (!sp || store_account_by_id(st, t.account_id, &a) != 1) {
        service_move(s, st, id, NULL, "failed", sp ? "The account is gone." : err, "cannot start");
        goto out;
    }
    char problems[4096] = "";
    if (vars_parse_data(data, t.data ? t.data : "", problems, sizeof(problems)) < 0 ||
        (store_default_each(st, t.account_id, add_default, defaults),
         vars_bind_inputs(sp, data, defaults, inputs, problems, sizeof(problems)) > 0)) {
        char *notes = NULL;
        if (asprintf(&notes, "The task data does not fit the SOP:\n%s", problems) < 0)
            notes = NULL;
        service_move(s, st, id, NULL, "failed", notes, "bad task data");
        free(notes);
        goto out;
    }
    void *sa[3] = {s, secrets, &t.account_id};
    store_secret_each(st, t.account_id, add_secret, sa);
    cJSON *ans = t.answers ? cJSON_Parse(t.answers) : NULL;
    for (cJSON *c = ans ? ans->child : NULL; c; c = c->next)
        if (cJSON_IsString(c)) {
            vars_set(answers, c->string, c->valuestring, 0);
            pt_log_mask(c->valuestring);
        }
    cJSON_Delete(ans);
    files = store_task_files(st, id, &nfiles);

    /* an attempt counts from here: a browser that cannot start is one */
    store_task_set_int(st, id, "attempts", t.attempts + 1);
    b = browser_get(s, err);
    if (!b) {
        char what[PT_ERR_MAX + 64];
        snprintf(what, sizeof(what), "No browser could be started (%s)", err);
        interrupted(s, st, id, t.committed, t.attempts + 1, what);
        goto out;
    }
    if (service_move(s, st, id, "dispatching,pending", "running", NULL, "running") != 1)
        goto out; /* cancelled meanwhile */
    char traj[4400];
    snprintf(traj, sizeof(traj), "%s/trajectories/%lld-%d", s->data_dir, (long long)id,
             t.attempts + 1);
    pt_rmtree(traj);
    store_trajectory_add(st, id, traj);

    task_run tr = {s, slot, st, id, t.committed};
    agent_options o = {.browser = b,
                       .portal = a.portal,
                       .inputs = inputs,
                       .secrets = secrets,
                       .answers = answers,
                       .files = (const char *const *)files,
                       .nfiles = nfiles,
                       .approve = t.approve,
                       .trajectory_dir = traj,
                       .ask = hook_ask,
                       .review = hook_review,
                       .on_commit = hook_commit,
                       .cancelled = hook_cancelled,
                       .hook_ud = &tr};
    int64_t t0 = pt_mono_ms();
    agent_result r;
    s->busy_workers++;
    agent_run(sp, &o, &r);
    s->busy_workers--;
    int committed = r.committed || tr.committed || t.committed;
    pthread_mutex_lock(&s->mu);
    int stopping = s->stopping, cancel = slot->cancel;
    pthread_mutex_unlock(&s->mu);
    int gone = cdp_browser_gone(b, NULL);
    browser_put(s, b);
    b = NULL;

    if (stopping && !cancel && strcmp(r.status, "waiting_for_input") &&
        strcmp(r.status, "pending_review")) {
        /* the service is stopping: whatever the run says, it was cut short;
         * start-up recovery decides (leave it as it is) */
        PT_INFO("task", "task %lld left for recovery at the next start", (long long)id);
    } else if (gone && !cancel && !task_is_final(r.status)) {
        interrupted(s, st, id, committed, t.attempts + 1, "The browser crashed");
    } else if (gone && !cancel && !strcmp(r.status, "failed")) {
        interrupted(s, st, id, committed, t.attempts + 1, "The browser crashed");
    } else if (task_is_final(r.status)) {
        record_duration(s, pt_mono_ms() - t0);
        service_move(s, st, id, NULL, r.status, r.notes ? r.notes : "", "finished");
    } else if (!strcmp(r.status, "waiting_for_input")) {
        /* the hold ran out (the hook already moved it) */
        if (committed)
            service_move(s, st, id, "waiting_for_input,running", "pending_review",
                         "The task asked for input after its commit point and no answer came in "
                         "time; the portal may have a partial submission. Check it, then approve "
                         "or reject.",
                         "hold expired after commit");
        else
            service_move(s, st, id, "running", "waiting_for_input", NULL, "waiting");
        PT_INFO("task", "task %lld released its worker while waiting for input", (long long)id);
    } else if (!strcmp(r.status, "pending_review")) {
        service_move(s, st, id, "running", "pending_review", r.notes, "waiting");
        PT_INFO("task", "task %lld released its worker while pending review", (long long)id);
    }
    agent_result_free(&r);
out:
    if (b)
        browser_put(s, b);
    store_strings_free(files);
    account_free(&a);
    vars_free(data);
    vars_free(defaults);
    vars_free(inputs);
    vars_free(secrets);
    vars_free(answers);
    task_free(&t);
}

static void *worker_main(void *arg)
{
    worker_slot *slot = arg;
    service *s = slot->svc;
    store *st = service_store(s);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
        int64_t id = 0;
        int got = st ? store_task_claim(st, &id) : -1;
        if (got != 1) {
            struct timespec until = pt_deadline(got < 0 ? 1000 : 500);
            pthread_mutex_lock(&s->mu);
            if (!s->stopping)
                pthread_cond_timedwait(&s->work, &s->mu, &until);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        slot->task_id = id;
        slot->cancel = 0;
        slot->decision = -1;
        pthread_mutex_unlock(&s->mu);
        PT_INFO("task", "worker %d runs task %lld", slot->index, (long long)id);
        run_task(s, slot, st, id);
        pthread_mutex_lock(&s->mu);
        slot->task_id = 0;
        slot->hold = HOLD_NONE;
        free(slot->answer);
        slot->answer = NULL;
        free(slot->comment);
        slot->comment = NULL;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* ---- Group commit of task creations ------------------------------------- */

/* Takes every waiting creation, runs them in one transaction (a savepoint
 * each), commits once, then answers them all: under load, one fsync-free
 * WAL commit serves many requests instead of each contending for the lock. */
static void *creator_main(void *arg)
{
    service *s = arg;
    char err[PT_ERR_MAX];
    store *st = store_open(s->o.db_path, 0, err);
    if (!st)
        PT_ERROR("service", "the task writer cannot open the store: %s", err);
    pthread_mutex_lock(&s->create_mu);
    for (;;) {
        while (!s->create_q && !s->create_stop)
            pthread_cond_wait(&s->create_wake, &s->create_mu);
        if (!s->create_q && s->create_stop)
            break;
        create_req *batch = s->create_q;
        s->create_q = NULL;
        pthread_mutex_unlock(&s->create_mu);
        /* the queue was pushed newest first: run them in arrival order */
        create_req *rev = NULL;
        while (batch) {
            create_req *n = batch->next;
            batch->next = rev;
            rev = batch;
            batch = n;
        }
        int ok = st && store_batch_begin(st) == 0;
        for (create_req *r = rev; r; r = r->next) {
            char e[PT_ERR_MAX] = "";
            r->rc = ok ? store_task_create(st, r->account, r->type, r->sop_version, r->title_fmt,
                                           r->instructions, r->data, r->idem_key, r->files,
                                           r->nfiles, r->files_dir, r->out, e)
                       : pt_errf(e, "the store is not available");
            snprintf(r->err, sizeof(r->err), "%s", e);
        }
        if (ok && store_batch_end(st) < 0)
            for (create_req *r = rev; r; r = r->next) {
                if (r->rc >= 0)
                    task_free(r->out);
                r->rc = -1;
                snprintf(r->err, sizeof(r->err), "the store could not commit the task");
            }
        pthread_mutex_lock(&s->create_mu);
        for (create_req *r = rev; r; r = r->next)
            r->done = 1;
        pthread_cond_broadcast(&s->create_done);
        pthread_mutex_unlock(&s->create_mu);
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->work); /* new pending tasks */
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->create_mu);
    }
    pthread_mutex_unlock(&s->create_mu);
    store_close(st);
    return NULL;
}

int service_create_task(service *s, create_req *req)
{
    pthread_mutex_lock(&s->create_mu);
    if (s->create_stop) {
        pthread_mutex_unlock(&s->create_mu);
        snprintf(req->err, sizeof(req->err), "the service is stopping");
        return -1;
    }
    req->done = 0;
    req->next = s->create_q;
    s->create_q = req;
    pthread_cond_signal(&s->create_wake);
    while (!req->done)
        pthread_cond_wait(&s->create_done, &s->create_mu);
    pthread_mutex_unlock(&s->create_mu);
    if (req->rc == 0)
        s->queued++;
    return req->rc;
}

long long service_queue_depth(service *s, store *st)
{
    long long now = pt_mono_ms();
    if (now - s->queued_at > 100) {
        s->queued_at = now;
        long long n = store_task_count_status(st, "pending");
        if (n >= 0)
            s->queued = n;
    }
    return s->queued;
}

/* ---- Start-up and stop --------------------------------------------------- */

/* Tasks the last process left mid-run, by the same rule as a crash. */
static void recover(service *s, store *st)
{
    static const char *const states[] = {"dispatching", "running", "waiting_for_input",
                                         "pending_review"};
    for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
        size_t n = 0;
        int64_t *ids = store_task_ids(st, states[k], &n);
        for (size_t i = 0; i < n; i++) {
            task t;
            if (store_task_get(st, 0, ids[i], &t) != 1)
                continue;
            if (k < 2) {
                PT_WARN("service", "task %lld was %s when portier stopped; recovering",
                        (long long)t.id, t.status);
                interrupted(s, st, t.id, t.committed, t.attempts, "Portier stopped");
            } else if (k == 2 && t.committed) {
                /* its browser context is gone and it cannot start over */
                interrupted(s, st, t.id, 1, t.attempts, "Portier stopped while it waited");
            }
            task_free(&t);
        }
        free(ids);
    }
}

int service_start(const service_options *o, service **out, char *err)
{
    service *s = calloc(1, sizeof(*s));
    if (!s)
        return pt_errf(err, "out of memory");
    s->o = *o;
    if (!s->o.workers)
        s->o.workers = 2;
    if (s->o.workers < 0) /* an API-only node: tasks wait for a node with workers */
        s->o.workers = 0;
    if (!s->o.hold_seconds)
        s->o.hold_seconds = 300;
    if (!s->o.max_queue)
        s->o.max_queue = 10000;
    s->started_ms = pt_wall_ms();
    pthread_mutex_init(&s->mu, NULL);
    pt_cond_init_monotonic(&s->work);
    pt_cond_init_monotonic(&s->browser_free);
    pthread_mutex_init(&s->create_mu, NULL);
    pthread_cond_init(&s->create_wake, NULL);
    pthread_cond_init(&s->create_done, NULL);
    pthread_key_create(&s->store_key, close_store);
    snprintf(s->data_dir, sizeof(s->data_dir), "%s.d", o->db_path);
    char sub[4200];
    if (mkdirs(s->data_dir) < 0) {
        pt_errf(err, "cannot create the data folder %s", s->data_dir);
        goto fail;
    }
    static const char *const subs[] = {"files", "trajectories", "sops", "spool"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", s->data_dir, subs[i]);
        mkdirs(sub);
    }
    snprintf(sub, sizeof(sub), "%s/spool", s->data_dir);
    pt_rmtree(sub); /* uploads of requests that never finished */
    mkdirs(sub);
    s->main_store = store_open(o->db_path, 1, err);
    if (!s->main_store)
        goto fail;
    if (service_master_key(o->db_path, s->master, err) < 0)
        goto fail;
    recover(s, s->main_store);
    s->hooks = webhooks_start(o->db_path, s->master, err);
    if (!s->hooks)
        goto fail;
    if (pthread_create(&s->creator, NULL, creator_main, s) != 0) {
        pt_errf(err, "cannot start the task writer");
        goto fail;
    }
    s->creator_started = 1;
    s->nworkers = s->o.workers;
    s->slots = calloc((size_t)s->nworkers + 1, sizeof(*s->slots));
    if (!s->slots)
        goto fail;
    for (int i = 0; i < s->nworkers; i++) {
        s->slots[i].svc = s;
        s->slots[i].index = i;
        s->slots[i].decision = -1;
        pt_cond_init_monotonic(&s->slots[i].wake);
        pthread_create(&s->slots[i].thread, NULL, worker_main, &s->slots[i]);
    }
    snprintf(s->spool_dir, sizeof(s->spool_dir), "%s/spool", s->data_dir);
    http_options ho = {.host = o->host,
                       .port = o->port,
                       /* handlers mostly wait on the store: enough of them
                        * that a group commit has requests to group */
                       .workers = 16,
                       .max_body = o->max_body,
                       .max_file = o->max_file,
                       .spool_dir = s->spool_dir};
    static const char *const custom[] = {"idempotency-key", "webhook-id", "webhook-timestamp",
                                         "webhook-signature", NULL};
    ho.custom_headers = custom;
    if (http_start(&ho, api_handle, s, &s->http, err) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    service_stop(s);
    return -1;
}

int service_port(const service *s)
{
    return http_port(s->http);
}

void service_stop(service *s)
{
    if (!s)
        return;
    if (s->http) {
        http_stop(s->http);
        s->http = NULL;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->browser_free);
    for (int i = 0; i < s->nworkers; i++)
        pthread_cond_broadcast(&s->slots[i].wake);
    cdp_browser *b = s->browser;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->create_mu);
    s->create_stop = 1; /* the HTTP server has stopped: no request waits */
    pthread_cond_broadcast(&s->create_wake);
    pthread_mutex_unlock(&s->create_mu);
    if (s->creator_started)
        pthread_join(s->creator, NULL);
    /* a run in progress is cut short; recovery at the next start decides */
    if (b)
        cdp_abort(b, "portier is stopping");
    for (int i = 0; i < s->nworkers; i++) {
        pthread_join(s->slots[i].thread, NULL);
        pthread_cond_destroy(&s->slots[i].wake);
    }
    free(s->slots);
    cdp_close(s->browser);
    webhooks_stop(s->hooks);
    for (size_t i = 0; i < s->nsops; i++)
        sop_free(s->sops[i].sop);
    free(s->sops);
    store_close(s->main_store);
    free(s->sink_url);
    OPENSSL_cleanse(s->master, sizeof(s->master));
    pthread_key_delete(s->store_key);
    pthread_cond_destroy(&s->create_wake);
    pthread_cond_destroy(&s->create_done);
    pthread_mutex_destroy(&s->create_mu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
