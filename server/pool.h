/*
 * pool.h - the browser the workers share: launched on first use (or
 * connected to, with --browser ws://...), relaunched once nobody uses a
 * browser that died, closed at stop. Each run takes its own browser context
 * in it (agent/).
 */
#ifndef PORTIER_POOL_H
#define PORTIER_POOL_H

#include "cdp/cdp.h"

typedef struct pool pool;

/* A pool for browser_ws (NULL: launch Debian's chromium; copied). */
pool *pool_new(const char *browser_ws);
/* Closes the browser and frees the pool; no pool_get may be in progress. */
void pool_free(pool *p);
/* A browser to run in (borrowed until pool_put), or NULL with err if it
 * cannot start or the pool is stopping. */
cdp_browser *pool_get(pool *p, char *err);
void pool_put(pool *p, cdp_browser *b);
/* Refuses new pool_get calls and cuts short every run in the browser. */
void pool_stop(pool *p);
/* "not started", "gone" or "up" (for /healthz). */
const char *pool_state(pool *p);
/* Browsers started, relaunches included. */
int pool_launches(pool *p);

#endif
