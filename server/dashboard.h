/*
 * dashboard.h - the server side of the web dashboard (ui/): its page,
 * served at / on the API's port, signing a browser in and out, the session
 * cookie and its CSRF token, and the little JSON the page needs that the
 * task API does not give. Everything else the page reads and does goes
 * through the task API itself, authenticated by the session (api.c calls
 * dashboard_authenticate when a request carries the cookie and no key).
 */
#ifndef PORTIER_DASHBOARD_H
#define PORTIER_DASHBOARD_H

#include "http/http.h"
#include "server/bundle.h"
#include "server/keys.h"
#include "server/store.h"

#define DASHBOARD_COOKIE "portier_session"
#define DASHBOARD_CSRF_HEADER "x-csrf-token"
/* on the page's own periodic refreshes: they are not a person's activity */
#define DASHBOARD_BACKGROUND_HEADER "x-portier-background"

/* What a dashboard request works with, borrowed for the call. */
typedef struct dashboard_env {
    store *st; /* this handler thread's */
    const keys *keys;
    bundle_cache *sops;
    int allow_private_webhooks; /* a test event may go to a non-public endpoint */
} dashboard_env;

/* Whether path is the dashboard's (/, /ui/..., /favicon.ico, /session...,
 * /dashboard/...) rather than the API's. */
int dashboard_owns(const char *path);
/* Answers a request whose path the dashboard owns. */
void dashboard_handle(const dashboard_env *d, http_request *r);

/* The account and the actor ("API key" or the user's name) of the
 * session whose cookie r carries: 0, or -1 with the 401 (no such session,
 * or it ended: 30 min idle, 12 h at most) or the 403 (a request that is not
 * GET or HEAD without the session's X-CSRF-Token) answered. On success *a
 * is the caller's to free. */
int dashboard_authenticate(store *st, http_request *r, account *a, char actor[64]);

#endif
