/*
 * test_multipart.c - the streaming multipart parser: parts exactly as sent,
 * however the bytes are split, and every limit and malformation reported
 * with its byte offset.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "http/multipart.h"
#include "util/buf.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct collected {
    pt_buf log; /* "name|filename|type|data\n" per part */
    int refuse_at;
    int parts;
} collected;

static int begin(void *ud, const char *name, const char *filename, const char *type, char *err)
{
    collected *c = ud;
    if (++c->parts == c->refuse_at)
        return pt_errf(err, "part %s refused", name), -1;
    pt_buf_appendf(&c->log, "%s|%s|%s|", name, filename ? filename : "-", type ? type : "-");
    return 0;
}

static int data(void *ud, const char *d, size_t n, char *err)
{
    (void)err;
    collected *c = ud;
    pt_buf_append(&c->log, d, n);
    return 0;
}

static int end(void *ud, char *err)
{
    (void)err;
    collected *c = ud;
    pt_buf_append(&c->log, "\n", 1);
    return 0;
}

static const mp_callbacks cbs = {begin, data, end};

#define CT "multipart/form-data; boundary=XyZ123"
static const char body[] =
    "--XyZ123\r\n"
    "Content-Disposition: form-data; name=\"type\"\r\n\r\n"
    "submit_claim\r\n"
    "--XyZ123\r\n"
    "Content-Disposition: form-data; name=\"data\"\r\n\r\n"
    "member_id: 300059049\r\nDOB: 1949-12-23\r\n"
    "--XyZ123\r\n"
    "content-disposition: form-data; name=\"files\"; filename=\"a \\\"b\\\".pdf\"\r\n"
    "Content-Type: application/pdf\r\n\r\n"
    "%PDF-1.4\r\n--XyZ12 almost a boundary\r\n-\r\n--\r\n"
    "--XyZ123\r\n"
    "Content-Disposition: form-data; name=files; filename=empty.txt\r\n\r\n"
    "\r\n"
    "--XyZ123--\r\nepilogue, ignored\r\n--XyZ123\r\n";

static const char expected[] =
    "type|-|-|submit_claim\n"
    "data|-|-|member_id: 300059049\r\nDOB: 1949-12-23\n"
    "files|a \"b\".pdf|application/pdf|%PDF-1.4\r\n--XyZ12 almost a boundary\r\n-\r\n--\n"
    "files|empty.txt|-|\n";

static char *parse_split(const char *ct, const char *b, size_t len, size_t chunk,
                         const mp_limits *lim, int refuse_at, char *err)
{
    collected c = {.refuse_at = refuse_at};
    pt_buf_init(&c.log, 0);
    pt_buf_append(&c.log, "", 0);
    mp_parser *p = mp_new(ct, lim, &cbs, &c, err);
    if (!p) {
        pt_buf_free(&c.log);
        return NULL;
    }
    int rc = 0;
    for (size_t off = 0; off < len && !rc; off += chunk)
        rc = mp_feed(p, b + off, off + chunk <= len ? chunk : len - off, err);
    if (!rc)
        rc = mp_finish(p, err);
    mp_free(p);
    if (rc) {
        pt_buf_free(&c.log);
        return NULL;
    }
    return pt_buf_take(&c.log);
}

static void parts_as_sent_however_split(void **state)
{
    (void)state;
    char err[PT_ERR_MAX];
    size_t chunks[] = {sizeof(body), 1, 2, 3, 7, 10, 64};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        char *got = parse_split(CT, body, sizeof(body) - 1, chunks[i], NULL, 0, err);
        if (!got)
            fail_msg("chunk %zu: %s", chunks[i], err);
        assert_string_equal(got, expected);
        free(got);
    }
}

static void preamble_quoted_boundary_and_padding(void **state)
{
    (void)state;
    char err[PT_ERR_MAX];
    const char b[] = "this is a preamble\r\n--a b\r\n"
                     "Content-Disposition: form-data; name=x\r\n\r\nv\r\n--a b  \r\n"
                     "Content-Disposition: form-data; name=y\r\n\r\nw\r\n--a b--";
    char *got = parse_split("multipart/form-data; boundary=\"a b\"; charset=utf-8", b,
                            sizeof(b) - 1, 5, NULL, 0, err);
    if (!got)
        fail_msg("%s", err);
    assert_string_equal(got, "x|-|-|v\ny|-|-|w\n");
    free(got);
}

static void expect_error(const char *ct, const char *b, const mp_limits *lim, int refuse_at,
                         const char *want)
{
    char err[PT_ERR_MAX] = "";
    for (size_t chunk = 1; chunk <= strlen(b); chunk = chunk * 3 + 1) {
        char *got = parse_split(ct, b, strlen(b), chunk, lim, refuse_at, err);
        if (got)
            fail_msg("no error for %s (chunk %zu): %s", want, chunk, got);
        if (!strstr(err, want))
            fail_msg("chunk %zu: want \"%s\", got \"%s\"", chunk, want, err);
    }
}

static void malformed_bodies(void **state)
{
    (void)state;
    char err[PT_ERR_MAX];
    assert_null(mp_new("application/json", NULL, &cbs, NULL, err));
    assert_string_equal(err, "Content-Type is not multipart/form-data");
    assert_null(mp_new("multipart/form-data", NULL, &cbs, NULL, err));
    assert_string_equal(err, "multipart/form-data without a boundary");
    assert_null(mp_new("multipart/form-data; boundary=", NULL, &cbs, NULL, err));
    assert_null(mp_new("multipart/form-data; boundary=\"abc", NULL, &cbs, NULL, err));

    const char *part = "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx";
    expect_error("multipart/form-data; boundary=B", part, NULL, 0,
                 "the body ended at byte 48 before its closing boundary");
    expect_error("multipart/form-data; boundary=B", "", NULL, 0,
                 "the body ended at byte 0 before its closing boundary");
    expect_error("multipart/form-data; boundary=B", "--B\r\nno colon here\r\n\r\nx\r\n--B--", NULL,
                 0, "a part header is not 'Name: value' (at byte 5)");
    expect_error("multipart/form-data; boundary=B",
                 "--B\r\nContent-Disposition: form-data; filename=a\r\n\r\nx\r\n--B--", NULL, 0,
                 "a part has no name (at byte 5)");
    expect_error("multipart/form-data; boundary=B",
                 "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--", NULL, 0,
                 "a part has no Content-Disposition: form-data (at byte 5)");
    expect_error("multipart/form-data; boundary=B", "--Bxx\r\n", NULL, 0,
                 "expected a line break or -- after the boundary at byte 3");
}

static void limits_are_enforced(void **state)
{
    (void)state;
    const char *two = "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n0123456789\r\n"
                      "--B\r\nContent-Disposition: form-data; name=b\r\n\r\nx\r\n--B--";
    mp_limits parts = {.max_parts = 1};
    expect_error("multipart/form-data; boundary=B", two, &parts, 0,
                 "more than 1 parts (at byte 62)");
    mp_limits size = {.max_part_bytes = 5};
    expect_error("multipart/form-data; boundary=B", two, &size, 0,
                 "a part is over the 5-byte limit (at byte 52)");
    mp_limits headers = {.max_header_bytes = 20};
    expect_error("multipart/form-data; boundary=B", two, &headers, 0,
                 "a part's headers are over 20 bytes (at byte 5)");
    mp_limits total = {.max_total_bytes = 50};
    expect_error("multipart/form-data; boundary=B", two, &total, 0,
                 "the body is over the 50-byte limit");
    /* a refusing callback stops the parse with its own words */
    expect_error("multipart/form-data; boundary=B", two, NULL, 2, "part b refused");
}

/* The caller decides by the code, never by the words: PT_ELIMIT for every
 * cap, PT_EINVAL for a malformed body, a refusing callback's own code. */
static int feed_all(const char *b, const mp_limits *lim, int refuse_at)
{
    char err[PT_ERR_MAX];
    collected c = {.refuse_at = refuse_at};
    pt_buf_init(&c.log, 0);
    mp_parser *p = mp_new("multipart/form-data; boundary=B", lim, &cbs, &c, err);
    assert_non_null(p);
    int rc = mp_feed(p, b, strlen(b), err);
    if (!rc)
        rc = mp_finish(p, err);
    int again = mp_feed(p, "x", 1, err); /* a failed parser keeps its code */
    if (rc)
        assert_int_equal(again, rc);
    mp_free(p);
    pt_buf_free(&c.log);
    return rc;
}

static void errors_carry_a_code(void **state)
{
    (void)state;
    const char *two = "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n0123456789\r\n"
                      "--B\r\nContent-Disposition: form-data; name=b\r\n\r\nx\r\n--B--";
    mp_limits parts = {.max_parts = 1}, size = {.max_part_bytes = 5},
              headers = {.max_header_bytes = 20}, total = {.max_total_bytes = 50};
    assert_int_equal(feed_all(two, NULL, 0), PT_OK);
    assert_int_equal(feed_all(two, &parts, 0), PT_ELIMIT);
    assert_int_equal(feed_all(two, &size, 0), PT_ELIMIT);
    assert_int_equal(feed_all(two, &headers, 0), PT_ELIMIT);
    assert_int_equal(feed_all(two, &total, 0), PT_ELIMIT);
    assert_int_equal(feed_all("--B\r\nno colon here\r\n\r\nx\r\n--B--", NULL, 0), PT_EINVAL);
    assert_int_equal(feed_all("--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx", NULL, 0),
                     PT_EINVAL);
    assert_int_equal(feed_all(two, NULL, 2), PT_EFAIL); /* begin() returns -1 */
}

PT_TESTS("multipart", cmocka_unit_test(parts_as_sent_however_split),
         cmocka_unit_test(preamble_quoted_boundary_and_padding), cmocka_unit_test(malformed_bodies),
         cmocka_unit_test(limits_are_enforced), cmocka_unit_test(errors_carry_a_code));
