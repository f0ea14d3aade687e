/*
 * pool.c - the browsers the workers share, their relaunch, and the kept
 * sessions in them. See pool.h. Owns the browser handles, the kept sessions
 * and their lock; it never runs a task and never reads the store.
 */
#include "server/pool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One browser of the pool. A slot is usable when its browser runs; it is
 * (re)started only when nobody uses it, outside the lock (starting). */
struct slot {
    cdp_browser *b;
    int users;
    int broken; /* it died: relaunch once users is 0 */
    int starting;
    agent_session *spare; /* a fresh context, ready (pool_spare_take) */
    int warming;          /* the warmer is making one (it counts as a user) */
};

struct pool {
    char *browser_ws;
    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t browser_free; /* a user put a browser back, or one started */
    struct slot *slots;
    int nslots;
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

    pthread_t warmer; /* makes the slots' spare contexts */
    pthread_cond_t want_spare;
    int warmer_started;
};

static void *warm_main(void *arg);

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

static int drop_in_browser(const struct kept *k, void *ud)
{
    return agent_session_browser(k->s) == (cdp_browser *)ud;
}

pool *pool_new(const char *browser_ws, int browsers)
{
    pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->nslots = browser_ws || browsers < 1 ? 1 : browsers; /* one remote browser */
    if (!(p->slots = calloc((size_t)p->nslots, sizeof(*p->slots))) ||
        (browser_ws && !(p->browser_ws = strdup(browser_ws)))) {
        free(p->slots);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->browser_free, NULL);
    pthread_cond_init(&p->want_spare, NULL);
    p->warmer_started = pthread_create(&p->warmer, NULL, warm_main, p) == 0;
    return p;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->want_spare);
    pthread_mutex_unlock(&p->mu);
    if (p->warmer_started)
        pthread_join(p->warmer, NULL);
    for (int i = 0; i < p->nslots; i++)
        agent_session_close(p->slots[i].spare);
    for (size_t i = 0; i < p->nkept; i++)
        agent_session_close(p->kept[i].s);
    free(p->kept);
    for (int i = 0; i < p->nslots; i++)
        cdp_close(p->slots[i].b);
    free(p->slots);
    pthread_cond_destroy(&p->browser_free);
    pthread_cond_destroy(&p->want_spare);
    pthread_mutex_destroy(&p->mu);
    free(p->browser_ws);
    free(p);
}

/* Under mu. */
static int usable(const struct slot *sl)
{
    return sl->b && !sl->broken && !sl->starting && !cdp_browser_gone(sl->b, NULL);
}

static struct slot *slot_of_browser(pool *p, const cdp_browser *b)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].b == b)
            return &p->slots[i];
    return NULL;
}

/* The slot for a run of `account` (under mu), or NULL when every browser is
 * starting or dead with users: one where the account has a free kept
 * session, else the one with the fewest users (a running one on a tie). */
static struct slot *choose(pool *p, int64_t account)
{
    for (size_t i = 0; i < p->nkept; i++) {
        struct slot *sl = slot_of_browser(p, agent_session_browser(p->kept[i].s));
        if (!p->kept[i].taken && p->kept[i].account == account && sl && usable(sl))
            return sl;
    }
    struct slot *best = NULL;
    for (int i = 0; i < p->nslots; i++) {
        struct slot *sl = &p->slots[i];
        if (!usable(sl) && sl->b && !sl->starting)
            sl->broken = 1; /* it died: restarted once its users are done */
        int ok = usable(sl) || (!sl->starting && sl->users == 0);
        if (ok && (!best || sl->users < best->users ||
                   (sl->users == best->users && usable(sl) && !usable(best))))
            best = sl;
    }
    return best;
}

/* Starts sl's browser (its dead one and that one's kept sessions go first);
 * mu held on entry and exit, released while the browser starts. */
static int start_slot(pool *p, struct slot *sl, char *err)
{
    cdp_browser *old = sl->b;
    agent_session *spare = sl->spare;
    sl->b = NULL;
    sl->spare = NULL;
    sl->broken = 0;
    sl->starting = 1;
    agent_session **v = old ? calloc(p->nkept ? p->nkept : 1, sizeof(*v)) : NULL;
    size_t n = v ? take_out(p, drop_in_browser, old, v, p->nkept) : 0;
    pthread_mutex_unlock(&p->mu);
    if (old)
        PT_WARN("service", "a browser is gone; starting a new one");
    agent_session_close(spare);
    close_all(v, n);
    free(v);
    cdp_close(old);
    cdp_browser *b = NULL;
    int rc = cdp_open(p->browser_ws, &b, err);
    pthread_mutex_lock(&p->mu);
    sl->starting = 0;
    sl->b = rc < 0 ? NULL : b;
    p->launches += rc == 0;
    pthread_cond_broadcast(&p->browser_free);
    pthread_cond_signal(&p->want_spare);
    return rc;
}

cdp_browser *pool_get(pool *p, int64_t account, char *err)
{
    pthread_mutex_lock(&p->mu);
    struct slot *sl = NULL;
    while (!p->stopping && !(sl = choose(p, account)))
        pthread_cond_wait(&p->browser_free, &p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        pt_errc(err, PT_ESTATE, "the service is stopping");
        return NULL;
    }
    sl->users++; /* before starting it, so nobody else starts it too */
    if (!usable(sl) && start_slot(p, sl, err) < 0) {
        sl->users--;
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    cdp_browser *b = sl->b;
    pthread_mutex_unlock(&p->mu);
    return b;
}

void pool_put(pool *p, cdp_browser *b)
{
    pthread_mutex_lock(&p->mu);
    struct slot *sl = slot_of_browser(p, b);
    if (sl) {
        sl->users--;
        if (cdp_browser_gone(b, NULL))
            sl->broken = 1;
    }
    pthread_cond_broadcast(&p->browser_free);
    pthread_mutex_unlock(&p->mu);
}

void pool_stop(pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->browser_free);
    /* a run in progress is cut short; recovery at the next start decides.
     * (cdp_abort does not block, and a browser is closed only by pool_free
     * or by start_slot of a slot nobody uses.) */
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].b)
            cdp_abort(p->slots[i].b, "portier is stopping");
    pthread_mutex_unlock(&p->mu);
}

const char *pool_state(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int started = 0, up = 0;
    for (int i = 0; i < p->nslots; i++) {
        started += p->slots[i].b != NULL;
        up += usable(&p->slots[i]);
    }
    pthread_mutex_unlock(&p->mu);
    return up ? "up" : started ? "gone" : "not started";
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
    agent_session *s = pool_spare_take(p, b);
    if (!s && agent_session_open(b, &s, err))
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
    struct slot *sl = slot_of_browser(p, agent_session_browser(s));
    keep = keep && agent_session_signed_in(s) && !p->stopping && sl && usable(sl) &&
           mine < p->per_account && (!k || now - k->created < p->max_age_ms);
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

/* ---- Spare contexts ---------------------------------------------------------
 * One thread makes them: a slot whose browser runs and has no spare gets
 * one, the warmer counting as the slot's user meanwhile (so the browser is
 * not relaunched under it). A spare whose browser died, or that was made
 * while the pool stopped, is closed. */

/* The slot that wants a spare (under mu), or NULL. */
static struct slot *wants_spare(pool *p)
{
    for (int i = 0; i < p->nslots; i++) {
        struct slot *sl = &p->slots[i];
        if (usable(sl) && !sl->spare && !sl->warming)
            return sl;
    }
    return NULL;
}

static void *warm_main(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct slot *sl = NULL;
        while (!p->stopping && !(sl = wants_spare(p)))
            pthread_cond_wait(&p->want_spare, &p->mu);
        if (p->stopping)
            break;
        cdp_browser *b = sl->b;
        sl->warming = 1;
        sl->users++;
        pthread_mutex_unlock(&p->mu);
        agent_session *s = NULL;
        char err[PT_ERR_MAX];
        int rc = agent_session_open(b, &s, err);
        if (rc)
            PT_DEBUG("service", "no spare context: %s", err);
        pthread_mutex_lock(&p->mu);
        sl->warming = 0;
        sl->users--;
        if (!rc && sl->b == b && usable(sl) && !p->stopping) {
            sl->spare = s;
            s = NULL;
        }
        pthread_cond_broadcast(&p->browser_free);
        if (s || rc) {
            pthread_mutex_unlock(&p->mu);
            agent_session_close(s);
            if (rc) /* a browser that cannot make one now is not asked in a loop */
                pt_sleep_ms(1000);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

agent_session *pool_spare_take(pool *p, cdp_browser *b)
{
    pthread_mutex_lock(&p->mu);
    struct slot *sl = slot_of_browser(p, b);
    agent_session *s = NULL;
    if (sl && usable(sl) && sl->spare) {
        s = sl->spare;
        sl->spare = NULL;
        pthread_cond_signal(&p->want_spare);
    }
    pthread_mutex_unlock(&p->mu);
    return s;
}

int pool_spares(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = 0;
    for (int i = 0; i < p->nslots; i++)
        n += p->slots[i].spare != NULL;
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
