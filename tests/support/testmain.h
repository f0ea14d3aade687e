/*
 * testmain.h - the shared main() of every cmocka test program.
 *
 * A test file defines PT_TESTS(suite-name, setup, teardown, cases...) and gets
 * a main() that runs all of its cases, or only the one named in argv[1] (how
 * ctest runs each case as a test of its own).
 */
#ifndef PT_TESTMAIN_H
#define PT_TESTMAIN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

extern const char *pt_suite_name;
extern const struct CMUnitTest *pt_suite_tests;
extern size_t pt_suite_count;

#define PT_TESTS(name, ...)                                                                        \
    static const struct CMUnitTest pt_suite_array[] = {__VA_ARGS__};                               \
    const char *pt_suite_name = name;                                                              \
    const struct CMUnitTest *pt_suite_tests = pt_suite_array;                                      \
    size_t pt_suite_count = sizeof(pt_suite_array) / sizeof(pt_suite_array[0])

#endif
