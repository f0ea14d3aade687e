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
#include "agent/agent.h"
#include "agent/run.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int loc_frame(run *R, int depth, const sop_locator *loc, char **frame_id, char *err)
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

int loc_actionable_info(run *R, const sop_step *st, const sop_locator *loc, int need_hit, int left,
                        cdp_handle **out, double *x, double *y, cJSON **info)
{
    int timeout = run_timeout(R, st);
    waiting w;
    char why[ERR_SIZE] = "", err[ERR_SIZE], lt[512];
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
        if (run_wait_over(&w)) {
            char near[2048] = "";
            if (missing)
                nearest(R, st, loc, near, sizeof(near));
            run_fail(R, st, "%s: %s for %d s%s", lt, why, (timeout + 999) / 1000, near);
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
    waiting w;
    run_wait_begin(R, &w, st, timeout, "an element");
    for (;;) {
        if (R->stop)
            return -1;
        int count = 0;
        int rc = loc_find(R, &st->loc, e, &count, err);
        if (rc == 0)
            return 0;
        if (rc == 1 && count > 1 && !st->loc.nth) {
            run_fail(R, st, "%s matches %d elements; say which with first, last or nth N", lt,
                     count);
            return -1;
        }
        if (run_wait_over(&w)) {
            char near[2048] = "";
            if (rc == 1)
                nearest(R, st, &st->loc, near, sizeof(near));
            run_fail(R, st, "no element matches %s for %d s%s", lt, (timeout + 999) / 1000, near);
            return -1;
        }
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        run_wait_change(R, &w, WAIT_CAP_MS, rc == 1 ? &st->loc : NULL);
    }
}
