/*
 * test_sop.c - the SOP language's lexer, parser and linter: the bundled SOPs
 * parse into the tree they mean, and every error says where, exactly.
 */
#include "tests/support/testmain.h"
#include "agent/agent.h"
#include "agent/sop.h"
#include "util/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sop *parse_bundled(const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/sops/sandbox/%s.sop", pt_home(), name);
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    if (!s || sop_diags_errors(&d)) {
        sop_diags_print(&d, stderr);
        fail_msg("%s does not parse", path);
    }
    assert_int_equal(d.n, 0); /* not even a warning */
    sop_diags_free(&d);
    return s;
}

static const sop_input *input(const sop *s, const char *name)
{
    for (size_t i = 0; i < s->ninputs; i++)
        if (!strcmp(s->inputs[i].name, name))
            return &s->inputs[i];
    fail_msg("no input %s", name);
    return NULL;
}

static void bundled_sops_parse(void **state)
{
    (void)state;
    const char *names[] = {
        "login",         "submit_claim", "check_eligibility", "submit_prior_authorization",
        "submit_appeal", "appeal_plan"};
    for (size_t i = 0; i < 6; i++)
        sop_free(parse_bundled(names[i]));
}

static void claim_sop_tree(void **state)
{
    (void)state;
    sop *s = parse_bundled("submit_claim");
    assert_string_equal(s->name, "submit_claim");
    assert_string_equal(s->title, "Submit a professional claim");
    assert_non_null(strstr(s->summary, "capture confirmation number"));
    assert_int_equal(s->timeout_ms, 15000);
    assert_int_equal(s->nfiles, 2); /* itself and login.sop */

    const sop_input *in = input(s, "member_id");
    assert_int_equal(in->required, 1);
    assert_string_equal(in->pattern, "^\\d{9}$");
    assert_int_equal(input(s, "dob")->type, SOP_IN_DATE);
    assert_string_equal(input(s, "payer")->default_value, "Sandbox Health PPO");
    assert_int_equal(input(s, "payer")->required, 0);
    in = input(s, "place_of_service");
    assert_int_equal(in->nmap, 5);
    assert_string_equal(in->map[0].from, "home");
    assert_string_equal(in->map[0].to, "12");

    /* login.sop declares a session, so its steps are the body of one `use`
     * step where `use login` stands (a kept session may skip them) */
    const sop_block *b = &s->steps;
    assert_int_equal(b->steps[0].kind, SOP_USE);
    assert_string_equal(b->steps[0].name, "login");
    assert_string_equal(b->steps[0].source, "use login");
    assert_non_null(strstr(b->steps[0].file, "submit_claim.sop"));
    assert_string_equal(b->steps[0].value.text, "{{portal}}/home");
    assert_int_equal(b->steps[0].cond->kind, SOP_COND_URL);
    assert_string_equal(b->steps[0].cond->text, "/home");
    const sop_block *lb = &b->steps[0].body;
    assert_int_equal(lb->steps[0].kind, SOP_WHENEVER);
    assert_non_null(strstr(lb->steps[0].file, "login.sop"));
    assert_int_equal(lb->steps[1].kind, SOP_GOTO);
    assert_string_equal(lb->steps[1].value.text, "{{portal}}/login");
    assert_int_equal(lb->steps[1].value.is_var, 0);

    const sop_step *frame = NULL, *fin = NULL;
    for (size_t i = 0; i < b->n; i++) {
        if (b->steps[i].kind == SOP_IN_FRAME)
            frame = &b->steps[i];
        if (b->steps[i].kind == SOP_FINISH)
            fin = &b->steps[i];
    }
    assert_non_null(frame);
    assert_int_equal(frame->loc.kind, SOP_LOC_CSS);
    assert_string_equal(frame->loc.value, "#app-frame");
    assert_non_null(strstr(frame->file, "submit_claim.sop"));
    const sop_step *choose = &frame->body.steps[0];
    assert_int_equal(choose->kind, SOP_CHOOSE);
    assert_int_equal(choose->loc.kind, SOP_LOC_LABEL);
    assert_string_equal(choose->loc.value, "Payer");
    assert_int_equal(choose->value.is_var, 1);
    assert_string_equal(choose->value.text, "payer");
    assert_string_equal(choose->source, "choose label \"Payer\" with payer");

    int saw_commit = 0, saw_last = 0, saw_wait = 0;
    for (size_t i = 0; i < frame->body.n; i++) {
        const sop_step *st = &frame->body.steps[i];
        saw_commit |= st->kind == SOP_COMMIT;
        if (st->kind == SOP_IF)
            for (size_t j = 0; j < st->body.n; j++)
                saw_last |= st->body.steps[j].loc.nth == -1;
        if (st->kind == SOP_WAIT) {
            saw_wait = 1;
            /* what a person sees, so a redesign's new ids do not break it */
            assert_int_equal(st->cond->kind, SOP_COND_OR);
            assert_int_equal(st->cond->a->kind, SOP_COND_PAGE_TEXT);
            assert_string_equal(st->cond->a->text, "Claim reference");
            assert_int_equal(st->cond->b->kind, SOP_COND_VISIBLE);
            assert_int_equal(st->cond->b->loc.kind, SOP_LOC_ROLE);
            assert_string_equal(st->cond->b->loc.role, "alert");
            assert_int_equal(st->timeout_ms, 30000);
        }
        if (st->kind == SOP_EXTRACT) {
            assert_string_equal(st->name, "reference");
            assert_true(st->from_page);
            assert_string_equal(st->regex, "Claim reference ([A-Z]{2,4}-\\d{4}-\\d+)");
        }
    }
    assert_true(saw_commit && saw_last && saw_wait);
    assert_non_null(fin);
    assert_string_equal(fin->name, "completed");
    assert_string_equal(fin->value.text,
                        "Claim successfully submitted with reference {{reference}}.");
    sop_free(s);
}

/* Parses text; the diagnostics printed as "LINE:COL: kind: message" lines. */
static char *lint(const char *text)
{
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop", text, NULL, &d);
    sop_free(s);
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    for (size_t i = 0; i < d.n; i++)
        n += (size_t)snprintf(out + n, cap - n, "%d:%d: %s: %s\n", d.items[i].line, d.items[i].col,
                              d.items[i].warning ? "warning" : "error", d.items[i].message);
    sop_diags_free(&d);
    return out;
}

static void expect_lint(const char *text, const char *want)
{
    char *got = lint(text);
    if (!strstr(got, want))
        fail_msg("want \"%s\" in:\n%s", want, got);
    free(got);
}

#define HEAD "sop t \"T\"\nsummary \"s\"\n"

static void unknown_steps_get_suggestions(void **state)
{
    (void)state;
    expect_lint(HEAD "clik \"#go\"\n", "3:1: error: unknown step 'clik' (did you mean 'click'?)");
    expect_lint(HEAD "  fil label \"x\" with \"y\"\n",
                "3:3: error: unknown step 'fil' (did you mean 'fill'?)");
    expect_lint(HEAD "teleport \"#go\"\n", "3:1: error: unknown step 'teleport'\n");
    expect_lint(HEAD "click buton \"Go\"\n",
                "3:7: error: 'buton' is not a kind of element (did you mean 'button'?)");
    expect_lint(HEAD "finish complete \"x\"\n",
                "3:8: error: 'complete' is not a final status (did you mean 'completed'?)");
    expect_lint(HEAD "input a requird\nfill \"#a\" with a\n",
                "3:9: error: input a: unknown option 'requird' (did you mean 'required'?)");
}

static void syntax_errors_say_where(void **state)
{
    (void)state;
    expect_lint(HEAD "click \"#go\n", "3:7: error: this string has no closing quote");
    expect_lint(HEAD "extract x from \"#a\" /abc\n", "3:21: error: this pattern has no closing /");
    expect_lint(HEAD "extract x from \"#a\" /a(b/\n",
                "3:25: error: bad pattern: missing closing parenthesis");
    expect_lint(HEAD "fill label \"x\" \"y\"\n", "3:16: error: write fill ... with VALUE");
    expect_lint(HEAD "click\n", "3:6: error: click needs an element");
    expect_lint(HEAD "wait \"#x\"\n", "3:6: error: write wait for CONDITION");
    expect_lint(HEAD "wait for url is \"x\"\n",
                "3:14: error: write url contains \"...\" or url matches /.../");
    expect_lint(HEAD "click \"#a\" nth 0\n", "3:16: error: nth needs a number from 1 up");
    expect_lint(HEAD "click \"#a\" timeout soon\n", "3:20: error: timeout needs a duration");
    expect_lint(HEAD "click \"#a\" please\n", "3:12: error: unexpected 'please' after click");
    expect_lint(HEAD "goto \"{{portal}/x\"\n", "3:7: error: this {{ has no closing }}");
    expect_lint(HEAD "goto \"{{portal}}/{{a b}}\"\n", "3:18: error: {{a b}}: write {{name}}");
    expect_lint(HEAD "goto \"{{secret.}}\"\n",
                "3:7: error: {{secret.}} needs a name after the dot");
    expect_lint(HEAD "click \"#a\" ; drop\n", "3:12: error: unexpected ';'");
}

static void blocks_must_close(void **state)
{
    (void)state;
    expect_lint(HEAD "if visible \"#a\"\n  click \"#a\"\n",
                "3:1: error: if opened here has no end");
    expect_lint(HEAD "in frame \"#f\"\n  click \"#a\"\n",
                "3:1: error: in frame opened here has no end");
    expect_lint(HEAD "click \"#a\"\nend\n", "4:1: error: end without a block to close");
    expect_lint(HEAD "click \"#a\"\nelse\n", "4:1: error: else without an if");
    expect_lint(HEAD "whenever visible \"#w\"\n  click \"#a\"\nelse\nend\n",
                "5:1: error: else without an if");
    /* nesting is fine */
    char *ok = lint(HEAD "in frame \"#f\"\n  if visible \"#a\"\n    click \"#a\"\n  else\n"
                         "    click \"#b\"\n  end\nend\n");
    assert_string_equal(ok, "");
    free(ok);
}

static void variables_are_checked(void **state)
{
    (void)state;
    expect_lint(HEAD "input patient required\nfill label \"P\" with patinet\n",
                "4:21: error: patinet is not defined (not an input, nor extracted or asked "
                "before); did you mean patient?");
    expect_lint(HEAD "input patient required\n", "3:7: warning: input patient is never used");
    expect_lint(HEAD "goto \"{{portal}}/x?id={{ref}}\"\nextract ref from \"#r\"\n",
                "3:23: error: ref is not defined");
    /* extracted and asked values count from then on; portal always exists */
    char *ok = lint(HEAD "extract ref from \"#r\"\nask code \"Code?\"\n"
                         "goto \"{{portal}}/{{ref}}/{{code}}\"\nif ref is \"x\"\n  commit\nend\n");
    assert_string_equal(ok, "");
    free(ok);
}

static void unreachable_steps(void **state)
{
    (void)state;
    expect_lint(HEAD "finish completed \"x\"\nclick \"#a\"\n",
                "4:1: error: click is never reached: the SOP finishes at line 3");
    expect_lint(HEAD "if visible \"#e\"\n  finish failed \"x\"\n  screenshot\nend\n",
                "5:3: error: screenshot is never reached: the SOP finishes at line 4");
    /* after an if that may finish, the rest is reachable */
    char *ok = lint(HEAD "if visible \"#e\"\n  finish failed \"x\"\nend\nclick \"#a\"\n");
    assert_string_equal(ok, "");
    free(ok);
}

static void every_error_is_reported(void **state)
{
    (void)state;
    char *got = lint(HEAD "clik \"#a\"\nfill \"#b\"\nfinish done\n");
    assert_non_null(strstr(got, "3:1: error: unknown step 'clik'"));
    assert_non_null(strstr(got, "4:10: error: fill needs a value") ||
                            strstr(got, "4:10: error: write fill")
                        ? got
                        : NULL);
    assert_non_null(strstr(got, "5:8: error: 'done' is not a final status"));
    free(got);
    got = lint("click \"#a\"\n");
    assert_non_null(strstr(got, "1:1: warning: no summary"));
    free(got);
}

static void locators_and_conditions(void **state)
{
    (void)state;
    sop_diags d = {0};
    sop *s =
        sop_parse_text("t.sop",
                       HEAD "input kind optional\n"
                            "click xpath \"//a[1]\" first\n"
                            "click role tab \"Files\" nth 2\n"
                            "check checkbox \"I agree\"\n"
                            "wait for not hidden text \"Done\" timeout 500ms\n"
                            "if kind is \"urgent\"\n  commit\nend\n"
                            "expect \"#ok\" contains \"Approved\" else \"not approved\"\n"
                            "if page contains \"Welcome\" or url matches /home$/\n  commit\nend\n"
                            "extract v from label \"Units\" value\n"
                            "extract h from link \"Next\" attribute \"href\" /\\d+/\n"
                            "upload label \"Files\" with file \"letter.pdf\"\n"
                            "press \"Enter\"\nreview \"Check {{v}} and {{h}}\"\n"
                            "timeout 20s\n",
                       NULL, &d);
    if (!s) {
        sop_diags_print(&d, stderr);
        fail();
    }
    sop_diags_free(&d);
    const sop_step *st = s->steps.steps;
    assert_int_equal(st[0].loc.kind, SOP_LOC_XPATH);
    assert_int_equal(st[0].loc.nth, 1);
    assert_int_equal(st[1].loc.kind, SOP_LOC_ROLE);
    assert_string_equal(st[1].loc.role, "tab");
    assert_int_equal(st[1].loc.nth, 2);
    assert_string_equal(st[2].loc.role, "checkbox");
    assert_int_equal(st[3].cond->kind, SOP_COND_NOT);
    assert_int_equal(st[3].cond->a->kind, SOP_COND_HIDDEN);
    assert_int_equal(st[3].cond->a->loc.kind, SOP_LOC_TEXT);
    assert_int_equal(st[3].timeout_ms, 500);
    assert_int_equal(st[4].cond->kind, SOP_COND_VAR_IS);
    assert_string_equal(st[4].cond->text, "kind");
    assert_string_equal(st[4].cond->value, "urgent");
    assert_int_equal(st[5].cond->kind, SOP_COND_TEXT);
    assert_string_equal(st[5].value.text, "not approved");
    assert_int_equal(st[6].cond->kind, SOP_COND_OR);
    assert_int_equal(st[6].cond->a->kind, SOP_COND_PAGE_TEXT);
    assert_string_equal(st[6].cond->b->regex, "home$");
    assert_string_equal(st[7].attribute, "value");
    assert_string_equal(st[8].attribute, "href");
    assert_string_equal(st[8].regex, "\\d+");
    assert_string_equal(st[9].file_name, "letter.pdf");
    assert_string_equal(st[10].value.text, "Enter");
    assert_int_equal(st[11].kind, SOP_REVIEW);
    assert_int_equal(s->timeout_ms, 20000);
    sop_free(s);
}

static void use_needs_a_folder_and_a_file(void **state)
{
    (void)state;
    expect_lint(HEAD "use login\n", "3:5: error: use login: no folder to find it in");
    char *dir = pt_mkdtemp("portier-sop");
    char path[4200];
    snprintf(path, sizeof(path), "%s/a.sop", dir);
    const char *a = "sop a \"A\"\nsummary \"s\"\nuse b\n";
    pt_write_file(path, a, strlen(a), 0600);
    snprintf(path, sizeof(path), "%s/b.sop", dir);
    pt_write_file(path, "use a\n", strlen("use a\n"), 0600); /* a loop */
    sop_diags d = {0};
    snprintf(path, sizeof(path), "%s/a.sop", dir);
    assert_null(sop_parse_file(path, &d));
    int loop = 0;
    for (size_t i = 0; i < d.n; i++)
        loop |= strstr(d.items[i].message, "more than 8 deep") != NULL;
    assert_true(loop);
    sop_diags_free(&d);
    sop *s = sop_parse_text("t.sop", HEAD "use missing\n", dir, &d);
    assert_null(s);
    assert_non_null(strstr(d.items[0].message, "use missing: cannot read"));
    assert_int_equal(d.items[0].line, 3);
    assert_int_equal(d.items[0].col, 5);
    sop_diags_free(&d);
    pt_rmtree(dir);
    free(dir);
}

/* A used file that declares `session` runs as one `use` step; one that does
 * not is spliced in step by step; mistakes in the line say where. */
static void session_lines(void **state)
{
    (void)state;
    char *dir = pt_mkdtemp("portier-sop");
    char path[4200];
    const char *in = "sop in \"In\"\nsession \"{{portal}}/home\" signed in if url contains "
                     "\"/home\" or visible \"#logout\"\ngoto \"{{portal}}/login\"\n";
    snprintf(path, sizeof(path), "%s/in.sop", dir);
    pt_write_file(path, in, strlen(in), 0600);
    const char *plain = "goto \"{{portal}}/a\"\n";
    snprintf(path, sizeof(path), "%s/plain.sop", dir);
    pt_write_file(path, plain, strlen(plain), 0600);
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop", HEAD "use in\nuse plain\n", dir, &d);
    assert_non_null(s);
    assert_int_equal(s->steps.n, 2);
    assert_int_equal(s->steps.steps[0].kind, SOP_USE);
    assert_int_equal(s->steps.steps[0].cond->kind, SOP_COND_OR);
    assert_int_equal(s->steps.steps[0].body.n, 1);
    assert_int_equal(s->steps.steps[1].kind, SOP_GOTO); /* spliced */
    assert_string_equal(sop_step_name(SOP_USE), "use");
    assert_true(sop_keeps_session(s));
    sop_free(s);
    sop_diags_free(&d);
    /* the top file may declare a session: nothing uses it, nothing is kept */
    s = sop_parse_text("t.sop",
                       HEAD "session \"{{portal}}/home\" signed in if url contains \"/h\"\n"
                            "goto \"{{portal}}/a\"\n",
                       dir, &d);
    assert_non_null(s);
    assert_int_equal(s->steps.steps[0].kind, SOP_GOTO);
    assert_false(sop_keeps_session(s));
    sop_free(s);
    sop_diags_free(&d);
    expect_lint(HEAD "session \"{{portal}}/home\" if url contains \"/h\"\n",
                "3:27: error: write session \"URL\" signed in if CONDITION");
    expect_lint(HEAD "session home signed in if url contains \"/h\"\n",
                "3:9: error: session needs the \"URL\" to open");
    const char *twice = "session \"{{portal}}/a\" signed in if url contains \"/a\"\n"
                        "session \"{{portal}}/b\" signed in if url contains \"/b\"\n";
    snprintf(path, sizeof(path), "%s/twice.sop", dir);
    pt_write_file(path, twice, strlen(twice), 0600);
    assert_null(sop_parse_text("t.sop", HEAD "use twice\n", dir, &d));
    assert_int_equal(d.items[0].line, 2);
    assert_non_null(
        strstr(d.items[0].message, "session is declared twice in this file (first at line 1)"));
    sop_diags_free(&d);
    pt_rmtree(dir);
    free(dir);
}

/* `sensitive` ends a fill or type step (before its timeout); elsewhere it
 * is a word too many. */
static void sensitive_fills(void **state)
{
    (void)state;
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop",
                            "sop t \"T\"\ninput id required\n"
                            "fill \"#a\" with id sensitive\n"
                            "type \"#b\" with \"{{id}}\" sensitive timeout 5s\n"
                            "fill \"#c\" with id\n",
                            NULL, &d);
    assert_non_null(s);
    assert_int_equal(sop_diags_errors(&d), 0);
    assert_int_equal(s->steps.n, 3);
    assert_int_equal(s->steps.steps[0].sensitive, 1);
    assert_int_equal(s->steps.steps[1].sensitive, 1);
    assert_int_equal(s->steps.steps[1].timeout_ms, 5000);
    assert_int_equal(s->steps.steps[2].sensitive, 0);
    sop_free(s);
    sop_diags_free(&d);
    assert_null(sop_parse_text("t.sop", "sop t \"T\"\nclick \"#a\" sensitive\n", NULL, &d));
    assert_true(sop_diags_errors(&d) > 0);
    sop_diags_free(&d);
}

/* files required N TYPE...: the count and types a task must bring. */
static void files_header(void **state)
{
    (void)state;
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop", HEAD "files required 2 PDF png\nclick \"#go\"\n", NULL, &d);
    assert_non_null(s);
    assert_int_equal(s->files_min, 2);
    assert_int_equal(s->nfile_types, 2);
    assert_string_equal(s->file_types[0], "pdf");
    assert_string_equal(s->file_types[1], "png");
    sop_free(s);
    sop_diags_free(&d);
    s = sop_parse_text("t.sop", HEAD "click \"#go\"\n", NULL, &d);
    assert_int_equal(s->files_min, 0);
    sop_free(s);
    sop_diags_free(&d);
    expect_lint(HEAD "files 1 pdf\n", "3:7: error: write files required N [TYPE ...]");
    expect_lint(HEAD "files required pdf\n", "3:16: error: write files required N");
    expect_lint(HEAD "files required 0\n", "(N from 1 to 100)");
    expect_lint(HEAD "files required 1 \"pdf\"\n", "3:18: error:");
    expect_lint(HEAD "filez required 1\n", "did you mean 'files'?");
}

/* The first step's condition of an SOP whose only step is `if COND`. */
static sop *if_sop(const char *cond)
{
    char text[512];
    snprintf(text, sizeof(text), HEAD "if %s\n  commit\nend\n", cond);
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop", text, NULL, &d);
    if (!s)
        sop_diags_print(&d, stderr);
    sop_diags_free(&d);
    assert_non_null(s);
    return s;
}

static int text_holds(const char *cond, const char *text)
{
    sop *s = if_sop(cond);
    int r = cond_text_holds(s->steps.steps[0].cond, text);
    sop_free(s);
    return r;
}

/* contains, is and matches ignore case unless `exactly`; is takes the whole
 * text, so "Inactive" is not "active". */
static void text_conditions(void **state)
{
    (void)state;
    assert_true(text_holds("\"#s\" contains \"active\"", "Status: ACTIVE"));
    assert_true(text_holds("\"#s\" contains \"active\"", "Inactive")); /* why is exists */
    assert_false(text_holds("\"#s\" contains exactly \"Active\"", "Inactive"));
    assert_true(text_holds("\"#s\" contains \"Active\" exactly", "Active"));
    assert_true(text_holds("\"#s\" is \"active\"", "  Active \n"));
    assert_false(text_holds("\"#s\" is \"active\"", "Inactive"));
    assert_true(text_holds("\"#s\" is \"in  network\"", "In\n network"));
    assert_false(text_holds("\"#s\" is exactly \"active\"", "Active"));
    assert_true(text_holds("label \"Status\" matches /^act/", "Active"));
    assert_false(text_holds("label \"Status\" matches /^act/", "Inactive"));
    assert_false(text_holds("label \"Status\" matches exactly /^act/", "Active"));
    assert_true(text_holds("page contains \"welcome\"", "WELCOME back"));
    assert_false(text_holds("page contains exactly \"welcome\"", "WELCOME back"));
    sop *s = if_sop("\"#s\" matches /a+/ or \"#t\" is \"x\"");
    assert_int_equal(s->steps.steps[0].cond->a->kind, SOP_COND_TEXT);
    assert_int_equal(s->steps.steps[0].cond->a->op, SOP_TEXT_MATCHES);
    assert_int_equal(s->steps.steps[0].cond->b->op, SOP_TEXT_IS);
    sop_free(s);
    expect_lint(HEAD "if \"#s\" matches \"x\"\n  commit\nend\n",
                "3:17: error: matches needs a /pattern/");
    expect_lint(HEAD "if \"#s\" is /x/\n  commit\nend\n",
                "3:12: error: is needs a \"quoted\" text");
    expect_lint(HEAD "if \"#s\" matches /(/\n  commit\nend\n",
                "3:19: error: bad pattern: missing closing parenthesis");
}

static sop *parse_ok(const char *text)
{
    sop_diags d = {0};
    sop *s = sop_parse_text("t.sop", text, NULL, &d);
    if (!s || d.n) {
        sop_diags_print(&d, stderr);
        fail_msg("does not parse clean");
    }
    sop_diags_free(&d);
    return s;
}

/* repeat until COND max N ... end: the bound is required, the body closes. */
static void repeat_until_max(void **state)
{
    (void)state;
    sop *s =
        parse_ok(HEAD "repeat until visible row \"1234567893\" or page contains \"None\" max 5\n"
                      "  click button \"Next page\"\n"
                      "end\n");
    const sop_step *st = s->steps.steps;
    assert_int_equal(st[0].kind, SOP_REPEAT);
    assert_int_equal(st[0].max_rounds, 5);
    assert_int_equal(st[0].cond->kind, SOP_COND_OR);
    assert_int_equal(st[0].cond->a->loc.kind, SOP_LOC_ROLE);
    assert_string_equal(st[0].cond->a->loc.role, "row");
    assert_int_equal(st[0].body.n, 1);
    sop_free(s);
    expect_lint(HEAD "repeat until visible \"#a\"\n  click \"#n\"\nend\n",
                "3:26: error: repeat until needs a bound: repeat until CONDITION max N");
    expect_lint(HEAD "repeat until visible \"#a\" max 0\n  click \"#n\"\nend\n",
                "3:31: error: max needs a number of rounds from 1 to 1000");
    expect_lint(HEAD "repeat visible \"#a\" max 2\nend\n",
                "3:8: error: write repeat until CONDITION max N");
    expect_lint(HEAD "repeat until visible \"#a\" max 2\n  click \"#n\"\n",
                "3:1: error: repeat opened here has no end");
}

/* and binds tighter than or; path and dialog contains; COND in frame. */
static void and_path_dialog_in_frame(void **state)
{
    (void)state;
    sop *s = parse_ok(HEAD "wait for url contains \"/a\" or path contains \"/b\" and "
                           "visible \"#x\" in frame css \"iframe[title=Sign]\"\n"
                           "expect dialog contains \"File this\" else \"no dialog\"\n"
                           "if visible dialog \"Session\"\n  click button \"Stay\"\nend\n");
    const sop_cond *c = s->steps.steps[0].cond;
    assert_int_equal(c->kind, SOP_COND_OR);
    assert_int_equal(c->a->kind, SOP_COND_URL);
    assert_int_equal(c->b->kind, SOP_COND_AND);
    assert_int_equal(c->b->a->kind, SOP_COND_PATH);
    assert_string_equal(c->b->a->text, "/b");
    assert_int_equal(c->b->b->kind, SOP_COND_VISIBLE);
    assert_non_null(c->b->b->frame);
    assert_string_equal(c->b->b->frame->value, "iframe[title=Sign]");
    assert_int_equal(s->steps.steps[1].cond->kind, SOP_COND_DIALOG);
    assert_string_equal(s->steps.steps[1].cond->text, "File this");
    /* dialog "Name" stays a locator */
    assert_int_equal(s->steps.steps[2].cond->kind, SOP_COND_VISIBLE);
    assert_string_equal(s->steps.steps[2].cond->loc.role, "dialog");
    sop_free(s);
    expect_lint(HEAD "wait for path contains 12\n",
                "3:24: error: contains needs a \"quoted\" text");
    expect_lint(HEAD "wait for visible \"#a\" and\n", "3:26: error: wait for needs a condition");
    expect_lint(HEAD "wait for path contains \"/{{nope}}\"\n", "error: nope is not defined");
}

/* on dialog accept|dismiss */
static void on_dialog(void **state)
{
    (void)state;
    sop *s = parse_ok(HEAD "on dialog dismiss\nclick \"#a\"\non dialog accept\n");
    assert_int_equal(s->steps.steps[0].kind, SOP_ON_DIALOG);
    assert_int_equal(s->steps.steps[0].dismiss, 1);
    assert_int_equal(s->steps.steps[2].dismiss, 0);
    sop_free(s);
    expect_lint(HEAD "on dialog close\n", "3:11: error: on dialog takes accept or dismiss");
    expect_lint(HEAD "on alert accept\n",
                "3:4: error: write on dialog accept, or on dialog dismiss");
}

/* LOCATOR in LOCATOR, nested; extract from page /re/; templates in a
 * scope are checked. */
static void scopes_and_extract_from_page(void **state)
{
    (void)state;
    sop *s =
        parse_ok(HEAD "input plan required\n"
                      "extract status from cell \"Status\" in row \"{{plan}}\" in css \"#plans\"\n"
                      "click button \"Select\" first in row \"1234567893\"\n"
                      "extract ref from page /Tracking ID (APL-\\d+)/\n"
                      "in frame \"#f\"\n  click \"#a\"\nend\n");
    const sop_step *st = s->steps.steps;
    assert_string_equal(st[0].loc.role, "cell");
    assert_non_null(st[0].loc.within);
    assert_string_equal(st[0].loc.within->role, "row");
    assert_string_equal(st[0].loc.within->value, "{{plan}}");
    assert_int_equal(st[0].loc.within->within->kind, SOP_LOC_CSS);
    assert_int_equal(st[1].loc.nth, 1);
    assert_string_equal(st[1].loc.within->value, "1234567893");
    assert_int_equal(st[2].from_page, 1);
    assert_int_equal(st[2].has_loc, 0);
    assert_string_equal(st[2].regex, "Tracking ID (APL-\\d+)");
    assert_int_equal(st[3].kind, SOP_IN_FRAME);
    sop_free(s);
    expect_lint(HEAD "click button \"Select\" in row \"{{plna}}\"\n",
                "3:31: error: plna is not defined");
    expect_lint(HEAD "extract x from page \"Tracking\"\n",
                "3:21: error: write extract NAME from page /regex/");
    expect_lint(HEAD "click button \"A\" in rwo \"x\"\n", "3:21: error: 'rwo' is not a kind");
}

/* press: a key's name, one character, or a template; a typo is caught. */
static void press_keys_are_checked(void **state)
{
    (void)state;
    sop *s = parse_ok(HEAD "input member_id required\npress \".\"\npress \"{{member_id}}\"\n"
                           "press \"enter\"\npress \"\xc3\xa9\"\n");
    assert_string_equal(s->steps.steps[0].value.text, ".");
    assert_string_equal(s->steps.steps[1].value.text, "{{member_id}}");
    sop_free(s);
    expect_lint(HEAD "press \"Entr\"\n",
                "3:7: error: unknown key \"Entr\" (did you mean 'Enter'?)");
    expect_lint(HEAD "press \"abc\"\n", "3:7: error: unknown key \"abc\" (a key's name");
    expect_lint(HEAD "press \"{{membr}}\"\n", "3:8: error: membr is not defined");
    expect_lint(HEAD "press \"\"\n", "3:7: error: press needs a key, not an empty string");
}

PT_TESTS("sop", cmocka_unit_test(bundled_sops_parse), cmocka_unit_test(claim_sop_tree),
         cmocka_unit_test(sensitive_fills),
         cmocka_unit_test(unknown_steps_get_suggestions), cmocka_unit_test(syntax_errors_say_where),
         cmocka_unit_test(blocks_must_close), cmocka_unit_test(variables_are_checked),
         cmocka_unit_test(unreachable_steps), cmocka_unit_test(every_error_is_reported),
         cmocka_unit_test(locators_and_conditions), cmocka_unit_test(use_needs_a_folder_and_a_file),
         cmocka_unit_test(session_lines), cmocka_unit_test(files_header),
         cmocka_unit_test(text_conditions),
         cmocka_unit_test(repeat_until_max),
         cmocka_unit_test(and_path_dialog_in_frame), cmocka_unit_test(on_dialog),
         cmocka_unit_test(scopes_and_extract_from_page), cmocka_unit_test(press_keys_are_checked));
