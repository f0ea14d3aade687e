/*
 * run.h - what the interpreter's files share: private to agent/, never
 * included outside it (agent.h is the agent's contract).
 *
 * One run of an SOP is a `run`. The files that work on it:
 *
 *   agent.c       the interpreter: agent_run, the loop over a block, the
 *                 `whenever` handlers, cancelling, the outcome of a run
 *   steps.c       the step table: one function per step kind
 *   dom.c         calls into dom.js (the agent's eyes inside a frame)
 *   locate.c      finding elements, waiting until one is actionable,
 *                 the frames that `in frame` enters
 *   cond.c        conditions (if, wait for, expect, whenever)
 *   keys.c        keystrokes: named keys, text typed key by key, the keys
 *                 that fill native date and time inputs
 *   wait.c        waiting between two looks until something may have changed
 *   trajectory.c  the trajectory: a step's entry, screenshots, the files
 *
 * Frames: `in frame LOC` pushes the frame that LOC's element shows onto a
 * stack; every lookup runs in the frame on top, and a point to click is
 * translated outwards through each enclosing iframe (and hit-tested there:
 * a modal on the page around the frame covers the element too) into the
 * top page's viewport, where mouse events are dispatched. Chromium routes
 * them into out-of-process frames itself.
 *
 * Waiting: every action waits up to its timeout for its element to be
 * actionable; `wait for` waits for its condition. Between two looks a wait
 * waits for a change (wait.c), not for a fixed time. While waiting,
 * `whenever` handlers are checked and run when their condition holds.
 */
#ifndef PORTIER_AGENT_RUN_H
#define PORTIER_AGENT_RUN_H

#include "agent/sop.h"
#include "agent/vars.h"
#include "cdp/cdp.h"

#include <stdint.h>

/* How long a wait loop waits for a change before it looks again anyway
 * (run_wait_change): */
#define WAIT_CAP_MS 250 /* the usual: handlers, cancelling, CSS animations */
#define WAIT_FAR_MS 100 /* what is in the way is in another frame's document */
#define WAIT_BOX_MS 50  /* a checkbox just clicked */
#define MAX_FRAMES 8
/* the most steps one picture is of (a form's fields, then the picture) */
#define MAX_SHOT_ENTRIES 32
#define ERR_SIZE 1024

typedef struct framectx {
    char *frame_id;            /* NULL: the top frame */
    const sop_locator *iframe; /* the element showing it, in the frame below */
} framectx;

typedef struct handler {
    const sop_step *st;
    int depth;    /* frame stack depth where it was declared */
    int64_t last; /* when it last ran */
    int fired;
    int due, holds; /* in run_handlers: due for a look; held (-1: not looked) */
} handler;

/* A step the run healed (locate.c): the locator that named the element
 * its fingerprint matched, in place of the one that matched nothing. */
#define MAX_HEALS 16
/* How long a locator matches nothing before healing is tried, and how
 * often it is tried again while the step still waits: a page still being
 * built must have its chance first, and each try reads the whole page. */
#define HEAL_AFTER_MS 1000
typedef struct heal {
    const sop_step *st;
    sop_locator loc; /* its role and value owned here */
    char line[512];  /* that locator as an SOP writes it */
    double score, second;
    int acted; /* the step acted on it (before commit) */
} heal;

typedef struct run {
    const sop *s;
    /* agent.h's types, by their struct names: agent.c includes run.h, so
     * run.h does not include agent.h back */
    const struct agent_options *o;
    struct agent_result *r;
    cdp_page *page;
    vars *v;
    framectx stack[MAX_FRAMES];
    int depth;
    handler *handlers;
    size_t nhandlers;
    int in_handler;
    unsigned long handlers_looked; /* cdp_calls_here() after the last look */
    const cJSON *field;            /* step_fill: what the look saw of its field (borrowed) */
    int stop;                      /* a status was reached */
    cJSON *traj_steps;
    cdp_capture *shot; /* the screenshot in flight (trajectory.c) */
    /* the entries (in traj_steps) the picture in flight, or the next one,
     * is of: a form's fields share the picture taken after the last */
    cJSON *shot_entries[MAX_SHOT_ENTRIES];
    int nshot_entries, ndeferred; /* ndeferred: of them, still to capture */
    int deferred_change;          /* a click's (not only fields') among them */
    int shot_index;
    int index;
    const sop_step *cur;
    const sop_step *snapped; /* the step whose document was snapshot */
    /* masking (trajectory.c): what is never to be seen in a screenshot or
     * the failure DOM */
    vars *asked;                    /* names `ask` steps set */
    vars *hidden;                   /* values typed into sensitive fields */
    char *mask_frames[MAX_FRAMES];  /* frames with marked fields (NULL: top) */
    int nmask_frames, masked;       /* masked: a mask is on until the shot ends */
    /* fingerprints and healing (locate.c) */
    cJSON *entry;   /* the trajectory entry of the step running (borrowed) */
    cJSON *fps;     /* o->record_fingerprints: the set this run leaves */
    heal heals[MAX_HEALS];
    int nheals;
} run;

/* ---- session.c: kept sessions ------------------------------------------- */

struct agent_session {
    cdp_browser *browser; /* borrowed */
    char *context;
    cdp_page *page;
    int signed_in; /* a run signed in with it and nothing since said otherwise */
};

/* Ends a run's use of s: the page goes to about:blank and forgets the run's
 * dialogs and exceptions. */
void session_leave(struct agent_session *s);

/* ---- agent.c: the interpreter ------------------------------------------- */

/* Ends the run with status and notes (masked here). */
void run_status(run *R, const char *status, const char *notes);
/* Fails the run at step st with a message people can act on (masked). */
void run_fail(run *R, const sop_step *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* How long step st may wait: its own timeout, else the SOP's. */
int run_timeout(const run *R, const sop_step *st);
/* The id of the frame at stack depth (NULL: the top frame). Borrowed. */
const char *run_frame(const run *R, int depth);
/* Runs the steps of b in order until the run stops. */
void run_block(run *R, const sop_block *b);
/* Runs a used file's steps as if spliced where it is used: its `whenever`
 * handlers outlive it, as they do when the file declares no session. */
void run_used(run *R, const sop_block *b);
/* Only declares b's `whenever` handlers (a used file whose steps a kept
 * session skips still watches for what it watches for). */
void run_used_handlers(run *R, const sop_block *b);
/* Runs every `whenever` whose condition holds now: how many fired, or -1
 * if one failed or the run stopped. */
int run_handlers(run *R);

/* ---- steps.c: the step table -------------------------------------------- */

/* A step: 0, or -1 when it failed or the run stopped (the loop closes its
 * trajectory entry). */
typedef int (*step_fn)(run *R, const sop_step *st);
/* A step with a body (if, in frame): it closes its trajectory entry traj
 * itself, before the body runs. */
typedef void (*step_block_fn)(run *R, const sop_step *st, cJSON *traj);
/* What a step does to the page, for its picture in the trajectory. */
enum {
    STEP_LOOKS = 0,   /* nothing: no picture */
    STEP_CHANGES = 1, /* the page may look different after it: a picture */
    STEP_FIELD = 2,   /* sets a field: its picture may be the one taken after
                         the form's last field (trajectory.c) */
};
typedef struct step_kind {
    step_fn fn;          /* or: */
    step_block_fn block; /* (neither for `whenever`: the loop registers it) */
    int changes;         /* STEP_*: what it does to the page, for the picture */
} step_kind;
/* The table's row for kind. Borrowed, static. */
const step_kind *step_kind_of(sop_step_kind kind);

/* ---- dom.c: calling dom.js ---------------------------------------------- */

/* The result of a dom.js call. */
typedef struct dom_out {
    cJSON *value;   /* by value: the value (the caller frees) */
    cdp_handle *el; /* by reference: the element (the caller releases) */
    int count;      /* by reference: how many matched when `resolve` found
                       no single element, else -1 */
} dom_out;

/* Calls dom(op, args...) in the frame at depth, or with `on` in that
 * element's frame (args may hold handles). Takes args. by_value: 1 by
 * value, 0 by reference, DOM_BOTH an object by reference and its value. */
#define DOM_BOTH 2
int dom_call(run *R, int depth, const cdp_handle *on, const char *op, cJSON *args, int by_value,
             dom_out *out, int timeout_ms, char *err);
/* dom(op) in the frame frame_id (NULL: the top frame), by value: a new
 * value, or NULL with err. */
cJSON *dom_in_frame(run *R, const char *frame_id, const char *op, char *err);
/* dom(op, e, extra...) on element e, by value: a new value, or NULL with
 * err. Takes extra. */
cJSON *dom_on(const cdp_handle *e, const char *op, cJSON *extra, char *err);
/* The locator as dom.js takes it, its value expanded: new, or NULL. */
cJSON *dom_locator(run *R, const sop_locator *l, char *err);
/* dom.js `change` in the current frame, through cdp_page_wait_change:
 * until something may have changed there since the page's count of
 * changes was `since`, at most cap_ms (missing: a locator that found
 * nothing; the wait ends as soon as it finds something; look_ms: how long
 * ago the last look began, -1 unknown: the wait ends at once when the page
 * changed since). 0, or < 0 when the browser or page is gone. */
int dom_wait_change(run *R, unsigned long since, int cap_ms, const sop_locator *missing,
                    int look_ms);
/* The number o.k, or 0. */
double dom_num(const cJSON *o, const char *k);
/* {{text:SELECTOR}} for vars_expand: the element's text in the current
 * frame (ud is the run). New, or NULL. */
char *dom_text_in_frame(const char *selector, void *ud);

/* ---- locate.c: finding and judging elements ------------------------------ */

/* Hands the document at depth to the record mode's snapshot hook, once per
 * step (for steps that look without resolving one element). */
void loc_snapshot(run *R, int depth);
/* 1 when a frame the run is inside (R->stack) is no longer on its parent's
 * page, with why; else 0 (also when it cannot be told now). */
int loc_frames_gone(run *R, char *why, size_t whysz);
/* Carries the point (*x, *y) in the current frame's viewport outwards
 * through each enclosing frame, hit-testing it there: on success it is in
 * the top page's viewport. 0, or -1 with why (the point is covered, or a
 * frame is gone). */
int loc_hit_through_frames(run *R, double *x, double *y, char *why, size_t whysz);

/* A readable form of a locator, for messages: label "Member ID". */
void loc_text(const sop_locator *l, char *out, size_t outsz);
/* Resolves loc in the current frame, strictly. 0 with *e set, or 1 with
 * the number of matches (>= 0, never 1) in *count; < 0 on errors. */
int loc_find(run *R, const sop_locator *loc, cdp_handle **e, int *count, char *err);
/* Waits until loc is one actionable element, returning it and the point to
 * act at in the top page's viewport (hit-tested through the frames with
 * need_hit; left: near its left edge). -1 when the step failed. */
int loc_actionable(run *R, const sop_step *st, const sop_locator *loc, int need_hit, int left,
                   cdp_handle **out, double *x, double *y);
/* loc_actionable, and what dom.js `info` says of the element, seen in the
 * same look, with frameDx and frameDy (what takes a point in its frame's
 * viewport to the top page's): *info new (the caller frees), with *out. */
int loc_actionable_info(run *R, const sop_step *st, const sop_locator *loc, int need_hit, int left,
                        cdp_handle **out, double *x, double *y, cJSON **info);
/* Waits until st's locator matches exactly one element, attached but not
 * necessarily visible. -1 when the step failed. */
int loc_present(run *R, const sop_step *st, cdp_handle **e);
/* The frame that loc's element (in the frame at depth) shows: *frame_id
 * new. 0, or non-zero with err. st: the `in frame` step whose fingerprint
 * the element is (NULL: a condition's frame, not fingerprinted). */
int loc_frame(run *R, int depth, const sop_locator *loc, const sop_step *st, char **frame_id,
              char *err);

/* Healing (docs/sop.md, "Fingerprints and healing"): loc, st's locator in
 * the current frame, matched nothing; the fingerprint an earlier run that
 * succeeded recorded for st names an element strongly and unambiguously.
 * Returns the locator that names that element alone (the run owns it), or
 * NULL with why (no fingerprint, too weak, ambiguous) when why is given.
 * Before `commit` a step may act on it (then loc_healed); after, it is only
 * the suggestion in the error. */
const sop_locator *loc_heal(run *R, const sop_step *st, const sop_locator *loc, char *why,
                            size_t whysz);
/* Step st acted on h (what loc_heal gave) in place of its locator: the
 * suggested SOP change goes into the trajectory and the run's heals. */
void loc_healed(run *R, const sop_step *st, const sop_locator *h);
/* Keeps fp (taken; dom.js `fingerprint`) as st's fingerprint in the run's
 * set, scrubbed of the task's values; nothing when loc is a template. */
void loc_fp_record(run *R, const sop_step *st, const sop_locator *loc, cJSON *fp);
/* The run records fingerprints. */
int loc_fp_on(const run *R);
/* "; its fingerprint now matches ...: not acted on after commit (write:
 * LINE)" for a locator that matched nothing after `commit`, or "". */
void loc_heal_after_commit(run *R, const sop_step *st, const sop_locator *loc, char *out,
                           size_t outsz);

/* ---- cond.c: conditions -------------------------------------------------- */

/* Whether c holds in the frame at depth: 1, 0, or -1 with err. */
int cond_holds(run *R, const sop_cond *c, int depth, char *err);
/* Whether each of cs[0..n) holds in the frame at depth, in one look at the
 * page when it can (else one by one): out[i] as cond_holds gives. 0. */
int cond_holds_many(run *R, const sop_cond *const *cs, size_t n, int depth, int *out, char *err);

/* ---- keys.c: keystrokes --------------------------------------------------- */

/* Presses the named key (Enter, Tab, ... or one character). */
int keys_press(run *R, const char *name, char *err);
/* Types text key by key (each UTF-8 character a key down and up). */
int keys_type(run *R, const char *text, char *err);
/* The keys that put value into a native date, time or datetime-local
 * input: its date part (if with_date) in the browser's field order, then
 * its time part (if with_time), a '|' between them. Writes the normalised
 * date and HH:MM the field will hold. */
int keys_datetime(run *R, const char *value, int with_date, int with_time, char iso[11],
                  char hhmm[8], char *kb, size_t kbsz, char *err);
/* Formats an ISO date the way a text field asks (by its placeholder). */
void keys_date_for_field(const char *iso, const char *placeholder, char *out, size_t outsz);

/* ---- wait.c: waiting for a change ----------------------------------------- */

/* One wait loop: a step waiting up to its timeout for something. */
typedef struct waiting {
    const sop_step *st;
    const char *what; /* what it waits for, static: "an actionable element" */
    int64_t start, until;
    unsigned long seen; /* the page's count of changes when the last look began */
    int64_t look;       /* when it began (pt_mono_ms) */
    int logged;
} waiting;

/* Begins waiting for `what` (static text, no task data) at step st, up to
 * timeout_ms from now; call it before the first look. */
void run_wait_begin(run *R, waiting *w, const sop_step *st, int timeout_ms, const char *what);
/* Whether the wait's time is up. */
int run_wait_over(const waiting *w);
/* After a look that did not find what it wanted: waits until something in
 * the current frame may have changed, at most cap_ms and never past the
 * deadline (missing: a locator the look found nothing for), then marks the
 * start of the next look. A wait past 1 s is logged at debug, once. */
void run_wait_change(run *R, waiting *w, int cap_ms, const sop_locator *missing);

/* ---- trajectory.c: the trajectory ---------------------------------------- */

/* A new entry for step st (the run's step count goes up). */
cJSON *traj_begin(run *R, const sop_step *st);
/* Closes entry e (taken): its outcome, a screenshot when the page changed
 * or the step failed, the failing frame's DOM. */
void traj_end(run *R, cJSON *e, int failed, int changed);
/* Throws away entry e, just begun, as if the step had none (a `use` step
 * with no kept session: its file's steps speak for it). */
void traj_drop(run *R, cJSON *e);
/* The field e is about to receive step st's value: when the value is a
 * secret, a one-time code or an `ask` answer, or the step says
 * `sensitive`, the field is masked in every screenshot from now on and
 * the value in the failure DOM. */
void traj_guard(run *R, const sop_step *st, const cdp_handle *e, const char *value);
/* An `ask` step set name: a value filled from it is sensitive. */
void traj_asked(run *R, const char *name);
/* Frees what masking holds. */
void traj_free(run *R);
/* Writes trajectory.json and trajectory.html, when asked for, once the
 * screenshot in flight is in. Always called before the page closes. */
void traj_write(run *R);

#endif
