/*
 * steps.c - the step table: one function per step kind (see run.h).
 *
 * Each function does what its step says, in the current frame, with real
 * input: it waits for its element through locate.c, acts through cdp_input_*
 * and dom.c, and fails the run (run_fail) with a message a person can act
 * on. It owns what a step means. It must never run the loop (agent.c does:
 * handlers, cancelling, the trajectory entry around a step) and never
 * speaks the protocol.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "agent/run.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The value of a step, expanded (clear, for the page). *is_date tells a
 * date input's value. NULL on error (the step has failed). */
static char *value_of(run *R, const sop_step *st, int *is_date)
{
    char err[ERR_SIZE];
    if (is_date)
        *is_date = 0;
    if (st->value.is_var) {
        const char *v = vars_get(R->v, st->value.text);
        if (!v) {
            run_fail(R, st, "%s has no value", st->value.text);
            return NULL;
        }
        if (is_date)
            *is_date = vars_is_date(R->v, st->value.text);
        return strdup(v);
    }
    char *x = vars_expand(st->value.text, R->v, R->o->secrets, dom_text_in_frame, R, 0, err);
    if (!x)
        run_fail(R, st, "%s", err);
    return x;
}

/* ---- Conditions ---------------------------------------------------------- */

/* The step's locator for a step that types or picks: a custom element's
 * host stands for the focusable control inside its (open) shadow root.
 * Borrows st's strings. */
static sop_locator field_loc(const sop_step *st)
{
    sop_locator l = st->loc;
    l.field = 1;
    return l;
}

/* Why an element is not a field: a custom element with no way in says so. */
static void fail_not_field(run *R, const sop_step *st, const cJSON *info, const char *what)
{
    const char *d = pt_json_str(info, "describe") ? pt_json_str(info, "describe") : "the element";
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "closed")))
        run_fail(R, st,
                 "%s is a custom element with a closed shadow root: no step can reach the "
                 "field inside it",
                 d);
    else
        run_fail(R, st, "%s is not %s", d, what);
}

/* The step's value (expanded, *is_date when a date) and the element it
 * goes into, once actionable (see loc_actionable). 0, or -1 when the step
 * failed, with nothing left to free. */
static int value_and_element(run *R, const sop_step *st, int need_hit, int left, char **value,
                             int *is_date, cdp_handle **e, double *x, double *y, cJSON **info)
{
    *e = NULL;
    if (info)
        *info = NULL;
    if (!(*value = value_of(R, st, is_date)))
        return -1;
    sop_locator field = field_loc(st);
    if (loc_actionable_info(R, st, &field, need_hit, left, e, x, y, info) == 0)
        return 0;
    free(*value);
    *value = NULL;
    return -1;
}

static int only_digits_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a && (*a < '0' || *a > '9'))
            a++;
        while (*b && (*b < '0' || *b > '9'))
            b++;
        if (*a != *b)
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}

/* Does a field showing got hold want? (a mask may reformat: compare the
 * digits then) */
static int field_took(const char *got, const char *want)
{
    return !strcmp(got, want) || (only_digits_equal(got, want) && strpbrk(want, "0123456789"));
}

/* Clicks e at (x, y) for the keys that follow. A click that moves the
 * focus into another frame (an out-of-process one above all) is sometimes
 * not taken while that frame settles: as a person would, click again when
 * the field did not get the keyboard. A field that never shows it (a
 * custom control that keeps the focus elsewhere) is typed into all the
 * same, and its read-back judges the step. */
static int click_to_type(run *R, const cdp_handle *e, double x, double y, char *err)
{
    for (int click = 0; click < 2; click++) {
        if (cdp_input_click(R->page, x, y, err))
            return -1;
        for (int i = 0; i < 5; i++) {
            char ferr[ERR_SIZE];
            cJSON *f = dom_on(e, "hasFocus", NULL, ferr);
            int has = cJSON_IsTrue(f);
            cJSON_Delete(f);
            if (has || R->stop)
                return 0;
            pt_sleep_ms(10 * (i + 1));
        }
    }
    return 0;
}

static int step_fill(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    int is_date = 0;
    char *value;
    cdp_handle *e;
    double x, y;
    int rc = -1;
    /* date inputs are typed segment by segment from the first: click left */
    cJSON *info;
    if (value_and_element(R, st, 1, 1, &value, &is_date, &e, &x, &y, &info))
        return -1;
    traj_guard(R, st, e, value);
    char type[32]; /* copied: info is freed before the read-back below */
    snprintf(type, sizeof(type), "%s", pt_json_str(info, "type") ? pt_json_str(info, "type") : "");
    const char *tag = pt_json_str(info, "tag") ? pt_json_str(info, "tag") : "";
    int editable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "editable"));
    if (strcmp(tag, "input") && strcmp(tag, "textarea") && !editable) {
        fail_not_field(R, st, info,
                       "a field one can type in (use choose for custom dropdowns, select for "
                       "<select>)");
        cJSON_Delete(info);
        goto out;
    }
    if (click_to_type(R, e, x, y, err)) {
        run_fail(R, st, "%s", err);
        cJSON_Delete(info);
        goto out;
    }
    char iso[11] = "", hhmm[8] = "";
    int is_time = !strcmp(type, "time"), is_dt = !strcmp(type, "datetime-local");
    if (!strcmp(type, "date") || is_time || is_dt) {
        /* inserted text is ignored by native date and time inputs: type the
         * digits segment by segment in the browser's own order */
        char digits[32];
        R->field = info;
        int k = keys_datetime(R, value, is_time ? 0 : 1, is_time || is_dt, iso, hhmm, digits,
                              sizeof(digits), err);
        R->field = NULL;
        if (k < 0) {
            run_fail(R, st, "%s", err);
            cJSON_Delete(info);
            goto out;
        }
        /* a year segment takes up to six digits: after the date, move on
         * to the time with an arrow key */
        char *bar = strchr(digits, '|');
        if (bar)
            *bar = '\0';
        if ((rc = keys_type(R, digits, err)) || (bar && (rc = keys_press(R, "ArrowRight", err))) ||
            (bar && (rc = keys_type(R, bar + 1, err)))) {
            run_fail(R, st, "%s", err);
            cJSON_Delete(info);
            goto out;
        }
    } else {
        char formatted[32];
        const char *text = value;
        if (is_date && vars_normalize_date(value, iso) == 0) {
            keys_date_for_field(
                iso, pt_json_str(info, "placeholder") ? pt_json_str(info, "placeholder") : "",
                formatted, sizeof(formatted));
            text = formatted;
        }
        if ((rc = cdp_input_replace(R->page, text, err))) {
            run_fail(R, st, "%s", err);
            cJSON_Delete(info);
            goto out;
        }
        if (text != value) {
            free(value);
            value = strdup(text);
        }
    }
    cJSON_Delete(info);
    /* did the field take it? (a mask may reformat: compare digits then) */
    cJSON *now = dom_on(e, "value", NULL, err);
    const char *got = cJSON_IsString(now) ? now->valuestring : "";
    char want_dt[32];
    snprintf(want_dt, sizeof(want_dt), "%s%s%s", is_time ? "" : iso, is_dt ? "T" : "", hhmm);
    int ok =
        !strcmp(type, "date") || is_time || is_dt ? !strcmp(got, want_dt) : field_took(got, value);
    cJSON_Delete(now);
    if (!ok) {
        run_fail(R, st,
                 "the field did not take the value (it shows something else: a mask or a "
                 "script changed it)");
        goto out;
    }
    rc = 0;
out:
    cdp_handle_release(e);
    free(value);
    return rc;
}

/* Whether the press on the option landed on it: 1 yes, 0 something else
 * took it (a dialog that came up over the list between the look and the
 * press), -1 cannot tell (then it is taken as landed). */
static int option_was_hit(run *R)
{
    char err[ERR_SIZE];
    dom_out h;
    if (dom_call(R, R->depth, NULL, "hitResult", NULL, 1, &h, 3000, err) != 0)
        return -1;
    int rc = cJSON_IsTrue(h.value) ? 1 : 0;
    cJSON_Delete(h.value);
    return rc;
}

/* One try at choose: 0 chosen, -1 failed (run_fail said why), 1 the press
 * on the option went elsewhere, or a handler dealt with what covered the
 * list (nothing was chosen: try again). */
static int choose_once(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *value;
    cdp_handle *e;
    double x, y;
    int rc = -1;
    cJSON *info;
    int64_t until = pt_mono_ms() + run_timeout(R, st);
again:
    if (value_and_element(R, st, 1, 0, &value, NULL, &e, &x, &y, &info))
        return -1;
    /* the list's points are in this frame's viewport; the combobox was
     * hit-tested through the frames, so shift them by the same offset */
    double dx = dom_num(info, "frameDx"), dy = dom_num(info, "frameDy");
    cJSON_Delete(info);
    if (cdp_input_click(R->page, x, y, err)) {
        run_fail(R, st, "%s", err);
        goto out;
    }
    /* a searchable one takes typing: filter the list as a person would */
    dom_out f;
    if (dom_call(R, R->depth, NULL, "focused", NULL, 1, &f, 3000, err) == 0) {
        const char *tag = pt_json_str(f.value, "tag"), *type = pt_json_str(f.value, "type");
        if (tag && !strcmp(tag, "input") && type &&
            (!*type || !strcmp(type, "text") || !strcmp(type, "search")))
            cdp_input_insert_text(R->page, value, err);
        cJSON_Delete(f.value);
    }
    /* then the option with that text, wherever the list was put */
    int timeout = run_timeout(R, st);
    waiting w;
    run_wait_begin(R, &w, st, timeout, "an option in the list");
    for (;;) {
        if (R->stop)
            goto out;
        cJSON *args = cJSON_CreateArray();
        cJSON_AddItemToArray(args, cdp_arg(cJSON_CreateString(value)));
        dom_out o;
        if (dom_call(R, R->depth, NULL, "option", args, 1, &o, 3000, err) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o.value, "ok"))) {
            double ox = dom_num(o.value, "x"), oy = dom_num(o.value, "y");
            cJSON_Delete(o.value);
            /* something of an outer document may have come over the list
             * meanwhile (a session warning): a click there would miss the
             * option and leave nothing chosen. Let the handlers deal with
             * it, and choose again. */
            char why[ERR_SIZE];
            if (R->depth > 0 && loc_hit_through_frames(R, &ox, &oy, why, sizeof(why)) &&
                pt_mono_ms() < until) {
                cdp_handle_release(e);
                free(value);
                if (run_handlers(R) < 0 || R->stop)
                    return -1;
                run_wait_begin(R, &w, st, 500, "the page over the list");
                run_wait_change(R, &w, WAIT_CAP_MS, NULL);
                goto again;
            }
            if (R->depth == 0)
                ox += dx, oy += dy;
            rc = cdp_input_click(R->page, ox, oy, err);
            if (rc)
                run_fail(R, st, "%s", err);
            else if (option_was_hit(R) == 0)
                rc = 1;
            goto out;
        }
        cJSON_Delete(o.value);
        /* a `whenever` dialog may have come up over the list, or taken the
         * press that was to open it: once it is dealt with, the list is
         * opened again */
        int fired = run_handlers(R);
        if (fired != 0) {
            rc = fired < 0 ? -1 : 1;
            goto out;
        }
        if (run_wait_over(&w)) {
            /* the SOP's template, not the value: task data may be PHI */
            run_fail(R, st, "no option with the text of %s%s%s appeared in the list for %d s",
                     st->value.is_var ? "{{" : "\"", st->value.text ? st->value.text : "",
                     st->value.is_var ? "}}" : "\"", (timeout + 999) / 1000);
            goto out;
        }
        run_wait_change(R, &w, WAIT_CAP_MS, NULL);
    }
out:
    cdp_handle_release(e);
    free(value);
    return rc;
}

/* A custom dropdown: open it, then press the option. A press that
 * something else took (a `whenever` dialog that came up over the list)
 * chose nothing: the handlers get their turn and it is tried again. */
static int step_choose(run *R, const sop_step *st)
{
    for (int tries = 1;; tries++) {
        int rc = choose_once(R, st);
        if (rc <= 0)
            return rc;
        if (tries == 3) {
            run_fail(R, st, "the press on the option landed on something else, %d times: "
                            "something covers the list as it opens", tries);
            return -1;
        }
        PT_DEBUG("agent", "%s:%d: nothing was chosen (the list was covered); again", st->file,
                 st->line);
        if (run_handlers(R) < 0 || R->stop)
            return -1;
    }
}

static int step_select(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *value;
    cdp_handle *e;
    double x, y;
    int rc = -1;
    cJSON *info;
    if (value_and_element(R, st, 0, 0, &value, NULL, &e, &x, &y, &info))
        return -1;
    if (!info || strcmp(pt_json_str(info, "tag") ? pt_json_str(info, "tag") : "", "select") != 0) {
        run_fail(R, st, "%s is not a <select> (use choose for custom dropdowns)",
                 info && pt_json_str(info, "describe") ? pt_json_str(info, "describe")
                                                       : "the element");
        cJSON_Delete(info);
        goto out;
    }
    cJSON_Delete(info);
    cJSON *extra = cJSON_CreateArray();
    cJSON_AddItemToArray(extra, cdp_arg(cJSON_CreateString(value)));
    cJSON *res = dom_on(e, "selectOption", extra, err);
    if (!res || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "ok"))) {
        char list[512] = "";
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(res, "options"))
        {
            if (cJSON_IsString(o) && strlen(list) + strlen(o->valuestring) + 4 < sizeof(list))
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                         *list ? ", " : "", o->valuestring);
        }
        run_fail(R, st, "no option matches the value; the options are %s", list);
    } else
        rc = 0;
    cJSON_Delete(res);
out:
    cdp_handle_release(e);
    free(value);
    return rc;
}

static int check(run *R, const sop_step *st, int want)
{
    char err[ERR_SIZE];
    cdp_handle *e = NULL;
    double x, y;
    cJSON *info, *c = NULL;
    sop_locator field = field_loc(st);
    if (loc_actionable_info(R, st, &field, 1, 0, &e, &x, &y, &info) < 0)
        return -1;
    int rc = -1;
    int was = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "checked"));
    cJSON_Delete(info);
    if (was == want) {
        rc = 0; /* already so */
    } else if (cdp_input_click(R->page, x, y, err)) {
        run_fail(R, st, "%s", err);
    } else {
        waiting w;
        run_wait_begin(R, &w, st, 2000, "the box to change");
        for (;;) {
            if (R->stop)
                break;
            cJSON_Delete(c);
            c = dom_on(e, "checked", NULL, err);
            if (cJSON_IsBool(c) && cJSON_IsTrue(c) == want) {
                rc = 0;
                break;
            }
            if (run_wait_over(&w)) {
                run_fail(R, st, "clicked, but it is still %s", want ? "unchecked" : "checked");
                break;
            }
            run_wait_change(R, &w, WAIT_BOX_MS, NULL);
        }
    }
    cJSON_Delete(c);
    cdp_handle_release(e);
    return rc;
}

/* A drop zone with no file input: the files are dropped onto it, once a
 * person could drop there. */
static int drop_files(run *R, const sop_step *st, const char *const *files, size_t n)
{
    char err[ERR_SIZE];
    cdp_handle *z = NULL;
    double x, y;
    if (loc_actionable(R, st, &st->loc, 1, 0, &z, &x, &y) < 0)
        return -1;
    int rc = cdp_input_drop_files(R->page, x, y, files, n, err);
    if (rc)
        run_fail(R, st, "%s", err);
    cdp_handle_release(z);
    return rc;
}

static int step_upload(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char **files = calloc(R->o->nfiles ? R->o->nfiles : 1, sizeof(*files));
    size_t n = 0;
    cdp_handle *e = NULL;
    int rc = -1;
    if (!files) {
        run_fail(R, st, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < R->o->nfiles; i++) {
        const char *f = R->o->files[i];
        const char *base = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;
        if (st->file_name && strcmp(base, st->file_name) != 0)
            continue;
        if (!(files[n] = realpath(f, NULL))) {
            run_fail(R, st, "task file %s cannot be read", base);
            goto out;
        }
        n++;
    }
    if (!n) {
        run_fail(R, st, st->file_name ? "the task has no file named %s" : "the task has no files%s",
                 st->file_name ? st->file_name : "");
        goto out;
    }
    /* file inputs are often hidden behind a styled button: no hit test */
    sop_step file_step = *st; /* the same step, its locator preferring file inputs */
    file_step.loc.file = 1;
    if (loc_present(R, &file_step, &e) < 0)
        goto out;
    cJSON *is = dom_on(e, "isFile", NULL, err);
    int ok = cJSON_IsTrue(is);
    cJSON_Delete(is);
    if (!ok)
        rc = drop_files(R, &file_step, (const char *const *)files, n);
    else if (cdp_handle_set_files(e, (const char *const *)files, n, err))
        run_fail(R, st, "%s", err);
    else
        rc = 0;
out:
    cdp_handle_release(e);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    return rc;
}

/* The part of text the step's /regex/ picks (its first group, if any), or
 * all of it without one: a new string, or NULL when it does not match. */
static char *regex_pick(const char *regex, const char *text)
{
    int code;
    PCRE2_SIZE off;
    char *m = NULL;
    if (!regex)
        return strdup(text);
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
    int n = md ? pcre2_match(re, (PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) : -1;
    if (n >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int g = n > 1 ? 1 : 0;
        m = strndup(text + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return m;
}

/* One look for an extract that reads text: the first visible, non-empty
 * match of its locator, or the page's text. A new string, or NULL when not
 * there yet (*why says what is missing). */
static char *extract_look(run *R, const sop_step *st, char *why, size_t whysz)
{
    char err[ERR_SIZE], lt[512];
    cJSON *args = cJSON_CreateArray();
    if (!st->from_page) {
        cJSON *lj = dom_locator(R, &st->loc, err);
        if (!lj) {
            cJSON_Delete(args);
            snprintf(why, whysz, "%s", err);
            return NULL;
        }
        cJSON_AddItemToArray(args, cdp_arg(lj));
    }
    dom_out o;
    if (dom_call(R, R->depth, NULL, st->from_page ? "pageText" : "firstText", args, 1, &o, 3000,
                 err)) {
        snprintf(why, whysz, "%s", err);
        return NULL;
    }
    char *text = cJSON_IsString(o.value) ? strdup(o.value->valuestring) : NULL;
    if (!text && !st->from_page) {
        loc_text(&st->loc, lt, sizeof(lt));
        snprintf(why, whysz,
                 cJSON_IsFalse(o.value) ? "no element %s matches is visible"
                                        : "no element matches %s",
                 lt);
    }
    cJSON_Delete(o.value);
    if (text)
        loc_snapshot(R, R->depth);
    char *m = text ? regex_pick(st->regex, text) : NULL;
    if (text && !m)
        snprintf(why, whysz, "/%s/ is not in the text of %s", st->regex,
                 st->from_page ? "the page" : (loc_text(&st->loc, lt, sizeof(lt)), lt));
    free(text);
    return m;
}

/* The text an extract reads, waiting for it: a new string, or NULL when
 * the step failed. */
static char *extract_text(run *R, const sop_step *st)
{
    char why[ERR_SIZE] = "";
    int timeout = run_timeout(R, st);
    waiting w;
    run_wait_begin(R, &w, st, timeout, "text to extract");
    for (;;) {
        if (R->stop)
            return NULL;
        char *t = extract_look(R, st, why, sizeof(why));
        if (t)
            return t;
        if (run_wait_over(&w)) {
            run_fail(R, st, "%s for %d s", why, (timeout + 999) / 1000);
            return NULL;
        }
        if (run_handlers(R) < 0 || R->stop)
            return NULL;
        run_wait_change(R, &w, WAIT_CAP_MS, NULL);
    }
}

/* An attribute, a field's value or the nth match's text: the one element
 * the locator names. A new string, or NULL when the step failed. */
static char *extract_one(run *R, const sop_step *st)
{
    char err[ERR_SIZE], lt[512];
    cdp_handle *e = NULL;
    if (loc_present(R, st, &e) < 0)
        return NULL;
    cJSON *extra = NULL;
    const char *op = "text";
    if (st->attribute && !strcmp(st->attribute, "value"))
        op = "value";
    else if (st->attribute) {
        op = "attr";
        extra = cJSON_CreateArray();
        cJSON_AddItemToArray(extra, cdp_arg(cJSON_CreateString(st->attribute)));
    }
    cJSON *v = dom_on(e, op, extra, err);
    cdp_handle_release(e);
    char *text = regex_pick(st->regex, cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(v);
    if (!text) {
        loc_text(&st->loc, lt, sizeof(lt));
        run_fail(R, st, "/%s/ is not in the text of %s", st->regex, lt);
    }
    return text;
}

static int step_extract(run *R, const sop_step *st)
{
    char *text = st->from_page || (!st->attribute && !st->loc.nth) ? extract_text(R, st)
                                                                   : extract_one(R, st);
    if (!text)
        return -1;
    vars_set(R->v, st->name, text, 0);
    vars_set(R->r->outputs, st->name, text, 0);
    free(text);
    return 0;
}

static int step_wait(run *R, const sop_step *st)
{
    char err[ERR_SIZE] = "";
    int timeout = run_timeout(R, st);
    waiting w;
    run_wait_begin(R, &w, st, timeout, "the condition");
    for (;;) {
        if (run_handlers(R) < 0 || R->stop)
            return -1;
        int h = cond_holds(R, st->cond, R->depth, err);
        if (h > 0)
            return 0;
        if (h < 0 && cdp_browser_gone(cdp_session_browser(cdp_page_session(R->page)), NULL)) {
            run_fail(R, st, "%s", err);
            return -1;
        }
        if (run_wait_over(&w)) {
            run_fail(R, st, "not so after %d s", (timeout + 999) / 1000);
            return -1;
        }
        run_wait_change(R, &w, WAIT_CAP_MS, NULL);
    }
}

static int step_goto(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *url = value_of(R, st, NULL);
    if (!url)
        return -1;
    int rc = 0;
    int timeout = st->timeout_ms ? st->timeout_ms : 30000;
    if (cdp_page_navigate(R->page, url, CDP_WAIT_LOAD, timeout, err)) {
        /* no connection at all: a portal down, not a business failure */
        static const char *const gone[] = {"ERR_CONNECTION_REFUSED",    "ERR_NAME_NOT_RESOLVED",
                                           "ERR_CONNECTION_TIMED_OUT",  "ERR_ADDRESS_UNREACHABLE",
                                           "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION_RESET",
                                           "ERR_CONNECTION_CLOSED",     "ERR_TIMED_OUT",
                                           "ERR_NAME_RESOLUTION_FAILED"};
        for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
            R->r->unreachable |= strstr(err, gone[i]) != NULL;
        char *m = vars_mask(err, R->o->secrets);
        run_fail(R, st, "%s%s", R->r->unreachable ? "the portal could not be reached: " : "",
                 m ? m : err);
        free(m);
        rc = -1;
    }
    R->depth = 0; /* a new top document: frames entered before are gone */
    free(url);
    return rc;
}

static int step_click(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    cdp_handle *e = NULL;
    double x, y;
    int rc = loc_actionable(R, st, &st->loc, 1, 0, &e, &x, &y);
    if (!rc) {
        if ((rc = cdp_input_click(R->page, x, y, err)))
            run_fail(R, st, "%s", err);
        cdp_handle_release(e);
    }
    return rc;
}

/* What a text field shows now (a new string; "" when unreadable). */
static char *field_value(const cdp_handle *e)
{
    char err[ERR_SIZE];
    cJSON *v = dom_on(e, "value", NULL, err);
    char *s = strdup(cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(v);
    return s;
}

/* Did typing text into e (which showed before) arrive? 0, or -1 when the
 * step failed. */
static int typed_arrived(run *R, const sop_step *st, const cdp_handle *e, const char *before,
                         const char *text)
{
    char *got = field_value(e), *want = NULL;
    int ok = asprintf(&want, "%s%s", before, text) >= 0 &&
             (field_took(got, want) || field_took(got, text));
    free(want);
    free(got);
    if (ok)
        return 0;
    run_fail(R, st,
             "typed, but the field does not show it (it ignored the keys, a mask or a script "
             "changed it, or the click did not reach it)");
    return -1;
}

/* type: key by key into the field, then read it back as fill does (a
 * field that ignores keys, or a click that missed it, fails the step). */
static int step_type(run *R, const sop_step *st)
{
    char err[ERR_SIZE], formatted[32], iso[11];
    int is_date = 0, rc = -1;
    char *value, *before = NULL;
    cdp_handle *e;
    double x, y;
    cJSON *info;
    if (value_and_element(R, st, 1, 0, &value, &is_date, &e, &x, &y, &info))
        return -1;
    const char *tag = pt_json_str(info, "tag") ? pt_json_str(info, "tag") : "";
    const char *type = pt_json_str(info, "type") ? pt_json_str(info, "type") : "";
    /* native date and time inputs show a value in another form: fill them */
    int native_dt = !strcmp(type, "date") || !strcmp(type, "time") ||
                    !strcmp(type, "datetime-local") || !strcmp(type, "month") ||
                    !strcmp(type, "week");
    int readable = (!strcmp(tag, "input") && !native_dt) || !strcmp(tag, "textarea") ||
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "editable"));
    const char *text = value;
    if (is_date && readable && vars_normalize_date(value, iso) == 0) {
        const char *ph = pt_json_str(info, "placeholder");
        keys_date_for_field(iso, ph ? ph : "", formatted, sizeof(formatted));
        text = formatted;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "closed"))) {
        fail_not_field(R, st, info, "a field");
        goto out;
    }
    traj_guard(R, st, e, value);
    before = readable ? field_value(e) : NULL;
    if ((rc = click_to_type(R, e, x, y, err)) || (rc = keys_type(R, text, err)))
        run_fail(R, st, "%s", err);
    else if (readable)
        rc = typed_arrived(R, st, e, before, text);
out:
    cJSON_Delete(info);
    free(before);
    cdp_handle_release(e);
    free(value);
    return rc;
}

/* press "Key" presses that key (or types that one character); a template's
 * value is typed character by character. */
static int step_press(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    int rc;
    if (strstr(st->value.text, "{{")) {
        char *text = value_of(R, st, NULL);
        if (!text)
            return -1;
        rc = keys_type(R, text, err);
        free(text);
    } else
        rc = keys_press(R, st->value.text, err);
    if (rc)
        run_fail(R, st, "%s", err);
    return rc;
}

static int step_check(run *R, const sop_step *st)
{
    return check(R, st, 1);
}

static int step_uncheck(run *R, const sop_step *st)
{
    return check(R, st, 0);
}

static int step_expect(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    if (cond_holds(R, st->cond, R->depth, err) > 0)
        return 0;
    char *notes = vars_expand(st->value.text, R->v, R->o->secrets, dom_text_in_frame, R, 0, err);
    run_status(R, "failed", notes ? notes : st->value.text);
    free(notes);
    return -1;
}

static void step_if(run *R, const sop_step *st, cJSON *traj)
{
    char err[ERR_SIZE];
    int h = cond_holds(R, st->cond, R->depth, err);
    if (h < 0) {
        run_fail(R, st, "%s", err);
        traj_end(R, traj, !strcmp(R->r->status, "failed"), 0);
        return;
    }
    cJSON_AddBoolToObject(traj, "taken", h);
    traj_end(R, traj, 0, 0);
    run_block(R, h ? &st->body : &st->otherwise);
}

/* repeat until COND max N: the body runs while COND does not hold, N
 * times at most; still not so after N rounds fails the step. The body's
 * steps wait for what they change, so COND is looked at once per round,
 * after a first change (or the usual cap) for the page to show it. */
static void step_repeat(run *R, const sop_step *st, cJSON *traj)
{
    char err[ERR_SIZE];
    traj_end(R, traj, 0, 0);
    for (int round = 0;; round++) {
        int h = cond_holds(R, st->cond, R->depth, err);
        if (h < 0) {
            run_fail(R, st, "%s", err);
            return;
        }
        if (h > 0 || R->stop)
            return;
        if (round == st->max_rounds) {
            run_fail(R, st, "still not so after %d round%s", st->max_rounds,
                     st->max_rounds == 1 ? "" : "s");
            return;
        }
        run_block(R, &st->body);
        if (R->stop)
            return;
        waiting w;
        run_wait_begin(R, &w, st, WAIT_CAP_MS, "the page after a round");
        run_wait_change(R, &w, WAIT_CAP_MS, NULL);
    }
}

/* on dialog accept|dismiss: how the page answers native dialogs (alert,
 * confirm, prompt, beforeunload) from this step on; each answer is in the
 * trajectory's dialogs. */
static int step_on_dialog(run *R, const sop_step *st)
{
    cdp_page_set_dialog_answer(R->page, !st->dismiss, NULL);
    return 0;
}

/* Opens a kept session's URL and tells whether it is still signed in: 1, 0
 * (signed out, or the URL would not load), -1 when the run stopped. */
static int session_live(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *url = value_of(R, st, NULL);
    if (!url)
        return -1;
    int rc = cdp_page_navigate(R->page, url, CDP_WAIT_LOAD, run_timeout(R, st), err);
    free(url);
    R->depth = 0;
    if (rc) {
        PT_INFO("agent", "%s:%d: kept session: the session URL did not load; signing in again",
                st->file, st->line);
        return 0;
    }
    int h = cond_holds(R, st->cond, 0, err);
    return h == 1;
}

/* A used file that declares `session` (docs/sop.md, "Kept sessions"): in a
 * kept session that signed in before, its steps are skipped when the session
 * URL shows the portal still signed in; otherwise they run as written. */
static void step_use(run *R, const sop_step *st, cJSON *traj)
{
    agent_session *ks = R->o->session_once ? NULL : R->o->session;
    if (!ks) { /* one run, one context: the file is just its steps */
        traj_drop(R, traj);
        run_used(R, &st->body);
        return;
    }
    if (ks->signed_in) {
        int live = session_live(R, st);
        if (live < 0) {
            traj_end(R, traj, !strcmp(R->r->status, "failed"), 0);
            return;
        }
        if (live) {
            cJSON_AddStringToObject(traj, "session", "kept: still signed in, steps skipped");
            R->r->session_reused = 1;
            traj_end(R, traj, 0, 1);
            run_used_handlers(R, &st->body);
            return;
        }
        ks->signed_in = 0;
        cJSON_AddStringToObject(traj, "session", "kept but signed out: signing in again");
    } else {
        cJSON_AddStringToObject(traj, "session", "new: signing in");
    }
    traj_end(R, traj, 0, 0);
    run_used(R, &st->body);
    if (!R->stop)
        ks->signed_in = 1;
}

static void step_in_frame(run *R, const sop_step *st, cJSON *traj)
{
    char err[ERR_SIZE];
    if (R->depth + 1 >= MAX_FRAMES) {
        run_fail(R, st, "frames nested more than %d deep", MAX_FRAMES - 1);
        traj_end(R, traj, !strcmp(R->r->status, "failed"), 0);
        return;
    }
    waiting w;
    run_wait_begin(R, &w, st, run_timeout(R, st), "the frame");
    char *fid = NULL;
    /* the frame's element, or (healed) what its fingerprint matches */
    const sop_locator *loc = &st->loc;
    int64_t heal_at = pt_mono_ms() + HEAL_AFTER_MS;
    cJSON *saved_entry = R->entry;
    R->entry = traj;
    while (loc_frame(R, R->depth, loc, st, &fid, err) != 0) {
        if (loc == &st->loc && !R->r->committed && pt_mono_ms() >= heal_at &&
            strstr(err, "no frame element matches")) {
            const sop_locator *h = loc_heal(R, st, &st->loc, NULL, 0);
            heal_at = pt_mono_ms() + HEAL_AFTER_MS;
            if (h) {
                loc = h;
                continue;
            }
        }
        if (run_wait_over(&w) || run_handlers(R) < 0 || R->stop) {
            if (!R->stop) {
                char healed[1024] = "";
                loc_heal_after_commit(R, st, &st->loc, healed, sizeof(healed));
                run_fail(R, st, "%s%s", err, healed);
            }
            R->entry = saved_entry;
            traj_end(R, traj, !strcmp(R->r->status, "failed"), 0);
            return;
        }
        run_wait_change(R, &w, WAIT_CAP_MS, NULL);
    }
    if (loc != &st->loc)
        loc_healed(R, st, loc);
    R->entry = saved_entry;
    traj_end(R, traj, 0, 0);
    int saved = R->depth;
    R->depth++;
    R->stack[R->depth] = (framectx){fid, loc};
    run_block(R, &st->body);
    free(R->stack[R->depth].frame_id);
    R->stack[R->depth].frame_id = NULL;
    R->depth = saved;
}

static int step_screenshot(run *R, const sop_step *st)
{
    (void)R, (void)st; /* the loop takes it: the step `changes` the page */
    return 0;
}

static int step_ask(run *R, const sop_step *st)
{
    const char *answer = vars_get(R->o->answers, st->name);
    char *got = NULL;
    if (!answer && R->o->ask &&
        R->o->ask(R->o->hook_ud, st->name, st->value.text ? st->value.text : "", &got) == 0 && got)
        answer = got;
    if (answer) {
        vars_set(R->v, st->name, answer, 0);
        pt_log_mask(answer);
        traj_asked(R, st->name);
        free(got);
    } else if (R->o->cancelled && R->o->cancelled(R->o->hook_ud)) {
        run_status(R, "failed", "Cancelled while waiting for input.");
    } else {
        free(R->r->ask_name);
        free(R->r->ask_prompt);
        R->r->ask_name = strdup(st->name);
        R->r->ask_prompt = strdup(st->value.text ? st->value.text : "");
        run_status(R, "waiting_for_input", st->value.text);
    }
    return 0;
}

static int step_review(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *msg = vars_expand(st->value.text ? st->value.text : "", R->v, R->o->secrets,
                            dom_text_in_frame, R, 0, err);
    const char *what = msg ? msg : st->value.text ? st->value.text : "";
    if (!R->o->approve) {
        char *comment = NULL;
        int d = R->o->review ? R->o->review(R->o->hook_ud, what, &comment) : 2;
        if (d == 0) {
            char *notes = NULL;
            if (asprintf(&notes, "Rejected in review%s%s", comment && *comment ? ": " : ".",
                         comment && *comment ? comment : "") < 0)
                notes = NULL;
            run_status(R, "failed", notes ? notes : "Rejected in review.");
            free(notes);
        } else if (d != 1) {
            if (R->o->cancelled && R->o->cancelled(R->o->hook_ud))
                run_status(R, "failed", "Cancelled while pending review.");
            else
                run_status(R, "pending_review", what);
        }
        free(comment);
    }
    free(msg);
    return 0;
}

static int step_commit(run *R, const sop_step *st)
{
    if (R->o->on_commit && !R->r->committed && R->o->on_commit(R->o->hook_ud) != 0) {
        run_fail(R, st,
                 "the commit point could not be recorded, so the run stopped before the steps "
                 "that submit; nothing was submitted");
        return -1;
    }
    R->r->committed = 1;
    return 0;
}

static int step_finish(run *R, const sop_step *st)
{
    char err[ERR_SIZE];
    char *notes = st->value.text ? vars_expand(st->value.text, R->v, R->o->secrets,
                                               dom_text_in_frame, R, 0, err)
                                 : strdup("");
    if (!notes) {
        run_fail(R, st, "%s", err);
        return -1;
    }
    run_status(R, st->name, notes);
    free(notes);
    return 0;
}

/* What each kind runs, and whether the page may look different after it
 * (then the trajectory takes a screenshot; `finish`: the page as it was
 * left, what a person looks at first). */
static const step_kind table[] = {
    [SOP_GOTO] = {step_goto, NULL, STEP_CHANGES},
    [SOP_CLICK] = {step_click, NULL, STEP_CHANGES},
    [SOP_FILL] = {step_fill, NULL, STEP_FIELD},
    [SOP_TYPE] = {step_type, NULL, STEP_FIELD},
    [SOP_PRESS] = {step_press, NULL, STEP_CHANGES},
    [SOP_SELECT] = {step_select, NULL, STEP_FIELD},
    [SOP_CHOOSE] = {step_choose, NULL, STEP_FIELD},
    [SOP_CHECK] = {step_check, NULL, STEP_FIELD},
    [SOP_UNCHECK] = {step_uncheck, NULL, STEP_FIELD},
    [SOP_UPLOAD] = {step_upload, NULL, STEP_FIELD},
    [SOP_WAIT] = {step_wait, NULL, STEP_LOOKS},
    [SOP_EXTRACT] = {step_extract, NULL, STEP_LOOKS},
    [SOP_EXPECT] = {step_expect, NULL, STEP_LOOKS},
    [SOP_IF] = {NULL, step_if, STEP_LOOKS},
    [SOP_WHENEVER] = {NULL, NULL, STEP_LOOKS},
    [SOP_IN_FRAME] = {NULL, step_in_frame, STEP_LOOKS},
    [SOP_SCREENSHOT] = {step_screenshot, NULL, STEP_CHANGES},
    [SOP_ASK] = {step_ask, NULL, STEP_LOOKS},
    [SOP_REVIEW] = {step_review, NULL, STEP_LOOKS},
    [SOP_COMMIT] = {step_commit, NULL, STEP_LOOKS},
    [SOP_FINISH] = {step_finish, NULL, STEP_CHANGES},
    [SOP_USE] = {NULL, step_use, STEP_LOOKS},
    [SOP_REPEAT] = {NULL, step_repeat, STEP_LOOKS},
    [SOP_ON_DIALOG] = {step_on_dialog, NULL, STEP_LOOKS},
};

const step_kind *step_kind_of(sop_step_kind kind)
{
    static const step_kind none = {NULL, NULL, STEP_LOOKS};
    if ((size_t)kind >= sizeof(table) / sizeof(table[0]))
        return &none;
    return &table[kind];
}
