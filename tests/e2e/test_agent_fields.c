/*
 * test_agent_fields.c - the agent's steps on every kind of field portals
 * use, on a page served by the test, in real Chromium: what each field
 * holds afterwards is read back by the page itself (its #state element).
 * Also: strict locators, a modal over a cross-site frame, a <select>
 * without the wanted option, review.
 */
#define _GNU_SOURCE
#include "tests/support/testmain.h"
#include "tests/support/testhttp.h"
#include "agent/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char page[] =
    "<!doctype html><title>fields</title><body>"
    "<label for=t>Text</label><input id=t>"
    "<label for=ta>Notes</label><textarea id=ta></textarea>"
    "<label for=num>Units</label><input id=num type=number>"
    "<label for=ph>Phone</label><input id=ph placeholder='(999) 999-9999'>"
    "<div id=ce contenteditable aria-label=Comment style='min-height:20px;border:1px solid'></div>"
    "<label for=d>Date of birth</label><input id=d type=date>"
    "<label for=tm>Appointment time</label><input id=tm type=time>"
    "<label for=dt>Admitted at</label><input id=dt type=datetime-local>"
    "<label for=md>Service date</label><input id=md placeholder=MM/DD/YYYY>"
    "<label for=sel>State</label><select id=sel><option value=''>--</option>"
    "<option value=CA>California</option><option value=NY>New York</option></select>"
    "<div id=plan role=combobox aria-label=Plan tabindex=0 style='border:1px "
    "solid;width:200px'>Choose"
    "</div><ul id=plans role=listbox hidden><li role=option>Silver</li><li "
    "role=option>Gold</li></ul>"
    "<p><input type=checkbox id=c><label for=c>Agree</label>"
    "<input type=radio name=r id=r1 value=a><label for=r1>Option A</label>"
    "<input type=radio name=r id=r2 value=b><label for=r2>Option B</label></p>"
    "<label for=k>Search</label><input id=k>"
    "<form id=f><label for=q>Query</label><input id=q></form>"
    "<button>Save</button><button>Save</button>"
    "<pre id=state></pre>"
    "<script>"
    "let keys = 0, submitted = 0;"
    "document.getElementById('k').addEventListener('keydown', () => keys++);"
    "document.getElementById('f').addEventListener('submit', e => { e.preventDefault(); "
    "submitted++; });"
    "const ph = document.getElementById('ph');"
    "ph.addEventListener('input', () => { const d = ph.value.replace(/\\D/g, '').slice(0, 10);"
    "  ph.value = d.length > 6 ? '(' + d.slice(0,3) + ') ' + d.slice(3,6) + '-' + d.slice(6)"
    "    : d.length > 3 ? '(' + d.slice(0,3) + ') ' + d.slice(3) : d; });"
    "const plan = document.getElementById('plan'), plans = document.getElementById('plans');"
    "plan.addEventListener('click', () => { plans.hidden = false; });"
    "plans.querySelectorAll('li').forEach(li => li.addEventListener('click', () => {"
    "  plan.textContent = li.textContent; plans.hidden = true; }));"
    "function state() { const v = id => document.getElementById(id).value;"
    "  document.getElementById('state').textContent = JSON.stringify({t: v('t'), ta: v('ta'),"
    "  num: v('num'), ph: v('ph'), ce: document.getElementById('ce').textContent, d: v('d'),"
    "  tm: v('tm'), dt: v('dt'), md: v('md'), sel: v('sel'), plan: plan.textContent,"
    "  c: document.getElementById('c').checked, r: (document.querySelector('input[name=r]:checked')"
    "  || {}).value || '', k: v('k'), keys, q: v('q'), submitted}); }"
    "setInterval(state, 50);"
    "</script>";

static int port;

static sop *parse(const char *text)
{
    sop_diags d = {0};
    sop *s = sop_parse_text("fields.sop", text, NULL, &d);
    if (!s) {
        sop_diags_print(&d, stderr);
        fail_msg("the test SOP does not parse");
    }
    sop_diags_free(&d);
    return s;
}

static void run_sop(const char *text, const char *data, int approve, agent_result *r)
{
    sop *s = parse(text);
    vars *raw = vars_new(), *inputs = vars_new(), *secrets = vars_new();
    char errs[1024], err[CDP_ERR_MAX], portal[64];
    vars_parse_data(raw, data ? data : "", errs, sizeof(errs));
    if (vars_bind_inputs(s, raw, NULL, inputs, errs, sizeof(errs)))
        fail_msg("inputs: %s", errs);
    cdp_browser *b = NULL;
    if (cdp_launch(NULL, &b, err))
        fail_msg("launch: %s", err);
    snprintf(portal, sizeof(portal), "http://127.0.0.1:%d", port);
    agent_options o = {
        .browser = b, .portal = portal, .inputs = inputs, .secrets = secrets, .approve = approve};
    agent_run(s, &o, r);
    cdp_close(b);
    sop_free(s);
    vars_free(raw);
    vars_free(inputs);
    vars_free(secrets);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "(not a string)";
}

static void every_kind_of_field(void **state)
{
    (void)state;
    th_server *srv = th_start();
    th_route(srv, "/", "text/html", page, -1, 0);
    port = th_port(srv);
    agent_result r;
    run_sop("sop fields \"Fields\"\nsummary \"every kind of field\"\n"
            "input dob required date\ninput svc required date\n"
            "goto \"{{portal}}/\"\n"
            "fill label \"Text\" with \"hello world\"\n"
            "fill label \"Notes\" with \"line one\"\n"
            "fill label \"Units\" with \"12\"\n"
            "fill label \"Phone\" with \"5551234567\"\n"
            "fill textbox \"Comment\" with \"typed into contenteditable\"\n"
            "fill label \"Date of birth\" with dob\n"
            "fill label \"Appointment time\" with \"14:30\"\n"
            "fill label \"Admitted at\" with \"2025-03-25T09:05\"\n"
            "fill label \"Service date\" with svc\n"
            "select label \"State\" with \"New York\"\n"
            "choose combobox \"Plan\" with \"Gold\"\n"
            "check label \"Agree\"\n"
            "check radio \"Option B\"\n"
            "type label \"Search\" with \"abc\"\n"
            "fill label \"Query\" with \"x\"\n"
            "press \"Enter\"\n"
            "fill label \"Text\" with \"replaced\"\n"
            "wait for \"#state\" contains \"replaced\"\n"
            "extract state from \"#state\"\n",
            "dob: December 23, 1949\nsvc: 2025-03-25\n", 0, &r);
    if (strcmp(r.status, "completed") != 0)
        fail_msg("%s: %s", r.status, r.notes);
    cJSON *st = cJSON_Parse(vars_get(r.outputs, "state"));
    assert_non_null(st);
    assert_string_equal(str(st, "t"), "replaced"); /* filled twice: replaced, not appended */
    assert_string_equal(str(st, "ta"), "line one");
    assert_string_equal(str(st, "num"), "12");
    assert_string_equal(str(st, "ph"), "(555) 123-4567"); /* a mask reformats: digits compared */
    assert_string_equal(str(st, "ce"), "typed into contenteditable");
    assert_string_equal(str(st, "d"), "1949-12-23");
    assert_string_equal(str(st, "tm"), "14:30");
    assert_string_equal(str(st, "dt"), "2025-03-25T09:05");
    assert_string_equal(str(st, "md"), "03/25/2025"); /* a date written as the placeholder asks */
    assert_string_equal(str(st, "sel"), "NY");
    assert_string_equal(str(st, "plan"), "Gold");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(st, "c")));
    assert_string_equal(str(st, "r"), "b");
    assert_string_equal(str(st, "k"), "abc");
    assert_int_equal(cJSON_GetObjectItem(st, "keys")->valueint, 3); /* key by key */
    assert_int_equal(cJSON_GetObjectItem(st, "submitted")->valueint, 1);
    cJSON_Delete(st);
    agent_result_free(&r);
    th_stop(srv);
}

static void strict_and_blocked_and_missing(void **state)
{
    (void)state;
    th_server *srv = th_start();
    char top[1024];
    snprintf(top, sizeof(top),
             "<title>blocked</title><iframe id=app src='http://localhost:%d/inner'"
             " style='width:600px;height:300px'></iframe>"
             "<div id=blocker style='position:fixed;inset:0;background:rgba(0,0,0,.4)'>Please wait"
             "</div>",
             th_port(srv));
    th_route(srv, "/", "text/html", page, -1, 0);
    th_route(srv, "/blocked", "text/html", top, -1, 0);
    th_route(srv, "/inner", "text/html", "<button>Inner</button>", -1, 0);
    port = th_port(srv);
    agent_result r;

    run_sop("sop s \"S\"\nsummary \"s\"\ngoto \"{{portal}}/\"\nclick button \"Save\"\n", NULL, 0,
            &r);
    assert_string_equal(r.status, "failed");
    assert_string_equal(r.notes, "fields.sop:4: click button \"Save\": button \"Save\" matches 2 "
                                 "elements; say which with first, last or nth N");
    agent_result_free(&r);

    run_sop("sop s \"S\"\nsummary \"s\"\ngoto \"{{portal}}/blocked\"\nin frame \"#app\"\n"
            "  click button \"Inner\" timeout 1s\nend\n",
            NULL, 0, &r);
    assert_string_equal(r.status, "failed");
    assert_string_equal(r.notes, "fields.sop:5: click button \"Inner\" timeout 1s: button "
                                 "\"Inner\": covered by div#blocker on the page around the frame "
                                 "for 1 s");
    agent_result_free(&r);

    run_sop(
        "sop s \"S\"\nsummary \"s\"\ngoto \"{{portal}}/\"\nselect label \"State\" with \"Texas\"\n",
        NULL, 0, &r);
    assert_string_equal(r.status, "failed");
    assert_non_null(strstr(r.notes, "no option matches the value; the options are \"--\", "
                                    "\"California\", \"New York\""));
    agent_result_free(&r);

    /* review: stops pending, or goes on when approved */
    const char *rev = "sop s \"S\"\nsummary \"s\"\ngoto \"{{portal}}/\"\nreview \"Check it\"\n"
                      "finish completed \"approved and done\"\n";
    run_sop(rev, NULL, 0, &r);
    assert_string_equal(r.status, "pending_review");
    assert_string_equal(r.notes, "Check it");
    agent_result_free(&r);
    run_sop(rev, NULL, 1, &r);
    assert_string_equal(r.status, "completed");
    assert_string_equal(r.notes, "approved and done");
    agent_result_free(&r);
    th_stop(srv);
}

/* Loose labels: a <label> tied to no control, built three ways, names the
 * control or widget that follows it in its container. */
static const char loose_page[] =
    "<!doctype html><title>loose</title><body>"
    "<div class=row><label>Payer</label><div id=payer role=combobox tabindex=0 "
    "style='border:1px solid;width:200px'>Choose</div></div>"
    "<ul id=payers role=listbox hidden><li role=option>Acme Health</li>"
    "<li role=option>Blue Plan</li></ul>"
    "<section><div><label>Plan type *</label></div><div><span><input id=pt></span></div></section>"
    "<p><label>Orphan</label><label for=mid>Member number</label><input id=mid></p>"
    "<button type=button>Submit claim</button>"
    "<pre id=state></pre><script>"
    "const payer = document.getElementById('payer'), payers = document.getElementById('payers');"
    "payer.addEventListener('click', () => { payers.hidden = false; });"
    "payers.querySelectorAll('li').forEach(li => li.addEventListener('click', () => {"
    "  payer.textContent = li.textContent; payers.hidden = true; }));"
    "setInterval(() => { document.getElementById('state').textContent = JSON.stringify({"
    "  payer: payer.textContent, pt: document.getElementById('pt').value,"
    "  mid: document.getElementById('mid').value}); }, 50);"
    "</script>";

static void assert_in(const char *text, const char *want)
{
    if (!text || !strstr(text, want))
        fail_msg("want \"%s\" in: %s", want, text ? text : "(null)");
}

static void loose_labels_and_nearest_candidates(void **state)
{
    (void)state;
    th_server *srv = th_start();
    th_route(srv, "/", "text/html", loose_page, -1, 0);
    port = th_port(srv);
    agent_result r;
    run_sop(
        "sop loose \"Loose\"\nsummary \"loose labels\"\n"
        "goto \"{{portal}}/\"\n"
        "choose label \"Payer\" with \"Blue Plan\"\n"
        "fill label \"Plan type\" with \"HMO\"\n"
        "fill label \"Member number\" with \"77\"\n"
        /* the last field filled: the page's 50 ms copy has them all then */
        "wait for \"#state\" contains \"77\"\n"
        "expect combobox \"Payer\" else \"the combobox is named by its loose label\"\n"
        "expect hidden label \"Orphan\" else \"a label followed by another label names nothing\"\n"
        "extract state from \"#state\"\n",
        NULL, 0, &r);
    if (strcmp(r.status, "completed") != 0)
        fail_msg("%s: %s", r.status, r.notes);
    cJSON *st = cJSON_Parse(vars_get(r.outputs, "state"));
    assert_non_null(st);
    assert_string_equal(str(st, "payer"), "Blue Plan");
    assert_string_equal(str(st, "pt"), "HMO");
    assert_string_equal(str(st, "mid"), "77");
    cJSON_Delete(st);
    agent_result_free(&r);
    /* a miss names the closest elements, each with the line to write */
    run_sop("sop loose \"Loose\"\nsummary \"loose labels\"\n"
            "goto \"{{portal}}/\"\n"
            "  click button \"Sumbit claim\" timeout 1s\n",
            NULL, 0, &r);
    assert_string_equal(r.status, "failed");
    assert_in(r.notes, "no element matches button \"Sumbit claim\"");
    assert_in(r.notes, "nearest: button \"Submit claim\"");
    assert_in(r.notes, "write: click button \"Submit claim\" timeout 1s");
    agent_result_free(&r);
    run_sop("sop loose \"Loose\"\nsummary \"loose labels\"\n"
            "goto \"{{portal}}/\"\n"
            "fill label \"Payers\" with \"x\" timeout 1s\n",
            NULL, 0, &r);
    assert_string_equal(r.status, "failed");
    assert_in(r.notes, "label \"Payer\" (label; write: fill label \"Payer\" with");
    agent_result_free(&r);
    th_stop(srv);
}

PT_TESTS("agent_fields", cmocka_unit_test(every_kind_of_field),
         cmocka_unit_test(strict_and_blocked_and_missing),
         cmocka_unit_test(loose_labels_and_nearest_candidates));
