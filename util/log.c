/*
 * log.c - diagnostics on stderr, with masking of registered values. See log.h.
 */
#include "util/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum pt_log_level current = PT_LOG_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* A mask scope: a ring of at most PT_LOG_MASK_MAX values. The process scope
 * is always there; a thread's scope is linked into `scopes` while open. All
 * of it is guarded by `lock`. */
struct mask_scope {
    char *values[PT_LOG_MASK_MAX];
    size_t n, next; /* values held; where the next one goes once full */
    struct mask_scope *prev_open, *next_open;
};
static struct mask_scope process_scope;
static struct mask_scope *scopes = &process_scope; /* every open scope */
static _Thread_local struct mask_scope *mine;      /* this thread's, if open */

static const char *const names[] = {"debug", "info", "warn", "error", "off"};
static int json_lines; /* PORTIER_LOG_FORMAT=json: one JSON object per line */

void pt_log_init(void)
{
    const char *f = getenv("PORTIER_LOG_FORMAT");
    json_lines = f && !strcasecmp(f, "json");
    const char *v = getenv("PORTIER_LOG");
    if (!v)
        return;
    for (int i = 0; i <= PT_LOG_OFF; i++)
        if (strcasecmp(v, names[i]) == 0)
            current = (enum pt_log_level)i;
}

void pt_log_set_level(enum pt_log_level level)
{
    current = level;
}

int pt_log_enabled(enum pt_log_level level)
{
    return level >= current && current != PT_LOG_OFF;
}

static void scope_forget(struct mask_scope *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->values[i]);
    sc->n = sc->next = 0;
}

static void scope_add(struct mask_scope *sc, const char *value)
{
    for (size_t i = 0; i < sc->n; i++)
        if (!strcmp(sc->values[i], value)) /* a task registers the same secret per step */
            return;
    char *copy = strdup(value);
    if (!copy)
        return;
    if (sc->n < PT_LOG_MASK_MAX) {
        sc->values[sc->n++] = copy;
        return;
    }
    free(sc->values[sc->next]); /* full: the oldest gives way */
    sc->values[sc->next] = copy;
    sc->next = (sc->next + 1) % PT_LOG_MASK_MAX;
}

void pt_log_mask(const char *value)
{
    if (!value || strlen(value) < 3)
        return;
    pthread_mutex_lock(&lock);
    scope_add(mine ? mine : &process_scope, value);
    pthread_mutex_unlock(&lock);
}

void pt_log_scope_open(void)
{
    pt_log_scope_close();
    struct mask_scope *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return; /* masks then go to the process scope: still masked */
    pthread_mutex_lock(&lock);
    sc->next_open = scopes;
    scopes->prev_open = sc;
    scopes = sc;
    mine = sc;
    pthread_mutex_unlock(&lock);
}

void pt_log_scope_close(void)
{
    struct mask_scope *sc = mine;
    if (!sc)
        return;
    pthread_mutex_lock(&lock);
    if (sc->prev_open)
        sc->prev_open->next_open = sc->next_open;
    else
        scopes = sc->next_open;
    if (sc->next_open)
        sc->next_open->prev_open = sc->prev_open;
    scope_forget(sc);
    mine = NULL;
    pthread_mutex_unlock(&lock);
    free(sc);
}

void pt_log_mask_clear(void)
{
    pthread_mutex_lock(&lock);
    for (struct mask_scope *sc = scopes; sc; sc = sc->next_open)
        scope_forget(sc);
    pthread_mutex_unlock(&lock);
}

/* Replaces every registered value in line (in place; *** is never longer). */
static void apply_masks(char *line)
{
    for (struct mask_scope *sc = scopes; sc; sc = sc->next_open)
        for (size_t i = 0; i < sc->n; i++) {
            const char *m = sc->values[i];
            size_t mlen = strlen(m);
            char *p;
            while ((p = strstr(line, m)) != NULL) {
                memcpy(p, "***", 3);
                memmove(p + 3, p + mlen, strlen(p + mlen) + 1);
            }
        }
}

/* s as a JSON string. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

void pt_log(enum pt_log_level level, const char *module, const char *fmt, ...)
{
    if (!pt_log_enabled(level))
        return;
    char msg[2048], ts[25];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pt_iso8601(pt_wall_ms(), ts);
    pthread_mutex_lock(&lock);
    apply_masks(msg);
    if (json_lines) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", ts, names[level]);
        json_string(stderr, module);
        fputs(",\"msg\":", stderr);
        json_string(stderr, msg);
        fputs("}\n", stderr);
    } else
        fprintf(stderr, "%s %-5s %s: %s\n", ts, names[level], module, msg);
    pthread_mutex_unlock(&lock);
}

void pt_log_foreign(const char *module, const char *line)
{
    size_t n = line ? strlen(line) : 0;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    pt_log(PT_LOG_DEBUG, module, "%.*s", (int)n, line ? line : "");
}
