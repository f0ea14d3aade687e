/*
 * testapi.h - the task API as end-to-end tests drive it: requests with a
 * key, tasks by id, waiting for a status, a demo server started and stopped
 * as an operator would (exit 0, no Chromium left).
 */
#ifndef PT_TESTAPI_H
#define PT_TESTAPI_H

#include "tests/support/testcurl.h"
#include "tests/support/testserve.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

/* The reference quickstart's request body (a claim for the sandbox). */
#define TS_QUICKSTART                                                                              \
    "{\n\"type\": \"submit_claim\",\n\"data\": \"member_id: 300059049\\npatient: Louise "           \
    "Golicic\\nDOB: 1949-12-23\\nplace_of_service: home\\nservice_date: 2025-03-25\"\n}"

/* A request to s's API with key (NULL: none); body of len bytes (0: strlen). */
tc_response ts_api(const ts_server *s, const char *key, const char *method, const char *path,
                   const char *ctype, const char *body, size_t len);
/* POST /tasks with a JSON body; asserts the status is want; the answer (new). */
cJSON *ts_post_json(const ts_server *s, const char *body, long want);
/* POST /tasks as multipart/form-data: type, data and one file part
 * (`files`, filename, len bytes of application/pdf); the response. */
tc_response ts_post_form(const ts_server *s, const char *type, const char *data,
                         const char *filename, const char *file, size_t len);
/* GET /tasks/{id} (new), or NULL unless 200. */
cJSON *ts_get_task(const ts_server *s, const char *key, long long id);
/* A string or number member of o (NULL, -1 when missing). */
const char *ts_str(const cJSON *o, const char *k);
long long ts_num(const cJSON *o, const char *k);
/* Polls until the task's status is one of `want` (comma-separated); the
 * task (new). Fails the test after timeout_ms. */
cJSON *ts_wait_status(const ts_server *s, long long id, const char *want, int timeout_ms);
/* `serve --demo` with the sandbox on a free port, plus extra args. */
void ts_start_demo(ts_server *s, const char *name, const char *const *extra);
/* Installs, with `account set-sop`, a check_eligibility SOP for the demo
 * account that asks for an NPI (`ask npi`) and then for review (a POST
 * turned down with 422 just before, so the server has read version 1). */
void ts_install_ask_sop(const ts_server *s);
/* Posts a task for it (asserting it took the new SOP); its id. */
long long ts_post_ask_task(const ts_server *s);
/* A sample of a /metrics body: the value of metric `name` (every sample
 * carries node="..."), whose other labels are exactly `labels`
 * ("status=\"completed\",type=\"submit_claim\""; NULL: none), or -1. */
long long ts_metric(const char *body, const char *name, const char *labels);
/* SIGTERM; asserts exit 0 and no Chromium of the server's left; cleans up. */
void ts_finish(ts_server *s);

/* The Node receiver of tests/node/receiver.mjs (it verifies every delivery
 * with the npm standardwebhooks package): its port, log and secrets file. */
typedef struct ts_receiver {
    pid_t pid;
    int port;
    char log[700], secrets[700];
} ts_receiver;
/* Starts it with its log and secrets in dir; dies with the test. */
void ts_receiver_start(ts_receiver *r, const char *dir);
void ts_receiver_stop(ts_receiver *r);
/* Adds a whsec_ secret it verifies with (index: the order added). */
void ts_receiver_add_secret(ts_receiver *r, const char *secret);
/* Its log lines (new array) for a path and webhook-id (either NULL: any). */
cJSON *ts_received(const ts_receiver *r, const char *path, const char *id);
/* The same once there are count of them (or after timeout_ms). */
cJSON *ts_receiver_wait(const ts_receiver *r, const char *path, int count, int timeout_ms);
/* Holds every body r logged to docs/openapi.yaml's webhooks section. */
void ts_check_webhook_bodies(const ts_receiver *r);

#endif
