/*
 * test_vars.c - task data, input binding, dates, secrets, templates and
 * masking: everything that happens before a browser is touched.
 */
#include "tests/support/testmain.h"
#include "agent/vars.h"
#include "util/crypto.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#define SANDBOX_SEED_FOR_TEST "PORTIERSANDBOXSEEDTOTP234567ABCD"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void data_as_lines(void **state)
{
    (void)state;
    vars *v = vars_new();
    char errs[1024];
    assert_int_equal(
        vars_parse_data(v,
                        "member_id: 300059049\npatient: Louise Golicic\nDOB: 1949-12-23\n"
                        "  Place of Service : home \n\n# a comment\nnote: a: b\r\n",
                        errs, sizeof(errs)),
        0);
    assert_string_equal(vars_get(v, "member_id"), "300059049");
    assert_string_equal(vars_get(v, "patient"), "Louise Golicic");
    assert_string_equal(vars_get(v, "dob"), "1949-12-23");
    assert_string_equal(vars_get(v, "place_of_service"), "home");
    assert_string_equal(vars_get(v, "note"), "a: b");
    assert_int_equal(vars_count(v), 5);
    vars_free(v);
    v = vars_new();
    assert_int_equal(
        vars_parse_data(v, "member_id: 1\njust words\nDOB: x\ndob: y\n", errs, sizeof(errs)), -1);
    assert_non_null(strstr(errs, "line 2: expected 'key: value'"));
    assert_non_null(strstr(errs, "line 4: dob is given twice"));
    vars_free(v);
}

static void data_as_json(void **state)
{
    (void)state;
    vars *v = vars_new();
    char errs[1024];
    assert_int_equal(
        vars_parse_data(v,
                        " {\"Member ID\": \"300059049\", \"units\": 2, \"urgent\": true,"
                        " \"notes\": null}",
                        errs, sizeof(errs)),
        0);
    assert_string_equal(vars_get(v, "member_id"), "300059049");
    assert_string_equal(vars_get(v, "units"), "2");
    assert_string_equal(vars_get(v, "urgent"), "true");
    assert_null(vars_get(v, "notes"));
    vars_free(v);
    v = vars_new();
    assert_int_equal(vars_parse_data(v, "{\"a\": [1]}", errs, sizeof(errs)), -1);
    assert_non_null(strstr(errs, "a: a list or object is not a value"));
    assert_int_equal(vars_parse_data(v, "{\"a\": ", errs, sizeof(errs)), -1);
    assert_non_null(strstr(errs, "not a JSON object"));
    vars_free(v);
}

static void dates_in_the_forms_people_write(void **state)
{
    (void)state;
    const char *ok[][2] = {{"1949-12-23", "1949-12-23"},        {"12/23/1949", "1949-12-23"},
                           {"12-23-1949", "1949-12-23"},        {"19491223", "1949-12-23"},
                           {"12231949", "1949-12-23"},          {"Dec 23 1949", "1949-12-23"},
                           {"December 23, 1949", "1949-12-23"}, {"23 December 1949", "1949-12-23"},
                           {"1/5/2025", "2025-01-05"},          {"2024-02-29", "2024-02-29"}};
    char out[11];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (vars_normalize_date(ok[i][0], out) != 0)
            fail_msg("%s is a date", ok[i][0]);
        assert_string_equal(out, ok[i][1]);
    }
    const char *bad[] = {"1949-13-01", "02/30/2020", "2023-02-29", "yesterday",
                         "12/23",      "",           "1949-12-23x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (vars_normalize_date(bad[i], out) == 0)
            fail_msg("%s is not a date", bad[i]);
}

static sop *claim_sop(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/sops/sandbox/submit_claim.sop", pt_home());
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    sop_diags_free(&d);
    assert_non_null(s);
    return s;
}

static void inputs_bind_with_defaults_maps_and_dates(void **state)
{
    (void)state;
    sop *s = claim_sop();
    vars *data = vars_new(), *over = vars_new(), *out = vars_new();
    char errs[2048];
    vars_parse_data(data,
                    "member_id: 300059049\npatient: Louise Golicic\nDOB: 12/23/1949\n"
                    "place_of_service: Home\nservice_date: March 25, 2025\n",
                    errs, sizeof(errs));
    vars_set(over, "rendering_npi", "1234567893", 0); /* an account's default */
    assert_int_equal(vars_bind_inputs(s, data, over, out, errs, sizeof(errs)), 0);
    assert_string_equal(vars_get(out, "dob"), "1949-12-23");
    assert_true(vars_is_date(out, "dob"));
    assert_string_equal(vars_get(out, "service_date"), "2025-03-25");
    assert_string_equal(vars_get(out, "place_of_service"), "12");
    assert_string_equal(vars_get(out, "payer"), "Sandbox Health PPO");
    assert_string_equal(vars_get(out, "rendering_npi"), "1234567893");
    assert_null(vars_get(out, "cpt"));
    vars_free(data);
    vars_free(out);
    /* every problem at once, by name and reason, never by value */
    data = vars_new();
    out = vars_new();
    vars_parse_data(data, "member_id: 30005904X\nDOB: 1949-02-30\nplace_of_service: moon\n", errs,
                    sizeof(errs));
    assert_int_equal(vars_bind_inputs(s, data, NULL, out, errs, sizeof(errs)), 5);
    assert_non_null(strstr(errs, "member_id: expected a value that matches /^\\d{9}$/\n"));
    assert_non_null(strstr(errs, "patient: required, and the task data has none\n"));
    assert_non_null(strstr(errs, "dob: expected a date"));
    assert_non_null(strstr(errs, "place_of_service: expected one of home, office, telehealth"));
    assert_non_null(strstr(errs, "service_date: required"));
    /* what was sent is never repeated: it may be PHI */
    assert_null(strstr(errs, "30005904X"));
    assert_null(strstr(errs, "1949-02-30"));
    assert_null(strstr(errs, "moon"));
    vars_free(data);
    vars_free(over);
    vars_free(out);
    sop_free(s);
}

static char *fake_text(const char *selector, void *ud)
{
    (void)ud;
    return strcmp(selector, ".error") == 0 ? strdup("Member hunter2-pw not found") : NULL;
}

static void templates_and_masking(void **state)
{
    (void)state;
    vars *v = vars_new(), *sec = vars_new();
    vars_set(v, "reference", "CLM-2025-000123", 0);
    vars_set(sec, "pw", "hunter2-pw", 0);
    vars_set(sec, "seed", SANDBOX_SEED_FOR_TEST, 0);
    char err[512];
    char *x = vars_expand("Ref {{reference}}; pw {{ secret.pw }}; {{text .error}}", v, sec,
                          fake_text, NULL, 0, err);
    assert_string_equal(x, "Ref CLM-2025-000123; pw hunter2-pw; Member hunter2-pw not found");
    free(x);
    x = vars_expand("Ref {{reference}}; pw {{secret.pw}}; {{text .error}}", v, sec, fake_text, NULL,
                    1, err);
    assert_string_equal(x, "Ref CLM-2025-000123; pw ***; Member *** not found");
    free(x);
    char code[7];
    pt_totp(SANDBOX_SEED_FOR_TEST, pt_wall_ms() / 1000, code);
    x = vars_expand("code {{totp.seed}}", v, sec, NULL, NULL, 0, err);
    assert_int_equal(strlen(x), 11);
    char *m = vars_mask(x, sec);
    assert_string_equal(m, "code ***");
    free(m);
    free(x);
    assert_null(vars_expand("{{missing}}", v, sec, NULL, NULL, 0, err));
    assert_string_equal(err, "{{missing}} has no value");
    assert_null(vars_expand("{{secret.nope}}", v, sec, NULL, NULL, 0, err));
    assert_string_equal(err, "no secret named nope in the account's credentials");
    assert_null(vars_expand("{{text #gone}}", v, sec, fake_text, NULL, 0, err));
    assert_null(vars_expand("{{reference", v, sec, NULL, NULL, 0, err));
    vars_free(v);
    vars_free(sec);
}

static void secrets_file(void **state)
{
    (void)state;
    char *dir = pt_mkdtemp("portier-secrets");
    char path[4200];
    snprintf(path, sizeof(path), "%s/s", dir);
    const char *text = "# comment\nportal_user = portier.demo\n\nportal_password=Pa=ss word!\n";
    pt_write_file(path, text, strlen(text), 0600);
    vars *s = vars_new();
    char err[512];
    assert_int_equal(vars_load_secrets(s, path, err), 0);
    assert_string_equal(vars_get(s, "portal_user"), "portier.demo");
    assert_string_equal(vars_get(s, "portal_password"), "Pa=ss word!");
    pt_write_file(path, "novalue\n", 8, 0600);
    assert_int_equal(vars_load_secrets(s, path, err), -1);
    assert_non_null(strstr(err, "not NAME=VALUE"));
    assert_null(strstr(err, "novalue")); /* the line may be a secret */
    vars_free(s);
    pt_rmtree(dir);
    free(dir);
}

static sop *parse_sop(const char *text)
{
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop", text, NULL, &d);
    if (!s)
        sop_diags_print(&d, stderr);
    sop_diags_free(&d);
    assert_non_null(s);
    return s;
}

/* A key no input takes is an error, named, its value never repeated,
 * unless an alias or an ignore line says what it is. */
static void unknown_keys_are_errors_unless_aliased_or_ignored(void **state)
{
    (void)state;
    const char *text = "sop t \"T\"\nsummary \"s\"\n"
                       "input diagnosis optional alias icd10 \"ICD Code\"\n"
                       "input member_id required\n"
                       "ignore office_note\n"
                       "goto \"{{portal}}/{{diagnosis}}/{{member_id}}\"\n";
    sop *s = parse_sop(text);
    char errs[2048];
    vars *data = vars_new(), *out = vars_new();
    vars_parse_data(data, "member id: 300059049\nICD-Code: I10\nOffice Note: call back\n", errs,
                    sizeof(errs));
    assert_int_equal(vars_bind_inputs(s, data, NULL, out, errs, sizeof(errs)), 0);
    assert_string_equal(vars_get(out, "diagnosis"), "I10");
    assert_null(vars_get(out, "office_note"));
    vars_free(data);
    vars_free(out);
    /* an unknown key, one close to an input, and an input given twice */
    data = vars_new();
    out = vars_new();
    vars_parse_data(data, "member_id: 1\nmember_idd: 2\nicd10: I10\ndiagnosis: E11\nfoo: Zq9\n",
                    errs, sizeof(errs));
    assert_int_equal(vars_bind_inputs(s, data, NULL, out, errs, sizeof(errs)), 3);
    assert_non_null(strstr(errs, "diagnosis: given twice, as diagnosis and as icd10\n"));
    assert_non_null(strstr(errs, "member_idd: no input of the SOP takes this key (did you mean "
                                 "member_id?"));
    assert_non_null(strstr(errs, "foo: no input of the SOP takes this key"));
    assert_null(strstr(errs, "Zq9"));
    assert_null(strstr(errs, "I10"));
    assert_null(strstr(errs, "E11"));
    vars_free(data);
    vars_free(out);
    sop_free(s);
}

/* Aliases and ignore lines that make a key ambiguous are lint errors. */
static void ambiguous_keys_are_lint_errors(void **state)
{
    (void)state;
    const char *text = "sop t \"T\"\nsummary \"s\"\n"
                       "input a optional alias b\n"
                       "input b optional\n"
                       "input c optional alias d\n"
                       "ignore d\n"
                       "ignore\n"
                       "goto \"{{portal}}/{{a}}{{b}}{{c}}\"\n";
    sop_diags d = {0};
    assert_null(sop_parse_text("t.sop", text, NULL, &d));
    char all[4096] = "";
    for (size_t i = 0; i < d.n; i++)
        snprintf(all + strlen(all), sizeof(all) - strlen(all), "%d:%d %s\n", d.items[i].line,
                 d.items[i].col, d.items[i].message);
    assert_non_null(strstr(all, "3:7 input a: alias b already names input b (line 4)"));
    assert_non_null(strstr(all, "5:7 ignore d: input c takes that key"));
    assert_non_null(strstr(all, "7:7 ignore needs the task data keys"));
    sop_diags_free(&d);
}

PT_TESTS("vars", cmocka_unit_test(data_as_lines), cmocka_unit_test(data_as_json),
         cmocka_unit_test(dates_in_the_forms_people_write),
         cmocka_unit_test(inputs_bind_with_defaults_maps_and_dates),
         cmocka_unit_test(templates_and_masking), cmocka_unit_test(secrets_file),
         cmocka_unit_test(unknown_keys_are_errors_unless_aliased_or_ignored),
         cmocka_unit_test(ambiguous_keys_are_lint_errors));
