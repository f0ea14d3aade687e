/*
 * bench_claim.c - the sandbox claim, N times one at a time, through the
 * agent: one browser, a fresh context per claim (as the task server runs
 * them). Prints one JSON line: median and p90 seconds per claim, and this
 * process's peak RSS and CPU seconds (Chromium is a child: not counted).
 *
 *   bench_claim PORTAL_URL N
 */
#include "agent/agent.h"
#include "util/fsutil.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_claim PORTAL_URL N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    char path[4096], err[1024], *data = NULL;
    snprintf(path, sizeof(path), "%s/sops/sandbox/submit_claim.sop", pt_home());
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    sop_diags_free(&d);
    snprintf(path, sizeof(path), "%s/sops/sandbox/examples/submit_claim.txt", pt_home());
    pt_read_file(path, 1 << 20, &data, NULL);
    vars *raw = vars_new(), *inputs = vars_new(), *secrets = vars_new();
    char problems[1024];
    vars_parse_data(raw, data, problems, sizeof(problems));
    vars_bind_inputs(s, raw, NULL, inputs, problems, sizeof(problems));
    snprintf(path, sizeof(path), "%s/sops/sandbox/sandbox.secrets", pt_home());
    vars_load_secrets(secrets, path, err);
    cdp_browser *b = NULL;
    if (!s || cdp_launch(NULL, &b, err)) {
        fprintf(stderr, "bench_claim: %s\n", s ? err : "the SOP does not parse");
        return 1;
    }
    double *t = calloc((size_t)n, sizeof(double));
    int ok = 0;
    for (int i = 0; i < n; i++) {
        agent_options o = {.browser = b, .portal = argv[1], .inputs = inputs, .secrets = secrets};
        agent_result r;
        int64_t t0 = pt_mono_ms();
        agent_run(s, &o, &r);
        t[i] = (double)(pt_mono_ms() - t0) / 1000.0;
        ok += !strcmp(r.status, "completed");
        agent_result_free(&r);
    }
    qsort(t, (size_t)n, sizeof(double), cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("{\"peer\":\"portier\",\"claims\":%d,\"completed\":%d,\"median_s\":%.3f,\"p90_s\":%.3f,"
           "\"peak_rss_kb\":%ld,\"cpu_s\":%.2f}\n",
           n, ok, t[n / 2], t[n * 9 / 10], ru.ru_maxrss, cpu);
    free(t);
    cdp_close(b);
    sop_free(s);
    vars_free(raw);
    vars_free(inputs);
    vars_free(secrets);
    free(data);
    return ok == n ? 0 : 1;
}
