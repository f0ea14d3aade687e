/*
 * cond.c - the conditions of `if`, `wait for`, `expect` and `whenever`
 * (see run.h): whether one holds now, in a given frame.
 *
 * It owns reading the page for a condition (counting, visibility, text,
 * the URL) and a task's variables for one. It must never wait or act: the
 * steps that use a condition decide how long to poll it.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "agent/run.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>
#include <strings.h>

/* c, leaf by leaf: a call for each leaf that reads the page. */
static int cond_read(run *R, const sop_cond *c, int depth, char *err)
{
    switch (c->kind) {
    case SOP_COND_NOT: {
        int r = cond_read(R, c->a, depth, err);
        return r < 0 ? r : !r;
    }
    case SOP_COND_OR: {
        int r = cond_read(R, c->a, depth, err);
        return r != 0 ? r : cond_read(R, c->b, depth, err);
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
        cJSON *lj = dom_locator(R, &c->loc, err);
        if (!lj)
            return -1;
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cdp_arg(lj));
        dom_out o;
        int rc = dom_call(R, depth, NULL, "count", args, 1, &o, 3000, err);
        if (rc)
            return rc == CDP_ETIMEOUT || rc == CDP_EJS ? 0 : -1; /* no document yet: not visible */
        int visible = (int)dom_num(o.value, "visible");
        cJSON_Delete(o.value);
        if (c->kind == SOP_COND_VISIBLE)
            return visible > 0;
        if (c->kind == SOP_COND_HIDDEN)
            return visible == 0;
        if (!visible)
            return 0;
        cdp_handle *e = NULL;
        int count = 0;
        int saved = R->depth;
        R->depth = depth;
        sop_locator first = c->loc;
        if (!first.nth)
            first.nth = 1;
        rc = loc_find(R, &first, &e, &count, err);
        R->depth = saved;
        if (rc)
            return rc < 0 ? -1 : 0;
        cJSON *t = dom_on(e, "text", NULL, err);
        cdp_handle_release(e);
        int hit = cJSON_IsString(t) && strstr(t->valuestring, c->text) != NULL;
        cJSON_Delete(t);
        return hit;
    }
    case SOP_COND_PAGE_TEXT:
    case SOP_COND_URL: {
        dom_out o;
        int rc = dom_call(R, depth, NULL, c->kind == SOP_COND_URL ? "url" : "pageText", NULL, 1, &o,
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

/* c on a frame with no document yet: no leaf that reads the page holds
 * (as cond_read says of each). */
static int cond_blank(run *R, const sop_cond *c)
{
    char err[ERR_SIZE];
    switch (c->kind) {
    case SOP_COND_NOT:
        return !cond_blank(R, c->a);
    case SOP_COND_OR:
        return cond_blank(R, c->a) || cond_blank(R, c->b);
    case SOP_COND_VAR:
    case SOP_COND_VAR_IS:
        return cond_read(R, c, 0, err) > 0;
    default:
        return 0;
    }
}

/* c as dom.js `holds` takes it, variables decided here; NULL when it
 * cannot go there (a regex: PCRE2 is not the page's RegExp) or on error.
 * *page: whether it reads the page at all. */
static cJSON *cond_json(run *R, const sop_cond *c, int *page, char *err)
{
    static const char *const kinds[] = {
        [SOP_COND_VISIBLE] = "visible", [SOP_COND_HIDDEN] = "hidden", [SOP_COND_TEXT] = "text",
        [SOP_COND_PAGE_TEXT] = "pageText", [SOP_COND_URL] = "url"};
    cJSON *o = cJSON_CreateObject(), *a = NULL, *b = NULL;
    switch (c->kind) {
    case SOP_COND_VAR:
    case SOP_COND_VAR_IS:
        cJSON_AddStringToObject(o, "k", "const");
        cJSON_AddBoolToObject(o, "v", cond_read(R, c, 0, err) > 0);
        return o;
    case SOP_COND_NOT:
    case SOP_COND_OR:
        cJSON_AddStringToObject(o, "k", c->kind == SOP_COND_NOT ? "not" : "or");
        if (!(a = cond_json(R, c->a, page, err)) ||
            (c->kind == SOP_COND_OR && !(b = cond_json(R, c->b, page, err))))
            break;
        cJSON_AddItemToObject(o, "a", a);
        if (b)
            cJSON_AddItemToObject(o, "b", b);
        return o;
    default:
        if (c->regex)
            break;
        *page = 1;
        cJSON_AddStringToObject(o, "k", kinds[c->kind]);
        if (c->text)
            cJSON_AddStringToObject(o, "text", c->text);
        if (c->kind == SOP_COND_PAGE_TEXT || c->kind == SOP_COND_URL)
            return o;
        if (!(a = dom_locator(R, &c->loc, err)))
            break;
        cJSON_AddItemToObject(o, "loc", a);
        return o;
    }
    cJSON_Delete(a);
    cJSON_Delete(o);
    return NULL;
}

int cond_holds_many(run *R, const sop_cond *const *cs, size_t n, int depth, int *out, char *err)
{
    cJSON *list = cJSON_CreateArray();
    int page = 0, batch = 1;
    for (size_t i = 0; i < n && batch; i++) {
        cJSON *j = cond_json(R, cs[i], &page, err);
        if (j)
            cJSON_AddItemToArray(list, j);
        batch = j != NULL;
    }
    dom_out o = {0};
    int rc = -1;
    if (batch && page) {
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cdp_arg(list));
        list = NULL;
        rc = dom_call(R, depth, NULL, "conds", args, 1, &o, 3000, err);
        batch = rc == 0 && cJSON_GetArraySize(o.value) == (int)n;
    } else
        batch = 0;
    /* not in one look (only variables, a regex, a script error): one by
     * one, each saying why it could not be read; no document to read yet:
     * what the page would show is not there */
    for (size_t i = 0; i < n; i++)
        out[i] = batch               ? cJSON_IsTrue(cJSON_GetArrayItem(o.value, (int)i))
                 : rc == CDP_ETIMEOUT ? cond_blank(R, cs[i])
                                      : cond_read(R, cs[i], depth, err);
    cJSON_Delete(list);
    cJSON_Delete(o.value);
    return 0;
}

int cond_holds(run *R, const sop_cond *c, int depth, char *err)
{
    int h;
    cond_holds_many(R, &c, 1, depth, &h, err);
    return h;
}

