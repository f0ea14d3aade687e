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
static char **masks;
static size_t nmasks;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void pt_log_init(void)
{
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

void pt_log_mask(const char *value)
{
    if (!value || strlen(value) < 3)
        return;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nmasks; i++)
        if (!strcmp(masks[i], value)) { /* a server registers the same secrets per task */
            pthread_mutex_unlock(&lock);
            return;
        }
    char **n = realloc(masks, (nmasks + 1) * sizeof(*masks));
    if (n) {
        masks = n;
        masks[nmasks] = strdup(value);
        if (masks[nmasks])
            nmasks++;
    }
    pthread_mutex_unlock(&lock);
}

void pt_log_mask_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nmasks; i++)
        free(masks[i]);
    free(masks);
    masks = NULL;
    nmasks = 0;
    pthread_mutex_unlock(&lock);
}

/* Replaces every registered value in line (in place; *** is never longer). */
static void apply_masks(char *line)
{
    for (size_t i = 0; i < nmasks; i++) {
        size_t mlen = strlen(masks[i]);
        char *p;
        while ((p = strstr(line, masks[i])) != NULL) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + mlen, strlen(p + mlen) + 1);
        }
    }
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
    fprintf(stderr, "%s %-5s %s: %s\n", ts, names[level], module, msg);
    pthread_mutex_unlock(&lock);
}
