/*
 * markup.c - the sandbox's second markup (`portier portal --markup 2`): the
 * same pages, workflows, visible labels and texts, built the way a
 * redesigned portal is, so that locators that lean on markup break while
 * semantic ones hold. See internal.h.
 *
 * Markup 2 is generated from the one set of pages in www/ as they are
 * served: every id and class is replaced by a generated name (a hash of the
 * old one, not a suffix: "k1x9ab" for id "member_id"), every form control
 * gets a wrapper element, every label and button its text wrapped once
 * more, <main> an extra layer, and every tag its attributes in reverse
 * order. Page scripts name elements through Sandbox.el / .id / .cls / .sel
 * / .html (www/portal.js), which compute the same names, so both markups
 * run the same code. It must never change a visible text, a form field's
 * name or anything the backend receives.
 */
#include "portals/sandbox/internal.h"
#include "util/buf.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, the same in portal.js (Sandbox.id): the generated name of an id
 * ('k' + base 36) or a class ('u' + base 36). */
static void gen_name(const char *s, size_t n, char kind, char out[16])
{
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x01000193u;
    }
    char digits[8];
    int k = 0;
    do {
        digits[k++] = "0123456789abcdefghijklmnopqrstuvwxyz"[h % 36];
        h /= 36;
    } while (h && k < 7);
    out[0] = kind;
    for (int i = 0; i < k; i++)
        out[1 + i] = digits[k - 1 - i];
    out[1 + k] = '\0';
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* A selector (CSS, or a script's) with each #id and .class renamed. */
static int rename_selector(pt_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if ((c == '#' || c == '.') && i + 1 < n &&
            (isalpha((unsigned char)s[i + 1]) || s[i + 1] == '_' || s[i + 1] == '-')) {
            size_t j = i + 1;
            while (j < n && ident_char(s[j]))
                j++;
            char g[16];
            gen_name(s + i + 1, j - i - 1, c == '#' ? 'k' : 'u', g);
            if (pt_buf_appendf(b, "%c%s", c, g) < 0)
                return -1;
            i = j;
            continue;
        }
        if (c == '[') { /* attribute selectors are left as they are */
            size_t j = i;
            while (j < n && s[j] != ']')
                j++;
            if (pt_buf_append(b, s + i, j - i) < 0)
                return -1;
            i = j;
            continue;
        }
        if (pt_buf_append(b, &c, 1) < 0)
            return -1;
        i++;
    }
    return 0;
}

/* A style sheet: selectors renamed, declarations (colours such as #fff)
 * and at-rule bodies (keyframes) left alone. */
static int rename_css(pt_buf *b, const char *s, size_t n)
{
    int depth = 0, at = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            const char *e = strstr(s + i + 2, "*/");
            size_t j = e && (size_t)(e - s) + 2 <= n ? (size_t)(e - s) + 2 : n;
            if (pt_buf_append(b, s + i, j - i) < 0)
                return -1;
            i = j;
            continue;
        }
        if (s[i] == '{' || s[i] == '}') {
            if (s[i] == '{')
                depth++;
            else if (depth > 0 && --depth == 0)
                at = 0;
            if (pt_buf_append(b, s + i, 1) < 0)
                return -1;
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && s[j] != '{' && s[j] != '}' &&
               !(s[j] == '/' && j + 1 < n && s[j + 1] == '*'))
            j++;
        if (depth == 0 && s[i + strspn(s + i, " \t\r\n")] == '@')
            at = 1;
        int rc =
            depth == 0 && !at ? rename_selector(b, s + i, j - i) : pt_buf_append(b, s + i, j - i);
        if (rc < 0)
            return -1;
        i = j;
    }
    return 0;
}

typedef struct attr {
    const char *name, *value; /* value: NULL for a bare attribute */
    size_t nlen, vlen;
    char quote;
} attr;

/* The value of an attribute that names ids or classes, renamed. */
static int rename_value(pt_buf *b, const attr *a)
{
    char kind = 0;
    if ((a->nlen == 2 && !strncmp(a->name, "id", 2)) ||
        (a->nlen == 3 && !strncmp(a->name, "for", 3)) ||
        (a->nlen == 15 && !strncmp(a->name, "aria-labelledby", 15)) ||
        (a->nlen == 16 && !strncmp(a->name, "aria-describedby", 16)) ||
        (a->nlen == 13 && !strncmp(a->name, "aria-controls", 13)))
        kind = 'k';
    else if (a->nlen == 5 && !strncmp(a->name, "class", 5))
        kind = 'u';
    if (!kind)
        return pt_buf_append(b, a->value, a->vlen);
    int first = 1;
    for (size_t i = 0; i < a->vlen;) {
        while (i < a->vlen && a->value[i] == ' ')
            i++;
        size_t j = i;
        while (j < a->vlen && a->value[j] != ' ')
            j++;
        if (j > i) {
            char g[16];
            gen_name(a->value + i, j - i, kind, g);
            if (pt_buf_appendf(b, "%s%s", first ? "" : " ", g) < 0)
                return -1;
            first = 0;
        }
        i = j;
    }
    return 0;
}

/* One start tag's attributes (between the name and '>'), at most 32. */
static size_t parse_attrs(const char *s, size_t n, attr *out, size_t max)
{
    size_t k = 0, i = 0;
    while (i < n && k < max) {
        while (i < n && (isspace((unsigned char)s[i]) || s[i] == '/'))
            i++;
        if (i >= n)
            break;
        attr a = {s + i, NULL, 0, 0, 0};
        while (i < n && !isspace((unsigned char)s[i]) && s[i] != '=' && s[i] != '/')
            i++;
        a.nlen = (size_t)(s + i - a.name);
        if (i < n && s[i] == '=') {
            i++;
            if (i < n && (s[i] == '"' || s[i] == '\'')) {
                a.quote = s[i++];
                a.value = s + i;
                while (i < n && s[i] != a.quote)
                    i++;
                a.vlen = (size_t)(s + i - a.value);
                if (i < n)
                    i++;
            } else {
                a.value = s + i;
                while (i < n && !isspace((unsigned char)s[i]))
                    i++;
                a.vlen = (size_t)(s + i - a.value);
            }
        }
        if (a.nlen)
            out[k++] = a;
    }
    return k;
}

static int is_tag(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && !strncasecmp(name, want, n);
}

/* Writes a start tag with its attributes reversed and renamed. */
static int write_tag(pt_buf *b, const char *name, size_t nlen, const attr *as, size_t na,
                     int self_closing)
{
    if (pt_buf_appendf(b, "<%.*s", (int)nlen, name) < 0)
        return -1;
    for (size_t i = na; i-- > 0;) {
        const attr *a = &as[i];
        if (pt_buf_appendf(b, " %.*s", (int)a->nlen, a->name) < 0)
            return -1;
        if (!a->value)
            continue;
        char q = a->quote ? a->quote : '"';
        if (pt_buf_append(b, "=", 1) < 0 || pt_buf_append(b, &q, 1) < 0 || rename_value(b, a) < 0 ||
            pt_buf_append(b, &q, 1) < 0)
            return -1;
    }
    return pt_buf_append(b, self_closing ? "/>" : ">", self_closing ? 2 : 1);
}

/* Where the closing tag `close` after s[i] begins (n when there is none). */
static size_t until_close(const char *s, size_t n, size_t i, const char *close)
{
    size_t cl = strlen(close);
    for (size_t j = i; j + cl <= n; j++)
        if (!strncasecmp(s + j, close, cl))
            return j;
    return n;
}

static int rename_html(pt_buf *b, const char *s, size_t n)
{
    char wrap[16], text[16], layer[16];
    gen_name("field-wrap", 10, 'u', wrap);
    gen_name("text-wrap", 9, 'u', text);
    gen_name("layer", 5, 'u', layer);
    size_t i = 0;
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        size_t j = lt ? (size_t)(lt - s) : n;
        if (pt_buf_append(b, s + i, j - i) < 0)
            return -1;
        if (j >= n)
            break;
        i = j;
        if (i + 1 < n && s[i + 1] == '!') { /* a comment or the doctype, as it is */
            int comment = !strncmp(s + i, "<!--", 4);
            const char *e = comment ? strstr(s + i, "-->") : strchr(s + i, '>');
            size_t k = e ? (size_t)(e - s) + (comment ? 3 : 1) : n;
            if (pt_buf_append(b, s + i, k - i) < 0)
                return -1;
            i = k;
            continue;
        }
        int closing = s[i + 1] == '/';
        size_t ns = i + 1 + (size_t)closing, ne = ns;
        while (ne < n && (isalnum((unsigned char)s[ne]) || s[ne] == '-'))
            ne++;
        const char *gt = memchr(s + ne, '>', n - ne);
        size_t te = gt ? (size_t)(gt - s) : n;
        const char *name = s + ns;
        size_t nlen = ne - ns;
        if (closing) {
            /* the wrappers opened with the start tag close with it */
            const char *pre = is_tag(name, nlen, "label") || is_tag(name, nlen, "button")
                                  ? "</span>"
                              : is_tag(name, nlen, "main") ? "</div>"
                                                           : "";
            const char *post =
                is_tag(name, nlen, "select") || is_tag(name, nlen, "textarea") ? "</span>" : "";
            if (pt_buf_appendf(b, "%s%.*s%s", pre, (int)(te + 1 - i), s + i, post) < 0)
                return -1;
            i = te + 1;
            continue;
        }
        attr as[32];
        int self = te > ne && s[te - 1] == '/';
        size_t na = parse_attrs(s + ne, te - ne - (size_t)self, as, 32);
        int field = is_tag(name, nlen, "input") || is_tag(name, nlen, "select") ||
                    is_tag(name, nlen, "textarea");
        if (field && pt_buf_appendf(b, "<span class=\"%s\">", wrap) < 0)
            return -1;
        if (write_tag(b, name, nlen, as, na, self) < 0)
            return -1;
        i = te + 1;
        if (is_tag(name, nlen, "input") && pt_buf_append(b, "</span>", 7) < 0)
            return -1;
        if ((is_tag(name, nlen, "label") || is_tag(name, nlen, "button")) &&
            pt_buf_appendf(b, "<span class=\"%s\">", text) < 0)
            return -1;
        if (is_tag(name, nlen, "main") && pt_buf_appendf(b, "<div class=\"%s\">", layer) < 0)
            return -1;
        if (is_tag(name, nlen, "script") || is_tag(name, nlen, "style")) {
            /* scripts name elements through Sandbox.*: left as written */
            size_t e = until_close(s, n, i, is_tag(name, nlen, "script") ? "</script" : "</style");
            int rc = is_tag(name, nlen, "style") ? rename_css(b, s + i, e - i)
                                                 : pt_buf_append(b, s + i, e - i);
            if (rc < 0)
                return -1;
            i = e;
        }
    }
    return 0;
}

int sb_markup2(const char *ext, const char *src, size_t len, char **out, size_t *outlen)
{
    pt_buf b;
    pt_buf_init(&b, 8u << 20);
    int rc;
    if (ext && !strcmp(ext, ".css"))
        rc = rename_css(&b, src, len);
    else if (ext && !strcmp(ext, ".js"))
        /* the pages' scripts compute markup 2's names when told so */
        rc = pt_buf_appendf(&b, "window.SANDBOX_MARKUP = 2;\n") < 0 ? -1
                                                                    : pt_buf_append(&b, src, len);
    else
        rc = rename_html(&b, src, len);
    if (rc < 0) {
        pt_buf_free(&b);
        return -1;
    }
    *outlen = b.len;
    *out = pt_buf_take(&b);
    return 0;
}
