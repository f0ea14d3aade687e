/*
 * test_redact.c - what counts as a "whole value" when a recording replaces
 * input values by placeholders (agent/replay.c, included for its statics).
 */
#include "agent/replay.c"
#include "tests/support/testmain.h"

static int is_whole(const char *text)
{
    const char *hit = strstr(text, "300059049");
    assert_non_null(hit);
    return whole(text, (size_t)(hit - text), 9);
}

static void whole_values_are_replaced(void **state)
{
    (void)state;
    assert_true(is_whole("member_id=300059049&x=1"));          /* form, query */
    assert_true(is_whole("{\"member_id\":\"300059049\"}"));    /* JSON */
    assert_true(is_whole("<input value=\"300059049\">"));      /* attribute */
    assert_true(is_whole("<td>\n   300059049\n  </td>"));     /* text node */
    assert_true(is_whole("300059049"));
    /* a multipart part's value sits between line breaks */
    assert_true(is_whole("--b\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\n300059049\r\n--b--"));
}

static void parts_of_other_text_are_kept(void **state)
{
    (void)state;
    assert_false(is_whole("claim for 300059049 done"));
    assert_false(is_whole("<p>Member 300059049</p>"));
    assert_false(is_whole("x300059049"));
    assert_false(is_whole("300059049-2"));
}

PT_TESTS("redact", cmocka_unit_test(whole_values_are_replaced),
         cmocka_unit_test(parts_of_other_text_are_kept));
