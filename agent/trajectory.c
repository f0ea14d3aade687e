/*
 * trajectory.c - what a run leaves for a person to look at (see run.h):
 * an entry per step (what it was, where, when, how it ended), screenshots
 * when the page changed or a step failed, the failing frame's DOM, and the
 * files trajectory.json and trajectory.html (one page, screenshots inline).
 *
 * It owns the trajectory's format and files. It must never write a secret
 * (every text from the page or the SOP is masked first) and never decides a
 * run's outcome.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "agent/run.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/fsutil.h"
#include "util/timeutil.h"
#include "util/json.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Screenshots are JPEG (a tenth of a PNG's bytes, and quicker to encode;
 * text stays readable) and taken off the critical path: traj_end sends
 * the capture and the run goes on; the picture is collected when the next
 * one is due or the trajectory is written. cdp/ holds the page's input
 * and navigations until the capture is answered, so the picture is of the
 * step that took it, and waits for a navigation the step started (a click
 * on a link) to load: a capture that meets one is never left to time out. */
#define SHOT_QUALITY 70
#define SHOT_TIMEOUT_MS 10000

/* ---- Masking ---------------------------------------------------------------
 * A field that receives a secret, a one-time code or an `ask` answer (or
 * that the SOP marks `sensitive`) is marked in its document (dom.js
 * sensitiveMark) as it is filled. Every screenshot from then on is taken
 * with the marked fields masked (sensitiveMask before the capture,
 * sensitiveUnmask once it is answered), and the values themselves are
 * masked in the failure DOM and in every text of the trajectory
 * (mask_json). */

/* Whether a template names a secret, a one-time code or an answer. */
static int template_sensitive(const run *R, const char *t)
{
    for (const char *o = strstr(t, "{{"); o; o = strstr(o + 2, "{{")) {
        const char *name = o + 2;
        while (*name == ' ')
            name++;
        if (!strncmp(name, "secret.", 7) || !strncmp(name, "totp.", 5))
            return 1;
        size_t n = strcspn(name, " }");
        char var[128];
        snprintf(var, sizeof(var), "%.*s", (int)(n < sizeof(var) ? n : sizeof(var) - 1), name);
        if ((R->asked && vars_get(R->asked, var)) || vars_get(R->o->answers, var))
            return 1;
    }
    return 0;
}

static int value_sensitive(const run *R, const sop_step *st)
{
    if (st->sensitive)
        return 1;
    if (!st->value.text)
        return 0;
    if (!st->value.is_var)
        return template_sensitive(R, st->value.text);
    return (R->asked && vars_get(R->asked, st->value.text)) ||
           vars_get(R->o->answers, st->value.text) != NULL;
}

void traj_asked(run *R, const char *name)
{
    if (!R->asked)
        R->asked = vars_new();
    vars_set(R->asked, name, "", 0);
}

void traj_guard(run *R, const sop_step *st, const cdp_handle *e, const char *value)
{
    if (!R->o->trajectory_dir || !value_sensitive(R, st))
        return;
    char err[ERR_SIZE], name[32];
    cJSON *n = dom_on(e, "sensitiveMark", NULL, err);
    if (!n)
        PT_DEBUG("agent", "step %d: the field cannot be marked sensitive: %s", R->index, err);
    cJSON_Delete(n);
    if (!R->hidden)
        R->hidden = vars_new();
    snprintf(name, sizeof(name), "v%zu", vars_count(R->hidden));
    if (*value)
        vars_set(R->hidden, name, value, 0);
    const char *frame = R->stack[R->depth].frame_id;
    for (int i = 0; i < R->nmask_frames; i++)
        if (frame ? R->mask_frames[i] && !strcmp(R->mask_frames[i], frame) : !R->mask_frames[i])
            return;
    if (R->nmask_frames < MAX_FRAMES) {
        R->mask_frames[R->nmask_frames++] = frame ? strdup(frame) : NULL;
    }
}

/* Masks (on) or unmasks every marked field, in every frame that has one.
 * A frame whose document no longer has a marked field (it navigated) is
 * forgotten: its fields went with it, and no later capture
 * pays for a look there. */
static void mask_fields(run *R, int on)
{
    if (!R->nmask_frames || R->masked == on)
        return;
    char err[ERR_SIZE];
    for (int i = 0; i < R->nmask_frames; i++) {
        cJSON *n = dom_in_frame(R, R->mask_frames[i], on ? "sensitiveMask" : "sensitiveUnmask", err);
        if (!n) /* gone or navigating: tried again at the next capture */
            PT_DEBUG("agent", "step %d: masking in a frame: %s", R->index, err);
        if (on && cJSON_IsNumber(n) && n->valueint == 0) {
            free(R->mask_frames[i]);
            R->mask_frames[i--] = R->mask_frames[--R->nmask_frames];
        }
        cJSON_Delete(n);
    }
    R->masked = on && R->nmask_frames;
}

void traj_free(run *R)
{
    vars_free(R->asked);
    vars_free(R->hidden);
    for (int i = 0; i < R->nmask_frames; i++)
        free(R->mask_frames[i]);
    R->asked = R->hidden = NULL;
    R->nmask_frames = 0;
}

/* Text for the trajectory: the secrets and the sensitive values masked
 * (a new string, or NULL). */
static char *masked_text(const run *R, const char *text)
{
    char *a = vars_mask(text, R->o->secrets);
    if (!a || !R->hidden)
        return a;
    char *b = vars_mask(a, R->hidden);
    free(a);
    return b;
}

/* Keys whose strings the trajectory makes from its own words (a step's
 * kind, an outcome, a time, a file it wrote): no page or SOP text, and
 * read back by name, so they are left as they are. */
static int own_key(const char *key)
{
    static const char *const own[] = {"file",       "step",     "variable",   "outcome",
                                      "started_at", "ended_at", "screenshot", "dom",
                                      "frame_id",   "status",   "type"};
    for (size_t i = 0; key && i < sizeof(own) / sizeof(own[0]); i++)
        if (!strcmp(key, own[i]))
            return 1;
    return 0;
}

/* Masks the secrets and the sensitive values in every string of `node`
 * (an entry or the whole trajectory), at any depth: the one place the
 * trajectory's texts are masked, so a field added later is masked too.
 * Called as an entry begins and ends (a one-time code is recognised only
 * near its time) and once more as the trajectory is written (a value can
 * become sensitive after an entry that shows it: `fill ... sensitive`). */
static void mask_json(const run *R, cJSON *node)
{
    cJSON *c;
    cJSON_ArrayForEach(c, node)
    {
        if (own_key(c->string))
            continue;
        if (cJSON_IsString(c)) {
            char *m = masked_text(R, c->valuestring);
            if (m && strcmp(m, c->valuestring))
                cJSON_SetValuestring(c, m);
            free(m);
        } else
            mask_json(R, c);
    }
}

/* Writes one of the trajectory's files: through the host's sink, or as a
 * plain file in the trajectory folder (portier run --trajectory DIR). */
static int traj_put(run *R, const char *name, const void *data, size_t len)
{
    const agent_traj_sink *k = R->o->traj_sink;
    if (k)
        return k->write(k->ud, name, data, len);
    char path[4300];
    snprintf(path, sizeof(path), "%s/%s", R->o->trajectory_dir, name);
    return pt_write_file(path, data, len, 0600);
}

/* Reads back a file traj_put wrote (a new buffer). */
static int traj_get(run *R, const char *name, size_t max, char **data, size_t *len)
{
    const agent_traj_sink *k = R->o->traj_sink;
    if (k)
        return k->read(k->ud, name, max, data, len);
    char path[4300];
    snprintf(path, sizeof(path), "%s/%s", R->o->trajectory_dir, name);
    return pt_read_file(path, max, data, len);
}

/* Ends the screenshot in flight: its file in the entries it is of, or
 * why not. A step it was taken after says so (screenshot_after). */
static void shot_collect(run *R)
{
    if (!R->shot)
        return;
    unsigned char *img = NULL;
    size_t len = 0;
    char err[ERR_SIZE], name[64];
    int rc = cdp_capture_finish(R->shot, &img, &len, err);
    R->shot = NULL;
    mask_fields(R, 0);
    if (!rc) {
        snprintf(name, sizeof(name), "step-%03d.jpg", R->shot_index);
        if (traj_put(R, name, img, len) != 0)
            rc = pt_errf(err, "cannot write %s", name);
    }
    if (rc)
        PT_DEBUG("agent", "step %d: no screenshot: %s", R->shot_index, err);
    for (int i = 0; i < R->nshot_entries; i++) {
        cJSON *e = R->shot_entries[i];
        cJSON_AddStringToObject(e, rc ? "screenshot_error" : "screenshot", rc ? err : name);
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(e, "index");
        if (!rc && cJSON_IsNumber(ix) && ix->valueint != R->shot_index)
            cJSON_AddNumberToObject(e, "screenshot_after", R->shot_index);
    }
    free(img);
    R->nshot_entries = 0;
}

/* Starts the screenshot of the deferred entries (the last of them is step
 * R->shot_index); wait: collect it now. */
static void shot_take(run *R, int wait)
{
    char err[ERR_SIZE];
    mask_fields(R, 1);
    if (cdp_page_capture_begin(R->page, 0, SHOT_QUALITY, SHOT_TIMEOUT_MS, &R->shot, err)) {
        mask_fields(R, 0);
        PT_DEBUG("agent", "step %d: no screenshot: %s", R->shot_index, err);
        for (int i = 0; i < R->nshot_entries; i++)
            cJSON_AddStringToObject(R->shot_entries[i], "screenshot_error", err);
        R->nshot_entries = R->ndeferred = R->deferred_change = 0;
        return;
    }
    R->ndeferred = 0;
    R->deferred_change = 0;
    if (wait)
        shot_collect(R);
}

/* Entry e (step R->index) is to have a picture. It is deferred, and the
 * picture taken when a step begins (traj_begin) that could make it show
 * something else than what the step left:
 * - a form's fields (STEP_FIELD) share one, deferred until a step that is
 *   not a field or a read begins, so a claim's nine fields cost one
 *   capture, not nine, and every value typed is in it;
 * - a click, a key press or a navigation (STEP_CHANGES) waits only across
 *   reads (wait, if, extract, in frame, ...): its picture is then of what
 *   the step led to once the page got there (the frame it opened, loaded;
 *   the reference a submit brought), and a submit followed by the reads
 *   of its outcome and `finish` costs one capture, not two.
 * A failure (wait), an explicit `screenshot` and `finish` are captured now,
 * with the deferred entries. The capture runs off the critical path: the
 * picture is collected when the next one is due or the trajectory is
 * written. */
static void shot(run *R, cJSON *entry, int kind, int wait)
{
    if (!R->o->trajectory_dir)
        return;
    if (!R->ndeferred)
        shot_collect(R); /* the one in flight, before its entries are reused */
    if (R->nshot_entries == MAX_SHOT_ENTRIES)
        shot_take(R, 0), shot_collect(R);
    R->shot_entries[R->nshot_entries++] = entry;
    R->ndeferred++;
    R->shot_index = R->index;
    int now = R->cur && (R->cur->kind == SOP_SCREENSHOT || R->cur->kind == SOP_FINISH);
    if (wait || now)
        shot_take(R, wait);
    else if (kind != STEP_FIELD)
        R->deferred_change = 1;
}

/* Takes the picture the deferred entries wait for, before step st acts. */
static void shot_flush(run *R, const sop_step *st)
{
    if (!R->ndeferred)
        return;
    switch (st->kind) {
    case SOP_WAIT:
    case SOP_EXTRACT:
    case SOP_EXPECT:
    case SOP_IF:
    case SOP_IN_FRAME:
    case SOP_COMMIT:
    case SOP_ON_DIALOG:
    case SOP_WHENEVER:
    case SOP_FINISH: /* its own picture, taken as it ends, is theirs */
        return; /* reads, or no page at all: what the steps left stands */
    default:
        if (step_kind_of(st->kind)->changes == STEP_FIELD && !R->deferred_change)
            return;
        shot_take(R, 0);
    }
}

/* The frame a step ran in, as the SOP names it: the `in frame` locators
 * from the top down ("top" for the page itself); its CDP id beside it. */
static void traj_frame(run *R, cJSON *e)
{
    char path[1024] = "top", lt[256];
    for (int d = 1; d <= R->depth; d++) {
        if (!R->stack[d].iframe)
            continue;
        loc_text(R->stack[d].iframe, lt, sizeof(lt));
        snprintf(path + (d == 1 ? 0 : strlen(path)), sizeof(path) - (d == 1 ? 0 : strlen(path)),
                 "%s%s", d == 1 ? "" : " > ", lt);
    }
    cJSON_AddStringToObject(e, "frame", path);
    if (R->depth && R->stack[R->depth].frame_id)
        cJSON_AddStringToObject(e, "frame_id", R->stack[R->depth].frame_id);
}

/* How long since the step before it ended (ms): a long wait shows. */
static void traj_gap(run *R, cJSON *e)
{
    int n = cJSON_GetArraySize(R->traj_steps);
    const cJSON *last = n ? cJSON_GetArrayItem(R->traj_steps, n - 1) : NULL;
    const cJSON *ended = cJSON_GetObjectItemCaseSensitive(last, "ended_ms");
    if (cJSON_IsNumber(ended))
        cJSON_AddNumberToObject(e, "gap_ms", (double)(pt_wall_ms() - (int64_t)ended->valuedouble));
}

/* Whether template or variable `text` uses a value an `ask` in b gives. */
static int uses_answer(const sop_block *b, const char *text, int is_var)
{
    for (size_t i = 0; i < b->n; i++) {
        const sop_step *x = &b->steps[i];
        if (x->kind == SOP_ASK && x->name) {
            char ref[160];
            snprintf(ref, sizeof(ref), "{{%s}}", x->name);
            if (is_var ? !strcmp(text, x->name) : strstr(text, ref) != NULL)
                return 1;
        }
        if (uses_answer(&x->body, text, is_var) || uses_answer(&x->otherwise, text, is_var))
            return 1;
    }
    return 0;
}

/* What the step types, picks or visits, for a person: an answer to `ask`
 * as "***" (secrets and sensitive values are masked with the rest of the
 * entry). */
static void traj_value(run *R, const sop_step *st, cJSON *e)
{
    if (st->kind == SOP_EXTRACT && st->name)
        cJSON_AddStringToObject(e, "variable", st->name);
    if (!st->value.text || st->kind == SOP_ASK || st->kind == SOP_FINISH)
        return;
    char err[ERR_SIZE], *v = NULL;
    if (uses_answer(&R->s->steps, st->value.text, st->value.is_var)) {
        cJSON_AddStringToObject(e, "value", "***");
        return;
    }
    if (st->value.is_var) {
        const char *x = vars_get(R->v, st->value.text);
        v = strdup(vars_get(R->o->answers, st->value.text) ? "***" : x ? x : "");
    } else
        v = vars_expand(st->value.text, R->v, R->o->secrets, NULL, NULL, 1, err);
    if (v)
        cJSON_AddStringToObject(e, "value", v);
    free(v);
}

cJSON *traj_begin(run *R, const sop_step *st)
{
    shot_flush(R, st);
    R->index++;
    R->r->steps_run++;
    cJSON *e = cJSON_CreateObject();
    char ts[25];
    pt_iso8601(pt_wall_ms(), ts);
    cJSON_AddNumberToObject(e, "index", R->index);
    const char *base = strrchr(st->file, '/');
    cJSON_AddStringToObject(e, "file", base ? base + 1 : st->file);
    cJSON_AddNumberToObject(e, "line", st->line);
    cJSON_AddStringToObject(e, "action", st->source ? st->source : "");
    cJSON_AddStringToObject(e, "step", sop_step_name(st->kind));
    if (st->has_loc) {
        char lt[512];
        loc_text(&st->loc, lt, sizeof(lt));
        cJSON_AddStringToObject(e, "locator", lt);
    }
    traj_frame(R, e);
    cJSON_AddStringToObject(e, "started_at", ts);
    traj_gap(R, e);
    traj_value(R, st, e);
    if (R->in_handler)
        cJSON_AddBoolToObject(e, "handler", 1);
    mask_json(R, e);
    return e;
}

void traj_drop(run *R, cJSON *e)
{
    cJSON_Delete(e);
    R->index--;
    R->r->steps_run--;
}

/* The failing frame's HTML for failure-dom.html, masked, opened by a
 * comment with the failure (and its nearest candidates): a new string. */
static char *failure_page(run *R, const char *html)
{
    char *notes = strdup(R->r->notes ? R->r->notes : "");
    for (char *p = notes; p && (p = strstr(p, "--")) != NULL;)
        p[1] = '='; /* "--" may not appear in a comment */
    char *page = NULL;
    if (!notes || asprintf(&page, "<!-- portier: %s -->\n%s", notes, html) < 0)
        page = NULL;
    free(notes);
    char *masked = masked_text(R, page ? page : html);
    free(page);
    return masked;
}

void traj_end(run *R, cJSON *e, int failed, int changed)
{
    char ts[25];
    pt_iso8601(pt_wall_ms(), ts);
    cJSON_AddStringToObject(e, "ended_at", ts);
    cJSON_AddNumberToObject(e, "ended_ms", (double)pt_wall_ms());
    cJSON_AddStringToObject(e, "outcome", failed ? "failed" : "ok");
    const char *var = pt_json_str(e, "variable");
    const char *got = var && !failed ? vars_get(R->v, var) : NULL;
    if (got)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(e, "extracted"), var, got);
    if (failed && R->r->notes)
        cJSON_AddStringToObject(e, "error", R->r->notes);
    mask_json(R, e);
    if (changed || failed)
        shot(R, e, changed, failed);
    if (failed && R->o->trajectory_dir) {
        /* the failing frame's DOM, for a person to look at */
        char err[ERR_SIZE];
        cdp_session *s = NULL;
        cJSON *html = NULL;
        int ctx = 0;
        if (cdp_page_frame_context(R->page, run_frame(R, R->depth), &s, &ctx, 2000, err) == 0) {
            if (cdp_session_eval(s, ctx, "document.documentElement.outerHTML", &html, 5000, err) ==
                    0 &&
                cJSON_IsString(html)) {
                char *masked = failure_page(R, html->valuestring);
                if (masked && traj_put(R, "failure-dom.html", masked, strlen(masked)) == 0)
                    cJSON_AddStringToObject(e, "dom", "failure-dom.html");
                free(masked);
            }
            cJSON_Delete(html);
            cdp_session_unref(s);
        }
    }
    cJSON_AddItemToArray(R->traj_steps, e);
}

/* ---- Steps --------------------------------------------------------------- */

static const char traj_html_head[] =
    "<!doctype html><html><head><meta charset=utf-8><title>Trajectory</title><style>"
    "body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh}"
    "#list{width:40%;overflow:auto;border-right:1px solid #ccc}"
    ".s{padding:6px 10px;border-bottom:1px solid #eee;cursor:pointer}"
    ".h{padding:6px 10px;border-bottom:1px solid #ccc}"
    ".s.failed{background:#fdecee}.s.sel{background:#deebff}"
    "#view{flex:1;overflow:auto;padding:10px}#view img{max-width:100%;border:1px solid #ccc}"
    "code{white-space:pre-wrap}</style></head><body><div id=list></div><div id=view></div>"
    "<script>const T=";
static const char traj_html_tail[] =
    ";const L=document.getElementById('list'),V=document.getElementById('view');"
    "const "
    "esc=s=>String(s==null?'':s).replace(/[&<>]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));"
    "const row=(k,v)=>v==null||v===''?'':'<tr><th>'+k+'</th><td>'+esc(v)+'</td></tr>';"
    "const gap=s=>s.gap_ms>=1000?' (+'+(s.gap_ms/1000).toFixed(1)+' s)':'';"
    "function show(i){const s=T.steps[i];L.querySelectorAll('.s').forEach((e,j)=>"
    "e.classList.toggle('sel',j===i));V.innerHTML='<h3>'+esc(s.file)+':'+s.line+' '+esc(s.action)+"
    "'</h3><p>'+esc(s.outcome)+(s.error?': '+esc(s.error):'')+'</p><table>'+row('frame',s.frame)+"
    "row('value',s.value)+row('extracted',s.extracted&&JSON.stringify(s.extracted))+"
    "row('branch',s.taken==null?null:s.taken?'then (the condition held)':'else (it did not)')+"
    "row('waited before',s.gap_ms==null?null:s.gap_ms+' ms')+row('session',s.session)+"
    "row('healed',s.healed&&s.healed.locator+' matched nothing; acted on '+s.healed.healed_by+"
    "' (score '+s.healed.score+', next '+s.healed.second+'); write: '+s.healed.new)+"
    "row('time',s.started_at+' - '+s.ended_at)+'</table>'+(s.dom?'<p><a href=\"'+s.dom+"
    "'\">the failing frame\\'s DOM ('+esc(s.dom)+')</a></p>':'')+"
    "(s.screenshot?(s.screenshot_after?'<p>the picture after step '+s.screenshot_after+"
    "', which shows this one too</p>':'')+'<img src=\"'+esc(I[s.screenshot]||s.screenshot)+'\">':'')}"
    "L.innerHTML='<div class=h><b>'+esc(T.sop)+'</b>: '+esc(T.status)+'<br>'+esc(T.notes)+"
    "(T.dialogs||[]).map(d=>'<br>dialog '+esc(d.type)+': '+esc(d.message)+(d.accepted?' (accepted)'"
    ":' (dismissed)')).join('')+'</div>';"
    "T.steps.forEach((s,i)=>{const d=document.createElement('div');d.className='s '+s.outcome;"
    "d.textContent=s.index+'. '+s.file+':'+s.line+'  '+s.action+(s.frame&&s.frame!=='top'?'  ['+"
    "s.frame+']':'')+(s.taken==null?'':s.taken?'  -> then':'  -> else')+(s.healed?'  (healed)':'')+"
    "gap(s);"
    "d.onclick=()=>show(i);"
    "L.appendChild(d)});if(T.steps.length)show(T.steps.length-1);</script></body></html>";

/* JSON (NULL: {}) into a <script>, a '<' in it escaped so that no
 * "</script>" in a value closes the script. */
static void script_json(pt_buf *b, const char *json)
{
    for (const char *c = json ? json : "{}"; *c; c++) {
        if (*c == '<')
            pt_buf_append(b, "\\u003c", 6);
        else
            pt_buf_append(b, c, 1);
    }
}

void traj_write(run *R)
{
    if (!R->o->trajectory_dir)
        return;
    if (R->ndeferred)
        shot_take(R, 1);
    shot_collect(R);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "sop", R->s->name ? R->s->name : "");
    cJSON_AddStringToObject(t, "status", R->r->status);
    cJSON_AddStringToObject(t, "notes", R->r->notes ? R->r->notes : "");
    cJSON_AddBoolToObject(t, "committed", R->r->committed);
    cJSON_AddItemToObject(t, "steps", R->traj_steps);
    R->traj_steps = NULL;
    cdp_dialog *d = NULL;
    size_t nd = 0;
    cJSON *dl = cJSON_AddArrayToObject(t, "dialogs");
    if (cdp_page_dialogs(R->page, &d, &nd) == 0)
        for (size_t i = 0; i < nd; i++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "type", d[i].type);
            cJSON_AddStringToObject(x, "message", d[i].message ? d[i].message : "");
            cJSON_AddBoolToObject(x, "accepted", d[i].accepted);
            cJSON_AddItemToArray(dl, x);
        }
    cdp_dialogs_free(d, nd);
    mask_json(R, t);
    char *json = cJSON_Print(t);
    /* the HTML carries its screenshots inline, so it is one file a person
     * can open or send; trajectory.json names the images beside it. Each
     * image is in it once (I, by name), however many steps it shows: the
     * fields of a form share the picture taken after the last of them */
    cJSON *images = cJSON_CreateObject();
    cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(t, "steps"))
    {
        const char *name = pt_json_str(st, "screenshot");
        char *png = NULL;
        size_t len = 0;
        if (!name || cJSON_GetObjectItemCaseSensitive(images, name) ||
            traj_get(R, name, 32 << 20, &png, &len) < 0)
            continue;
        char *b64 = pt_b64_encode(png, len);
        free(png);
        char *uri = NULL;
        const char *dot = strrchr(name, '.');
        const char *mime = dot && strcmp(dot, ".png") == 0 ? "image/png" : "image/jpeg";
        if (b64 && asprintf(&uri, "data:%s;base64,%s", mime, b64) >= 0) {
            cJSON_AddStringToObject(images, name, uri);
            free(uri);
        }
        free(b64);
    }
    char *compact = cJSON_PrintUnformatted(t);
    char *pictures = cJSON_PrintUnformatted(images);
    cJSON_Delete(images);
    cJSON_Delete(t);
    if (json)
        traj_put(R, "trajectory.json", json, strlen(json));
    pt_buf b;
    pt_buf_init(&b, 0);
    pt_buf_append(&b, traj_html_head, sizeof(traj_html_head) - 1);
    script_json(&b, compact);
    pt_buf_append(&b, ";const I=", 9);
    script_json(&b, pictures);
    free(pictures);
    pt_buf_append(&b, traj_html_tail, sizeof(traj_html_tail) - 1);
    traj_put(R, "trajectory.html", b.data, b.len);
    pt_buf_free(&b);
    free(json);
    free(compact);
}
