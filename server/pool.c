/*
 * pool.c - the shared browser and its relaunch. See pool.h. Owns the
 * browser handle and its lock; it never runs a task and never reads the
 * store.
 */
#include "server/pool.h"
#include "util/err.h"
#include "util/log.h"

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
};

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
