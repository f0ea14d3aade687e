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
#include <ctype.h>
#include <pcre2.h>
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

int cond_text_holds(const sop_cond *c, const char *text)
{
    if (!text)
        return 0;
    if (c->op == SOP_TEXT_MATCHES)
        return c->regex && regex_holds(c->regex, !c->exact, text);
    const char *want = c->text ? c->text : "";
    if (c->op == SOP_TEXT_CONTAINS)
        return (c->exact ? strstr(text, want) : strcasestr(text, want)) != NULL;
    char *a = collapse_spaces(text), *b = collapse_spaces(want);
    int hit = a && b && !(c->exact ? strcmp(a, b) : strcasecmp(a, b));
    free(a);
    free(b);
    return hit;
}

int cond_holds(run *R, const sop_cond *c, int depth, char *err)
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
        int hit = cJSON_IsString(t) && cond_text_holds(c, t->valuestring);
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
        int hit;
        if (c->kind == SOP_COND_PAGE_TEXT)
            hit = cond_text_holds(c, s);
        else /* an address: case counts */
            hit = c->regex ? regex_holds(c->regex, 0, s) : strstr(s, c->text) != NULL;
        cJSON_Delete(o.value);
        return hit;
    }
    }
    return 0;
}
