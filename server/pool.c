/*
 * pool.c - the shared browser, its relaunch, and the kept sessions in it.
 * See pool.h. Owns the browser handle, the kept sessions and their lock; it
 * never runs a task and never reads the store.
 */
#include "server/pool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pool {
    char *browser_ws;
    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t browser_free; /* a user put the browser back */
    cdp_browser *browser;
    int users;
    int broken; /* it died: relaunch once users is 0 */
    int stopping;
    int launches;

    /* kept sessions: every one the pool owns, free or taken by a run */
    struct kept {
        int64_t account;
        agent_session *s;
        int64_t created, used; /* pt_mono_ms: opened, last given back */
        int taken;
    } * kept;
    size_t nkept;
    int per_account;
    int64_t max_age_ms, idle_ms;
    int parked; /* runs asleep in a hold with their context (server/worker.c) */
};

/* Takes the kept sessions that `drop` selects out of the list (under mu);
 * the caller closes them after unlocking (closing is protocol calls). */
static size_t take_out(pool *p, int (*drop)(const struct kept *k, void *ud), void *ud,
                       agent_session **out, size_t cap)
{
    size_t n = 0, j = 0;
    for (size_t i = 0; i < p->nkept; i++) {
        if (n < cap && drop(&p->kept[i], ud))
            out[n++] = p->kept[i].s;
        else
            p->kept[j++] = p->kept[i];
    }
    p->nkept = j;
    return n;
}

static void close_all(agent_session **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        agent_session_close(v[i]);
}

#define ANY_ACCOUNT (-1)     /* pool_session_drop: every account's */
#define NO_ACCOUNT INT64_MIN /* only the sessions past their limits */

struct drop_rule {
    pool *p;
    int64_t account; /* or ANY_ACCOUNT, NO_ACCOUNT */
    int64_t now;
};

/* Free, and of the account, or past its limits. */
static int drop_free(const struct kept *k, void *ud)
{
    const struct drop_rule *r = ud;
    if (k->taken)
        return 0;
    return r->account == ANY_ACCOUNT || k->account == r->account ||
           r->now - k->created >= r->p->max_age_ms || r->now - k->used >= r->p->idle_ms;
}

static int drop_any(const struct kept *k, void *ud)
{
    (void)k;
    (void)ud;
    return 1;
}

pool *pool_new(const char *browser_ws)
{
    pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (browser_ws && !(p->browser_ws = strdup(browser_ws))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->browser_free, NULL);
    return p;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nkept; i++)
        agent_session_close(p->kept[i].s);
    free(p->kept);
    cdp_close(p->browser);
    pthread_cond_destroy(&p->browser_free);
    pthread_mutex_destroy(&p->mu);
    free(p->browser_ws);
    free(p);
}

cdp_browser *pool_get(pool *p, char *err)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->stopping) {
            pthread_mutex_unlock(&p->mu);
            pt_errc(err, PT_ESTATE, "the service is stopping");
            return NULL;
        }
        if (p->browser && !p->broken && !cdp_browser_gone(p->browser, NULL))
            break;
        if (p->browser && p->users > 0) {
            p->broken = 1;
            pthread_cond_wait(&p->browser_free, &p->mu);
            continue;
        }
        if (p->browser) {
            PT_WARN("service", "the browser is gone; starting a new one");
            /* nobody uses it (users is 0): every kept session in it goes */
            agent_session **v = calloc(p->nkept ? p->nkept : 1, sizeof(*v));
            size_t n = v ? take_out(p, drop_any, NULL, v, p->nkept) : 0;
            close_all(v, n);
            free(v);
            cdp_close(p->browser);
            p->browser = NULL;
        }
        p->broken = 0;
        cdp_browser *b = NULL;
        if (cdp_open(p->browser_ws, &b, err) < 0) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->browser = b;
        p->launches++;
    }
    p->users++;
    cdp_browser *b = p->browser;
    pthread_mutex_unlock(&p->mu);
    return b;
}

void pool_put(pool *p, cdp_browser *b)
{
    pthread_mutex_lock(&p->mu);
    p->users--;
    if (b == p->browser && cdp_browser_gone(b, NULL))
        p->broken = 1;
    pthread_cond_broadcast(&p->browser_free);
    pthread_mutex_unlock(&p->mu);
}

void pool_stop(pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->browser_free);
    cdp_browser *b = p->browser;
    pthread_mutex_unlock(&p->mu);
    /* a run in progress is cut short; recovery at the next start decides */
    if (b)
        cdp_abort(b, "portier is stopping");
}

const char *pool_state(pool *p)
{
    pthread_mutex_lock(&p->mu);
    const char *state = !p->browser                          ? "not started"
                        : cdp_browser_gone(p->browser, NULL) ? "gone"
                                                             : "up";
    pthread_mutex_unlock(&p->mu);
    return state;
}

int pool_launches(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->launches;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ---- Kept sessions ------------------------------------------------------- */

/* Closes the free sessions of account and those past their limits. */
static void drop_where(pool *p, int64_t account)
{
    agent_session *v[64];
    size_t n;
    do {
        pthread_mutex_lock(&p->mu);
        struct drop_rule r = {p, account, pt_mono_ms()};
        n = take_out(p, drop_free, &r, v, sizeof(v) / sizeof(v[0]));
        pthread_mutex_unlock(&p->mu);
        close_all(v, n);
    } while (n == sizeof(v) / sizeof(v[0]));
}

void pool_session_limits(pool *p, int per_account, int64_t max_age_ms, int64_t idle_ms)
{
    pthread_mutex_lock(&p->mu);
    p->per_account = per_account;
    p->max_age_ms = max_age_ms;
    p->idle_ms = idle_ms;
    pthread_mutex_unlock(&p->mu);
}

agent_session *pool_session_get(pool *p, cdp_browser *b, int64_t account, int *kept, char *err)
{
    *kept = 0;
    drop_where(p, NO_ACCOUNT);
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nkept; i++) {
        struct kept *k = &p->kept[i];
        if (!k->taken && k->account == account && agent_session_browser(k->s) == b) {
            k->taken = 1;
            *kept = 1;
            pthread_mutex_unlock(&p->mu);
            return k->s;
        }
    }
    pthread_mutex_unlock(&p->mu);
    agent_session *s = NULL;
    if (agent_session_open(b, &s, err))
        return NULL;
    return s;
}

void pool_session_put(pool *p, int64_t account, agent_session *s, int keep)
{
    if (!s)
        return;
    int64_t now = pt_mono_ms();
    pthread_mutex_lock(&p->mu);
    struct kept *k = NULL;
    int mine = 0;
    for (size_t i = 0; i < p->nkept; i++) {
        if (p->kept[i].s == s)
            k = &p->kept[i];
        else if (p->kept[i].account == account)
            mine++;
    }
    cdp_browser *b = agent_session_browser(s);
    keep = keep && agent_session_signed_in(s) && !p->stopping && b == p->browser && !p->broken &&
           !cdp_browser_gone(b, NULL) && mine < p->per_account &&
           (!k || now - k->created < p->max_age_ms);
    if (keep && !k) { /* a new one joins */
        struct kept *n = realloc(p->kept, (p->nkept + 1) * sizeof(*n));
        if (n) {
            p->kept = n;
            k = &p->kept[p->nkept++];
            *k = (struct kept){account, s, now, now, 0};
        } else {
            keep = 0;
        }
    }
    if (keep) {
        k->taken = 0;
        k->used = now;
    } else if (k) {
        *k = p->kept[--p->nkept]; /* out of the list, closed below */
    }
    pthread_mutex_unlock(&p->mu);
    if (!keep)
        agent_session_close(s);
}

void pool_session_drop(pool *p, int64_t account)
{
    drop_where(p, account < 0 ? ANY_ACCOUNT : account);
}

void pool_session_reap(pool *p)
{
    drop_where(p, NO_ACCOUNT);
}

int pool_sessions(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = (int)p->nkept;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ---- Parked sessions ------------------------------------------------------
 * A run that waits for a person keeps its browser context (a kept session
 * or its own) and its browser (pool_get) while its worker goes on to other
 * tasks; the pool counts them with its sessions. How many may park, and
 * which one lets go first, is the workers' rule. */

void pool_park(pool *p, int delta)
{
    pthread_mutex_lock(&p->mu);
    p->parked += delta;
    pthread_mutex_unlock(&p->mu);
}

int pool_parked(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->parked;
    pthread_mutex_unlock(&p->mu);
    return n;
}
