/*
 * test_sandbox_browser.c - the sandbox portal in real Chromium, through
 * cdp/: sign in, pass MFA, open every app (the appeals app out of process),
 * the consent banner and the session warning, and not one uncaught JS
 * exception on any page or frame.
 *
 * This drives the pages with script, as a smoke test of the portal; the
 * agent's real mouse-and-keyboard input is tested with the SOPs.
 */
#include "tests/support/testmain.h"
#include "cdp/cdp.h"
#include "portals/sandbox/sandbox.h"
#include "util/crypto.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T 20000

typedef struct world {
    sandbox *sb;
    cdp_browser *b;
    cdp_page *p;
    char *ctx;
} world;

static world setup(int warn_after)
{
    world w = {0};
    char err[CDP_ERR_MAX];
    sandbox_options o = {.session_warning_after = warn_after, .session_warning_seconds = 120};
    if (sandbox_start(&o, &w.sb, err))
        fail_msg("sandbox: %s", err);
    if (cdp_launch(NULL, &w.b, err) || cdp_context_create(w.b, &w.ctx, err) ||
        cdp_page_open(w.b, w.ctx, &w.p, err))
        fail_msg("browser: %s", err);
    return w;
}

static void teardown(world *w)
{
    /* not one uncaught exception, anywhere, the whole time */
    char **ex = NULL;
    size_t n = 0;
    assert_int_equal(cdp_page_exceptions(w->p, &ex, &n), 0);
    for (size_t i = 0; i < n; i++)
        print_error("uncaught: %s\n", ex[i]);
    cdp_strings_free(ex, n);
    assert_int_equal(n, 0);
    cdp_page_close(w->p);
    cdp_context_dispose(w->b, w->ctx, NULL);
    free(w->ctx);
    cdp_close(w->b);
    sandbox_stop(w->sb);
}

static char *eval_json(world *w, const char *frame, const char *js)
{
    char err[CDP_ERR_MAX];
    cJSON *v = NULL;
    if (cdp_page_eval(w->p, frame, js, &v, T, err))
        fail_msg("eval %s: %s", js, err);
    char *s = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return s;
}

/* Polls js until it evaluates to want (JSON), for up to T ms. */
static void wait_for(world *w, const char *frame, const char *js, const char *want)
{
    int64_t until = pt_mono_ms() + T;
    char *got = NULL;
    for (;;) {
        char err[CDP_ERR_MAX];
        cJSON *v = NULL;
        free(got);
        got = NULL;
        if (cdp_page_eval(w->p, frame, js, &v, T, err) == 0) {
            got = cJSON_PrintUnformatted(v);
            cJSON_Delete(v);
            if (strcmp(got, want) == 0)
                break;
        }
        if (pt_mono_ms() > until)
            fail_msg("%s: still %s, want %s", js, got ? got : err, want);
        pt_sleep_ms(50);
    }
    free(got);
}

/* Runs js as a block of its own, so its consts do not collide. */
static void run(world *w, const char *frame, const char *js)
{
    size_t n = strlen(js) + 8;
    char *block = malloc(n);
    snprintf(block, n, "{%s}", js);
    free(eval_json(w, frame, block));
    free(block);
}

static void sign_in(world *w)
{
    char url[128], err[CDP_ERR_MAX];
    snprintf(url, sizeof(url), "%s/login", sandbox_url(w->sb));
    if (cdp_page_navigate(w->p, url, CDP_WAIT_LOAD, T, err))
        fail_msg("navigate: %s", err);
    /* first visit: the consent banner covers the bottom of the page */
    wait_for(w, NULL, "!!document.querySelector('#consent-banner')", "true");
    run(w, NULL, "document.querySelector('#consent-accept').click()");
    wait_for(w, NULL, "!!document.querySelector('#consent-banner')", "false");
    run(w, NULL,
        "document.getElementById('user').value = '" SANDBOX_USER "';"
        "document.getElementById('password').value = 'not the password';"
        "document.querySelector('#login button[type=submit]').click()");
    wait_for(w, NULL, "document.getElementById('login-error').textContent",
             "\"The user ID or password is incorrect.\"");
    run(w, NULL,
        "document.getElementById('password').value = '" SANDBOX_PASSWORD "';"
        "document.querySelector('#login button[type=submit]').click()");
    wait_for(w, NULL, "location.pathname", "\"/mfa\"");
    wait_for(w, NULL, "document.getElementById('how').textContent.includes('authenticator')",
             "true");
    char code[7], js[256];
    pt_totp(SANDBOX_TOTP_SEED, pt_wall_ms() / 1000, code);
    snprintf(js, sizeof(js),
             "document.getElementById('code').value = '%s';"
             "document.querySelector('#mfa button[type=submit]').click()",
             code);
    run(w, NULL, js);
    wait_for(w, NULL, "location.pathname", "\"/home\"");
    wait_for(w, NULL, "document.getElementById('who').textContent", "\"" SANDBOX_USER "\"");
}

/* Opens app from the top menu; returns the id of the frame it runs in. */
static char *open_app(world *w, const char *app, const char *heading)
{
    char js[256], err[CDP_ERR_MAX], *frame = NULL;
    snprintf(js, sizeof(js), "document.querySelector('#menu a[data-app=%s]').click()", app);
    run(w, NULL, js);
    if (cdp_page_child_frame(w->p, NULL, "#app-frame", &frame, T, err))
        fail_msg("app frame: %s", err);
    char want[128];
    snprintf(want, sizeof(want), "\"%s\"", heading);
    wait_for(w, frame, "(document.querySelector('h1') || {}).textContent || ''", want);
    wait_for(w, frame, "document.readyState", "\"complete\"");
    return frame;
}

static void sign_in_and_open_every_app(void **state)
{
    (void)state;
    world w = setup(0);
    sign_in(&w);

    char *f = open_app(&w, "eligibility", "Eligibility & Benefits Inquiry");
    /* the payer is a combobox made of divs, not a <select> */
    wait_for(&w, f, "document.querySelectorAll('select#payer').length", "0");
    wait_for(&w, f, "!!document.querySelector('#payer input[role=combobox]')", "true");
    wait_for(&w, f, "document.getElementById('dob').placeholder", "\"MM/DD/YYYY\"");
    free(f);

    f = open_app(&w, "claims", "Professional Claim (CMS-1500)");
    wait_for(&w, f, "document.getElementById('dob').type", "\"date\"");
    run(&w, f, "document.getElementById('add-line').click()");
    wait_for(&w, f, "document.querySelectorAll('#lines .line').length", "1");
    free(f);

    f = open_app(&w, "authorizations", "Prior Authorization Request");
    wait_for(&w, f, "document.querySelectorAll('input[name=urgency]').length", "2");
    wait_for(&w, f, "document.getElementById('attachments').type", "\"file\"");
    free(f);

    f = open_app(&w, "appeals", "Claim Appeal / Reconsideration");
    wait_for(&w, f, "location.hostname", "\"localhost\"");
    cdp_frame *frames = NULL;
    size_t n = 0;
    assert_int_equal(cdp_page_frames(w.p, &frames, &n), 0);
    int oop = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(frames[i].id, f) == 0)
            oop = frames[i].out_of_process;
    cdp_frames_free(frames, n);
    assert_int_equal(oop, 1); /* Chromium runs the cross-site app in its own process */
    free(f);
    teardown(&w);
}

static void eligibility_results_arrive_after_a_spinner(void **state)
{
    (void)state;
    world w = setup(0);
    sign_in(&w);
    char *f = open_app(&w, "eligibility", "Eligibility & Benefits Inquiry");
    /* pick the payer the way the combobox expects: open it, then the option */
    run(&w, f,
        "const c = document.querySelector('#payer .control');"
        "c.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));"
        "const o = Array.from(document.querySelectorAll('#payer .option'))"
        "  .find(x => x.textContent === 'Sandbox Health PPO');"
        "o.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));");
    wait_for(&w, f, "document.querySelector('#payer').dataset.value", "\"Sandbox Health PPO\"");
    run(&w, f,
        "const d = document.getElementById('dob'); d.value = '12231949';"
        "d.dispatchEvent(new Event('input', {bubbles: true}));"
        "document.getElementById('member_id').value = '555000111';"
        "document.getElementById('provider_npi').value = '1234567893';");
    wait_for(&w, f, "document.getElementById('dob').value", "\"12/23/1949\"");
    run(&w, f, "document.getElementById('submit').click()");
    /* wrong DOB for that member: no member found, said on the form */
    wait_for(&w, f, "document.getElementById('form-error').hidden", "false");
    wait_for(&w, f, "document.getElementById('form-error').textContent",
             "\"No member found with that member ID and date of birth.\"");
    run(&w, f,
        "const d = document.getElementById('dob'); d.value = '07/04/1962';"
        "d.dispatchEvent(new Event('input', {bubbles: true}));"
        "document.getElementById('submit').click()");
    wait_for(&w, f, "document.getElementById('result').hidden", "false");
    wait_for(&w, f, "document.getElementById('r-status').textContent", "\"Inactive\"");
    wait_for(&w, f, "!!document.getElementById('r-inactive')", "true");
    free(f);
    teardown(&w);
}

static void claim_asks_for_confirmation(void **state)
{
    (void)state;
    world w = setup(0);
    sign_in(&w);
    char *f = open_app(&w, "claims", "Professional Claim (CMS-1500)");
    run(&w, f,
        "const c = document.querySelector('#payer .control');"
        "c.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));"
        "Array.from(document.querySelectorAll('#payer .option'))"
        "  .find(x => x.textContent === 'Sandbox Health PPO')"
        "  .dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));"
        "const set = (id, v) => { const e = document.getElementById(id); e.value = v;"
        "  e.dispatchEvent(new Event('input', {bubbles: true})); };"
        "set('patient_name', 'Louise Golicic'); set('member_id', '300059049');"
        "set('dob', '1949-12-23'); set('place_of_service', '12'); set('service_date', '03252025');"
        "document.getElementById('attest').checked = true;");
    /* declined: nothing is sent */
    cdp_page_set_dialog_answer(w.p, 0, NULL);
    run(&w, f, "document.getElementById('submit').click()");
    pt_sleep_ms(300);
    wait_for(&w, f, "document.getElementById('done').hidden", "true");
    /* accepted: the claim goes and its reference shows */
    cdp_page_set_dialog_answer(w.p, 1, NULL);
    run(&w, f, "document.getElementById('submit').click()");
    wait_for(&w, f, "document.getElementById('done').hidden", "false");
    char *ref = eval_json(&w, f, "document.getElementById('claim-reference').textContent");
    assert_true(strncmp(ref, "\"CLM-", 5) == 0);
    free(ref);
    cdp_dialog *d = NULL;
    size_t n = 0;
    cdp_page_dialogs(w.p, &d, &n);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].type, "confirm");
    assert_non_null(strstr(d[0].message, "Submit this claim to Sandbox Health PPO?"));
    cdp_dialogs_free(d, n);
    free(f);
    teardown(&w);
}

static void session_warning_covers_the_app(void **state)
{
    (void)state;
    world w = setup(2); /* home is view 1, the first app view 2 */
    sign_in(&w);
    char *f = open_app(&w, "claims", "Professional Claim (CMS-1500)");
    wait_for(&w, NULL, "document.getElementById('session-warning').hidden", "false");
    /* it covers the iframe: the point over the app hits the modal's backdrop */
    wait_for(&w, NULL,
             "(() => { const r = document.getElementById('app-frame').getBoundingClientRect();"
             " const e = document.elementFromPoint(r.left + 50, r.top + 50);"
             " return !!e.closest('#session-warning'); })()",
             "true");
    run(&w, NULL, "document.getElementById('stay').click()");
    wait_for(&w, NULL, "document.getElementById('session-warning').hidden", "true");
    free(f);
    teardown(&w);
}

PT_TESTS("sandbox_browser", cmocka_unit_test(sign_in_and_open_every_app),
         cmocka_unit_test(eligibility_results_arrive_after_a_spinner),
         cmocka_unit_test(claim_asks_for_confirmation),
         cmocka_unit_test(session_warning_covers_the_app));
