/*
 * wait.c - waiting between two looks at the page (see run.h): until
 * something may have changed, never a fixed sleep.
 *
 * A wait loop looks (resolves a locator, evaluates a condition), and when
 * what it wants is not there yet, calls run_wait_change: that returns at
 * once when Chromium has reported a new document, frame, lifecycle event
 * or dialog since the look began, else when dom.js sees a DOM mutation
 * (or input, transition end, load, scroll) in the current frame since the
 * look began (its watcher keeps the time of the last one, so a change that
 * came between the look and the call is not missed), or after a cap, so
 * that `whenever` handlers, cancelling and changes nothing reports (a CSS
 * animation, another frame) still get their turn.
 *
 * A wait inside a frame that has gone away (the page navigated, or removed
 * the iframe) ends there: the run fails with that reason instead of
 * running out its timeout.
 *
 * It owns the cap, the mark of when the last look began and the debug line
 * of a long wait. It must never look at the page itself, except through
 * dom.js's `change` and locate.c's check of the frames it waits in.
 */
#include "agent/agent.h"
#include "agent/run.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdlib.h>
#include <string.h>

void run_wait_begin(run *R, waiting *w, const sop_step *st, int timeout_ms, const char *what)
{
    w->st = st;
    w->what = what;
    w->start = pt_mono_ms();
    w->until = w->start + timeout_ms;
    w->seen = cdp_page_changes(R->page);
    w->look = w->start;
    w->logged = 0;
}

int run_wait_over(const waiting *w)
{
    return pt_mono_ms() >= w->until;
}

/* Says at debug what a wait that has lasted a second waits for: the step's
 * place and its source, masked, never a value of the task. */
static void log_long(run *R, waiting *w, int64_t now)
{
    if (w->logged || now - w->start < 1000 || !pt_log_enabled(PT_LOG_DEBUG))
        return;
    w->logged = 1;
    char *src = vars_mask(w->st->source ? w->st->source : "", R->o->secrets);
    const char *base = strrchr(w->st->file, '/');
    PT_DEBUG("agent", "%s:%d: waiting over 1 s (up to %lld s) for %s: %s",
             base ? base + 1 : w->st->file, w->st->line,
             (long long)((w->until - w->start + 999) / 1000), w->what, src ? src : "");
    free(src);
}

void run_wait_change(run *R, waiting *w, int cap_ms, const sop_locator *missing)
{
    int64_t now = pt_mono_ms();
    log_long(R, w, now);
    int64_t left = w->until - now;
    int cap = left < cap_ms ? (int)left : cap_ms;
    int ago = (int)(now - w->look);
    if (cap > 0 && dom_wait_change(R, w->seen, cap, missing, ago) < 0)
        pt_sleep_ms(cap); /* nothing to wait on: the next look says why */
    w->seen = cdp_page_changes(R->page);
    w->look = pt_mono_ms();
    char why[ERR_SIZE];
    if (R->depth > 0 && !R->stop && loc_frames_gone(R, why, sizeof(why)))
        run_fail(R, w->st, "%s", why);
}
