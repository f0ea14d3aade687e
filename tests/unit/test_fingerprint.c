/*
 * test_fingerprint.c - agent/fingerprint.c: the measure that heals a
 * locator, on fixture fingerprints of the sandbox's claim form as written
 * (markup 1) and as redesigned (markup 2: every id changed); keeping a
 * set by line and text; scrubbing task values; the folder of sets.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "agent/fingerprint.h"
#include "util/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Member ID's field on markup 1, as a run recorded it. */
static const char *member_id_fp =
    "{\"role\":\"textbox\",\"name\":\"Member ID\",\"label\":\"Member ID\",\"tag\":\"input\","
    "\"type\":\"text\",\"id\":\"member_id\",\"attrs\":[\"id\",\"name\",\"type\"],"
    "\"near\":[\"Patient\",\"Patient name\"]}";

/* Candidates on markup 2: the same fields with generated ids. */
static const char *markup2_fields =
    "[{\"role\":\"textbox\",\"name\":\"Patient name\",\"label\":\"Patient name\",\"tag\":\"input\","
    "\"type\":\"text\",\"id\":\"k1ax93b\",\"attrs\":[\"id\",\"name\",\"type\"],\"near\":[\"Payer\","
    "\"Patient\"]},"
    "{\"role\":\"textbox\",\"name\":\"Member ID\",\"label\":\"Member ID\",\"tag\":\"input\","
    "\"type\":\"text\",\"id\":\"k0zz1qe\",\"attrs\":[\"id\",\"name\",\"type\"],\"near\":["
    "\"Patient\","
    "\"Patient name\"]},"
    "{\"role\":\"textbox\",\"name\":\"Date of birth\",\"label\":\"Date of "
    "birth\",\"tag\":\"input\","
    "\"type\":\"date\",\"id\":\"k2b8d0c\",\"attrs\":[\"id\",\"name\",\"type\"],\"near\":[\"Patient "
    "name\",\"Member ID\"]},"
    "{\"role\":\"button\",\"name\":\"Submit claim\",\"label\":\"\",\"tag\":\"button\",\"type\":"
    "\"submit\",\"id\":\"k9\",\"attrs\":[\"class\",\"id\",\"type\"],\"near\":[]}]";

static void text_similarity(void **state)
{
    (void)state;
    assert_true(fp_text_similarity("Member ID", "member id") == 1.0);
    assert_true(fp_text_similarity("Member ID", "Member ID number") > 0.5);
    assert_true(fp_text_similarity("Member ID", "Patient name") < 0.3);
    assert_true(fp_text_similarity("", "x") == 0.0);
    assert_true(fp_text_similarity("member_id", "k0zz1qe") < 0.2);
}

/* The field by the same label and role wins by a clear margin although its
 * id changed. */
static void the_same_field_under_a_new_id_is_decisive(void **state)
{
    (void)state;
    cJSON *fp = cJSON_Parse(member_id_fp), *cands = cJSON_Parse(markup2_fields);
    double best, second;
    assert_int_equal(fp_best(fp, cands, &best, &second), 1);
    assert_true(best >= FP_STRONG);
    assert_true(fp_decisive(best, second));
    assert_true(fp_score(fp, cJSON_GetArrayItem(cands, 3)) < 0.3); /* a button */
    cJSON_Delete(fp);
    cJSON_Delete(cands);
}

/* Two fields that look alike to the fingerprint: not acted on. */
static void two_lookalikes_are_ambiguous(void **state)
{
    (void)state;
    cJSON *fp = cJSON_Parse("{\"role\":\"textbox\",\"name\":\"Units\",\"label\":\"Units\","
                            "\"tag\":\"input\",\"type\":\"number\",\"id\":\"units1\","
                            "\"attrs\":[\"id\",\"min\",\"name\",\"type\"],\"near\":[\"Line 1\"]}");
    cJSON *cands = cJSON_Parse(
        "[{\"role\":\"textbox\",\"name\":\"Units\",\"label\":\"Units\",\"tag\":\"input\",\"type\":"
        "\"number\",\"id\":\"ka\",\"attrs\":[\"id\",\"min\",\"name\",\"type\"],\"near\":[\"Line "
        "1\"]},"
        "{\"role\":\"textbox\",\"name\":\"Units\",\"label\":\"Units\",\"tag\":\"input\",\"type\":"
        "\"number\",\"id\":\"kb\",\"attrs\":[\"id\",\"min\",\"name\",\"type\"],\"near\":[\"Line "
        "2\"]}]");
    double best, second;
    assert_true(fp_best(fp, cands, &best, &second) >= 0);
    assert_true(best >= FP_STRONG);
    assert_false(fp_decisive(best, second));
    cJSON_Delete(fp);
    cJSON_Delete(cands);
}

/* Nothing like it on the page: too weak to act on. */
static void nothing_alike_is_too_weak(void **state)
{
    (void)state;
    cJSON *fp = cJSON_Parse("{\"role\":\"combobox\",\"name\":\"Payer\",\"label\":\"Payer\","
                            "\"tag\":\"input\",\"type\":\"text\",\"id\":\"payer-input\","
                            "\"attrs\":[\"aria-controls\",\"id\",\"role\",\"type\"],\"near\":[]}");
    cJSON *cands = cJSON_Parse(markup2_fields);
    double best, second;
    fp_best(fp, cands, &best, &second);
    assert_false(fp_decisive(best, second));
    cJSON *none = cJSON_CreateArray();
    assert_int_equal(fp_best(fp, none, &best, &second), -1);
    cJSON_Delete(none);
    cJSON_Delete(fp);
    cJSON_Delete(cands);
}

/* A frame by its title when its id changed. */
static void a_frame_by_its_title(void **state)
{
    (void)state;
    cJSON *fp = cJSON_Parse("{\"role\":\"\",\"name\":\"Application\",\"label\":\"\",\"tag\":"
                            "\"iframe\",\"type\":\"\",\"id\":\"app-frame\",\"attrs\":[\"id\","
                            "\"name\",\"title\"],\"near\":[\"Welcome\"]}");
    cJSON *cands = cJSON_Parse(
        "[{\"role\":\"link\",\"name\":\"Claims\",\"label\":\"\",\"tag\":\"a\",\"type\":\"\","
        "\"id\":\"\",\"attrs\":[\"data-app\",\"href\"],\"near\":[]},"
        "{\"role\":\"\",\"name\":\"Application\",\"label\":\"\",\"tag\":\"iframe\",\"type\":\"\","
        "\"id\":\"k3f0a2z\",\"attrs\":[\"id\",\"name\",\"title\"],\"near\":[\"Welcome\"]}]");
    double best, second;
    assert_int_equal(fp_best(fp, cands, &best, &second), 1);
    assert_true(fp_decisive(best, second));
    cJSON_Delete(fp);
    cJSON_Delete(cands);
}

/* A set: the step's text finds a line that moved; a line finds an edited
 * step; put replaces. */
static void a_set_by_text_then_line(void **state)
{
    (void)state;
    cJSON *set = cJSON_CreateArray();
    fp_put(set, "submit_claim.sop", 27, "fill label \"Member ID\" with member_id",
           cJSON_Parse(member_id_fp));
    fp_put(set, "submit_claim.sop", 30, "click button \"Submit claim\"", cJSON_CreateObject());
    assert_int_equal(cJSON_GetArraySize(set), 2);
    const cJSON *e =
        fp_lookup(set, "submit_claim.sop", 29, "fill label \"Member ID\" with member_id");
    assert_non_null(e);
    assert_int_equal(cJSON_GetObjectItem(e, "line")->valueint, 27);
    e = fp_lookup(set, "submit_claim.sop", 30, "click \"#submit\"");
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItem(e, "step")->valuestring,
                        "click button \"Submit claim\"");
    assert_null(fp_lookup(set, "login.sop", 27, "fill label \"Member ID\" with member_id"));
    fp_put(set, "submit_claim.sop", 31, "fill label \"Member ID\" with member_id",
           cJSON_CreateObject());
    assert_int_equal(cJSON_GetArraySize(set), 2);
    e = fp_lookup(set, "submit_claim.sop", 31, "fill label \"Member ID\" with member_id");
    assert_int_equal(cJSON_GetObjectItem(e, "line")->valueint, 31);
    cJSON_Delete(set);
}

/* A page that shows the task's data back never gets it into a
 * fingerprint. */
static void scrub_takes_task_values_out(void **state)
{
    (void)state;
    cJSON *fp = cJSON_Parse("{\"role\":\"button\",\"name\":\"Select Louise Golicic\",\"label\":"
                            "\"\",\"tag\":\"button\",\"id\":\"row-300059049\",\"attrs\":[\"id\"],"
                            "\"near\":[\"Plans of LOUISE GOLICIC\",\"Member plans\"]}");
    const char *values[] = {"Louise Golicic", "300059049", "1", NULL};
    fp_scrub(fp, values, 4);
    char *t = cJSON_PrintUnformatted(fp);
    assert_null(strcasestr(t, "Golicic"));
    assert_null(strstr(t, "300059049"));
    assert_non_null(strstr(t, "Member plans"));
    assert_non_null(strstr(t, "\"button\"")); /* "1" is too short to look for */
    assert_true(fp_holds_value("button \"Select LOUISE GOLICIC\"", values, 4));
    assert_false(fp_holds_value("button \"Select\"", values, 4));
    free(t);
    cJSON_Delete(fp);
}

static void a_folder_of_sets(void **state)
{
    (void)state;
    char *dir = pt_mkdtemp("fp-unit"), sub[4096], err[256];
    snprintf(sub, sizeof(sub), "%s/fps", dir);
    cJSON *set, *sg;
    assert_int_equal(fp_dir_load(sub, "submit_claim", &set, &sg, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(set), 0);
    fp_put(set, "submit_claim.sop", 3, "click link \"Claims\"", cJSON_CreateObject());
    assert_int_equal(fp_dir_save(sub, "submit_claim", set, NULL, err, sizeof(err)), 0);
    cJSON_Delete(set);
    cJSON_Delete(sg);
    assert_int_equal(fp_dir_load(sub, "submit_claim", &set, &sg, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(set), 1);
    assert_int_equal(cJSON_GetArraySize(sg), 0);
    cJSON_Delete(set);
    cJSON_Delete(sg);
    assert_int_equal(fp_dir_load(sub, "../x", &set, &sg, err, sizeof(err)), -1);
    char bad[4200];
    snprintf(bad, sizeof(bad), "%s/broken.json", sub);
    assert_int_equal(pt_write_file(bad, "{}", 2, 0600), 0);
    assert_int_equal(fp_dir_load(sub, "broken", &set, &sg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a fingerprints file"));
    pt_rmtree(dir);
    free(dir);
}

PT_TESTS("fingerprint", cmocka_unit_test(text_similarity),
         cmocka_unit_test(the_same_field_under_a_new_id_is_decisive),
         cmocka_unit_test(two_lookalikes_are_ambiguous),
         cmocka_unit_test(nothing_alike_is_too_weak), cmocka_unit_test(a_frame_by_its_title),
         cmocka_unit_test(a_set_by_text_then_line), cmocka_unit_test(scrub_takes_task_values_out),
         cmocka_unit_test(a_folder_of_sets));
