/*
 * webhook.c - webhook signing and the deliverer: a thread with a libcurl
 * multi handle that sends the outbox's due rows, records every attempt and
 * schedules retries. See webhook.h. It never decides a task's status and
 * gets signing secrets only from keys.c, wiping them after use.
 */
#define _GNU_SOURCE
#include "server/webhook.h"
#include "server/keys.h"
#include "server/store.h"
#include "util/b64.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_IN_FLIGHT 64
#define REPLY_KEEP 512
#define LATENCY_BUCKETS 8
static const int64_t latency_bounds[LATENCY_BUCKETS] = {10, 50, 100, 500, 1000, 5000, 15000, 0};

typedef struct flight {
    CURL *easy;
    struct curl_slist *headers;
    outbox_row row;
    char *body;
    int64_t started;
    int64_t retry_after; /* ms from now, from Retry-After; 0 none */
    char error[CURL_ERROR_SIZE];
} flight;

struct webhooks {
    char *db_path;
    const keys *keys;
    pthread_t thread;
    CURLM *multi;
    pthread_mutex_t mu;
    int stop;
    int started;
    atomic_int kicked; /* new rows: look at the outbox now */
    int64_t delays[16];
    size_t ndelays;
    long timeout_ms;
    flight *fl[MAX_IN_FLIGHT];
    atomic_long attempts, failures, dead, delivered, latency_sum;
    atomic_long latency_buckets[LATENCY_BUCKETS];
};

/* ---- Signing ------------------------------------------------------------- */

/* The HMAC key of a whsec_ secret: the base64-decoded part after the prefix. */
static unsigned char *secret_key(const char *secret, size_t *len)
{
    const char *b = !strncmp(secret, "whsec_", 6) ? secret + 6 : secret;
    return pt_b64_decode(b, strlen(b), len);
}

static void jcs_string(pt_buf *b, const char *s)
{
    pt_buf_append(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"':
            pt_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            pt_buf_append(b, "\\\\", 2);
            break;
        case '\b':
            pt_buf_append(b, "\\b", 2);
            break;
        case '\f':
            pt_buf_append(b, "\\f", 2);
            break;
        case '\n':
            pt_buf_append(b, "\\n", 2);
            break;
        case '\r':
            pt_buf_append(b, "\\r", 2);
            break;
        case '\t':
            pt_buf_append(b, "\\t", 2);
            break;
        default:
            if (*c < 0x20)
                pt_buf_appendf(b, "\\u%04x", *c);
            else
                pt_buf_append(b, c, 1);
        }
    }
    pt_buf_append(b, "\"", 1);
}

static int key_cmp(const void *a, const void *b)
{
    /* UTF-8 byte order is code point order, which is UTF-16 order for
     * every key below U+E000 (ours are ASCII) */
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

static void jcs_value(pt_buf *b, const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
        const cJSON **kids = calloc(n ? n : 1, sizeof(*kids));
        for (const cJSON *c = v->child; c && kids; c = c->next)
            kids[i++] = c;
        if (kids)
            qsort(kids, n, sizeof(*kids), key_cmp);
        pt_buf_append(b, "{", 1);
        for (i = 0; kids && i < n; i++) {
            if (i)
                pt_buf_append(b, ",", 1);
            jcs_string(b, kids[i]->string);
            pt_buf_append(b, ":", 1);
            jcs_value(b, kids[i]);
        }
        pt_buf_append(b, "}", 1);
        free(kids);
    } else if (cJSON_IsArray(v)) {
        pt_buf_append(b, "[", 1);
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child)
                pt_buf_append(b, ",", 1);
            jcs_value(b, c);
        }
        pt_buf_append(b, "]", 1);
    } else if (cJSON_IsString(v)) {
        jcs_string(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d && d < 9007199254740992.0 && d > -9007199254740992.0)
            pt_buf_appendf(b, "%lld", (long long)d);
        else { /* the shortest form that reads back the same (ES6 style for
                  ordinary magnitudes; our payloads carry integers only) */
            char t[40];
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(t, sizeof(t), "%.*g", prec, d);
                if (strtod(t, NULL) == d)
                    break;
            }
            pt_buf_append(b, t, strlen(t));
        }
    } else if (cJSON_IsBool(v)) {
        pt_buf_appendf(b, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else {
        pt_buf_append(b, "null", 4);
    }
}

char *webhook_jcs(const cJSON *v)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    jcs_value(&b, v);
    return pt_buf_take(&b);
}

int webhook_signature(const char *const *secrets, size_t n, const char *id, int64_t timestamp,
                      const char *body, size_t bodylen, char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        unsigned char *key = secret_key(secrets[i], &klen), mac[32];
        if (!key)
            return -1;
        char ts[32];
        snprintf(ts, sizeof(ts), "%lld", (long long)timestamp);
        pt_buf msg;
        pt_buf_init(&msg, 0);
        pt_buf_appendf(&msg, "%s.%s.", id, ts);
        pt_buf_append(&msg, body, bodylen);
        pt_hmac_sha256(key, klen, msg.data, msg.len, mac);
        pt_buf_free(&msg);
        free(key);
        char *b64 = pt_b64_encode(mac, 32);
        int w = b64 ? snprintf(out + used, outsz - used, "%sv1,%s", i ? " " : "", b64) : -1;
        free(b64);
        if (w < 0 || (size_t)w >= outsz - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
}

char *webhook_envelope(const char *event, int64_t created_ms, const char *data_json,
                       const char *secret)
{
    cJSON *data = cJSON_Parse(data_json);
    if (!data)
        return NULL;
    char sig[65] = "";
    size_t klen;
    unsigned char *key = secret ? secret_key(secret, &klen) : NULL;
    char *canon = webhook_jcs(data);
    if (key && canon) {
        unsigned char mac[32];
        pt_hmac_sha256(key, klen, canon, strlen(canon), mac);
        pt_hex(mac, 32, sig);
    }
    free(key);
    free(canon);
    char iso[32];
    pt_iso8601(created_ms, iso);
    cJSON *env = cJSON_CreateObject();
    cJSON_AddStringToObject(env, "signature", sig);
    cJSON_AddStringToObject(env, "event", event);
    cJSON_AddStringToObject(env, "created_at", iso);
    cJSON_AddItemToObject(env, "data", data);
    char *out = cJSON_PrintUnformatted(env);
    cJSON_Delete(env);
    return out;
}

size_t webhook_schedule(int64_t *delays, size_t max)
{
    static const int64_t def[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};
    const char *env = getenv("PORTIER_WEBHOOK_RETRY_SCHEDULE");
    size_t n = 0;
    if (env && *env) {
        for (const char *p = env; *p && n < max;) {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 0)
                break;
            delays[n++] = v;
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',')
                break;
        }
        if (n)
            return n;
        PT_WARN("webhook", "PORTIER_WEBHOOK_RETRY_SCHEDULE is not a list of seconds; "
                           "using the default schedule");
    }
    for (; n < sizeof(def) / sizeof(def[0]) && n < max; n++)
        delays[n] = def[n];
    return n;
}

/* ---- One request ------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    pt_buf *b = ud;
    if (b && b->len < REPLY_KEEP)
        pt_buf_append(b, p, size * n < REPLY_KEEP - b->len ? size * n : REPLY_KEEP - b->len);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    flight *f = ud;
    size_t len = size * n;
    if (f && len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        char v[64];
        snprintf(v, sizeof(v), "%.*s", (int)(len - 12), p + 12);
        char *s = v;
        while (*s == ' ')
            s++;
        s[strcspn(s, "\r\n")] = '\0';
        char *end;
        long long secs = strtoll(s, &end, 10);
        if (end != s && !*end && secs >= 0)
            f->retry_after = secs * 1000;
        else {
            time_t when = curl_getdate(s, NULL);
            if (when > 0)
                f->retry_after = (int64_t)when * 1000 - pt_wall_ms();
        }
        if (f->retry_after > 24LL * 3600 * 1000)
            f->retry_after = 24LL * 3600 * 1000;
    }
    return len;
}

static CURL *make_request(const char *url, const char *const *secrets, size_t nsecrets,
                          const char *event_id, const char *body, long timeout_ms,
                          struct curl_slist **headers, char *errbuf)
{
    char sig[1024], h[1200];
    int64_t ts = pt_wall_ms() / 1000;
    if (webhook_signature(secrets, nsecrets, event_id, ts, body, strlen(body), sig, sizeof(sig)) <
        0)
        return NULL;
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(h, sizeof(h), "webhook-id: %s", event_id);
    hs = curl_slist_append(hs, h);
    snprintf(h, sizeof(h), "webhook-timestamp: %lld", (long long)ts);
    hs = curl_slist_append(hs, h);
    snprintf(h, sizeof(h), "webhook-signature: %s", sig);
    hs = curl_slist_append(hs, h);
    hs = curl_slist_append(hs, "User-Agent: portier-webhooks/" PORTIER_VERSION);
    hs = curl_slist_append(hs, "Expect:");
    *headers = hs;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is a failed attempt */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    errbuf[0] = '\0';
    return e;
}

static long timeout_from_env(void)
{
    const char *t = getenv("PORTIER_WEBHOOK_TIMEOUT_MS");
    long v = t ? strtol(t, NULL, 10) : 0;
    return v > 0 ? v : 15000;
}

int webhook_send(const char *url, const char *const *secrets, size_t nsecrets, const char *event_id,
                 const char *body, long *status, char **reply, int64_t *latency_ms, char *err)
{
    struct curl_slist *hs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    *status = 0;
    *reply = NULL;
    CURL *e = make_request(url, secrets, nsecrets, event_id, body, timeout_from_env(), &hs, errbuf);
    if (!e)
        return pt_errf(err, "cannot sign the event (is the secret whsec_ base64?)");
    pt_buf b;
    pt_buf_init(&b, 0);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    int64_t t0 = pt_mono_ms();
    CURLcode rc = curl_easy_perform(e);
    *latency_ms = pt_mono_ms() - t0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hs);
    *reply = pt_buf_take(&b);
    if (rc != CURLE_OK)
        return pt_errf(err, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return 0;
}

/* ---- The deliverer ------------------------------------------------------- */

/* The account's endpoint and secrets in the clear (current first, then the
 * previous one while its grace period lasts). PT_FOUND ready; PT_EGONE the
 * endpoint answered 410 Gone; PT_NONE nowhere to send (*why says either);
 * PT_EFAIL no such account. */
static int account_target(webhooks *w, store *st, int64_t acct, char **url, char **secrets,
                          size_t *n, const char **why)
{
    account a;
    *n = 0;
    if (store_account_by_id(st, acct, &a) != 1)
        return PT_EFAIL;
    int rc = PT_FOUND;
    if (!a.webhook_url || !*a.webhook_url) {
        *why = "the account has no webhook endpoint";
        rc = PT_NONE;
    } else if (a.webhook_disabled) {
        *why = "the endpoint is disabled (it answered 410 Gone); set it again to re-enable";
        rc = PT_EGONE;
    } else {
        keys_webhook_secrets(w->keys, &a, secrets, n);
        if (!*n) {
            *why = "the account's webhook secret cannot be read (wrong master key?)";
            rc = PT_NONE;
        } else if (!(*url = strdup(a.webhook_url))) {
            rc = PT_EFAIL;
        }
    }
    account_free(&a);
    return rc;
}

static void start_one(webhooks *w, store *st, outbox_row *row)
{
    char *url = NULL, *secrets[2] = {0};
    size_t n = 0;
    const char *why = NULL;
    int ok = account_target(w, st, row->account_id, &url, secrets, &n, &why);
    if (ok != PT_FOUND) {
        for (size_t i = 0; i < n; i++)
            keys_wipe(secrets[i]);
        store_outbox_attempt(st, row->id, pt_wall_ms(), 0, 0, why ? why : "the account is gone",
                             ok == PT_EGONE ? OUTBOX_DISABLED : OUTBOX_UNDELIVERABLE, 0);
        PT_WARN("webhook", "event %s of task %lld not sent: %s", row->event_id,
                (long long)row->task_id, why ? why : "no account");
        outbox_row_free(row);
        return;
    }
    int slot = -1;
    for (int i = 0; i < MAX_IN_FLIGHT && slot < 0; i++)
        if (!w->fl[i])
            slot = i;
    flight *f = calloc(1, sizeof(*f));
    if (f)
        f->body = webhook_envelope(row->event, row->created_at, row->payload, secrets[0]);
    if (f && f->body)
        f->easy = make_request(url, (const char *const *)secrets, n, row->event_id, f->body,
                               w->timeout_ms, &f->headers, f->error);
    free(url);
    for (size_t i = 0; i < n; i++)
        keys_wipe(secrets[i]);
    if (slot < 0 || !f || !f->easy) {
        if (f) {
            free(f->body);
            if (f->easy)
                curl_easy_cleanup(f->easy);
            curl_slist_free_all(f->headers);
        }
        free(f);
        outbox_row_free(row);
        return; /* tried again on the next round */
    }
    f->row = *row;
    f->started = pt_mono_ms();
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(f->easy, CURLOPT_PRIVATE, f);
    w->fl[slot] = f;
    curl_multi_add_handle(w->multi, f->easy);
}

static int64_t jitter(int64_t ms)
{
    if (ms <= 0)
        return 0;
    unsigned r = 0;
    pt_random(&r, sizeof(r));
    int64_t span = ms / 10; /* +-10% */
    return ms - span + (span ? (int64_t)(r % (unsigned)(2 * span + 1)) : 0);
}

static void finish_one(webhooks *w, store *st, flight *f, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    int64_t latency = pt_mono_ms() - f->started, now = pt_wall_ms();
    int attempt = f->row.attempts + 1;
    char err[CURL_ERROR_SIZE + 64] = "";
    enum outbox_state state = OUTBOX_PENDING;
    int64_t next = 0;
    w->attempts++;
    w->latency_sum += latency;
    for (int i = 0; i < LATENCY_BUCKETS; i++)
        if (!latency_bounds[i] || latency <= latency_bounds[i])
            w->latency_buckets[i]++;
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        state = OUTBOX_DELIVERED;
        w->delivered++;
    } else {
        w->failures++;
        if (rc != CURLE_OK)
            snprintf(err, sizeof(err), "%s", f->error[0] ? f->error : curl_easy_strerror(rc));
        else if (status >= 300 && status < 400)
            snprintf(err, sizeof(err), "HTTP %ld: redirects are not followed", status);
        else
            snprintf(err, sizeof(err), "HTTP %ld", status);
        if (status == 410) {
            state = OUTBOX_DISABLED;
            store_account_disable_webhook(st, f->row.account_id);
            PT_WARN("webhook", "account %lld's endpoint answered 410 Gone: disabled",
                    (long long)f->row.account_id);
        } else if ((size_t)attempt >= w->ndelays) {
            state = OUTBOX_DEAD;
            w->dead++;
        } else {
            int64_t delay = jitter(w->delays[attempt] * 1000);
            if (f->retry_after > delay)
                delay = f->retry_after;
            next = now + delay;
        }
    }
    store_outbox_attempt(st, f->row.id, now, (int)status, latency, err[0] ? err : NULL, state,
                         next);
    static const char *const state_names[] = {"to retry", "delivered", "dead", "disabled",
                                              "undeliverable"};
    PT_INFO("webhook", "event %s (task %lld) attempt %d: %s%s%s", f->row.event_id,
            (long long)f->row.task_id, attempt, state_names[state], err[0] ? ", " : "", err);
}

static void free_flight(webhooks *w, flight *f)
{
    curl_multi_remove_handle(w->multi, f->easy);
    curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->headers);
    free(f->body);
    outbox_row_free(&f->row);
    free(f);
}

static void *deliverer_main(void *arg)
{
    webhooks *w = arg;
    char err[PT_ERR_MAX];
    store *st = store_open(w->db_path, 0, err);
    if (!st) {
        PT_ERROR("webhook", "the deliverer cannot open the store: %s", err);
        return NULL;
    }
    int64_t next_look = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        int64_t now = pt_wall_ms();
        if (atomic_exchange(&w->kicked, 0))
            next_look = 0;
        size_t inflight = 0;
        int64_t busy[MAX_IN_FLIGHT];
        for (int i = 0; i < MAX_IN_FLIGHT; i++)
            if (w->fl[i])
                busy[inflight++] = w->fl[i]->row.id;
        if (inflight < MAX_IN_FLIGHT && now >= next_look) {
            outbox_row rows[MAX_IN_FLIGHT];
            size_t n = 0;
            store_outbox_due(st, now, busy, inflight, rows, MAX_IN_FLIGHT - inflight, &n);
            for (size_t i = 0; i < n; i++)
                start_one(w, st, &rows[i]);
            int64_t na = store_outbox_next_at(st);
            next_look = na > now ? na : now + 1000;
            if (n == MAX_IN_FLIGHT - inflight)
                next_look = now; /* more are due */
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(w->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            flight *f = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
            CURLcode rc = m->data.result;
            for (int i = 0; i < MAX_IN_FLIGHT; i++)
                if (w->fl[i] == f)
                    w->fl[i] = NULL;
            finish_one(w, st, f, rc);
            free_flight(w, f);
            next_look = 0; /* a slot is free */
        }
        int64_t wait = next_look - pt_wall_ms();
        if (wait > 1000)
            wait = 1000;
        if (wait < 0)
            wait = 0;
        curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    for (int i = 0; i < MAX_IN_FLIGHT; i++)
        if (w->fl[i]) {
            free_flight(w, w->fl[i]);
            w->fl[i] = NULL;
        }
    store_close(st);
    return NULL;
}

webhooks *webhooks_start(const char *db_path, const keys *k, char *err)
{
    webhooks *w = calloc(1, sizeof(*w));
    if (!w || !(w->db_path = strdup(db_path))) {
        free(w);
        pt_errf(err, "out of memory");
        return NULL;
    }
    w->keys = k;
    w->ndelays = webhook_schedule(w->delays, 16);
    w->timeout_ms = timeout_from_env();
    pthread_mutex_init(&w->mu, NULL);
    w->multi = curl_multi_init();
    if (!w->multi || pthread_create(&w->thread, NULL, deliverer_main, w) != 0) {
        pt_errf(err, "cannot start the webhook deliverer");
        webhooks_stop(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

void webhooks_kick(webhooks *w)
{
    if (w && w->multi) {
        w->kicked = 1;
        curl_multi_wakeup(w->multi);
    }
}

void webhooks_stop(webhooks *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    if (w->started) {
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi);
    pthread_mutex_destroy(&w->mu);
    free(w->db_path);
    free(w);
}

void webhooks_metrics(webhooks *w, pt_buf *out)
{
    if (!w)
        return;
    pt_buf_appendf(out,
                   "# HELP portier_webhook_attempts_total Webhook delivery attempts.\n"
                   "# TYPE portier_webhook_attempts_total counter\n"
                   "portier_webhook_attempts_total %ld\n"
                   "# HELP portier_webhook_failures_total Attempts that did not get a 2xx.\n"
                   "# TYPE portier_webhook_failures_total counter\n"
                   "portier_webhook_failures_total %ld\n"
                   "# HELP portier_webhook_delivered_total Events acknowledged with a 2xx.\n"
                   "# TYPE portier_webhook_delivered_total counter\n"
                   "portier_webhook_delivered_total %ld\n"
                   "# HELP portier_webhook_dead_letters_total Events given up after the last "
                   "attempt.\n"
                   "# TYPE portier_webhook_dead_letters_total counter\n"
                   "portier_webhook_dead_letters_total %ld\n"
                   "# HELP portier_webhook_latency_seconds Time from sending to the reply.\n"
                   "# TYPE portier_webhook_latency_seconds histogram\n",
                   (long)w->attempts, (long)w->failures, (long)w->delivered, (long)w->dead);
    for (int i = 0; i < LATENCY_BUCKETS; i++) {
        if (latency_bounds[i])
            pt_buf_appendf(out, "portier_webhook_latency_seconds_bucket{le=\"%g\"} %ld\n",
                           latency_bounds[i] / 1000.0, (long)w->latency_buckets[i]);
        else
            pt_buf_appendf(out, "portier_webhook_latency_seconds_bucket{le=\"+Inf\"} %ld\n",
                           (long)w->latency_buckets[i]);
    }
    pt_buf_appendf(out,
                   "portier_webhook_latency_seconds_sum %.3f\n"
                   "portier_webhook_latency_seconds_count %ld\n",
                   (long)w->latency_sum / 1000.0, (long)w->attempts);
}
cJSON *webhook_ping(const account *a, const char *secret, int *ok_out)
{
    char eid[40] = "evt_", err[PT_ERR_MAX] = "";
    pt_random_hex(eid + 4, 32);
    char data[256];
    snprintf(data, sizeof(data), "{\"accountId\":%lld,\"message\":\"ping from portier\"}",
             (long long)a->id);
    char *body = webhook_envelope("ping", pt_wall_ms(), data, secret);
    const char *secrets[1] = {secret};
    long status = 0;
    char *reply = NULL;
    int64_t latency = 0;
    int sent = webhook_send(a->webhook_url, secrets, 1, eid, body ? body : "{}", &status, &reply,
                            &latency, err);
    int ok = sent == 0 && status >= 200 && status < 300;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "url", a->webhook_url);
    cJSON_AddStringToObject(o, "event_id", eid);
    if (status)
        cJSON_AddNumberToObject(o, "http_status", status);
    else
        cJSON_AddNullToObject(o, "http_status");
    cJSON_AddNumberToObject(o, "latency_ms", (double)latency);
    cJSON_AddStringToObject(o, "reply", reply ? reply : "");
    if (sent < 0)
        cJSON_AddStringToObject(o, "error", err);
    cJSON_AddBoolToObject(o, "ok", ok);
    free(body);
    free(reply);
    *ok_out = ok;
    return o;
}

