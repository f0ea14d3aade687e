/*
 * route.c - the route table of http.h: which handler takes a request, and
 * the 404 or 405 (with Allow) when none does.
 *
 * It owns only the matching; it never reads a body or keeps state, so one
 * table may serve several servers at once. It must never know what a route
 * is for (tasks, portal pages): that is the table owner's.
 */
#include "http/http.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>

/* Whether path is rt's: character for character, but a {name} segment of
 * rt's takes any one non-empty segment of path. */
static int path_matches(const http_route *rt, const char *path)
{
    for (const char *p = rt->path; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close) {
            size_t seg = strcspn(path, "/");
            if (!seg)
                return 0;
            path += seg;
            p = close + 1;
        } else if (*p++ != *path++) {
            return 0;
        }
    }
    return rt->match == HTTP_PREFIX || *path == '\0';
}

/* Adds method to the ", "-separated list in allow unless it is there. */
static void allow_add(char *allow, size_t size, const char *method)
{
    size_t mlen = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += mlen)
        if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            return;
    size_t used = strlen(allow);
    snprintf(allow + used, size - used, "%s%s", used ? ", " : "", method);
}

int http_route_request(const http_router *rt, http_request *r, void *ud)
{
    const char *method = http_method(r), *path = http_path(r);
    char allow[128] = "";
    for (size_t i = 0; i < rt->nroutes; i++) {
        const http_route *route = &rt->routes[i];
        if (!path_matches(route, path))
            continue;
        if (strcmp(route->method, method) == 0 || (route->head && strcmp(method, "HEAD") == 0)) {
            route->handler(r, ud);
            return PT_FOUND;
        }
        allow_add(allow, sizeof(allow), route->method);
    }
    http_reject reject = rt->reject ? rt->reject : http_reject_json;
    if (!allow[0]) {
        reject(r, 404, NULL, ud);
        return PT_NONE;
    }
    http_add_header(r, "Allow", allow);
    reject(r, 405, allow, ud);
    return PT_NONE;
}

void http_reject_json(http_request *r, int status, const char *allow, void *ud)
{
    (void)ud;
    if (status == 405)
        http_reply_error(r, 405, "method_not_allowed", "%s %s: allowed methods are %s",
                         http_method(r), http_path(r), allow);
    else
        http_reply_error(r, status, "not_found", "no route %s", http_path(r));
}
