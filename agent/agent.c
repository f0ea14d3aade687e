/*
 * agent.c - the interpreter: follows an SOP's steps in Chromium. See
 * agent.h for the contract and run.h for the files it is made of.
 *
 * It owns the loop: a block's steps in order, the `whenever` handlers
 * (declared, checked while waiting, run when their condition holds), the
 * host's cancelling, the trajectory entry around each step and the outcome
 * of a run. What a step does is the step table's (steps.c). It must never
 * speak the protocol: cdp/ does.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "agent/run.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Results ------------------------------------------------------------- */

void run_status(run *R, const char *status, const char *notes)
{
    snprintf(R->r->status, sizeof(R->r->status), "%s", status);
    free(R->r->notes);
    R->r->notes = vars_mask(notes ? notes : "", R->o->secrets);
    R->stop = 1;
}

/* "submit_claim.sop:23" */
static void where(const sop_step *st, char *out, size_t outsz)
{
    const char *base = strrchr(st->file, '/');
    snprintf(out, outsz, "%s:%d", base ? base + 1 : st->file, st->line);
}

/* Fails the task at step st with a message people can act on (masked). */
void run_fail(run *R, const sop_step *st, const char *fmt, ...)
{
    char why[ERR_SIZE], loc[256], *src = vars_mask(st->source, R->o->secrets);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    /* in replay, a request the recording lacks is the real cause */
    const char *missing = R->o->stop_reason ? R->o->stop_reason(R->o->rr_ud) : NULL;
    if (missing)
        snprintf(why, sizeof(why), "%s", missing);
    where(st, loc, sizeof(loc));
    char *msg = NULL;
    if (asprintf(&msg, "%s: %s: %s", loc, src ? src : "", why) < 0)
        msg = NULL;
    run_status(R, "failed", msg ? msg : why);
    free(msg);
    free(src);
}

const char *run_frame(const run *R, int depth)
{
    return depth <= 0 ? NULL : R->stack[depth].frame_id;
}

/* How long step st may wait: its own timeout, else the SOP's. */
int run_timeout(const run *R, const sop_step *st)
{
    return st->timeout_ms ? st->timeout_ms : R->s->timeout_ms;
}

/* ---- The loop ------------------------------------------------------------ */

/* Runs one step: a table lookup and a call, inside its trajectory entry. */
static void step(run *R, const sop_step *st)
{
    const step_kind *k = step_kind_of(st->kind);
    R->cur = st;
    if (R->o->step_begin)
        R->o->step_begin(R->o->rr_ud, st);
    if (st->kind == SOP_WHENEVER) {
        handler *n = realloc(R->handlers, (R->nhandlers + 1) * sizeof(*n));
        if (n) {
            R->handlers = n;
            R->handlers[R->nhandlers++] = (handler){st, R->depth, 0, 0, 0, -1};
        }
        return;
    }
    /* a step with a body gives handlers their chance inside it */
    if (!k->block && run_handlers(R) < 0)
        return;
    if (R->stop)
        return;
    cJSON *t = traj_begin(R, st);
    if (k->block) {
        k->block(R, st, t);
        return;
    }
    int64_t t0 = pt_mono_ms();
    unsigned long c0 = cdp_calls_here();
    cJSON *saved_entry = R->entry;
    R->entry = t; /* a heal says so in it */
    int rc = k->fn ? k->fn(R, st) : 0;
    R->entry = saved_entry;
    traj_end(R, t, rc != 0 && !strcmp(R->r->status, "failed"), k->changes);
    if (pt_log_enabled(PT_LOG_DEBUG)) {
        const char *base = strrchr(st->file, '/');
        PT_DEBUG("agent", "%s:%d: %s: %lld ms, %lu protocol calls", base ? base + 1 : st->file,
                 st->line, sop_step_name(st->kind), (long long)(pt_mono_ms() - t0),
                 cdp_calls_here() - c0);
    }
}

/* The host asked the run to stop: it ends failed, saying so. */
static int check_cancel(run *R)
{
    const char *why = R->stop || !R->o->stop_reason ? NULL : R->o->stop_reason(R->o->rr_ud);
    if (why && R->cur) {
        run_fail(R, R->cur, "%s", why);
        return 1;
    }
    if (R->stop || !R->o->cancelled || !R->o->cancelled(R->o->hook_ud))
        return R->stop;
    run_status(R, "failed",
               R->r->committed ? "Cancelled by the client after the commit point: the portal may "
                                 "already have the submission."
                               : "Cancelled by the client.");
    return 1;
}

void run_used(run *R, const sop_block *b)
{
    for (size_t i = 0; i < b->n && !R->stop; i++) {
        if (check_cancel(R))
            break;
        step(R, &b->steps[i]);
    }
}

void run_used_handlers(run *R, const sop_block *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->steps[i].kind == SOP_WHENEVER)
            step(R, &b->steps[i]);
}

void run_block(run *R, const sop_block *b)
{
    size_t handlers_before = R->nhandlers;
    run_used(R, b);
    /* handlers declared in a block last as long as the block */
    R->nhandlers = handlers_before;
}

/* Whether handler i's condition holds now, looked at in one call with the
 * other due handlers of its frame (up to 16; their answers kept in their
 * `holds`: 1, 0, or -1 for not looked at yet). */
static int handler_holds(run *R, size_t i)
{
    handler *hs = R->handlers;
    if (hs[i].holds >= 0)
        return hs[i].holds;
    const sop_cond *cs[16] = {0};
    size_t idx[16], n = 0;
    for (size_t j = i; j < R->nhandlers && n < 16; j++)
        if (hs[j].due && hs[j].holds < 0 && hs[j].depth == hs[i].depth) {
            cs[n] = hs[j].st->cond;
            idx[n++] = j;
        }
    int got[16] = {0};
    char err[ERR_SIZE];
    cond_holds_many(R, cs, n, hs[i].depth, got, err);
    for (size_t k = 0; k < n; k++)
        hs[idx[k]].holds = got[k] == 1;
    return hs[i].holds;
}

/* Runs every `whenever` whose condition holds now: how many fired, or -1
 * if one failed. A
 * look right after another, with no call to the page in between, would see
 * what the last one saw: it is skipped. */
int run_handlers(run *R)
{
    if (R->in_handler || R->stop)
        return 0;
    if (check_cancel(R))
        return -1;
    if (!R->nhandlers || cdp_calls_here() == R->handlers_looked)
        return 0;
    size_t n = R->nhandlers;
    int fired = 0;
    for (size_t i = 0; i < n; i++) {
        R->handlers[i].due = pt_mono_ms() - R->handlers[i].last >= 500;
        R->handlers[i].holds = -1;
    }
    for (size_t i = 0; i < n && i < R->nhandlers; i++) {
        if (!R->handlers[i].due || !handler_holds(R, i))
            continue;
        handler *h = &R->handlers[i];
        if (++h->fired > 50) {
            run_fail(R, h->st, "this handler fired 50 times and its condition still holds");
            return -1;
        }
        PT_INFO("agent", "handler at line %d fires", h->st->line);
        fired++;
        R->in_handler = 1;
        int saved = R->depth;
        R->depth = h->depth;
        for (size_t k = 0; k < h->st->body.n && !R->stop; k++)
            step(R, &h->st->body.steps[k]);
        R->depth = saved;
        R->in_handler = 0;
        h = &R->handlers[i];
        h->last = pt_mono_ms();
        if (R->stop)
            return -1;
        for (size_t j = i + 1; j < n && j < R->nhandlers; j++)
            R->handlers[j].holds = -1; /* the page changed: look again */
    }
    R->handlers_looked = cdp_calls_here();
    return fired;
}

/* ---- Entry --------------------------------------------------------------- */

/* A run that healed a step ends at best completed_with_issues, with each
 * suggested change in its notes (docs/sop.md, "Fingerprints and healing"). */
static void heal_outcome(run *R)
{
    agent_result *r = R->r;
    if (!r->heals || !cJSON_GetArraySize(r->heals))
        return;
    if (!strcmp(r->status, "completed"))
        snprintf(r->status, sizeof(r->status), "completed_with_issues");
    pt_buf b;
    pt_buf_init(&b, 16384);
    const char *was = r->notes ? r->notes : "";
    size_t wl = strlen(was);
    pt_buf_appendf(&b, "%s%s", was, !wl ? "" : strchr(".!?", was[wl - 1]) ? " " : ". ");
    const cJSON *h;
    cJSON_ArrayForEach(h, r->heals)
    {
        const char *file = pt_json_str(h, "file") ? pt_json_str(h, "file") : "";
        const char *base = strrchr(file, '/');
        pt_buf_appendf(&b,
                       "Healed %s:%d: %s matched nothing; acted on the element its fingerprint "
                       "matched (score %.2f, next %.2f). Suggested change: %s",
                       base ? base + 1 : file,
                       (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(h, "line")),
                       pt_json_str(h, "locator") ? pt_json_str(h, "locator") : "",
                       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(h, "score")),
                       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(h, "second")),
                       pt_json_str(h, "new") ? pt_json_str(h, "new") : "");
        pt_buf_appendf(&b, "%s", h->next ? " " : "");
    }
    char *notes = pt_buf_take(&b);
    if (notes) {
        free(r->notes);
        r->notes = vars_mask(notes, R->o->secrets);
        free(notes);
    }
}

void agent_result_free(agent_result *r)
{
    cJSON_Delete(r->fingerprints);
    cJSON_Delete(r->heals);
    free(r->notes);
    vars_free(r->outputs);
    free(r->ask_name);
    free(r->ask_prompt);
    memset(r, 0, sizeof(*r));
}

int agent_run(const sop *s, const agent_options *o, agent_result *r)
{
    memset(r, 0, sizeof(*r));
    r->outputs = vars_new();
    run R = {0};
    R.s = s;
    R.o = o;
    R.r = r;
    R.v = vars_new();
    R.traj_steps = cJSON_CreateArray();
    if (o->record_fingerprints)
        R.fps = o->fingerprints ? cJSON_Duplicate(o->fingerprints, 1) : cJSON_CreateArray();
    char err[ERR_SIZE], *ctx = NULL;
    if (o->trajectory_dir && mkdir(o->trajectory_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(r->status, sizeof(r->status), "failed");
        if (asprintf(&r->notes, "cannot create the trajectory folder %s", o->trajectory_dir) < 0)
            r->notes = NULL;
        goto done;
    }
    /* the task's values, then the portal */
    if (o->inputs)
        for (size_t i = 0; i < s->ninputs; i++) {
            const char *v = vars_get(o->inputs, s->inputs[i].name);
            if (v)
                vars_set(R.v, s->inputs[i].name, v, vars_is_date(o->inputs, s->inputs[i].name));
        }
    vars_set(R.v, "portal", o->portal ? o->portal : "", 0);
    if (o->session)
        R.page = o->session->page; /* a kept session: its context, signed in */
    if ((!o->session && (cdp_context_create(o->browser, &ctx, err) ||
                         cdp_page_open(o->browser, ctx, &R.page, err))) ||
        (o->page_opened && o->page_opened(o->rr_ud, R.page, err) < 0)) {
        snprintf(r->status, sizeof(r->status), "failed");
        r->notes = strdup(err);
        goto done;
    }
    unsigned long calls0 = cdp_calls_here();
    int64_t t0 = pt_mono_ms();
    run_block(&R, &s->steps);
    PT_DEBUG("agent", "run: %lld ms, %lu protocol calls", (long long)(pt_mono_ms() - t0),
             cdp_calls_here() - calls0);
    if (!R.stop) {
        /* an SOP that ends without `finish` completed what it says */
        snprintf(r->status, sizeof(r->status), "completed");
        r->notes = strdup("");
    }
    heal_outcome(&R);
    /* only a run that succeeded says what the page's elements look like */
    if (R.fps && (!strcmp(r->status, "completed") || !strcmp(r->status, "completed_with_issues"))) {
        r->fingerprints = R.fps;
        R.fps = NULL;
    }
    traj_write(&R);
done:
    cJSON_Delete(R.traj_steps);
    cJSON_Delete(R.fps);
    for (int i = 0; i < R.nheals; i++) {
        free(R.heals[i].loc.value);
        free(R.heals[i].loc.role);
    }
    for (int d = 1; d < MAX_FRAMES; d++)
        free(R.stack[d].frame_id);
    free(R.handlers);
    if (o->session) {
        if (!o->session_once)
            session_leave(o->session);
    } else
        cdp_page_close(R.page);
    if (ctx && !cdp_browser_gone(o->browser, NULL))
        cdp_context_dispose(o->browser, ctx, NULL);
    free(ctx);
    vars_free(R.v);
    traj_free(&R);
    return r->status[0] ? 0 : -1;
}
