/*
 * cli_run.c - `portier run`: one task, from the command line.
 *
 * stdout carries only the outcome, one JSON object; progress and
 * diagnostics go to stderr. Exit: 0 completed, 10 completed_with_issues,
 * 11 failed, 12 stopped waiting for input, 13 stopped pending review,
 * 14 failed because the portal could not be reached (no connection, no such
 * host), 2 usage, data or SOP errors (nothing was run).
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "agent/agent.h"
#include "agent/fingerprint.h"
#include "agent/replay.h"
#include "server/task.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/json.h"
#include "util/log.h"

#include <pthread.h>
#include <signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run_usage(const char *why)
{
    if (strcmp(why, "help"))
        fprintf(stderr, "portier run: %s\n", why);
    fprintf(strcmp(why, "help") ? stderr : stdout,
            "usage: portier run SOP --data FILE|- --portal URL [--secrets FILE] [--file PATH]...\n"
            "                   [--input NAME=VALUE]... [--trajectory DIR] [--approve]\n"
            "                   [--browser ws://...] [--record DIR | --replay DIR\n"
            "                   [--replay-fallback network]] [--fingerprints DIR]\n");
    return 2;
}

static int exit_code(const char *status)
{
    enum task_status st = TASK_FAILED;
    task_status_parse(status, &st);
    switch (st) {
    case TASK_COMPLETED:
        return 0;
    case TASK_COMPLETED_WITH_ISSUES:
        return 10;
    case TASK_WAITING_FOR_INPUT:
        return 12;
    case TASK_PENDING_REVIEW:
        return 13;
    default:
        return 11;
    }
}

/* The command line of one run. */
typedef struct run_args {
    const char *sop_path, *data_path, *portal, *secrets_path;
    const char *traj, *ws, *record, *replay, *fingerprints;
    int fallback, approve;
    const char **files; /* argc + 1 slots */
    size_t nfiles;
    vars *answers; /* --input NAME=VALUE */
} run_args;

/* One option with its value v; the usage's status if it is wrong, else -1. */
static int run_option(run_args *ra, const char *a, const char *v)
{
    if (!strcmp(a, "--data"))
        ra->data_path = v;
    else if (!strcmp(a, "--portal"))
        ra->portal = v;
    else if (!strcmp(a, "--secrets"))
        ra->secrets_path = v;
    else if (!strcmp(a, "--file"))
        ra->files[ra->nfiles++] = v;
    else if (!strcmp(a, "--trajectory"))
        ra->traj = v;
    else if (!strcmp(a, "--browser"))
        ra->ws = v;
    else if (!strcmp(a, "--record"))
        ra->record = v;
    else if (!strcmp(a, "--fingerprints"))
        ra->fingerprints = v;
    else if (!strcmp(a, "--replay"))
        ra->replay = v;
    else if (!strcmp(a, "--replay-fallback")) {
        if (strcmp(v, "network"))
            return run_usage("--replay-fallback takes network");
        ra->fallback = 1;
    } else if (!strcmp(a, "--input")) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v)
            return run_usage("--input takes NAME=VALUE");
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
        vars_set(ra->answers, name, eq + 1, 0);
    } else {
        static const char *const known[] = {"--data",        "--portal",     "--secrets",
                                            "--file",        "--trajectory", "--browser",
                                            "--record",      "--replay",     "--replay-fallback",
                                            "--input",       "--approve",    "--help",
                                            "--fingerprints"};
        char why[256];
        cli_unknown_option(a, known, sizeof(known) / sizeof(known[0]), why, sizeof(why));
        return run_usage(why);
    }
    return -1;
}

/* Reads the command line: -1 to go on, else the exit status. */
static int parse_run_args(int argc, char **argv, run_args *ra)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--approve")) {
            ra->approve = 1;
            continue;
        }
        if (!strcmp(a, "--help")) {
            run_usage("help");
            return 0;
        }
        if (a[0] != '-' || !a[1]) {
            if (ra->sop_path)
                return run_usage("more than one SOP");
            ra->sop_path = a;
            continue;
        }
        if (!v) {
            char why[256];
            snprintf(why, sizeof(why), "%s needs a value", a);
            return run_usage(why);
        }
        i++;
        int rc = run_option(ra, a, v);
        if (rc >= 0)
            return rc;
    }
    if (ra->record && ra->replay)
        return run_usage("--record and --replay exclude each other");
    if (!ra->sop_path || !ra->data_path || (!ra->portal && !ra->replay))
        return run_usage(!ra->sop_path ? "no SOP" : !ra->data_path ? "no --data" : "no --portal");
    return -1;
}

/* The SOP, secrets and inputs of the run, every file readable: 0, or -1
 * (said on stderr; nothing was run). */
static int prepare(const run_args *ra, sop **s, vars *inputs, vars *secrets)
{
    sop_diags d = {0};
    *s = sop_parse_file(ra->sop_path, &d);
    sop_diags_print(&d, stderr);
    sop_diags_free(&d);
    if (!*s)
        return -1;
    char err[1024], *text = NULL, problems[4096];
    if (ra->secrets_path && vars_load_secrets(secrets, ra->secrets_path, err) < 0) {
        fprintf(stderr, "portier run: %s\n", err);
        return -1;
    }
    if (!strcmp(ra->data_path, "-"))
        text = cli_read_stdin(8u << 20, 1, 0);
    else if (pt_read_file(ra->data_path, 8u << 20, &text, NULL) < 0) {
        fprintf(stderr, "portier run: cannot read the task data %s\n", ra->data_path);
        return -1;
    }
    int bad = vars_bind_data(*s, text, NULL, inputs, problems, sizeof(problems)) != 0;
    free(text);
    if (bad) {
        fprintf(stderr, "portier run: the task data does not fit %s:\n%s", ra->sop_path, problems);
        return -1;
    }
    for (size_t i = 0; i < ra->nfiles; i++)
        if (access(ra->files[i], R_OK) != 0) {
            fprintf(stderr, "portier run: cannot read the file %s\n", ra->files[i]);
            return -1;
        }
    return 0;
}

static int is_waiting(const char *status)
{
    enum task_status st;
    return task_status_parse(status, &st) == PT_FOUND && st == TASK_WAITING_FOR_INPUT;
}

/* Runs s; at a terminal, an `ask` is answered here and the task runs again
 * (it stopped before its commit point, so nothing was submitted). */
static void run_asking(const sop *s, const agent_options *o, vars *answers, agent_result *r)
{
    agent_run(s, o, r);
    for (int tries = 0;
         tries < 5 && is_waiting(r->status) && r->ask_name && isatty(STDIN_FILENO) && !r->committed;
         tries++) {
        char line[1024];
        fprintf(stderr, "%s\n%s> ", r->ask_prompt ? r->ask_prompt : "", r->ask_name);
        fflush(stderr);
        if (!fgets(line, sizeof(line), stdin))
            break;
        line[strcspn(line, "\r\n")] = '\0';
        vars_set(answers, r->ask_name, line, 0);
        agent_result_free(r);
        agent_run(s, o, r);
    }
}

/* The outcome, one JSON object on stdout. */
static void print_outcome(const agent_result *r, const char *traj)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", r->status);
    cJSON_AddStringToObject(out, "notes", r->notes ? r->notes : "");
    cJSON *outputs = cJSON_AddObjectToObject(out, "outputs");
    for (size_t i = 0; i < vars_count(r->outputs); i++)
        cJSON_AddStringToObject(outputs, vars_name(r->outputs, i),
                                vars_get(r->outputs, vars_name(r->outputs, i)));
    cJSON_AddBoolToObject(out, "committed", r->committed);
    if (r->ask_name) {
        cJSON_AddStringToObject(out, "ask", r->ask_name);
        cJSON_AddStringToObject(out, "question", r->ask_prompt ? r->ask_prompt : "");
    }
    if (traj)
        cJSON_AddStringToObject(out, "trajectory", traj);
    char *json = cJSON_PrintUnformatted(out);
    printf("%s\n", json ? json : "{}");
    fflush(stdout);
    free(json);
    cJSON_Delete(out);
}

int cli_run(int argc, char **argv)
{
    run_args ra = {.files = calloc((size_t)argc + 1, sizeof(*ra.files)), .answers = vars_new()};
    vars *inputs = vars_new(), *secrets = vars_new();
    sop *s = NULL;
    rr *rec = NULL;
    cdp_browser *b = NULL;
    cJSON *fps = NULL, *suggestions = NULL; /* --fingerprints */
    char err[1024];
    int status = parse_run_args(argc, argv, &ra);
    if (status >= 0)
        goto out;
    status = 2;
    if (prepare(&ra, &s, inputs, secrets) < 0)
        goto out;
    const char *portal = ra.portal;
    if (ra.record || ra.replay) {
        rec = ra.record ? rr_record(ra.record, s, inputs, secrets, ra.answers, portal, err)
                        : rr_replay(ra.replay, s, inputs, secrets, ra.answers, ra.fallback, err);
        if (!rec) {
            fprintf(stderr, "portier run: %s\n", err);
            goto out;
        }
        if (!portal)
            portal = rr_portal(rec); /* in replay, the recorded origin */
        if (!portal || !*portal) {
            status = run_usage("no --portal, and the recording does not name one");
            goto out;
        }
    }
    if (cdp_open(ra.ws, &b, err) < 0) {
        fprintf(stderr, "portier run: %s\n", err);
        status = 11;
        goto out;
    }
    if (ra.fingerprints &&
        fp_dir_load(ra.fingerprints, s->name, &fps, &suggestions, err, sizeof(err)) < 0) {
        fprintf(stderr, "portier run: --fingerprints: %s\n", err);
        goto out;
    }
    agent_options o = {.browser = b,
                       .fingerprints = fps,
                       .record_fingerprints = ra.fingerprints != NULL,
                       .portal = portal,
                       .inputs = inputs,
                       .secrets = secrets,
                       .answers = ra.answers,
                       .files = ra.files,
                       .nfiles = ra.nfiles,
                       .approve = ra.approve,
                       .trajectory_dir = ra.traj};
    if (rec)
        rr_attach(rec, &o);
    agent_result r;
    run_asking(s, &o, ra.answers, &r);
    if (rec && rr_finish(rec, err) < 0)
        fprintf(stderr, "portier run: %s\n", err);
    /* only a run that succeeded leaves its fingerprints, and its heals as
     * the suggestions `lint --heal` turns into a patch */
    cJSON *h;
    cJSON_ArrayForEach(h, r.heals)
    {
        /* the SOP file by its full path: lint --heal may run elsewhere */
        char *full = realpath(pt_json_str(h, "file") ? pt_json_str(h, "file") : "", NULL);
        if (full)
            cJSON_ReplaceItemInObjectCaseSensitive(h, "file", cJSON_CreateString(full));
        free(full);
    }
    if (ra.fingerprints && r.fingerprints &&
        fp_dir_save(ra.fingerprints, s->name, r.fingerprints, r.heals, err, sizeof(err)) < 0)
        fprintf(stderr, "portier run: --fingerprints: %s\n", err);
    print_outcome(&r, ra.traj);
    PT_INFO("run", "%s: %s after %d steps", s->name ? s->name : ra.sop_path, r.status, r.steps_run);
    status = r.unreachable ? 14 : exit_code(r.status);
    agent_result_free(&r);
out:
    cJSON_Delete(fps);
    cJSON_Delete(suggestions);
    cdp_close(b);
    rr_free(rec);
    sop_free(s);
    vars_free(ra.answers);
    vars_free(inputs);
    vars_free(secrets);
    free(ra.files);
    return status;
}
