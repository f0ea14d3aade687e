/*
 * test_dom.c - dom.js (the agent's eyes inside a frame) called as the agent
 * calls it, in real Chromium, on pages the test serves on loopback.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testhttp.h"
#include "cdp/cdp.h"
#include "util/timeutil.h"

#include "dom_js.h" /* generated from agent/dom.js: static const char dom_js[] */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 20000 /* generous: these machines are shared and slow at times */

static void eval_ok(cdp_page *p, const char *js)
{
    char err[CDP_ERR_MAX] = "";
    cJSON *v = NULL;
    if (cdp_page_eval(p, NULL, js, &v, T, err))
        fail_msg("eval %s: %s", js, err);
    cJSON_Delete(v);
}

/* dom(op, ...args) in the top frame: its value (new), as the agent calls it */
static cJSON *dom(cdp_page *p, const char *op, cJSON *a, cJSON *b, cJSON *c)
{
    char err[CDP_ERR_MAX] = "";
    cJSON *args = cJSON_CreateArray();
    cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateString(op)));
    cJSON_AddItemToArray(args, cdp_arg(a));
    cJSON_AddItemToArray(args, cdp_arg(b));
    cJSON_AddItemToArray(args, cdp_arg(c));
    cdp_value v;
    if (cdp_page_call_kept(p, NULL, dom_js, args, 0, &v, T, err))
        fail_msg("dom %s: %s", op, err);
    return v.value;
}

/* `change` with a cap of cap_ms, the last look having begun look_ms ago
 * (-1: not said): whether it saw a change */
static int change(cdp_page *p, int cap_ms, int look_ms)
{
    cJSON *v = dom(p, "change", cJSON_CreateNumber(cap_ms), NULL,
                   look_ms < 0 ? NULL : cJSON_CreateNumber(look_ms));
    int changed = cJSON_IsTrue(v);
    if (!cJSON_IsBool(v))
        fail_msg("change gave no boolean");
    cJSON_Delete(v);
    return changed;
}

/* A change that comes between a look and the `change` call after it (a
 * reply that lands while the agent's next call is on its way) ends the wait
 * at once when the call says when the look began; a page quiet since then
 * waits out the cap; a change after the call began ends it as before. */
static void a_change_between_the_look_and_the_wait_is_seen(void **state)
{
    (void)state;
    th_server *s = th_start();
    th_route(s, "/", "text/html", "<title>form</title><p id=out>waiting</p>", -1, 0);
    char err[CDP_ERR_MAX] = "", url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", th_port(s));
    cdp_browser *b = NULL;
    if (cdp_launch(NULL, &b, err))
        fail_msg("launch: %s", err);
    cdp_page *p = NULL;
    if (cdp_page_open(b, NULL, &p, err) || cdp_page_navigate(p, url, CDP_WAIT_LOAD, T, err))
        fail_msg("page: %s", err);

    /* the look (any call: it starts the document's watcher), then the
     * page changes before the wait is asked for */
    cJSON_Delete(dom(p, "pageText", NULL, NULL, NULL));
    int64_t look = pt_mono_ms();
    eval_ok(p, "document.getElementById('out').textContent = 'Claim reference CLM-1'");
    assert_true(change(p, T, (int)(pt_mono_ms() - look)));

    /* quiet since the look: the cap, no change */
    pt_sleep_ms(200);
    assert_false(change(p, 300, 0));

    /* without when the look began, a change before the call is not seen:
     * the reason the agent says it */
    look = pt_mono_ms();
    eval_ok(p, "document.getElementById('out').textContent = 'again'");
    pt_sleep_ms(100);
    assert_false(change(p, 300, -1));

    /* a change after the call began ends it */
    eval_ok(p, "setTimeout(() => document.getElementById('out').textContent = 'later', 100); 1");
    assert_true(change(p, T, 0));

    /* a new document has a watcher of its own */
    if (cdp_page_navigate(p, url, CDP_WAIT_LOAD, T, err))
        fail_msg("navigate: %s", err);
    cJSON_Delete(dom(p, "pageText", NULL, NULL, NULL));
    look = pt_mono_ms();
    eval_ok(p, "document.title = 'changed'");
    assert_true(change(p, T, (int)(pt_mono_ms() - look)));

    cdp_page_close(p);
    cdp_close(b);
    th_stop(s);
}

PT_TESTS("dom", cmocka_unit_test(a_change_between_the_look_and_the_wait_is_seen));
