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
#include "util/err.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int regex_holds(const char *pattern, int caseless, const char *s)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | (caseless ? PCRE2_CASELESS : 0), &code, &off, NULL);
    if (!re)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int hit = pcre2_match(re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return hit;
}

/* text with its spaces trimmed and each run of them as one space: a new
 * string, or NULL. */
static char *collapse_spaces(const char *text)
{
    char *out = malloc(strlen(text) + 1);
    size_t n = 0;
    for (const char *p = text; out && *p; p++) {
        if (isspace((unsigned char)*p)) {
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
        } else
            out[n++] = *p;
    }
    if (!out)
        return NULL;
    if (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return out;
}

/* c's comparison of text with want (c->text with its templates expanded). */
static int text_holds(const sop_cond *c, const char *want, const char *text)
{
    if (!text)
        return 0;
    if (c->op == SOP_TEXT_MATCHES)
        return c->regex && regex_holds(c->regex, !c->exact, text);
    want = want ? want : "";
    if (c->op == SOP_TEXT_CONTAINS)
        return (c->exact ? strstr(text, want) : strcasestr(text, want)) != NULL;
    char *a = collapse_spaces(text), *b = collapse_spaces(want);
    int hit = a && b && !(c->exact ? strcmp(a, b) : strcasecmp(a, b));
    free(a);
    free(b);
    return hit;
}

int cond_text_holds(const sop_cond *c, const char *text)
{
    return text_holds(c, c->text, text);
}

/* The path of a URL: after scheme://host[:port], before ? and #. */
static void url_path(const char *url, char *out, size_t outsz)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    if (!p)
        p = "/";
    size_t n = strcspn(p, "?#");
    snprintf(out, outsz, "%.*s", (int)(n < outsz ? n : outsz - 1), p);
}

/* path contains "x" */
static int path_holds(run *R, const sop_cond *c, int depth, char *err)
{
    dom_out o;
    int rc = dom_call(R, depth, NULL, "url", NULL, 1, &o, 3000, err);
    if (rc)
        return rc == CDP_ETIMEOUT ? 0 : -1;
    char path[4096];
    url_path(cJSON_IsString(o.value) ? o.value->valuestring : "", path, sizeof(path));
    cJSON_Delete(o.value);
    char *want = vars_expand(c->text, R->v, R->o->secrets, NULL, NULL, 0, err);
    if (!want)
        return -1;
    int hit = strstr(path, want) != NULL;
    free(want);
    return hit;
}

/* dialog contains "x": the message of the last native dialog the page
 * opened (alert, confirm, prompt, beforeunload). */
static int dialog_holds(run *R, const sop_cond *c, char *err)
{
    cdp_dialog *d = NULL;
    size_t n = 0;
    if (cdp_page_dialogs(R->page, &d, &n) < 0)
        return pt_errf(err, "the page's dialogs cannot be read");
    char *want = vars_expand(c->text, R->v, R->o->secrets, NULL, NULL, 0, err);
    const char *msg = n ? d[n - 1].message : NULL;
    int hit = want && msg && (c->exact ? strstr(msg, want) : strcasestr(msg, want)) != NULL;
    free(want);
    cdp_dialogs_free(d, n);
    return hit;
}

/* COND in frame LOC: the frame that LOC names in the frame at depth, entered
 * for this look only. Not there (yet): the condition does not hold. */
static int in_frame_holds(run *R, const sop_cond *c, int depth, char *err)
{
    char *fid = NULL;
    if (depth + 1 >= MAX_FRAMES)
        return pt_errf(err, "frames nested more than %d deep", MAX_FRAMES - 1);
    if (loc_frame(R, depth, c->frame, NULL, &fid, err) != 0)
        return 0;
    framectx saved = R->stack[depth + 1];
    R->stack[depth + 1] = (framectx){fid, c->frame};
    sop_cond here = *c;
    here.frame = NULL;
    int h = cond_holds(R, &here, depth + 1, err);
    R->stack[depth + 1] = saved;
    free(fid);
    return h;
}

/* c, leaf by leaf: a call for each leaf that reads the page. */
static int cond_read(run *R, const sop_cond *c, int depth, char *err)
{
    if (c->frame)
        return in_frame_holds(R, c, depth, err);
    switch (c->kind) {
    case SOP_COND_AND: {
        int r = cond_read(R, c->a, depth, err);
        return r <= 0 ? r : cond_read(R, c->b, depth, err);
    }
    case SOP_COND_PATH:
        return path_holds(R, c, depth, err);
    case SOP_COND_DIALOG:
        return dialog_holds(R, c, err);
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
        char *want = vars_expand(c->text, R->v, R->o->secrets, NULL, NULL, 0, err);
        int hit = want && cJSON_IsString(t) && text_holds(c, want, t->valuestring);
        free(want);
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
        if (c->kind != SOP_COND_PAGE_TEXT && c->regex) /* an address: case counts */
            hit = regex_holds(c->regex, 0, s);
        else {
            char *want = vars_expand(c->text, R->v, R->o->secrets, NULL, NULL, 0, err);
            if (c->kind == SOP_COND_PAGE_TEXT)
                hit = want && text_holds(c, want, s);
            else
                hit = want && strstr(s, want) != NULL;
            free(want);
        }
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
    case SOP_COND_AND:
        return cond_blank(R, c->a) && cond_blank(R, c->b);
    case SOP_COND_VAR:
    case SOP_COND_VAR_IS:
    case SOP_COND_DIALOG: /* the page's dialogs, not its document */
        return cond_read(R, c, 0, err) > 0;
    default:
        return 0;
    }
}

/* c as dom.js `holds` takes it, variables and templates decided here;
 * NULL when it cannot go there (a regex: PCRE2 is not the page's RegExp; a
 * frame, a path or a dialog: read one by one) or on error. *page: whether
 * it reads the page at all. */
static cJSON *cond_json(run *R, const sop_cond *c, int *page, char *err)
{
    static const char *const kinds[] = {
        [SOP_COND_VISIBLE] = "visible", [SOP_COND_HIDDEN] = "hidden", [SOP_COND_TEXT] = "text",
        [SOP_COND_PAGE_TEXT] = "pageText", [SOP_COND_URL] = "url"};
    if (c->frame)
        return NULL;
    cJSON *o = cJSON_CreateObject(), *a = NULL, *b = NULL;
    switch (c->kind) {
    case SOP_COND_VAR:
    case SOP_COND_VAR_IS:
        cJSON_AddStringToObject(o, "k", "const");
        cJSON_AddBoolToObject(o, "v", cond_read(R, c, 0, err) > 0);
        return o;
    case SOP_COND_NOT:
    case SOP_COND_OR:
    case SOP_COND_AND:
        cJSON_AddStringToObject(o, "k", c->kind == SOP_COND_NOT  ? "not"
                                        : c->kind == SOP_COND_OR ? "or"
                                                                 : "and");
        if (!(a = cond_json(R, c->a, page, err)) ||
            (c->kind != SOP_COND_NOT && !(b = cond_json(R, c->b, page, err))))
            break;
        cJSON_AddItemToObject(o, "a", a);
        if (b)
            cJSON_AddItemToObject(o, "b", b);
        return o;
    case SOP_COND_PATH:
    case SOP_COND_DIALOG:
        break;
    default: {
        if (c->regex)
            break;
        *page = 1;
        cJSON_AddStringToObject(o, "k", kinds[c->kind]);
        cJSON_AddStringToObject(o, "op", c->op == SOP_TEXT_IS ? "is" : "contains");
        cJSON_AddBoolToObject(o, "exact", c->exact);
        char *want = c->text ? vars_expand(c->text, R->v, R->o->secrets, NULL, NULL, 0, err) : NULL;
        if (c->text && !want)
            break;
        if (want)
            cJSON_AddStringToObject(o, "text", want);
        free(want);
        if (c->kind == SOP_COND_PAGE_TEXT || c->kind == SOP_COND_URL)
            return o;
        if (!(a = dom_locator(R, &c->loc, err)))
            break;
        cJSON_AddItemToObject(o, "loc", a);
        return o;
    }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
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

