/*
 * testapi.c - see testapi.h.
 */
#define _GNU_SOURCE
#include "tests/support/testapi.h"
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tc_response ts_api(const ts_server *s, const char *key, const char *method, const char *path,
                   const char *ctype, const char *body, size_t len)
{
    tc_client *c = tc_new();
    char h[256], url[512];
    if (key) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s", key);
        tc_header(c, h);
    }
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    tc_response r = tc_request(c, method, url, ctype, body, body && !len ? strlen(body) : len);
    tc_free(c);
    return r;
}

tc_response ts_post_form(const ts_server *s, const char *type, const char *data,
                         const char *filename, const char *file, size_t len)
{
    const char *bd = "portierTestBoundary7MA4YWxkTrZu0gW";
    char *body = NULL, ctype[128];
    size_t blen = 0;
    FILE *f = open_memstream(&body, &blen);
    fprintf(f,
            "--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n%s\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n%s\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"files\"; "
            "filename=\"%s\"\r\nContent-Type: application/pdf\r\n\r\n",
            bd, type, bd, data, bd, filename);
    fwrite(file, 1, len, f);
    fprintf(f, "\r\n--%s--\r\n", bd);
    fclose(f);
    snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", bd);
    tc_response r = ts_api(s, s->key, "POST", "/tasks", ctype, body, blen);
    free(body);
    return r;
}

cJSON *ts_post_json(const ts_server *s, const char *body, long want)
{
    tc_response r = ts_api(s, s->key, "POST", "/tasks", "application/json", body, 0);
    if (r.status != want)
        fprintf(stderr, "POST /tasks: %ld %s\n", r.status, r.body ? r.body : "");
    assert_int_equal(r.status, want);
    cJSON *o = cJSON_Parse(r.body);
    tc_response_free(&r);
    assert_non_null(o);
    return o;
}

cJSON *ts_get_task(const ts_server *s, const char *key, long long id)
{
    char path[64];
    snprintf(path, sizeof(path), "/tasks/%lld", id);
    tc_response r = ts_api(s, key, "GET", path, NULL, NULL, 0);
    cJSON *o = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    tc_response_free(&r);
    return o;
}

const char *ts_str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

long long ts_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* Polls until the task's status is one of `want` (comma-separated). */
cJSON *ts_wait_status(const ts_server *s, long long id, const char *want, int timeout_ms)
{
    int64_t until = pt_mono_ms() + timeout_ms;
    cJSON *t = NULL;
    while (pt_mono_ms() < until) {
        cJSON_Delete(t);
        t = ts_get_task(s, s->key, id);
        const char *st = t ? ts_str(t, "status") : NULL;
        if (st) {
            char list[256];
            snprintf(list, sizeof(list), ",%s,", want);
            char needle[64];
            snprintf(needle, sizeof(needle), ",%s,", st);
            if (strstr(list, needle))
                return t;
        }
        pt_sleep_ms(100);
    }
    fprintf(stderr, "task %lld never reached %s: %s\n", id, want,
            t ? cJSON_PrintUnformatted(t) : "(none)");
    cJSON_Delete(t);
    fail_msg("timed out");
    return NULL;
}

void ts_start_demo(ts_server *s, const char *name, const char *const *extra)
{
    ts_init(s, name);
    const char *args[32] = {"--demo", "--portal-listen", "127.0.0.1:0"};
    int n = 3;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(ts_start(s, args, NULL), 0);
    assert_true(strlen(s->key) > 10 && !strncmp(s->whsec, "whsec_", 6));
}

long long ts_metric(const char *body, const char *name, const char *labels)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) || strncmp(p + nl, "{node=\"", 7))
            continue;
        const char *q = strchr(p + nl + 7, '"'); /* the node's value ends */
        const char *close = q ? strstr(q, "} ") : NULL;
        const char *eol = strchr(p, '\n');
        if (!close || (eol && close > eol))
            continue;
        size_t ll = labels ? strlen(labels) : 0;
        int match = labels ? (size_t)(close - q) == ll + 2 && q[1] == ',' &&
                                 !strncmp(q + 2, labels, ll)
                           : close == q + 1;
        if (match)
            return strtoll(close + 2, NULL, 10);
    }
    return -1;
}

/* Stops the server as an operator would: it must exit 0 (under ASan, a
 * leak or an error makes it exit otherwise) and leave no browser behind. */
void ts_finish(ts_server *s)
{
    int rc = ts_stop(s, 0);
    if (rc != 0) {
        char *log = ts_log(s);
        fprintf(stderr, "portier serve exited %d:\n%s\n", rc, log);
        free(log);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(tp_wait_none(s->dir, 5000), 0); /* no Chromium of ours left */
    ts_cleanup(s);
}

/* ---- The Node webhook receiver ------------------------------------------ */

void ts_receiver_start(ts_receiver *r, const char *dir)
{
    snprintf(r->log, sizeof(r->log), "%s/receiver.jsonl", dir);
    snprintf(r->secrets, sizeof(r->secrets), "%s/secrets.txt", dir);
    pt_write_file(r->log, "", 0, 0600);
    pt_write_file(r->secrets, "", 0, 0600);
    int p[2];
    assert_int_equal(pipe(p), 0);
    r->pid = fork();
    if (r->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves nothing running */
        dup2(p[1], 1);
        close(p[0]);
        execlp("node", "node", PORTIER_SOURCE_DIR "/tests/node/receiver.mjs", r->log, r->secrets,
               (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[64] = "";
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    if (n <= 0 || sscanf(buf, "port %d", &r->port) != 1)
        fail_msg("the Node receiver did not start (is `npm ci` done in tests/node?)");
}

void ts_receiver_stop(ts_receiver *r)
{
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
}

void ts_receiver_add_secret(ts_receiver *r, const char *secret)
{
    FILE *f = fopen(r->secrets, "a");
    fprintf(f, "%s\n", secret);
    fclose(f);
}

/* The receiver's log lines for a path (and webhook-id, if given). */
cJSON *ts_received(const ts_receiver *r, const char *path, const char *id)
{
    char *text = NULL;
    cJSON *arr = cJSON_CreateArray();
    if (pt_read_file(r->log, 64u << 20, &text, NULL) < 0)
        return arr;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(o, "path"));
        const char *i = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
        if (o && p && (!path || !strcmp(p, path)) && (!id || (i && !strcmp(i, id))))
            cJSON_AddItemToArray(arr, o);
        else
            cJSON_Delete(o);
    }
    free(text);
    return arr;
}

cJSON *ts_receiver_wait(const ts_receiver *r, const char *path, int count, int timeout_ms)
{
    int64_t until = pt_mono_ms() + timeout_ms;
    for (;;) {
        cJSON *a = ts_received(r, path, NULL);
        if (cJSON_GetArraySize(a) >= count || pt_mono_ms() > until)
            return a;
        cJSON_Delete(a);
        pt_sleep_ms(100);
    }
}

void ts_check_webhook_bodies(const ts_receiver *r)
{
    char cmd[2200];
    snprintf(cmd, sizeof(cmd), "node %s/tests/node/contract.mjs --bodies %s/docs/openapi.yaml %s",
             PORTIER_SOURCE_DIR, PORTIER_SOURCE_DIR, r->log);
    assert_int_equal(system(cmd), 0);
}

/* An SOP that asks a question and asks for review, installed with
 * `account set-sop` (it `use`s the sandbox login, stored with it). */
void ts_install_ask_sop(const ts_server *s)
{
    /* a request the server turns down for its data, after reading the
     * type's SOP version (1) and keeping it: the task posted after the
     * install must run version 2 all the same */
    tc_response r = ts_api(s, s->key, "POST", "/tasks", "application/json",
                           "{\"type\":\"check_eligibility\",\"data\":\"member_id: 1\"}", 0);
    assert_int_equal(r.status, 422);
    tc_response_free(&r);
    char dir[700], path[800], login[4200], *text = NULL;
    snprintf(dir, sizeof(dir), "%s/sop", s->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    pt_home_path("sops/sandbox/login.sop", login, sizeof(login));
    assert_int_equal(pt_read_file(login, 1u << 20, &text, NULL), 0);
    snprintf(path, sizeof(path), "%s/login.sop", dir);
    pt_write_file(path, text, strlen(text), 0600);
    free(text);
    const char *sop =
        "sop check_eligibility \"Eligibility, with a question and a review\"\n"
        "summary \"SOP: ask which NPI, check eligibility, and have a person review it.\"\n"
        "input payer default \"Sandbox Health PPO\"\n"
        "input member_id required /^\\d{9}$/\n"
        "input dob required date\n"
        "use login\n"
        "ask npi \"Which rendering NPI should be used?\"\n"
        "click link \"Eligibility & Benefits\"\n"
        "in frame \"#app-frame\"\n"
        "  choose label \"Payer\" with payer\n"
        "  fill label \"Member ID\" with member_id\n"
        "  fill label \"Date of birth\" with dob\n"
        "  fill label \"Provider NPI\" with npi\n"
        "  review \"About to check eligibility for NPI {{npi}}\"\n"
        "  click button \"Check eligibility\"\n"
        "  wait for \"#result\" timeout 30s\n"
        "  extract plan from \"#r-plan\"\n"
        "end\n"
        "finish completed \"Checked: {{plan}}\"\n";
    snprintf(path, sizeof(path), "%s/ask.sop", dir);
    pt_write_file(path, sop, strlen(sop), 0600);
    char *out = NULL;
    const char *args[] = {"account", "set-sop", "demo", "check_eligibility", path, NULL};
    assert_int_equal(ts_cli(s, args, NULL, &out), 0);
    assert_non_null(strstr(out, "check_eligibility_2"));
    free(out);
}

long long ts_post_ask_task(const ts_server *s)
{
    cJSON *t = ts_post_json(s,
                            "{\"type\":\"check_eligibility\",\"data\":\"member_id: 300059049\\n"
                            "dob: 12/23/1949\"}",
                            200);
    assert_string_equal(ts_str(t, "handler"), "check_eligibility_2");
    assert_string_equal(ts_str(t, "instructions"),
                        "SOP: ask which NPI, check eligibility, and have a person review it.");
    long long id = ts_num(t, "id");
    cJSON_Delete(t);
    return id;
}

