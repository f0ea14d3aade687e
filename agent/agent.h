/*
 * agent.h - the agent: follows an SOP in a browser, step by step, the way a
 * careful person would.
 *
 * Before every action it waits until the element is attached, visible,
 * stable, enabled and is what a click at its centre would hit (not covered
 * by a modal, also one on the page around the frame it is in); `whenever`
 * handlers get their chance while it waits. Input is real: mouse events at
 * the element's point, keys, inserted text, files set on file inputs.
 *
 * It knows nothing of HTTP or the store: a task's data, secrets and files
 * come in, a status, notes and outputs go out, and a trajectory is written
 * where asked.
 */
#ifndef PORTIER_AGENT_H
#define PORTIER_AGENT_H

#include "cdp/cdp.h"
#include "agent/sop.h"
#include "agent/vars.h"

/* A kept session: a browser context of its own and its page, handed from
 * one run to the next of the same account so that a signed-in portal
 * session is reused. The host owns it and decides who may use it (one run
 * at a time, never two accounts); the agent only knows whether the last
 * run signed in with it. Between runs its page is on about:blank. */
typedef struct agent_session agent_session;

/* A new session in browser b (borrowed; it must outlive the session). */
int agent_session_open(cdp_browser *b, agent_session **out, char *err);
/* Closes the page and disposes the context (cookies, storage, cache with it).
 * NULL is a no-op. */
void agent_session_close(agent_session *s);
/* Non-zero once a run has signed in with s (a `use`d file that declares
 * `session` ran to its end), until a run finds it signed out again. */
int agent_session_signed_in(const agent_session *s);
/* The browser s lives in (borrowed). */
cdp_browser *agent_session_browser(const agent_session *s);

/* Where a trajectory's files go, for a host that keeps them its own way
 * (the task server seals them). name is the file's name in the trajectory
 * ("trajectory.json", "step-003.jpg", ...). write: 0 or negative; read:
 * a new buffer (*data, *len; the caller frees it) of what write wrote, 0 or
 * negative. Called on the thread running agent_run. */
typedef struct agent_traj_sink {
    int (*write)(void *ud, const char *name, const void *data, size_t len);
    int (*read)(void *ud, const char *name, size_t max, char **data, size_t *len);
    void *ud;
} agent_traj_sink;

typedef struct agent_options {
    cdp_browser *browser;     /* borrowed; a fresh context is made in it */
    agent_session *session;   /* borrowed; non-NULL: run in it instead (same
                                 browser), and keep it for the next run */
    int session_once;         /* session is a fresh context made ahead of the
                                 run, closed after it: it is not left on a
                                 neutral page for a next run */
    const char *portal;       /* the portal's base URL: {{portal}} */
    const vars *inputs;       /* bound inputs (vars_bind_inputs) */
    const vars *secrets;      /* {{secret.X}}, {{totp.X}} */
    const vars *answers;      /* values for `ask` steps, by name */
    const char *const *files; /* task files (paths), for upload steps */
    size_t nfiles;
    int approve;                /* `review` steps are approved */
    const char *trajectory_dir; /* NULL: no trajectory */
    /* Element fingerprints (agent/fingerprint.h, docs/sop.md): the set
     * earlier runs of this SOP left (borrowed; NULL: none), which a
     * locator that matches nothing is healed by; record_fingerprints:
     * this run's are merged into a copy of it, in r->fingerprints. */
    const cJSON *fingerprints;
    int record_fingerprints;
    const agent_traj_sink *traj_sink; /* borrowed; NULL: plain files in
                                         trajectory_dir */

    /* Hooks for a host that can wait for people (the task server); all
     * optional, all called on the thread running agent_run.
     * ask: an `ask` step has no answer in `answers`. Return 0 with *answer
     *   (malloc'd) to go on, or 1 to stop the run as waiting_for_input.
     * review: a `review` step, when approve is 0. Return 1 approved, 0
     *   rejected (*comment malloc'd or NULL: the run fails with it), or 2 to
     *   stop the run as pending_review.
     * on_commit: the run is crossing `commit`; called before any step after
     *   it, so a host can make that durable first. Return 0 once it is
     *   durable; non-zero (the host could not record it) fails the run at
     *   the `commit` step, before any step that submits, and the run is not
     *   committed.
     * cancelled: polled between steps and while waiting; non-zero ends the
     *   run as failed, cancelled. */
    int (*ask)(void *ud, const char *name, const char *prompt, char **answer);
    int (*review)(void *ud, const char *summary, char **comment);
    int (*on_commit)(void *ud);
    int (*cancelled)(void *ud);
    void *hook_ud;

    /* Record and replay (agent/replay.h); all optional, called on the
     * thread running agent_run.
     * page_opened: the page exists, nothing has loaded yet (interception
     *   goes on here).
     * snapshot: the first time in a step that its locator resolves to one
     *   element, the document it resolved in (url, outerHTML; borrowed).
     * stop_reason: polled like cancelled; a non-NULL message fails the run
     *   at the current step with it (replay: a request not recorded). */
    int (*page_opened)(void *ud, cdp_page *page, char *err);
    void (*snapshot)(void *ud, const sop_step *st, const char *url, const char *html);
    const char *(*stop_reason)(void *ud);
    /* step_begin: a step is about to run (what a request is attributed to) */
    void (*step_begin)(void *ud, const sop_step *st);
    void *rr_ud;
} agent_options;

typedef struct agent_result {
    char status[32]; /* completed, completed_with_issues, failed,
                        waiting_for_input, pending_review */
    char *notes;     /* masked: no secret in it */
    vars *outputs;   /* extracted values */
    int committed;   /* crossed `commit`: the portal may have the submission */
    char *ask_name;  /* waiting_for_input: what is asked */
    char *ask_prompt;
    int steps_run;
    int session_reused; /* a kept session was still signed in: sign-in skipped */
    int unreachable;    /* failed because the portal could not be reached (no
                           connection, no such host): nothing was done there */
    cJSON *fingerprints; /* record_fingerprints and the run succeeded
                            (completed or completed_with_issues): the set to
                            keep for the next run; else NULL */
    cJSON *heals;        /* the steps healed, each the SOP change to make:
                            [{"file", "line", "col", "old", "new", "score",
                            "second"}]; NULL when none */
} agent_result;

/* Runs s to its end. Returns 0 when a status was reached (whatever it is),
 * or -1 when the run could not start (no browser). r is filled either way;
 * free it with agent_result_free. */
int agent_run(const sop *s, const agent_options *o, agent_result *r);
void agent_result_free(agent_result *r);

/* Whether text passes condition c's text test (contains, is, matches; case
 * ignored unless c->exact; `is` trims and collapses spaces): 1 or 0. */
int cond_text_holds(const sop_cond *c, const char *text);

#endif
