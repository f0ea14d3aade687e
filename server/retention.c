/*
 * retention.c - the retention sweeper. See retention.h. It only deletes:
 * it never opens a sealed value, so it needs no key.
 */
#define _GNU_SOURCE
#include "server/retention.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct retention {
    char *db_path;
    int64_t retain_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int stop;
};

/* Removes the folder each path is in (a task's files live in files/<id>/);
 * returns how many paths there were. */
static size_t remove_folders_of(char **paths, int parent)
{
    size_t n = 0;
    for (; paths && paths[n]; n++) {
        char *slash = parent ? strrchr(paths[n], '/') : NULL;
        if (slash)
            *slash = '\0';
        pt_rmtree(paths[n]);
    }
    return n;
}

int retention_sweep(store *st, int64_t now, int64_t retain_ms, size_t max, size_t *tasks,
                    size_t *files, size_t *trajectories)
{
    size_t n = 0;
    int64_t *ids = store_task_purgeable(st, now - retain_ms, max, &n);
    *tasks = *files = *trajectories = 0;
    if (!ids)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nf = 0, nt = 0;
        char **f = store_task_files(st, ids[i], &nf);
        char **t = store_trajectory_dirs(st, ids[i], &nt);
        /* the rows first: a crash between the two leaves folders no row
         * names, which the next sweep cannot see but hold nothing readable
         * without their rows' task (sealed), never a row naming nothing.
         * Lists the store could not read: the task waits for the next
         * sweep (purged now, its folders would be left for good) */
        if (f && t && store_task_purge(st, ids[i]) == 0) {
            *files += remove_folders_of(f, 1);
            *trajectories += remove_folders_of(t, 0);
            (*tasks)++;
        } else {
            rc = -1;
        }
        store_strings_free(f);
        store_strings_free(t);
    }
    free(ids);
    return rc;
}

static void *sweeper_main(void *arg)
{
    retention *r = arg;
    char err[PT_ERR_MAX];
    store *st = store_open(r->db_path, 0, err);
    if (!st)
        PT_ERROR("service", "retention cannot open the store: %s", err);
    int64_t period = r->retain_ms / 10;
    period = period < 1000 ? 1000 : period > 60000 ? 60000 : period;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec until = pt_deadline(period);
        pthread_cond_timedwait(&r->wake, &r->mu, &until);
        if (r->stop || !st)
            continue;
        pthread_mutex_unlock(&r->mu);
        size_t tasks = 0, files = 0, trajs = 0;
        if (retention_sweep(st, pt_wall_ms(), r->retain_ms, 200, &tasks, &files, &trajs) < 0)
            PT_WARN("service", "retention: a purge failed; it is tried again at the next sweep");
        if (tasks)
            PT_INFO("service", "retention: purged %zu final tasks (%zu files, %zu trajectories)",
                    tasks, files, trajs);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    store_close(st);
    return NULL;
}

retention *retention_start(const char *db_path, int64_t retain_ms, char *err)
{
    retention *r = calloc(1, sizeof(*r));
    if (!r || !(r->db_path = strdup(db_path))) {
        free(r);
        pt_errc(err, PT_ENOMEM, "out of memory");
        return NULL;
    }
    r->retain_ms = retain_ms;
    pthread_mutex_init(&r->mu, NULL);
    pt_cond_init_monotonic(&r->wake);
    if (pthread_create(&r->thread, NULL, sweeper_main, r) != 0) {
        pt_errf(err, "cannot start the retention sweeper");
        free(r->db_path);
        free(r);
        return NULL;
    }
    return r;
}

void retention_stop(retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    free(r->db_path);
    free(r);
}
