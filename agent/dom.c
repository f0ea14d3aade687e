/*
 * dom.c - calling dom.js, the agent's eyes inside a frame (see run.h).
 *
 * It owns how the interpreter reaches dom.js: the op, its arguments, the
 * locator as dom.js takes it, and what comes back (a value, an element, or
 * how many elements matched). It must never decide what a result means for
 * a step: locate.c, cond.c and steps.c do.
 */
#include "agent/agent.h"
#include "agent/run.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#include "dom_js.h" /* generated from dom.js: static const char dom_js[] */

int dom_call(run *R, int depth, const cdp_handle *on, const char *op, cJSON *args, int by_value,
             dom_out *out, int timeout_ms, char *err)
{
    memset(out, 0, sizeof(*out));
    out->count = -1;
    cJSON *list = cJSON_CreateArray(), *a;
    cJSON_AddItemToArray(list, cdp_arg(cJSON_CreateString(op)));
    while (args && (a = cJSON_DetachItemFromArray(args, 0)))
        cJSON_AddItemToArray(list, a);
    cJSON_Delete(args);
    unsigned flags = by_value == DOM_BOTH ? CDP_RETURN_BOTH : by_value ? 0 : CDP_RETURN_HANDLE;
    cdp_value v;
    int rc =
        on ? cdp_handle_call(on, dom_js, list, flags, &v, timeout_ms, err)
           : cdp_page_call_kept(R->page, run_frame(R, depth), dom_js, list, flags, &v, timeout_ms,
                                err);
    if (rc)
        return rc;
    if (by_value) {
        out->value = v.value;
        out->el = v.handle;
        return 0;
    }
    /* `resolve` gives how many matched when not exactly one */
    out->el = v.handle;
    if (!v.handle && cJSON_IsNumber(v.value))
        out->count = v.value->valueint;
    cJSON_Delete(v.value);
    return 0;
}

cJSON *dom_in_frame(run *R, const char *frame_id, const char *op, char *err)
{
    cJSON *list = cJSON_CreateArray();
    cJSON_AddItemToArray(list, cdp_arg(cJSON_CreateString(op)));
    cdp_value v;
    if (cdp_page_call_kept(R->page, frame_id, dom_js, list, 0, &v, 5000, err))
        return NULL;
    return v.value;
}

cJSON *dom_on(const cdp_handle *e, const char *op, cJSON *extra, char *err)
{
    cJSON *args = cJSON_CreateArray(), *x;
    cJSON_AddItemToArray(args, cdp_arg_handle(e));
    while (extra && (x = cJSON_DetachItemFromArray(extra, 0)))
        cJSON_AddItemToArray(args, x);
    cJSON_Delete(extra);
    dom_out o;
    if (dom_call(NULL, 0, e, op, args, 1, &o, 15000, err))
        return NULL;
    return o.value;
}

cJSON *dom_locator(run *R, const sop_locator *l, char *err)
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
    if (l->field)
        cJSON_AddBoolToObject(o, "field", 1);
    if (l->file)
        cJSON_AddBoolToObject(o, "file", 1);
    free(value);
    if (l->within) {
        cJSON *w = dom_locator(R, l->within, err);
        if (!w) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(o, "within", w);
    }
    return o;
}

double dom_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

char *dom_text_in_frame(const char *selector, void *ud)
{
    run *R = ud;
    char err[ERR_SIZE];
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateString(selector)));
    dom_out o;
    if (dom_call(R, R->depth, NULL, "textOf", args, 1, &o, 5000, err))
        return NULL;
    char *t = cJSON_IsString(o.value) ? strdup(o.value->valuestring) : NULL;
    cJSON_Delete(o.value);
    return t;
}

int dom_wait_change(run *R, unsigned long since, int cap_ms, const sop_locator *missing,
                    int look_ms)
{
    char err[ERR_SIZE];
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateString("change")));
    cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateNumber(cap_ms)));
    cJSON *lj = missing ? dom_locator(R, missing, err) : NULL;
    cJSON_AddItemToArray(args, cdp_arg(lj)); /* NULL: null */
    if (look_ms >= 0)
        cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateNumber(look_ms)));
    return cdp_page_wait_change(R->page, run_frame(R, R->depth), since, dom_js, args, cap_ms, err);
}
