/*
 * fingerprint.h - element fingerprints: what identifies an element a step
 * acted on apart from its locator, and how close another element comes to
 * it. The interpreter records one per SOP line on every run that succeeds
 * and, when a locator later matches nothing, finds the element again by
 * measure (docs/sop.md, "Fingerprints and healing").
 *
 * A fingerprint is a JSON object that dom.js writes and never holds a
 * value typed or read from the task:
 *
 *   {"role": "textbox", "name": "Member ID", "label": "Member ID",
 *    "tag": "input", "type": "text", "id": "member_id",
 *    "attrs": ["id", "name", "type"],            attribute names only
 *    "near": ["Patient", "Patient name"]}        labels, legends, headings
 *                                                just before it
 *
 * A set of fingerprints (one SOP's) is a JSON array of entries
 * {"file": "submit_claim.sop", "line": 27, "step": "<the step's text>",
 * "fp": {...}}: the step's text lets a line that moved still match.
 * This module only measures and keeps sets; it never touches a page.
 */
#ifndef PORTIER_AGENT_FINGERPRINT_H
#define PORTIER_AGENT_FINGERPRINT_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* A match is acted on only when its score is at least FP_STRONG and beats
 * the runner-up by FP_MARGIN (docs/sop.md says why these). */
#define FP_STRONG 0.70
#define FP_MARGIN 0.15

/* How close candidate cand comes to fingerprint fp, from 0 to 1: a
 * weighted mean over the features fp has (role and name strongest, then
 * label text, neighbouring labels, tag, attribute names, id). */
double fp_score(const cJSON *fp, const cJSON *cand);

/* The best of cands (an array of fingerprints) for fp: its index, or -1
 * when there are none; *best and *second (the runner-up's, 0 when none)
 * are its score. */
int fp_best(const cJSON *fp, const cJSON *cands, double *best, double *second);

/* Whether the best may be acted on: strong and unambiguous. */
int fp_decisive(double best, double second);

/* Similarity of two short texts, case ignored: 1 equal, 0 nothing alike
 * (an edit-distance ratio; containment counts for more). */
double fp_text_similarity(const char *a, const char *b);

/* The entry of set for a step: the one with the same file and step text
 * (the nearest line among several), else the one at the same file and
 * line. Borrowed from set, or NULL. */
const cJSON *fp_lookup(const cJSON *set, const char *file, int line, const char *step);

/* Puts fp (taken) into set for that step, replacing the entry fp_lookup
 * finds by text or by line. */
void fp_put(cJSON *set, const char *file, int line, const char *step, cJSON *fp);

/* Empties every text of fp (name, label, id, a neighbour) that holds one
 * of values[0..n) (case ignored; values shorter than 3 bytes are not
 * looked for): a page that shows the task's data back never gets it into
 * a fingerprint. */
void fp_scrub(cJSON *fp, const char *const *values, size_t n);
/* Whether s holds one of values[0..n) as fp_scrub looks for them. */
int fp_holds_value(const char *s, const char *const *values, size_t n);

/* ---- A folder of sets (`portier run --fingerprints DIR`) -----------------
 * DIR/NAME.json for the SOP named NAME: {"sop": NAME, "fingerprints": SET,
 * "suggestions": the last successful run's heals (agent_result.heals)}.
 * The files hold no task data (fp_scrub) and are written 0600. */

/* *set and *suggestions new (empty arrays when the file is not there yet).
 * 0, or -1 with err (a file that is there but does not parse). */
int fp_dir_load(const char *dir, const char *name, cJSON **set, cJSON **suggestions, char *err,
                size_t errsz);
/* Writes set and suggestions (NULL: none), borrowed. 0, or -1 with err. */
int fp_dir_save(const char *dir, const char *name, const cJSON *set, const cJSON *suggestions,
                char *err, size_t errsz);

#endif
