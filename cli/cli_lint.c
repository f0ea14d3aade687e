/*
 * cli_lint.c - `portier lint SOP... [--against DIR] [--format text|json]`:
 * every problem in every file, each as FILE:LINE:COL: message (or, with
 * --format json, all of them as one JSON array on stdout), before anything
 * runs. With --against, each locator is also checked in the recorded
 * document its step acted in (agent/replay.h). The summary goes to stderr.
 * Exit 1 on any error, 2 on a usage error.
 */
#include "cli/cli.h"
#include "agent/replay.h"
#include "agent/sop.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lint_usage(const char *why)
{
    int help = !strcmp(why, "help");
    FILE *out = help ? stdout : stderr;
    if (!help)
        fprintf(out, "portier lint: %s\n", why);
    fprintf(out, "usage: portier lint SOP... [--against RECORDING_DIR] [--format text|json]\n");
    return help ? 0 : 2;
}

typedef struct lint_args {
    const char *against;
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
        cli_unknown_option(a, (const char *const[]){"--against", "--format", "--help"}, 3, why,
                           sizeof(why));
        return lint_usage(why);
    }
    return la->nfiles ? -1 : lint_usage("no SOP file");
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
