/*
 * bench_cdp.c - CDP round trips: Runtime.evaluate("1"), N calls over 1 and 8
 * concurrent sessions (one page each, one thread each), on one Chromium.
 *
 * Prints one JSON object per concurrency level on stdout; bench/run.sh puts
 * them beside Puppeteer's. Peak RSS is this process's own (Chromium, a
 * child, is not counted), as getrusage(RUSAGE_SELF) reports it.
 */
#include "cdp/cdp.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct lane {
    cdp_page *page;
    int calls;
    double *lat_us;
    int errors;
} lane;

static void *run_lane(void *arg)
{
    lane *l = arg;
    cdp_session *s = cdp_page_session(l->page);
    for (int i = 0; i < l->calls; i++) {
        cJSON *p = cJSON_CreateObject(), *res = NULL;
        cJSON_AddStringToObject(p, "expression", "1");
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (cdp_call(s, "Runtime.evaluate", p, &res, 30000, NULL) != 0)
            l->errors++;
        clock_gettime(CLOCK_MONOTONIC, &b);
        cJSON_Delete(res);
        l->lat_us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int total = argc > 1 ? atoi(argv[1]) : 10000;
    const int levels[] = {1, 8};
    char err[CDP_ERR_MAX];
    cdp_browser *b = NULL;
    if (cdp_launch(NULL, &b, err)) {
        fprintf(stderr, "bench_cdp: %s\n", err);
        return 1;
    }
    for (size_t li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
        int n = levels[li];
        lane lanes[8];
        pthread_t t[8];
        for (int i = 0; i < n; i++) {
            lanes[i].calls = total / n;
            lanes[i].errors = 0;
            lanes[i].lat_us = calloc((size_t)lanes[i].calls, sizeof(double));
            if (cdp_page_open(b, NULL, &lanes[i].page, err)) {
                fprintf(stderr, "bench_cdp: %s\n", err);
                return 1;
            }
        }
        /* warm up each session */
        for (int i = 0; i < n; i++) {
            cJSON *v = NULL;
            cdp_page_eval(lanes[i].page, NULL, "1", &v, 30000, NULL);
            cJSON_Delete(v);
        }
        int64_t t0 = pt_mono_ms();
        for (int i = 0; i < n; i++)
            pthread_create(&t[i], NULL, run_lane, &lanes[i]);
        int errors = 0, calls = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(t[i], NULL);
            errors += lanes[i].errors;
            calls += lanes[i].calls;
        }
        double secs = (double)(pt_mono_ms() - t0) / 1000.0;
        double *all = calloc((size_t)calls, sizeof(double));
        int k = 0;
        for (int i = 0; i < n; i++) {
            memcpy(all + k, lanes[i].lat_us, (size_t)lanes[i].calls * sizeof(double));
            k += lanes[i].calls;
            free(lanes[i].lat_us);
            cdp_page_close(lanes[i].page);
        }
        qsort(all, (size_t)calls, sizeof(double), cmp_double);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"peer\":\"portier\",\"sessions\":%d,\"calls\":%d,\"errors\":%d,"
               "\"seconds\":%.3f,\"calls_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"peak_rss_kb\":%ld}\n",
               n, calls, errors, secs, calls / secs, all[calls / 2], all[calls * 99 / 100],
               ru.ru_maxrss);
        fflush(stdout);
        free(all);
    }
    cdp_close(b);
    return 0;
}
