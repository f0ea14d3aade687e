/*
 * agent.c - the interpreter: follows an SOP's steps in Chromium. See agent.h.
 *
 * Frames: `in frame LOC` pushes the frame that LOC's element shows onto a
 * stack; every lookup runs in the frame on top, and a point to click is
 * translated outwards through each enclosing iframe (and hit-tested there:
 * a modal on the page around the frame covers the element too) into the
 * top page's viewport, where mouse events are dispatched. Chromium routes
 * them into out-of-process frames itself.
 *
 * Waiting: every action waits up to its timeout for its element to be
 * actionable; `wait for` polls its condition. While waiting, `whenever`
 * handlers are checked and run when their condition holds.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dom_js.h" /* generated from dom.js: static const char dom_js[] */
#include "util/json.h"

#define POLL_MS 100
#define MAX_FRAMES 8
#define ERR_SIZE 1024

typedef struct framectx {
    char *frame_id;            /* NULL: the top frame */
    const sop_locator *iframe; /* the element showing it, in the frame below */
} framectx;

typedef struct handler {
    const sop_step *st;
    int depth;    /* frame stack depth where it was declared */
    int64_t last; /* when it last ran */
    int fired;
} handler;

typedef struct elem {
    cdp_session *s; /* a reference */
    char *oid;
} elem;

typedef struct run {
    const sop *s;
    const agent_options *o;
    agent_result *r;
    cdp_page *page;
    vars *v;
    framectx stack[MAX_FRAMES];
    int depth;
    handler *handlers;
    size_t nhandlers;
    int in_handler;
    int stop; /* a status was reached */
    cJSON *traj_steps;
    int index;
    const sop_step *cur;
    const sop_step *snapped; /* the step whose document was snapshot */
} run;

/* ---- Results ------------------------------------------------------------- */

static void set_status(run *R, const char *status, const char *notes)
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
static void fail_step(run *R, const sop_step *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_step(run *R, const sop_step *st, const char *fmt, ...)
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
    set_status(R, "failed", msg ? msg : why);
    free(msg);
    free(src);
}

/* ---- Calling dom.js ------------------------------------------------------ */

static void elem_free(elem *e)
{
    if (e->oid && e->s) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "objectId", e->oid);
        cdp_send(e->s, "Runtime.releaseObject", p);
    }
    free(e->oid);
    cdp_session_unref(e->s);
    e->oid = NULL;
    e->s = NULL;
}

static const char *frame_at(run *R, int depth)
{
    return depth <= 0 ? NULL : R->stack[depth].frame_id;
}

/* The result of a dom.js call. count >= 0 when `resolve` found no single
 * element (that many matched). */
typedef struct dom_out {
    cJSON *value; /* by value */
    elem el;      /* by reference */
    int count;    /* -1 unless a resolve failed */
} dom_out;

static cJSON *arg_value(cJSON *v)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddItemToObject(a, "value", v ? v : cJSON_CreateNull());
    return a;
}

static cJSON *arg_elem(const elem *e)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "objectId", e->oid);
    return a;
}

static cJSON *loc_json(run *R, const sop_locator *l, char *err)
{
    char *value = vars_expand(l->value, R->v, R->o->secrets, NULL, NULL, 0, err);
    if (!value)
        return NULL;
    static const char *const kinds[] = {"css", "xpath", "text", "label", "role"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kinds[l->kind]);
    cJSON_AddStringToObject(o, "value", value);
    if (l->role)
        cJSON_AddStringToObject(o, "role", l->role);
    cJSON_AddNumberToObject(o, "nth", l->nth);
    free(value);
    return o;
}

/* Calls dom(op, args...) in the frame at depth. With `el` the call is made
 * on that element's session (args may hold element references). */
static int dom(run *R, int depth, const elem *on, const char *op, cJSON *args, int by_value,
               dom_out *out, int timeout_ms, char *err)
{
    memset(out, 0, sizeof(*out));
    out->count = -1;
    cdp_session *s = NULL;
    int ctx = 0, rc;
    if (on) {
        s = cdp_session_ref(on->s);
    } else if ((rc = cdp_page_frame_context(R->page, frame_at(R, depth), &s, &ctx,
                                            timeout_ms > 0 ? timeout_ms : 1, err))) {
        cJSON_Delete(args);
        return rc;
    }
    cJSON *p = cJSON_CreateObject(), *res = NULL;
    cJSON_AddStringToObject(p, "functionDeclaration", dom_js);
    cJSON *list = cJSON_AddArrayToObject(p, "arguments");
    cJSON_AddItemToArray(list, arg_value(cJSON_CreateString(op)));
    cJSON *a;
    while (args && (a = cJSON_DetachItemFromArray(args, 0)))
        cJSON_AddItemToArray(list, a);
    cJSON_Delete(args);
    if (on)
        cJSON_AddStringToObject(p, "objectId", on->oid);
    else
        cJSON_AddNumberToObject(p, "executionContextId", ctx);
    cJSON_AddBoolToObject(p, "returnByValue", by_value);
    cJSON_AddBoolToObject(p, "awaitPromise", 1);
    rc = cdp_call(s, "Runtime.callFunctionOn", p, &res, timeout_ms > 0 ? timeout_ms : 15000, err);
    if (rc) {
        cdp_session_unref(s);
        return rc;
    }
    cJSON *ex = cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails");
    if (ex) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ex, "exception");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "description");
        const char *desc = cJSON_IsString(d) ? d->valuestring : "script error";
        const char *c = strstr(desc, "portier:count=");
        if (c) {
            out->count = atoi(c + 14);
            rc = 0;
        } else {
            pt_errf(err, "%s", desc);
            rc = CDP_EJS;
        }
        cJSON_Delete(res);
        cdp_session_unref(s);
        return rc;
    }
    cJSON *result = cJSON_GetObjectItemCaseSensitive(res, "result");
    if (by_value) {
        out->value = cJSON_DetachItemFromObjectCaseSensitive(result, "value");
        if (!out->value)
            out->value = cJSON_CreateNull();
        cdp_session_unref(s);
    } else {
        const cJSON *oid = cJSON_GetObjectItemCaseSensitive(result, "objectId");
        out->el.s = s;
        out->el.oid = cJSON_IsString(oid) ? strdup(oid->valuestring) : NULL;
    }
    cJSON_Delete(res);
    return 0;
}

/* dom() on an element, returning a value. */
static cJSON *elem_call(run *R, const elem *e, const char *op, cJSON *extra, char *err)
{
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, arg_elem(e));
    cJSON *x;
    while (extra && (x = cJSON_DetachItemFromArray(extra, 0)))
        cJSON_AddItemToArray(args, x);
    cJSON_Delete(extra);
    dom_out o;
    if (dom(R, 0, e, op, args, 1, &o, 15000, err))
        return NULL;
    return o.value;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* A readable form of a locator, for messages: label "Member ID". */
static void loc_text(const sop_locator *l, char *out, size_t outsz)
{
    static const char *const kinds[] = {"", "xpath ", "text ", "label ", ""};
    if (l->kind == SOP_LOC_ROLE)
        snprintf(out, outsz, "%s \"%s\"", l->role, l->value);
    else
        snprintf(out, outsz, "%s\"%s\"", kinds[l->kind], l->value);
}

/* ---- Frames -------------------------------------------------------------- */

/* Resolves the frame that loc's element (in the frame at depth) shows. */
static void snapshot(run *R, int depth);

static int resolve_frame(run *R, int depth, const sop_locator *loc, char **frame_id, char *err)
{
    cJSON *lj = loc_json(R, loc, err);
    if (!lj)
        return -1;
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, arg_value(lj));
    dom_out o;
    int rc = dom(R, depth, NULL, "resolve", args, 0, &o, 5000, err);
    if (rc)
        return rc;
    if (o.count >= 0 || !o.el.oid) {
        pt_errf(err, o.count > 1 ? "matches %d elements" : "no frame element matches", o.count);
        elem_free(&o.el);
        return -1;
    }
    if (R->o->snapshot && R->cur && R->snapped != R->cur)
        snapshot(R, depth);
    cJSON *p = cJSON_CreateObject(), *node = NULL;
    cJSON_AddStringToObject(p, "objectId", o.el.oid);
    rc = cdp_call(o.el.s, "DOM.describeNode", p, &node, 15000, err);
    elem_free(&o.el);
    if (rc)
        return rc;
    const char *fid = pt_json_str(cJSON_GetObjectItemCaseSensitive(node, "node"), "frameId");
    *frame_id = fid ? strdup(fid) : NULL;
    cJSON_Delete(node);
    if (!*frame_id)
        return pt_errf(err, "the element is not a frame (an <iframe> or <frame>)");
    return 0;
}

/* ---- Finding and judging elements ---------------------------------------- */

static int run_handlers(run *R);

/* How long step st may wait: its own timeout, else the SOP's. */
static int step_timeout(const run *R, const sop_step *st)
{
    return st->timeout_ms ? st->timeout_ms : R->s->timeout_ms;
}

/* Hands the document at depth to the snapshot hook (record mode). */
static void snapshot(run *R, int depth)
{
    char err[ERR_SIZE];
    cJSON *v = NULL;
    R->snapped = R->cur;
    if (cdp_page_eval(R->page, frame_at(R, depth),
                      "[location.href, '<!DOCTYPE html>' + document.documentElement.outerHTML]", &v,
                      5000, err) == 0 &&
        cJSON_GetArraySize(v) == 2) {
        const char *url = cJSON_GetStringValue(cJSON_GetArrayItem(v, 0));
        const char *html = cJSON_GetStringValue(cJSON_GetArrayItem(v, 1));
        if (url && html)
            R->o->snapshot(R->o->rr_ud, R->cur, url, html);
    }
    cJSON_Delete(v);
}

/* Resolves loc in the current frame, strictly. 0 with *e set, or the
 * number of matches (>= 0, never 1) via *count with rc 1; < 0 on errors. */
static int find(run *R, const sop_locator *loc, elem *e, int *count, char *err)
{
    cJSON *lj = loc_json(R, loc, err);
    if (!lj)
        return -1;
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, arg_value(lj));
    dom_out o;
    int rc = dom(R, R->depth, NULL, "resolve", args, 0, &o, 3000, err);
    if (rc)
        return rc;
    if (o.count >= 0 || !o.el.oid) {
        *count = o.count < 0 ? 0 : o.count;
        elem_free(&o.el);
        return 1;
    }
    *e = o.el;
    if (R->o->snapshot && R->cur && R->snapped != R->cur)
        snapshot(R, R->depth);
    return 0;
}

/* Waits until loc is one actionable element, returning it and the point
 * to act at in the top page's viewport. */
static int actionable(run *R, const sop_step *st, const sop_locator *loc, int need_hit, int left,
                      elem *out, double *x, double *y)
{
    int timeout = step_timeout(R, st);
    int64_t until = pt_mono_ms() + timeout;
    char why[ERR_SIZE] = "", err[ERR_SIZE], lt[512];
    loc_text(loc, lt, sizeof(lt));
    memset(out, 0, sizeof(*out));
    for (;;) {
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        elem e = {0};
        int count = 0;
        int rc = find(R, loc, &e, &count, err);
        if (rc < 0) {
            if (rc == CDP_EGONE || rc == CDP_EDETACHED) {
                fail_step(R, st, "%s", err);
                return -1;
            }
            snprintf(why, sizeof(why), "%s", err);
        } else if (rc == 1) {
            if (count > 1 && !loc->nth) {
                fail_step(R, st, "%s matches %d elements; say which with first, last or nth N", lt,
                          count);
                return -1;
            }
            snprintf(why, sizeof(why), "no element matches %s", lt);
        } else {
            cJSON *extra = cJSON_CreateArray();
            cJSON *opt = cJSON_CreateObject();
            cJSON_AddBoolToObject(opt, "left", left);
            cJSON_AddItemToArray(extra, arg_value(opt));
            cJSON *a = elem_call(R, &e, "actionable", extra, err);
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(a, "ok");
            if (!a) {
                snprintf(why, sizeof(why), "%s", err);
            } else if (!cJSON_IsTrue(ok)) {
                snprintf(why, sizeof(why), "%s",
                         pt_json_str(a, "why") ? pt_json_str(a, "why") : "not actionable");
            } else {
                double px = jnum(a, "x"), py = jnum(a, "y");
                int covered = 0;
                /* outwards through each enclosing frame */
                for (int d = R->depth; d > 0 && need_hit && !covered; d--) {
                    cJSON *ilj = loc_json(R, R->stack[d].iframe, err);
                    cJSON *args = cJSON_CreateArray();
                    cJSON_AddItemToArray(args, arg_value(ilj));
                    dom_out fo;
                    if (!ilj || dom(R, d - 1, NULL, "resolve", args, 0, &fo, 3000, err) ||
                        !fo.el.oid) {
                        if (ilj)
                            elem_free(&fo.el);
                        snprintf(why, sizeof(why), "its frame is gone");
                        covered = 1;
                        break;
                    }
                    cJSON *pt = cJSON_CreateArray();
                    cJSON_AddItemToArray(pt, arg_value(cJSON_CreateNumber(px)));
                    cJSON_AddItemToArray(pt, arg_value(cJSON_CreateNumber(py)));
                    cJSON *h = elem_call(R, &fo.el, "hitFrame", pt, err);
                    elem_free(&fo.el);
                    if (!h || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "ok"))) {
                        snprintf(why, sizeof(why), "%s",
                                 h && pt_json_str(h, "why") ? pt_json_str(h, "why")
                                                            : "its frame is hidden");
                        covered = 1;
                    } else {
                        px = jnum(h, "x");
                        py = jnum(h, "y");
                    }
                    cJSON_Delete(h);
                }
                if (!need_hit || !covered) {
                    /* without a hit test the point is still in the frame's
                     * viewport: fine, it is not used then */
                    cJSON_Delete(a);
                    *out = e;
                    *x = px;
                    *y = py;
                    return 0;
                }
            }
            cJSON_Delete(a);
            elem_free(&e);
        }
        if (pt_mono_ms() >= until) {
            fail_step(R, st, "%s: %s for %d s", lt, why, (timeout + 999) / 1000);
            return -1;
        }
        pt_sleep_ms(POLL_MS);
    }
}

/* ---- Real input ---------------------------------------------------------- */

static int mouse(run *R, const char *type, double x, double y, int clicks, char *err)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddNumberToObject(p, "x", x);
    cJSON_AddNumberToObject(p, "y", y);
    if (strcmp(type, "mouseMoved") != 0) {
        cJSON_AddStringToObject(p, "button", "left");
        cJSON_AddNumberToObject(p, "clickCount", clicks);
        cJSON_AddNumberToObject(p, "buttons", strcmp(type, "mousePressed") == 0 ? 1 : 0);
    }
    return cdp_call(cdp_page_session(R->page), "Input.dispatchMouseEvent", p, NULL, 15000, err);
}

static int click_at(run *R, double x, double y, char *err)
{
    int rc = mouse(R, "mouseMoved", x, y, 0, err);
    if (!rc)
        rc = mouse(R, "mousePressed", x, y, 1, err);
    if (!rc)
        rc = mouse(R, "mouseReleased", x, y, 1, err);
    return rc;
}

static const struct key {
    const char *name, *code, *text;
    int vk;
} keys[] = {
    {"Enter", "Enter", "\r", 13},
    {"Tab", "Tab", NULL, 9},
    {"Escape", "Escape", NULL, 27},
    {"Backspace", "Backspace", NULL, 8},
    {"Delete", "Delete", NULL, 46},
    {"ArrowDown", "ArrowDown", NULL, 40},
    {"ArrowUp", "ArrowUp", NULL, 38},
    {"ArrowLeft", "ArrowLeft", NULL, 37},
    {"ArrowRight", "ArrowRight", NULL, 39},
    {"Home", "Home", NULL, 36},
    {"End", "End", NULL, 35},
    {"PageDown", "PageDown", NULL, 34},
    {"PageUp", "PageUp", NULL, 33},
    {"Space", "Space", " ", 32},
};

static int key_event(run *R, const char *type, const char *key, const char *code, const char *text,
                     int vk, char *err)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddStringToObject(p, "key", key);
    if (code)
        cJSON_AddStringToObject(p, "code", code);
    if (text) {
        cJSON_AddStringToObject(p, "text", text);
        cJSON_AddStringToObject(p, "unmodifiedText", text);
    }
    cJSON_AddNumberToObject(p, "windowsVirtualKeyCode", vk);
    return cdp_call(cdp_page_session(R->page), "Input.dispatchKeyEvent", p, NULL, 15000, err);
}

static int press_named(run *R, const char *name, char *err)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcasecmp(keys[i].name, name)) {
            int rc =
                key_event(R, "keyDown", keys[i].name, keys[i].code, keys[i].text, keys[i].vk, err);
            return rc ? rc
                      : key_event(R, "keyUp", keys[i].name, keys[i].code, NULL, keys[i].vk, err);
        }
    if (strlen(name) == 1) {
        char t[2] = {name[0], 0};
        int vk = (name[0] >= 'a' && name[0] <= 'z') ? name[0] - 32 : name[0];
        int rc = key_event(R, "keyDown", t, NULL, t, vk, err);
        return rc ? rc : key_event(R, "keyUp", t, NULL, NULL, vk, err);
    }
    return pt_errf(err,
                   "unknown key \"%s\" (Enter, Tab, Escape, Backspace, Delete, arrows, Home, "
                   "End, PageUp, PageDown, Space, or one character)",
                   name);
}

static int type_text(run *R, const char *text, char *err)
{
    for (const char *c = text; *c; c++) {
        char one[2] = {*c, 0};
        int rc = press_named(R, one, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int insert_text(run *R, const char *text, char *err)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", text);
    return cdp_call(cdp_page_session(R->page), "Input.insertText", p, NULL, 15000, err);
}

/* ---- Values -------------------------------------------------------------- */

static char *text_in_frame(const char *selector, void *ud)
{
    run *R = ud;
    char err[ERR_SIZE];
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, arg_value(cJSON_CreateString(selector)));
    dom_out o;
    if (dom(R, R->depth, NULL, "textOf", args, 1, &o, 5000, err))
        return NULL;
    char *t = cJSON_IsString(o.value) ? strdup(o.value->valuestring) : NULL;
    cJSON_Delete(o.value);
    return t;
}

/* The value of a step, expanded (clear, for the page). *is_date tells a
 * date input's value. NULL on error (the step has failed). */
static char *value_of(run *R, const sop_step *st, int *is_date)
{
    char err[ERR_SIZE];
    if (is_date)
        *is_date = 0;
    if (st->value.is_var) {
        const char *v = vars_get(R->v, st->value.text);
        if (!v) {
            fail_step(R, st, "%s has no value", st->value.text);
            return NULL;
        }
        if (is_date)
            *is_date = vars_is_date(R->v, st->value.text);
        return strdup(v);
    }
    char *x = vars_expand(st->value.text, R->v, R->o->secrets, text_in_frame, R, 0, err);
    if (!x)
        fail_step(R, st, "%s", err);
    return x;
}

/* ---- Conditions ---------------------------------------------------------- */

/* 1 true, 0 false, -1 error (err set). */
static int cond_holds(run *R, const sop_cond *c, int depth, char *err)
{
    switch (c->kind) {
    case SOP_COND_NOT: {
        int r = cond_holds(R, c->a, depth, err);
        return r < 0 ? r : !r;
    }
    case SOP_COND_OR: {
        int r = cond_holds(R, c->a, depth, err);
        return r != 0 ? r : cond_holds(R, c->b, depth, err);
    }
    case SOP_COND_VAR: {
        const char *v = vars_get(R->v, c->text);
        return v && *v && strcasecmp(v, "false") != 0 && strcmp(v, "0") != 0;
    }
    case SOP_COND_VAR_IS: {
        const char *v = vars_get(R->v, c->text);
        return v && !strcasecmp(v, c->value);
    }
    case SOP_COND_VISIBLE:
    case SOP_COND_HIDDEN:
    case SOP_COND_TEXT: {
        cJSON *lj = loc_json(R, &c->loc, err);
        if (!lj)
            return -1;
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, arg_value(lj));
        dom_out o;
        int rc = dom(R, depth, NULL, "count", args, 1, &o, 3000, err);
        if (rc)
            return rc == CDP_ETIMEOUT || rc == CDP_EJS ? 0 : -1; /* no document yet: not visible */
        int visible = (int)jnum(o.value, "visible");
        cJSON_Delete(o.value);
        if (c->kind == SOP_COND_VISIBLE)
            return visible > 0;
        if (c->kind == SOP_COND_HIDDEN)
            return visible == 0;
        if (!visible)
            return 0;
        elem e = {0};
        int count = 0;
        int saved = R->depth;
        R->depth = depth;
        sop_locator first = c->loc;
        if (!first.nth)
            first.nth = 1;
        rc = find(R, &first, &e, &count, err);
        R->depth = saved;
        if (rc)
            return rc < 0 ? -1 : 0;
        cJSON *t = elem_call(R, &e, "text", NULL, err);
        elem_free(&e);
        int hit = cJSON_IsString(t) && strstr(t->valuestring, c->text) != NULL;
        cJSON_Delete(t);
        return hit;
    }
    case SOP_COND_PAGE_TEXT:
    case SOP_COND_URL: {
        dom_out o;
        int rc = dom(R, depth, NULL, c->kind == SOP_COND_URL ? "url" : "pageText", NULL, 1, &o,
                     3000, err);
        if (rc)
            return rc == CDP_ETIMEOUT ? 0 : -1;
        const char *s = cJSON_IsString(o.value) ? o.value->valuestring : "";
        int hit = 0;
        if (c->regex) {
            int code;
            PCRE2_SIZE off;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)c->regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                           &code, &off, NULL);
            if (re) {
                pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
                hit = pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
                pcre2_match_data_free(md);
                pcre2_code_free(re);
            }
        } else
            hit = strstr(s, c->text) != NULL;
        cJSON_Delete(o.value);
        return hit;
    }
    }
    return 0;
}

/* ---- Trajectory ---------------------------------------------------------- */

static void shot(run *R, cJSON *entry)
{
    if (!R->o->trajectory_dir)
        return;
    unsigned char *png = NULL;
    size_t len = 0;
    char err[ERR_SIZE], name[64], path[4300];
    if (cdp_page_screenshot(R->page, 0, &png, &len, 15000, err))
        return;
    snprintf(name, sizeof(name), "step-%03d.png", R->index);
    snprintf(path, sizeof(path), "%s/%s", R->o->trajectory_dir, name);
    if (pt_write_file(path, png, len, 0600) == 0)
        cJSON_AddStringToObject(entry, "screenshot", name);
    free(png);
}

static cJSON *traj_begin(run *R, const sop_step *st)
{
    R->index++;
    R->r->steps_run++;
    cJSON *e = cJSON_CreateObject();
    char ts[25];
    pt_iso8601(pt_wall_ms(), ts);
    cJSON_AddNumberToObject(e, "index", R->index);
    const char *base = strrchr(st->file, '/');
    cJSON_AddStringToObject(e, "file", base ? base + 1 : st->file);
    cJSON_AddNumberToObject(e, "line", st->line);
    char *src = vars_mask(st->source, R->o->secrets);
    cJSON_AddStringToObject(e, "action", src ? src : "");
    free(src);
    cJSON_AddStringToObject(e, "step", sop_step_name(st->kind));
    if (st->has_loc) {
        char lt[512];
        loc_text(&st->loc, lt, sizeof(lt));
        cJSON_AddStringToObject(e, "locator", lt);
    }
    cJSON_AddStringToObject(e, "frame", R->depth ? R->stack[R->depth].frame_id : "top");
    cJSON_AddStringToObject(e, "started_at", ts);
    if (R->in_handler)
        cJSON_AddBoolToObject(e, "handler", 1);
    return e;
}

static void traj_end(run *R, cJSON *e, int failed, int changed)
{
    char ts[25];
    pt_iso8601(pt_wall_ms(), ts);
    cJSON_AddStringToObject(e, "ended_at", ts);
    cJSON_AddStringToObject(e, "outcome", failed ? "failed" : "ok");
    if (failed && R->r->notes)
        cJSON_AddStringToObject(e, "error", R->r->notes);
    if (changed || failed)
        shot(R, e);
    if (failed && R->o->trajectory_dir) {
        /* the failing frame's DOM, for a person to look at */
        char err[ERR_SIZE], path[4300];
        cJSON *p = cJSON_CreateObject(), *res = NULL;
        cdp_session *s = NULL;
        int ctx = 0;
        if (cdp_page_frame_context(R->page, frame_at(R, R->depth), &s, &ctx, 2000, err) == 0) {
            cJSON_AddStringToObject(p, "expression", "document.documentElement.outerHTML");
            cJSON_AddNumberToObject(p, "contextId", ctx);
            cJSON_AddBoolToObject(p, "returnByValue", 1);
            if (cdp_call(s, "Runtime.evaluate", p, &res, 5000, err) == 0) {
                const char *html =
                    pt_json_str(cJSON_GetObjectItemCaseSensitive(res, "result"), "value");
                if (html) {
                    char *masked = vars_mask(html, R->o->secrets);
                    snprintf(path, sizeof(path), "%s/failure-dom.html", R->o->trajectory_dir);
                    if (masked && pt_write_file(path, masked, strlen(masked), 0600) == 0)
                        cJSON_AddStringToObject(e, "dom", "failure-dom.html");
                    free(masked);
                }
            }
            cJSON_Delete(res);
            cdp_session_unref(s);
        } else
            cJSON_Delete(p);
    }
    cJSON_AddItemToArray(R->traj_steps, e);
}

/* ---- Steps --------------------------------------------------------------- */

static void run_block(run *R, const sop_block *b);

/* Formats an ISO date the way a text field asks (by its placeholder). */
static void date_for_field(const char *iso, const char *placeholder, char *out, size_t outsz)
{
    const char *y = iso, *m = iso + 5, *d = iso + 8;
    if (strcasestr(placeholder, "DD/MM/YYYY"))
        snprintf(out, outsz, "%.2s/%.2s/%.4s", d, m, y);
    else if (strcasestr(placeholder, "YYYY-MM-DD"))
        snprintf(out, outsz, "%s", iso);
    else if (strcasestr(placeholder, "MMDDYYYY"))
        snprintf(out, outsz, "%.2s%.2s%.4s", m, d, y);
    else
        snprintf(out, outsz, "%.2s/%.2s/%.4s", m, d, y);
}

static int only_digits_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a && (*a < '0' || *a > '9'))
            a++;
        while (*b && (*b < '0' || *b > '9'))
            b++;
        if (*a != *b)
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}

/* The keys that put value into a native date, time or datetime-local
 * input: its date part (if with_date) in the browser's field order, then
 * its time part (if with_time) as the locale's clock shows it (02:30 PM is
 * typed 0230P). Writes the normalised date and HH:MM the field will hold. */
static int native_datetime_keys(run *R, const char *value, int with_date, int with_time,
                                char iso[11], char hhmm[8], char *kb, size_t kbsz, char *err)
{
    size_t n = 0;
    kb[0] = '\0';
    iso[0] = hhmm[0] = '\0';
    char date_part[64], time_part[32] = "";
    snprintf(date_part, sizeof(date_part), "%s", value);
    if (with_time) {
        /* "2025-03-25T14:30", "2025-03-25 14:30" or, for time, "14:30" */
        char *sep = with_date ? strpbrk(date_part, "T ") : date_part;
        if (!sep || sscanf(with_date ? sep + 1 : sep, "%31s", time_part) != 1)
            return pt_errf(err, "the field takes a %s, and the value is not one",
                           with_date ? "date and time" : "time");
        if (with_date)
            *sep = '\0';
    }
    if (with_date) {
        if (vars_normalize_date(date_part, iso) < 0)
            return pt_errf(err, "the field is a date, and the value is not one");
        dom_out o;
        char order[8] = "mdy";
        if (dom(R, R->depth, NULL, "dateOrder", NULL, 1, &o, 3000, err) == 0 &&
            cJSON_IsString(o.value))
            snprintf(order, sizeof(order), "%s", o.value->valuestring);
        cJSON_Delete(o.value);
        for (const char *c = order; *c && n + 4 < kbsz; c++) {
            const char *part = *c == 'y' ? iso : *c == 'm' ? iso + 5 : iso + 8;
            size_t len = *c == 'y' ? 4 : 2;
            memcpy(kb + n, part, len);
            n += len;
        }
        kb[n] = '\0';
    }
    if (with_time) {
        int h, m;
        char ampm[4] = "";
        if (sscanf(time_part, "%d:%d%3s", &h, &m, ampm) < 2 || h < 0 || h > 23 || m < 0 || m > 59)
            return pt_errf(err, "the field takes a time such as 14:30, and the value is not one");
        if ((ampm[0] == 'p' || ampm[0] == 'P') && h < 12)
            h += 12;
        snprintf(hhmm, 8, "%02d:%02d", h % 100, m % 100);
        dom_out o;
        int h12 = 1;
        if (dom(R, R->depth, NULL, "hourCycle", NULL, 1, &o, 3000, err) == 0 &&
            cJSON_IsString(o.value))
            h12 = !strcmp(o.value->valuestring, "h12") || !strcmp(o.value->valuestring, "h11");
        cJSON_Delete(o.value);
        char t[16];
        if (h12)
            snprintf(t, sizeof(t), "%02d%02d%c", h % 12 == 0 ? 12 : h % 12, m, h < 12 ? 'A' : 'P');
        else
            snprintf(t, sizeof(t), "%02d%02d", h, m);
        /* '|' marks where the date ends and the time begins */
        snprintf(kb + n, kbsz - n, "%s%s", with_date ? "|" : "", t);
    }
    return 0;
}

static int step_fill(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    int is_date = 0;
    char *value = value_of(R, st, &is_date);
    if (!value)
        return -1;
    elem e;
    double x, y;
    int rc = -1;
    /* date inputs are typed segment by segment from the first: click left */
    if (actionable(R, st, &st->loc, 1, 1, &e, &x, &y) < 0)
        goto out;
    cJSON *info = elem_call(R, &e, "info", NULL, err);
    char type[32]; /* copied: info is freed before the read-back below */
    snprintf(type, sizeof(type), "%s", pt_json_str(info, "type") ? pt_json_str(info, "type") : "");
    const char *tag = pt_json_str(info, "tag") ? pt_json_str(info, "tag") : "";
    int editable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "editable"));
    if (strcmp(tag, "input") && strcmp(tag, "textarea") && !editable) {
        fail_step(R, st,
                  "%s is not a field one can type in (use choose for custom dropdowns, "
                  "select for <select>)",
                  pt_json_str(info, "describe") ? pt_json_str(info, "describe") : tag);
        cJSON_Delete(info);
        goto release;
    }
    if (click_at(R, x, y, err)) {
        fail_step(R, st, "%s", err);
        cJSON_Delete(info);
        goto release;
    }
    char iso[11], hhmm[8] = "";
    int is_time = !strcmp(type, "time"), is_dt = !strcmp(type, "datetime-local");
    if (!strcmp(type, "date") || is_time || is_dt) {
        /* inserted text is ignored by native date and time inputs: type the
         * digits segment by segment in the browser's own order */
        char digits[32];
        if (native_datetime_keys(R, value, is_time ? 0 : 1, is_time || is_dt, iso, hhmm, digits,
                                 sizeof(digits), err) < 0) {
            fail_step(R, st, "%s", err);
            cJSON_Delete(info);
            goto release;
        }
        /* a year segment takes up to six digits: after the date, move on
         * to the time with an arrow key */
        char *bar = strchr(digits, '|');
        if (bar)
            *bar = '\0';
        if ((rc = type_text(R, digits, err)) || (bar && (rc = press_named(R, "ArrowRight", err))) ||
            (bar && (rc = type_text(R, bar + 1, err)))) {
            fail_step(R, st, "%s", err);
            cJSON_Delete(info);
            goto release;
        }
    } else {
        char formatted[32];
        const char *text = value;
        if (is_date && vars_normalize_date(value, iso) == 0) {
            date_for_field(iso,
                           pt_json_str(info, "placeholder") ? pt_json_str(info, "placeholder") : "",
                           formatted, sizeof(formatted));
            text = formatted;
        }
        cJSON_Delete(elem_call(R, &e, "selectAll", NULL, err));
        if (!*text)
            rc = press_named(R, "Delete", err);
        else
            rc = insert_text(R, text, err);
        if (rc) {
            fail_step(R, st, "%s", err);
            cJSON_Delete(info);
            goto release;
        }
        if (text != value) {
            free(value);
            value = strdup(text);
        }
    }
    cJSON_Delete(info);
    /* did the field take it? (a mask may reformat: compare digits then) */
    cJSON *now = elem_call(R, &e, "value", NULL, err);
    const char *got = cJSON_IsString(now) ? now->valuestring : "";
    char want_dt[32];
    snprintf(want_dt, sizeof(want_dt), "%s%s%s", is_time ? "" : iso, is_dt ? "T" : "", hhmm);
    int ok = !strcmp(type, "date") || is_time || is_dt
                 ? !strcmp(got, want_dt)
                 : !strcmp(got, value) ||
                       (only_digits_equal(got, value) && strpbrk(value, "0123456789"));
    cJSON_Delete(now);
    if (!ok) {
        fail_step(R, st,
                  "the field did not take the value (it shows something else: a mask or a "
                  "script changed it)");
        goto release;
    }
    rc = 0;
release:
    elem_free(&e);
out:
    free(value);
    return rc;
}

static int step_choose(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *value = value_of(R, st, NULL);
    if (!value)
        return -1;
    elem e;
    double x, y;
    int rc = -1;
    if (actionable(R, st, &st->loc, 1, 0, &e, &x, &y) < 0)
        goto out;
    if (click_at(R, x, y, err)) {
        fail_step(R, st, "%s", err);
        goto release;
    }
    /* a searchable one takes typing: filter the list as a person would */
    dom_out f;
    if (dom(R, R->depth, NULL, "focused", NULL, 1, &f, 3000, err) == 0) {
        const char *tag = pt_json_str(f.value, "tag"), *type = pt_json_str(f.value, "type");
        if (tag && !strcmp(tag, "input") && type &&
            (!*type || !strcmp(type, "text") || !strcmp(type, "search")))
            insert_text(R, value, err);
        cJSON_Delete(f.value);
    }
    /* then the option with that text, wherever the list was put */
    int timeout = step_timeout(R, st);
    int64_t until = pt_mono_ms() + timeout;
    for (;;) {
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, arg_value(cJSON_CreateString(value)));
        dom_out o;
        if (dom(R, R->depth, NULL, "option", args, 0, &o, 3000, err) == 0 && o.el.oid) {
            cJSON *a = elem_call(R, &o.el, "actionable", NULL, err);
            if (a && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok"))) {
                /* the option's point is in this frame's viewport; the
                 * combobox was hit-tested through the frames already, so
                 * shift by the same offset */
                cJSON *ea = elem_call(R, &e, "actionable", NULL, err);
                double dx = x - jnum(ea, "x"), dy = y - jnum(ea, "y");
                cJSON_Delete(ea);
                rc = click_at(R, jnum(a, "x") + dx, jnum(a, "y") + dy, err);
                cJSON_Delete(a);
                elem_free(&o.el);
                if (rc)
                    fail_step(R, st, "%s", err);
                goto release;
            }
            cJSON_Delete(a);
        }
        elem_free(&o.el);
        if (pt_mono_ms() >= until) {
            fail_step(R, st, "no option \"%s\" appeared in the list for %d s", value,
                      (timeout + 999) / 1000);
            goto release;
        }
        pt_sleep_ms(POLL_MS);
    }
release:
    elem_free(&e);
out:
    free(value);
    return rc;
}

static int step_select(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *value = value_of(R, st, NULL);
    if (!value)
        return -1;
    elem e;
    double x, y;
    int rc = -1;
    if (actionable(R, st, &st->loc, 0, 0, &e, &x, &y) < 0)
        goto out;
    cJSON *info = elem_call(R, &e, "info", NULL, err);
    if (!info || strcmp(pt_json_str(info, "tag") ? pt_json_str(info, "tag") : "", "select") != 0) {
        fail_step(R, st, "%s is not a <select> (use choose for custom dropdowns)",
                  info && pt_json_str(info, "describe") ? pt_json_str(info, "describe")
                                                        : "the element");
        cJSON_Delete(info);
        goto release;
    }
    cJSON_Delete(info);
    cJSON *extra = cJSON_CreateArray();
    cJSON_AddItemToArray(extra, arg_value(cJSON_CreateString(value)));
    cJSON *res = elem_call(R, &e, "selectOption", extra, err);
    if (!res || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "ok"))) {
        char list[512] = "";
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(res, "options"))
        {
            if (cJSON_IsString(o) && strlen(list) + strlen(o->valuestring) + 4 < sizeof(list))
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                         *list ? ", " : "", o->valuestring);
        }
        fail_step(R, st, "no option matches the value; the options are %s", list);
    } else
        rc = 0;
    cJSON_Delete(res);
release:
    elem_free(&e);
out:
    free(value);
    return rc;
}

static int step_check(run *R, const sop_step *st, int want)
{
    char err[ERR_SIZE];
    elem e;
    double x, y;
    if (actionable(R, st, &st->loc, 1, 0, &e, &x, &y) < 0)
        return -1;
    int rc = -1;
    cJSON *c = elem_call(R, &e, "checked", NULL, err);
    if (cJSON_IsBool(c) && cJSON_IsTrue(c) == want) {
        rc = 0; /* already so */
    } else if (click_at(R, x, y, err)) {
        fail_step(R, st, "%s", err);
    } else {
        int64_t until = pt_mono_ms() + 2000;
        for (;;) {
            cJSON_Delete(c);
            c = elem_call(R, &e, "checked", NULL, err);
            if (cJSON_IsBool(c) && cJSON_IsTrue(c) == want) {
                rc = 0;
                break;
            }
            if (pt_mono_ms() >= until) {
                fail_step(R, st, "clicked, but it is still %s", want ? "unchecked" : "checked");
                break;
            }
            pt_sleep_ms(50);
        }
    }
    cJSON_Delete(c);
    elem_free(&e);
    return rc;
}

/* Waits (running handlers) until st's locator matches exactly one element,
 * attached but not necessarily visible: for reading it, or for a file
 * input hidden behind a styled button. */
static int present(run *R, const sop_step *st, elem *e)
{
    char err[ERR_SIZE], lt[512];
    loc_text(&st->loc, lt, sizeof(lt));
    int timeout = step_timeout(R, st);
    int64_t until = pt_mono_ms() + timeout;
    for (;;) {
        int count = 0;
        int rc = find(R, &st->loc, e, &count, err);
        if (rc == 0)
            return 0;
        if (rc == 1 && count > 1 && !st->loc.nth) {
            fail_step(R, st, "%s matches %d elements; say which with first, last or nth N", lt,
                      count);
            return -1;
        }
        if (pt_mono_ms() >= until) {
            fail_step(R, st, "no element matches %s for %d s", lt, (timeout + 999) / 1000);
            return -1;
        }
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        pt_sleep_ms(POLL_MS);
    }
}

static int step_upload(run *R, const sop_step *st)
{
    char err[ERR_SIZE], lt[512];
    loc_text(&st->loc, lt, sizeof(lt));
    cJSON *files = cJSON_CreateArray();
    for (size_t i = 0; i < R->o->nfiles; i++) {
        const char *f = R->o->files[i];
        const char *base = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;
        if (st->file_name && strcmp(base, st->file_name) != 0)
            continue;
        char *abs = realpath(f, NULL);
        if (!abs) {
            cJSON_Delete(files);
            fail_step(R, st, "task file %s cannot be read", base);
            return -1;
        }
        cJSON_AddItemToArray(files, cJSON_CreateString(abs));
        free(abs);
    }
    if (!cJSON_GetArraySize(files)) {
        cJSON_Delete(files);
        fail_step(R, st,
                  st->file_name ? "the task has no file named %s" : "the task has no files%s",
                  st->file_name ? st->file_name : "");
        return -1;
    }
    /* file inputs are often hidden behind a styled button: no hit test */
    elem e = {0};
    if (present(R, st, &e) < 0) {
        cJSON_Delete(files);
        return -1;
    }
    cJSON *is = elem_call(R, &e, "isFile", NULL, err);
    int ok = cJSON_IsTrue(is);
    cJSON_Delete(is);
    if (!ok) {
        cJSON_Delete(files);
        elem_free(&e);
        fail_step(R, st, "%s is not a file input", lt);
        return -1;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToObject(p, "files", files);
    cJSON_AddStringToObject(p, "objectId", e.oid);
    int rc = cdp_call(e.s, "DOM.setFileInputFiles", p, NULL, 15000, err);
    elem_free(&e);
    if (rc) {
        fail_step(R, st, "%s", err);
        return -1;
    }
    return 0;
}

static int step_extract(run *R, const sop_step *st)
{
    char err[ERR_SIZE], lt[512];
    loc_text(&st->loc, lt, sizeof(lt));
    elem e = {0};
    if (present(R, st, &e) < 0)
        return -1;
    cJSON *extra = NULL;
    const char *op = "text";
    if (st->attribute && !strcmp(st->attribute, "value"))
        op = "value";
    else if (st->attribute) {
        op = "attr";
        extra = cJSON_CreateArray();
        cJSON_AddItemToArray(extra, arg_value(cJSON_CreateString(st->attribute)));
    }
    cJSON *v = elem_call(R, &e, op, extra, err);
    elem_free(&e);
    char *text = strdup(cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(v);
    if (st->regex) {
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)st->regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                       &code, &off, NULL);
        pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
        int n = md ? pcre2_match(re, (PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) : -1;
        if (n < 0) {
            fail_step(R, st, "/%s/ is not in the text of %s", st->regex, lt);
            pcre2_match_data_free(md);
            pcre2_code_free(re);
            free(text);
            return -1;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int g = n > 1 ? 1 : 0; /* the first group if there is one */
        char *m = strndup(text + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        free(text);
        text = m;
        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }
    vars_set(R->v, st->name, text, 0);
    vars_set(R->r->outputs, st->name, text, 0);
    free(text);
    return 0;
}

static int step_wait(run *R, const sop_step *st)
{
    char err[ERR_SIZE] = "";
    int timeout = step_timeout(R, st);
    int64_t until = pt_mono_ms() + timeout;
    for (;;) {
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        int h = cond_holds(R, st->cond, R->depth, err);
        if (h > 0)
            return 0;
        if (h < 0 && cdp_browser_gone(cdp_session_browser(cdp_page_session(R->page)), NULL)) {
            fail_step(R, st, "%s", err);
            return -1;
        }
        if (pt_mono_ms() >= until) {
            fail_step(R, st, "not so after %d s", (timeout + 999) / 1000);
            return -1;
        }
        pt_sleep_ms(POLL_MS);
    }
}

/* Runs one step. */
static void step(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    R->cur = st;
    if (R->o->step_begin)
        R->o->step_begin(R->o->rr_ud, st);
    if (st->kind == SOP_WHENEVER) {
        handler *n = realloc(R->handlers, (R->nhandlers + 1) * sizeof(*n));
        if (n) {
            R->handlers = n;
            R->handlers[R->nhandlers++] = (handler){st, R->depth, 0, 0};
        }
        return;
    }
    if (st->kind != SOP_IN_FRAME && st->kind != SOP_IF && run_handlers(R) < 0)
        return;
    if (R->stop)
        return;
    cJSON *t = traj_begin(R, st);
    int rc = 0, changed = 0;
    switch (st->kind) {
    case SOP_GOTO: {
        char *url = value_of(R, st, NULL);
        if (!url) {
            rc = -1;
            break;
        }
        int timeout = st->timeout_ms ? st->timeout_ms : 30000;
        if (cdp_page_navigate(R->page, url, CDP_WAIT_LOAD, timeout, err)) {
            char *m = vars_mask(err, R->o->secrets);
            fail_step(R, st, "%s", m ? m : err);
            free(m);
            rc = -1;
        }
        R->depth = 0; /* a new top document: frames entered before are gone */
        changed = 1;
        free(url);
        break;
    }
    case SOP_CLICK: {
        elem e;
        double x, y;
        rc = actionable(R, st, &st->loc, 1, 0, &e, &x, &y);
        if (!rc) {
            if ((rc = click_at(R, x, y, err)))
                fail_step(R, st, "%s", err);
            elem_free(&e);
        }
        changed = 1;
        break;
    }
    case SOP_FILL:
        rc = step_fill(R, st);
        changed = 1;
        break;
    case SOP_TYPE: {
        char *value = value_of(R, st, NULL);
        elem e;
        double x, y;
        rc = !value ? -1 : actionable(R, st, &st->loc, 1, 0, &e, &x, &y);
        if (!rc) {
            if ((rc = click_at(R, x, y, err)) || (rc = type_text(R, value, err)))
                fail_step(R, st, "%s", err);
            elem_free(&e);
        }
        free(value);
        changed = 1;
        break;
    }
    case SOP_PRESS:
        if ((rc = press_named(R, st->value.text, err)))
            fail_step(R, st, "%s", err);
        changed = 1;
        break;
    case SOP_SELECT:
        rc = step_select(R, st);
        changed = 1;
        break;
    case SOP_CHOOSE:
        rc = step_choose(R, st);
        changed = 1;
        break;
    case SOP_CHECK:
    case SOP_UNCHECK:
        rc = step_check(R, st, st->kind == SOP_CHECK);
        changed = 1;
        break;
    case SOP_UPLOAD:
        rc = step_upload(R, st);
        changed = 1;
        break;
    case SOP_WAIT:
        rc = step_wait(R, st);
        break;
    case SOP_EXTRACT:
        rc = step_extract(R, st);
        break;
    case SOP_EXPECT: {
        int h = cond_holds(R, st->cond, R->depth, err);
        if (h <= 0) {
            char *notes =
                vars_expand(st->value.text, R->v, R->o->secrets, text_in_frame, R, 0, err);
            set_status(R, "failed", notes ? notes : st->value.text);
            free(notes);
            rc = -1;
        }
        break;
    }
    case SOP_IF: {
        int h = cond_holds(R, st->cond, R->depth, err);
        if (h < 0) {
            fail_step(R, st, "%s", err);
            rc = -1;
            break;
        }
        cJSON_AddBoolToObject(t, "taken", h);
        traj_end(R, t, 0, 0);
        run_block(R, h ? &st->body : &st->otherwise);
        return;
    }
    case SOP_IN_FRAME: {
        if (R->depth + 1 >= MAX_FRAMES) {
            fail_step(R, st, "frames nested more than %d deep", MAX_FRAMES - 1);
            rc = -1;
            break;
        }
        int timeout = step_timeout(R, st);
        int64_t until = pt_mono_ms() + timeout;
        char *fid = NULL;
        while (resolve_frame(R, R->depth, &st->loc, &fid, err) != 0) {
            if (pt_mono_ms() >= until || run_handlers(R) < 0 || R->stop) {
                if (!R->stop)
                    fail_step(R, st, "%s", err);
                rc = -1;
                break;
            }
            pt_sleep_ms(POLL_MS);
        }
        if (rc)
            break;
        traj_end(R, t, 0, 0);
        int saved = R->depth;
        R->depth++;
        R->stack[R->depth] = (framectx){fid, &st->loc};
        run_block(R, &st->body);
        free(R->stack[R->depth].frame_id);
        R->stack[R->depth].frame_id = NULL;
        R->depth = saved;
        return;
    }
    case SOP_SCREENSHOT:
        changed = 1;
        break;
    case SOP_ASK: {
        const char *answer = vars_get(R->o->answers, st->name);
        char *got = NULL;
        if (!answer && R->o->ask &&
            R->o->ask(R->o->hook_ud, st->name, st->value.text ? st->value.text : "", &got) == 0 &&
            got)
            answer = got;
        if (answer) {
            vars_set(R->v, st->name, answer, 0);
            pt_log_mask(answer);
            free(got);
        } else if (R->o->cancelled && R->o->cancelled(R->o->hook_ud)) {
            set_status(R, "failed", "Cancelled while waiting for input.");
        } else {
            free(R->r->ask_name);
            free(R->r->ask_prompt);
            R->r->ask_name = strdup(st->name);
            R->r->ask_prompt = strdup(st->value.text ? st->value.text : "");
            set_status(R, "waiting_for_input", st->value.text);
        }
        break;
    }
    case SOP_REVIEW: {
        char *msg = vars_expand(st->value.text ? st->value.text : "", R->v, R->o->secrets,
                                text_in_frame, R, 0, err);
        const char *what = msg ? msg : st->value.text ? st->value.text : "";
        if (!R->o->approve) {
            char *comment = NULL;
            int d = R->o->review ? R->o->review(R->o->hook_ud, what, &comment) : 2;
            if (d == 0) {
                char *notes = NULL;
                if (asprintf(&notes, "Rejected in review%s%s", comment && *comment ? ": " : ".",
                             comment && *comment ? comment : "") < 0)
                    notes = NULL;
                set_status(R, "failed", notes ? notes : "Rejected in review.");
                free(notes);
            } else if (d != 1) {
                if (R->o->cancelled && R->o->cancelled(R->o->hook_ud))
                    set_status(R, "failed", "Cancelled while pending review.");
                else
                    set_status(R, "pending_review", what);
            }
            free(comment);
        }
        free(msg);
        break;
    }
    case SOP_COMMIT:
        if (R->o->on_commit && !R->r->committed)
            R->o->on_commit(R->o->hook_ud);
        R->r->committed = 1;
        break;
    case SOP_FINISH: {
        char *notes = st->value.text ? vars_expand(st->value.text, R->v, R->o->secrets,
                                                   text_in_frame, R, 0, err)
                                     : strdup("");
        if (!notes) {
            fail_step(R, st, "%s", err);
            rc = -1;
            break;
        }
        set_status(R, st->name, notes);
        free(notes);
        changed = 1; /* the page as it was left: what a person looks at first */
        break;
    }
    case SOP_WHENEVER:
        break;
    }
    traj_end(R, t, rc != 0 && !strcmp(R->r->status, "failed"), changed);
}

/* The host asked the run to stop: it ends failed, saying so. */
static int check_cancel(run *R)
{
    const char *why = R->stop || !R->o->stop_reason ? NULL : R->o->stop_reason(R->o->rr_ud);
    if (why && R->cur) {
        fail_step(R, R->cur, "%s", why);
        return 1;
    }
    if (R->stop || !R->o->cancelled || !R->o->cancelled(R->o->hook_ud))
        return R->stop;
    set_status(R, "failed",
               R->r->committed ? "Cancelled by the client after the commit point: the portal may "
                                 "already have the submission."
                               : "Cancelled by the client.");
    return 1;
}

static void run_block(run *R, const sop_block *b)
{
    size_t handlers_before = R->nhandlers;
    for (size_t i = 0; i < b->n && !R->stop; i++) {
        if (check_cancel(R))
            break;
        step(R, &b->steps[i]);
    }
    /* handlers declared in a block last as long as the block */
    R->nhandlers = handlers_before;
}

/* Runs every `whenever` whose condition holds now. -1 if one failed. */
static int run_handlers(run *R)
{
    if (R->in_handler || R->stop)
        return 0;
    if (check_cancel(R))
        return -1;
    for (size_t i = 0; i < R->nhandlers; i++) {
        handler *h = &R->handlers[i];
        if (pt_mono_ms() - h->last < 500)
            continue;
        char err[ERR_SIZE];
        if (cond_holds(R, h->st->cond, h->depth, err) != 1)
            continue;
        if (++h->fired > 50) {
            fail_step(R, h->st, "this handler fired 50 times and its condition still holds");
            return -1;
        }
        PT_INFO("agent", "handler at line %d fires", h->st->line);
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
    }
    return 0;
}

/* ---- Trajectory files ---------------------------------------------------- */

static const char traj_html_head[] =
    "<!doctype html><html><head><meta charset=utf-8><title>Trajectory</title><style>"
    "body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh}"
    "#list{width:40%;overflow:auto;border-right:1px solid #ccc}"
    ".s{padding:6px 10px;border-bottom:1px solid #eee;cursor:pointer}"
    ".s.failed{background:#fdecee}.s.sel{background:#deebff}"
    "#view{flex:1;overflow:auto;padding:10px}#view img{max-width:100%;border:1px solid #ccc}"
    "code{white-space:pre-wrap}</style></head><body><div id=list></div><div id=view></div>"
    "<script>const T=";
static const char traj_html_tail[] =
    ";const L=document.getElementById('list'),V=document.getElementById('view');"
    "const "
    "esc=s=>String(s==null?'':s).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));"
    "function show(i){const s=T.steps[i];document.querySelectorAll('.s').forEach((e,j)=>"
    "e.classList.toggle('sel',j===i));V.innerHTML='<h3>'+esc(s.file)+':'+s.line+' '+esc(s.action)+"
    "'</h3><p>'+esc(s.outcome)+(s.error?': '+esc(s.error):'')+'</p><p>'+esc(s.started_at)+' - '+"
    "esc(s.ended_at)+'</p>'+(s.screenshot?'<img src=\"'+s.screenshot+'\">':'')}"
    "L.innerHTML='<div class=s><b>'+esc(T.sop)+'</b>: '+esc(T.status)+'<br>'+esc(T.notes)+'</div>';"
    "T.steps.forEach((s,i)=>{const d=document.createElement('div');d.className='s '+s.outcome;"
    "d.textContent=s.index+'. '+s.file+':'+s.line+'  '+s.action;d.onclick=()=>show(i);"
    "L.appendChild(d)});if(T.steps.length)show(T.steps.length-1);</script></body></html>";

static void write_trajectory(run *R)
{
    if (!R->o->trajectory_dir)
        return;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "sop", R->s->name ? R->s->name : "");
    cJSON_AddStringToObject(t, "status", R->r->status);
    cJSON_AddStringToObject(t, "notes", R->r->notes ? R->r->notes : "");
    cJSON_AddBoolToObject(t, "committed", R->r->committed);
    cJSON_AddItemToObject(t, "steps", R->traj_steps);
    R->traj_steps = NULL;
    cdp_dialog *d = NULL;
    size_t nd = 0;
    cJSON *dl = cJSON_AddArrayToObject(t, "dialogs");
    if (cdp_page_dialogs(R->page, &d, &nd) == 0)
        for (size_t i = 0; i < nd; i++) {
            cJSON *x = cJSON_CreateObject();
            char *m = vars_mask(d[i].message, R->o->secrets);
            cJSON_AddStringToObject(x, "type", d[i].type);
            cJSON_AddStringToObject(x, "message", m ? m : "");
            cJSON_AddBoolToObject(x, "accepted", d[i].accepted);
            free(m);
            cJSON_AddItemToArray(dl, x);
        }
    cdp_dialogs_free(d, nd);
    char *json = cJSON_Print(t);
    /* the HTML carries its screenshots inline, so it is one file a person
     * can open or send; trajectory.json names the PNGs beside it */
    cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(t, "steps"))
    {
        const char *name = pt_json_str(st, "screenshot");
        char p[4300], *png = NULL;
        size_t len = 0;
        if (!name)
            continue;
        snprintf(p, sizeof(p), "%s/%s", R->o->trajectory_dir, name);
        if (pt_read_file(p, 32 << 20, &png, &len) < 0)
            continue;
        char *b64 = pt_b64_encode(png, len);
        free(png);
        char *uri = NULL;
        if (b64 && asprintf(&uri, "data:image/png;base64,%s", b64) >= 0) {
            cJSON_ReplaceItemInObjectCaseSensitive(st, "screenshot", cJSON_CreateString(uri));
            free(uri);
        }
        free(b64);
    }
    char *compact = cJSON_PrintUnformatted(t);
    cJSON_Delete(t);
    char path[4300];
    snprintf(path, sizeof(path), "%s/trajectory.json", R->o->trajectory_dir);
    if (json)
        pt_write_file(path, json, strlen(json), 0600);
    pt_buf b;
    pt_buf_init(&b, 0);
    pt_buf_append(&b, traj_html_head, sizeof(traj_html_head) - 1);
    /* keep "</script>" in a value from closing the script */
    for (const char *c = compact ? compact : "{}"; *c; c++) {
        if (*c == '<')
            pt_buf_append(&b, "\\u003c", 6);
        else
            pt_buf_append(&b, c, 1);
    }
    pt_buf_append(&b, traj_html_tail, sizeof(traj_html_tail) - 1);
    snprintf(path, sizeof(path), "%s/trajectory.html", R->o->trajectory_dir);
    pt_write_file(path, b.data, b.len, 0600);
    pt_buf_free(&b);
    free(json);
    free(compact);
}

/* ---- Entry --------------------------------------------------------------- */

void agent_result_free(agent_result *r)
{
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
    if (cdp_context_create(o->browser, &ctx, err) || cdp_page_open(o->browser, ctx, &R.page, err) ||
        (o->page_opened && o->page_opened(o->rr_ud, R.page, err) < 0)) {
        snprintf(r->status, sizeof(r->status), "failed");
        r->notes = strdup(err);
        goto done;
    }
    run_block(&R, &s->steps);
    if (!R.stop) {
        /* an SOP that ends without `finish` completed what it says */
        snprintf(r->status, sizeof(r->status), "completed");
        r->notes = strdup("");
    }
    write_trajectory(&R);
done:
    cJSON_Delete(R.traj_steps);
    for (int d = 1; d < MAX_FRAMES; d++)
        free(R.stack[d].frame_id);
    free(R.handlers);
    cdp_page_close(R.page);
    if (ctx && !cdp_browser_gone(o->browser, NULL))
        cdp_context_dispose(o->browser, ctx, NULL);
    free(ctx);
    vars_free(R.v);
    return r->status[0] ? 0 : -1;
}
