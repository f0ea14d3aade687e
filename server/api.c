/*
 * api.c - the task API (docs/openapi.yaml), on the HTTP layer.
 *
 * Every route but /healthz, /metrics and the demo's webhook sink needs
 * `Authorization: Bearer <key>`; an account sees only its own tasks (another
 * account's task is a 404, like one that does not exist). Every error is
 * {"error": code, "message": what and where}. Nothing here logs a request's
 * data: only ids, statuses and error codes. A handler never moves a task
 * itself: it calls the move of server/task.h (or hands a holding worker the
 * answer, server/worker.h).
 */
#define _GNU_SOURCE
#include "server/api.h"
#include "server/dashboard.h"
#include "agent/vars.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One request as a route handler sees it (its ud): the service's parts and
 * this thread's store; under /tasks the caller's account, and under
 * /tasks/{id} their task (api_handle found both before routing). */
typedef struct api_call {
    api_env *e;
    store *st;
    const account *a;  /* NULL outside /tasks */
    task *t;           /* NULL outside /tasks/{id} */
    const char *actor; /* who acts: "API key", or a dashboard user's name */
} api_call;

static void reply_obj(http_request *r, int status, cJSON *o)
{
    char *json = cJSON_PrintUnformatted(o);
    http_reply_json(r, status, json ? json : "{}");
    free(json);
    cJSON_Delete(o);
}

static void reply_task(http_request *r, const task *t)
{
    reply_obj(r, 200, task_to_json(t, 0));
}

/* The JSON body as an object, or an error answered (NULL). */
static cJSON *json_body(http_request *r, int required)
{
    const char *ct = http_header(r, "content-type");
    size_t len = 0;
    const char *body = http_body(r, &len);
    if (!len && !required)
        return cJSON_CreateObject();
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        http_reply_error(r, 415, "unsupported_media_type",
                         "send the body as Content-Type: application/json");
        return NULL;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!o) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        http_reply_error(r, 400, "malformed_json", "the body is not valid JSON (at byte %zu)", at);
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        http_reply_error(r, 400, "malformed_json", "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* The caller's account and who they are (actor), or 401 answered. A
 * browser signed in to the dashboard sends its session cookie instead of a
 * key (and, to change anything, its CSRF token): dashboard.c checks it. */
static int authenticate(store *st, http_request *r, account *a, char actor[64])
{
    const char *h = http_header(r, "authorization");
    if (!h && http_cookie(r, DASHBOARD_COOKIE))
        return dashboard_authenticate(st, r, a, actor);
    snprintf(actor, 64, "API key");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        http_add_header(r, "WWW-Authenticate", "Bearer");
        http_reply_error(r, 401, "unauthorized",
                         "send the account's API key as Authorization: Bearer <key>");
        return -1;
    }
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    char hash[65];
    keys_api_key_hash(key, hash);
    int rc = store_account_by_key(st, hash, a);
    if (rc != 1) {
        http_add_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        http_reply_error(r, rc < 0 ? 503 : 401, rc < 0 ? "unavailable" : "unauthorized",
                         rc < 0 ? "the store is not available" : "the API key is not known");
        return -1;
    }
    return 0;
}

/* "Submit claim #%lld" for submit_claim. */
static void title_format(const char *type, char *out, size_t n)
{
    snprintf(out, n, "%s", type);
    for (char *c = out; *c; c++)
        if (*c == '_')
            *c = ' ';
    out[0] = (char)toupper((unsigned char)out[0]);
    size_t l = strlen(out);
    snprintf(out + l, n - l, " #%%lld");
}

/* ---- POST /tasks --------------------------------------------------------- */

/* Problems "name: reason" lines as [{"field", "problem"}]. */
static cJSON *problem_list(const char *problems)
{
    cJSON *arr = cJSON_CreateArray();
    for (const char *p = problems; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        cJSON *o = cJSON_CreateObject();
        if (colon) {
            char *f = strndup(p, (size_t)(colon - p)),
                 *why = strndup(colon + 1, len - (size_t)(colon - p) - 1);
            cJSON_AddStringToObject(o, "field", f ? f : "");
            cJSON_AddStringToObject(o, "problem", why ? why + strspn(why, " ") : "");
            free(f);
            free(why);
        } else {
            char *why = strndup(p, len);
            cJSON_AddNullToObject(o, "field");
            cJSON_AddStringToObject(o, "problem", why ? why : "");
            free(why);
        }
        if (len)
            cJSON_AddItemToArray(arr, o);
        else
            cJSON_Delete(o);
        p += len + (nl ? 1 : 0);
    }
    return arr;
}

/* What POST /tasks carries, from either body form. */
typedef struct create_in {
    const char *type, *data;
    char *data_owned;
    cJSON *body;
    task_file_in *files;
    size_t nfiles;
} create_in;

static void create_in_free(create_in *in)
{
    free(in->files);
    free(in->data_owned);
    cJSON_Delete(in->body);
}

/* Reads type, data and files from a form or a JSON body, or answers the
 * error (-1). */
static int read_create(http_request *r, create_in *in)
{
    if (http_is_form(r)) {
        in->type = http_form_value(r, "type");
        in->data = http_form_value(r, "data");
        in->nfiles = http_form_nfiles(r);
        in->files = calloc(in->nfiles ? in->nfiles : 1, sizeof(*in->files));
        for (size_t i = 0; in->files && i < in->nfiles; i++) {
            const http_file *f = http_form_file(r, i);
            in->files[i] = (task_file_in){f->field, f->filename, f->path, f->content_type, f->size};
        }
        return 0;
    }
    const char *ct = http_header(r, "content-type");
    if (!ct || (strncasecmp(ct, "application/json", 16) != 0)) {
        http_reply_error(r, 415, "unsupported_media_type",
                         "send application/json ({\"type\", \"data\"}) or multipart/form-data "
                         "(type, data, files)");
        return -1;
    }
    if (!(in->body = json_body(r, 1)))
        return -1;
    cJSON *t = cJSON_GetObjectItemCaseSensitive(in->body, "type");
    cJSON *d = cJSON_GetObjectItemCaseSensitive(in->body, "data");
    if (t && !cJSON_IsString(t)) {
        http_reply_error(r, 400, "invalid_request", "type must be a string");
        return -1;
    }
    in->type = cJSON_GetStringValue(t);
    if (cJSON_IsString(d))
        in->data = d->valuestring;
    else if (cJSON_IsObject(d))
        in->data = in->data_owned = cJSON_PrintUnformatted(d);
    else if (d && !cJSON_IsNull(d)) {
        http_reply_error(r, 400, "invalid_request",
                         "data must be a string (key: value lines) or an object");
        return -1;
    }
    return 0;
}

/* The SOP that will run a task of this type, or the error answered (NULL). */
static const sop *sop_for(api_env *e, store *st, http_request *r, const account *a,
                          const char *type, int *version)
{
    if (!task_type_known(type)) {
        http_reply_error(r, 422, "unknown_type", "type '%.64s' is not one of %s", type,
                         task_types_text());
        return NULL;
    }
    if (store_sop_current(st, a->id, type, version, NULL) != 1) {
        http_reply_error(r, 422, "no_sop",
                         "this account has no SOP for %s yet (an operator adds one with "
                         "`portier account set-sop`)",
                         type);
        return NULL;
    }
    char err[PT_ERR_MAX];
    const sop *sp = bundle_cache_get(e->sops, st, a->id, type, *version, err);
    if (!sp)
        http_reply_error(r, 500, "sop_error", "%s", err);
    return sp;
}

/* Checks that the data fits the SOP's inputs before anything is queued, or
 * answers 422 with every problem (-1). */
static int check_data(store *st, http_request *r, const account *a, const sop *sp, const char *type,
                      const char *data)
{
    char problems[4096] = "";
    vars *inputs = vars_new();
    int bad = bundle_bind(st, a->id, sp, data, inputs, problems, sizeof(problems)) != 0;
    vars_free(inputs);
    if (!bad)
        return 0;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "error", "invalid_data");
    char msg[4300];
    snprintf(msg, sizeof(msg), "the task data does not fit %s's inputs: %s", type, problems);
    for (char *c = msg; *c; c++)
        if (*c == '\n')
            *c = c[1] ? ';' : '\0';
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddItemToObject(e, "fields", problem_list(problems));
    reply_obj(r, 422, e);
    return -1;
}

/* A retry with a key already used returns the original task, whatever
 * happened since (the queue may be full now): 1 answered, 0 go on, -1 the
 * key is malformed (answered). */
static int replay_idempotent(store *st, http_request *r, const account *a, const char *idem)
{
    if (idem && (!*idem || strlen(idem) > 255)) {
        http_reply_error(r, 400, "invalid_request", "Idempotency-Key must be 1 to 255 characters");
        return -1;
    }
    task orig;
    if (!idem || store_task_by_idempotency(st, a->id, idem, &orig) != 1)
        return 0;
    http_add_header(r, "Idempotent-Replayed", "true");
    reply_task(r, &orig);
    task_free(&orig);
    return 1;
}

static void create_task(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    const account *a = c->a;
    create_in in = {0};
    if (read_create(r, &in) < 0)
        goto out;
    if (!in.type || !*in.type) {
        http_reply_error(r, 400, "invalid_request", "type is required (one of %s)",
                         task_types_text());
        goto out;
    }
    const char *idem = http_header(r, "idempotency-key");
    if (replay_idempotent(st, r, a, idem) != 0)
        goto out;
    int version = 0;
    const sop *sp = sop_for(e, st, r, a, in.type, &version);
    if (!sp || check_data(st, r, a, sp, in.type, in.data) < 0)
        goto out;
    long long queued = dispatch_queue_depth(e->dispatch, st);
    if (queued >= e->max_queue) {
        http_add_header(r, "Retry-After", "30");
        http_reply_error(r, 429, "queue_full",
                         "%lld tasks are waiting to run (the limit is %d); retry later", queued,
                         e->max_queue);
        goto out;
    }
    char title[128], err[PT_ERR_MAX];
    title_format(in.type, title, sizeof(title));
    task_new n = {.account = a->id,
                  .type = in.type,
                  .sop_version = version,
                  .title_fmt = title,
                  .instructions = sp->summary ? sp->summary
                                  : sp->title ? sp->title
                                              : "",
                  .data = in.data,
                  .idem_key = idem,
                  .files = in.files,
                  .nfiles = in.nfiles,
                  .files_dir = e->files_dir};
    task t;
    int rc = dispatch_create(e->dispatch, &n, &t, err);
    if (rc < 0) {
        http_reply_error(r, 503, "unavailable", "%s", err);
        goto out;
    }
    if (rc == 1)
        http_add_header(r, "Idempotent-Replayed", "true");
    else
        PT_INFO("api", "account %lld created task %lld (%s, %zu files)", (long long)a->id,
                (long long)t.id, in.type, in.nfiles);
    reply_task(r, &t);
    task_free(&t);
out:
    create_in_free(&in);
}

/* ---- GET /tasks ---------------------------------------------------------- */

static void list_tasks(http_request *r, void *ud)
{
    const api_call *c = ud;
    store *st = c->st;
    const account *a = c->a;
    const char *status = http_query(r, "status"), *type = http_query(r, "type");
    const char *lim = http_query(r, "limit"), *after = http_query(r, "after");
    if (status && !*status)
        status = NULL;
    if (type && !*type)
        type = NULL;
    enum task_status want;
    if (status && task_status_parse(status, &want) != PT_FOUND) {
        http_reply_error(r, 400, "invalid_request", "status '%.40s' is not a task status", status);
        return;
    }
    if (type && !task_type_known(type)) {
        http_reply_error(r, 400, "invalid_request", "type '%.40s' is not a task type", type);
        return;
    }
    char *end;
    long limit = lim ? strtol(lim, &end, 10) : 20;
    if (lim && (*end || limit < 1 || limit > 100)) {
        http_reply_error(r, 400, "invalid_request", "limit must be 1 to 100");
        return;
    }
    long long cursor = after ? strtoll(after, &end, 10) : 0;
    if (after && (*end || cursor < 1)) {
        http_reply_error(r, 400, "invalid_request",
                         "after must be a task id (the next_after of the previous page)");
        return;
    }
    int64_t next = 0;
    task *rows = NULL;
    size_t n = 0;
    if (store_task_list(st, a->id, status, type, (int)limit, cursor, &rows, &n, &next) < 0) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "data");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, task_to_json(&rows[i], 0));
    store_tasks_free(rows, n);
    cJSON_AddBoolToObject(o, "has_more", next != 0);
    if (next)
        cJSON_AddNumberToObject(o, "next_after", (double)next);
    else
        cJSON_AddNullToObject(o, "next_after");
    reply_obj(r, 200, o);
}

/* ---- One task ------------------------------------------------------------ */

static void conflict(http_request *r, const task *t, const char *wanted)
{
    http_reply_error(r, 409, "conflict", "task %lld is %s, not %s", (long long)t->id, t->status,
                     wanted);
}

/* Answers with the task as it is now. */
static void reply_fresh(store *st, http_request *r, int64_t id)
{
    task fresh;
    if (store_task_get(st, 0, id, &fresh) == 1) {
        reply_task(r, &fresh);
        task_free(&fresh);
    }
}

/* The answers of an /input body, or NULL with the error answered; *mine is
 * the answer to what the task asks (borrowed from the result). */
static cJSON *read_answers(http_request *r, const cJSON *b, const task *t, const char **mine)
{
    cJSON *answers = cJSON_CreateObject();
    cJSON *given = cJSON_GetObjectItemCaseSensitive(b, "answers");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
    cJSON *value = cJSON_GetObjectItemCaseSensitive(b, "value");
    if (cJSON_IsObject(given)) {
        for (cJSON *c = given->child; c; c = c->next)
            if (cJSON_IsString(c))
                cJSON_AddStringToObject(answers, c->string, c->valuestring);
    } else if (cJSON_IsString(value)) {
        cJSON_AddStringToObject(answers,
                                name          ? name
                                : t->ask_name ? t->ask_name
                                              : "answer",
                                value->valuestring);
    }
    if (!answers->child) {
        http_reply_error(r, 400, "invalid_request",
                         "send {\"value\": \"...\"} (or {\"answers\": {\"name\": \"value\"}})");
        cJSON_Delete(answers);
        return NULL;
    }
    *mine = t->ask_name ? cJSON_GetStringValue(cJSON_GetObjectItem(answers, t->ask_name)) : NULL;
    if (t->ask_name && !*mine) {
        http_reply_error(r, 422, "invalid_input", "the task asks for '%s'", t->ask_name);
        cJSON_Delete(answers);
        return NULL;
    }
    return answers;
}

/* Keeps every answer, so a run from the start has them too. */
static void keep_answers(store *st, const task *t, const cJSON *answers)
{
    cJSON *all = t->answers ? cJSON_Parse(t->answers) : NULL;
    if (!cJSON_IsObject(all)) {
        cJSON_Delete(all);
        all = cJSON_CreateObject();
    }
    for (const cJSON *c = answers->child; c; c = c->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(all, c->string);
        cJSON_AddStringToObject(all, c->string, c->valuestring);
    }
    char *json = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    store_task_set_answers(st, t->id, json);
    free(json);
}

static void get_task(http_request *r, void *ud)
{
    reply_task(r, ((const api_call *)ud)->t);
}

static void answer_input(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    task *t = c->t;
    cJSON *b = json_body(r, 1), *answers = NULL;
    if (!b)
        return;
    if (task_status_of(t) != TASK_WAITING_FOR_INPUT) {
        conflict(r, t, task_status_name(TASK_WAITING_FOR_INPUT));
        goto out;
    }
    const char *mine = NULL;
    if (!(answers = read_answers(r, b, t, &mine)))
        goto out;
    keep_answers(st, t, answers);
    store_action_add(st, t->id, c->actor, "answered");
    task_ctx cx = {st, e->moved, e->ud};
    if (workers_answer(e->workers, &cx, t->id, mine) == PT_FOUND)
        ; /* the holding worker goes on */
    else if (t->committed)
        task_escalate(&cx, t->id,
                      "The answer came after the run had stopped, past its commit point; the "
                      "portal may have a partial submission. Check it, then approve or reject.",
                      "answered too late");
    else
        task_requeue(&cx, t->id, TASK_WAITING_FOR_INPUT, "answered; runs again from the start");
    PT_INFO("api", "task %lld answered", (long long)t->id);
    reply_fresh(st, r, t->id);
out:
    cJSON_Delete(answers);
    cJSON_Delete(b);
}

static void review_task(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    task *t = c->t;
    cJSON *b = json_body(r, 1);
    if (!b)
        return;
    const char *decision = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "decision"));
    cJSON *cj = cJSON_GetObjectItemCaseSensitive(b, "comment");
    const char *comment = cJSON_GetStringValue(cj);
    if (!decision || (strcmp(decision, "approve") && strcmp(decision, "reject"))) {
        http_reply_error(r, 400, "invalid_request", "decision must be \"approve\" or \"reject\"");
        goto out;
    }
    if (cj && !cJSON_IsNull(cj) && !comment) {
        http_reply_error(r, 400, "invalid_request", "comment must be a string");
        goto out;
    }
    if (task_status_of(t) != TASK_PENDING_REVIEW) {
        conflict(r, t, task_status_name(TASK_PENDING_REVIEW));
        goto out;
    }
    int approve = !strcmp(decision, "approve");
    store_task_set_review(st, t->id, approve, comment);
    store_action_add(st, t->id, c->actor, approve ? "approved" : "rejected");
    char notes[2048];
    snprintf(notes, sizeof(notes), "%s in review%s%s", approve ? "Approved" : "Rejected",
             comment && *comment ? ": " : ".", comment && *comment ? comment : "");
    task_ctx cx = {st, e->moved, e->ud};
    if (workers_decide(e->workers, &cx, t->id, approve, notes, comment) == PT_FOUND)
        ; /* the holding worker goes on (or stops) */
    else if (!approve)
        task_reject(&cx, t->id, notes);
    else if (t->committed) /* nothing to run again: a person checked the portal */
        task_accept(&cx, t->id, notes);
    else
        task_requeue(&cx, t->id, TASK_PENDING_REVIEW, "approved; runs again from the start");
    PT_INFO("api", "task %lld %s in review", (long long)t->id, approve ? "approved" : "rejected");
    reply_fresh(st, r, t->id);
out:
    cJSON_Delete(b);
}

static void cancel_task(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    task *t = c->t;
    if (task_status_is_final(task_status_of(t))) {
        conflict(r, t, "pending, running or waiting (it has already finished)");
        return;
    }
    store_task_request_cancel(st, t->id);
    store_action_add(st, t->id, c->actor, "cancelled");
    int held = 0, running = workers_cancel(e->workers, t->id, &held) == PT_FOUND;
    const char *notes = t->committed ? "Cancelled by the client after the commit point: the "
                                       "portal may already have the submission."
                                     : "Cancelled by the client.";
    task_ctx cx = {st, e->moved, e->ud};
    if (!running || held)
        task_cancel(&cx, t->id, notes);
    /* a run in progress stops at its next step; wait a little for it */
    task fresh = {0};
    for (int i = 0; i < 100; i++) {
        task_free(&fresh);
        if (store_task_get(st, 0, t->id, &fresh) != 1 ||
            task_status_is_final(task_status_of(&fresh)))
            break;
        pt_sleep_ms(50);
    }
    PT_INFO("api", "task %lld cancelled (%s)", (long long)t->id, fresh.status);
    reply_task(r, &fresh);
    task_free(&fresh);
}

static int safe_name(const char *n)
{
    if (!n || !*n || n[0] == '.' || strlen(n) > 128)
        return 0;
    for (const char *c = n; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
            return 0;
    return 1;
}

/* The trajectory as JSON (file NULL), or one of its files. */
static void trajectory(store *st, http_request *r, task *t, const char *file)
{
    char *dir = store_trajectory_dir(st, t->id);
    if (!dir) {
        http_reply_error(r, 404, "not_found", "task %lld has not run yet", (long long)t->id);
        return;
    }
    char path[4400], *data = NULL;
    size_t len = 0;
    /* screenshots and DOM snapshots may show PHI: never kept in a cache */
    http_add_header(r, "Cache-Control", "no-store");
    if (file) {
        if (!safe_name(file)) {
            http_reply_error(r, 404, "not_found", "no such trajectory file");
            goto out;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (pt_read_file(path, 64u << 20, &data, &len) < 0) {
            http_reply_error(r, 404, "not_found", "no trajectory file '%s'", file);
            goto out;
        }
        const char *dot = strrchr(file, '.');
        http_set_type(r, dot && !strcmp(dot, ".png")    ? "image/png"
                         : dot && !strcmp(dot, ".jpg")  ? "image/jpeg"
                         : dot && !strcmp(dot, ".html") ? "text/html; charset=utf-8"
                         : dot && !strcmp(dot, ".json") ? "application/json"
                                                        : "application/octet-stream");
        /* trajectory.html runs its own inline script; a portal's DOM
         * (failure-dom.html) never runs anything */
        if (dot && !strcmp(dot, ".html"))
            http_add_header(r, "Content-Security-Policy",
                            strcmp(file, "trajectory.html")
                                ? "sandbox; default-src 'none'; img-src data:; "
                                  "style-src 'unsafe-inline'"
                                : "default-src 'none'; img-src data:; "
                                  "style-src 'unsafe-inline'; "
                                  "script-src 'unsafe-inline'");
        http_write(r, data, len);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/trajectory.json", dir);
    cJSON *o = NULL;
    if (pt_read_file(path, 64u << 20, &data, &len) == 0)
        o = cJSON_Parse(data);
    if (!o) { /* still running: nothing written yet */
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", t->status);
        cJSON_AddItemToObject(o, "steps", cJSON_CreateArray());
    }
    cJSON_AddNumberToObject(o, "task_id", (double)t->id);
    cJSON_AddNumberToObject(o, "trajectory_id", (double)t->trajectory_id);
    /* screenshots as URLs of this API */
    cJSON *steps = cJSON_GetObjectItem(o, "steps");
    for (cJSON *st1 = steps ? steps->child : NULL; st1; st1 = st1->next) {
        const char *shot = cJSON_GetStringValue(cJSON_GetObjectItem(st1, "screenshot"));
        if (shot && safe_name(shot)) {
            char url[512];
            snprintf(url, sizeof(url), "/tasks/%lld/trajectory/%s", (long long)t->id, shot);
            cJSON_AddStringToObject(st1, "screenshot_url", url);
        }
    }
    char url[128];
    snprintf(url, sizeof(url), "/tasks/%lld/trajectory/trajectory.html", (long long)t->id);
    cJSON_AddStringToObject(o, "html_url", url);
    reply_obj(r, 200, o);
out:
    free(data);
    free(dir);
}

static void trajectory_json(http_request *r, void *ud)
{
    const api_call *c = ud;
    trajectory(c->st, r, c->t, NULL);
}

/* /tasks/{id}/trajectory/FILE: the id is digits, so the first
 * "/trajectory/" is the one before FILE. */
static void trajectory_file(http_request *r, void *ud)
{
    const api_call *c = ud;
    const char *file = strstr(http_path(r), "/trajectory/") + strlen("/trajectory/");
    trajectory(c->st, r, c->t, file);
}

static void deliveries(http_request *r, void *ud)
{
    const api_call *c = ud;
    store *st = c->st;
    task *t = c->t;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "task_id", (double)t->id);
    cJSON_AddItemToObject(o, "data", store_deliveries(st, t->id));
    reply_obj(r, 200, o);
}

static void redeliver(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    task *t = c->t;
    outbox_row row;
    int rc = store_outbox_for_task(st, t->id, &row);
    if (rc != 1) {
        http_reply_error(r, 409, "conflict",
                         "task %lld has not finished: it has no webhook event yet",
                         (long long)t->id);
        return;
    }
    store_outbox_requeue(st, row.id);
    store_action_add(st, t->id, c->actor, "redelivered the webhook");
    webhooks_kick(e->hooks);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event_id", row.event_id);
    cJSON_AddStringToObject(o, "status", "queued");
    outbox_row_free(&row);
    reply_obj(r, 202, o);
}

/* ---- Service routes ------------------------------------------------------ */

static void healthz(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    cJSON *o = cJSON_CreateObject();
    int ok = st && dispatch_queue_depth(e->dispatch, st) >= 0;
    worker_stats ws;
    workers_stats(e->workers, &ws);
    cJSON_AddStringToObject(o, "status", ok ? "ok" : "degraded");
    cJSON_AddStringToObject(o, "version", PORTIER_VERSION);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)((pt_wall_ms() - e->started_ms) / 1000));
    cJSON_AddNumberToObject(o, "workers", ws.workers);
    cJSON_AddStringToObject(o, "browser", pool_state(e->pool));
    reply_obj(r, ok ? 200 : 503, o);
}

/* portier_tasks{status, type} for every status and type. */
static void metrics_tasks(store *st, pt_buf *b)
{
    cJSON *counts = st ? store_task_counts(st) : NULL;
    pt_buf_appendf(b, "# HELP portier_tasks Tasks by status and type.\n"
                      "# TYPE portier_tasks gauge\n");
    for (int i = 0; i < TASK_NSTATUS; i++)
        for (size_t k = 0; k < TASK_NTYPES; k++) {
            const char *status = task_status_name((enum task_status)i), *type = task_type_name(k);
            cJSON *by = cJSON_GetObjectItem(counts, status);
            cJSON *n = by ? cJSON_GetObjectItem(by, type) : NULL;
            pt_buf_appendf(b, "portier_tasks{status=\"%s\",type=\"%s\"} %lld\n", status, type,
                           n ? (long long)n->valuedouble : 0LL);
        }
    cJSON_Delete(counts);
}

/* Workers, the browser and the run-time histogram. */
static void metrics_workers(api_env *e, store *st, pt_buf *b)
{
    worker_stats ws;
    workers_stats(e->workers, &ws);
    long long pending = st ? dispatch_queue_depth(e->dispatch, st) : 0;
    pt_buf_appendf(b,
                   "# HELP portier_queue_depth Tasks waiting for a worker.\n"
                   "# TYPE portier_queue_depth gauge\nportier_queue_depth %lld\n"
                   "# HELP portier_workers Workers configured.\n"
                   "# TYPE portier_workers gauge\nportier_workers %d\n"
                   "# HELP portier_workers_busy Workers running a task now.\n"
                   "# TYPE portier_workers_busy gauge\nportier_workers_busy %d\n"
                   "# HELP portier_worker_utilization Busy workers over workers.\n"
                   "# TYPE portier_worker_utilization gauge\nportier_worker_utilization %.3f\n"
                   "# HELP portier_browser_launches_total Browsers started (relaunches "
                   "included).\n"
                   "# TYPE portier_browser_launches_total counter\n"
                   "portier_browser_launches_total %d\n"
                   "# HELP portier_http_requests_total API requests served.\n"
                   "# TYPE portier_http_requests_total counter\nportier_http_requests_total %ld\n"
                   "# HELP portier_task_duration_seconds Time from running to a final status.\n"
                   "# TYPE portier_task_duration_seconds histogram\n",
                   pending, ws.workers, ws.busy, ws.workers ? (double)ws.busy / ws.workers : 0.0,
                   pool_launches(e->pool), (long)e->requests);
    for (int i = 0; i < WORKER_DURATION_BUCKETS; i++) {
        if (worker_duration_bounds[i])
            pt_buf_appendf(b, "portier_task_duration_seconds_bucket{le=\"%g\"} %ld\n",
                           worker_duration_bounds[i] / 1000.0, ws.buckets[i]);
        else
            pt_buf_appendf(b, "portier_task_duration_seconds_bucket{le=\"+Inf\"} %ld\n",
                           ws.buckets[i]);
    }
    pt_buf_appendf(b,
                   "portier_task_duration_seconds_sum %.3f\n"
                   "portier_task_duration_seconds_count %ld\n",
                   ws.ms_sum / 1000.0, ws.runs);
}

static void metrics(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    pt_buf b;
    pt_buf_init(&b, 0);
    metrics_tasks(st, &b);
    metrics_workers(e, st, &b);
    webhooks_metrics(e->hooks, &b);
    cJSON *ob = st ? store_outbox_counts(st) : NULL;
    pt_buf_appendf(&b, "# HELP portier_webhook_events Webhook events by state.\n"
                       "# TYPE portier_webhook_events gauge\n");
    for (cJSON *n = ob ? ob->child : NULL; n; n = n->next)
        if (strcmp(n->string, "attempts") && strcmp(n->string, "failures"))
            pt_buf_appendf(&b, "portier_webhook_events{state=\"%s\"} %lld\n", n->string,
                           (long long)n->valuedouble);
    cJSON_Delete(ob);
    http_set_status(r, 200);
    http_set_type(r, "text/plain; version=0.0.4; charset=utf-8");
    http_write(r, b.data ? b.data : "", b.len);
    pt_buf_free(&b);
}

/* The demo's webhook receiver (routed only with serve --demo): checks the
 * signature and logs the event's id, task and status, never the body. */
static void sink(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    size_t len = 0;
    const char *body = http_body(r, &len);
    const char *id = http_header(r, "webhook-id"), *ts = http_header(r, "webhook-timestamp"),
               *sig = http_header(r, "webhook-signature");
    cJSON *o = cJSON_ParseWithLength(body, len);
    cJSON *data = cJSON_GetObjectItem(o, "data");
    cJSON *acct = cJSON_GetObjectItem(data, "accountId");
    cJSON *tid = cJSON_GetObjectItem(data, "id");
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(data, "status"));
    int verified = 0;
    account a;
    if (id && ts && sig && cJSON_IsNumber(acct) &&
        store_account_by_id(st, (int64_t)acct->valuedouble, &a) == 1) {
        char *secret = keys_webhook_secret(e->keys, &a);
        char expect[256];
        const char *list[1] = {secret};
        if (secret && webhook_signature(list, 1, id, strtoll(ts, NULL, 10), body, len, expect,
                                        sizeof(expect)) == 0)
            verified = strstr(sig, expect) != NULL;
        keys_wipe(secret);
        account_free(&a);
    }
    PT_INFO("sink", "webhook %s: task %lld %s (signature %s)", id ? id : "(no id)",
            cJSON_IsNumber(tid) ? (long long)tid->valuedouble : 0LL, status ? status : "?",
            verified ? "verified" : "NOT VERIFIED");
    cJSON_Delete(o);
    http_reply_json(r, verified ? 200 : 400, verified ? "{\"ok\":true}" : "{\"ok\":false}");
}

static void close_store(void *p)
{
    store_close(p);
}

int api_init(api_env *e)
{
    e->requests = 0;
    return pthread_key_create(&e->store_key, close_store) == 0 ? PT_OK : PT_EFAIL;
}

void api_fini(api_env *e)
{
    pthread_key_delete(e->store_key);
}

/* This handler thread's store connection (opened on first use). */
static store *thread_store(api_env *e)
{
    store *st = pthread_getspecific(e->store_key);
    if (st)
        return st;
    char err[PT_ERR_MAX];
    st = store_open(e->db_path, 0, err);
    if (!st) {
        PT_ERROR("service", "%s", err);
        return NULL;
    }
    pthread_setspecific(e->store_key, st);
    return st;
}

/* ---- Routing ------------------------------------------------------------- */

/* Every route of the API (docs/openapi.yaml), in the order Allow names them.
 * The demo's webhook sink comes last: without serve --demo the table ends
 * before it, and its path is a 404 like any other. */
static const http_route routes[] = {
    {"GET", "/healthz", healthz, .head = 1},
    {"GET", "/metrics", metrics},
    {"GET", "/tasks", list_tasks},
    {"POST", "/tasks", create_task},
    {"GET", "/tasks/{id}", get_task, .head = 1},
    {"GET", "/tasks/{id}/", get_task, .head = 1}, /* a trailing slash is the task too */
    {"POST", "/tasks/{id}/input", answer_input},
    {"POST", "/tasks/{id}/review", review_task},
    {"POST", "/tasks/{id}/cancel", cancel_task},
    {"GET", "/tasks/{id}/trajectory", trajectory_json},
    {"GET", "/tasks/{id}/trajectory/", trajectory_file, HTTP_PREFIX},
    {"GET", "/tasks/{id}/deliveries", deliveries},
    {"POST", "/tasks/{id}/webhook/redeliver", redeliver},
    {"POST", "/_portier/webhook-sink", sink},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The API's 404s (a 405 is the layer's JSON, with Allow). Under /tasks/ the
 * task was found before routing, so what is missing is the route. */
static void reject(http_request *r, int status, const char *allow, void *ud)
{
    const char *path = http_path(r);
    if (status == 405)
        http_reject_json(r, status, allow, ud);
    else if (strncmp(path, "/tasks/", 7) == 0)
        http_reply_error(r, 404, "not_found", "no route %s", path);
    else
        http_reply_error(r, 404, "not_found", "no route %s (see docs/openapi.yaml)", path);
}

static const http_router api_router = {routes, NROUTES - 1, reject};
static const http_router demo_router = {routes, NROUTES, reject};

/* The task of /tasks/{id}[/...] if it is the caller's, or the 404 (or 503)
 * answered (-1). On success t is the caller's to free. */
static int find_task(store *st, http_request *r, const account *a, task *t)
{
    const char *p = http_path(r) + 7;
    char *end;
    long long id = strtoll(p, &end, 10);
    if (end == p || id < 1 || (*end && *end != '/') || !isdigit((unsigned char)*p)) {
        http_reply_error(r, 404, "not_found", "no task %.40s", p);
        return -1;
    }
    int found = store_task_get(st, a->id, id, t);
    if (found == 1)
        return 0;
    if (found < 0)
        http_reply_error(r, 503, "unavailable", "the store is not available");
    else
        http_reply_error(r, 404, "not_found", "no task %lld", id);
    return -1;
}

/* The HTTP handler: the store, then for /tasks the caller's key and, under
 * /tasks/{id}, their task, all before any route is picked (so a stranger
 * gets a 401 and a missing task a 404, whatever the method); then the
 * table. */
void api_handle(http_request *r, void *ud)
{
    api_env *e = ud;
    e->requests++;
    const char *path = http_path(r);
    api_call c = {e, thread_store(e), NULL, NULL, NULL};
    if (!c.st) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    if (dashboard_owns(path)) {
        dashboard_env d = {c.st, e->keys, e->sops};
        dashboard_handle(&d, r);
        return;
    }
    account a;
    task t;
    char actor[64];
    c.actor = actor;
    if (strcmp(path, "/tasks") == 0 || strncmp(path, "/tasks/", 7) == 0) {
        if (authenticate(c.st, r, &a, actor) < 0)
            return;
        c.a = &a;
        if (path[6] == '/') {
            if (find_task(c.st, r, &a, &t) < 0)
                goto out;
            c.t = &t;
        }
    }
    http_route_request(e->webhook_sink ? &demo_router : &api_router, r, &c);
out:
    if (c.t)
        task_free(c.t);
    if (c.a)
        account_free(&a);
}
