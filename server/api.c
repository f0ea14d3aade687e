/*
 * api.c - the task API (docs/openapi.yaml), on the HTTP layer.
 *
 * Every route but /healthz, /metrics and the demo's webhook sink needs
 * `Authorization: Bearer <key>`; an account sees only its own tasks (another
 * account's task is a 404, like one that does not exist). Every error is
 * {"error": code, "message": what and where}. Nothing here logs a request's
 * data: only ids, statuses and error codes.
 */
#define _GNU_SOURCE
#include "server/service.h"
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

static const char *const task_types[] = {"submit_prior_authorization", "check_eligibility",
                                         "submit_claim", "submit_appeal"};
static const char *const statuses[] = {
    "pending",   "dispatching",           "running", "waiting_for_input", "pending_review",
    "completed", "completed_with_issues", "failed"};

static int one_of(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (!strcmp(v, list[i]))
            return 1;
    return 0;
}

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

/* The caller's account, or 401 answered. */
static int authenticate(service *s, store *st, http_request *r, account *a)
{
    const char *h = http_header(r, "authorization");
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
    pt_sha256_hex(key, strlen(key), hash);
    int rc = store_account_by_key(st, hash, a);
    if (rc != 1) {
        http_add_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        http_reply_error(r, rc < 0 ? 503 : 401, rc < 0 ? "unavailable" : "unauthorized",
                         rc < 0 ? "the store is not available" : "the API key is not known");
        return -1;
    }
    (void)s;
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

static void add_default(void *ud, const char *input, const char *value)
{
    vars_set(ud, input, value, 0);
}

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

static void create_task(service *s, store *st, http_request *r, const account *a)
{
    const char *type = NULL, *data = NULL;
    char *data_owned = NULL;
    cJSON *body = NULL;
    task_file_in *files = NULL;
    size_t nfiles = 0;
    if (http_is_form(r)) {
        type = http_form_value(r, "type");
        data = http_form_value(r, "data");
        nfiles = http_form_nfiles(r);
        files = calloc(nfiles ? nfiles : 1, sizeof(*files));
        for (size_t i = 0; files && i < nfiles; i++) {
            const http_file *f = http_form_file(r, i);
            files[i] = (task_file_in){f->field, f->filename, f->path, f->content_type, f->size};
        }
    } else {
        const char *ct = http_header(r, "content-type");
        if (!ct || (strncasecmp(ct, "application/json", 16) != 0)) {
            http_reply_error(r, 415, "unsupported_media_type",
                             "send application/json ({\"type\", \"data\"}) or multipart/form-data "
                             "(type, data, files)");
            return;
        }
        if (!(body = json_body(r, 1)))
            return;
        cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "type");
        cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "data");
        if (t && !cJSON_IsString(t)) {
            http_reply_error(r, 400, "invalid_request", "type must be a string");
            goto out;
        }
        type = cJSON_GetStringValue(t);
        if (cJSON_IsString(d))
            data = d->valuestring;
        else if (cJSON_IsObject(d))
            data = data_owned = cJSON_PrintUnformatted(d);
        else if (d && !cJSON_IsNull(d)) {
            http_reply_error(r, 400, "invalid_request",
                             "data must be a string (key: value lines) or an object");
            goto out;
        }
    }
    if (!type || !*type) {
        http_reply_error(r, 400, "invalid_request",
                         "type is required (one of "
                         "submit_prior_authorization, check_eligibility,"
                         " submit_claim, submit_appeal)");
        goto out;
    }
    /* a retry with a key already used returns the original task, whatever
     * happened since (the queue may be full now) */
    const char *idem = http_header(r, "idempotency-key");
    if (idem && (!*idem || strlen(idem) > 255)) {
        http_reply_error(r, 400, "invalid_request", "Idempotency-Key must be 1 to 255 characters");
        goto out;
    }
    if (idem) {
        task orig;
        int found = store_task_by_idempotency(st, a->id, idem, &orig);
        if (found == 1) {
            http_add_header(r, "Idempotent-Replayed", "true");
            reply_task(r, &orig);
            task_free(&orig);
            goto out;
        }
    }
    if (!one_of(type, task_types, 4)) {
        http_reply_error(r, 422, "unknown_type",
                         "type '%.64s' is not one of submit_prior_authorization, "
                         "check_eligibility, submit_claim, submit_appeal",
                         type);
        goto out;
    }
    int version = 0;
    if (store_sop_current(st, a->id, type, &version, NULL) != 1) {
        http_reply_error(r, 422, "no_sop",
                         "this account has no SOP for %s yet (an operator adds one with "
                         "`portier account set-sop`)",
                         type);
        goto out;
    }
    char err[PT_ERR_MAX];
    const sop *sp = service_sop(s, st, a->id, type, version, err);
    if (!sp) {
        http_reply_error(r, 500, "sop_error", "%s", err);
        goto out;
    }
    /* the data must fit the SOP's inputs before anything is queued */
    char problems[4096] = "";
    vars *dv = vars_new(), *defaults = vars_new(), *inputs = vars_new();
    int bad = vars_parse_data(dv, data ? data : "", problems, sizeof(problems)) < 0;
    if (!bad) {
        store_default_each(st, a->id, add_default, defaults);
        bad = vars_bind_inputs(sp, dv, defaults, inputs, problems, sizeof(problems)) > 0;
    }
    vars_free(dv);
    vars_free(defaults);
    vars_free(inputs);
    if (bad) {
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
        goto out;
    }
    long long queued = service_queue_depth(s, st);
    if (queued >= s->o.max_queue) {
        http_add_header(r, "Retry-After", "30");
        http_reply_error(r, 429, "queue_full",
                         "%lld tasks are waiting to run (the limit is %d); retry later", queued,
                         s->o.max_queue);
        goto out;
    }
    char title[128], files_dir[4200];
    title_format(type, title, sizeof(title));
    snprintf(files_dir, sizeof(files_dir), "%s/files", s->data_dir);
    task t;
    create_req req = {.account = a->id,
                      .type = type,
                      .title_fmt = title,
                      .instructions = sp->summary ? sp->summary
                                      : sp->title ? sp->title
                                                  : "",
                      .data = data,
                      .idem_key = idem,
                      .files_dir = files_dir,
                      .sop_version = version,
                      .files = files,
                      .nfiles = nfiles,
                      .out = &t};
    int rc = service_create_task(s, &req);
    if (rc < 0) {
        http_reply_error(r, 503, "unavailable", "%s", req.err);
        goto out;
    }
    if (rc == 1)
        http_add_header(r, "Idempotent-Replayed", "true");
    else
        PT_INFO("api", "account %lld created task %lld (%s, %zu files)", (long long)a->id,
                (long long)t.id, type, nfiles);
    reply_task(r, &t);
    task_free(&t);
out:
    free(files);
    free(data_owned);
    cJSON_Delete(body);
}

/* ---- GET /tasks ---------------------------------------------------------- */

static void list_tasks(store *st, http_request *r, const account *a)
{
    const char *status = http_query(r, "status"), *type = http_query(r, "type");
    const char *lim = http_query(r, "limit"), *after = http_query(r, "after");
    if (status && !*status)
        status = NULL;
    if (type && !*type)
        type = NULL;
    if (status && !one_of(status, statuses, 8)) {
        http_reply_error(r, 400, "invalid_request", "status '%.40s' is not a task status", status);
        return;
    }
    if (type && !one_of(type, task_types, 4)) {
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
    cJSON *arr = store_task_list(st, a->id, status, type, (int)limit, cursor, &next);
    if (!arr) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "data", arr);
    cJSON_AddBoolToObject(o, "has_more", next != 0);
    if (next)
        cJSON_AddNumberToObject(o, "next_after", (double)next);
    else
        cJSON_AddNullToObject(o, "next_after");
    reply_obj(r, 200, o);
}

/* ---- One task ------------------------------------------------------------ */

static worker_slot *slot_of(service *s, int64_t id)
{
    for (int i = 0; i < s->nworkers; i++)
        if (s->slots[i].task_id == id)
            return &s->slots[i];
    return NULL;
}

static void conflict(http_request *r, const task *t, const char *wanted)
{
    http_reply_error(r, 409, "conflict", "task %lld is %s, not %s", (long long)t->id, t->status,
                     wanted);
}

static void answer_input(service *s, store *st, http_request *r, task *t)
{
    cJSON *b = json_body(r, 1);
    if (!b)
        return;
    if (strcmp(t->status, "waiting_for_input") != 0) {
        conflict(r, t, "waiting_for_input");
        cJSON_Delete(b);
        return;
    }
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
        goto out;
    }
    const char *mine =
        t->ask_name ? cJSON_GetStringValue(cJSON_GetObjectItem(answers, t->ask_name)) : NULL;
    if (t->ask_name && !mine) {
        http_reply_error(r, 422, "invalid_input", "the task asks for '%s'", t->ask_name);
        goto out;
    }
    /* keep every answer, so a run from the start has them too */
    cJSON *all = t->answers ? cJSON_Parse(t->answers) : NULL;
    if (!cJSON_IsObject(all)) {
        cJSON_Delete(all);
        all = cJSON_CreateObject();
    }
    for (cJSON *c = answers->child; c; c = c->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(all, c->string);
        cJSON_AddStringToObject(all, c->string, c->valuestring);
    }
    char *json = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    store_task_set_text(st, t->id, "answers", json);
    free(json);
    pthread_mutex_lock(&s->mu);
    worker_slot *slot = slot_of(s, t->id);
    int held = slot && slot->hold == HOLD_ASK;
    pthread_mutex_unlock(&s->mu);
    if (held && service_move(s, st, t->id, "waiting_for_input", "running", NULL, "answered") == 1) {
        pthread_mutex_lock(&s->mu);
        slot = slot_of(s, t->id);
        if (slot && slot->hold == HOLD_ASK) {
            free(slot->answer);
            slot->answer = strdup(mine ? mine : "");
            pthread_cond_broadcast(&slot->wake);
        }
        pthread_mutex_unlock(&s->mu);
    } else if (t->committed) {
        service_move(s, st, t->id, "waiting_for_input", "pending_review",
                     "The answer came after the run had stopped, past its commit point; the "
                     "portal may have a partial submission. Check it, then approve or reject.",
                     "answered too late");
    } else {
        service_move(s, st, t->id, "waiting_for_input", "pending", NULL,
                     "answered; runs again from the start");
    }
    PT_INFO("api", "task %lld answered", (long long)t->id);
    task fresh;
    if (store_task_get(st, 0, t->id, &fresh) == 1) {
        reply_task(r, &fresh);
        task_free(&fresh);
    }
out:
    cJSON_Delete(answers);
    cJSON_Delete(b);
}

static void review_task(service *s, store *st, http_request *r, task *t)
{
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
    if (strcmp(t->status, "pending_review") != 0) {
        conflict(r, t, "pending_review");
        goto out;
    }
    int approve = !strcmp(decision, "approve");
    store_task_set_text(st, t->id, "review_comment", comment);
    char notes[2048];
    if (approve)
        snprintf(notes, sizeof(notes), "Approved in review%s%s", comment && *comment ? ": " : ".",
                 comment && *comment ? comment : "");
    else
        snprintf(notes, sizeof(notes), "Rejected in review%s%s", comment && *comment ? ": " : ".",
                 comment && *comment ? comment : "");
    pthread_mutex_lock(&s->mu);
    worker_slot *slot = slot_of(s, t->id);
    int held = slot && slot->hold == HOLD_REVIEW;
    pthread_mutex_unlock(&s->mu);
    if (approve)
        store_task_set_int(st, t->id, "approve", 1);
    int moved;
    if (held) {
        moved = approve ? service_move(s, st, t->id, "pending_review", "running", NULL, "approved")
                        : service_move(s, st, t->id, "pending_review", "failed", notes, "rejected");
        pthread_mutex_lock(&s->mu);
        slot = slot_of(s, t->id);
        if (moved == 1 && slot && slot->hold == HOLD_REVIEW) {
            slot->decision = approve;
            free(slot->comment);
            slot->comment = comment ? strdup(comment) : NULL;
            pthread_cond_broadcast(&slot->wake);
        }
        pthread_mutex_unlock(&s->mu);
    } else if (!approve) {
        service_move(s, st, t->id, "pending_review", "failed", notes, "rejected");
    } else if (t->committed) {
        /* nothing to run again: a person checked the portal */
        service_move(s, st, t->id, "pending_review", "completed_with_issues", notes, "approved");
    } else {
        service_move(s, st, t->id, "pending_review", "pending", NULL,
                     "approved; runs again from the start");
    }
    PT_INFO("api", "task %lld %s in review", (long long)t->id, approve ? "approved" : "rejected");
    task fresh;
    if (store_task_get(st, 0, t->id, &fresh) == 1) {
        reply_task(r, &fresh);
        task_free(&fresh);
    }
out:
    cJSON_Delete(b);
}

static void cancel_task(service *s, store *st, http_request *r, task *t)
{
    if (task_is_final(t->status)) {
        conflict(r, t, "pending, running or waiting (it has already finished)");
        return;
    }
    store_task_set_int(st, t->id, "cancel_requested", 1);
    pthread_mutex_lock(&s->mu);
    worker_slot *slot = slot_of(s, t->id);
    int held = slot && slot->hold != HOLD_NONE, running = slot != NULL;
    if (slot) {
        slot->cancel = 1;
        pthread_cond_broadcast(&slot->wake);
    }
    pthread_mutex_unlock(&s->mu);
    const char *notes = t->committed ? "Cancelled by the client after the commit point: the "
                                       "portal may already have the submission."
                                     : "Cancelled by the client.";
    if (!running || held)
        service_move(s, st, t->id, "pending,waiting_for_input,pending_review", "failed", notes,
                     "cancelled");
    /* a run in progress stops at its next step; wait a little for it */
    task fresh = {0};
    for (int i = 0; i < 100; i++) {
        task_free(&fresh);
        if (store_task_get(st, 0, t->id, &fresh) != 1 || task_is_final(fresh.status))
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

static void trajectory(service *s, store *st, http_request *r, task *t, const char *file)
{
    char *dir = store_trajectory_dir(st, t->id);
    if (!dir) {
        http_reply_error(r, 404, "not_found", "task %lld has not run yet", (long long)t->id);
        return;
    }
    char path[4400], *data = NULL;
    size_t len = 0;
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
        if (dot && !strcmp(dot, ".html"))
            http_add_header(r, "Content-Security-Policy",
                            "default-src 'none'; img-src data:; "
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
    (void)s;
    reply_obj(r, 200, o);
out:
    free(data);
    free(dir);
}

static void deliveries(store *st, http_request *r, task *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "task_id", (double)t->id);
    cJSON_AddItemToObject(o, "data", store_deliveries(st, t->id));
    reply_obj(r, 200, o);
}

static void redeliver(service *s, store *st, http_request *r, task *t)
{
    outbox_row row;
    int rc = store_outbox_for_task(st, t->id, &row);
    if (rc != 1) {
        http_reply_error(r, 409, "conflict",
                         "task %lld has not finished: it has no webhook event yet",
                         (long long)t->id);
        return;
    }
    store_outbox_requeue(st, row.id);
    webhooks_kick(s->hooks);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event_id", row.event_id);
    cJSON_AddStringToObject(o, "status", "queued");
    outbox_row_free(&row);
    reply_obj(r, 202, o);
}

/* ---- Service routes ------------------------------------------------------ */

static void healthz(service *s, store *st, http_request *r)
{
    cJSON *o = cJSON_CreateObject();
    int ok = st && service_queue_depth(s, st) >= 0;
    cJSON_AddStringToObject(o, "status", ok ? "ok" : "degraded");
    cJSON_AddStringToObject(o, "version", PORTIER_VERSION);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)((pt_wall_ms() - s->started_ms) / 1000));
    cJSON_AddNumberToObject(o, "workers", s->nworkers);
    pthread_mutex_lock(&s->mu);
    const char *browser = !s->browser                          ? "not started"
                          : cdp_browser_gone(s->browser, NULL) ? "gone"
                                                               : "up";
    cJSON_AddStringToObject(o, "browser", browser);
    pthread_mutex_unlock(&s->mu);
    reply_obj(r, ok ? 200 : 503, o);
}

static void metrics(service *s, store *st, http_request *r)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    cJSON *counts = st ? store_task_counts(st) : NULL;
    pt_buf_appendf(&b, "# HELP portier_tasks Tasks by status and type.\n"
                       "# TYPE portier_tasks gauge\n");
    for (size_t i = 0; i < 8; i++)
        for (size_t k = 0; k < 4; k++) {
            cJSON *by = cJSON_GetObjectItem(counts, statuses[i]);
            cJSON *n = by ? cJSON_GetObjectItem(by, task_types[k]) : NULL;
            pt_buf_appendf(&b, "portier_tasks{status=\"%s\",type=\"%s\"} %lld\n", statuses[i],
                           task_types[k], n ? (long long)n->valuedouble : 0LL);
        }
    cJSON_Delete(counts);
    long long pending = st ? service_queue_depth(s, st) : 0;
    pt_buf_appendf(&b,
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
                   pending, s->nworkers, (int)s->busy_workers,
                   s->nworkers ? (double)s->busy_workers / s->nworkers : 0.0, s->browser_launches,
                   (long)s->http_requests);
    static const double bounds[] = {1, 2, 5, 10, 20, 30, 60, 120, 300};
    for (int i = 0; i < DURATION_BUCKETS; i++) {
        if (i < DURATION_BUCKETS - 1)
            pt_buf_appendf(&b, "portier_task_duration_seconds_bucket{le=\"%g\"} %ld\n", bounds[i],
                           (long)s->duration_buckets[i]);
        else
            pt_buf_appendf(&b, "portier_task_duration_seconds_bucket{le=\"+Inf\"} %ld\n",
                           (long)s->duration_buckets[i]);
    }
    pt_buf_appendf(&b,
                   "portier_task_duration_seconds_sum %.3f\n"
                   "portier_task_duration_seconds_count %ld\n",
                   (long)s->duration_ms_sum / 1000.0, (long)s->duration_count);
    webhooks_metrics(s->hooks, &b);
    cJSON *ob = st ? store_outbox_counts(st) : NULL;
    pt_buf_appendf(&b, "# HELP portier_webhook_events Webhook events by state.\n"
                       "# TYPE portier_webhook_events gauge\n");
    for (cJSON *c = ob ? ob->child : NULL; c; c = c->next)
        if (strcmp(c->string, "attempts") && strcmp(c->string, "failures"))
            pt_buf_appendf(&b, "portier_webhook_events{state=\"%s\"} %lld\n", c->string,
                           (long long)c->valuedouble);
    cJSON_Delete(ob);
    http_set_status(r, 200);
    http_set_type(r, "text/plain; version=0.0.4; charset=utf-8");
    http_write(r, b.data ? b.data : "", b.len);
    pt_buf_free(&b);
}

/* The demo's webhook receiver: checks the signature and logs the event's
 * id, task and status, never the body. */
static void sink(service *s, store *st, http_request *r)
{
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
        char *secret =
            a.whsec ? service_open_secret(s->master, a.id, "webhook_secret", a.whsec, a.whsec_len)
                    : NULL;
        char expect[256];
        const char *list[1] = {secret};
        if (secret && webhook_signature(list, 1, id, strtoll(ts, NULL, 10), body, len, expect,
                                        sizeof(expect)) == 0)
            verified = strstr(sig, expect) != NULL;
        free(secret);
        account_free(&a);
    }
    PT_INFO("sink", "webhook %s: task %lld %s (signature %s)", id ? id : "(no id)",
            cJSON_IsNumber(tid) ? (long long)tid->valuedouble : 0LL, status ? status : "?",
            verified ? "verified" : "NOT VERIFIED");
    cJSON_Delete(o);
    http_reply_json(r, verified ? 200 : 400, verified ? "{\"ok\":true}" : "{\"ok\":false}");
}

/* ---- Routing ------------------------------------------------------------- */

static void method_not_allowed(http_request *r, const char *allow)
{
    http_add_header(r, "Allow", allow);
    http_reply_error(r, 405, "method_not_allowed", "%s %s: allowed methods are %s", http_method(r),
                     http_path(r), allow);
}

void api_handle(http_request *r, void *ud)
{
    service *s = ud;
    s->http_requests++;
    const char *m = http_method(r), *path = http_path(r);
    store *st = service_store(s);
    if (!st) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    if (!strcmp(path, "/healthz")) {
        if (strcmp(m, "GET") && strcmp(m, "HEAD"))
            return method_not_allowed(r, "GET");
        return healthz(s, st, r);
    }
    if (!strcmp(path, "/metrics")) {
        if (strcmp(m, "GET"))
            return method_not_allowed(r, "GET");
        return metrics(s, st, r);
    }
    if (!strcmp(path, "/_portier/webhook-sink")) {
        if (strcmp(m, "POST"))
            return method_not_allowed(r, "POST");
        return sink(s, st, r);
    }
    if (strcmp(path, "/tasks") != 0 && strncmp(path, "/tasks/", 7) != 0) {
        http_reply_error(r, 404, "not_found", "no route %s (see docs/openapi.yaml)", path);
        return;
    }
    account a;
    if (authenticate(s, st, r, &a) < 0)
        return;
    if (!strcmp(path, "/tasks")) {
        if (!strcmp(m, "POST"))
            create_task(s, st, r, &a);
        else if (!strcmp(m, "GET"))
            list_tasks(st, r, &a);
        else
            method_not_allowed(r, "GET, POST");
        account_free(&a);
        return;
    }
    /* /tasks/{id}[/action[/more]] */
    const char *p = path + 7;
    char *end;
    long long id = strtoll(p, &end, 10);
    if (end == p || id < 1 || (*end && *end != '/') || !isdigit((unsigned char)*p)) {
        http_reply_error(r, 404, "not_found", "no task %.40s", p);
        account_free(&a);
        return;
    }
    const char *rest = *end ? end + 1 : "";
    task t;
    int found = store_task_get(st, a.id, id, &t);
    if (found != 1) {
        if (found < 0)
            http_reply_error(r, 503, "unavailable", "the store is not available");
        else
            http_reply_error(r, 404, "not_found", "no task %lld", id);
        account_free(&a);
        return;
    }
    struct {
        const char *rest, *method;
        int prefix;
    } routes[] = {{"", "GET", 0},           {"input", "POST", 0},
                  {"review", "POST", 0},    {"cancel", "POST", 0},
                  {"trajectory", "GET", 0}, {"trajectory/", "GET", 1},
                  {"deliveries", "GET", 0}, {"webhook/redeliver", "POST", 0}};
    int which = -1;
    for (int i = 0; i < (int)(sizeof(routes) / sizeof(routes[0])) && which < 0; i++)
        if (routes[i].prefix ? !strncmp(rest, routes[i].rest, strlen(routes[i].rest))
                             : !strcmp(rest, routes[i].rest))
            which = i;
    if (which < 0)
        http_reply_error(r, 404, "not_found", "no route %s", path);
    else if (strcmp(m, routes[which].method) && !(which == 0 && !strcmp(m, "HEAD")))
        method_not_allowed(r, routes[which].method);
    else
        switch (which) {
        case 0:
            reply_task(r, &t);
            break;
        case 1:
            answer_input(s, st, r, &t);
            break;
        case 2:
            review_task(s, st, r, &t);
            break;
        case 3:
            cancel_task(s, st, r, &t);
            break;
        case 4:
            trajectory(s, st, r, &t, NULL);
            break;
        case 5:
            trajectory(s, st, r, &t, rest + strlen("trajectory/"));
            break;
        case 6:
            deliveries(st, r, &t);
            break;
        case 7:
            redeliver(s, st, r, &t);
            break;
        }
    task_free(&t);
    account_free(&a);
}
