/*
 * replay.h - record a run's portal session, replay it with no network, and
 * lint an SOP's locators against the recorded documents.
 *
 * Recording (Fetch interception at the response stage, on the page and on
 * every frame of it, out-of-process ones included) writes DIR/session.har
 * (HAR 1.2; bodies over 32 KiB as files in DIR/bodies/), the document every
 * step acted in (DIR/dom/N.html) and which step acted where
 * (DIR/steps.json). Secrets, one-time codes (TOTP codes of the run, answers
 * to `ask`) and declared input values (4 characters or more, as whole
 * values: form fields, query parameters, JSON values, text nodes,
 * attributes) are replaced by placeholders such as {{input.member_id}}
 * before anything is written.
 *
 * Replay fulfils every request from the recording (Fetch interception at the
 * request stage), matched by method and URL (in order when repeated) after
 * the same replacement applied to the live request; a request body that
 * still differs is reported on stderr; a request the recording lacks fails
 * the run (naming the URL and, through the agent, the SOP line), or goes to
 * the network with fallback_network.
 */
#ifndef PORTIER_REPLAY_H
#define PORTIER_REPLAY_H

#include "agent/agent.h"

#include <stdio.h>

typedef struct rr rr;

/* A recorder into dir (created; must be empty or absent). */
rr *rr_record(const char *dir, const sop *s, const vars *inputs, const vars *secrets,
              const vars *answers, const char *portal, char *err);
/* A replayer of dir. */
rr *rr_replay(const char *dir, const sop *s, const vars *inputs, const vars *secrets,
              const vars *answers, int fallback_network, char *err);
/* The portal URL the recording was made against (borrowed), or NULL. */
const char *rr_portal(const rr *r);
/* Sets the agent's record/replay hooks to r. */
void rr_attach(rr *r, agent_options *o);
/* Recording: writes the HAR and the step map. Replay: reports what was not
 * used. 0, or -1 with err. */
int rr_finish(rr *r, char *err);
void rr_free(rr *r);

/* Checks every locator of s against the documents recorded in dir, in the
 * document where its step acted (found by its file and line and its text,
 * so that moved lines still match): each that matches no element, or
 * several when exactly one is wanted, is an error in d; each that could not
 * be checked (its step did not act in the recording, its document cannot
 * be read) is a warning saying why. Returns the number of errors, or -1
 * with err. */
int rr_lint_against(const sop *s, const char *dir, sop_diags *d, char *err);

#endif
