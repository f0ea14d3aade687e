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

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_IN_FLIGHT 64
/* The slots one account's endpoint may hold at once: a dead or slow one
 * waits out its attempts in these, and the rest go to the other accounts. */
#define ACCOUNT_SHARE (MAX_IN_FLIGHT / 8)
#define ATTEMPT_REPLY_KEEP 256 /* reply bytes an attempt's record keeps */
#define REPLY_KEEP 512
#define CLAIM_SLACK_MS 30000 /* a claim's length past the attempt's timeout */
#define LATENCY_BUCKETS 8
static const int64_t latency_bounds[LATENCY_BUCKETS] = {10, 50, 100, 500, 1000, 5000, 15000, 0};

typedef struct flight {
    CURL *easy;
    struct curl_slist *headers;
    outbox_row row;
    char *body;
    int64_t started;
    int64_t retry_after; /* ms from now, from Retry-After; 0 none */
    int allow_private;   /* the deliverer's, copied */
    int refused;         /* the endpoint resolved to a non-public address */
    char error[CURL_ERROR_SIZE];
    char *url;    /* where it went, for the attempt's record */
    pt_buf reply; /* the reply's first bytes (REPLY_KEEP) */
} flight;

struct webhooks {
    char *db_path;
    char *node; /* the claims' owner */
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
    atomic_int allow_private;
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

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a);

int webhook_send(const char *url, const char *const *secrets, size_t nsecrets, const char *event_id,
                 const char *body, int allow_private, long *status, char **reply,
                 int64_t *latency_ms, char *err)
{
    struct curl_slist *hs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    *status = 0;
    *reply = NULL;
    *latency_ms = 0;
    /* the same endpoint rules as set-webhook and delivery: a test event
     * must not reach what a real one may not */
    if (webhook_url_check(url, allow_private, err) < 0)
        return -1;
    CURL *e = make_request(url, secrets, nsecrets, event_id, body, timeout_from_env(), &hs, errbuf);
    if (!e)
        return pt_errf(err, "cannot sign the event (is the secret whsec_ base64?)");
    flight f = {0}; /* for open_socket: the address connected to is checked too */
    f.allow_private = allow_private;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &f);
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
    if (f.refused)
        return pt_errf(err, "the webhook endpoint's address is a loopback, link-local or private "
                            "one; allow such endpoints with --allow-private-webhooks");
    if (rc != CURLE_OK)
        return pt_errf(err, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return 0;
}

/* ---- Which endpoints may be sent to ------------------------------------- */

/* Not a public unicast IPv4 address (host order): this network, private,
 * loopback, link-local, shared (CGNAT), multicast, reserved, broadcast. */
static int special_v4(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a >> 16) == 0xa9fe ||
           (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 || (a >> 22) == 0x191 || (a >> 28) >= 0xe ||
           (a >> 8) == 0xc00000 /* 192.0.0.0/24, protocol assignments */ ||
           (a >> 17) == (0xc612 >> 1) /* 198.18.0.0/15, benchmarking */;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Not a public unicast address, IPv4 or IPv6 (v4-mapped ones as IPv4). */
static int special_address(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return special_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return 1;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    const unsigned char *b = a->s6_addr;
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a) || !memcmp(b, nat64, 12))
        return special_v4(v4_at(b + 12)); /* NAT64 (64:ff9b::/96) reaches it too */
    if (b[0] == 0x20 && b[1] == 0x02)
        return special_v4(v4_at(b + 2)); /* 6to4 (2002::/16): the IPv4 it wraps */
    return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
           IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) || (b[0] & 0xfe) == 0xfc;
}

/* The URL's scheme and host (brackets of an IPv6 literal removed), or -1
 * with err. */
static int url_parts(const char *url, char *scheme, size_t ns, char *host, size_t nh, char *err)
{
    CURLU *u = curl_url();
    char *sch = NULL, *h = NULL;
    int rc = -1;
    if (!u)
        return pt_errf(err, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        pt_errf(err, "the webhook URL is not a URL (scheme://host/path)");
    else if (curl_url_get(u, CURLUPART_SCHEME, &sch, 0) != CURLUE_OK ||
             (strcasecmp(sch, "http") != 0 && strcasecmp(sch, "https") != 0))
        pt_errf(err, "the webhook URL must be http:// or https://");
    else if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !*h)
        pt_errf(err, "the webhook URL has no host");
    else {
        size_t len = strlen(h);
        int br = h[0] == '[' && len > 2 && h[len - 1] == ']';
        snprintf(scheme, ns, "%s", sch);
        snprintf(host, nh, "%.*s", (int)(br ? len - 2 : len), br ? h + 1 : h);
        rc = 0;
    }
    curl_free(sch);
    curl_free(h);
    curl_url_cleanup(u);
    return rc;
}

int webhook_url_check(const char *url, int allow_private, char *err)
{
    char scheme[16], host[256];
    if (!url || url_parts(url, scheme, sizeof(scheme), host, sizeof(host), err) < 0)
        return url ? -1 : pt_errf(err, "no webhook URL");
    if (allow_private)
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &res);
    if (gai != 0)
        return pt_errf(err, "the webhook URL's host '%s' does not resolve (%s)", host,
                       gai_strerror(gai));
    int rc = 0;
    for (struct addrinfo *ai = res; ai && !rc; ai = ai->ai_next)
        if (special_address(ai->ai_addr)) {
            char ip[INET6_ADDRSTRLEN] = "?";
            const void *a = ai->ai_family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            inet_ntop(ai->ai_family, a, ip, sizeof(ip));
            rc = pt_errf(err,
                         "the webhook URL's host '%s' is a loopback, link-local or private "
                         "address (%s); allow such endpoints with --allow-private-webhooks",
                         host, ip);
        }
    freeaddrinfo(res);
    return rc;
}

/* libcurl's socket, for the address it is about to connect to: refused
 * (CURL_SOCKET_BAD) if not public and not allowed, whatever the name
 * resolved to when the URL was set. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    flight *f = ud;
    (void)purpose;
    if (!f->allow_private && special_address(&a->addr)) {
        f->refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
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
    if (ok == PT_FOUND && !row->payload) {
        /* its data was purged (retention) or does not open: a row never
         * sent would stay due, and hold one of its account's places */
        ok = PT_NONE;
        why = "the event's data is gone (purged, or it does not open)";
    }
    if (ok != PT_FOUND) {
        for (size_t i = 0; i < n; i++)
            keys_wipe(secrets[i]);
        free(url);
        outbox_attempt rec = {row->attempts + 1, NULL, NULL};
        store_outbox_attempt(st, row->id, pt_wall_ms(), 0, 0, why ? why : "the account is gone",
                             ok == PT_EGONE ? OUTBOX_DISABLED : OUTBOX_UNDELIVERABLE, 0, &rec);
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
    if (f)
        f->url = url;
    else
        free(url);
    for (size_t i = 0; i < n; i++)
        keys_wipe(secrets[i]);
    if (slot < 0 || !f || !f->easy) {
        if (f) {
            free(f->url);
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
    f->allow_private = w->allow_private;
    curl_easy_setopt(f->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(f->easy, CURLOPT_OPENSOCKETDATA, f);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, discard);
    pt_buf_init(&f->reply, 0);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, &f->reply);
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

/* The reply's first ATTEMPT_REPLY_KEEP bytes as printable text (into out),
 * or NULL when there was none. */
static const char *reply_excerpt(const pt_buf *b, char *out)
{
    size_t n = b->len < ATTEMPT_REPLY_KEEP ? b->len : ATTEMPT_REPLY_KEEP;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b->data[i];
        out[i] = c == '\n' || c == '\t' || (c >= 32 && c != 127) ? (char)c : '.';
    }
    out[n] = '\0';
    return n ? out : NULL;
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
        if (f->refused)
            snprintf(err, sizeof(err),
                     "the endpoint is a loopback, link-local or private address "
                     "(refused; see serve --allow-private-webhooks)");
        else if (rc != CURLE_OK)
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
        } else if ((size_t)(attempt - f->row.round_start) >= w->ndelays) {
            state = OUTBOX_DEAD;
            w->dead++;
        } else {
            /* a redelivery starts the schedule again: counted from its round */
            int64_t delay = jitter(w->delays[attempt - f->row.round_start] * 1000);
            if (f->retry_after > delay)
                delay = f->retry_after;
            next = now + delay;
        }
    }
    char reply[ATTEMPT_REPLY_KEEP + 1];
    outbox_attempt rec = {attempt, f->url, reply_excerpt(&f->reply, reply)};
    store_outbox_attempt(st, f->row.id, now, (int)status, latency, err[0] ? err : NULL, state, next,
                         &rec);
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
    free(f->url);
    pt_buf_free(&f->reply);
    outbox_row_free(&f->row);
    free(f);
}

/* The slots account acct holds now. */
static int account_flights(const webhooks *w, int64_t acct)
{
    int n = 0;
    for (int i = 0; i < MAX_IN_FLIGHT; i++)
        n += w->fl[i] && w->fl[i]->row.account_id == acct;
    return n;
}

/* Starts what is due into the free slots, no account past ACCOUNT_SHARE of
 * them (a row left now is due again on the next round). The number the
 * store gave (all started or left for their account's share). */
static size_t start_due(webhooks *w, store *st, int64_t now, const int64_t *busy, size_t inflight)
{
    outbox_row rows[MAX_IN_FLIGHT];
    size_t n = 0;
    /* the claim outlasts the attempt's timeout, so that no other node sends
     * the row while this one may still */
    store_outbox_due(st, w->node, now, now + w->timeout_ms + CLAIM_SLACK_MS, busy, inflight,
                     ACCOUNT_SHARE, rows, MAX_IN_FLIGHT - inflight, &n);
    for (size_t i = 0; i < n; i++) {
        if (account_flights(w, rows[i].account_id) >= ACCOUNT_SHARE)
            outbox_row_free(&rows[i]);
        else
            start_one(w, st, &rows[i]);
    }
    return n;
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
    keys_attach(w->keys, st);
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
            size_t started = start_due(w, st, now, busy, inflight);
            int64_t na = store_outbox_next_at(st);
            next_look = na > now ? na : now + 1000;
            if (started == MAX_IN_FLIGHT - inflight)
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
    /* what was in flight is abandoned: another node may send it now */
    store_outbox_release(st, w->node);
    store_close(st);
    return NULL;
}

webhooks *webhooks_start(const char *db_path, const char *node, const keys *k, char *err)
{
    webhooks *w = calloc(1, sizeof(*w));
    if (!w || !(w->db_path = strdup(db_path)) || !(w->node = strdup(node))) {
        if (w)
            free(w->db_path);
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

void webhooks_allow_private(webhooks *w, int allow)
{
    if (w)
        w->allow_private = allow;
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
    free(w->node);
    free(w);
}

void webhooks_metrics(webhooks *w, const char *labels, pt_buf *out)
{
    if (!w)
        return;
    const char *l = labels;
    pt_buf_appendf(out,
                   "# HELP portier_webhook_attempts_total Webhook delivery attempts.\n"
                   "# TYPE portier_webhook_attempts_total counter\n"
                   "portier_webhook_attempts_total{%s} %ld\n"
                   "# HELP portier_webhook_failures_total Attempts that did not get a 2xx.\n"
                   "# TYPE portier_webhook_failures_total counter\n"
                   "portier_webhook_failures_total{%s} %ld\n"
                   "# HELP portier_webhook_delivered_total Events acknowledged with a 2xx.\n"
                   "# TYPE portier_webhook_delivered_total counter\n"
                   "portier_webhook_delivered_total{%s} %ld\n"
                   "# HELP portier_webhook_dead_letters_total Events given up after the last "
                   "attempt.\n"
                   "# TYPE portier_webhook_dead_letters_total counter\n"
                   "portier_webhook_dead_letters_total{%s} %ld\n"
                   "# HELP portier_webhook_latency_seconds Time from sending to the reply.\n"
                   "# TYPE portier_webhook_latency_seconds histogram\n",
                   l, (long)w->attempts, l, (long)w->failures, l, (long)w->delivered, l,
                   (long)w->dead);
    for (int i = 0; i < LATENCY_BUCKETS; i++) {
        if (latency_bounds[i])
            pt_buf_appendf(out, "portier_webhook_latency_seconds_bucket{%s,le=\"%g\"} %ld\n", l,
                           latency_bounds[i] / 1000.0, (long)w->latency_buckets[i]);
        else
            pt_buf_appendf(out, "portier_webhook_latency_seconds_bucket{%s,le=\"+Inf\"} %ld\n", l,
                           (long)w->latency_buckets[i]);
    }
    pt_buf_appendf(out,
                   "portier_webhook_latency_seconds_sum{%s} %.3f\n"
                   "portier_webhook_latency_seconds_count{%s} %ld\n",
                   l, (long)w->latency_sum / 1000.0, l, (long)w->attempts);
}

/* ---- Events an endpoint may get ----------------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} event_names[] = {{"task_finished", STORE_EVENT_FINISHED}, {"task_waiting", STORE_EVENT_WAITING}};
#define NEVENT_NAMES (sizeof(event_names) / sizeof(event_names[0]))

int webhook_events_parse(const char *list, unsigned *mask, char *err)
{
    *mask = 0;
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        size_t i = 0;
        while (i < NEVENT_NAMES &&
               (strlen(event_names[i].name) != len || strncmp(event_names[i].name, p, len)))
            i++;
        if (i == NEVENT_NAMES)
            return pt_errf(err, "'%.*s' is not an event (events: %s)", (int)(len < 40 ? len : 40),
                           p, WEBHOOK_EVENT_NAMES);
        if (*mask & event_names[i].bit)
            return pt_errf(err, "%s is named twice", event_names[i].name);
        *mask |= event_names[i].bit;
        p += len + (p[len] == ',');
    }
    if (!*mask)
        return pt_errf(err, "name at least one event (%s)", WEBHOOK_EVENT_NAMES);
    return 0;
}

cJSON *webhook_events_json(unsigned mask)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < NEVENT_NAMES; i++)
        if (mask & event_names[i].bit)
            cJSON_AddItemToArray(arr, cJSON_CreateString(event_names[i].name));
    return arr;
}

cJSON *webhook_ping(const account *a, const char *secret, int allow_private, int *ok_out)
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
    int sent = webhook_send(a->webhook_url, secrets, 1, eid, body ? body : "{}", allow_private,
                            &status, &reply, &latency, err);
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
