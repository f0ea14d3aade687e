/*
 * bench_ui.c - the dashboard's task list: how long the page takes to render
 * N tasks (default 1,000) in headless Chromium, signed in to a running
 * `portier serve` (bench/run.sh ui starts one with --demo).
 *
 * The tasks are made in the page (every status, long notes) and rendered
 * by the list's own code (portierDashboard.renderRows); each run is timed
 * from the call to the end of the layout it forces, RUNS times. Prints
 * one JSON object on stdout: median, p95 and max in milliseconds, and the
 * page's own load (DOMContentLoaded) for reference.
 *   bench_ui BASE_URL KEY [N]
 */
#include "cdp/cdp.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 30000
#define RUNS 25

static const char render_js[] =
    "(() => {"
    "const S = ['pending','running','waiting_for_input','pending_review','completed',"
    "'completed_with_issues','failed'], now = Date.now(), rows = [];"
    "for (let i = %d; i > 0; i--) rows.push({id: i, task_number: i, status: S[i %% 7],"
    " title: 'Submit claim #' + i, handler: 'submit_claim_1',"
    " createdAt: new Date(now - i * 60000).toISOString(),"
    " startedAt: new Date(now - i * 60000 + 2000).toISOString(),"
    " completedAt: i %% 7 >= 4 ? new Date(now - i * 60000 + 14000).toISOString() : null,"
    " updatedAt: new Date(now).toISOString(),"
    " notes: 'Claim successfully submitted with reference CLM-2026-' + String(i).padStart(6, '0')"
    " + '. The portal said the member is active and the claim is in review.'});"
    "const ms = [];"
    "for (let r = 0; r < %d; r++) {"
    " const t0 = performance.now();"
    " portierDashboard.renderRows(r %% 2 ? rows : rows.slice().reverse());"
    " void document.body.offsetHeight;"
    " ms.push(performance.now() - t0); }"
    "ms.sort((a, b) => a - b);"
    "const h0 = performance.now(); const html = portierDashboard.rowsHtml(rows);"
    "const h1 = performance.now(); document.getElementById('rows').innerHTML = html;"
    "const h2 = performance.now(); void document.body.offsetHeight; const h3 = performance.now();"
    /* the floor on this machine, now: a bare table of the same text */
    "const bare = document.createElement('table'); let bh = '';"
    "for (const t of rows) bh += '<tr><td>' + t.title + '</td><td>' + t.status + '</td><td>1 min"
    " ago</td><td>12 s</td><td>' + t.notes + '</td></tr>';"
    "const f0 = performance.now(); bare.innerHTML = bh; document.body.appendChild(bare);"
    "void document.body.offsetHeight; const floor = performance.now() - f0; bare.remove();"
    "const nav = performance.getEntriesByType('navigation')[0];"
    "return {tasks: rows.length, rendered: document.querySelectorAll('#rows tr').length,"
    " median_ms: +ms[ms.length >> 1].toFixed(1), p95_ms: +ms[Math.floor(ms.length * 0.95)].toFixed(1),"
    " max_ms: +ms[ms.length - 1].toFixed(1),"
    " bare_table_ms: +floor.toFixed(1), html_ms: +(h1 - h0).toFixed(1), dom_ms: +(h2 - h1).toFixed(1), layout_ms: +(h3 - h2).toFixed(1),"
    " page_load_ms: nav ? +nav.domContentLoadedEventEnd.toFixed(1) : null};"
    "})()";

/* Polls js until it is true, up to T ms. */
static int wait_true(cdp_page *p, const char *js, char *err)
{
    int64_t until = pt_mono_ms() + T;
    while (pt_mono_ms() < until) {
        cJSON *v = NULL;
        int ok = cdp_page_eval(p, NULL, js, &v, T, err) == 0 && cJSON_IsTrue(v);
        cJSON_Delete(v);
        if (ok)
            return 0;
        pt_sleep_ms(100);
    }
    snprintf(err, CDP_ERR_MAX, "timed out waiting for %s", js);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_ui BASE_URL KEY [N]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 1000;
    char err[CDP_ERR_MAX], url[512], js[sizeof(render_js) + 64], signin[512];
    cdp_browser *b = NULL;
    cdp_page *p = NULL;
    char *ctx = NULL;
    cJSON *v = NULL;
    int rc = 1;
    snprintf(url, sizeof(url), "%s/", argv[1]);
    snprintf(signin, sizeof(signin),
             "document.getElementById('key').value = '%.128s';"
             "document.querySelector('#signin-form button').click(); true",
             argv[2]);
    snprintf(js, sizeof(js), render_js, n, RUNS);
    if (cdp_launch(NULL, &b, err) || cdp_context_create(b, &ctx, err) ||
        cdp_page_open(b, ctx, &p, err) || cdp_page_navigate(p, url, CDP_WAIT_LOAD, T, err) ||
        wait_true(p, "!document.getElementById('signin').hidden", err) ||
        cdp_page_eval(p, NULL, signin, &v, T, err) ||
        wait_true(p, "!!document.getElementById('rows')", err))
        goto out;
    cJSON_Delete(v);
    v = NULL;
    if (cdp_page_eval(p, NULL, js, &v, 120000, err))
        goto out;
    cJSON_AddStringToObject(v, "peer", "portier-dashboard");
    cJSON_AddNumberToObject(v, "runs", RUNS);
    char *s = cJSON_PrintUnformatted(v);
    printf("%s\n", s);
    free(s);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_ui: %s\n", err);
    cJSON_Delete(v);
    if (p)
        cdp_page_close(p);
    if (ctx)
        cdp_context_dispose(b, ctx, NULL);
    free(ctx);
    cdp_close(b);
    return rc;
}
