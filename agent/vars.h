/*
 * vars.h - the values an SOP works with: task data, declared inputs,
 * account secrets, and {{templates}} over them.
 *
 * Task data arrives as free text (`key: value` lines, keys case- and
 * space-insensitive: "DOB" is dob, "Member ID" is member_id) or as a JSON
 * object. It is checked against the SOP's input declarations before a
 * browser is touched, and every problem is reported at once.
 *
 * Secrets never leave this module in clear except into the page: every
 * rendering for people (logs, trajectories, errors) masks them as ***.
 */
#ifndef PORTIER_VARS_H
#define PORTIER_VARS_H

#include "agent/sop.h"

#include <stddef.h>

typedef struct vars vars;

vars *vars_new(void);
void vars_free(vars *v);
/* Sets name (copied) to value (copied); is_date marks a normalised date. */
int vars_set(vars *v, const char *name, const char *value, int is_date);
/* The value, or NULL. Borrowed until the next vars_set of that name. */
const char *vars_get(const vars *v, const char *name);
int vars_is_date(const vars *v, const char *name);
/* For iterating: how many, and the i-th name (borrowed). */
size_t vars_count(const vars *v);
const char *vars_name(const vars *v, size_t i);

/* Parses task data into name -> value pairs (names normalised). Errors
 * ("line 3: expected 'key: value'") are appended to errs, one per line,
 * into a buffer of errsz bytes. Returns 0, or -1 when the data is unusable. */
int vars_parse_data(vars *out, const char *data, char *errs, size_t errsz);

/* Checks `data` against s's inputs and fills `out` with each input's value:
 * from the data, else from overrides (an account's defaults), else the SOP's
 * default. Dates are normalised to YYYY-MM-DD; mapped values are mapped.
 * Every problem is listed in errs as "name: reason" lines. Returns the
 * number of problems (0: all good). */
int vars_bind_inputs(const sop *s, const vars *data, const vars *overrides, vars *out, char *errs,
                     size_t errsz);

/* Parses task data (vars_parse_data) and binds it to s's inputs
 * (vars_bind_inputs, with overrides) into `out`, the one way every caller
 * turns a task's text into inputs. Problems go to errs. Returns 0, -1 when
 * the data is unusable, or the number of problems. */
int vars_bind_data(const sop *s, const char *data, const vars *overrides, vars *out, char *errs,
                   size_t errsz);

/* Normalises a written date (1949-12-23, 12/23/1949, 12-23-1949, 19491223,
 * Dec 23 1949, December 23, 1949, 23 December 1949) to YYYY-MM-DD. */
int vars_normalize_date(const char *in, char out[11]);

/* Reads a secrets file: NAME=VALUE lines, # comments, blank lines. Each
 * value is also registered with the log mask. */
int vars_load_secrets(vars *secrets, const char *path, char *err);

/* Expands {{name}}, {{secret.NAME}}, {{totp.NAME}} and {{text SELECTOR}}.
 * text_of(selector, ud) supplies the page's text (a new string, or NULL).
 * masked != 0 renders secrets and TOTP codes as *** (for people).
 * Returns a new string, or NULL with err set (an unknown name, say). */
typedef char *(*vars_text_fn)(const char *selector, void *ud);
char *vars_expand(const char *tmpl, const vars *v, const vars *secrets, vars_text_fn text_of,
                  void *ud, int masked, char *err);

/* Replaces every secret value (and the TOTP codes of the current and
 * neighbouring 30 s windows) in text by ***. Returns a new string. */
char *vars_mask(const char *text, const vars *secrets);

#endif
