/*
 * cli_lint.c - `portier lint SOP...`: every problem in every file, each as
 * FILE:LINE:COL: message, before anything runs. Exit 1 on any error.
 */
#include "cli.h"
#include "../agent/sop.h"

#include <stdio.h>
#include <string.h>

int cli_lint(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0) {
        fprintf(argc < 1 ? stderr : stdout, "usage: portier lint SOP...\n");
        return argc < 1 ? 2 : 0;
    }
    size_t errors = 0, warnings = 0;
    for (int i = 0; i < argc; i++) {
        sop_diags d = {0};
        sop *s = sop_parse_file(argv[i], &d);
        sop_diags_print(&d, stderr);
        errors += sop_diags_errors(&d);
        warnings += d.n - sop_diags_errors(&d);
        sop_diags_free(&d);
        sop_free(s);
    }
    fprintf(stderr, "%d file%s: %zu error%s, %zu warning%s\n", argc, argc == 1 ? "" : "s", errors,
            errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    return errors ? 1 : 0;
}
