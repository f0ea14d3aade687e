/*
 * worker.c - the worker threads, one run at a time each, and their holds.
 * See worker.h. Owns the worker slots and their lock (a slot is what one
 * thread does now: its task, its hold, the answer or decision handed to
 * it) and the run tokens; it never answers HTTP and never opens a secret
 * itself (keys.c does).
 *
 * Parking: there are `workers` run tokens and workers + max_parked threads.
 * A thread needs a token to claim and run a task. A run that stops at `ask`
 * or `review` parks: it gives its token back at once (another thread claims
 * the next task) and sleeps holding its browser context. An answer or a
 * decision wakes it; it takes a token again (before idle threads do) and
 * goes on where it stopped. At most max_parked runs are parked: one more
 * evicts the oldest, which ends its run (the task keeps waiting, and runs
 * again from the start once answered), as does a hold past hold_seconds.
 *
 *   idle --token--> claiming --task--> running --ask/review--> parked
 *    ^                 | none             |                      | answer: token
 *    +---- give token -+------ done ------+ <-- evicted, expired -+---> running
 */
#define _GNU_SOURCE
#include "server/worker.h"
#include "agent/agent.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const long worker_duration_bounds[WORKER_DURATION_BUCKETS] = {1000,  2000,  5000,   10000,  20000,
                                                              30000, 60000, 120000, 300000, 0};

enum hold_kind { HOLD_NONE, HOLD_ASK, HOLD_REVIEW };

/* What one worker is doing; guarded by workers.mu. */
typedef struct slot {
    struct workers *w;
    int index;
    pthread_t thread;
    int started;
    int64_t task_id; /* 0: idle */
    int cancel;      /* the client cancelled the task */
    int lost;        /* another node took the task over: stop, move nothing */
    int has_token;   /* this thread holds a run token */
    int parked;      /* asleep in a hold, without a token */
    int evict;       /* parked the longest while another parked: stop holding */
    int64_t parked_seq;
    enum hold_kind hold;
    char *answer;        /* HOLD_ASK: set by the API */
    int decision;        /* HOLD_REVIEW: -1 none yet, 0 reject, 1 approve */
    char *comment;       /* the reviewer's, with a decision */
    pthread_cond_t wake; /* signalled when the above change */
} slot;

struct workers {
    worker_env env;
    pthread_mutex_t mu; /* guards stopping, draining, every slot and the tokens */
    int stopping;
    int draining; /* no new claims (workers_drain) */
    int handback; /* runs cut short by the stop are handed back (task_interrupt) */
    slot *slots;
    int n;                /* threads: tokens + max_parked */
    int tokens;           /* runs at once (--workers) */
    int active;           /* tokens taken */
    int resuming;         /* parked runs waiting for a token */
    int nparked;          /* runs parked now */
    int64_t park_seq;     /* orders parked runs, oldest first */
    pthread_cond_t token; /* a token was given back */
    atomic_int busy;
    atomic_long runs, ms_sum, buckets[WORKER_DURATION_BUCKETS];
};

/* ---- One run ------------------------------------------------------------- */

typedef struct task_run {
    workers *w;
    slot *sl;
    task_ctx cx;
    int64_t id;
    int committed;
} task_run;

static int hook_cancelled(void *ud)
{
    task_run *tr = ud;
    pthread_mutex_lock(&tr->w->mu);
    int c = tr->sl->cancel || tr->sl->lost || tr->w->stopping;
    pthread_mutex_unlock(&tr->w->mu);
    return c;
}

/* Durable before the first step past the point of no return: if the write
 * fails (the database busy past its timeout, a full disk), the run must not
 * go on to submit, since a crash after it would submit again. */
static int hook_commit(void *ud)
{
    task_run *tr = ud;
    /* only while the lease is this node's: a node that stalled past its
     * lease finds the task taken over here, before it submits again */
    int rc = store_task_commit_leased(tr->cx.st, tr->id, tr->cx.node);
    if (rc == PT_NONE) {
        PT_ERROR("task", "task %lld: another node took it over; stopping before submit",
                 (long long)tr->id);
        pthread_mutex_lock(&tr->w->mu);
        tr->sl->lost = 1;
        pthread_mutex_unlock(&tr->w->mu);
        return -1;
    }
    if (rc != PT_FOUND) {
        PT_ERROR("task", "task %lld: could not record its commit point; stopping before submit",
                 (long long)tr->id);
        return -1;
    }
    tr->committed = 1;
    PT_INFO("task", "task %lld crossed its commit point", (long long)tr->id);
    return 0;
}

/* Takes a run token for sl; w->mu held. A resuming run goes before idle
 * threads; an idle one gives up when the workers stop (-1). */
static int take_token(workers *w, slot *sl, int resume)
{
    if (resume)
        w->resuming++;
    while (!w->stopping && !(w->draining && !resume) &&
           (w->active >= w->tokens || (!resume && w->resuming > 0)))
        pthread_cond_wait(&w->token, &w->mu);
    if (resume)
        w->resuming--;
    if ((w->stopping || w->draining) && !resume)
        return -1;
    w->active++;
    sl->has_token = 1;
    return 0;
}

/* w->mu held. */
static void give_token(workers *w, slot *sl)
{
    if (!sl->has_token)
        return;
    sl->has_token = 0;
    w->active--;
    pthread_cond_broadcast(&w->token);
}

/* Parks sl (w->mu held): its token goes back, and past max_parked the
 * oldest other parked run is told to stop holding. */
static void park(workers *w, slot *sl)
{
    sl->parked = 1;
    sl->evict = 0;
    sl->parked_seq = ++w->park_seq;
    w->nparked++;
    w->busy--;
    give_token(w, sl);
    pool_park(w->env.pool, 1);
    if (w->nparked <= w->env.max_parked)
        return;
    slot *oldest = NULL;
    for (int i = 0; i < w->n; i++) {
        slot *o = &w->slots[i];
        if (o != sl && o->parked && !o->evict && (!oldest || o->parked_seq < oldest->parked_seq))
            oldest = o;
    }
    if (oldest) {
        oldest->evict = 1;
        pthread_cond_broadcast(&oldest->wake);
        PT_INFO("task", "task %lld: more than %d parked; it releases its session",
                (long long)oldest->task_id, w->env.max_parked);
    }
}

/* Ends sl's parking (w->mu held): with an answer or decision it takes a
 * token and goes on; otherwise (evicted, expired, cancelled, stopping) it
 * only winds its run down, without a token. */
static void unpark(workers *w, slot *sl)
{
    sl->parked = 0;
    w->nparked--;
    pool_park(w->env.pool, -1);
    /* an answer that came with an eviction still wins: the run goes on */
    int goes_on = !sl->cancel && !sl->lost && !w->stopping && (sl->answer || sl->decision >= 0);
    sl->evict = 0;
    if (goes_on)
        take_token(w, sl, 1);
    w->busy++;
}

/* Waits, parked (holding the browser context, not a token), until the API
 * fills the slot, the task is cancelled, the hold time passes, a newer
 * parked run evicts it or the workers stop. */
static void hold_wait(task_run *tr)
{
    workers *w = tr->w;
    slot *sl = tr->sl;
    struct timespec until = pt_deadline((int64_t)w->env.hold_seconds * 1000);
    pthread_mutex_lock(&w->mu);
    if (w->env.max_parked > 0) {
        park(w, sl);
        while (!w->stopping && !sl->cancel && !sl->lost && !sl->evict && !sl->answer &&
               sl->decision < 0)
            if (pthread_cond_timedwait(&sl->wake, &w->mu, &until) == ETIMEDOUT)
                break;
        unpark(w, sl);
    }
    pthread_mutex_unlock(&w->mu);
}

static int hook_ask(void *ud, const char *name, const char *prompt, char **answer)
{
    task_run *tr = ud;
    workers *w = tr->w;
    store_task_set_ask(tr->cx.st, tr->id, name, prompt);
    pthread_mutex_lock(&w->mu);
    tr->sl->hold = HOLD_ASK;
    free(tr->sl->answer);
    tr->sl->answer = NULL;
    pthread_mutex_unlock(&w->mu);
    char note[200];
    snprintf(note, sizeof(note), "asks for %s", name);
    task_wait_for_input(&tr->cx, tr->id, note);
    hold_wait(tr);
    pthread_mutex_lock(&w->mu);
    *answer = tr->sl->answer;
    tr->sl->answer = NULL;
    tr->sl->hold = HOLD_NONE;
    pthread_mutex_unlock(&w->mu);
    return *answer ? 0 : 1;
}

static int hook_review(void *ud, const char *summary, char **comment)
{
    task_run *tr = ud;
    workers *w = tr->w;
    pthread_mutex_lock(&w->mu);
    tr->sl->hold = HOLD_REVIEW;
    tr->sl->decision = -1;
    pthread_mutex_unlock(&w->mu);
    store_task_set_review_prompt(tr->cx.st, tr->id, summary);
    task_hold_for_review(&tr->cx, tr->id, summary, "review requested");
    hold_wait(tr);
    pthread_mutex_lock(&w->mu);
    int d = tr->sl->decision;
    *comment = tr->sl->comment;
    tr->sl->comment = NULL;
    tr->sl->hold = HOLD_NONE;
    tr->sl->decision = -1;
    pthread_mutex_unlock(&w->mu);
    return d < 0 ? 2 : d;
}

static void record_duration(workers *w, int64_t ms)
{
    w->runs++;
    w->ms_sum += (long)ms;
    for (int i = 0; i < WORKER_DURATION_BUCKETS; i++)
        if (!worker_duration_bounds[i] || ms <= worker_duration_bounds[i])
            w->buckets[i]++;
}

/* What a run needs besides the SOP: inputs, secrets, answers, files. */
typedef struct run_inputs {
    account a;
    vars *inputs, *secrets, *answers;
    char **files; /* opened into open_dir for the run */
    size_t nfiles;
    char *open_dir;
} run_inputs;

static void run_inputs_free(run_inputs *in)
{
    if (in->open_dir)
        pt_rmtree(in->open_dir);
    free(in->open_dir);
    store_strings_free(in->files);
    account_free(&in->a);
    vars_free(in->inputs);
    vars_free(in->secrets);
    vars_free(in->answers);
}

/* A private folder for a run's opened uploads: in memory (/dev/shm) when
 * there is one, never in the data folder. A new string, or NULL. */
static char *private_dir(void)
{
    char tmpl[] = "/dev/shm/portier-files-XXXXXX";
    if (mkdtemp(tmpl))
        return strdup(tmpl);
    return pt_mkdtemp("portier-files");
}

/* The task's uploads (sealed at rest) opened into a private folder for the
 * run's upload steps, under the names they were stored with. 0, PT_ECLOSED
 * (the store could not be read: not the task's fault), or PT_EFAIL. */
static int open_files(workers *w, store *st, const task *t, run_inputs *in)
{
    in->files = store_task_files(st, t->id, &in->nfiles);
    if (!in->files)
        return PT_ECLOSED;
    if (!in->nfiles)
        return 0;
    if (!(in->open_dir = private_dir()))
        return PT_EFAIL;
    for (size_t i = 0; i < in->nfiles; i++) {
        char aad[4500], *data = NULL, *plain = NULL;
        size_t n = 0;
        const char *base = strrchr(in->files[i], '/');
        store_file_aad(aad, sizeof(aad), t->id, in->files[i]);
        int rc = keys_read_file(w->env.keys, st, t->account_id, aad, in->files[i],
                                (size_t)1 << 31, &data, &n);
        if (rc < 0 || asprintf(&plain, "%s/%s", in->open_dir, base ? base + 1 : in->files[i]) < 0) {
            free(data);
            return rc == PT_ECLOSED ? PT_ECLOSED : PT_EFAIL;
        }
        rc = pt_write_file(plain, data, n, 0600);
        free(data);
        free(in->files[i]);
        in->files[i] = plain;
        if (rc < 0)
            return PT_EFAIL;
    }
    return 0;
}

/* A store that failed for a moment while a run's inputs were read: the
 * task is not at fault, and runs again later (an attempt counted). */
static void store_trouble(workers *w, task_ctx *cx, const task *t)
{
    store_task_set_attempts(cx->st, t->id, t->attempts + 1);
    task_interrupt(cx, t->id, t->committed, t->attempts + 1, w->env.max_attempts,
                   "The store could not be read");
}

/* Gathers a run's inputs, or fails the task (PT_NONE: nothing to run). */
static int gather(workers *w, task_ctx *cx, const task *t, const sop *sp, run_inputs *in)
{
    store *st = cx->st;
    char problems[4096] = "";
    in->inputs = vars_new();
    in->secrets = vars_new();
    in->answers = vars_new();
    int acct = store_account_by_id(st, t->account_id, &in->a);
    if (acct < 0) {
        store_trouble(w, cx, t);
        return PT_NONE;
    }
    if (acct == 0) {
        task_fail(cx, t->id, "The account is gone.", "cannot start");
        return PT_NONE;
    }
    int bound = bundle_bind(st, t->account_id, sp, t->data, in->inputs, problems, sizeof(problems));
    if (bound == PT_ECLOSED) {
        store_trouble(w, cx, t);
        return PT_NONE;
    }
    if (bound != 0) {
        char *notes = NULL;
        if (asprintf(&notes, "The task data does not fit the SOP:\n%s", problems) < 0)
            notes = NULL;
        task_fail(cx, t->id, notes, "bad task data");
        free(notes);
        return PT_NONE;
    }
    if (keys_load_secrets(w->env.keys, st, t->account_id, in->secrets) < 0) {
        store_trouble(w, cx, t);
        return PT_NONE;
    }
    cJSON *ans = t->answers ? cJSON_Parse(t->answers) : NULL;
    for (cJSON *c = ans ? ans->child : NULL; c; c = c->next)
        if (cJSON_IsString(c)) {
            vars_set(in->answers, c->string, c->valuestring, 0);
            pt_log_mask(c->valuestring);
        }
    cJSON_Delete(ans);
    int opened = open_files(w, st, t, in);
    if (opened == PT_ECLOSED) {
        store_trouble(w, cx, t);
        return PT_NONE;
    }
    if (opened < 0) {
        task_fail(cx, t->id, "The task's files cannot be opened.", "cannot start");
        return PT_NONE;
    }
    return PT_FOUND;
}

/* Keeps what the run extracted (masked like its notes) for the task object,
 * before the move that tells the client. */
static void keep_outputs(store *st, int64_t id, const vars *outputs, const vars *secrets)
{
    size_t n = outputs ? vars_count(outputs) : 0;
    if (!n)
        return;
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        const char *name = vars_name(outputs, i);
        char *v = vars_mask(vars_get(outputs, name), secrets);
        cJSON_AddStringToObject(o, name, v ? v : "");
        free(v);
    }
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    store_task_set_outputs(st, id, json);
    free(json);
}

/* Moves the task by the run's outcome. */
static void settle(workers *w, task_run *tr, const task *t, const agent_result *r, int gone,
                   int64_t t0)
{
    task_ctx *cx = &tr->cx;
    int64_t id = t->id;
    /* an answer that came once this run's hold had run out started a new
     * run of the task while this one was ending: the task is that run's */
    task now;
    int ours = store_task_get(cx->st, 0, id, &now) == 1 && now.attempts == t->attempts + 1;
    task_free(&now);
    if (!ours) {
        PT_INFO("task", "task %lld: a newer run has it; this run's end moves nothing",
                (long long)id);
        return;
    }
    pthread_mutex_lock(&w->mu);
    int stopping = w->stopping, cancel = tr->sl->cancel, lost = tr->sl->lost;
    int handback = w->handback;
    pthread_mutex_unlock(&w->mu);
    int committed = r->committed || tr->committed || t->committed;
    enum task_status st = TASK_FAILED;
    int known = task_status_parse(r->status, &st) == PT_FOUND;
    int final = known && task_status_is_final(st);
    if (lost) {
        PT_INFO("task", "task %lld: another node has it; this run's end moves nothing",
                (long long)id);
    } else if (stopping && !cancel && st != TASK_WAITING_FOR_INPUT &&
               st != TASK_PENDING_REVIEW) {
        /* the service is stopping: whatever the run says, it was cut short.
         * Drained: handed back now by the commit rule; else the lease ends
         * with the run, and take-over (this node's next start, or another
         * node) decides */
        if (handback)
            task_interrupt(cx, id, committed, t->attempts + 1, w->env.max_attempts,
                           "Portier stopped");
        else
            PT_INFO("task", "task %lld left for take-over", (long long)id);
    } else if (gone && !cancel && (!final || st == TASK_FAILED)) {
        task_interrupt(cx, id, committed, t->attempts + 1, w->env.max_attempts,
                       "The browser crashed");
    } else if (final) {
        record_duration(w, pt_mono_ms() - t0);
        /* after earlier attempts were cut short, the notes say so */
        char *notes = task_retry_notes(t, w->env.max_attempts, r->notes);
        task_finish(cx, id, st, notes ? notes : r->notes ? r->notes : "");
        free(notes);
    } else if (st == TASK_WAITING_FOR_INPUT) {
        /* the hold ran out (the hook already moved it) */
        if (committed)
            task_escalate(cx, id,
                          "The task asked for input after its commit point and no answer came in "
                          "time; the portal may have a partial submission. Check it, then approve "
                          "or reject.",
                          "hold expired after commit");
        else
            task_wait_for_input(cx, id, "waiting");
        PT_INFO("task", "task %lld released its worker while waiting for input", (long long)id);
    } else if (st == TASK_PENDING_REVIEW) {
        task_hold_for_review(cx, id, r->notes, "waiting");
        PT_INFO("task", "task %lld released its worker while pending review", (long long)id);
    }
}

/* A kept session for the run, when its SOP signs in with a `session` line
 * and its account keeps them (else NULL: a fresh context for this run). */
static agent_session *take_session(workers *w, cdp_browser *b, const task *t, const account *a,
                                   const sop *sp, int *kept)
{
    char err[PT_ERR_MAX];
    *kept = 0;
    if (a->sessions_off) {
        pool_session_drop(w->env.pool, t->account_id); /* set-session off */
        return NULL;
    }
    if (!sop_keeps_session(sp))
        return NULL;
    agent_session *ks = pool_session_get(w->env.pool, b, t->account_id, kept, err);
    if (!ks)
        PT_WARN("task", "task %lld: no kept session (%s); a fresh context", (long long)t->id, err);
    else
        PT_DEBUG("task", "task %lld: %s session", (long long)t->id, *kept ? "a kept" : "a new");
    return ks;
}

/* Gives the session back: kept only after a run that ended well (completed,
 * or completed with issues), not cancelled, in a browser still alive. */
static void give_session(workers *w, task_run *tr, const task *t, agent_session *ks,
                         const agent_result *r, int gone)
{
    if (!ks)
        return;
    pthread_mutex_lock(&w->mu);
    int cancel = tr->sl->cancel, stopping = w->stopping;
    pthread_mutex_unlock(&w->mu);
    enum task_status st = TASK_FAILED;
    int ok = task_status_parse(r->status, &st) == PT_FOUND &&
             (st == TASK_COMPLETED || st == TASK_COMPLETED_WITH_ISSUES);
    pool_session_put(w->env.pool, t->account_id, ks, ok && !gone && !cancel && !stopping);
}

/* A run's trajectory files go through keys.c, sealed under the task's
 * account (agent/ writes through this sink and never sees a key). */
typedef struct traj_sink_ctx {
    const keys *k;
    store *st;
    int64_t acct, id;
    const char *dir;
} traj_sink_ctx;

static int traj_sink_write(void *ud, const char *name, const void *data, size_t len)
{
    traj_sink_ctx *c = ud;
    return keys_write_trajectory(c->k, c->st, c->acct, c->id, c->dir, name, data, len);
}

static int traj_sink_read(void *ud, const char *name, size_t max, char **data, size_t *len)
{
    traj_sink_ctx *c = ud;
    return keys_read_trajectory(c->k, c->st, c->acct, c->id, c->dir, name, max, data, len);
}

/* A run that succeeded leaves its fingerprints for the next run of the
 * same SOP version (sealed for the account). */
static void keep_fingerprints(store *st, const task *t, const cJSON *fps)
{
    if (!fps)
        return;
    char *json = cJSON_PrintUnformatted(fps);
    if (!json ||
        store_fingerprints_put(st, t->account_id, t->type, t->sop_version, json, pt_wall_ms()) < 0)
        PT_WARN("task", "task %lld: its fingerprints could not be kept", (long long)t->id);
    free(json);
}

/* Runs task id in a browser of the pool and moves it by the outcome. */
static void run_task(workers *w, slot *sl, task_ctx *cx, int64_t id)
{
    task t;
    char err[PT_ERR_MAX];
    run_inputs in = {0};
    if (store_task_get(cx->st, 0, id, &t) != 1)
        return;
    if (t.cancel_requested) {
        task_fail(cx, id, "Cancelled by the client.", "cancelled");
        goto out;
    }
    const sop *sp = NULL;
    int got = bundle_cache_get(w->env.sops, cx->st, t.account_id, t.type, t.sop_version, &sp, err);
    if (got == PT_ECLOSED) {
        store_trouble(w, cx, &t);
        goto out;
    }
    if (got != PT_FOUND) {
        task_fail(cx, id, err, "cannot start");
        goto out;
    }
    if (gather(w, cx, &t, sp, &in) != PT_FOUND)
        goto out;
    /* an attempt counts from here: a browser that cannot start is one */
    store_task_set_attempts(cx->st, id, t.attempts + 1);
    cdp_browser *b = pool_get(w->env.pool, t.account_id, err);
    if (!b) {
        char what[PT_ERR_MAX + 64];
        snprintf(what, sizeof(what), "No browser could be started (%s)", err);
        task_interrupt(cx, id, t.committed, t.attempts + 1, w->env.max_attempts, what);
        goto out;
    }
    if (task_start(cx, id) != PT_FOUND) {
        pool_put(w->env.pool, b);
        goto out; /* cancelled meanwhile */
    }
    char traj[4400];
    snprintf(traj, sizeof(traj), "%s/trajectories/%lld-%d", w->env.data_dir, (long long)id,
             t.attempts + 1);
    pt_rmtree(traj);
    store_trajectory_add(cx->st, id, traj);
    task_run tr = {w, sl, *cx, id, t.committed};
    traj_sink_ctx tc = {w->env.keys, cx->st, t.account_id, id, traj};
    agent_traj_sink sink = {traj_sink_write, traj_sink_read, &tc};
    int kept = 0, once = 0;
    agent_session *ks = take_session(w, b, &t, &in.a, sp, &kept);
    if (!ks) /* a fresh context for this run: the one made ahead, if ready */
        once = (ks = pool_spare_take(w->env.pool, b)) != NULL;
    /* the fingerprints the last run of this SOP version that succeeded left */
    char *fptext = NULL;
    if (store_fingerprints_get(cx->st, t.account_id, t.type, t.sop_version, &fptext) < 0)
        PT_WARN("task", "task %lld: the SOP's fingerprints do not open: recording afresh",
                (long long)id);
    cJSON *fps = fptext ? cJSON_Parse(fptext) : NULL;
    free(fptext);
    agent_options o = {.browser = b,
                       .fingerprints = fps,
                       .record_fingerprints = 1,
                       .session = ks,
                       .session_once = once,
                       .portal = in.a.portal,
                       .inputs = in.inputs,
                       .secrets = in.secrets,
                       .answers = in.answers,
                       .files = (const char *const *)in.files,
                       .nfiles = in.nfiles,
                       .approve = t.approve,
                       .trajectory_dir = traj,
                       .traj_sink = &sink,
                       .ask = hook_ask,
                       .review = hook_review,
                       .on_commit = hook_commit,
                       .cancelled = hook_cancelled,
                       .hook_ud = &tr};
    int64_t t0 = pt_mono_ms();
    agent_result r;
    w->busy++;
    agent_run(sp, &o, &r);
    w->busy--;
    int gone = cdp_browser_gone(b, NULL);
    if (once)
        agent_session_close(ks); /* its cookies, storage and cache with it */
    else
        give_session(w, &tr, &t, ks, &r, gone);
    pool_put(w->env.pool, b);
    keep_outputs(cx->st, id, r.outputs, in.secrets);
    keep_fingerprints(cx->st, &t, r.fingerprints);
    cJSON_Delete(fps);
    settle(w, &tr, &t, &r, gone, t0);
    agent_result_free(&r);
out:
    /* the run is over: its claim's lease ends (a newer claim of the task,
     * made while this run wound down, keeps its own) */
    store_task_lease_release(cx->st, id, w->env.node_id, cx->run);
    run_inputs_free(&in);
    task_free(&t);
}

static void *worker_main(void *arg)
{
    slot *sl = arg;
    workers *w = sl->w;
    char err[PT_ERR_MAX];
    store *st = store_open(w->env.db_path, 0, err);
    if (!st)
        PT_ERROR("service", "%s", err);
    else
        keys_attach(w->env.keys, st);
    task_ctx cx = {st, w->env.moved, w->env.ud, w->env.node_id, w->env.lease_ms};
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stopping = take_token(w, sl, 0) < 0;
        pthread_mutex_unlock(&w->mu);
        int64_t id = 0;
        pool_session_reap(w->env.pool); /* idle or old kept sessions go */
        int got = stopping ? PT_ESTATE : dispatch_next(w->env.dispatch, &cx, &id);
        if (got != PT_FOUND) {
            pthread_mutex_lock(&w->mu);
            give_token(w, sl);
            pthread_mutex_unlock(&w->mu);
        }
        if (got == PT_ESTATE)
            break;
        if (got != PT_FOUND)
            continue;
        pthread_mutex_lock(&w->mu);
        sl->task_id = id;
        sl->cancel = 0;
        sl->lost = 0;
        sl->decision = -1;
        pthread_mutex_unlock(&w->mu);
        PT_INFO("task", "worker %d runs task %lld", sl->index, (long long)id);
        /* the run's secrets and answers are masked in the log while it runs */
        pt_log_scope_open();
        run_task(w, sl, &cx, id);
        pt_log_scope_close();
        /* a task's transient buffers (screenshots, the trajectory's inline
         * HTML: megabytes) would stay in this thread's malloc arena, since
         * serve turns heap trimming off for the API's sake: give them back */
        malloc_trim(0);
        pthread_mutex_lock(&w->mu);
        give_token(w, sl);
        sl->task_id = 0;
        sl->hold = HOLD_NONE;
        free(sl->answer);
        sl->answer = NULL;
        free(sl->comment);
        sl->comment = NULL;
        pthread_mutex_unlock(&w->mu);
    }
    store_close(st);
    return NULL;
}

/* ---- Start and stop ------------------------------------------------------ */

workers *workers_start(int n, const worker_env *env, char *err)
{
    workers *w = calloc(1, sizeof(*w));
    int threads = n ? n + (env->max_parked > 0 ? env->max_parked : 0) : 0;
    if (!w || !(w->slots = calloc((size_t)threads + 1, sizeof(*w->slots)))) {
        free(w);
        pt_errc(err, PT_ENOMEM, "out of memory");
        return NULL;
    }
    w->env = *env;
    w->n = threads;
    w->tokens = n;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->token, NULL);
    for (int i = 0; i < threads; i++) {
        w->slots[i].w = w;
        w->slots[i].index = i;
        w->slots[i].decision = -1;
        pt_cond_init_monotonic(&w->slots[i].wake);
    }
    for (int i = 0; i < threads; i++)
        w->slots[i].started =
            pthread_create(&w->slots[i].thread, NULL, worker_main, &w->slots[i]) == 0;
    return w;
}

void workers_stop(workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    for (int i = 0; i < w->n; i++)
        pthread_cond_broadcast(&w->slots[i].wake);
    pthread_cond_broadcast(&w->token);
    pthread_mutex_unlock(&w->mu);
}

void workers_free(workers *w)
{
    if (!w)
        return;
    workers_stop(w);
    for (int i = 0; i < w->n; i++) {
        if (w->slots[i].started)
            pthread_join(w->slots[i].thread, NULL);
        pthread_cond_destroy(&w->slots[i].wake);
    }
    free(w->slots);
    pthread_cond_destroy(&w->token);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- What the API hands a worker ----------------------------------------- */

/* The slot running task id; w->mu held. */
static slot *slot_of(workers *w, int64_t id)
{
    for (int i = 0; i < w->n; i++)
        if (w->slots[i].task_id == id)
            return &w->slots[i];
    return NULL;
}

static int holds(workers *w, int64_t id, enum hold_kind kind)
{
    pthread_mutex_lock(&w->mu);
    slot *sl = slot_of(w, id);
    int held = sl && sl->hold == kind;
    pthread_mutex_unlock(&w->mu);
    return held;
}

int workers_answer(workers *w, task_ctx *cx, int64_t id, const char *answer)
{
    if (!holds(w, id, HOLD_ASK) || task_answer(cx, id) != PT_FOUND)
        return PT_NONE;
    pthread_mutex_lock(&w->mu);
    slot *sl = slot_of(w, id);
    if (sl && sl->hold == HOLD_ASK) {
        free(sl->answer);
        sl->answer = strdup(answer ? answer : "");
        pthread_cond_broadcast(&sl->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return PT_FOUND;
}

int workers_decide(workers *w, task_ctx *cx, int64_t id, int approve, const char *notes,
                   const char *comment)
{
    if (!holds(w, id, HOLD_REVIEW))
        return PT_NONE;
    int moved = approve ? task_approve(cx, id) : task_reject(cx, id, notes);
    pthread_mutex_lock(&w->mu);
    slot *sl = slot_of(w, id);
    if (moved == PT_FOUND && sl && sl->hold == HOLD_REVIEW) {
        sl->decision = approve;
        free(sl->comment);
        sl->comment = comment ? strdup(comment) : NULL;
        pthread_cond_broadcast(&sl->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return PT_FOUND;
}

int workers_cancel(workers *w, int64_t id, int *held)
{
    pthread_mutex_lock(&w->mu);
    slot *sl = slot_of(w, id);
    *held = sl && sl->hold != HOLD_NONE;
    if (sl) {
        sl->cancel = 1;
        pthread_cond_broadcast(&sl->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return sl ? PT_FOUND : PT_NONE;
}

size_t workers_held(workers *w, int64_t *ids, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n && n < max; i++)
        if (w->slots[i].task_id && !w->slots[i].lost)
            ids[n++] = w->slots[i].task_id;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void workers_lost(workers *w, int64_t id)
{
    pthread_mutex_lock(&w->mu);
    slot *sl = slot_of(w, id);
    if (sl) {
        sl->lost = 1;
        pthread_cond_broadcast(&sl->wake);
        PT_WARN("task", "task %lld: its lease is another node's now; the run stops", (long long)id);
    }
    pthread_mutex_unlock(&w->mu);
}

void workers_drain(workers *w)
{
    pthread_mutex_lock(&w->mu);
    w->draining = 1;
    pthread_cond_broadcast(&w->token);
    /* a parked run waits for a person, not for this node: it lets its
     * context go now (the task keeps waiting, and runs again from the
     * start on any node once answered), as an eviction does */
    for (int i = 0; i < w->n; i++)
        if (w->slots[i].parked) {
            w->slots[i].evict = 1;
            pthread_cond_broadcast(&w->slots[i].wake);
        }
    pthread_mutex_unlock(&w->mu);
}

int workers_wait_idle(workers *w, int64_t deadline_ms)
{
    for (;;) {
        int held = 0;
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < w->n; i++)
            held += w->slots[i].task_id != 0;
        pthread_mutex_unlock(&w->mu);
        if (!held || pt_mono_ms() >= deadline_ms)
            return held;
        pt_sleep_ms(100);
    }
}

void workers_hand_back(workers *w)
{
    pthread_mutex_lock(&w->mu);
    w->handback = 1;
    pthread_mutex_unlock(&w->mu);
}

void workers_stats(workers *w, worker_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->workers = w->tokens;
    out->busy = w->busy;
    pthread_mutex_lock(&w->mu);
    out->parked = w->nparked;
    pthread_mutex_unlock(&w->mu);
    out->runs = w->runs;
    out->ms_sum = w->ms_sum;
    for (int i = 0; i < WORKER_DURATION_BUCKETS; i++)
        out->buckets[i] = w->buckets[i];
}
