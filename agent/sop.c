/*
 * sop.c - lexer, parser and linter of the SOP language. See sop.h and
 * docs/sop.md.
 *
 * One line is one statement. Each line is cut into tokens (words, "strings",
 * /regexes/, numbers with units, NAME=VALUE pairs); a recursive-descent
 * parser builds steps, and blocks (if, whenever, in frame) run to `end`.
 * Nothing stops at the first problem: every error is collected with its
 * file, line and column, and the checks that need the whole tree (undefined
 * and unused variables, unreachable steps) run after parsing.
 */
#define _GNU_SOURCE
#include "agent/sop.h"
#include "util/fsutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <ctype.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SOP_BYTES (1u << 20)
#define MAX_USE_DEPTH 8
#define DEFAULT_TIMEOUT_MS 15000

/* ---- Diagnostics --------------------------------------------------------- */

static void diag(sop_diags *d, const char *file, int line, int col, int warning, const char *fmt,
                 ...) __attribute__((format(printf, 6, 7)));

static void diag(sop_diags *d, const char *file, int line, int col, int warning, const char *fmt,
                 ...)
{
    if (!d)
        return;
    sop_diag *n = realloc(d->items, (d->n + 1) * sizeof(*n));
    if (!n)
        return;
    d->items = n;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    n[d->n] = (sop_diag){strdup(file ? file : "-"), line, col, warning, msg};
    d->n++;
}

void sop_diags_print(const sop_diags *d, void *out_file)
{
    FILE *out = out_file;
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s:%d:%d: %s: %s\n", d->items[i].file, d->items[i].line, d->items[i].col,
                d->items[i].warning ? "warning" : "error",
                d->items[i].message ? d->items[i].message : "?");
}

void sop_diags_add(sop_diags *d, const char *file, int line, int col, int warning, const char *fmt,
                   ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag(d, file, line, col, warning, "%s", msg);
}

/* The suggestion a message carries: "did you mean 'x'?" gives x, "write:
 * LINE" gives LINE (the first, when several). A new string, or NULL. */
static char *suggestion_of(const char *msg)
{
    const char *p = msg ? strstr(msg, "did you mean ") : NULL;
    if (p) {
        p += 13;
        size_t skip = *p == '\'' ? 1 : 0, n = strcspn(p + skip, "'?)");
        return strndup(p + skip, n);
    }
    p = msg ? strstr(msg, "write: ") : NULL;
    if (p) {
        p += 7;
        const char *e = strstr(p, "); ");
        return strndup(p, e ? (size_t)(e - p) : strcspn(p, ")"));
    }
    return NULL;
}

void sop_diags_print_json(const sop_diags *d, void *out_file)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < d->n; i++) {
        const sop_diag *g = &d->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", g->file);
        cJSON_AddNumberToObject(o, "line", g->line);
        cJSON_AddNumberToObject(o, "column", g->col);
        cJSON_AddStringToObject(o, "severity", g->warning ? "warning" : "error");
        cJSON_AddStringToObject(o, "message", g->message ? g->message : "?");
        char *sug = suggestion_of(g->message);
        if (sug)
            cJSON_AddStringToObject(o, "suggestion", sug);
        else
            cJSON_AddNullToObject(o, "suggestion");
        free(sug);
        cJSON_AddItemToArray(arr, o);
    }
    char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    fprintf(out_file, "%s\n", text ? text : "[]");
    free(text);
    cJSON_Delete(arr);
}

size_t sop_diags_errors(const sop_diags *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += !d->items[i].warning;
    return n;
}

void sop_diags_free(sop_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].message);
    }
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

/* ---- Suggestions --------------------------------------------------------- */

static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The closest of words to w, if close enough to be a likely typo. */
static const char *suggest(const char *w, const char *const *words, size_t n)
{
    const char *best = NULL;
    int bd = 99;
    for (size_t i = 0; i < n; i++) {
        int d = distance(w, words[i]);
        if (d < bd) {
            bd = d;
            best = words[i];
        }
    }
    size_t len = strlen(w);
    return best && bd <= (len <= 4 ? 1 : 2) ? best : NULL;
}

const char *sop_suggest(const char *w, const char *const *words, size_t n)
{
    return suggest(w, words, n);
}

void sop_key_normalize(const char *in, size_t len, char *out, size_t outsz)
{
    size_t n = 0;
    while (len && isspace((unsigned char)*in))
        in++, len--;
    while (len && isspace((unsigned char)in[len - 1]))
        len--;
    for (size_t i = 0; i < len && n + 1 < outsz; i++) {
        char c = in[i];
        if (isspace((unsigned char)c) || c == '-' || c == '.')
            c = '_';
        else
            c = (char)tolower((unsigned char)c);
        if (c == '_' && n && out[n - 1] == '_')
            continue;
        out[n++] = c;
    }
    if (outsz)
        out[n] = '\0';
}

const sop_input *sop_input_for_key(const sop *s, const char *key, int *ignored)
{
    if (ignored)
        *ignored = 0;
    for (size_t i = 0; i < s->ninputs; i++) {
        if (!strcmp(s->inputs[i].name, key))
            return &s->inputs[i];
        for (size_t k = 0; k < s->inputs[i].naliases; k++)
            if (!strcmp(s->inputs[i].aliases[k], key))
                return &s->inputs[i];
    }
    for (size_t i = 0; ignored && i < s->nignored; i++)
        if (!strcmp(s->ignored[i], key))
            *ignored = 1;
    return NULL;
}

/* ---- Lexer --------------------------------------------------------------- */

typedef enum tok_kind { T_WORD, T_STRING, T_REGEX, T_NUMBER, T_PAIR, T_END } tok_kind;

typedef struct tok {
    tok_kind kind;
    char *text;  /* word, string contents (unescaped), regex body, number */
    char *text2; /* T_PAIR: the value */
    int col;
} tok;

typedef struct line {
    tok *toks;
    size_t n;
    int lineno;
    char *source;
} lexline;

typedef struct lexed {
    lexline *lines;
    size_t n;
} lexed;

static void push_tok(lexline *l, tok t)
{
    tok *n = realloc(l->toks, (l->n + 1) * sizeof(*n));
    if (!n) {
        free(t.text);
        free(t.text2);
        return;
    }
    l->toks = n;
    l->toks[l->n++] = t;
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* Reads a "string" starting at p (on the quote). Returns the char after the
 * closing quote, or NULL if the line ends first. */
static const char *read_string(const char *p, char **out)
{
    size_t cap = strlen(p) + 1, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            s[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else
            s[n++] = *p;
    }
    s[n] = '\0';
    if (*p != '"') {
        free(s);
        return NULL;
    }
    *out = s;
    return p + 1;
}

static void lex_line(const char *file, const char *text, size_t len, int lineno, lexline *l,
                     sop_diags *d)
{
    char *src = strndup(text, len);
    l->lineno = lineno;
    l->source = src;
    if (!src)
        return;
    const char *p = src;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p || *p == '#')
            break;
        int col = (int)(p - src) + 1;
        tok t = {T_WORD, NULL, NULL, col};
        if (*p == '"') {
            const char *e = read_string(p, &t.text);
            if (!e) {
                diag(d, file, lineno, col, 0, "this string has no closing quote");
                break;
            }
            t.kind = T_STRING;
            p = e;
        } else if (*p == '/') {
            const char *e = p + 1;
            while (*e && *e != '/') {
                if (*e == '\\' && e[1])
                    e++;
                e++;
            }
            if (*e != '/') {
                diag(d, file, lineno, col, 0, "this pattern has no closing /");
                break;
            }
            t.kind = T_REGEX;
            t.text = strndup(p + 1, (size_t)(e - p - 1));
            p = e + 1;
        } else if (word_char(*p)) {
            const char *e = p;
            while (word_char(*e))
                e++;
            t.text = strndup(p, (size_t)(e - p));
            t.kind = isdigit((unsigned char)*p) ? T_NUMBER : T_WORD;
            p = e;
            if (*p == '=') { /* NAME=VALUE, as in value maps */
                p++;
                t.kind = T_PAIR;
                if (*p == '"') {
                    const char *s = read_string(p, &t.text2);
                    if (!s) {
                        diag(d, file, lineno, (int)(p - src) + 1, 0,
                             "this string has no closing quote");
                        free(t.text);
                        break;
                    }
                    p = s;
                } else {
                    const char *v = p;
                    while (*p && !isspace((unsigned char)*p))
                        p++;
                    t.text2 = strndup(v, (size_t)(p - v));
                }
            }
        } else {
            diag(d, file, lineno, col, 0, "unexpected '%c'", *p);
            break;
        }
        push_tok(l, t);
    }
}

static void lex(const char *file, const char *text, lexed *out, sop_diags *d)
{
    int lineno = 1;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        lexline l = {0};
        lex_line(file, p, len, lineno, &l, d);
        if (l.n) {
            lexline *n = realloc(out->lines, (out->n + 1) * sizeof(*n));
            if (n) {
                out->lines = n;
                out->lines[out->n++] = l;
            }
        } else {
            free(l.toks);
            free(l.source);
        }
        lineno++;
        if (!e)
            break;
        p = e + 1;
    }
}

static void lexed_free(lexed *x)
{
    for (size_t i = 0; i < x->n; i++) {
        for (size_t j = 0; j < x->lines[i].n; j++) {
            free(x->lines[i].toks[j].text);
            free(x->lines[i].toks[j].text2);
        }
        free(x->lines[i].toks);
        free(x->lines[i].source);
    }
    free(x->lines);
}

/* ---- Parser state -------------------------------------------------------- */

typedef struct parser {
    const char *file;
    const char *dir;
    lexed lx;
    size_t li; /* current lexline */
    size_t ti; /* current token in it */
    sop *s;
    sop_diags *d;
    int depth;          /* of `use` */
    sop_step *use;      /* the `use` step whose file this is (NULL: the top) */
    size_t failed_line; /* 1 + the line that already has an error: one per line */
} parser;

static lexline *cur_line(parser *p)
{
    return p->li < p->lx.n ? &p->lx.lines[p->li] : NULL;
}

static tok *peek(parser *p)
{
    lexline *l = cur_line(p);
    return l && p->ti < l->n ? &l->toks[p->ti] : NULL;
}

static tok *next(parser *p)
{
    tok *t = peek(p);
    if (t)
        p->ti++;
    return t;
}

static int end_col(parser *p)
{
    lexline *l = cur_line(p);
    return l ? (int)strlen(l->source) + 1 : 1;
}

static void err(parser *p, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err(parser *p, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lexline *l = cur_line(p);
    if (p->failed_line == p->li + 1)
        return; /* the first error on a line is the useful one */
    p->failed_line = p->li + 1;
    diag(p->d, p->file, l ? l->lineno : 0, col, 0, "%s", msg);
}

static int is_word(tok *t, const char *w)
{
    return t && t->kind == T_WORD && strcmp(t->text, w) == 0;
}

static int accept_word(parser *p, const char *w)
{
    if (is_word(peek(p), w)) {
        p->ti++;
        return 1;
    }
    return 0;
}

/* An error for what is left on the line, if anything. */
static void expect_eol(parser *p, const char *after)
{
    tok *t = peek(p);
    if (t)
        err(p, t->col, "unexpected '%s' after %s", t->text ? t->text : "?", after);
}

/* ---- Regexes and templates ------------------------------------------------ */

static void check_regex(parser *p, tok *t)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)t->text, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (re) {
        pcre2_code_free(re);
        return;
    }
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof(msg));
    err(p, t->col + 1 + (int)off, "bad pattern: %s", (char *)msg);
}

/* Checks the {{...}} in a template string. */
static void check_template(parser *p, const char *text, int col)
{
    for (const char *q = text; (q = strstr(q, "{{")) != NULL;) {
        const char *e = strstr(q + 2, "}}");
        if (!e) {
            err(p, col + 1 + (int)(q - text), "this {{ has no closing }}");
            return;
        }
        const char *in = q + 2;
        while (*in == ' ')
            in++;
        if (in == e)
            err(p, col + 1 + (int)(q - text), "empty {{}}");
        q = e + 2;
    }
}

/* ---- Locators, values, conditions ----------------------------------------- */

static const char *const role_words[] = {
    "button", "link",     "checkbox", "radio",  "textbox", "combobox", "heading", "tab",
    "option", "menuitem", "listbox",  "dialog", "row",     "cell",     "img",     "searchbox"};

static int role_word(const char *w)
{
    for (size_t i = 0; i < sizeof(role_words) / sizeof(role_words[0]); i++)
        if (strcmp(w, role_words[i]) == 0)
            return 1;
    return 0;
}

/* Does the next token start a locator? */
static int starts_locator(tok *t)
{
    if (!t)
        return 0;
    if (t->kind == T_STRING)
        return 1;
    if (t->kind != T_WORD)
        return 0;
    return !strcmp(t->text, "css") || !strcmp(t->text, "xpath") || !strcmp(t->text, "text") ||
           !strcmp(t->text, "label") || !strcmp(t->text, "role") || role_word(t->text);
}

static int parse_locator(parser *p, sop_locator *loc, const char *what);

/* `LOCATOR in LOCATOR`: the scope (a row, a form, a dialog) the element is
 * looked for in; scopes nest (cell "Status" in row "Gold" in css "#plans"). */
static int parse_within(parser *p, sop_locator *loc, const char *what)
{
    tok *in = peek(p);
    if (!is_word(in, "in"))
        return 0;
    /* `in frame` (a condition's) and a bare `in`: not ours */
    tok *k = p->ti + 1 < cur_line(p)->n ? &cur_line(p)->toks[p->ti + 1] : NULL;
    if (!k || is_word(k, "frame"))
        return 0;
    if (!starts_locator(k)) {
        const char *g = k->kind == T_WORD ? suggest(k->text, role_words,
                                                    sizeof(role_words) / sizeof(role_words[0]))
                                          : NULL;
        err(p, k->col, "'%s' is not a kind of element%s%s%s", k->text ? k->text : "?",
            g ? " (did you mean '" : "", g ? g : "", g ? "'?)" : "");
        return -1;
    }
    p->ti++;
    sop_locator *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    if (parse_locator(p, w, what) < 0) {
        free(w);
        return -1;
    }
    loc->within = w;
    return 0;
}

static int parse_locator(parser *p, sop_locator *loc, const char *what)
{
    tok *t = next(p);
    memset(loc, 0, sizeof(*loc));
    if (!t) {
        err(p, end_col(p), "%s needs an element: \"css\", label \"...\", button \"...\", ...",
            what);
        return -1;
    }
    loc->line = cur_line(p)->lineno;
    loc->col = t->col;
    if (t->kind == T_STRING) {
        loc->kind = SOP_LOC_CSS;
    } else if (t->kind == T_WORD) {
        if (!strcmp(t->text, "css"))
            loc->kind = SOP_LOC_CSS;
        else if (!strcmp(t->text, "xpath"))
            loc->kind = SOP_LOC_XPATH;
        else if (!strcmp(t->text, "text"))
            loc->kind = SOP_LOC_TEXT;
        else if (!strcmp(t->text, "label"))
            loc->kind = SOP_LOC_LABEL;
        else if (!strcmp(t->text, "role")) {
            tok *r = next(p);
            if (!r || r->kind != T_WORD) {
                err(p, r ? r->col : end_col(p), "role needs a role name, as in role tab \"Files\"");
                return -1;
            }
            loc->kind = SOP_LOC_ROLE;
            loc->role = strdup(r->text);
        } else if (role_word(t->text)) {
            loc->kind = SOP_LOC_ROLE;
            loc->role = strdup(t->text);
        } else {
            const char *s =
                suggest(t->text, role_words, sizeof(role_words) / sizeof(role_words[0]));
            err(p, t->col, "'%s' is not a kind of element%s%s%s", t->text,
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
            return -1;
        }
        t = next(p);
        if (!t || t->kind != T_STRING) {
            err(p, t ? t->col : end_col(p), "%s needs a \"quoted\" %s", what,
                loc->kind == SOP_LOC_ROLE ? "name" : "selector or text");
            free(loc->role);
            loc->role = NULL;
            return -1;
        }
    } else {
        err(p, t->col, "%s needs an element, not '%s'", what, t->text);
        return -1;
    }
    loc->value = strdup(t->text);
    loc->value_col = t->col;
    check_template(p, t->text, t->col);
    /* which one, when several match */
    tok *m = peek(p);
    if (is_word(m, "first")) {
        loc->nth = 1;
        p->ti++;
    } else if (is_word(m, "last")) {
        loc->nth = -1;
        p->ti++;
    } else if (is_word(m, "nth")) {
        p->ti++;
        tok *n = next(p);
        if (!n || n->kind != T_NUMBER || atoi(n->text) < 1) {
            err(p, n ? n->col : end_col(p), "nth needs a number from 1 up");
            return -1;
        }
        loc->nth = atoi(n->text);
    }
    return parse_within(p, loc, what);
}

static void locator_free(sop_locator *l)
{
    free(l->role);
    free(l->value);
    if (l->within) {
        locator_free(l->within);
        free(l->within);
    }
    memset(l, 0, sizeof(*l));
}

/* A variable name, or a "template". */
static int parse_value(parser *p, sop_value *v, const char *what)
{
    tok *t = next(p);
    memset(v, 0, sizeof(*v));
    if (!t || (t->kind != T_STRING && t->kind != T_WORD && t->kind != T_NUMBER)) {
        err(p, t ? t->col : end_col(p), "%s needs a value: a variable or a \"text\"", what);
        return -1;
    }
    v->is_var = t->kind == T_WORD;
    v->text = strdup(t->text);
    v->line = cur_line(p)->lineno;
    v->col = t->col;
    if (t->kind == T_STRING)
        check_template(p, t->text, t->col);
    return 0;
}

static void cond_free(sop_cond *c)
{
    if (!c)
        return;
    locator_free(&c->loc);
    if (c->frame) {
        locator_free(c->frame);
        free(c->frame);
    }
    free(c->text);
    free(c->regex);
    free(c->value);
    cond_free(c->a);
    cond_free(c->b);
    free(c);
}

/* The rest of a text condition, from its word on: contains "x", is "x",
 * matches /re/, each with `exactly` (before or after the text) when case
 * counts. */
static int parse_text_test(parser *p, sop_cond *c)
{
    tok *k = next(p);
    c->op = is_word(k, "matches") ? SOP_TEXT_MATCHES
            : is_word(k, "is")    ? SOP_TEXT_IS
                                  : SOP_TEXT_CONTAINS;
    c->exact = accept_word(p, "exactly");
    tok *s = next(p);
    int want = c->op == SOP_TEXT_MATCHES ? T_REGEX : T_STRING;
    if (!s || (int)s->kind != want) {
        err(p, s ? s->col : end_col(p), "%s needs %s", k->text,
            want == T_REGEX ? "a /pattern/, as in matches /^active$/" : "a \"quoted\" text");
        return -1;
    }
    if (want == T_REGEX) {
        c->regex = strdup(s->text);
        check_regex(p, s);
    } else
        c->text = strdup(s->text);
    if (accept_word(p, "exactly"))
        c->exact = 1;
    return 0;
}

/* `path contains "x"` and `dialog contains "x"` (the word, then contains:
 * `dialog "Name"` stays a locator). 1 when the line says one (read into c,
 * or an error reported: *bad), else 0. */
static int parse_cond_more(parser *p, sop_cond *c, int *bad)
{
    tok *t = peek(p);
    lexline *l = cur_line(p);
    if (!(is_word(t, "path") || is_word(t, "dialog")) || p->ti + 1 >= l->n ||
        !is_word(&l->toks[p->ti + 1], "contains"))
        return 0;
    c->kind = is_word(t, "path") ? SOP_COND_PATH : SOP_COND_DIALOG;
    p->ti += 2;
    tok *s = next(p);
    if (!s || s->kind != T_STRING) {
        err(p, s ? s->col : end_col(p), "contains needs a \"quoted\" text");
        *bad = 1;
        return 1;
    }
    c->text = strdup(s->text);
    check_template(p, s->text, s->col);
    return 1;
}

static sop_cond *parse_cond1(parser *p, const char *what)
{
    tok *t = peek(p);
    sop_cond *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->line = cur_line(p) ? cur_line(p)->lineno : 0;
    c->col = t ? t->col : end_col(p);
    if (!t) {
        err(p, end_col(p), "%s needs a condition: visible \"...\", a variable, url contains ...",
            what);
        goto fail;
    }
    if (accept_word(p, "not")) {
        c->kind = SOP_COND_NOT;
        if (!(c->a = parse_cond1(p, what)))
            goto fail;
        return c;
    }
    int bad = 0;
    if (parse_cond_more(p, c, &bad))
        return bad ? (cond_free(c), NULL) : c;
    if (accept_word(p, "visible") || accept_word(p, "hidden")) {
        c->kind = strcmp(t->text, "hidden") == 0 ? SOP_COND_HIDDEN : SOP_COND_VISIBLE;
        if (parse_locator(p, &c->loc, what) < 0)
            goto fail;
        return c;
    }
    if (accept_word(p, "page")) {
        c->kind = SOP_COND_PAGE_TEXT;
        if (!is_word(peek(p), "contains")) {
            err(p, peek(p) ? peek(p)->col : end_col(p), "write page contains \"text\"");
            goto fail;
        }
        if (parse_text_test(p, c) < 0)
            goto fail;
        return c;
    }
    if (accept_word(p, "url")) {
        tok *k = next(p), *s = next(p);
        c->kind = SOP_COND_URL;
        if (k && is_word(k, "contains") && s && s->kind == T_STRING)
            c->text = strdup(s->text);
        else if (k && is_word(k, "matches") && s && s->kind == T_REGEX) {
            c->regex = strdup(s->text);
            check_regex(p, s);
        } else {
            err(p, k ? k->col : end_col(p), "write url contains \"...\" or url matches /.../");
            goto fail;
        }
        return c;
    }
    if (starts_locator(t)) {
        c->kind = SOP_COND_VISIBLE;
        if (parse_locator(p, &c->loc, what) < 0)
            goto fail;
        tok *k = peek(p);
        if (is_word(k, "contains") || is_word(k, "is") || is_word(k, "matches")) {
            c->kind = SOP_COND_TEXT;
            if (parse_text_test(p, c) < 0)
                goto fail;
        }
        return c;
    }
    if (t->kind == T_WORD) {
        p->ti++;
        c->kind = SOP_COND_VAR;
        c->text = strdup(t->text);
        if (accept_word(p, "is")) {
            tok *s = next(p);
            if (!s || s->kind != T_STRING) {
                err(p, s ? s->col : end_col(p), "is needs a \"quoted\" value");
                goto fail;
            }
            c->kind = SOP_COND_VAR_IS;
            c->value = strdup(s->text);
        }
        return c;
    }
    err(p, t->col, "%s needs a condition, not '%s'", what, t->text);
fail:
    cond_free(c);
    return NULL;
}

/* COND in frame LOCATOR: the condition is looked at inside that frame
 * (one wait can watch the top page and a frame together). -1 on error. */
static int parse_cond_frame(parser *p, sop_cond *c)
{
    lexline *l = cur_line(p);
    if (!is_word(peek(p), "in") || p->ti + 1 >= l->n || !is_word(&l->toks[p->ti + 1], "frame"))
        return 0;
    p->ti += 2;
    if (!(c->frame = calloc(1, sizeof(*c->frame))))
        return -1;
    return parse_locator(p, c->frame, "in frame");
}

/* Conditions joined by `and`, each perhaps `in frame LOCATOR`. */
static sop_cond *parse_cond_and(parser *p, const char *what)
{
    sop_cond *c = parse_cond1(p, what);
    if (c && parse_cond_frame(p, c) < 0) {
        cond_free(c);
        return NULL;
    }
    while (c && is_word(peek(p), "and")) {
        p->ti++;
        sop_cond *o = calloc(1, sizeof(*o));
        sop_cond *b = parse_cond1(p, what);
        if (b && parse_cond_frame(p, b) < 0) {
            cond_free(b);
            b = NULL;
        }
        if (!o || !b) {
            free(o);
            cond_free(b);
            cond_free(c);
            return NULL;
        }
        *o = (sop_cond){.kind = SOP_COND_AND, .a = c, .b = b, .line = c->line, .col = c->col};
        c = o;
    }
    return c;
}

static sop_cond *parse_cond(parser *p, const char *what)
{
    sop_cond *c = parse_cond_and(p, what);
    while (c && is_word(peek(p), "or")) {
        p->ti++;
        sop_cond *o = calloc(1, sizeof(*o));
        sop_cond *b = parse_cond_and(p, what);
        if (!o || !b) {
            free(o);
            cond_free(b);
            cond_free(c);
            return NULL;
        }
        o->kind = SOP_COND_OR;
        o->a = c;
        o->b = b;
        o->line = c->line;
        o->col = c->col;
        c = o;
    }
    return c;
}

/* "30s", "500ms", "2m" -> milliseconds, or -1. */
static int duration_ms(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (v <= 0 || v > 3600000)
        return -1;
    if (!strcmp(end, "ms"))
        return (int)v;
    if (!strcmp(end, "s") || !*end)
        return (int)(v * 1000);
    if (!strcmp(end, "m") && v <= 60)
        return (int)(v * 60000);
    return -1;
}

/* An optional trailing `timeout 10s`. */
static void parse_step_timeout(parser *p, sop_step *st)
{
    if (!accept_word(p, "timeout"))
        return;
    tok *t = next(p);
    int ms = t && t->kind == T_NUMBER ? duration_ms(t->text) : -1;
    if (ms < 0)
        err(p, t ? t->col : end_col(p), "timeout needs a duration such as 10s or 500ms");
    else
        st->timeout_ms = ms;
}

/* ---- Steps --------------------------------------------------------------- */

static const char *const step_names[] = {
    [SOP_GOTO] = "goto",
    [SOP_CLICK] = "click",
    [SOP_FILL] = "fill",
    [SOP_TYPE] = "type",
    [SOP_PRESS] = "press",
    [SOP_SELECT] = "select",
    [SOP_CHOOSE] = "choose",
    [SOP_CHECK] = "check",
    [SOP_UNCHECK] = "uncheck",
    [SOP_UPLOAD] = "upload",
    [SOP_WAIT] = "wait",
    [SOP_EXTRACT] = "extract",
    [SOP_EXPECT] = "expect",
    [SOP_IF] = "if",
    [SOP_WHENEVER] = "whenever",
    [SOP_IN_FRAME] = "in",
    [SOP_SCREENSHOT] = "screenshot",
    [SOP_ASK] = "ask",
    [SOP_REVIEW] = "review",
    [SOP_COMMIT] = "commit",
    [SOP_FINISH] = "finish",
    [SOP_USE] = "use",
    [SOP_REPEAT] = "repeat",
    [SOP_ON_DIALOG] = "on",
};

/* Everything that may begin a line, for "did you mean". */
static const char *const line_words[] = {
    "goto",     "click",   "fill",       "type",    "press",   "select", "choose", "check",
    "uncheck",  "upload",  "wait",       "extract", "expect",  "if",     "else",   "end",
    "whenever", "in",      "screenshot", "ask",     "review",  "commit", "finish", "use",
    "sop",      "summary", "input",      "timeout", "session", "files",  "repeat", "on"};

static int block_keeps_session(const sop_block *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->steps[i].kind == SOP_USE || block_keeps_session(&b->steps[i].body) ||
            block_keeps_session(&b->steps[i].otherwise))
            return 1;
    return 0;
}

int sop_keeps_session(const sop *s)
{
    return s && block_keeps_session(&s->steps);
}

const char *sop_step_name(sop_step_kind k)
{
    return k <= SOP_USE ? step_names[k] : "?";
}

static void block_free(sop_block *b);

static void step_free(sop_step *st)
{
    free(st->file);
    free(st->source);
    locator_free(&st->loc);
    free(st->value.text);
    free(st->name);
    free(st->regex);
    free(st->attribute);
    free(st->file_name);
    cond_free(st->cond);
    block_free(&st->body);
    block_free(&st->otherwise);
}

static void block_free(sop_block *b)
{
    for (size_t i = 0; i < b->n; i++)
        step_free(&b->steps[i]);
    free(b->steps);
    b->steps = NULL;
    b->n = 0;
}

static sop_step *block_add(sop_block *b)
{
    sop_step *n = realloc(b->steps, (b->n + 1) * sizeof(*n));
    if (!n)
        return NULL;
    b->steps = n;
    memset(&n[b->n], 0, sizeof(*n));
    return &n[b->n++];
}

static void parse_block(parser *p, sop_block *b, const char *opener, int open_line, int allow_else,
                        int *saw_else);
static int parse_use(parser *p, tok *name, sop_block *into);

/* Appends a task data key, normalised, to a list (alias or ignore). */
static void push_key(char ***list, size_t *n, const char *key)
{
    char norm[128];
    sop_key_normalize(key, strlen(key), norm, sizeof(norm));
    char **l = realloc(*list, (*n + 1) * sizeof(*l));
    if (!l)
        return;
    *list = l;
    if ((l[*n] = strdup(norm)) != NULL)
        (*n)++;
}

static int input_option_word(const tok *t)
{
    static const char *const opts[] = {"required", "optional", "date", "default", "map", "alias"};
    for (size_t i = 0; t->kind == T_WORD && i < sizeof(opts) / sizeof(*opts); i++)
        if (!strcmp(t->text, opts[i]))
            return 1;
    return 0;
}

/* input NAME ... alias A B "Other Name": keys a client may send for it. */
static void parse_alias(parser *p, sop_input *in, const tok *at)
{
    size_t before = in->naliases;
    for (tok *t;
         (t = peek(p)) && (t->kind == T_WORD || t->kind == T_STRING) && !input_option_word(t);) {
        p->ti++;
        push_key(&in->aliases, &in->naliases, t->text);
    }
    if (in->naliases == before)
        err(p, at->col, "alias needs the other names of the input, as in alias icd10 icd");
}

/* ignore K...: task data keys the SOP deliberately leaves unused. */
static void dir_ignore(parser *p, sop_block *b)
{
    (void)b;
    int col = peek(p) ? peek(p)->col : end_col(p);
    size_t before = p->s->nignored;
    for (tok *t; (t = next(p));) {
        if (t->kind != T_WORD && t->kind != T_STRING) {
            err(p, t->col, "ignore takes task data keys, as in ignore notes \"Office ID\"");
            return;
        }
        push_key(&p->s->ignored, &p->s->nignored, t->text);
    }
    if (p->s->nignored == before)
        err(p, col, "ignore needs the task data keys to leave unused, as in ignore notes");
}

static void parse_input(parser *p)
{
    tok *name = next(p);
    if (!name || name->kind != T_WORD) {
        err(p, name ? name->col : end_col(p), "input needs a name, as in input member_id required");
        return;
    }
    for (size_t i = 0; i < p->s->ninputs; i++)
        if (!strcmp(p->s->inputs[i].name, name->text)) {
            err(p, name->col, "input %s is declared twice (first at line %d)", name->text,
                p->s->inputs[i].line);
            return;
        }
    sop_input in = {0};
    in.name = strdup(name->text);
    in.line = cur_line(p)->lineno;
    in.col = name->col;
    for (tok *t; (t = next(p));) {
        if (is_word(t, "required") || is_word(t, "optional")) {
            in.required = is_word(t, "required");
        } else if (is_word(t, "date")) {
            in.type = SOP_IN_DATE;
        } else if (t->kind == T_REGEX) {
            free(in.pattern);
            in.pattern = strdup(t->text);
            check_regex(p, t);
        } else if (is_word(t, "default")) {
            tok *v = next(p);
            if (!v || (v->kind != T_STRING && v->kind != T_NUMBER && v->kind != T_WORD)) {
                err(p, v ? v->col : end_col(p), "default needs a value, as in default \"PPO\"");
                break;
            }
            free(in.default_value);
            in.default_value = strdup(v->text);
        } else if (is_word(t, "alias")) {
            parse_alias(p, &in, t);
        } else if (is_word(t, "map")) {
            tok *pair;
            while ((pair = peek(p)) && pair->kind == T_PAIR) {
                p->ti++;
                sop_map_entry *m = realloc(in.map, (in.nmap + 1) * sizeof(*m));
                if (!m)
                    break;
                in.map = m;
                in.map[in.nmap].from = strdup(pair->text);
                in.map[in.nmap].to = strdup(pair->text2 ? pair->text2 : "");
                in.nmap++;
            }
            if (!in.nmap)
                err(p, t->col, "map needs pairs, as in map home=12 office=11");
        } else {
            static const char *const opts[] = {"required", "optional", "date",
                                               "default",  "map",      "alias"};
            const char *s = t->kind == T_WORD ? suggest(t->text, opts, 6) : NULL;
            err(p, t->col, "input %s: unknown option '%s'%s%s%s", in.name, t->text ? t->text : "?",
                s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
        }
    }
    sop_input *n = realloc(p->s->inputs, (p->s->ninputs + 1) * sizeof(*n));
    if (!n) {
        free(in.name);
        return;
    }
    p->s->inputs = n;
    p->s->inputs[p->s->ninputs++] = in;
}

/* ---- Statements -----------------------------------------------------------
 * A line is a header directive (sop, summary, input, timeout, use), a step,
 * or `end` / `else`. Each directive and each step kind has its own parser
 * below, found through a table; parse_statement only dispatches. */

static void dir_sop(parser *p, sop_block *b)
{
    (void)b;
    tok *n = next(p), *title = next(p);
    if (!n || n->kind != T_WORD)
        err(p, n ? n->col : end_col(p), "sop needs a name, as in sop submit_claim \"Title\"");
    else if (p->depth == 0) { /* a used file's header describes that file only */
        free(p->s->name);
        p->s->name = strdup(n->text);
        if (title && title->kind == T_STRING) {
            free(p->s->title);
            p->s->title = strdup(title->text);
        }
    }
}

static void dir_summary(parser *p, sop_block *b)
{
    (void)b;
    tok *s = next(p);
    if (!s || s->kind != T_STRING)
        err(p, s ? s->col : end_col(p), "summary needs a \"quoted\" text");
    else if (p->depth == 0) {
        free(p->s->summary);
        p->s->summary = strdup(s->text);
    }
    expect_eol(p, "the summary");
}

static void dir_input(parser *p, sop_block *b)
{
    (void)b;
    parse_input(p);
}

static void dir_timeout(parser *p, sop_block *b)
{
    (void)b;
    tok *d = next(p);
    int ms = d && d->kind == T_NUMBER ? duration_ms(d->text) : -1;
    if (ms < 0)
        err(p, d ? d->col : end_col(p), "timeout needs a duration such as 20s");
    else if (p->depth == 0)
        p->s->timeout_ms = ms;
}

static void dir_use(parser *p, sop_block *b)
{
    tok *n = next(p);
    if (!n || n->kind != T_WORD)
        err(p, n ? n->col : end_col(p), "use needs the name of an SOP file, as in use login");
    else
        parse_use(p, n, b);
    expect_eol(p, "use");
}

/* session "URL" signed in if COND: how to tell that a kept browser session
 * is still signed in (docs/sop.md, "Kept sessions"). It describes the file it
 * is written in; a file that others `use` then runs as one step that a kept
 * session may skip. */
static void dir_session(parser *p, sop_block *b)
{
    (void)b;
    tok *t = peek(p);
    sop_value url = {0};
    if (parse_value(p, &url, "session") < 0 || url.is_var) {
        err(p, t ? t->col : end_col(p),
            "session needs the \"URL\" to open, as in session \"{{portal}}/home\" signed in "
            "if url contains \"/home\"");
        free(url.text);
        return;
    }
    if (!accept_word(p, "signed") || !accept_word(p, "in") || !accept_word(p, "if")) {
        err(p, peek(p) ? peek(p)->col : end_col(p), "write session \"URL\" signed in if CONDITION");
        free(url.text);
        return;
    }
    sop_cond *c = parse_cond(p, "session ... signed in if");
    expect_eol(p, "session");
    sop_step *use = p->use;
    if (use && use->value.text) {
        err(p, t->col, "session is declared twice in this file (first at line %d)",
            use->value.line);
        use = NULL;
    }
    if (!use || !c) { /* the top file: nothing uses it, so nothing is kept */
        free(url.text);
        cond_free(c);
        return;
    }
    use->value = url;
    use->cond = c;
}

/* files required N [TYPE ...]: what a task must bring, checked when it is
 * created (docs/sop.md, "Files"). */
static void dir_files(parser *p, sop_block *b)
{
    (void)b;
    int req = accept_word(p, "required");
    tok *n = req ? next(p) : peek(p);
    if (!req || !n || n->kind != T_NUMBER || strspn(n->text, "0123456789") != strlen(n->text) ||
        atoi(n->text) < 1 || atoi(n->text) > 100) {
        err(p, n ? n->col : end_col(p),
            "write files required N [TYPE ...], as in files required 1 pdf (N from 1 to 100)");
        return;
    }
    if (p->depth == 0)
        p->s->files_min = atoi(n->text);
    for (tok *t; (t = peek(p)) && t->kind == T_WORD;) {
        next(p);
        if (p->depth)
            continue;
        char **v = realloc(p->s->file_types, (p->s->nfile_types + 1) * sizeof(*v));
        if (!v)
            return;
        p->s->file_types = v;
        char *type = strdup(t->text);
        for (char *c = type; c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
        v[p->s->nfile_types++] = type;
    }
    expect_eol(p, "files required N TYPE ...");
}

static const struct directive {
    const char *word;
    void (*parse)(parser *p, sop_block *b);
} directives[] = {
    {"sop", dir_sop}, {"summary", dir_summary}, {"input", dir_input}, {"timeout", dir_timeout},
    {"use", dir_use}, {"session", dir_session}, {"files", dir_files},
    {"ignore", dir_ignore},
};

/* Each step kind's parser reads the rest of its line into st (w: the word
 * that named it). */

static void st_value(parser *p, sop_step *st, const char *w)
{
    parse_value(p, &st->value, w); /* goto, review */
}

static void st_locator(parser *p, sop_step *st, const char *w)
{
    st->has_loc = parse_locator(p, &st->loc, w) == 0; /* click, check, uncheck */
}

static void st_locator_with(parser *p, sop_step *st, const char *w)
{
    /* fill, type, select, choose */
    if (!(st->has_loc = parse_locator(p, &st->loc, w) == 0))
        return;
    int with = accept_word(p, "with");
    if (!with && (st->kind == SOP_FILL || st->kind == SOP_TYPE) && peek(p))
        err(p, peek(p)->col, "write %s ... with VALUE", w);
    else
        parse_value(p, &st->value, w);
    if (st->kind == SOP_FILL || st->kind == SOP_TYPE)
        st->sensitive = accept_word(p, "sensitive"); /* masked in screenshots */
}

/* press "Key": a named key, one character, or a template whose value is
 * typed character by character. A literal of several characters that is not
 * a key's name is a typo the linter can catch. */
static void check_press_key(parser *p, const tok *k)
{
    static const char *const keys[] = {"Enter",   "Tab",       "Escape",    "Backspace",  "Delete",
                                       "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home",
                                       "End",     "PageUp",    "PageDown",  "Space"};
    const unsigned char *t = (const unsigned char *)k->text;
    size_t one = t[0] >= 0xF0 ? 4 : t[0] >= 0xE0 ? 3 : t[0] >= 0xC0 ? 2 : 1;
    if (!t[0]) {
        err(p, k->col, "press needs a key, not an empty string");
        return;
    }
    if (strstr(k->text, "{{") || strlen(k->text) == one)
        return;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcasecmp(k->text, keys[i]))
            return;
    const char *g = suggest(k->text, keys, sizeof(keys) / sizeof(keys[0]));
    err(p, k->col,
        "unknown key \"%s\"%s%s%s (a key's name such as Enter or Tab, one character, or "
        "a \"{{template}}\" to type)",
        k->text, g ? " (did you mean '" : "", g ? g : "", g ? "'?)" : "");
}

static void st_press(parser *p, sop_step *st, const char *w)
{
    (void)w;
    tok *k = next(p);
    if (!k || k->kind != T_STRING) {
        err(p, k ? k->col : end_col(p), "press needs a \"Key\", as in press \"Enter\"");
        return;
    }
    st->value = (sop_value){0, strdup(k->text), st->line, k->col};
    check_template(p, k->text, k->col);
    check_press_key(p, k);
}

static void st_upload(parser *p, sop_step *st, const char *w)
{
    if (!(st->has_loc = parse_locator(p, &st->loc, w) == 0))
        return;
    accept_word(p, "with");
    if (accept_word(p, "files"))
        return;
    if (accept_word(p, "file")) {
        tok *f = next(p);
        if (!f || f->kind != T_STRING)
            err(p, f ? f->col : end_col(p), "file needs a \"name\" of a task file");
        else
            st->file_name = strdup(f->text);
        return;
    }
    err(p, peek(p) ? peek(p)->col : end_col(p),
        "write upload ... with files, or with file \"name.pdf\"");
}

static void st_wait(parser *p, sop_step *st, const char *w)
{
    (void)w;
    if (!accept_word(p, "for")) {
        err(p, peek(p) ? peek(p)->col : end_col(p), "write wait for CONDITION");
        return;
    }
    st->cond = parse_cond(p, "wait for");
}

static void st_expect(parser *p, sop_step *st, const char *w)
{
    (void)w;
    st->cond = parse_cond(p, "expect");
    if (!st->cond)
        return;
    if (!accept_word(p, "else")) {
        err(p, peek(p) ? peek(p)->col : end_col(p),
            "write expect CONDITION else \"what went wrong\"");
        return;
    }
    parse_value(p, &st->value, "expect ... else");
}

/* `extract NAME from page /re/`: 1 when the line says page (read), else 0. */
static int parse_extract_page(parser *p, sop_step *st)
{
    tok *t = peek(p);
    if (!is_word(t, "page"))
        return 0;
    p->ti++;
    tok *re = next(p);
    if (!re || re->kind != T_REGEX) {
        err(p, re ? re->col : end_col(p), "write extract NAME from page /regex/");
        return 1;
    }
    st->from_page = 1;
    st->regex = strdup(re->text);
    check_regex(p, re);
    return 1;
}

static void st_extract(parser *p, sop_step *st, const char *w)
{
    (void)w;
    tok *n = next(p);
    if (!n || n->kind != T_WORD) {
        err(p, n ? n->col : end_col(p),
            "extract needs a variable name, as in extract ref from \".id\"");
        return;
    }
    st->name = strdup(n->text);
    if (!accept_word(p, "from")) {
        err(p, peek(p) ? peek(p)->col : end_col(p), "write extract NAME from ELEMENT");
        return;
    }
    if (parse_extract_page(p, st))
        return;
    if (!(st->has_loc = parse_locator(p, &st->loc, "extract") == 0))
        return;
    if (accept_word(p, "attribute")) {
        tok *a = next(p);
        if (!a || a->kind != T_STRING)
            err(p, a ? a->col : end_col(p), "attribute needs a \"name\"");
        else
            st->attribute = strdup(a->text);
    } else if (accept_word(p, "value"))
        st->attribute = strdup("value");
    tok *re = peek(p);
    if (re && re->kind == T_REGEX) {
        p->ti++;
        st->regex = strdup(re->text);
        check_regex(p, re);
    }
}

static void st_cond(parser *p, sop_step *st, const char *w)
{
    st->cond = parse_cond(p, w); /* if, whenever */
}

static void st_in_frame(parser *p, sop_step *st, const char *w)
{
    (void)w;
    if (!accept_word(p, "frame")) {
        err(p, peek(p) ? peek(p)->col : end_col(p), "write in frame ELEMENT");
        return;
    }
    st->has_loc = parse_locator(p, &st->loc, "in frame") == 0;
}

static void st_screenshot(parser *p, sop_step *st, const char *w)
{
    (void)w;
    tok *n = peek(p);
    if (n && n->kind == T_STRING) {
        p->ti++;
        st->name = strdup(n->text);
    }
}

static void st_ask(parser *p, sop_step *st, const char *w)
{
    (void)w;
    tok *n = next(p), *q = next(p);
    if (!n || n->kind != T_WORD || !q || q->kind != T_STRING)
        err(p, n ? n->col : end_col(p), "write ask NAME \"question for a person\"");
    else {
        st->name = strdup(n->text);
        st->value = (sop_value){0, strdup(q->text), st->line, q->col};
    }
}

static void st_nothing(parser *p, sop_step *st, const char *w)
{
    (void)p, (void)st, (void)w; /* commit */
}

static void st_finish(parser *p, sop_step *st, const char *w)
{
    (void)w;
    static const char *const statuses[] = {"completed", "completed_with_issues", "failed"};
    tok *s = next(p);
    if (!s || s->kind != T_WORD) {
        err(p, s ? s->col : end_col(p),
            "finish needs a status: completed, "
            "completed_with_issues or failed");
        return;
    }
    int ok = 0;
    for (int i = 0; i < 3; i++)
        ok |= !strcmp(s->text, statuses[i]);
    if (!ok) {
        const char *g = suggest(s->text, statuses, 3);
        err(p, s->col, "'%s' is not a final status%s%s%s", s->text, g ? " (did you mean '" : "",
            g ? g : "", g ? "'?)" : " (completed, completed_with_issues or failed)");
        return;
    }
    st->name = strdup(s->text);
    if (peek(p))
        parse_value(p, &st->value, "finish");
}

/* repeat until CONDITION max N ... end */
static void st_repeat(parser *p, sop_step *st, const char *w)
{
    (void)w;
    if (!accept_word(p, "until")) {
        err(p, peek(p) ? peek(p)->col : end_col(p), "write repeat until CONDITION max N");
        return;
    }
    if (!(st->cond = parse_cond(p, "repeat until")))
        return;
    tok *m = peek(p);
    if (!is_word(m, "max")) {
        err(p, m ? m->col : end_col(p),
            "repeat until needs a bound: repeat until CONDITION max N (N rounds at most)");
        return;
    }
    p->ti++;
    tok *n = next(p);
    if (!n || n->kind != T_NUMBER || atoi(n->text) < 1 || atoi(n->text) > 1000)
        err(p, n ? n->col : end_col(p), "max needs a number of rounds from 1 to 1000");
    else
        st->max_rounds = atoi(n->text);
}

/* on dialog accept | on dialog dismiss */
static void st_on_dialog(parser *p, sop_step *st, const char *w)
{
    (void)w;
    if (!accept_word(p, "dialog")) {
        err(p, peek(p) ? peek(p)->col : end_col(p), "write on dialog accept, or on dialog dismiss");
        return;
    }
    tok *a = next(p);
    if (is_word(a, "accept") || is_word(a, "dismiss"))
        st->dismiss = is_word(a, "dismiss");
    else
        err(p, a ? a->col : end_col(p), "on dialog takes accept or dismiss");
}

static void (*const step_parsers[])(parser *p, sop_step *st, const char *w) = {
    [SOP_GOTO] = st_value,
    [SOP_CLICK] = st_locator,
    [SOP_FILL] = st_locator_with,
    [SOP_TYPE] = st_locator_with,
    [SOP_PRESS] = st_press,
    [SOP_SELECT] = st_locator_with,
    [SOP_CHOOSE] = st_locator_with,
    [SOP_CHECK] = st_locator,
    [SOP_UNCHECK] = st_locator,
    [SOP_UPLOAD] = st_upload,
    [SOP_WAIT] = st_wait,
    [SOP_EXTRACT] = st_extract,
    [SOP_EXPECT] = st_expect,
    [SOP_IF] = st_cond,
    [SOP_WHENEVER] = st_cond,
    [SOP_IN_FRAME] = st_in_frame,
    [SOP_SCREENSHOT] = st_screenshot,
    [SOP_ASK] = st_ask,
    [SOP_REVIEW] = st_value,
    [SOP_COMMIT] = st_nothing,
    [SOP_FINISH] = st_finish,
    [SOP_USE] = st_nothing,
    [SOP_REPEAT] = st_repeat,
    [SOP_ON_DIALOG] = st_on_dialog,
};

static int opens_block(sop_step_kind k)
{
    return k == SOP_IF || k == SOP_WHENEVER || k == SOP_IN_FRAME || k == SOP_REPEAT;
}

/* The body (and an if's else) of the block step b->steps[index], up to and
 * including its `end`. */
static void parse_body(parser *p, sop_block *b, size_t index, const char *w)
{
    sop_step *st = &b->steps[index];
    sop_step_kind kind = st->kind;
    int else_seen = 0;
    int open_line = st->line;
    sop_block body = {0}, other = {0};
    p->li++;
    p->ti = 0;
    parse_block(p, &body, kind == SOP_IN_FRAME ? "in frame" : w, open_line, kind == SOP_IF,
                &else_seen);
    if (else_seen) {
        p->li++;
        p->ti = 0;
        parse_block(p, &other, "else", open_line, 0, NULL);
    }
    /* b may have moved while the body was parsed */
    st = &b->steps[index];
    st->body = body;
    st->otherwise = other;
}

/* A step named by w (token t) on line l, into b. Returns -1 when it opened
 * a block (which consumed its lines up to and including `end`), else 0. */
static int parse_step(parser *p, sop_block *b, lexline *l, tok *t)
{
    const char *w = t->text;
    int kind = -1;
    for (int k = 0; k < (int)(sizeof(step_names) / sizeof(step_names[0])); k++)
        if (k != SOP_USE && !strcmp(w, step_names[k]))
            kind = k;
    if (kind < 0) {
        const char *s = suggest(w, line_words, sizeof(line_words) / sizeof(line_words[0]));
        err(p, t->col, "unknown step '%s'%s%s%s", w, s ? " (did you mean '" : "", s ? s : "",
            s ? "'?)" : "");
        return 0;
    }
    sop_step *st = block_add(b);
    if (!st)
        return 0;
    st->kind = (sop_step_kind)kind;
    st->file = strdup(p->file);
    st->line = l->lineno;
    st->col = t->col;
    st->source = strdup(l->source + (t->col - 1));
    step_parsers[st->kind](p, st, w);
    if (!opens_block(st->kind))
        parse_step_timeout(p, st);
    expect_eol(p, w);
    if (!opens_block(st->kind))
        return 0;
    parse_body(p, b, (size_t)(st - b->steps), w);
    return -1;
}

/* Parses the statement on the current line into b. Returns 1 when the line
 * closes the block (end/else), -1 when a block step consumed its lines, 0
 * otherwise. */
static int parse_statement(parser *p, sop_block *b, int allow_else, int *saw_else)
{
    lexline *l = cur_line(p);
    tok *t = next(p);
    if (t->kind != T_WORD) {
        err(p, t->col, "a line starts with a step, such as click or fill, not '%s'", t->text);
        return 0;
    }
    const char *w = t->text;
    if (!strcmp(w, "end")) {
        expect_eol(p, "end");
        return 1;
    }
    if (!strcmp(w, "else")) {
        if (!allow_else)
            err(p, t->col, "else without an if");
        else
            *saw_else = 1;
        expect_eol(p, "else");
        return allow_else;
    }
    for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++)
        if (!strcmp(w, directives[i].word)) {
            directives[i].parse(p, b);
            return 0;
        }
    return parse_step(p, b, l, t);
}

/* Parses lines into b until `end` (or `else` when allowed) or the end of
 * the file. Leaves p->li on the closing line. */
static void parse_block(parser *p, sop_block *b, const char *opener, int open_line, int allow_else,
                        int *saw_else)
{
    for (; p->li < p->lx.n; p->li++) {
        p->ti = 0;
        int r = parse_statement(p, b, allow_else, saw_else);
        if (r == 1) {
            if (!opener) {
                err(p, 1, "end without a block to close");
                continue;
            }
            return;
        }
    }
    if (opener) {
        diag(p->d, p->file, open_line, 1, 0, "%s opened here has no end", opener);
        p->li = p->lx.n;
    }
}

/* ---- use ----------------------------------------------------------------- */

static int add_file(sop *s, const char *path)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (!strcmp(s->files[i], path))
            return 0;
    char **n = realloc(s->files, (s->nfiles + 1) * sizeof(*n));
    if (!n)
        return -1;
    s->files = n;
    s->files[s->nfiles++] = strdup(path);
    return 1;
}

static void parse_into(parser *p, const char *file, const char *dir, const char *text,
                       sop_block *into);

static int parse_use(parser *p, tok *name, sop_block *into)
{
    for (const char *c = name->text; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
            err(p, name->col, "use takes a file name without a path: %s", name->text);
            return -1;
        }
    if (!p->dir) {
        err(p, name->col, "use %s: no folder to find it in", name->text);
        return -1;
    }
    if (p->depth >= MAX_USE_DEPTH) {
        err(p, name->col, "use %s: files use each other more than %d deep (a loop?)", name->text,
            MAX_USE_DEPTH);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.sop", p->dir, name->text);
    char *text = NULL;
    if (pt_read_file(path, MAX_SOP_BYTES, &text, NULL) < 0) {
        err(p, name->col, "use %s: cannot read %s", name->text, path);
        return -1;
    }
    add_file(p->s, path);
    /* The file's steps go into a `use` step's body; a file that declares
     * no session is spliced in where it is used, step by step. */
    sop_step use = {0};
    use.kind = SOP_USE;
    use.line = cur_line(p)->lineno;
    use.col = name->col;
    parser sub = *p;
    sub.depth = p->depth + 1;
    sub.lx = (lexed){0};
    sub.li = sub.ti = 0;
    sub.use = &use;
    parse_into(&sub, path, p->dir, text, &use.body);
    free(text);
    if (!use.value.text) {
        for (size_t i = 0; i < use.body.n; i++) {
            sop_step *st = block_add(into);
            if (st)
                *st = use.body.steps[i];
            else
                step_free(&use.body.steps[i]);
        }
        free(use.body.steps);
        return 0;
    }
    sop_step *st = block_add(into);
    if (!st) {
        step_free(&use);
        return -1;
    }
    use.file = strdup(p->file);
    use.source = strdup(cur_line(p)->source + (cur_line(p)->toks[0].col - 1));
    use.name = strdup(name->text);
    *st = use;
    return 0;
}

static void parse_into(parser *p, const char *file, const char *dir, const char *text,
                       sop_block *into)
{
    p->file = file;
    p->dir = dir;
    lex(file, text, &p->lx, p->d);
    p->li = 0;
    parse_block(p, into, NULL, 0, 0, NULL);
    lexed_free(&p->lx);
}

/* ---- Whole-tree checks ---------------------------------------------------- */

typedef struct names {
    char **v;
    size_t n;
} names;

static int has(const names *ns, const char *w)
{
    for (size_t i = 0; i < ns->n; i++)
        if (!strcmp(ns->v[i], w))
            return 1;
    return 0;
}

static void add(names *ns, const char *w)
{
    if (has(ns, w))
        return;
    char **n = realloc(ns->v, (ns->n + 1) * sizeof(*n));
    if (n) {
        ns->v = n;
        ns->v[ns->n++] = strdup(w);
    }
}

static void names_free(names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

typedef struct checker {
    sop *s;
    sop_diags *d;
    names defined, used;
} checker;

static void undefined(checker *c, const char *file, int line, int col, const char *name)
{
    const char *s = suggest(name, (const char *const *)c->defined.v, c->defined.n);
    diag(c->d, file, line, col, 0,
         "%s is not defined (not an input, nor extracted or asked "
         "before)%s%s%s",
         name, s ? "; did you mean " : "", s ? s : "", s ? "?" : "");
}

static void use_var(checker *c, const char *file, int line, int col, const char *name)
{
    add(&c->used, name);
    if (!has(&c->defined, name))
        undefined(c, file, line, col, name);
}

/* Variables a template refers to: {{name}}, not {{secret.x}}, {{totp.x}},
 * {{text ...}}. */
static void use_template(checker *c, const char *file, int line, int col, const char *text)
{
    for (const char *q = text; (q = strstr(q, "{{")) != NULL;) {
        const char *e = strstr(q + 2, "}}");
        if (!e)
            return;
        const char *a = q + 2;
        while (*a == ' ')
            a++;
        const char *z = e;
        while (z > a && z[-1] == ' ')
            z--;
        char name[128];
        size_t n = (size_t)(z - a) < sizeof(name) - 1 ? (size_t)(z - a) : sizeof(name) - 1;
        memcpy(name, a, n);
        name[n] = '\0';
        int pos = col + 1 + (int)(q - text);
        if (!strncmp(name, "secret.", 7) || !strncmp(name, "totp.", 5)) {
            if (!name[strncmp(name, "secret.", 7) ? 5 : 7]) {
                diag(c->d, file, line, pos, 0, "{{%s}} needs a name after the dot", name);
            }
        } else if (strncmp(name, "text ", 5) != 0) {
            int ok = n > 0;
            for (size_t i = 0; i < n; i++)
                ok &= isalnum((unsigned char)name[i]) || name[i] == '_';
            if (!ok) {
                diag(c->d, file, line, pos, 0,
                     "{{%s}}: write {{name}}, {{secret.NAME}}, {{totp.NAME}} or {{text SELECTOR}}",
                     name);
            } else
                use_var(c, file, line, pos, name);
        }
        q = e + 2;
    }
}

/* A locator's templates, and its scope's (`... in LOCATOR`). */
static void check_loc(checker *c, const char *file, const sop_locator *l)
{
    for (; l && l->value; l = l->within)
        use_template(c, file, l->line, l->value_col ? l->value_col : l->col, l->value);
}

static void check_value(checker *c, const char *file, const sop_value *v)
{
    if (!v->text)
        return;
    if (v->is_var)
        use_var(c, file, v->line, v->col, v->text);
    else
        use_template(c, file, v->line, v->col, v->text);
}

static void check_cond(checker *c, const char *file, const sop_cond *k)
{
    if (!k)
        return;
    if (k->kind == SOP_COND_VAR || k->kind == SOP_COND_VAR_IS)
        use_var(c, file, k->line, k->col, k->text);
    check_loc(c, file, &k->loc);
    check_loc(c, file, k->frame);
    if (k->text && k->kind != SOP_COND_VAR && k->kind != SOP_COND_VAR_IS)
        use_template(c, file, k->line, k->col, k->text);
    check_cond(c, file, k->a);
    check_cond(c, file, k->b);
}

static void check_block(checker *c, const sop_block *b)
{
    int finished_at = 0;
    for (size_t i = 0; i < b->n; i++) {
        const sop_step *st = &b->steps[i];
        if (finished_at) {
            diag(c->d, st->file, st->line, st->col, 0,
                 "%s is never reached: the SOP finishes at line %d", sop_step_name(st->kind),
                 finished_at);
            break; /* one report per block */
        }
        if (st->has_loc)
            check_loc(c, st->file, &st->loc);
        check_cond(c, st->file, st->cond);
        if (st->kind != SOP_ASK)
            check_value(c, st->file, &st->value);
        /* a step whose line had errors may lack its name: the tree is
         * partial when there were syntax errors */
        if ((st->kind == SOP_EXTRACT || st->kind == SOP_ASK) && st->name)
            add(&c->defined, st->name);
        if (st->kind == SOP_FINISH)
            finished_at = st->line;
        check_block(c, &st->body);
        check_block(c, &st->otherwise);
    }
}

/* Every task data key names one input at most: an alias that is another
 * input's name or alias, or an ignored key that an input takes, is an error. */
static void check_keys(sop *s, sop_diags *d)
{
    for (size_t i = 0; i < s->ninputs; i++) {
        const sop_input *in = &s->inputs[i];
        for (size_t k = 0; k < in->naliases; k++) {
            const sop_input *o = NULL;
            for (size_t j = 0; j < s->ninputs && !o; j++) {
                if (j == i)
                    continue;
                if (!strcmp(s->inputs[j].name, in->aliases[k]))
                    o = &s->inputs[j];
                for (size_t m = 0; m < s->inputs[j].naliases && !o; m++)
                    if (j < i && !strcmp(s->inputs[j].aliases[m], in->aliases[k]))
                        o = &s->inputs[j];
            }
            if (o)
                diag(d, s->file, in->line, in->col, 0,
                     "input %s: alias %s already names input %s (line %d)", in->name,
                     in->aliases[k], o->name, o->line);
        }
    }
    for (size_t i = 0; i < s->nignored; i++) {
        const sop_input *in = sop_input_for_key(s, s->ignored[i], NULL);
        if (in)
            diag(d, s->file, in->line, in->col, 0,
                 "ignore %s: input %s takes that key; remove it from the ignore line",
                 s->ignored[i], in->name);
    }
}

static void check_tree(sop *s, sop_diags *d)
{
    check_keys(s, d);
    checker c = {s, d, {0}, {0}};
    add(&c.defined, "portal");
    for (size_t i = 0; i < s->ninputs; i++)
        add(&c.defined, s->inputs[i].name);
    check_block(&c, &s->steps);
    for (size_t i = 0; i < s->ninputs; i++)
        if (!has(&c.used, s->inputs[i].name))
            diag(d, s->file, s->inputs[i].line, s->inputs[i].col, 1, "input %s is never used",
                 s->inputs[i].name);
    if (!s->summary)
        diag(d, s->file, 1, 1, 1, "no summary: tasks show it as their instructions");
    names_free(&c.defined);
    names_free(&c.used);
}

/* ---- Entry points -------------------------------------------------------- */

/* Orders diagnostics by file (in the order files were read), line, column,
 * so a reader goes down the file once. */
static const sop *sort_by;
static size_t file_rank(const char *f)
{
    for (size_t i = 0; sort_by && i < sort_by->nfiles; i++)
        if (!strcmp(sort_by->files[i], f))
            return i;
    return (size_t)-1;
}
static int diag_order(const void *x, const void *y)
{
    const sop_diag *a = x, *b = y;
    size_t fa = file_rank(a->file), fb = file_rank(b->file);
    if (fa != fb)
        return fa < fb ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->col < b->col ? -1 : a->col > b->col;
}
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static void input_free(sop_input *in)
{
    free(in->name);
    free(in->pattern);
    free(in->default_value);
    for (size_t i = 0; i < in->nmap; i++) {
        free(in->map[i].from);
        free(in->map[i].to);
    }
    free(in->map);
    for (size_t i = 0; i < in->naliases; i++)
        free(in->aliases[i]);
    free(in->aliases);
}

void sop_free(sop *s)
{
    if (!s)
        return;
    free(s->file);
    free(s->name);
    free(s->title);
    free(s->summary);
    for (size_t i = 0; i < s->ninputs; i++)
        input_free(&s->inputs[i]);
    free(s->inputs);
    for (size_t i = 0; i < s->nignored; i++)
        free(s->ignored[i]);
    free(s->ignored);
    block_free(&s->steps);
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i]);
    free(s->files);
    for (size_t i = 0; i < s->nfile_types; i++)
        free(s->file_types[i]);
    free(s->file_types);
    free(s);
}

sop *sop_parse_text(const char *file_name, const char *text, const char *dir, sop_diags *diags)
{
    sop_diags local = {0};
    sop_diags *d = diags ? diags : &local;
    size_t errors_before = sop_diags_errors(d), diags_before = d->n;
    sop *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->file = strdup(file_name);
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    add_file(s, file_name);
    parser p = {0};
    p.s = s;
    p.d = d;
    parse_into(&p, file_name, dir, text, &s->steps);
    /* even with syntax errors, so that every problem shows at once */
    check_tree(s, d);
    if (d->n > diags_before + 1) {
        pthread_mutex_lock(&sort_lock);
        sort_by = s;
        qsort(d->items + diags_before, d->n - diags_before, sizeof(*d->items), diag_order);
        sort_by = NULL;
        pthread_mutex_unlock(&sort_lock);
    }
    int failed = sop_diags_errors(d) > errors_before;
    if (!diags)
        sop_diags_free(&local);
    if (failed) {
        sop_free(s);
        return NULL;
    }
    return s;
}

sop *sop_parse_file(const char *path, sop_diags *diags)
{
    char *text = NULL;
    if (pt_read_file(path, MAX_SOP_BYTES, &text, NULL) < 0) {
        diag(diags, path, 0, 0, 0, "cannot read this file (missing, unreadable or over 1 MiB)");
        return NULL;
    }
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    sop *s = sop_parse_text(path, text, slash ? dir : ".", diags);
    free(dir);
    free(text);
    return s;
}
