/*
 * handle.c - element handles: remote objects in a page's frames, the
 * functions called on them or in a frame, what frame an <iframe> shows,
 * the files of a file input, and evaluation in one execution context.
 *
 * It owns the Runtime.callFunctionOn / Runtime.evaluate / DOM.describeNode /
 * DOM.setFileInputFiles / Runtime.releaseObject messages. It must never
 * interpret what a called function returns: a value or a handle goes back
 * to the caller as the browser gave it.
 */
#include "cdp/cdp_internal.h"
#include "util/err.h"
#include "util/json.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT 15000

/* Round trips made on this thread: a worker makes its run's calls itself. */
static _Thread_local unsigned long calls_here;

void cdp__count_round_trip(void)
{
    calls_here++;
}

int cdp__call(cdp_session *s, const char *method, cJSON *params, cJSON **result, int timeout_ms,
              char *err)
{
    calls_here++;
    return cdp_call(s, method, params, result, timeout_ms, err);
}

unsigned long cdp_calls_here(void)
{
    return calls_here;
}

cdp_handle *cdp__handle_new(cdp_session *s, const char *object_id)
{
    cdp_handle *h = calloc(1, sizeof(*h));
    if (!h || !(h->oid = strdup(object_id))) {
        free(h);
        return NULL;
    }
    h->s = cdp_session_ref(s);
    return h;
}

void cdp_handle_release(cdp_handle *h)
{
    if (!h)
        return;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "objectId", h->oid);
    cdp_send(h->s, "Runtime.releaseObject", p);
    free(h->oid);
    cdp_session_unref(h->s);
    free(h);
}

cJSON *cdp_arg(cJSON *value)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddItemToObject(a, "value", value ? value : cJSON_CreateNull());
    return a;
}

cJSON *cdp_arg_handle(const cdp_handle *h)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "objectId", h->oid);
    return a;
}

/* A value as deep serialization gives it ({type, value}, WebDriver BiDi's
 * shape) as plain JSON: objects and maps as objects, arrays and sets as
 * arrays, anything else that is not a primitive as null. A new item. */
static cJSON *from_deep(const cJSON *d, int depth)
{
    const char *type = pt_json_str(d, "type");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "value");
    if (!type || depth > 8)
        return cJSON_CreateNull();
    if (!strcmp(type, "string"))
        return cJSON_CreateString(cJSON_IsString(v) ? v->valuestring : "");
    if (!strcmp(type, "boolean"))
        return cJSON_CreateBool(cJSON_IsTrue(v));
    if (!strcmp(type, "number")) /* NaN, -0 and the infinities come as strings */
        return cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble) : cJSON_CreateNull();
    int is_obj = !strcmp(type, "object") || !strcmp(type, "map");
    if (!is_obj && strcmp(type, "array") && strcmp(type, "set"))
        return cJSON_CreateNull();
    cJSON *out = is_obj ? cJSON_CreateObject() : cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        if (!is_obj) {
            cJSON_AddItemToArray(out, from_deep(item, depth + 1));
            continue;
        }
        const cJSON *k = cJSON_GetArrayItem(item, 0); /* [key, value] */
        if (cJSON_IsString(k))
            cJSON_AddItemToObject(out, k->valuestring,
                                  from_deep(cJSON_GetArrayItem(item, 1), depth + 1));
    }
    return out;
}

/* Runtime.callFunctionOn in s: on object `oid` when not NULL, else in
 * context ctx. Takes args. */
static int call_function(cdp_session *s, int ctx, const char *oid, const char *fn, cJSON *args,
                         unsigned flags, cdp_value *out, int timeout_ms, char *err)
{
    int by_value = !(flags & (CDP_RETURN_HANDLE | CDP_RETURN_BOTH));
    cJSON *p = cJSON_CreateObject(), *res = NULL;
    cJSON_AddStringToObject(p, "functionDeclaration", fn);
    cJSON_AddItemToObject(p, "arguments", args ? args : cJSON_CreateArray());
    if (oid)
        cJSON_AddStringToObject(p, "objectId", oid);
    else
        cJSON_AddNumberToObject(p, "executionContextId", ctx);
    cJSON_AddBoolToObject(p, "returnByValue", by_value);
    cJSON_AddBoolToObject(p, "awaitPromise", 1);
    if (flags & CDP_RETURN_BOTH) {
        cJSON *so = cJSON_AddObjectToObject(p, "serializationOptions");
        cJSON_AddStringToObject(so, "serialization", "deep");
        cJSON_AddNumberToObject(so, "maxDepth", 4);
    }
    int rc =
        cdp__call(s, "Runtime.callFunctionOn", p, &res, timeout_ms > 0 ? timeout_ms : 15000, err);
    if (rc)
        return rc;
    cJSON *ex = cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails");
    if (ex) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ex, "exception");
        const char *desc = pt_json_str(e, "description");
        pt_errf(err, "%s", desc ? desc : "script error");
        cJSON_Delete(res);
        return CDP_EJS;
    }
    cJSON *result = cJSON_GetObjectItemCaseSensitive(res, "result");
    const char *object_id = pt_json_str(result, "objectId");
    if (flags & CDP_RETURN_BOTH)
        out->value = from_deep(cJSON_GetObjectItemCaseSensitive(result, "deepSerializedValue"), 0);
    if (!by_value && object_id) {
        if (!(out->handle = cdp__handle_new(s, object_id))) {
            rc = pt_errf(err, "out of memory");
            cJSON_Delete(out->value);
            out->value = NULL;
        }
    } else if (!out->value) {
        out->value = cJSON_DetachItemFromObjectCaseSensitive(result, "value");
        if (by_value && !out->value)
            out->value = cJSON_CreateNull();
    }
    cJSON_Delete(res);
    return rc;
}

int cdp_page_call(cdp_page *p, const char *frame_id, const char *fn, cJSON *args, unsigned flags,
                  cdp_value *out, int timeout_ms, char *err)
{
    memset(out, 0, sizeof(*out));
    cdp_session *s = NULL;
    int ctx = 0;
    int rc = cdp_page_frame_context(p, frame_id, &s, &ctx, timeout_ms > 0 ? timeout_ms : 1, err);
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    rc = call_function(s, ctx, NULL, fn, args, flags, out, timeout_ms, err);
    cdp_session_unref(s);
    return rc;
}

/* The object group the installed functions are kept in (a test releases
 * it to see a kept object go). */
#define KEPT_GROUP "portier-kept"

/* Installs fn in context ctx of s: its object's id (a new string), or NULL.
 * The object is a wrapper that applies fn to one array of arguments with
 * the Reflect.apply of its install, so that no later page script (one that
 * replaced Array.prototype[Symbol.iterator], say) stands between a call's
 * arguments and fn. */
static char *install(cdp_session *s, int ctx, const char *fn, int timeout_ms)
{
    static const char head[] = "(function () { const f = (", tail[] =
        "\n); const apply = Reflect.apply; return function (a) { return apply(f, undefined, a); }; "
        "})()";
    char err[CDP_ERR_MAX];
    size_t n = sizeof(head) + strlen(fn) + sizeof(tail);
    char *expr = malloc(n);
    if (!expr)
        return NULL;
    /* the newline ends a last-line comment */
    snprintf(expr, n, "%s%s%s", head, fn, tail);
    cJSON *p = cJSON_CreateObject(), *res = NULL;
    cJSON_AddStringToObject(p, "expression", expr);
    free(expr);
    cJSON_AddNumberToObject(p, "contextId", ctx);
    cJSON_AddStringToObject(p, "objectGroup", KEPT_GROUP);
    cJSON_AddBoolToObject(p, "returnByValue", 0);
    char *oid = NULL;
    if (cdp__call(s, "Runtime.evaluate", p, &res, timeout_ms, err) == 0 &&
        !cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(res, "result");
        const char *id = pt_json_str(r, "objectId");
        const char *type = pt_json_str(r, "type");
        if (id && type && !strcmp(type, "function"))
            oid = strdup(id);
    }
    cJSON_Delete(res);
    return oid;
}

/* What is left of a deadline, at least 1 ms (0 would mean the default). */
static int left_ms(int64_t until)
{
    int64_t left = until - pt_mono_ms();
    return left > 0 ? (int)left : 1;
}

int cdp_page_call_kept(cdp_page *p, const char *frame_id, const char *fn, cJSON *args,
                       unsigned flags, cdp_value *out, int timeout_ms, char *err)
{
    memset(out, 0, sizeof(*out));
    int64_t until = pt_mono_ms() + (timeout_ms > 0 ? timeout_ms : 15000);
    cdp_session *s = NULL;
    int ctx = 0;
    unsigned gen = 0;
    char *oid = NULL;
    int rc = cdp__page_fn(p, frame_id, fn, &s, &ctx, &gen, &oid, left_ms(until), err);
    if (rc) {
        cJSON_Delete(args);
        return rc;
    }
    if (!oid && (oid = install(s, ctx, fn, left_ms(until))))
        cdp__page_fn_keep(p, frame_id, s, gen, fn, oid);
    if (oid) {
        /* `this` is the installed wrapper; a rest parameter gathers the
         * arguments without iterating anything the page could replace */
        cJSON *again = cJSON_Duplicate(args, 1);
        rc = call_function(s, 0, oid, "function (...a) { return this(a); }", args, flags, out,
                           left_ms(until), err);
        free(oid);
        /* refused before it ran (its object gone while its context
         * stands): forget the object, once more the long way. A context
         * destroyed is the caller's news, as with cdp_page_call */
        if (rc != CDP_ENOOBJECT || !again) {
            cJSON_Delete(again);
            cdp_session_unref(s);
            return rc;
        }
        cdp__page_fn_forget(p, frame_id, gen, fn);
        args = again;
        memset(out, 0, sizeof(*out));
    }
    rc = call_function(s, ctx, NULL, fn, args, flags, out, left_ms(until), err);
    cdp_session_unref(s);
    return rc;
}

int cdp_handle_call(const cdp_handle *h, const char *fn, cJSON *args, unsigned flags,
                    cdp_value *out, int timeout_ms, char *err)
{
    memset(out, 0, sizeof(*out));
    return call_function(h->s, 0, h->oid, fn, args, flags, out, timeout_ms, err);
}

int cdp_handle_content_frame(const cdp_handle *h, char **frame_id, int timeout_ms, char *err)
{
    *frame_id = NULL;
    cJSON *p = cJSON_CreateObject(), *node = NULL;
    cJSON_AddStringToObject(p, "objectId", h->oid);
    int rc = cdp__call(h->s, "DOM.describeNode", p, &node, timeout_ms, err);
    if (rc)
        return rc;
    const char *fid = pt_json_str(cJSON_GetObjectItemCaseSensitive(node, "node"), "frameId");
    if (fid && !(*frame_id = strdup(fid)))
        rc = pt_errf(err, "out of memory");
    cJSON_Delete(node);
    return rc ? rc : *frame_id ? PT_FOUND : PT_NONE;
}

int cdp_handle_set_files(const cdp_handle *h, const char *const *paths, size_t n, char *err)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *files = cJSON_AddArrayToObject(p, "files");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(files, cJSON_CreateString(paths[i]));
    cJSON_AddStringToObject(p, "objectId", h->oid);
    return cdp__call(h->s, "DOM.setFileInputFiles", p, NULL, CALL_TIMEOUT, err);
}

int cdp_session_eval(cdp_session *s, int context_id, const char *expr, cJSON **value,
                     int timeout_ms, char *err)
{
    *value = NULL;
    cJSON *p = cJSON_CreateObject(), *res = NULL;
    cJSON_AddStringToObject(p, "expression", expr);
    cJSON_AddNumberToObject(p, "contextId", context_id);
    cJSON_AddBoolToObject(p, "returnByValue", 1);
    int rc = cdp__call(s, "Runtime.evaluate", p, &res, timeout_ms, err);
    if (rc)
        return rc;
    const cJSON *exc = cJSON_GetObjectItemCaseSensitive(res, "exceptionDetails");
    if (exc) {
        const char *desc =
            pt_json_str(cJSON_GetObjectItemCaseSensitive(exc, "exception"), "description");
        pt_errf(err, "script threw: %s",
                desc                       ? desc
                : pt_json_str(exc, "text") ? pt_json_str(exc, "text")
                                           : "?");
        cJSON_Delete(res);
        return CDP_EJS;
    }
    cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(res, "result"), "value");
    *value = v ? v : cJSON_CreateNull();
    cJSON_Delete(res);
    return 0;
}
