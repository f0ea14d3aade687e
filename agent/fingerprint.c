/*
 * fingerprint.c - measuring how close an element comes to a fingerprint,
 * and keeping one SOP's set of them (see fingerprint.h).
 *
 * The measure is a weighted mean of per-feature similarities, each in
 * [0, 1], over the features the fingerprint has. It never sees a page and
 * never decides what to do with a match: locate.c does.
 */
#define _GNU_SOURCE
#include "agent/fingerprint.h"

#include "util/fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

/* Weights: a redesign keeps what a person sees (role, name, label, the
 * labels around it) and changes what only the markup says (id, classes,
 * nesting), so the visible features count most. */
#define W_NAME 4.0
#define W_LABEL 2.5
#define W_NEAR 1.5
#define W_TAG 1.0
#define W_ATTRS 1.0
#define W_ID 1.0

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

double fp_text_similarity(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (!la || !lb || la > 120 || lb > 120)
        return 0;
    if (!strcasecmp(a, b))
        return 1;
    if (strcasestr(a, b) || strcasestr(b, a)) {
        size_t lo = la < lb ? la : lb, hi = la < lb ? lb : la;
        return 0.9 * (double)lo / (double)hi + 0.05;
    }
    size_t row[121];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub =
                prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t m = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = m < sub ? m : sub;
            prev = cur;
        }
    }
    return 1.0 - (double)row[lb] / (double)(la > lb ? la : lb);
}

/* |a ∩ b| / |a ∪ b| of two arrays of strings (case ignored); 1 when both
 * are empty. */
static double jaccard(const cJSON *a, const cJSON *b)
{
    int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b), both = 0;
    if (!na && !nb)
        return 1;
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, a)
    {
        if (!cJSON_IsString(x))
            continue;
        cJSON_ArrayForEach(y,
                           b) if (cJSON_IsString(y) && !strcasecmp(x->valuestring, y->valuestring))
        {
            both++;
            break;
        }
    }
    int uni = na + nb - both;
    return uni > 0 ? (double)both / uni : 0;
}

double fp_score(const cJSON *fp, const cJSON *cand)
{
    double sum = 0, w = 0;
    const char *name = str(fp, "name");
    if (*name) {
        double s = fp_text_similarity(name, str(cand, "name"));
        sum += W_NAME * s * (!strcmp(str(fp, "role"), str(cand, "role")) ? 1.0 : 0.6);
        w += W_NAME;
    } else if (*str(fp, "role")) {
        sum += W_NAME / 2 * !strcmp(str(fp, "role"), str(cand, "role"));
        w += W_NAME / 2;
    }
    if (*str(fp, "label")) {
        sum += W_LABEL * fp_text_similarity(str(fp, "label"), str(cand, "label"));
        w += W_LABEL;
    }
    const cJSON *near = cJSON_GetObjectItemCaseSensitive(fp, "near");
    if (cJSON_GetArraySize(near) > 0) {
        sum += W_NEAR * jaccard(near, cJSON_GetObjectItemCaseSensitive(cand, "near"));
        w += W_NEAR;
    }
    int same_tag = !strcmp(str(fp, "tag"), str(cand, "tag"));
    sum += W_TAG * (same_tag ? (!strcmp(str(fp, "type"), str(cand, "type")) ? 1.0 : 0.5) : 0);
    w += W_TAG;
    sum += W_ATTRS * jaccard(cJSON_GetObjectItemCaseSensitive(fp, "attrs"),
                             cJSON_GetObjectItemCaseSensitive(cand, "attrs"));
    w += W_ATTRS;
    if (*str(fp, "id")) {
        sum += W_ID * fp_text_similarity(str(fp, "id"), str(cand, "id"));
        w += W_ID;
    }
    return w > 0 ? sum / w : 0;
}

int fp_best(const cJSON *fp, const cJSON *cands, double *best, double *second)
{
    int at = -1, i = 0;
    *best = *second = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cands)
    {
        double s = fp_score(fp, c);
        if (at < 0 || s > *best) {
            if (at >= 0)
                *second = *best;
            *best = s;
            at = i;
        } else if (s > *second) {
            *second = s;
        }
        i++;
    }
    return at;
}

int fp_decisive(double best, double second)
{
    return best >= FP_STRONG && best - second >= FP_MARGIN;
}

static int entry_line(const cJSON *e)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "line");
    return cJSON_IsNumber(l) ? l->valueint : 0;
}

/* The index in set of the entry for a step (see fp_lookup), or -1. */
static int find_entry(const cJSON *set, const char *file, int line, const char *step)
{
    int by_text = -1, by_line = -1, i = 0, dist = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, set)
    {
        if (!strcmp(str(e, "file"), file)) {
            int d = abs(entry_line(e) - line);
            if (step && !strcmp(str(e, "step"), step) && (by_text < 0 || d < dist)) {
                by_text = i;
                dist = d;
            }
            if (entry_line(e) == line && by_line < 0)
                by_line = i;
        }
        i++;
    }
    return by_text >= 0 ? by_text : by_line;
}

const cJSON *fp_lookup(const cJSON *set, const char *file, int line, const char *step)
{
    int i = find_entry(set, file, line, step);
    return i < 0 ? NULL : cJSON_GetArrayItem(set, i);
}

void fp_put(cJSON *set, const char *file, int line, const char *step, cJSON *fp)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "file", file);
    cJSON_AddNumberToObject(e, "line", line);
    cJSON_AddStringToObject(e, "step", step ? step : "");
    cJSON_AddItemToObject(e, "fp", fp);
    int i = find_entry(set, file, line, step);
    if (i >= 0)
        cJSON_ReplaceItemInArray(set, i, e);
    else
        cJSON_AddItemToArray(set, e);
}

int fp_holds_value(const char *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (values[i] && strlen(values[i]) >= 3 && strcasestr(s, values[i]))
            return 1;
    return 0;
}

void fp_scrub(cJSON *fp, const char *const *values, size_t n)
{
    static const char *const texts[] = {"name", "label", "id"};
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(fp, texts[k]);
        if (cJSON_IsString(v) && fp_holds_value(v->valuestring, values, n))
            cJSON_SetValuestring(v, "");
    }
    cJSON *near = cJSON_GetObjectItemCaseSensitive(fp, "near");
    for (int i = cJSON_GetArraySize(near) - 1; i >= 0; i--) {
        cJSON *x = cJSON_GetArrayItem(near, i);
        if (!cJSON_IsString(x) || fp_holds_value(x->valuestring, values, n))
            cJSON_DeleteItemFromArray(near, i);
    }
}

/* ---- A folder of sets ------------------------------------------------------ */

static int dir_path(const char *dir, const char *name, char *out, size_t n)
{
    if (!name || !*name || strchr(name, '/') || name[0] == '.')
        return -1;
    return snprintf(out, n, "%s/%s.json", dir, name) < (int)n ? 0 : -1;
}

int fp_dir_load(const char *dir, const char *name, cJSON **set, cJSON **suggestions, char *err,
                size_t errsz)
{
    char path[4096], *text = NULL;
    *set = *suggestions = NULL;
    if (dir_path(dir, name, path, sizeof(path)) < 0) {
        snprintf(err, errsz, "the SOP's name %s cannot name a file", name ? name : "");
        return -1;
    }
    if (pt_read_file(path, 64u << 20, &text, NULL) < 0) {
        *set = cJSON_CreateArray();
        *suggestions = cJSON_CreateArray();
        return 0; /* no run of it has succeeded yet */
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "fingerprints");
    cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "suggestions");
    if (!cJSON_IsArray(f)) {
        cJSON_Delete(j);
        snprintf(err, errsz, "%s is not a fingerprints file (no \"fingerprints\" array)", path);
        return -1;
    }
    *set = cJSON_DetachItemViaPointer(j, f);
    *suggestions = cJSON_IsArray(g) ? cJSON_DetachItemViaPointer(j, g) : cJSON_CreateArray();
    cJSON_Delete(j);
    return 0;
}

int fp_dir_save(const char *dir, const char *name, const cJSON *set, const cJSON *suggestions,
                char *err, size_t errsz)
{
    char path[4096], tmp[4200];
    if (dir_path(dir, name, path, sizeof(path)) < 0) {
        snprintf(err, errsz, "the SOP's name %s cannot name a file", name ? name : "");
        return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create the fingerprints folder %s", dir);
        return -1;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "sop", name);
    cJSON_AddItemToObject(j, "fingerprints", set ? cJSON_Duplicate(set, 1) : cJSON_CreateArray());
    cJSON_AddItemToObject(j, "suggestions",
                          suggestions ? cJSON_Duplicate(suggestions, 1) : cJSON_CreateArray());
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = text ? fopen(tmp, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f)
        ok = fclose(f) == 0 && ok;
    free(text);
    if (!ok || chmod(tmp, 0600) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        snprintf(err, errsz, "cannot write %s", path);
        return -1;
    }
    return 0;
}
