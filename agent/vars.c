/*
 * vars.c - task data, inputs, secrets and templates. See vars.h.
 */
#define _GNU_SOURCE
#include "agent/vars.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct var {
    char *name;
    char *value;
    int is_date;
} var;

struct vars {
    var *v;
    size_t n;
};

vars *vars_new(void)
{
    return calloc(1, sizeof(vars));
}

void vars_free(vars *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        free(v->v[i].name);
        free(v->v[i].value);
    }
    free(v->v);
    free(v);
}

static var *find(const vars *v, const char *name)
{
    for (size_t i = 0; v && i < v->n; i++)
        if (!strcmp(v->v[i].name, name))
            return &v->v[i];
    return NULL;
}

int vars_set(vars *v, const char *name, const char *value, int is_date)
{
    char *nv = strdup(value ? value : "");
    if (!nv)
        return -1;
    var *x = find(v, name);
    if (x) {
        free(x->value);
        x->value = nv;
        x->is_date = is_date;
        return 0;
    }
    var *n = realloc(v->v, (v->n + 1) * sizeof(*n));
    if (!n || !(name = strdup(name))) {
        free(nv);
        if (n)
            v->v = n;
        return -1;
    }
    v->v = n;
    v->v[v->n++] = (var){(char *)name, nv, is_date};
    return 0;
}

const char *vars_get(const vars *v, const char *name)
{
    var *x = find(v, name);
    return x ? x->value : NULL;
}

int vars_is_date(const vars *v, const char *name)
{
    var *x = find(v, name);
    return x && x->is_date;
}

size_t vars_count(const vars *v)
{
    return v ? v->n : 0;
}

const char *vars_name(const vars *v, size_t i)
{
    return v && i < v->n ? v->v[i].name : NULL;
}

static void addf(char *errs, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void addf(char *errs, size_t errsz, const char *fmt, ...)
{
    if (!errs || !errsz)
        return;
    size_t used = strlen(errs);
    if (used + 1 >= errsz)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errs + used, errsz - used, fmt, ap);
    va_end(ap);
    used = strlen(errs);
    if (used + 1 < errsz) {
        errs[used] = '\n';
        errs[used + 1] = '\0';
    }
}

/* "Member ID" -> member_id, "DOB" -> dob: the SOP's own rule. */
#define normalize_key sop_key_normalize

int vars_parse_data(vars *out, const char *data, char *errs, size_t errsz)
{
    if (errs && errsz)
        errs[0] = '\0';
    const char *p = data ? data : "";
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '{') {
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithOpts(p, &end, 0);
        if (!cJSON_IsObject(o)) {
            addf(errs, errsz, "data: not a JSON object (error at byte %ld)",
                 end ? (long)(end - data) : 0L);
            cJSON_Delete(o);
            return -1;
        }
        cJSON *it;
        cJSON_ArrayForEach(it, o)
        {
            char key[128], num[64];
            normalize_key(it->string, strlen(it->string), key, sizeof(key));
            const char *val = NULL;
            if (cJSON_IsString(it))
                val = it->valuestring;
            else if (cJSON_IsNumber(it)) {
                snprintf(num, sizeof(num), "%.15g", it->valuedouble);
                val = num;
            } else if (cJSON_IsBool(it))
                val = cJSON_IsTrue(it) ? "true" : "false";
            else if (cJSON_IsNull(it))
                continue;
            else {
                addf(errs, errsz, "%s: a list or object is not a value", key);
                continue;
            }
            vars_set(out, key, val, 0);
        }
        cJSON_Delete(o);
        return errs && *errs ? -1 : 0;
    }
    int lineno = 0, bad = 0;
    for (const char *l = data ? data : ""; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        lineno++;
        const char *s = l;
        size_t slen = len;
        while (slen && isspace((unsigned char)*s))
            s++, slen--;
        while (slen && isspace((unsigned char)s[slen - 1]))
            slen--;
        if (slen && *s != '#') {
            const char *colon = memchr(s, ':', slen);
            if (!colon || colon == s) {
                addf(errs, errsz, "line %d: expected 'key: value'", lineno);
                bad = 1;
            } else {
                char key[128];
                normalize_key(s, (size_t)(colon - s), key, sizeof(key));
                const char *v = colon + 1;
                size_t vlen = slen - (size_t)(v - s);
                while (vlen && isspace((unsigned char)*v))
                    v++, vlen--;
                char *val = strndup(v, vlen);
                if (find(out, key)) {
                    addf(errs, errsz, "line %d: %s is given twice", lineno, key);
                    bad = 1;
                }
                vars_set(out, key, val, 0);
                free(val);
            }
        }
        if (!e)
            break;
        l = e + 1;
    }
    return bad ? -1 : 0;
}

/* ---- Dates --------------------------------------------------------------- */

static int month_of(const char *w)
{
    static const char *const names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};
    if (strlen(w) < 3)
        return 0;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(w, names[i], 3))
            return i + 1;
    return 0;
}

static int valid_ymd(int y, int m, int d)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1800 || y > 2200 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return 0;
    return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

int vars_normalize_date(const char *in, char out[11])
{
    int y = 0, m = 0, d = 0;
    char tail = 0, mon[16] = "";
    if (!in)
        return -1;
    while (isspace((unsigned char)*in))
        in++;
    if (sscanf(in, "%4d-%2d-%2d %c", &y, &m, &d, &tail) == 3 ||
        sscanf(in, "%4d/%2d/%2d %c", &y, &m, &d, &tail) == 3) {
    } else if (sscanf(in, "%2d/%2d/%4d %c", &m, &d, &y, &tail) == 3 ||
               sscanf(in, "%2d-%2d-%4d %c", &m, &d, &y, &tail) == 3 ||
               sscanf(in, "%2d.%2d.%4d %c", &m, &d, &y, &tail) == 3) {
    } else if (strlen(in) == 8 && strspn(in, "0123456789") == 8) {
        /* 19491223 or 12231949: a year first if it looks like one */
        int a = (in[0] - '0') * 1000 + (in[1] - '0') * 100 + (in[2] - '0') * 10 + (in[3] - '0');
        if (a >= 1800 && a <= 2200)
            sscanf(in, "%4d%2d%2d", &y, &m, &d);
        else
            sscanf(in, "%2d%2d%4d", &m, &d, &y);
    } else if (sscanf(in, "%15[A-Za-z] %d, %d %c", mon, &d, &y, &tail) == 3 ||
               sscanf(in, "%15[A-Za-z] %d %d %c", mon, &d, &y, &tail) == 3) {
        m = month_of(mon);
    } else if (sscanf(in, "%d %15[A-Za-z] %d %c", &d, mon, &y, &tail) == 3 ||
               sscanf(in, "%d-%15[A-Za-z]-%d %c", &d, mon, &y, &tail) == 3) {
        m = month_of(mon);
    } else
        return -1;
    if (!valid_ymd(y, m, d))
        return -1;
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y, m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
    return 0;
}

/* ---- Inputs -------------------------------------------------------------- */

static int matches(const char *pattern, const char *value, char *why, size_t whysz)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (!re) {
        snprintf(why, whysz, "the SOP's pattern /%s/ does not compile", pattern);
        return 0;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc < 0)
        snprintf(why, whysz, "expected a value that matches /%s/", pattern);
    return rc >= 0;
}

/* The value task data gives input `in`, by its name or an alias; NULL when
 * none (an empty value is none). Two keys for one input is a problem. */
static const char *given_value(const sop_input *in, const vars *data, char *errs, size_t errsz,
                               int *problems)
{
    const char *v = vars_get(data, in->name), *as = in->name;
    for (size_t k = 0; k < in->naliases; k++) {
        const char *a = vars_get(data, in->aliases[k]);
        if (!a || !*a)
            continue;
        if (v && *v) {
            addf(errs, errsz, "%s: given twice, as %s and as %s", in->name, as, in->aliases[k]);
            (*problems)++;
            return NULL;
        }
        v = a;
        as = in->aliases[k];
    }
    return v && *v ? v : NULL;
}

/* Maps v through the input's value map into out; -1 when no entry fits
 * (the value is not repeated: it may be PHI). */
static int map_value(const sop_input *in, const char *v, char *out, size_t outsz, char *errs,
                     size_t errsz)
{
    char key[128];
    normalize_key(v, strlen(v), key, sizeof(key));
    for (size_t k = 0; k < in->nmap; k++)
        if (!strcmp(in->map[k].from, key) || !strcmp(in->map[k].to, v)) {
            snprintf(out, outsz, "%s", in->map[k].to);
            return 0;
        }
    char choices[512] = "";
    for (size_t k = 0; k < in->nmap; k++)
        snprintf(choices + strlen(choices), sizeof(choices) - strlen(choices), "%s%s",
                 k ? ", " : "", in->map[k].from);
    addf(errs, errsz, "%s: expected one of %s (or the value one of them maps to)", in->name,
         choices);
    return -1;
}

/* One input's value from data, overrides or its default, checked and
 * normalised into out. Returns the number of problems. */
static int bind_one(const sop_input *in, const vars *data, const vars *overrides, vars *out,
                    char *errs, size_t errsz)
{
    int problems = 0;
    const char *v = given_value(in, data, errs, errsz, &problems);
    if (problems)
        return problems;
    if (!v)
        v = vars_get(overrides, in->name);
    if (!v)
        v = in->default_value;
    if (!v) {
        if (in->required)
            addf(errs, errsz, "%s: required, and the task data has none", in->name);
        return in->required;
    }
    char mapped[512];
    snprintf(mapped, sizeof(mapped), "%s", v);
    if (in->nmap && map_value(in, v, mapped, sizeof(mapped), errs, errsz) < 0)
        return 1;
    int is_date = in->type == SOP_IN_DATE;
    if (is_date) {
        char iso[11];
        if (vars_normalize_date(mapped, iso) < 0) {
            addf(errs, errsz, "%s: expected a date, such as 1949-12-23 or 12/23/1949", in->name);
            return 1;
        }
        snprintf(mapped, sizeof(mapped), "%s", iso);
    }
    char why[256];
    if (in->pattern && !matches(in->pattern, mapped, why, sizeof(why))) {
        /* the value itself is PHI: name the field and the rule, not it */
        addf(errs, errsz, "%s: %s", in->name, why);
        return 1;
    }
    vars_set(out, in->name, mapped, is_date);
    return 0;
}

/* Task data keys that no input takes and no `ignore` line lists: each is a
 * problem, named with what the SOP could say about it. */
static int unknown_keys(const sop *s, const vars *data, char *errs, size_t errsz)
{
    int problems = 0;
    const char **names = calloc(s->ninputs + 1, sizeof(*names));
    for (size_t i = 0; names && i < s->ninputs; i++)
        names[i] = s->inputs[i].name;
    for (size_t i = 0; i < vars_count(data); i++) {
        const char *key = vars_name(data, i);
        int ignored = 0;
        if (sop_input_for_key(s, key, &ignored) || ignored)
            continue;
        const char *near = names ? sop_suggest(key, names, s->ninputs) : NULL;
        if (near)
            addf(errs, errsz,
                 "%s: no input of the SOP takes this key (did you mean %s? the SOP can say "
                 "`input %s alias %s`, or `ignore %s`)",
                 key, near, near, key, key);
        else
            addf(errs, errsz,
                 "%s: no input of the SOP takes this key (declare it, add `alias %s` to an "
                 "input, or `ignore %s`)",
                 key, key, key);
        problems++;
    }
    free(names);
    return problems;
}

int vars_bind_inputs(const sop *s, const vars *data, const vars *overrides, vars *out, char *errs,
                     size_t errsz)
{
    int problems = 0;
    if (errs && errsz)
        errs[0] = '\0';
    for (size_t i = 0; i < s->ninputs; i++)
        problems += bind_one(&s->inputs[i], data, overrides, out, errs, errsz);
    return problems + unknown_keys(s, data, errs, errsz);
}

int vars_bind_data(const sop *s, const char *data, const vars *overrides, vars *out, char *errs,
                   size_t errsz)
{
    vars *parsed = vars_new();
    if (!parsed)
        return -1;
    int rc = vars_parse_data(parsed, data ? data : "", errs, errsz);
    if (rc == 0)
        rc = vars_bind_inputs(s, parsed, overrides, out, errs, errsz);
    vars_free(parsed);
    return rc;
}

/* ---- Secrets ------------------------------------------------------------- */

int vars_load_secrets(vars *secrets, const char *path, char *err)
{
    char *text = NULL;
    if (pt_read_file(path, 1 << 20, &text, NULL) < 0)
        return pt_errf(err, "cannot read the secrets file %s", path);
    int lineno = 0, rc = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (isspace((unsigned char)*l))
            l++;
        size_t len = strlen(l);
        while (len && isspace((unsigned char)l[len - 1]))
            l[--len] = '\0';
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq || eq == l) {
            rc = pt_errf(err,
                         "%s: a line is not NAME=VALUE (the line is not shown: it may hold "
                         "a secret)",
                         path);
            break;
        }
        *eq = '\0';
        char *name = l, *value = eq + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        size_t nl = strlen(name);
        while (nl && isspace((unsigned char)name[nl - 1]))
            name[--nl] = '\0';
        vars_set(secrets, name, value, 0);
        pt_log_mask(value);
    }
    /* wipe the clear text we read */
    memset(text, 0, strlen(text));
    free(text);
    return rc;
}

/* ---- Templates ----------------------------------------------------------- */

char *vars_expand(const char *tmpl, const vars *v, const vars *secrets, vars_text_fn text_of,
                  void *ud, int masked, char *err)
{
    pt_buf b;
    pt_buf_init(&b, 1 << 20);
    pt_buf_append(&b, "", 0);
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            pt_buf_append(&b, p, strlen(p));
            break;
        }
        pt_buf_append(&b, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            pt_errf(err, "a {{ has no closing }}");
            goto fail;
        }
        char expr[512];
        const char *a = open + 2, *z = close;
        while (a < z && *a == ' ')
            a++;
        while (z > a && z[-1] == ' ')
            z--;
        snprintf(expr, sizeof(expr), "%.*s", (int)(z - a), a);
        if (!strncmp(expr, "secret.", 7)) {
            const char *s = vars_get(secrets, expr + 7);
            if (!s) {
                pt_errf(err, "no secret named %s in the account's credentials", expr + 7);
                goto fail;
            }
            pt_buf_append(&b, masked ? "***" : s, masked ? 3 : strlen(s));
        } else if (!strncmp(expr, "totp.", 5)) {
            const char *seed = vars_get(secrets, expr + 5);
            char code[7];
            if (!seed || pt_totp(seed, pt_wall_ms() / 1000, code) < 0) {
                pt_errf(err,
                        seed ? "the secret %s is not a base32 TOTP seed"
                             : "no TOTP seed named %s in the account's credentials",
                        expr + 5);
                goto fail;
            }
            pt_buf_append(&b, masked ? "***" : code, masked ? 3 : 6);
        } else if (!strncmp(expr, "text ", 5)) {
            char *t = text_of ? text_of(expr + 5, ud) : NULL;
            if (!t) {
                pt_errf(err, "{{text %s}}: no such element on the page", expr + 5);
                goto fail;
            }
            /* page text may echo a secret back: mask it for people */
            char *m = masked ? vars_mask(t, secrets) : NULL;
            pt_buf_append(&b, m ? m : t, strlen(m ? m : t));
            free(m);
            free(t);
        } else {
            const char *val = vars_get(v, expr);
            if (!val) {
                pt_errf(err, "{{%s}} has no value", expr);
                goto fail;
            }
            pt_buf_append(&b, val, strlen(val));
        }
        p = close + 2;
    }
    return pt_buf_take(&b);
fail:
    pt_buf_free(&b);
    return NULL;
}

static void mask_one(char **text, const char *secret)
{
    size_t sl = strlen(secret);
    if (sl < 3)
        return;
    char *p;
    while ((p = strstr(*text, secret)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + sl, strlen(p + sl) + 1);
    }
}

char *vars_mask(const char *text, const vars *secrets)
{
    char *out = strdup(text ? text : "");
    if (!out)
        return NULL;
    int64_t now = pt_wall_ms() / 1000;
    for (size_t i = 0; secrets && i < secrets->n; i++) {
        mask_one(&out, secrets->v[i].value);
        /* a TOTP code derived from a seed is a secret too, for its lifetime */
        for (int step = -2; step <= 1; step++) {
            char code[7];
            if (pt_totp(secrets->v[i].value, now + step * 30, code) == 0)
                mask_one(&out, code);
        }
    }
    return out;
}
