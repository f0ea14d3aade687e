/*
 * testmain.c - see testmain.h.
 */
#include "tests/support/testmain.h"
#include "util/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    pt_log_init();
    if (argc > 1) {
        size_t found = 0;
        for (size_t i = 0; i < pt_suite_count; i++)
            found += strcmp(pt_suite_tests[i].name, argv[1]) == 0;
        if (!found) {
            fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(pt_suite_name, pt_suite_tests, pt_suite_count, NULL, NULL);
}
