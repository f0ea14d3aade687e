/*
 * test_replay.c - record and replay: the four sandbox SOPs replayed from
 * fixtures/sandbox/ with no portal running (real Chromium, no network); an
 * edited fixture failing at the right SOP line, for replay and for
 * `lint --against`; a request the recording lacks; no secret or input value
 * in any recording; the HAR 1.2 structure.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "agent/sop.h"
#include "agent/vars.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *bin(void)
{
    const char *b = getenv("PORTIER_BIN");
    return b ? b : "./portier";
}

static void home(const char *rel, char *out, size_t n)
{
    assert_int_equal(pt_home_path(rel, out, n), 0);
}

/* `portier run` of a sandbox SOP on its example data, replaying dir. */
static int replay(const char *type, const char *dir, char **out, char **errout)
{
    char sopf[4200], data[4200], secrets[4200], file[4200], rel[256];
    snprintf(rel, sizeof(rel), "sops/sandbox/%s.sop", type);
    home(rel, sopf, sizeof(sopf));
    snprintf(rel, sizeof(rel), "sops/sandbox/examples/%s.txt", type);
    home(rel, data, sizeof(data));
    home("sops/sandbox/sandbox.secrets", secrets, sizeof(secrets));
    const char *argv[16] = {bin(),       "run",   sopf,       "--data", data,
                            "--secrets", secrets, "--replay", dir};
    int n = 9;
    if (!strcmp(type, "submit_appeal") || !strcmp(type, "appeal_plan"))
        home("sops/sandbox/examples/submit_appeal/appeal-letter.pdf", file, sizeof(file));
    if (!strcmp(type, "submit_prior_authorization"))
        home("sops/sandbox/examples/submit_prior_authorization/clinical-notes.pdf", file,
             sizeof(file));
    if (!strcmp(type, "submit_appeal") || !strcmp(type, "submit_prior_authorization") ||
        !strcmp(type, "appeal_plan")) {
        argv[n++] = "--file";
        argv[n++] = file;
    }
    argv[n] = NULL;
    char *tmp = pt_mkdtemp("replay-run");
    char env[4300];
    snprintf(env, sizeof(env), "TMPDIR=%s", tmp);
    char *const envs[] = {env, NULL};
    int rc = tp_run((char *const *)argv, envs, out, errout, 0);
    assert_int_equal(tp_wait_none(tmp, 5000), 0); /* no Chromium left */
    pt_rmtree(tmp);
    free(tmp);
    return rc;
}

static void replay_fixture(const char *type)
{
    char dir[4200], rel[256];
    snprintf(rel, sizeof(rel), "fixtures/sandbox/%s", type);
    home(rel, dir, sizeof(dir));
    char *out = NULL, *err = NULL;
    int rc = replay(type, dir, &out, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n%s\n", out ? out : "", err ? err : "");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"status\":\"completed\""));
    assert_null(strstr(err, "differs from the recording"));
    free(out);
    free(err);
}

/* Nothing listens on the recorded ports: every answer comes from the file. */
static void test_replay_submit_claim(void **state)
{
    (void)state;
    replay_fixture("submit_claim");
}

static void test_replay_check_eligibility(void **state)
{
    (void)state;
    replay_fixture("check_eligibility");
}

static void test_replay_prior_authorization(void **state)
{
    (void)state;
    replay_fixture("submit_prior_authorization");
}

static void test_replay_appeal(void **state)
{
    (void)state;
    replay_fixture("submit_appeal");
}

/* Shadow-DOM fields, a typeahead, a table, pages, a drop zone and a
 * confirm(), all from the recording. */
static void test_replay_plan_appeal(void **state)
{
    (void)state;
    replay_fixture("appeal_plan");
}

/* Copies a fixture into a fresh folder, replacing `from` with `to` in every
 * file (as written in HTML, and as escaped inside the HAR's JSON). */
static char *edited_copy(const char *type, const char *from, const char *to)
{
    char src[4200], rel[256];
    snprintf(rel, sizeof(rel), "fixtures/sandbox/%s", type);
    home(rel, src, sizeof(src));
    char *dst = pt_mkdtemp("fixture-edit");
    const char *subs[] = {"", "/dom"};
    for (size_t k = 0; k < 2; k++) {
        char sd[4400], dd[4400];
        snprintf(sd, sizeof(sd), "%s%s", src, subs[k]);
        snprintf(dd, sizeof(dd), "%s%s", dst, subs[k]);
        mkdir(dd, 0700);
        DIR *d = opendir(sd);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char sp[4700], dp[4700], *text = NULL;
            snprintf(sp, sizeof(sp), "%s/%s", sd, e->d_name);
            snprintf(dp, sizeof(dp), "%s/%s", dd, e->d_name);
            struct stat stt;
            if (stat(sp, &stt) < 0 || !S_ISREG(stt.st_mode) ||
                pt_read_file(sp, 64u << 20, &text, NULL) < 0)
                continue;
            /* both spellings: raw, and with the quotes escaped (JSON) */
            char *cur = text;
            for (int pass = 0; pass < 2; pass++) {
                char f[256], t[256];
                snprintf(f, sizeof(f), "%s", from);
                snprintf(t, sizeof(t), "%s", to);
                if (pass) { /* id="x" -> id=\"x\" */
                    char *q;
                    char ef[256] = "", et[256] = "";
                    for (q = f; *q; q++)
                        snprintf(ef + strlen(ef), sizeof(ef) - strlen(ef),
                                 *q == '"' ? "\\\"" : "%c", *q);
                    for (q = t; *q; q++)
                        snprintf(et + strlen(et), sizeof(et) - strlen(et),
                                 *q == '"' ? "\\\"" : "%c", *q);
                    snprintf(f, sizeof(f), "%s", ef);
                    snprintf(t, sizeof(t), "%s", et);
                }
                size_t fl = strlen(f);
                char *outb = NULL;
                size_t ol = 0;
                FILE *m = open_memstream(&outb, &ol);
                for (char *p = cur, *hit; *p; p = hit + fl) {
                    hit = strstr(p, f);
                    if (!hit) {
                        fputs(p, m);
                        break;
                    }
                    fwrite(p, 1, (size_t)(hit - p), m);
                    fputs(t, m);
                }
                fclose(m);
                if (cur != text)
                    free(cur);
                cur = outb;
            }
            pt_write_file(dp, cur, strlen(cur), 0600);
            if (cur != text)
                free(cur);
            free(text);
        }
        if (d)
            closedir(d);
    }
    return dst;
}

/* The line of the first step containing `needle` in a sandbox SOP. */
static int line_of(const char *type, const char *needle)
{
    char path[4200], rel[256], *text = NULL;
    snprintf(rel, sizeof(rel), "sops/sandbox/%s.sop", type);
    home(rel, path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1u << 20, &text, NULL), 0);
    char *hit = strstr(text, needle);
    assert_non_null(hit);
    int line = 1;
    for (char *p = text; p < hit; p++)
        line += *p == '\n';
    free(text);
    return line;
}

/* The portal renamed an element's id: replay fails at the SOP line that
 * needs it, and lint --against reports that same line, offline. */
static void test_renamed_id_fails_at_its_line(void **state)
{
    (void)state;
    char *dir = edited_copy("submit_claim", "id=\"member_id\"", "id=\"member_number\"");
    int line = line_of("submit_claim", "fill label \"Member ID\"");
    char want[64];
    snprintf(want, sizeof(want), "submit_claim.sop:%d", line);
    char *out = NULL, *err = NULL;
    int rc = replay("submit_claim", dir, &out, &err);
    assert_int_equal(rc, 11);
    assert_non_null(strstr(out, "\"status\":\"failed\""));
    if (!strstr(out, want))
        fail_msg("replay did not fail at %s: %s", want, out);
    free(out);
    free(err);

    char sopf[4200];
    home("sops/sandbox/submit_claim.sop", sopf, sizeof(sopf));
    const char *argv[] = {bin(), "lint", sopf, "--against", dir, NULL};
    rc = tp_run((char *const *)argv, NULL, &out, &err, 0);
    assert_int_equal(rc, 1);
    snprintf(want, sizeof(want), "submit_claim.sop:%d:", line);
    if (!strstr(err, want) || !strstr(err, "fill label \"Member ID\": no match in http://"))
        fail_msg("lint --against did not report %s: %s", want, err);
    free(out);
    free(err);
    /* and the untouched fixture lints clean */
    char fixture[4200];
    home("fixtures/sandbox/submit_claim", fixture, sizeof(fixture));
    const char *argv2[] = {bin(), "lint", sopf, "--against", fixture, NULL};
    rc = tp_run((char *const *)argv2, NULL, &out, &err, 0);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    pt_rmtree(dir);
    free(dir);
}

/* A request the recording lacks fails the run, naming the URL and the SOP
 * line that caused it. */
static void test_missing_request_named(void **state)
{
    (void)state;
    char *dir = edited_copy("submit_claim", "/api/claims\"", "/api/claims-gone\"");
    char *out = NULL, *err = NULL;
    int rc = replay("submit_claim", dir, &out, &err);
    assert_int_equal(rc, 11);
    int line = line_of("submit_claim", "click button \"Submit claim\"");
    char want[64];
    snprintf(want, sizeof(want), "submit_claim.sop:%d", line);
    if (!strstr(out, "the recording has no POST http://127.0.0.1:") ||
        !strstr(out, "/api/claims") || !strstr(out, want))
        fail_msg("expected the missing request and %s: %s", want, out);
    free(out);
    free(err);
    pt_rmtree(dir);
    free(dir);
}

static void scan(const char *dir, const char *const *markers, size_t n)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4400], *text = NULL;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            scan(path, markers, n);
            continue;
        }
        if (pt_read_file(path, 64u << 20, &text, NULL) < 0)
            continue;
        /* a value inside longer text ("Sandbox Health PPO Gold") is not
         * that value; one standing alone (a field, a JSON string, a text
         * node) is */
        for (size_t i = 0; i < n; i++)
            for (const char *h = strstr(text, markers[i]); h; h = strstr(h + 1, markers[i])) {
                size_t l = strlen(markers[i]);
                char b = h > text ? h[-1] : '\0', a = h[l];
#define WORD(c) (isalnum((unsigned char)(c)) || (c) == '-' || (c) == '_')
                int inside = WORD(b) || WORD(a) || (b == ' ' && h > text + 1 && WORD(h[-2])) ||
                             (a == ' ' && WORD(h[l + 1]));
#undef WORD
                if (!inside)
                    fail_msg("%s contains '%s'", path, markers[i]);
            }
        free(text);
    }
    closedir(d);
}

/* The markers of a fixture: every secret, and every value its SOP's
 * declared inputs take from the example data (4 characters or more), as
 * typed and in the US date form. */
static size_t markers_of(const char *type, char **m, size_t max)
{
    char path[4200], rel[256], *text = NULL;
    size_t n = 0;
    snprintf(rel, sizeof(rel), "sops/sandbox/%s.sop", type);
    home(rel, path, sizeof(path));
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    sop_diags_free(&d);
    assert_non_null(s);
    snprintf(rel, sizeof(rel), "sops/sandbox/examples/%s.txt", type);
    home(rel, path, sizeof(path));
    assert_int_equal(pt_read_file(path, 1u << 20, &text, NULL), 0);
    vars *data = vars_new(), *in = vars_new(), *sec = vars_new();
    char errs[2048];
    assert_int_equal(vars_parse_data(data, text, errs, sizeof(errs)), 0);
    assert_int_equal(vars_bind_inputs(s, data, NULL, in, errs, sizeof(errs)), 0);
    for (size_t i = 0; i < vars_count(in) && n + 2 < max; i++) {
        const char *v = vars_get(in, vars_name(in, i));
        if (strlen(v) < 4)
            continue;
        m[n++] = strdup(v);
        if (vars_is_date(in, vars_name(in, i)) &&
            asprintf(&m[n], "%.2s/%.2s/%.4s", v + 5, v + 8, v) > 0)
            n++;
    }
    home("sops/sandbox/sandbox.secrets", path, sizeof(path));
    char err[512];
    assert_int_equal(vars_load_secrets(sec, path, err), 0);
    for (size_t i = 0; i < vars_count(sec) && n < max; i++)
        m[n++] = strdup(vars_get(sec, vars_name(sec, i)));
    vars_free(data);
    vars_free(in);
    vars_free(sec);
    sop_free(s);
    free(text);
    return n;
}

/* No secret, and no value of a declared input, anywhere in a recording;
 * the one-time code became a placeholder. */
static void test_no_secrets_or_inputs_recorded(void **state)
{
    (void)state;
    const char *types[] = {"submit_claim", "check_eligibility", "submit_prior_authorization",
                           "submit_appeal"};
    size_t total = 0;
    for (size_t t = 0; t < 4; t++) {
        char *m[64];
        size_t n = markers_of(types[t], m, 64);
        assert_true(n >= 4);
        total += n;
        char dir[4200], rel[256];
        snprintf(rel, sizeof(rel), "fixtures/sandbox/%s", types[t]);
        home(rel, dir, sizeof(dir));
        scan(dir, (const char *const *)m, n);
        for (size_t i = 0; i < n; i++)
            free(m[i]);
    }
    fprintf(stderr, "%zu markers checked in 4 recordings\n", total);
    char dir[4200];
    home("fixtures/sandbox", dir, sizeof(dir));
    char har[4300], *text = NULL;
    snprintf(har, sizeof(har), "%s/submit_claim/session.har", dir);
    assert_int_equal(pt_read_file(har, 64u << 20, &text, NULL), 0);
    assert_non_null(strstr(text, "{\\\"code\\\":\\\"{{totp.portal_totp}}\\\"}"));
    assert_non_null(strstr(text, "{{secret.portal_password}}"));
    assert_non_null(strstr(text, "{{input.member_id}}"));
    free(text);
}

static void need(const cJSON *o, const char *key, int type, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int ok = v && (type == cJSON_Number   ? cJSON_IsNumber(v)
                   : type == cJSON_String ? cJSON_IsString(v)
                   : type == cJSON_Array  ? cJSON_IsArray(v)
                                          : cJSON_IsObject(v));
    if (!ok)
        fail_msg("%s: %s is missing or of the wrong type", where, key);
}

static void name_values(const cJSON *arr, const char *where)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        need(x, "name", cJSON_String, where);
        need(x, "value", cJSON_String, where);
    }
}

/* The HAR 1.2 structure (its required fields and types), for each fixture. */
static void test_har_structure(void **state)
{
    (void)state;
    const char *types[] = {"submit_claim", "check_eligibility", "submit_prior_authorization",
                           "submit_appeal"};
    for (size_t i = 0; i < 4; i++) {
        char path[4200], rel[256], *text = NULL;
        snprintf(rel, sizeof(rel), "fixtures/sandbox/%s/session.har", types[i]);
        home(rel, path, sizeof(path));
        assert_int_equal(pt_read_file(path, 64u << 20, &text, NULL), 0);
        cJSON *har = cJSON_Parse(text);
        free(text);
        assert_non_null(har);
        cJSON *log = cJSON_GetObjectItem(har, "log");
        need(har, "log", cJSON_Object, path);
        need(log, "version", cJSON_String, "log");
        assert_string_equal(cJSON_GetObjectItem(log, "version")->valuestring, "1.2");
        need(log, "creator", cJSON_Object, "log");
        need(cJSON_GetObjectItem(log, "creator"), "name", cJSON_String, "creator");
        need(cJSON_GetObjectItem(log, "creator"), "version", cJSON_String, "creator");
        need(log, "entries", cJSON_Array, "log");
        assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(log, "entries")) > 5);
        cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "entries"))
        {
            need(e, "startedDateTime", cJSON_String, "entry");
            need(e, "time", cJSON_Number, "entry");
            need(e, "request", cJSON_Object, "entry");
            need(e, "response", cJSON_Object, "entry");
            need(e, "cache", cJSON_Object, "entry");
            need(e, "timings", cJSON_Object, "entry");
            cJSON *rq = cJSON_GetObjectItem(e, "request"), *rs = cJSON_GetObjectItem(e, "response");
            cJSON *tm = cJSON_GetObjectItem(e, "timings");
            static const char *const rqs[] = {"method", "url", "httpVersion"};
            for (size_t k = 0; k < 3; k++)
                need(rq, rqs[k], cJSON_String, "request");
            need(rq, "cookies", cJSON_Array, "request");
            need(rq, "headers", cJSON_Array, "request");
            need(rq, "queryString", cJSON_Array, "request");
            need(rq, "headersSize", cJSON_Number, "request");
            need(rq, "bodySize", cJSON_Number, "request");
            name_values(cJSON_GetObjectItem(rq, "headers"), "request header");
            name_values(cJSON_GetObjectItem(rq, "queryString"), "queryString");
            cJSON *pd = cJSON_GetObjectItem(rq, "postData");
            if (pd)
                need(pd, "mimeType", cJSON_String, "postData");
            need(rs, "status", cJSON_Number, "response");
            need(rs, "statusText", cJSON_String, "response");
            need(rs, "httpVersion", cJSON_String, "response");
            need(rs, "cookies", cJSON_Array, "response");
            need(rs, "headers", cJSON_Array, "response");
            need(rs, "content", cJSON_Object, "response");
            need(rs, "redirectURL", cJSON_String, "response");
            need(rs, "headersSize", cJSON_Number, "response");
            need(rs, "bodySize", cJSON_Number, "response");
            need(cJSON_GetObjectItem(rs, "content"), "size", cJSON_Number, "content");
            need(cJSON_GetObjectItem(rs, "content"), "mimeType", cJSON_String, "content");
            name_values(cJSON_GetObjectItem(rs, "headers"), "response header");
            need(tm, "send", cJSON_Number, "timings");
            need(tm, "wait", cJSON_Number, "timings");
            need(tm, "receive", cJSON_Number, "timings");
            /* ISO 8601 */
            const char *at = cJSON_GetObjectItem(e, "startedDateTime")->valuestring;
            assert_true(strlen(at) == 24 && at[10] == 'T' && at[23] == 'Z');
        }
        cJSON_Delete(har);
    }
}

/* Adds to a recording's steps.json the text of each step's line, as a
 * recording made now writes it. */
static void add_sources(const char *dir, const sop_block *b, cJSON *steps)
{
    for (size_t i = 0; i < b->n; i++) {
        const sop_step *st = &b->steps[i];
        const char *base = strrchr(st->file, '/');
        cJSON *x;
        cJSON_ArrayForEach(x, steps)
        {
            cJSON *f = cJSON_GetObjectItem(x, "file"), *l = cJSON_GetObjectItem(x, "line");
            if (cJSON_IsString(f) && !strcmp(f->valuestring, base ? base + 1 : st->file) &&
                cJSON_IsNumber(l) && l->valueint == st->line && !cJSON_GetObjectItem(x, "source"))
                cJSON_AddStringToObject(x, "source", st->source);
        }
        add_sources(dir, &st->body, steps);
        add_sources(dir, &st->otherwise, steps);
    }
}

/* A copy of submit_claim.sop (and login.sop) in a new folder with three
 * comment lines on top, and `from` replaced by `to`: its path. */
static char *moved_sop(const char *from, const char *to, char *folder_out)
{
    char *folder = pt_mkdtemp("moved-sop");
    const char *names[] = {"submit_claim.sop", "login.sop"};
    for (int k = 0; k < 2; k++) {
        char src[4200], dst[4400], rel[256], *text = NULL;
        snprintf(rel, sizeof(rel), "sops/sandbox/%s", names[k]);
        home(rel, src, sizeof(src));
        assert_int_equal(pt_read_file(src, 1u << 20, &text, NULL), 0);
        char *hit = k == 0 ? strstr(text, from) : NULL;
        char *out = NULL;
        if (k == 0)
            assert_true(asprintf(&out, "# moved\n# moved\n# moved\n%.*s%s%s", (int)(hit - text),
                                 text, to, hit + strlen(from)) > 0);
        snprintf(dst, sizeof(dst), "%s/%s", folder, names[k]);
        pt_write_file(dst, out ? out : text, strlen(out ? out : text), 0600);
        free(out);
        free(text);
    }
    snprintf(folder_out, 4200, "%s", folder);
    char *path = NULL;
    assert_true(asprintf(&path, "%s/submit_claim.sop", folder) > 0);
    free(folder);
    return path;
}

static int lint_json(const char *sopf, const char *dir, cJSON **arr)
{
    char *out = NULL, *err = NULL;
    const char *argv[] = {bin(), "lint", sopf, "--against", dir, "--format", "json", NULL};
    int rc = tp_run((char *const *)argv, NULL, &out, &err, 0);
    *arr = cJSON_Parse(out);
    if (!cJSON_IsArray(*arr))
        fail_msg("lint --format json printed no array: %s", out);
    assert_non_null(strstr(err, "1 file: ")); /* the summary stays on stderr */
    free(out);
    free(err);
    return rc;
}

/* Steps are matched to the recording by their text when their lines moved:
 * a clean SOP stays clean, a broken locator on a moved line is reported,
 * as JSON objects with file, line, column, severity, message, suggestion;
 * steps that did not act in the recording are warnings, not silence. */
static void test_lint_against_moved_lines_json(void **state)
{
    (void)state;
    char *dir = edited_copy("submit_claim", "id=\"member_id\"", "id=\"member_id\"");
    char sp[4200], smap[4400], *text = NULL;
    home("sops/sandbox/submit_claim.sop", sp, sizeof(sp));
    sop_diags d = {0};
    sop *s = sop_parse_file(sp, &d);
    sop_diags_free(&d);
    assert_non_null(s);
    snprintf(smap, sizeof(smap), "%s/steps.json", dir);
    assert_int_equal(pt_read_file(smap, 64u << 20, &text, NULL), 0);
    cJSON *steps = cJSON_Parse(text);
    free(text);
    add_sources(dir, &s->steps, steps);
    text = cJSON_Print(steps);
    pt_write_file(smap, text, strlen(text), 0600);
    free(text);
    cJSON_Delete(steps);
    sop_free(s);

    char folder[4200];
    int line = line_of("submit_claim", "fill label \"Member ID\"");
    char *clean = moved_sop("fill label \"Member ID\"", "fill label \"Member ID\"", folder);
    cJSON *arr = NULL;
    assert_int_equal(lint_json(clean, dir, &arr), 0);
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "severity")), "warning"))
            fail_msg("a moved, clean SOP gave an error: %s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(x, "message")));
    }
    cJSON_Delete(arr);
    free(clean);
    pt_rmtree(folder);

    char *broken = moved_sop("fill label \"Member ID\"", "fill label \"Member Number\"", folder);
    assert_int_equal(lint_json(broken, dir, &arr), 1);
    int errors = 0;
    cJSON_ArrayForEach(x, arr)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(x, "severity")), "error"))
            continue;
        errors++;
        assert_int_equal(cJSON_GetObjectItem(x, "line")->valueint, line + 3);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(x, "column")));
        assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(x, "message")),
                               "label \"Member Number\": not checked") == NULL
                            ? cJSON_GetStringValue(cJSON_GetObjectItem(x, "message"))
                            : NULL);
        assert_non_null(cJSON_GetObjectItem(x, "suggestion"));
        assert_non_null(
            strstr(cJSON_GetStringValue(cJSON_GetObjectItem(x, "file")), "submit_claim.sop"));
    }
    assert_int_equal(errors, 1);
    cJSON_Delete(arr);
    free(broken);
    pt_rmtree(folder);
    pt_rmtree(dir);
    free(dir);
}

PT_TESTS("replay", cmocka_unit_test(test_replay_submit_claim),
         cmocka_unit_test(test_replay_check_eligibility),
         cmocka_unit_test(test_replay_prior_authorization), cmocka_unit_test(test_replay_appeal),
         cmocka_unit_test(test_replay_plan_appeal),
         cmocka_unit_test(test_renamed_id_fails_at_its_line),
         cmocka_unit_test(test_missing_request_named),
         cmocka_unit_test(test_no_secrets_or_inputs_recorded), cmocka_unit_test(test_har_structure),
         cmocka_unit_test(test_lint_against_moved_lines_json));
