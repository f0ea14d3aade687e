/*
 * test_pool.c - the browser pool's spare contexts, in real Chromium: a
 * running browser keeps one fresh context ready, made off the runs' path;
 * taking it leaves another to be made, a context of its own; a new kept
 * session takes it; nothing is left behind when the pool goes. (That two
 * contexts share no cookie is test_cdp_browser's contexts_are_isolated.)
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testproc.h"
#include "server/pool.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

/* Waits until the pool has n spares ready: 0, or -1 after 60 s. */
static int wait_spares(pool *p, int n)
{
    for (int i = 0; i < 600; i++) {
        if (pool_spares(p) == n)
            return 0;
        pt_sleep_ms(100);
    }
    return -1;
}

static void spares_are_fresh_and_made_again(void **state)
{
    (void)state;
    pool *p = pool_new(NULL, 1);
    assert_non_null(p);
    assert_int_equal(pool_spares(p), 0); /* no browser yet: nothing made */
    char err[PT_ERR_MAX];
    cdp_browser *b = pool_get(p, 1, err);
    if (!b)
        fail_msg("pool_get: %s", err);
    int pid = cdp_browser_pid(b);
    assert_int_equal(wait_spares(p, 1), 0);

    /* taken: the next one is made while this one is used */
    agent_session *a = pool_spare_take(p, b);
    assert_non_null(a);
    assert_int_equal(pool_spares(p), 0);
    assert_null(pool_spare_take(p, b));
    assert_false(agent_session_signed_in(a));
    assert_ptr_equal(agent_session_browser(a), b);
    assert_int_equal(wait_spares(p, 1), 0);
    agent_session *c = pool_spare_take(p, b);
    assert_non_null(c);
    assert_ptr_not_equal(a, c);
    agent_session_close(a);
    agent_session_close(c);
    assert_int_equal(wait_spares(p, 1), 0);

    /* a kept session of an account with none yet starts from the spare */
    int kept = 1;
    agent_session *k = pool_session_get(p, b, 7, &kept, err);
    assert_non_null(k);
    assert_int_equal(kept, 0);
    assert_int_equal(pool_spares(p), 0);
    pool_session_put(p, 7, k, 0);
    pool_put(p, b);
    assert_int_equal(wait_spares(p, 1), 0);
    pool_free(p);
    assert_int_equal(tp_count_group(pid), 0); /* the browser and its spare are gone */
}

PT_TESTS("pool", cmocka_unit_test(spares_are_fresh_and_made_again));
