/*
 * test_util.c - the shared helpers: base64, capped buffers, time formats,
 * log masking, file helpers.
 */
#include "tests/support/testmain.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void base64_round_trips(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", ""},
                              {"f", "Zg=="},
                              {"fo", "Zm8="},
                              {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *e = pt_b64_encode(cases[i][0], strlen(cases[i][0]));
        assert_string_equal(e, cases[i][1]);
        size_t n = 0;
        unsigned char *d = pt_b64_decode(e, strlen(e), &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(d, cases[i][0], n);
        free(d);
        free(e);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *e = pt_b64_encode(all, sizeof(all));
    size_t n = 0;
    unsigned char *d = pt_b64_decode(e, strlen(e), &n);
    assert_int_equal(n, 256);
    assert_memory_equal(d, all, 256);
    free(d);
    free(e);
}

static void base64_rejects_garbage(void **state)
{
    (void)state;
    size_t n;
    assert_null(pt_b64_decode("Zm9v!", 5, &n));
    assert_null(pt_b64_decode("Zg==Zg", 6, &n));
    unsigned char *d = pt_b64_decode("Zm9v\nYmFy", 9, &n); /* line breaks are fine */
    assert_non_null(d);
    assert_memory_equal(d, "foobar", 6);
    free(d);
}

static void buffer_respects_cap(void **state)
{
    (void)state;
    pt_buf b;
    pt_buf_init(&b, 10);
    assert_int_equal(pt_buf_append(&b, "12345", 5), 0);
    assert_int_equal(pt_buf_appendf(&b, "%d", 678), 0);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(pt_buf_append(&b, "abc", 3), -1); /* would be 11 */
    assert_string_equal(b.data, "12345678");           /* unchanged */
    assert_int_equal(b.len, 8);
    assert_int_equal(pt_buf_append(&b, "ab", 2), 0);
    assert_int_equal(b.len, 10);
    char *taken = pt_buf_take(&b);
    assert_string_equal(taken, "12345678ab");
    assert_null(b.data);
    free(taken);
    pt_buf_free(&b);
}

static void time_formats_as_the_api_does(void **state)
{
    (void)state;
    char out[25];
    pt_iso8601(1742299200000LL, out);
    assert_string_equal(out, "2025-03-18T12:00:00.000Z");
    pt_iso8601(1742299500123LL, out);
    assert_string_equal(out, "2025-03-18T12:05:00.123Z");
    int64_t a = pt_mono_ms();
    pt_sleep_ms(5);
    assert_true(pt_mono_ms() >= a + 5);
}

/* ISO-8601 as clients send it: dates, date-times with a zone; nothing else. */
static void time_parses_iso8601(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(pt_iso8601_parse("2025-03-18T12:00:00.000Z", &ms), 0);
    assert_true(ms == 1742299200000LL);
    assert_int_equal(pt_iso8601_parse("2025-03-18T12:05:00.123Z", &ms), 0);
    assert_true(ms == 1742299500123LL);
    assert_int_equal(pt_iso8601_parse("2025-03-18T14:00+02:00", &ms), 0);
    assert_true(ms == 1742299200000LL);
    assert_int_equal(pt_iso8601_parse("2025-03-18", &ms), 0);
    assert_true(ms == 1742256000000LL);
    assert_int_equal(pt_iso8601_parse("2024-02-29", &ms), 0);
    assert_int_equal(pt_iso8601_parse("1970-01-01T00:00:00Z", &ms), 0);
    assert_true(ms == 0);
    static const char *const bad[] = {"",
                                      "2025",
                                      "2025-13-01",
                                      "2025-02-29",
                                      "2025-03-18T12",
                                      "2025-03-18T12:00",
                                      "2025-03-18 12:00Z",
                                      "2025-03-18T25:00Z",
                                      "yesterday",
                                      "2025-03-18T12:00:00.Z",
                                      "2025-03-18T12:00+0200"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pt_iso8601_parse(bad[i], &ms) == 0)
            fail_msg("'%s' parsed", bad[i]);
}

/* Runs fn with stderr sent to a file; returns what was written (malloc'd). */
static char *capture_log(void (*fn)(void *), void *ud)
{
    char path[] = "/tmp/portier-logtest-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(ud);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char *text = NULL;
    assert_int_equal(pt_read_file(path, 1 << 16, &text, NULL), 0);
    unlink(path);
    return text;
}

static void log_some_masked(void *ud)
{
    (void)ud;
    pt_log_mask("hunter2-secret");
    pt_log_mask("ab"); /* too short to mask */
    PT_INFO("test", "password is hunter2-secret, twice hunter2-secret; ab stays");
    PT_DEBUG("test", "not shown at info");
}

static void log_masks_registered_values(void **state)
{
    (void)state;
    pt_log_set_level(PT_LOG_INFO);
    char *text = capture_log(log_some_masked, NULL);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "password is ***, twice ***; ab stays"));
    assert_null(strstr(text, "not shown"));
    assert_non_null(strstr(text, " info  test: "));
    free(text);
    pt_log_mask_clear();
}

struct scope_step {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase; /* 0 start, 1 masked and waiting, 2 logged by main, 3 closed */
};

static void scope_wait(struct scope_step *st, int phase)
{
    pthread_mutex_lock(&st->mu);
    while (st->phase < phase)
        pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
}

static void scope_set(struct scope_step *st, int phase)
{
    pthread_mutex_lock(&st->mu);
    st->phase = phase;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* A task's thread: opens a scope, masks its secret, waits while another
 * thread logs it, then closes the scope. */
static void *scoped_task(void *ud)
{
    struct scope_step *st = ud;
    pt_log_scope_open();
    pt_log_mask("task-one-secret");
    scope_set(st, 1);
    scope_wait(st, 2);
    pt_log_scope_close();
    scope_set(st, 3);
    return NULL;
}

static void log_from_two_threads(void *ud)
{
    struct scope_step *st = ud;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, scoped_task, st), 0);
    scope_wait(st, 1);
    PT_INFO("test", "while open: task-one-secret");
    scope_set(st, 2);
    scope_wait(st, 3);
    PT_INFO("test", "after close: task-one-secret");
    pthread_join(t, NULL);
}

static void log_masks_are_scoped_to_a_run(void **state)
{
    (void)state;
    pt_log_set_level(PT_LOG_INFO);
    struct scope_step st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    char *text = capture_log(log_from_two_threads, &st);
    /* masked in a line another thread wrote while the run was open ... */
    assert_non_null(strstr(text, "while open: ***"));
    /* ... and forgotten when the run closed its scope */
    assert_non_null(strstr(text, "after close: task-one-secret"));
    free(text);
}

static void log_many_values(void *ud)
{
    (void)ud;
    char v[32];
    for (int i = 0; i < PT_LOG_MASK_MAX + 10; i++) {
        snprintf(v, sizeof(v), "value-%03d", i);
        pt_log_mask(v);
    }
    PT_INFO("test", "first value-000 last value-%03d", PT_LOG_MASK_MAX + 9);
}

static void log_mask_scope_is_capped(void **state)
{
    (void)state;
    pt_log_set_level(PT_LOG_INFO);
    pt_log_scope_open();
    char *text = capture_log(log_many_values, NULL);
    pt_log_scope_close();
    /* the oldest values gave way; the newest are masked */
    assert_non_null(strstr(text, "first value-000 last ***"));
    free(text);
}

static void files_and_trees(void **state)
{
    (void)state;
    char *dir = pt_mkdtemp("portier-test");
    assert_non_null(dir);
    char sub[512], file[600];
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    snprintf(file, sizeof(file), "%s/a", dir);
    assert_int_equal(mkdir(file, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof(file), "%s/x.txt", sub);
    assert_int_equal(pt_write_file(file, "hello", 5, 0600), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(pt_read_file(file, 100, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    assert_int_equal(pt_read_file(file, 3, &data, &len), -1); /* over the cap */
    assert_int_equal(pt_rmtree(dir), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    free(dir);
    char p[4096];
    assert_int_equal(pt_home_path("sops", p, sizeof(p)), 0);
    assert_non_null(strstr(p, "/sops"));
}

static void totp_matches_rfc6238(void **state)
{
    (void)state;
    /* RFC 6238 appendix B, SHA-1: the seed is ASCII "12345678901234567890";
     * the RFC prints 8 digits, the 6-digit code is their last six. */
    const char *seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const struct {
        int64_t t;
        const char *code;
    } v[] = {{59, "287082"},         {1111111109, "081804"}, {1111111111, "050471"},
             {1234567890, "005924"}, {2000000000, "279037"}, {20000000000LL, "353130"}};
    char out[7];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(pt_totp(seed, v[i].t, out), 0);
        assert_string_equal(out, v[i].code);
    }
    /* lower case, spaces and padding are what people paste */
    assert_int_equal(pt_totp("gezd gnbv gy3t qojq gezd gnbv gy3t qojq==", 59, out), 0);
    assert_string_equal(out, "287082");
    assert_int_equal(pt_totp("not base32!", 59, out), -1);
}

static void sha256_and_random(void **state)
{
    (void)state;
    char hex[65];
    pt_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    pt_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char a[33], b[33];
    assert_int_equal(pt_random_hex(a, 32), 0);
    assert_int_equal(pt_random_hex(b, 32), 0);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
    assert_true(pt_equal_ct("same", "same", 4));
    assert_false(pt_equal_ct("same", "sane", 4));
}

static void log_json_and_foreign(void *ud)
{
    (void)ud;
    pt_log_mask("hunter2-secret");
    PT_WARN("api", "a \"quoted\" hunter2-secret\tand a tab");
    pt_log_foreign("lws", "[2026/12/02 04:00:00:0000] E: raw library line\n");
}

/* PORTIER_LOG_FORMAT=json: one JSON object per line, masked; a library's
 * own lines only at debug. */
static void log_as_json_lines_and_foreign_at_debug(void **state)
{
    (void)state;
    setenv("PORTIER_LOG_FORMAT", "json", 1);
    setenv("PORTIER_LOG", "info", 1);
    pt_log_init();
    char *text = capture_log(log_json_and_foreign, NULL);
    assert_non_null(strstr(text, "\"level\":\"warn\",\"module\":\"api\","
                                 "\"msg\":\"a \\\"quoted\\\" ***\\u0009and a tab\"}\n"));
    assert_int_equal(text[0], '{');
    assert_null(strstr(text, "raw library line")); /* not at info */
    assert_null(strstr(text, "hunter2"));
    free(text);
    setenv("PORTIER_LOG", "debug", 1);
    pt_log_init();
    text = capture_log(log_json_and_foreign, NULL);
    assert_non_null(strstr(text, "\"level\":\"debug\",\"module\":\"lws\",\"msg\":\"[2026/12/02 "
                                 "04:00:00:0000] E: raw library line\"}\n"));
    free(text);
    unsetenv("PORTIER_LOG_FORMAT");
    unsetenv("PORTIER_LOG");
    pt_log_init();
    pt_log_set_level(PT_LOG_INFO);
    pt_log_mask_clear();
}

PT_TESTS("util", cmocka_unit_test(totp_matches_rfc6238), cmocka_unit_test(sha256_and_random),
         cmocka_unit_test(base64_round_trips), cmocka_unit_test(base64_rejects_garbage),
         cmocka_unit_test(buffer_respects_cap), cmocka_unit_test(time_formats_as_the_api_does),
         cmocka_unit_test(time_parses_iso8601), cmocka_unit_test(log_masks_registered_values),
         cmocka_unit_test(log_masks_are_scoped_to_a_run),
         cmocka_unit_test(log_mask_scope_is_capped), cmocka_unit_test(files_and_trees),
         cmocka_unit_test(log_as_json_lines_and_foreign_at_debug));
