/*
 * locate.c - finding the element a step names and judging whether a person
 * could act on it now (see run.h): strict resolution (one element, or say
 * how many), actionability with the hit test carried outwards through each
 * enclosing frame, presence, and the frame an `in frame` locator shows.
 *
 * It owns the waiting for an element (running handlers meanwhile) and the
 * snapshot of the document a step resolved in (record mode). It must never
 * act on an element (no click, no key): steps.c does, with what it returns.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "agent/fingerprint.h"
#include "agent/run.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void loc_text(const sop_locator *l, char *out, size_t outsz)
{
    static const char *const kinds[] = {"", "xpath ", "text ", "label ", ""};
    if (l->kind == SOP_LOC_ROLE)
        snprintf(out, outsz, "%s \"%s\"", l->role, l->value);
    else
        snprintf(out, outsz, "%s\"%s\"", kinds[l->kind], l->value);
}

/* Waits (record mode only) until the document at depth has loaded (no
 * parser-blocking script or resource still coming: readyState "complete")
 * and then had no mutation and no event for SETTLE_QUIET_MS, for at most
 * SETTLE_MAX_MS: a page's script may still be building what later steps
 * look for. Under load a page's script can arrive long after its markup,
 * and a document with no script running changes nothing, so quiet alone
 * is not settled. */
#define SETTLE_QUIET_MS 150
#define SETTLE_MAX_MS 10000
static void settle(run *R, int depth)
{
    char err[ERR_SIZE];
    int64_t until = pt_mono_ms() + SETTLE_MAX_MS;
    while (pt_mono_ms() < until) {
        cJSON *v = NULL;
        if (cdp_page_eval(R->page, run_frame(R, depth), "document.readyState", &v, 3000, err))
            return;
        int loaded = cJSON_IsString(v) && !strcmp(v->valuestring, "complete");
        cJSON_Delete(v);
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateNumber(SETTLE_QUIET_MS)));
        dom_out o;
        if (dom_call(R, depth, NULL, "change", args, 1, &o, 3000, err))
            return;
        int changed = cJSON_IsTrue(o.value);
        cJSON_Delete(o.value);
        if (loaded && !changed)
            return;
    }
}

/* The document's URL and HTML, open shadow roots included (as declarative
 * <template shadowrootmode> where the browser can write them). */
#define SNAPSHOT_JS                                                                                \
    "(() => { const d = document.documentElement, roots = [];"                                     \
    "  const walk = (n) => { for (const e of n.querySelectorAll('*'))"                             \
    "    if (e.shadowRoot) { roots.push(e.shadowRoot); walk(e.shadowRoot); } }; walk(d);"          \
    "  const html = roots.length && d.getHTML ? d.getHTML({shadowRoots: roots}) : d.outerHTML;"    \
    "  return [location.href, '<!DOCTYPE html>' + (d.getHTML && roots.length"                      \
    "    ? '<html>' + html + '</html>' : html)]; })()"

/* Hands the document at depth to the snapshot hook (record mode), once per
 * step. */
void loc_snapshot(run *R, int depth)
{
    char err[ERR_SIZE];
    cJSON *v = NULL;
    if (!R->o->snapshot || !R->cur || R->snapped == R->cur)
        return;
    R->snapped = R->cur;
    settle(R, depth);
    if (cdp_page_eval(R->page, run_frame(R, depth), SNAPSHOT_JS, &v, 5000, err) == 0 &&
        cJSON_GetArraySize(v) == 2) {
        const char *url = cJSON_GetStringValue(cJSON_GetArrayItem(v, 0));
        const char *html = cJSON_GetStringValue(cJSON_GetArrayItem(v, 1));
        if (url && html)
            R->o->snapshot(R->o->rr_ud, R->cur, url, html);
    }
    cJSON_Delete(v);
}

/* dom.js `resolve` of loc in the frame at depth, by reference. */
static int resolve(run *R, int depth, const sop_locator *loc, dom_out *o, int timeout_ms, char *err)
{
    cJSON *lj = dom_locator(R, loc, err);
    if (!lj) {
        memset(o, 0, sizeof(*o));
        return -1;
    }
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(lj));
    return dom_call(R, depth, NULL, "resolve", args, 0, o, timeout_ms, err);
}

int loc_frame(run *R, int depth, const sop_locator *loc, const sop_step *st, char **frame_id,
              char *err)
{
    dom_out o;
    int rc = resolve(R, depth, loc, &o, 5000, err);
    if (rc)
        return rc;
    if (!o.el) {
        pt_errf(err, o.count > 1 ? "matches %d elements" : "no frame element matches", o.count);
        return -1;
    }
    loc_snapshot(R, depth);
    if (st && loc_fp_on(R)) { /* one call more per frame entered */
        char ferr[ERR_SIZE];
        cJSON *fp = dom_on(o.el, "fingerprint", NULL, ferr);
        if (fp)
            loc_fp_record(R, st, &st->loc, fp);
    }
    rc = cdp_handle_content_frame(o.el, frame_id, 15000, err);
    cdp_handle_release(o.el);
    if (rc < 0)
        return rc;
    if (rc == PT_NONE)
        return pt_errf(err, "the element is not a frame (an <iframe> or <frame>)");
    return 0;
}

int loc_frames_gone(run *R, char *why, size_t whysz)
{
    char err[ERR_SIZE], lt[512];
    for (int d = 1; d <= R->depth; d++) {
        dom_out fo;
        if (resolve(R, d - 1, R->stack[d].iframe, &fo, 3000, err))
            return 0; /* between documents: the next look tells */
        if (fo.el || fo.count > 1) {
            cdp_handle_release(fo.el);
            continue;
        }
        loc_text(R->stack[d].iframe, lt, sizeof(lt));
        snprintf(why, whysz, "its frame %s went away (the page no longer has it)", lt);
        return 1;
    }
    return 0;
}

int loc_find(run *R, const sop_locator *loc, cdp_handle **e, int *count, char *err)
{
    dom_out o;
    int rc = resolve(R, R->depth, loc, &o, 3000, err);
    if (rc)
        return rc;
    if (!o.el) {
        *count = o.count < 0 ? 0 : o.count;
        return 1;
    }
    *e = o.el;
    loc_snapshot(R, R->depth);
    return 0;
}

/* st's line with its locator replaced by `line` (a candidate's locator),
 * into out: the SOP change to suggest. */
static void suggest_line(const sop_step *st, const sop_locator *loc, const char *line, char *out,
                         size_t outsz)
{
    /* source starts at the step's word (column st->col of its line) */
    const char *src = st->source ? st->source : "";
    size_t n = strlen(src), a = loc->col >= st->col ? (size_t)(loc->col - st->col) : n;
    const char *q = a < n ? strchr(src + a, '"') : NULL;
    const char *e = q ? q + 1 : NULL;
    while (e && *e && *e != '"')
        e += e[0] == '\\' && e[1] ? 2 : 1;
    if (!e || *e != '"' || loc->line != st->line) { /* not on the step's line */
        snprintf(out, outsz, "%s", line);
        return;
    }
    snprintf(out, outsz, "%.*s%s%s", (int)a, src, line, e + 1);
}

/* "; nearest: ..." for a locator that matched nothing: the page's elements
 * whose label, name, role or text come closest, each with the SOP line
 * that would use it. Empty when there are none, or when the locator is a
 * template (its value may be task data). */
static void nearest(run *R, const sop_step *st, const sop_locator *loc, char *out, size_t outsz)
{
    char err[ERR_SIZE];
    *out = '\0';
    if (!loc->value || strstr(loc->value, "{{"))
        return;
    cJSON *lj = dom_locator(R, loc, err);
    if (!lj)
        return;
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(lj));
    dom_out o;
    if (dom_call(R, R->depth, NULL, "candidates", args, 1, &o, 3000, err))
        return;
    const cJSON *c;
    size_t i = 0;
    cJSON_ArrayForEach(c, o.value)
    {
        const char *line = pt_json_str(c, "line"), *by = pt_json_str(c, "by");
        char sug[1024];
        if (!line)
            continue;
        suggest_line(st, loc, line, sug, sizeof(sug));
        size_t used = strlen(out);
        snprintf(out + used, outsz - used, "%s%s (%s; write: %s)", i++ ? "; " : "; nearest: ", line,
                 by ? by : "", sug);
    }
    cJSON_Delete(o.value);
}

int loc_hit_through_frames(run *R, double *x, double *y, char *why, size_t whysz)
{
    char err[ERR_SIZE];
    for (int d = R->depth; d > 0; d--) {
        cJSON *lj = dom_locator(R, R->stack[d].iframe, err);
        if (!lj) {
            snprintf(why, whysz, "%s", err);
            return -1;
        }
        /* the frame element found and the point hit-tested, in one call */
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cdp_arg(lj));
        cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateNumber(*x)));
        cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateNumber(*y)));
        dom_out o;
        if (dom_call(R, d - 1, NULL, "hitFrameAt", args, 1, &o, 3000, err)) {
            snprintf(why, whysz, "its frame is gone");
            return -1;
        }
        cJSON *h = o.value;
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "ok"))) {
            snprintf(why, whysz, "%s",
                     pt_json_str(h, "why") ? pt_json_str(h, "why") : "its frame is hidden");
            cJSON_Delete(h);
            return -1;
        }
        *x = dom_num(h, "x");
        *y = dom_num(h, "y");
        cJSON_Delete(h);
    }
    return 0;
}

/* One look at loc in the current frame: found (exactly one), judged and
 * described in a single call. 0 with the element and what was seen of it
 * (o->value: count, ok, why, moving, x, y, info), or < 0 with err. */
static int look(run *R, const sop_locator *loc, int left, dom_out *o, char *err)
{
    cJSON *lj = dom_locator(R, loc, err);
    if (!lj) {
        memset(o, 0, sizeof(*o));
        return -1;
    }
    cJSON *opt = cJSON_CreateObject();
    cJSON_AddBoolToObject(opt, "left", left);
    if (loc_fp_on(R))
        cJSON_AddBoolToObject(opt, "fp", 1);
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(lj));
    cJSON_AddItemToArray(args, cdp_arg(opt));
    return dom_call(R, R->depth, NULL, "look", args, DOM_BOTH, o, 3000, err);
}

/* What a look says: 0 actionable at (*x, *y), hit-tested through the
 * frames with need_hit; 1 not exactly one element (*count); or why not:
 * -1 (not here), -2 (still moving), -3 (in the way on the page around its
 * frame). */
static int judge(run *R, const cJSON *seen, int need_hit, double *x, double *y, int *count,
                 char *why, size_t whysz)
{
    *count = (int)dom_num(seen, "count");
    if (*count != 1)
        return 1;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(seen, "ok"))) {
        snprintf(why, whysz, "%s",
                 pt_json_str(seen, "why") ? pt_json_str(seen, "why") : "not actionable");
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(seen, "moving")) ? -2 : -1;
    }
    /* the document the step acts in, not the first that showed one match:
     * that may be the page before its script built the control (a <label
     * for> naming an empty placeholder that a combobox fills). Taking it
     * waits for the page to settle, so the point is looked at again. */
    const sop_step *snapped = R->snapped;
    loc_snapshot(R, R->depth);
    if (R->snapped != snapped) {
        snprintf(why, whysz, "the page was settling");
        return -2;
    }
    *x = dom_num(seen, "x");
    *y = dom_num(seen, "y");
    /* without a hit test the point is still in the frame's viewport: fine,
     * it is not used then */
    return need_hit && loc_hit_through_frames(R, x, y, why, whysz) ? -3 : 0;
}

int loc_actionable_info(run *R, const sop_step *st, const sop_locator *loc0, int need_hit, int left,
                        cdp_handle **out, double *x, double *y, cJSON **info)
{
    int timeout = run_timeout(R, st);
    waiting w;
    char why[ERR_SIZE] = "", err[ERR_SIZE], lt[512];
    const sop_locator *loc = loc0; /* or, healed, what names its fingerprint's match */
    int64_t heal_at = pt_mono_ms() + HEAL_AFTER_MS;
    loc_text(loc, lt, sizeof(lt));
    *out = NULL;
    if (info)
        *info = NULL;
    run_wait_begin(R, &w, st, timeout, "an element to act on");
    for (;;) {
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        int count = 0, j = 0;
        const sop_locator *missing = NULL;
        dom_out o;
        int rc = look(R, loc, left, &o, err);
        if (rc < 0) {
            if (rc == CDP_EGONE || rc == CDP_EDETACHED) {
                run_fail(R, st, "%s", err);
                return -1;
            }
            snprintf(why, sizeof(why), "%s", err);
        } else if ((j = judge(R, o.value, need_hit, x, y, &count, why, sizeof(why))) == 0) {
            *out = o.el;
            cJSON *fp = cJSON_DetachItemFromObjectCaseSensitive(o.value, "fp");
            if (loc != loc0)
                loc_healed(R, st, loc);
            if (fp)
                loc_fp_record(R, st, loc0, fp);
            if (info && (*info = cJSON_DetachItemFromObjectCaseSensitive(o.value, "info"))) {
                /* from the frame's viewport to the top page's */
                cJSON_AddNumberToObject(*info, "frameDx", *x - dom_num(o.value, "x"));
                cJSON_AddNumberToObject(*info, "frameDy", *y - dom_num(o.value, "y"));
            }
            cJSON_Delete(o.value);
            return 0;
        } else if (j == 1) {
            if (count > 1 && !loc->nth) {
                run_fail(R, st, "%s matches %d elements; say which with first, last or nth N", lt,
                         count);
                cdp_handle_release(o.el);
                cJSON_Delete(o.value);
                return -1;
            }
            snprintf(why, sizeof(why), "no element matches %s", lt);
            missing = loc;
        }
        cdp_handle_release(o.el);
        cJSON_Delete(o.value);
        if (missing && loc == loc0 && !R->r->committed && pt_mono_ms() >= heal_at) {
            const sop_locator *h = loc_heal(R, st, loc0, NULL, 0);
            heal_at = pt_mono_ms() + HEAL_AFTER_MS;
            if (h) {
                loc = h; /* look again at once, by the healed locator */
                continue;
            }
        }
        if (run_wait_over(&w)) {
            char near[2048] = "", healed[1024] = "";
            if (missing) {
                nearest(R, st, loc, near, sizeof(near));
                loc_heal_after_commit(R, st, loc0, healed, sizeof(healed));
            }
            run_fail(R, st, "%s: %s for %d s%s%s", lt, why, (timeout + 999) / 1000, healed, near);
            return -1;
        }
        /* moving: the look itself took an animation frame, look again; in
         * the way around the frame: a document this wait does not see */
        run_wait_change(R, &w, j == -2 ? 0 : j == -3 ? WAIT_FAR_MS : WAIT_CAP_MS, missing);
    }
}

int loc_actionable(run *R, const sop_step *st, const sop_locator *loc, int need_hit, int left,
                   cdp_handle **out, double *x, double *y)
{
    return loc_actionable_info(R, st, loc, need_hit, left, out, x, y, NULL);
}

int loc_present(run *R, const sop_step *st, cdp_handle **e)
{
    char err[ERR_SIZE], lt[512];
    loc_text(&st->loc, lt, sizeof(lt));
    int timeout = run_timeout(R, st);
    /* an upload acts on what it finds: fingerprinted, and healed */
    int acts = st->kind == SOP_UPLOAD;
    const sop_locator *loc = &st->loc;
    int64_t heal_at = pt_mono_ms() + HEAL_AFTER_MS;
    waiting w;
    run_wait_begin(R, &w, st, timeout, "an element");
    for (;;) {
        if (R->stop)
            return -1;
        int count = 0;
        int rc = loc_find(R, loc, e, &count, err);
        if (rc == 0) {
            if (loc != &st->loc)
                loc_healed(R, st, loc);
            cJSON *fp = acts && loc_fp_on(R) ? dom_on(*e, "fingerprint", NULL, err) : NULL;
            if (fp)
                loc_fp_record(R, st, &st->loc, fp);
            return 0;
        }
        if (rc == 1 && count > 1 && !loc->nth) {
            run_fail(R, st, "%s matches %d elements; say which with first, last or nth N", lt,
                     count);
            return -1;
        }
        if (acts && rc == 1 && loc == &st->loc && !R->r->committed && pt_mono_ms() >= heal_at) {
            const sop_locator *h = loc_heal(R, st, &st->loc, NULL, 0);
            heal_at = pt_mono_ms() + HEAL_AFTER_MS;
            if (h) {
                loc = h;
                continue;
            }
        }
        if (run_wait_over(&w)) {
            char near[2048] = "", healed[1024] = "";
            if (rc == 1)
                nearest(R, st, &st->loc, near, sizeof(near));
            if (rc == 1 && acts)
                loc_heal_after_commit(R, st, &st->loc, healed, sizeof(healed));
            run_fail(R, st, "no element matches %s for %d s%s%s", lt, (timeout + 999) / 1000,
                     healed, near);
            return -1;
        }
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        run_wait_change(R, &w, WAIT_CAP_MS, rc == 1 ? loc : NULL);
    }
}

/* ---- Fingerprints and healing -------------------------------------------- */

int loc_fp_on(const run *R)
{
    return R->fps != NULL;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Whether a locator (or its scope) is a template: its value may be task
 * data, so it is neither fingerprinted nor healed. */
static int templated(const sop_locator *l)
{
    for (; l; l = l->within)
        if (!l->value || strstr(l->value, "{{"))
            return 1;
    return 0;
}

/* The task's values and the secrets, borrowed from the run (a new array
 * of *n; the caller frees it), or NULL: none may stay in a fingerprint or
 * a suggestion. */
static const char **task_values(run *R, size_t *n)
{
    const vars *sets[2] = {R->v, R->o->secrets};
    size_t max = 0, k = 0;
    for (int i = 0; i < 2; i++)
        max += sets[i] ? vars_count(sets[i]) : 0;
    const char **values = calloc(max ? max : 1, sizeof(*values));
    for (int i = 0; values && i < 2; i++)
        for (size_t j = 0; sets[i] && j < vars_count(sets[i]); j++)
            values[k++] = vars_get(sets[i], vars_name(sets[i], j));
    *n = k;
    return values;
}

void loc_fp_record(run *R, const sop_step *st, const sop_locator *loc, cJSON *fp)
{
    size_t n = 0;
    const char **values = R->fps && !templated(loc) && st->source ? task_values(R, &n) : NULL;
    if (!values) {
        cJSON_Delete(fp);
        return;
    }
    fp_scrub(fp, values, n);
    free(values);
    fp_put(R->fps, base_name(st->file), st->line, st->source, fp);
}

/* A heal already found for st, or NULL. */
static heal *heal_of(run *R, const sop_step *st)
{
    for (int i = 0; i < R->nheals; i++)
        if (R->heals[i].st == st)
            return &R->heals[i];
    return NULL;
}

/* Whether the locator that names candidate c holds a task value: it would
 * be the suggestion (notes, the fingerprints folder), so it is not one. */
static int names_task_data(run *R, const cJSON *c)
{
    size_t n = 0;
    const char **values = task_values(R, &n);
    int holds = !values || fp_holds_value(pt_json_str(c, "line"), values, n);
    free(values);
    return holds;
}

/* The best match in the current frame for st's fingerprint: 1 with *h
 * filled (not yet kept) when decisive, 0 with why when not, -1 when there
 * is nothing to heal by. */
static int heal_match(run *R, const sop_step *st, const sop_locator *loc, heal *h, char *why,
                      size_t whysz)
{
    char err[ERR_SIZE];
    if (!R->o->fingerprints || templated(loc) || !st->source)
        return -1;
    const cJSON *e = fp_lookup(R->o->fingerprints, base_name(st->file), st->line, st->source);
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(e, "fp");
    if (!cJSON_IsObject(fp))
        return -1;
    dom_out o;
    if (dom_call(R, R->depth, NULL, "fpCandidates", NULL, 1, &o, 5000, err))
        return -1;
    double best, second;
    int i = fp_best(fp, o.value, &best, &second);
    const cJSON *c = i >= 0 ? cJSON_GetArrayItem(o.value, i) : NULL;
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(c, "loc");
    int rc = 0;
    if (!c) {
        if (why)
            snprintf(why, whysz, "no element in the page is like its fingerprint");
    } else if (!fp_decisive(best, second)) {
        if (why)
            snprintf(why, whysz,
                     "its fingerprint's best match is too weak or too close to another (score "
                     "%.2f, next %.2f)",
                     best, second);
    } else if (!cJSON_IsObject(cl) || !pt_json_str(c, "line") || names_task_data(R, c)) {
        if (why)
            snprintf(why, whysz,
                     "its fingerprint matches an element (score %.2f) that no label, role and "
                     "name or title names alone",
                     best);
    } else {
        static const char *const kinds[] = {"css", "xpath", "text", "label", "role"};
        const char *k = pt_json_str(cl, "kind"), *role = pt_json_str(cl, "role");
        memset(h, 0, sizeof(*h));
        h->st = st;
        for (int j = 0; j < 5; j++)
            if (k && !strcmp(k, kinds[j]))
                h->loc.kind = (sop_loc_kind)j;
        h->loc.value = strdup(pt_json_str(cl, "value") ? pt_json_str(cl, "value") : "");
        h->loc.role = role ? strdup(role) : NULL;
        h->loc.field = loc->field;
        h->loc.file = loc->file;
        h->loc.line = loc->line;
        h->loc.col = loc->col;
        snprintf(h->line, sizeof(h->line), "%s", pt_json_str(c, "line"));
        h->score = best;
        h->second = second;
        rc = 1;
    }
    cJSON_Delete(o.value);
    return rc;
}

const sop_locator *loc_heal(run *R, const sop_step *st, const sop_locator *loc, char *why,
                            size_t whysz)
{
    heal *have = heal_of(R, st);
    if (have)
        return &have->loc;
    if (R->nheals >= MAX_HEALS)
        return NULL;
    heal h;
    if (heal_match(R, st, loc, &h, why, whysz) != 1)
        return NULL;
    R->heals[R->nheals] = h;
    return &R->heals[R->nheals++].loc;
}

void loc_healed(run *R, const sop_step *st, const sop_locator *hl)
{
    heal *h = heal_of(R, st);
    if (!h || &h->loc != hl || h->acted)
        return;
    h->acted = 1;
    char lt[512], sug[1024];
    loc_text(&st->loc, lt, sizeof(lt));
    suggest_line(st, &st->loc, h->line, sug, sizeof(sug));
    PT_INFO("agent",
            "%s:%d: %s matched nothing; healed by its fingerprint (score %.2f, next %.2f): %s",
            base_name(st->file), st->line, lt, h->score, h->second, h->line);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", st->file);
    cJSON_AddNumberToObject(j, "line", st->line);
    cJSON_AddNumberToObject(j, "col", st->col);
    cJSON_AddStringToObject(j, "old", st->source ? st->source : "");
    cJSON_AddStringToObject(j, "new", sug);
    cJSON_AddStringToObject(j, "locator", lt);
    cJSON_AddStringToObject(j, "healed_by", h->line);
    cJSON_AddNumberToObject(j, "score", (double)(int)(h->score * 1000) / 1000);
    cJSON_AddNumberToObject(j, "second", (double)(int)(h->second * 1000) / 1000);
    if (R->entry)
        cJSON_AddItemToObject(R->entry, "healed", cJSON_Duplicate(j, 1));
    if (!R->r->heals)
        R->r->heals = cJSON_CreateArray();
    cJSON_AddItemToArray(R->r->heals, j);
}

void loc_heal_after_commit(run *R, const sop_step *st, const sop_locator *loc, char *out,
                           size_t outsz)
{
    heal h;
    *out = '\0';
    if (!R->r->committed || heal_match(R, st, loc, &h, NULL, 0) != 1)
        return;
    char sug[1024];
    suggest_line(st, &st->loc, h.line, sug, sizeof(sug));
    snprintf(out, outsz,
             "; its fingerprint matches %s (score %.2f, next %.2f), not acted on after commit "
             "(write: %s)",
             h.line, h.score, h.second, sug);
    free(h.loc.value);
    free(h.loc.role);
}
