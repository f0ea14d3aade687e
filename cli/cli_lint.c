/*
 * cli_lint.c - `portier lint SOP... [--against DIR] [--format text|json]`:
 * every problem in every file, each as FILE:LINE:COL: message (or, with
 * --format json, all of them as one JSON array on stdout), before anything
 * runs. With --against, each locator is also checked in the recorded
 * document its step acted in (agent/replay.h). The summary goes to stderr.
 * Exit 1 on any error, 2 on a usage error.
 *
 * `portier lint --heal DIR [SOP...]`: the changes that healed runs suggest
 * (the `suggestions` of each DIR/NAME.json that `portier run --fingerprints
 * DIR` wrote) as one unified diff of the SOP files on stdout, for a person
 * to read and apply (`patch -p1`); only the SOP files named, when some are.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "agent/replay.h"
#include "agent/sop.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/json.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int lint_usage(const char *why)
{
    int help = !strcmp(why, "help");
    FILE *out = help ? stdout : stderr;
    if (!help)
        fprintf(out, "portier lint: %s\n", why);
    fprintf(out, "usage: portier lint SOP... [--against RECORDING_DIR] [--format text|json]\n"
                 "       portier lint --heal FINGERPRINTS_DIR [SOP...]\n");
    return help ? 0 : 2;
}

typedef struct lint_args {
    const char *against, *heal;
    int json;
    const char **files; /* argc slots */
    int nfiles;
} lint_args;

/* Reads the command line: -1 to go on, else the exit status. */
static int parse_lint_args(int argc, char **argv, lint_args *la)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help"))
            return lint_usage("help");
        if (a[0] != '-' || !a[1]) {
            la->files[la->nfiles++] = a;
            continue;
        }
        char why[256];
        if (!strcmp(a, "--heal")) {
            if (!v)
                return lint_usage("--heal needs a value (the folder of `portier run "
                                  "--fingerprints DIR`)");
            la->heal = argv[++i];
            continue;
        }
        if (!strcmp(a, "--against") || !strcmp(a, "--format")) {
            if (!v) {
                snprintf(why, sizeof(why), "%s needs a value (%s)", a,
                         a[2] == 'a' ? "a recording's folder" : "text or json");
                return lint_usage(why);
            }
            i++;
            if (a[2] == 'a')
                la->against = v;
            else if (!strcmp(v, "json") || !strcmp(v, "text"))
                la->json = !strcmp(v, "json");
            else
                return lint_usage("--format takes text or json");
            continue;
        }
        cli_unknown_option(a, (const char *const[]){"--against", "--format", "--help", "--heal"}, 4,
                           why, sizeof(why));
        return lint_usage(why);
    }
    if (la->heal && (la->against || la->json))
        return lint_usage("--heal writes a patch: not with --against or --format");
    return la->nfiles || la->heal ? -1 : lint_usage("no SOP file");
}

/* ---- --heal: the suggested changes as a patch ------------------------------ */

/* One SOP file's lines, and the changes to them. */
typedef struct patch_file {
    char *path; /* as the runs named it */
    char **old; /* its lines, without newlines */
    char **now; /* the same lines changed (aliases old where unchanged) */
    int n;
} patch_file;

static int read_lines(const char *path, char ***out, int *n)
{
    char *text = NULL;
    size_t len = 0;
    if (pt_read_file(path, 4u << 20, &text, &len) < 0)
        return -1;
    int cap = 64, k = 0;
    char **lines = malloc((size_t)cap * sizeof(*lines));
    for (char *p = text; lines && *p;) {
        char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (k == cap) {
            char **m = realloc(lines, (size_t)(cap *= 2) * sizeof(*lines));
            if (!m)
                break;
            lines = m;
        }
        lines[k++] = strndup(p, l);
        p += l + (e ? 1 : 0);
    }
    free(text);
    *out = lines;
    *n = k;
    return lines ? 0 : -1;
}

/* Applies one suggestion {line, old, new} to f: the step's line if it still
 * reads `old`, else the line that does nearest to it (the SOP moved). 0, or
 * -1 when no line reads it any more (already applied, or edited). */
static int apply_one(patch_file *f, const cJSON *sg)
{
    const char *old = pt_json_str(sg, "old"), *repl = pt_json_str(sg, "new");
    const cJSON *ln = cJSON_GetObjectItemCaseSensitive(sg, "line");
    int want = cJSON_IsNumber(ln) ? ln->valueint - 1 : -1, at = -1;
    if (!old || !repl || !*old)
        return -1;
    for (int i = 0; i < f->n; i++) {
        const char *t = f->now[i] + strspn(f->now[i], " \t");
        if (!strcmp(t, old) && (at < 0 || abs(i - want) < abs(at - want)))
            at = i;
    }
    if (at < 0)
        return -1;
    size_t indent = strspn(f->now[at], " \t");
    char *line = NULL;
    if (asprintf(&line, "%.*s%s", (int)indent, f->now[at], repl) < 0)
        return -1;
    if (f->now[at] != f->old[at])
        free(f->now[at]);
    f->now[at] = line;
    return 0;
}

/* The path as the patch names it after a/ and b/: relative to here when
 * under here, else from the root (patch -p1 there). */
static const char *patch_name(const char *path, const char *cwd)
{
    size_t n = strlen(cwd);
    if (path[0] == '/' && n > 1 && !strncmp(path, cwd, n) && path[n] == '/')
        return path + n + 1;
    return path + (path[0] == '/');
}

/* f's changes as unified diff hunks (removed lines before added ones, 3
 * lines of context; changes closer than 7 lines share a hunk). */
static void write_hunks(const patch_file *f, const char *cwd, FILE *out)
{
    int printed = 0;
    for (int i = 0; i < f->n;) {
        if (!strcmp(f->now[i], f->old[i])) {
            i++;
            continue;
        }
        int start = i > 3 ? i - 3 : 0, end = i;
        for (int k = i; k < f->n && k <= end + 6; k++)
            if (strcmp(f->now[k], f->old[k]))
                end = k;
        int stop = end + 4 < f->n ? end + 4 : f->n;
        if (!printed++) {
            const char *name = patch_name(f->path, cwd);
            fprintf(out, "--- a/%s\n+++ b/%s\n", name, name);
        }
        fprintf(out, "@@ -%d,%d +%d,%d @@\n", start + 1, stop - start, start + 1, stop - start);
        for (int j = start; j < stop;) {
            if (!strcmp(f->now[j], f->old[j])) {
                fprintf(out, " %s\n", f->old[j++]);
                continue;
            }
            int r = j;
            while (r < stop && strcmp(f->now[r], f->old[r]))
                fprintf(out, "-%s\n", f->old[r++]);
            for (int q = j; q < r; q++)
                fprintf(out, "+%s\n", f->now[q]);
            j = r;
        }
        i = stop;
    }
}

/* The file f of files[0..*n) for path (read on first use), or NULL. */
static patch_file *file_of(patch_file **files, int *n, const char *path)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*files)[i].path, path))
            return &(*files)[i];
    patch_file f = {strdup(path), NULL, NULL, 0};
    if (read_lines(path, &f.old, &f.n) < 0) {
        free(f.path);
        return NULL;
    }
    f.now = malloc(((size_t)f.n + 1) * sizeof(*f.now));
    patch_file *m = realloc(*files, ((size_t)*n + 1) * sizeof(**files));
    if (!f.now || !m) {
        free(f.now);
        free(f.path);
        for (int i = 0; i < f.n; i++)
            free(f.old[i]);
        free(f.old);
        return NULL;
    }
    memcpy(f.now, f.old, (size_t)f.n * sizeof(*f.now));
    *files = m;
    m[*n] = f;
    return &m[(*n)++];
}

/* Whether path is one of the SOP files named (all, when none is). */
static int wanted(const lint_args *la, const char *path)
{
    if (!la->nfiles)
        return 1;
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(path, a))
        return 0;
    for (int i = 0; i < la->nfiles; i++)
        if (realpath(la->files[i], b) && !strcmp(a, b))
            return 1;
    return 0;
}

/* lint --heal DIR: 0 (a patch, perhaps empty, on stdout), or 1. */
static int heal_patch(const lint_args *la)
{
    DIR *d = opendir(la->heal);
    if (!d) {
        fprintf(stderr, "portier lint: --heal %s: no such folder\n", la->heal);
        return 1;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        cwd[0] = '\0';
    patch_file *files = NULL;
    int nfiles = 0, changes = 0, stale = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") || de->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 256], *text = NULL;
        snprintf(path, sizeof(path), "%s/%s", la->heal, de->d_name);
        if (pt_read_file(path, 64u << 20, &text, NULL) < 0)
            continue;
        cJSON *j = cJSON_Parse(text);
        free(text);
        const cJSON *sg;
        cJSON_ArrayForEach(sg, cJSON_GetObjectItemCaseSensitive(j, "suggestions"))
        {
            const char *file = pt_json_str(sg, "file");
            if (!file || !wanted(la, file))
                continue;
            patch_file *f = file_of(&files, &nfiles, file);
            if (f && apply_one(f, sg) == 0)
                changes++;
            else
                stale++; /* already applied, or the line was edited since */
        }
        cJSON_Delete(j);
    }
    closedir(d);
    for (int i = 0; i < nfiles; i++) {
        write_hunks(&files[i], cwd, stdout);
        for (int k = 0; k < files[i].n; k++) {
            if (files[i].now[k] != files[i].old[k])
                free(files[i].now[k]);
            free(files[i].old[k]);
        }
        free(files[i].now);
        free(files[i].old);
        free(files[i].path);
    }
    free(files);
    fflush(stdout);
    fprintf(stderr, "%d suggested change%s%s", changes, changes == 1 ? "" : "s", stale ? "" : "\n");
    if (stale)
        fprintf(stderr, " (%d no longer fit%s: applied already, or the line changed)\n", stale,
                stale == 1 ? "s" : "");
    return 0;
}

int cli_lint(int argc, char **argv)
{
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
    lint_args la = {.files = files};
    int rc = files ? parse_lint_args(argc, argv, &la) : 1;
    if (rc >= 0) {
        free(files);
        return rc;
    }
    if (la.heal) {
        rc = heal_patch(&la);
        free(files);
        return rc;
    }
    sop_diags d = {0};
    size_t errors = 0;
    for (int i = 0; i < la.nfiles; i++) {
        size_t before = sop_diags_errors(&d);
        sop *s = sop_parse_file(files[i], &d);
        if (s && la.against) {
            char err[PT_ERR_MAX];
            if (rr_lint_against(s, la.against, &d, err) < 0)
                sop_diags_add(&d, files[i], 0, 0, 0, "--against %s: %s", la.against, err);
        }
        errors += sop_diags_errors(&d) - before;
        sop_free(s);
    }
    if (la.json)
        sop_diags_print_json(&d, stdout);
    else
        sop_diags_print(&d, stderr);
    size_t warnings = d.n - sop_diags_errors(&d);
    fprintf(stderr, "%d file%s: %zu error%s, %zu warning%s\n", la.nfiles, la.nfiles == 1 ? "" : "s",
            errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    sop_diags_free(&d);
    free(files);
    return errors ? 1 : 0;
}
