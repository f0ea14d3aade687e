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
#include <openssl/evp.h>
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
    reply_obj(r, 200, task_to_json(t));
}

/* The JSON body as an object, or an error answered (NULL). */
static cJSON *json_body(http_request *r, int required)
{
    const char *ct = http_header(r, "content-type");
    size_t len = 0;
    const char *body = http_body(r, &len);
    if (!len && !required)
        return cJSON_CreateObject();
    if (!ct || !http_type_is(r, "application/json")) {
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

static size_t seen_slot(const char hash[65]);

/* The account of an API key's hash, as a store read begun after this call
 * began says (so as current as a read of its own), shared: while one read
 * of a key is under way, the requests that came meanwhile wait for the
 * next one, which answers them all. Under load the handlers of one
 * account's requests make one read between them instead of one each (on
 * PostgreSQL a round trip each). store_account_by_key's answer. */
static int key_read(api_env *e, store *st, const char hash[65], account *a)
{
    api_key_flight *f = &e->flights[seen_slot(hash) % API_KEY_FLIGHTS];
    pthread_mutex_lock(&e->flight_mu);
    if (!f->hash[0] || (!f->busy && !pt_equal_ct(f->hash, hash, 64))) {
        memcpy(f->hash, hash, 65);
        f->epoch++;
        f->begun = f->ended = 0;
        account_free(&f->a);
        f->rc = 0;
    }
    /* the read under way, if any, began before this request: not that one */
    unsigned long want = f->begun + 1, epoch = f->epoch;
    int mine = pt_equal_ct(f->hash, hash, 64);
    while (mine && f->ended < want) {
        if (f->busy) {
            pthread_cond_wait(&e->flight_cv, &e->flight_mu);
            /* another key took the slot meanwhile (even if this one took it
             * back, its count started again): a read of this request's own */
            mine = f->epoch == epoch;
            continue;
        }
        f->busy = 1;
        f->begun++;
        pthread_mutex_unlock(&e->flight_mu);
        account got = {0};
        int rc = store_account_by_key(st, hash, &got);
        pthread_mutex_lock(&e->flight_mu);
        account_free(&f->a);
        f->a = got;
        f->rc = rc;
        f->ended = f->begun;
        f->busy = 0;
        pthread_cond_broadcast(&e->flight_cv);
    }
    if (!mine) {
        pthread_mutex_unlock(&e->flight_mu);
        return store_account_by_key(st, hash, a);
    }
    int rc = f->rc;
    memset(a, 0, sizeof(*a));
    if (rc == 1 && account_copy(a, &f->a) < 0)
        rc = -1;
    pthread_mutex_unlock(&e->flight_mu);
    return rc;
}

/* The caller's account and who they are (actor) from the request's
 * headers alone (a valid Bearer key, or the dashboard's session cookie,
 * which dashboard.c checks with its CSRF token; nothing of the body), so
 * that api_admit can turn a stranger away before the body is read; or the
 * 401 (503) answered (-1). On success a is the caller's to free. The one
 * place a request is authenticated; with e, a key's read is shared
 * (key_read), without it the request's own. */
static int authenticate(api_env *e, store *st, http_request *r, account *a, char actor[64])
{
    const char *h = http_header(r, "authorization");
    if (!h && http_cookie(r, DASHBOARD_COOKIE)) {
        /* the webhook endpoint decides where every event (PHI) goes: it is
         * the API key's, not a dashboard session's (a staff member's key,
         * or a session that outlived a leaked key, must not move it) */
        if (!strcmp(http_path(r), "/webhook") || !strncmp(http_path(r), "/webhook/", 9)) {
            http_reply_error(r, 403, "forbidden",
                             "the webhook endpoint is managed with the account's API key, not a "
                             "dashboard session");
            return -1;
        }
        return dashboard_authenticate(st, r, a, actor);
    }
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
    int rc = e ? key_read(e, st, hash, a) : store_account_by_key(st, hash, a);
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

/* An upload's bytes from its (enciphered) spool. */
static int read_upload(const void *src, char **data, size_t *len)
{
    return http_file_read(src, data, len);
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
            in->files[i] = (task_file_in){f->field,        f->filename, f->path,
                                          f->content_type, f->size,     read_upload,
                                          f};
        }
        return 0;
    }
    const char *ct = http_header(r, "content-type");
    if (!ct || !http_type_is(r, "application/json")) {
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

static size_t config_slot(int64_t acct, const char *type)
{
    size_t h = (size_t)acct * 2654435761u; /* Knuth's multiplier: ids 1, 2, 3 spread */
    for (const char *c = type; *c; c++)
        h = h * 31 + (unsigned char)*c;
    return h % API_CONFIGS;
}

static void copy_vars(vars *to, const vars *from)
{
    for (size_t i = 0; i < vars_count(from); i++)
        vars_set(to, vars_name(from, i), vars_get(from, vars_name(from, i)), 0);
}

/* The SOP version a new task of this type takes and the account's input
 * defaults (into defaults): what this node read last, while the account's
 * row (read by authenticate for this request) shows the same config_gen;
 * else read from the store (one query) and kept. The SOP and defaults
 * change only with config_gen moving after them, in their transaction, so
 * a kept copy is never older than the row that vouches for it. 1, 0 (no
 * SOP for the type), -1 (store error). */
static int task_config(api_env *e, store *st, const account *a, const char *type, int *version,
                       vars *defaults)
{
    size_t i = config_slot(a->id, type);
    pthread_mutex_lock(&e->config_mu);
    int hit = e->configs[i].account == a->id && e->configs[i].gen == a->config_gen &&
              !strcmp(e->configs[i].type, type);
    if (hit) {
        *version = e->configs[i].version;
        copy_vars(defaults, e->configs[i].defaults);
    }
    pthread_mutex_unlock(&e->config_mu);
    if (hit)
        return 1;
    int found = store_sop_current_defaults(st, a->id, type, version, bundle_add_default, defaults);
    vars *kept = found == 1 && strlen(type) < sizeof(e->configs[i].type) ? vars_new() : NULL;
    if (!kept)
        return found;
    copy_vars(kept, defaults);
    pthread_mutex_lock(&e->config_mu);
    vars_free(e->configs[i].defaults);
    e->configs[i].account = a->id;
    e->configs[i].gen = a->config_gen;
    snprintf(e->configs[i].type, sizeof(e->configs[i].type), "%s", type);
    e->configs[i].version = *version;
    e->configs[i].defaults = kept;
    pthread_mutex_unlock(&e->config_mu);
    return 1;
}

/* The SOP that will run a task of this type, with the account's input
 * defaults into `defaults`, or the error answered (NULL). */
static const sop *sop_for(api_env *e, store *st, http_request *r, const account *a,
                          const char *type, int *version, vars *defaults)
{
    if (!task_type_known(type)) {
        http_reply_error(r, 422, "unknown_type", "type '%.64s' is not one of %s", type,
                         task_types_text());
        return NULL;
    }
    int found = task_config(e, st, a, type, version, defaults);
    if (found < 0) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return NULL;
    }
    if (!found) {
        http_reply_error(r, 422, "no_sop",
                         "this account has no SOP for %s yet (an operator adds one with "
                         "`portier account set-sop`)",
                         type);
        return NULL;
    }
    char err[PT_ERR_MAX];
    const sop *sp = NULL;
    int got = bundle_cache_get(e->sops, st, a->id, type, *version, &sp, err);
    if (got == PT_ECLOSED)
        http_reply_error(r, 503, "unavailable", "the store is not available");
    else if (got != PT_FOUND)
        http_reply_error(r, 500, "sop_error", "%s", err);
    return got == PT_FOUND ? sp : NULL;
}

/* Checks that the data fits the SOP's inputs before anything is queued, or
 * answers 422 with every problem (-1). */
static int check_data(http_request *r, const sop *sp, const vars *defaults, const char *type,
                      const char *data)
{
    char problems[4096] = "";
    vars *inputs = vars_new();
    int bad = vars_bind_data(sp, data, defaults, inputs, problems, sizeof(problems)) != 0;
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

/* The request's hash, kept with its Idempotency-Key: type, data and every
 * file (field, name, type and content), each part length-prefixed. */
static void request_hash(const create_in *in, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[32];
    unsigned len = 0;
    const char *parts[2] = {in->type, in->data};
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; i < 2; i++) {
        unsigned long long n = parts[i] ? strlen(parts[i]) + 1 : 0;
        EVP_DigestUpdate(md, &n, sizeof(n));
        EVP_DigestUpdate(md, parts[i] ? parts[i] : "", n);
    }
    for (size_t i = 0; i < in->nfiles; i++) {
        const task_file_in *f = &in->files[i];
        const char *meta[3] = {f->field, f->filename, f->content_type};
        for (size_t k = 0; k < 3; k++) {
            unsigned long long n = meta[k] ? strlen(meta[k]) + 1 : 0;
            EVP_DigestUpdate(md, &n, sizeof(n));
            EVP_DigestUpdate(md, meta[k] ? meta[k] : "", n);
        }
        unsigned long long size = f->size;
        EVP_DigestUpdate(md, &size, sizeof(size));
        /* the bytes as they were sent: the spool is enciphered under a key
         * of its own request, so its file differs for the same upload */
        char *bytes = NULL;
        size_t got = 0;
        if (f->read && f->read(f->src, &bytes, &got) == 0) {
            EVP_DigestUpdate(md, bytes, got);
            OPENSSL_cleanse(bytes, got);
        } else if (!f->read) {
            FILE *fp = fopen(f->path, "rb");
            char buf[16384];
            while (fp && (got = fread(buf, 1, sizeof(buf), fp)) > 0)
                EVP_DigestUpdate(md, buf, got);
            if (fp)
                fclose(fp);
        }
        free(bytes);
    }
    EVP_DigestFinal_ex(md, d, &len);
    EVP_MD_CTX_free(md);
    pt_hex(d, 32, out);
}

/* Whether file f is of one of the SOP's types: its name's extension, or
 * its content type's subtype (application/pdf is pdf). */
static int file_type_ok(const sop *sp, const task_file_in *f)
{
    if (!sp->nfile_types)
        return 1;
    const char *dot = f->filename ? strrchr(f->filename, '.') : NULL;
    const char *sub = f->content_type ? strchr(f->content_type, '/') : NULL;
    for (size_t i = 0; i < sp->nfile_types; i++) {
        const char *t = sp->file_types[i];
        size_t n = strlen(t);
        if ((dot && !strcasecmp(dot + 1, t)) ||
            (sub && !strncasecmp(sub + 1, t, n) && (!sub[1 + n] || sub[1 + n] == ';')))
            return 1;
    }
    return 0;
}

/* The SOP's `files required` list as "pdf or png" into out. */
static void types_text(const sop *sp, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sp->nfile_types && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", i ? " or " : "", sp->file_types[i]);
    if (!sp->nfile_types)
        snprintf(out, n, "any type");
}

/* Checks the files against the SOP's `files required` before anything is
 * queued, or answers 422 (-1). Names no file's content, only its place. */
static int check_files(http_request *r, const sop *sp, const char *type, const create_in *in)
{
    char types[256];
    types_text(sp, types, sizeof(types));
    size_t good = 0;
    for (size_t i = 0; i < in->nfiles; i++) {
        if (file_type_ok(sp, &in->files[i])) {
            good++;
            continue;
        }
        http_reply_error(r, 422, "unsupported_file_type", "file %zu is not a type %s takes (%s)",
                         i + 1, type, types);
        return -1;
    }
    if ((int)good < sp->files_min) {
        http_reply_error(r, 422, "missing_files",
                         "%s needs at least %d file%s (%s) sent as multipart/form-data `files`; "
                         "the request has %zu",
                         type, sp->files_min, sp->files_min == 1 ? "" : "s", types, good);
        return -1;
    }
    return 0;
}

/* A retry with a key already used returns the original task, whatever
 * happened since (the queue may be full now), if it is the same request;
 * the same key with another request is a 422. 1 answered, 0 go on, -1 the
 * key is malformed or reused (answered). */
static int replay_idempotent(store *st, http_request *r, const account *a, const char *idem,
                             const char *hash)
{
    if (idem && (!*idem || strlen(idem) > 255)) {
        http_reply_error(r, 400, "invalid_request", "Idempotency-Key must be 1 to 255 characters");
        return -1;
    }
    task orig;
    char was[65] = "";
    if (!idem || store_task_by_idempotency(st, a->id, idem, &orig, was) != 1)
        return 0;
    if (was[0] && strcmp(was, hash)) {
        http_reply_error(r, 422, "idempotency_key_reused",
                         "this Idempotency-Key was used for another request (task %lld); use a "
                         "new key for a new task",
                         (long long)orig.id);
        task_free(&orig);
        return -1;
    }
    http_add_header(r, "Idempotent-Replayed", "true");
    reply_task(r, &orig);
    task_free(&orig);
    return 1;
}

/* A place in the queue, or the 429 answered (-1): the early answer, from
 * the last count and the creations under way on this node (under one
 * lock, so a burst is not let through all at once). It is approximate (a
 * creation can be counted twice, or for a moment not at all); what holds
 * the limit is the writer's exact count near it (dispatch.c). queue_release
 * after the create, whatever its outcome. */
static int queue_admit(api_env *e, store *st, http_request *r)
{
    /* counted outside the lock (a count of a long queue holds no one
     * up), read again under it with the creations under way */
    dispatch_queue_depth(e->dispatch, st);
    pthread_mutex_lock(&e->admit_mu);
    long long queued = dispatch_queue_counted(e->dispatch);
    queued = (queued > 0 ? queued : 0) + e->admitting; /* a store error: the create says */
    int full = queued >= e->max_queue;
    if (!full)
        e->admitting++;
    pthread_mutex_unlock(&e->admit_mu);
    if (!full)
        return 0;
    http_add_header(r, "Retry-After", "30");
    http_reply_error(r, 429, "queue_full",
                     "%lld tasks are waiting to run (the limit is %d); retry later", queued,
                     e->max_queue);
    return -1;
}

static void queue_release(api_env *e)
{
    pthread_mutex_lock(&e->admit_mu);
    e->admitting--;
    pthread_mutex_unlock(&e->admit_mu);
}

/* Keys whose first request is being answered now (this node), so that the
 * same key at the same time is a 409 rather than a race. */
static int idem_claim(api_env *e, int64_t acct, const char *key)
{
    char k[300];
    snprintf(k, sizeof(k), "%lld:%s", (long long)acct, key);
    pthread_mutex_lock(&e->idem_mu);
    int free_at = -1;
    for (int i = 0; i < API_IDEM_INFLIGHT; i++) {
        if (e->idem_inflight[i][0] && !strcmp(e->idem_inflight[i], k)) {
            pthread_mutex_unlock(&e->idem_mu);
            return -1;
        }
        if (!e->idem_inflight[i][0] && free_at < 0)
            free_at = i;
    }
    if (free_at >= 0)
        snprintf(e->idem_inflight[free_at], sizeof(e->idem_inflight[free_at]), "%s", k);
    pthread_mutex_unlock(&e->idem_mu);
    return free_at >= 0 ? free_at : -2; /* -2 table full: no guard, the store still dedupes */
}

static void idem_release(api_env *e, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&e->idem_mu);
    e->idem_inflight[slot][0] = '\0';
    pthread_mutex_unlock(&e->idem_mu);
}

static void create_task(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    const account *a = c->a;
    create_in in = {0};
    int claim = -2;
    vars *defaults = vars_new();
    if (!defaults) {
        http_reply_error(r, 503, "unavailable", "out of memory");
        goto out;
    }
    if (read_create(r, &in) < 0)
        goto out;
    if (!in.type || !*in.type) {
        http_reply_error(r, 400, "invalid_request", "type is required (one of %s)",
                         task_types_text());
        goto out;
    }
    const char *idem = http_header(r, "idempotency-key");
    char hash[65];
    request_hash(&in, hash);
    if (idem && *idem && strlen(idem) <= 255 && (claim = idem_claim(e, a->id, idem)) == -1) {
        http_reply_error(r, 409, "idempotency_key_in_use",
                         "a request with this Idempotency-Key is still being answered; retry "
                         "once it has been");
        goto out;
    }
    if (replay_idempotent(st, r, a, idem, hash) != 0)
        goto out;
    int version = 0;
    const sop *sp = sop_for(e, st, r, a, in.type, &version, defaults);
    if (!sp || check_files(r, sp, in.type, &in) < 0 ||
        check_data(r, sp, defaults, in.type, in.data) < 0)
        goto out;
    if (queue_admit(e, st, r) < 0)
        goto out;
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
                  .idem_hash = hash,
                  .files = in.files,
                  .nfiles = in.nfiles,
                  .files_dir = e->files_dir};
    task t;
    int rc = dispatch_create(e->dispatch, &n, &t, err);
    queue_release(e);
    if (rc == PT_ELIMIT) { /* the writer's count, every node's tasks included */
        http_add_header(r, "Retry-After", "30");
        http_reply_error(r, 429, "queue_full", "%s; retry later", err);
        goto out;
    }
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
    vars_free(defaults);
    idem_release(e, claim);
    create_in_free(&in);
}

/* ---- GET /tasks ---------------------------------------------------------- */

/* Every query parameter is known and given once, or the 400 is answered
 * (-1). */
static int check_query(http_request *r, const char *const *known, size_t nknown)
{
    for (size_t i = 0; http_query_name(r, i); i++) {
        const char *name = http_query_name(r, i);
        size_t k = 0;
        while (k < nknown && strcmp(known[k], name))
            k++;
        if (k == nknown) {
            http_reply_error(r, 400, "unknown_parameter",
                             "unknown query parameter '%.40s' (known: status, type, limit, after, "
                             "created_after, created_before)",
                             name);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(http_query_name(r, j), name)) {
                http_reply_error(
                    r, 400, "repeated_parameter", "query parameter '%s' is given more than once%s",
                    name,
                    strcmp(name, "status") ? "" : " (send one comma-separated list: status=a,b)");
                return -1;
            }
    }
    return 0;
}

/* status=a,b as a JSON array of names into *json (NULL: any), or the 400
 * answered (-1). */
static int status_list(http_request *r, const char *status, char **json)
{
    *json = NULL;
    if (!status || !*status)
        return 0;
    cJSON *arr = cJSON_CreateArray();
    char *copy = strdup(status), *save = NULL;
    int rc = copy ? 0 : -1;
    for (char *p = copy ? strtok_r(copy, ",", &save) : NULL; p && !rc;
         p = strtok_r(NULL, ",", &save)) {
        enum task_status want;
        if (task_status_parse(p, &want) != PT_FOUND) {
            http_reply_error(r, 400, "invalid_request", "status '%.40s' is not a task status", p);
            rc = -1;
        } else {
            cJSON_AddItemToArray(arr, cJSON_CreateString(p));
        }
    }
    if (!rc && !cJSON_GetArraySize(arr)) {
        http_reply_error(r, 400, "invalid_request", "status must name one or more statuses");
        rc = -1;
    }
    if (!rc)
        *json = cJSON_PrintUnformatted(arr);
    free(copy);
    cJSON_Delete(arr);
    return rc;
}

/* A created_after / created_before bound into *ms (0: none), or the 400
 * answered (-1). */
static int time_bound(http_request *r, const char *name, int64_t *ms)
{
    const char *v = http_query(r, name);
    *ms = 0;
    if (!v)
        return 0;
    if (pt_iso8601_parse(v, ms) < 0) {
        http_reply_error(r, 400, "invalid_request",
                         "%s must be an ISO-8601 date or date-time with a zone "
                         "(2025-03-18 or 2025-03-18T12:00:00.000Z)",
                         name);
        return -1;
    }
    return 0;
}

/* The listing's filter from the query, or the 400 answered (-1); *statuses
 * is the caller's to free. */
static int read_filter(http_request *r, task_filter *f, char **statuses)
{
    static const char *const known[] = {"status", "type",          "limit",
                                        "after",  "created_after", "created_before"};
    *statuses = NULL;
    if (check_query(r, known, sizeof(known) / sizeof(known[0])) < 0 ||
        status_list(r, http_query(r, "status"), statuses) < 0 ||
        time_bound(r, "created_after", &f->created_after) < 0 ||
        time_bound(r, "created_before", &f->created_before) < 0)
        return -1;
    f->statuses_json = *statuses;
    const char *type = http_query(r, "type");
    const char *lim = http_query(r, "limit"), *after = http_query(r, "after");
    f->type = type && *type ? type : NULL;
    if (f->type && !task_type_known(f->type)) {
        http_reply_error(r, 400, "invalid_request", "type '%.40s' is not a task type", f->type);
        return -1;
    }
    char *end;
    long limit = lim ? strtol(lim, &end, 10) : 20;
    if (lim && (*end || limit < 1 || limit > 100)) {
        http_reply_error(r, 400, "invalid_request", "limit must be 1 to 100");
        return -1;
    }
    f->limit = (int)limit;
    long long cursor = after ? strtoll(after, &end, 10) : 0;
    if (after && (*end || cursor < 1)) {
        http_reply_error(r, 400, "invalid_request",
                         "after must be a task id (the next_after of the previous page)");
        return -1;
    }
    f->after = cursor;
    return 0;
}

static void list_tasks(http_request *r, void *ud)
{
    const api_call *c = ud;
    task_filter f = {0};
    char *statuses = NULL;
    if (read_filter(r, &f, &statuses) < 0) {
        free(statuses);
        return;
    }
    int64_t next = 0;
    task *rows = NULL;
    size_t n = 0;
    int rc = store_task_list(c->st, c->a->id, &f, &rows, &n, &next);
    free(statuses);
    if (rc < 0) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "data");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, task_to_json(&rows[i]));
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
    int moved = PT_FOUND;
    if (workers_answer(e->workers, &cx, t->id, mine) == PT_FOUND)
        ; /* the holding worker goes on */
    else if (t->committed)
        moved = task_escalate_waiting(
            &cx, t->id,
            "The answer came after the run had stopped, past its commit point; the "
            "portal may have a partial submission. Check it, then approve or reject.",
            "answered too late");
    else
        moved = task_requeue(&cx, t->id, TASK_WAITING_FOR_INPUT,
                             "answered; runs again from the start");
    if (moved != PT_FOUND) {
        /* another answer came first and its run goes on: this one is late
         * (a committed run must not be sent to review under its feet) */
        task now;
        if (store_task_get(st, 0, t->id, &now) == 1) {
            conflict(r, &now, task_status_name(TASK_WAITING_FOR_INPUT));
            task_free(&now);
        } else
            conflict(r, t, task_status_name(TASK_WAITING_FOR_INPUT));
        goto out;
    }
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
static void trajectory(const api_call *c, http_request *r, const char *file)
{
    store *st = c->st;
    task *t = c->t;
    char *dir = store_trajectory_dir(st, t->id);
    if (!dir) {
        http_reply_error(r, 404, "not_found", "task %lld has not run yet", (long long)t->id);
        return;
    }
    char *data = NULL;
    size_t len = 0;
    /* screenshots and DOM snapshots may show PHI: never kept in a cache */
    http_add_header(r, "Cache-Control", "no-store");
    if (file) {
        if (!safe_name(file)) {
            http_reply_error(r, 404, "not_found", "no such trajectory file");
            goto out;
        }
        /* sealed at rest (keys.c): opened for this reply only */
        int got = keys_read_trajectory(c->e->keys, st, t->account_id, t->id, dir, file,
                                       64u << 20, &data, &len);
        if (got == PT_ECLOSED) {
            http_reply_error(r, 503, "unavailable", "the store is not available");
            goto out;
        }
        if (got < 0) {
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
                                : "sandbox allow-scripts; default-src 'none'; img-src data:; "
                                  "style-src 'unsafe-inline'; "
                                  "script-src 'unsafe-inline'");
        http_write(r, data, len);
        goto out;
    }
    cJSON *o = NULL;
    int got = keys_read_trajectory(c->e->keys, st, t->account_id, t->id, dir, "trajectory.json",
                                   64u << 20, &data, &len);
    if (got == PT_ECLOSED) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        goto out;
    }
    if (got == 0)
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
    trajectory(ud, r, NULL);
}

/* /tasks/{id}/trajectory/FILE: the id is digits, so the first
 * "/trajectory/" is the one before FILE. */
static void trajectory_file(http_request *r, void *ud)
{
    const api_call *c = ud;
    const char *file = strstr(http_path(r), "/trajectory/") + strlen("/trajectory/");
    trajectory(c, r, file);
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
    if (!row.payload) {
        http_reply_error(r, 409, "conflict",
                         "task %lld's data was purged (retention): its event cannot be sent again",
                         (long long)t->id);
        outbox_row_free(&row);
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

/* ---- The account's webhook endpoint -------------------------------------- */

/* GET /webhook's view of account a (as stored now). */
static cJSON *webhook_view(store *st, int64_t acct)
{
    account a;
    cJSON *o = cJSON_CreateObject();
    if (store_account_by_id(st, acct, &a) != 1)
        return o;
    int has = a.webhook_url && *a.webhook_url;
    cJSON_AddItemToObject(o, "url", has ? cJSON_CreateString(a.webhook_url) : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "enabled", has && !a.webhook_disabled);
    if (a.webhook_disabled)
        cJSON_AddStringToObject(o, "disabled_reason",
                                "the endpoint answered 410 Gone; PUT /webhook re-enables it");
    else if (!has)
        cJSON_AddStringToObject(o, "disabled_reason", "the account has no webhook endpoint");
    else
        cJSON_AddNullToObject(o, "disabled_reason");
    cJSON_AddItemToObject(o, "events", webhook_events_json(a.webhook_events));
    cJSON_AddItemToObject(o, "attempts", store_account_attempts(st, acct, 20));
    account_free(&a);
    return o;
}

static void webhook_get(http_request *r, void *ud)
{
    const api_call *c = ud;
    reply_obj(r, 200, webhook_view(c->st, c->a->id));
}

/* PUT /webhook's events member (an array of names) into *mask, or the 400
 * answered (-1). */
static int read_events(http_request *r, const cJSON *ev, unsigned *mask)
{
    char list[256] = "", err[PT_ERR_MAX];
    size_t used = 0;
    const cJSON *e;
    int ok = cJSON_IsArray(ev);
    cJSON_ArrayForEach(e, ev)
    {
        ok = ok && cJSON_IsString(e) && strlen(e->valuestring) < 64 && used + 66 < sizeof(list);
        if (ok)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? "," : "",
                                     e->valuestring);
    }
    if (!ok) {
        http_reply_error(r, 400, "invalid_request", "events must be an array of event names (%s)",
                         WEBHOOK_EVENT_NAMES);
        return -1;
    }
    if (webhook_events_parse(list, mask, err) < 0) {
        http_reply_error(r, 400, "invalid_request", "events: %s", err);
        return -1;
    }
    return 0;
}

/* PUT /webhook {"url", "events"}: either or both; it re-enables the
 * endpoint. */
static void webhook_put(http_request *r, void *ud)
{
    const api_call *c = ud;
    cJSON *b = json_body(r, 1);
    if (!b)
        return;
    cJSON *url = cJSON_GetObjectItemCaseSensitive(b, "url");
    cJSON *ev = cJSON_GetObjectItemCaseSensitive(b, "events");
    const char *u = cJSON_GetStringValue(url);
    unsigned mask = 0;
    if (!url && !ev) {
        http_reply_error(r, 400, "invalid_request", "send {\"url\": ..., \"events\": [...]}");
        goto out;
    }
    if (url && (!u || strlen(u) > 2048 || (strncmp(u, "https://", 8) && strncmp(u, "http://", 7)) ||
                strpbrk(u, " \r\n"))) {
        http_reply_error(r, 400, "invalid_request",
                         "url must be an http:// or https:// URL of at most 2048 characters");
        goto out;
    }
    char err[PT_ERR_MAX];
    if (u && webhook_url_check(u, c->e->allow_private_webhooks, err) < 0) {
        http_reply_error(r, 400, "invalid_request", "url: %s", err);
        goto out;
    }
    if (ev && read_events(r, ev, &mask) < 0)
        goto out;
    const char *now = u ? u : c->a->webhook_url;
    if (!now || !*now) {
        http_reply_error(r, 400, "invalid_request", "the account has no endpoint yet: send url");
        goto out;
    }
    if (store_account_set_webhook(c->st, c->a->id, now) < 0 ||
        (ev && store_account_set_events(c->st, c->a->id, mask) < 0)) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        goto out;
    }
    PT_INFO("api", "account %lld set its webhook endpoint", (long long)c->a->id);
    reply_obj(r, 200, webhook_view(c->st, c->a->id));
out:
    cJSON_Delete(b);
}

/* The endpoint can take an event now, or the 409 answered (-1). */
static int endpoint_ready(http_request *r, const account *a)
{
    if (!a->webhook_url || !*a->webhook_url) {
        http_reply_error(r, 409, "no_webhook",
                         "the account has no webhook endpoint: PUT /webhook {\"url\"} first");
        return -1;
    }
    if (a->webhook_disabled) {
        http_reply_error(r, 409, "webhook_disabled",
                         "the endpoint answered 410 Gone and is disabled: PUT /webhook re-enables "
                         "it");
        return -1;
    }
    return 0;
}

/* POST /webhook/test: a signed ping through the outbox, recorded like any
 * attempt. */
static void webhook_test(http_request *r, void *ud)
{
    const api_call *c = ud;
    if (endpoint_ready(r, c->a) < 0)
        return;
    char data[160], eid[40] = "evt_";
    snprintf(data, sizeof(data), "{\"accountId\":%lld,\"message\":\"ping from portier\"}",
             (long long)c->a->id);
    pt_random_hex(eid + 4, 32);
    if (store_outbox_add(c->st, c->a->id, 0, "ping", eid, data) < 0) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    webhooks_kick(c->e->hooks);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event_id", eid);
    cJSON_AddStringToObject(o, "status", "queued");
    reply_obj(r, 202, o);
}

/* POST /webhook/recover {"since"}: every event that failed for good since
 * then goes out again, each on a fresh schedule. */
static void webhook_recover(http_request *r, void *ud)
{
    const api_call *c = ud;
    cJSON *b = json_body(r, 1);
    if (!b)
        return;
    const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "since"));
    int64_t ms = 0, n = 0;
    if (!since || pt_iso8601_parse(since, &ms) < 0) {
        http_reply_error(r, 400, "invalid_request",
                         "since must be an ISO-8601 date or date-time with a zone "
                         "(2025-03-18T12:00:00.000Z)");
    } else if (endpoint_ready(r, c->a) == 0) {
        if (store_outbox_recover(c->st, c->a->id, ms, &n) < 0) {
            http_reply_error(r, 503, "unavailable", "the store is not available");
        } else {
            webhooks_kick(c->e->hooks);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "requeued", (double)n);
            reply_obj(r, 202, o);
        }
    }
    cJSON_Delete(b);
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
    /* a draining node answers 503, so a load balancer sends it nothing
     * new; it still serves what it is sent */
    int draining = e->node && node_draining(e->node);
    cJSON_AddStringToObject(o, "status", !ok ? "degraded" : draining ? "draining" : "ok");
    if (e->node)
        cJSON_AddStringToObject(o, "node", node_id(e->node));
    cJSON_AddStringToObject(o, "version", PORTIER_VERSION);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)((pt_wall_ms() - e->started_ms) / 1000));
    cJSON_AddNumberToObject(o, "workers", ws.workers);
    cJSON_AddStringToObject(o, "browser", pool_state(e->pool));
    reply_obj(r, ok && !draining ? 200 : 503, o);
}

/* portier_tasks{status, type} for every status and type. */
static void metrics_tasks(store *st, const char *l, pt_buf *b)
{
    cJSON *counts = st ? store_task_counts(st) : NULL;
    pt_buf_appendf(b, "# HELP portier_tasks Tasks by status and type.\n"
                      "# TYPE portier_tasks gauge\n");
    for (int i = 0; i < TASK_NSTATUS; i++)
        for (size_t k = 0; k < TASK_NTYPES; k++) {
            const char *status = task_status_name((enum task_status)i), *type = task_type_name(k);
            cJSON *by = cJSON_GetObjectItem(counts, status);
            cJSON *n = by ? cJSON_GetObjectItem(by, type) : NULL;
            pt_buf_appendf(b, "portier_tasks{%s,status=\"%s\",type=\"%s\"} %lld\n", l, status,
                           type, n ? (long long)n->valuedouble : 0LL);
        }
    cJSON_Delete(counts);
}

/* Workers, the browser and the run-time histogram. */
static void metrics_workers(api_env *e, store *st, const char *l, pt_buf *b)
{
    worker_stats ws;
    workers_stats(e->workers, &ws);
    long long pending = st ? dispatch_queue_depth(e->dispatch, st) : 0;
    pt_buf_appendf(b,
                   "# HELP portier_queue_depth Tasks waiting for a worker.\n"
                   "# TYPE portier_queue_depth gauge\nportier_queue_depth{%s} %lld\n"
                   "# HELP portier_workers Workers configured.\n"
                   "# TYPE portier_workers gauge\nportier_workers{%s} %d\n"
                   "# HELP portier_workers_busy Workers running a task now.\n"
                   "# TYPE portier_workers_busy gauge\nportier_workers_busy{%s} %d\n"
                   "# HELP portier_parked_sessions Waiting tasks that hold their browser "
                   "context.\n"
                   "# TYPE portier_parked_sessions gauge\nportier_parked_sessions{%s} %d\n"
                   "# HELP portier_worker_utilization Busy workers over workers.\n"
                   "# TYPE portier_worker_utilization gauge\nportier_worker_utilization{%s} %.3f\n"
                   "# HELP portier_browser_launches_total Browsers started (relaunches "
                   "included).\n"
                   "# TYPE portier_browser_launches_total counter\n"
                   "portier_browser_launches_total{%s} %d\n"
                   "# HELP portier_http_requests_total API requests served.\n"
                   "# TYPE portier_http_requests_total counter\n"
                   "portier_http_requests_total{%s} %ld\n"
                   "# HELP portier_task_duration_seconds Time from running to a final status.\n"
                   "# TYPE portier_task_duration_seconds histogram\n",
                   l, pending, l, ws.workers, l, ws.busy, l, pool_parked(e->pool), l,
                   ws.workers ? (double)ws.busy / ws.workers : 0.0, l, pool_launches(e->pool), l,
                   (long)e->requests);
    for (int i = 0; i < WORKER_DURATION_BUCKETS; i++) {
        if (worker_duration_bounds[i])
            pt_buf_appendf(b, "portier_task_duration_seconds_bucket{%s,le=\"%g\"} %ld\n", l,
                           worker_duration_bounds[i] / 1000.0, ws.buckets[i]);
        else
            pt_buf_appendf(b, "portier_task_duration_seconds_bucket{%s,le=\"+Inf\"} %ld\n", l,
                           ws.buckets[i]);
    }
    pt_buf_appendf(b,
                   "portier_task_duration_seconds_sum{%s} %.3f\n"
                   "portier_task_duration_seconds_count{%s} %ld\n",
                   l, ws.ms_sum / 1000.0, l, ws.runs);
}

static void metrics(http_request *r, void *ud)
{
    const api_call *c = ud;
    api_env *e = c->e;
    store *st = c->st;
    pt_buf b;
    pt_buf_init(&b, 0);
    /* every sample names its node; the database's counts (tasks, queue,
     * events) are the same on every node: aggregate them with max, the
     * node's own (workers, attempts) with sum */
    char l[128];
    snprintf(l, sizeof(l), "node=\"%s\"", e->node ? node_id(e->node) : "");
    metrics_tasks(st, l, &b);
    metrics_workers(e, st, l, &b);
    webhooks_metrics(e->hooks, l, &b);
    if (e->node)
        node_metrics(e->node, st, l, &b);
    cJSON *ob = st ? store_outbox_counts(st) : NULL;
    pt_buf_appendf(&b, "# HELP portier_webhook_events Webhook events by state.\n"
                       "# TYPE portier_webhook_events gauge\n");
    for (cJSON *n = ob ? ob->child : NULL; n; n = n->next)
        if (strcmp(n->string, "attempts") && strcmp(n->string, "failures"))
            pt_buf_appendf(&b, "portier_webhook_events{%s,state=\"%s\"} %lld\n", l, n->string,
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
    e->admitting = 0;
    pthread_mutex_init(&e->admit_mu, NULL);
    memset(e->idem_inflight, 0, sizeof(e->idem_inflight));
    pthread_mutex_init(&e->idem_mu, NULL);
    memset(e->admit_seen, 0, sizeof(e->admit_seen));
    pthread_mutex_init(&e->seen_mu, NULL);
    memset(e->configs, 0, sizeof(e->configs));
    pthread_mutex_init(&e->config_mu, NULL);
    memset(e->flights, 0, sizeof(e->flights));
    pthread_mutex_init(&e->flight_mu, NULL);
    pthread_cond_init(&e->flight_cv, NULL);
    return pthread_key_create(&e->store_key, close_store) == 0 ? PT_OK : PT_EFAIL;
}

void api_fini(api_env *e)
{
    pthread_mutex_destroy(&e->idem_mu);
    pthread_mutex_destroy(&e->seen_mu);
    for (size_t i = 0; i < API_CONFIGS; i++)
        vars_free(e->configs[i].defaults);
    pthread_mutex_destroy(&e->config_mu);
    for (size_t i = 0; i < API_KEY_FLIGHTS; i++)
        account_free(&e->flights[i].a);
    pthread_mutex_destroy(&e->flight_mu);
    pthread_cond_destroy(&e->flight_cv);
    pthread_key_delete(e->store_key);
    pthread_mutex_destroy(&e->admit_mu);
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
    keys_attach(e->keys, st);
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
    {"GET", "/webhook", webhook_get},
    {"PUT", "/webhook", webhook_put},
    {"POST", "/webhook/test", webhook_test},
    {"POST", "/webhook/recover", webhook_recover},
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
    size_t len = strcspn(p, "/");
    if (len && (end == p || (*end && *end != '/') || !isdigit((unsigned char)*p))) {
        http_reply_error(r, 400, "invalid_id", "a task id is a number; '%.*s' is not",
                         (int)(len < 40 ? len : 40), p);
        return -1;
    }
    if (!len || id < 1) {
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

/* Whether a path is an account's: everything under /tasks. */
static int needs_key(const char *path)
{
    return strcmp(path, "/tasks") == 0 || strncmp(path, "/tasks/", 7) == 0 ||
           strcmp(path, "/webhook") == 0 || strncmp(path, "/webhook/", 9) == 0;
}

/* The hash of the request's Bearer key, if it has one (1). */
static int bearer_hash(http_request *r, char hash[65])
{
    const char *h = http_header(r, "authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    if (!*key)
        return 0;
    keys_api_key_hash(key, hash);
    return 1;
}

/* The admit_seen slot a key's hash goes in: its first hex digits, which
 * are as evenly spread as any. */
static size_t seen_slot(const char hash[65])
{
    size_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v * 16 + (size_t)(isdigit((unsigned char)hash[i]) ? hash[i] - '0' : (hash[i] | 32) - 'a' + 10);
    return v % API_ADMIT_SEEN;
}

/* Whether admit found this key valid lately (1). */
static int admit_seen(api_env *e, const char hash[65])
{
    size_t i = seen_slot(hash);
    pthread_mutex_lock(&e->seen_mu);
    int seen = pt_equal_ct(e->admit_seen[i].hash, hash, 64) && e->admit_seen[i].until > pt_mono_ms();
    pthread_mutex_unlock(&e->seen_mu);
    return seen;
}

static void admit_saw(api_env *e, const char hash[65])
{
    size_t i = seen_slot(hash);
    pthread_mutex_lock(&e->seen_mu);
    memcpy(e->admit_seen[i].hash, hash, 65);
    e->admit_seen[i].until = pt_mono_ms() + API_ADMIT_SEEN_MS;
    pthread_mutex_unlock(&e->seen_mu);
}

int api_admit(http_request *r, void *ud)
{
    api_env *e = ud;
    if (!needs_key(http_path(r))) {
        if (http_content_length(r) <= API_OPEN_BODY_MAX)
            return 0;
        http_reply_error(r, 413, "payload_too_large",
                         "a request without an API key carries at most %d bytes of body",
                         API_OPEN_BODY_MAX);
        return -1;
    }
    char hash[65];
    int bearer = bearer_hash(r, hash);
    if (bearer && admit_seen(e, hash))
        return 0;
    store *st = thread_store(e);
    if (!st) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return -1;
    }
    account a;
    char actor[64];
    /* the service thread waits on no one's read: its own */
    if (authenticate(NULL, st, r, &a, actor) < 0)
        return -1;
    account_free(&a);
    /* a Bearer key only: a dashboard session is checked with its cookie */
    if (bearer && !strcmp(actor, "API key"))
        admit_saw(e, hash);
    return 0;
}

/* The HTTP handler: the store, then for /tasks the caller's key and, under
 * /tasks/{id}, their task, all before any route is picked (so a stranger
 * gets a 401 and a missing task a 404, whatever the method); then the
 * table. */
void api_handle(http_request *r, void *ud)
{
    api_env *e = ud;
    e->requests++;
    /* a reply is what its type says, never sniffed into HTML */
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    const char *path = http_path(r);
    api_call c = {e, thread_store(e), NULL, NULL, NULL};
    if (!c.st) {
        http_reply_error(r, 503, "unavailable", "the store is not available");
        return;
    }
    if (dashboard_owns(path)) {
        dashboard_env d = {c.st, e->keys, e->sops, e->allow_private_webhooks};
        dashboard_handle(&d, r);
        return;
    }
    account a;
    task t;
    char actor[64];
    c.actor = actor;
    if (needs_key(path)) {
        if (authenticate(e, c.st, r, &a, actor) < 0)
            return;
        c.a = &a;
        if (!strncmp(path, "/tasks/", 7)) {
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
