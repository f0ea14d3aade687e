/*
 * bench_store.c - the store's ceiling for task creation, without HTTP: N
 * tasks created through store_task_create in group-commit batches (as the
 * API's writer thread does), on the store DB names (a SQLite file or a
 * PostgreSQL string), sealed under PORTIER_MASTER_KEY. Prints one JSON line.
 *   bench_store DB N [BATCH] [classic]
 * (classic: savepoint batches, as the writer falls back to; else the fast
 * batch where the backend has one, as the writer runs first)
 */
#define _GNU_SOURCE
#include "server/keys.h"
#include "server/store.h"
#include "util/err.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
           ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_store DB N [BATCH] [classic]\n");
        return 2;
    }
    int n = atoi(argv[2]), batch = argc > 3 ? atoi(argv[3]) : 64;
    int classic = argc > 4 && !strcmp(argv[4], "classic");
    char err[PT_ERR_MAX] = "";
    store *st = store_open(argv[1], 1, err);
    keys *k = st ? keys_load(argv[1], NULL, err) : NULL;
    if (!st || !k) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    keys_attach(k, st);
    int64_t acct = 0;
    char name[32]; /* a run of its own on a database another run used */
    snprintf(name, sizeof(name), "bench-%s", classic ? "classic" : "fast");
    if (store_account_create(st, name, NULL, NULL, name, &acct, err) < 0) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    task_new in = {.account = acct, .type = "submit_claim", .sop_version = 1,
                   .title_fmt = "Submit claim #%lld", .instructions = "Submit the claim.",
                   .data = "member_id: 300059049\npatient: Louise Golicic\nDOB: 1949-12-23\n"
                           "place_of_service: home\nservice_date: 2025-03-25"};
    int64_t t0 = pt_mono_ms();
    double c0 = cpu_s();
    int done = 0, failed = 0;
    while (done < n) {
        int began = classic ? store_batch_begin(st) : store_batch_begin_fast(st, (size_t)batch);
        if (began < 0)
            return 1;
        for (int i = 0; i < batch && done < n; i++, done++) {
            task t;
            if (store_task_create(st, &in, "pending", &t, err) < 0)
                failed++;
            else
                task_free(&t);
        }
        if (store_batch_end(st) < 0)
            failed += batch;
    }
    double secs = (double)(pt_mono_ms() - t0) / 1000.0;
    printf("{\"backend\": \"%s\", \"batches\": \"%s\", \"tasks\": %d, \"batch\": %d,"
           " \"seconds\": %.2f, \"per_s\": %.0f, \"client_cpu_s\": %.2f, \"failed\": %d}\n",
           store_backend(st), classic ? "classic" : "fast", n, batch, secs, n / secs,
           cpu_s() - c0, failed);
    keys_free(k);
    store_close(st);
    return failed ? 1 : 0;
}
