/*
 * cli_lint.c - `portier lint SOP... [--against DIR]`: every problem in
 * every file, each as FILE:LINE:COL: message, before anything runs. With
 * --against, each locator is also checked in the recorded document its step
 * acted in (agent/replay.h). Exit 1 on any error.
 */
#include "cli/cli.h"
#include "agent/replay.h"
#include "agent/sop.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

int cli_lint(int argc, char **argv)
{
    const char *against = NULL;
    int nfiles = 0;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--against") && i + 1 < argc)
            against = argv[++i];
        else if (argv[i][0] != '-')
            nfiles++;
    if (nfiles < 1 || (argc && strcmp(argv[0], "--help") == 0)) {
        int help = argc && !strcmp(argv[0], "--help");
        fprintf(help ? stdout : stderr, "usage: portier lint SOP... [--against RECORDING_DIR]\n");
        return help ? 0 : 2;
    }
    size_t errors = 0, warnings = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--against")) {
            i++;
            continue;
        }
        sop_diags d = {0};
        sop *s = sop_parse_file(argv[i], &d);
        sop_diags_print(&d, stderr);
        errors += sop_diags_errors(&d);
        warnings += d.n - sop_diags_errors(&d);
        sop_diags_free(&d);
        if (s && against) {
            char err[PT_ERR_MAX];
            int n = rr_lint_against(s, against, stderr, err);
            if (n < 0) {
                fprintf(stderr, "portier lint: %s\n", err);
                errors++;
            } else {
                errors += (size_t)n;
            }
        }
        sop_free(s);
    }
    fprintf(stderr, "%d file%s: %zu error%s, %zu warning%s\n", nfiles, nfiles == 1 ? "" : "s",
            errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    return errors ? 1 : 0;
}
