/*
 * pages.c - the sandbox portal's pages: static files from www/, sign-in and
 * MFA pages, home and the apps (signed in only), the appeals app on the
 * second site. See internal.h.
 *
 * A page that needs a session and has none redirects to sign-in
 * (/login?expired=1 if the session timed out or was expired); the appeals
 * site, framed cross-site, answers 401 with a line of HTML instead. It must
 * never serve a file outside www/.
 */
#define _GNU_SOURCE
#include "portals/sandbox/internal.h"
#include "util/err.h"
#include "util/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_file(sandbox *sb, http_request *r, const char *rel)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", sb->www, rel);
    char *data = NULL;
    size_t len = 0;
    if (strstr(rel, "..") || pt_read_file(path, 4 << 20, &data, &len) < 0) {
        http_reply_error(r, 404, "not_found", "no page %s", http_path(r));
        return;
    }
    const char *ext = strrchr(rel, '.');
    if (sb->o.markup == 2) {
        char *m = NULL;
        size_t mlen = 0;
        if (sb_markup2(ext, data, len, &m, &mlen) < 0) {
            free(data);
            http_reply_error(r, 500, "markup", "cannot generate markup 2 of %s", http_path(r));
            return;
        }
        free(data);
        data = m;
        len = mlen;
    }
    http_set_type(r, ext && !strcmp(ext, ".css")  ? "text/css; charset=utf-8"
                     : ext && !strcmp(ext, ".js") ? "text/javascript; charset=utf-8"
                                                  : "text/html; charset=utf-8");
    http_add_header(r, "Cache-Control", "no-store");
    http_write(r, data, len);
    free(data);
}

static void redirect(http_request *r, const char *to)
{
    http_set_status(r, 302);
    http_add_header(r, "Location", to);
}

void sb_page_static(http_request *r, void *ud)
{
    serve_file(((site_ctx *)ud)->sb, r, http_path(r) + strlen("/static/"));
}

void sb_page_root(http_request *r, void *ud)
{
    site_ctx *sc = ud;
    session s = {0};
    int found = sb_session_of(sc->sb, sc->site, r, &s) == PT_FOUND;
    redirect(r, found && sb_signed_in(&s) ? "/home" : "/login");
}

void sb_page_login(http_request *r, void *ud)
{
    serve_file(((site_ctx *)ud)->sb, r, "login.html");
}

/* The second factor's page: for a session that has signed in with its
 * password and has not ended. */
void sb_page_mfa(http_request *r, void *ud)
{
    site_ctx *sc = ud;
    session s = {0};
    if (sb_session_of(sc->sb, sc->site, r, &s) == PT_FOUND && !s.ended)
        serve_file(sc->sb, r, "mfa.html");
    else
        redirect(r, "/login");
}

/* /home and /apps/NAME: NAME.html, for a signed-in session (a page view). */
void sb_page_app(http_request *r, void *ud)
{
    site_ctx *sc = ud;
    session s = {0};
    int found = sb_session_of(sc->sb, sc->site, r, &s) == PT_FOUND;
    if (!found || !sb_signed_in(&s)) {
        redirect(r, found && s.ended ? "/login?expired=1" : "/login");
        return;
    }
    const char *path = http_path(r);
    if (sb_count_view(sc->sb, &s)) {
        /* --expire-after: signing in again comes back here */
        char to[160];
        snprintf(to, sizeof(to), "/login?expired=1&return=%s", path);
        redirect(r, to);
        return;
    }
    char rel[64];
    snprintf(rel, sizeof(rel), "%s.html", strcmp(path, "/home") == 0 ? "home" : path + 1);
    serve_file(sc->sb, r, rel);
}

void sb_page_appeals(http_request *r, void *ud)
{
    site_ctx *sc = ud;
    session s = {0};
    if (sb_session_of(sc->sb, sc->site, r, &s) != PT_FOUND || !sb_signed_in(&s)) {
        http_set_status(r, 401);
        http_set_type(r, "text/html; charset=utf-8");
        http_printf(r, "<!doctype html><title>Appeals</title><p class=error>Your session "
                       "has expired. Sign in to the portal again.</p>");
        return;
    }
    sb_count_view(sc->sb, &s);
    serve_file(sc->sb, r, "apps/appeals.html");
}
