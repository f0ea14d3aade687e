/*
 * pool.h - the browsers the workers share (`--browsers N`, each launched on
 * first use; or the one remote browser of --browser ws://...), each
 * relaunched once nobody uses it after it died, closed at stop. A run gets
 * the browser where its account has a free kept session, else the one with
 * the fewest runs, so that a browser that crashes interrupts only the runs
 * in it. Each run takes its own browser context in it (agent/), or a kept
 * session of its account.
 *
 * Kept sessions: signed-in browser contexts handed from one task of an
 * account to the next (docs/sop.md, "Kept sessions"). The pool owns them;
 * a worker takes one for a run and gives it back. Never shared between
 * accounts, one run at a time, at most per_account of an account, dropped
 * when their browser is relaunched, past max age or idle time, or when the
 * run that used it did not end well.
 */
#ifndef PORTIER_POOL_H
#define PORTIER_POOL_H

#include "agent/agent.h"
#include "cdp/cdp.h"

#include <stdint.h>

typedef struct pool pool;

/* A pool of `browsers` launched browsers (Debian's chromium; < 1: one), or
 * of the one at browser_ws (copied) when it is not NULL. */
pool *pool_new(const char *browser_ws, int browsers);
/* Closes the browser and frees the pool; no pool_get may be in progress. */
void pool_free(pool *p);
/* A browser for a run of `account` (borrowed until pool_put), or NULL with
 * err if it cannot start or the pool is stopping. */
cdp_browser *pool_get(pool *p, int64_t account, char *err);
void pool_put(pool *p, cdp_browser *b);
/* Refuses new pool_get calls and cuts short every run in the browsers. */
void pool_stop(pool *p);
/* "up" (a browser runs), "gone" (none does any more) or "not started"
 * (for /healthz). */
const char *pool_state(pool *p);
/* Browsers started, relaunches included. */
int pool_launches(pool *p);

/* Kept sessions' limits: per_account 0 keeps none; ages in ms. */
void pool_session_limits(pool *p, int per_account, int64_t max_age_ms, int64_t idle_ms);
/* A session of `account` in b (b from pool_get, still held): a free kept one
 * if there is one (*kept = 1), else a new one (*kept = 0). The caller has it
 * alone until pool_session_put. NULL with err when none can be opened. */
agent_session *pool_session_get(pool *p, cdp_browser *b, int64_t account, int *kept, char *err);
/* Gives s back: kept for the account's next task when keep is non-zero, it
 * is signed in, its browser is alive and it is within its limits; otherwise
 * closed. Call before pool_put of its browser. */
void pool_session_put(pool *p, int64_t account, agent_session *s, int keep);
/* Closes the free kept sessions of account (-1: of every account), and those
 * past their age or idle limits. */
void pool_session_drop(pool *p, int64_t account);
/* Closes only the free sessions past their age or idle limits (the workers
 * call it as they wait for work). */
void pool_session_reap(pool *p);
/* Kept sessions now, free and in use. */
int pool_sessions(pool *p);

/* Spare contexts: each running browser keeps one fresh browser context
 * with its page open, made by the pool's own thread while runs go on, so
 * that a run does not wait for Chromium to start a renderer (about 130 ms
 * on a quiet machine, seconds on a loaded one). pool_spare_take gives b's
 * (the caller has it alone; it closes it with agent_session_close, or
 * gives it to pool_session_put), or NULL when it is not ready yet. A spare
 * has never been used: no cookie, no storage, nothing of any task. */
agent_session *pool_spare_take(pool *p, cdp_browser *b);
/* Spare contexts ready now (for tests and /metrics). */
int pool_spares(pool *p);

/* A run parks (+1) with its context while it waits for a person, or stops
 * being parked (-1); the browser stays taken (pool_get) meanwhile. */
void pool_park(pool *p, int delta);
/* Runs parked now. */
int pool_parked(pool *p);

#endif
