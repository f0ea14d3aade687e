/*
 * cli_run.c - `portier run`: one task, from the command line.
 *
 * stdout carries only the outcome, one JSON object; progress and
 * diagnostics go to stderr. Exit: 0 completed, 10 completed_with_issues,
 * 11 failed, 12 stopped waiting for input, 13 stopped pending review,
 * 2 usage, data or SOP errors (nothing was run).
 */
#include "cli/cli.h"
#include "agent/agent.h"
#include "agent/replay.h"
#include "util/fsutil.h"
#include "util/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run_usage(const char *why)
{
    fprintf(stderr,
            "portier run: %s\n"
            "usage: portier run SOP --data FILE|- --portal URL [--secrets FILE] [--file PATH]...\n"
            "                   [--input NAME=VALUE]... [--trajectory DIR] [--approve]\n"
            "                   [--browser ws://...] [--record DIR | --replay DIR\n"
            "                   [--replay-fallback network]]\n",
            why);
    return 2;
}

static int exit_code(const char *status)
{
    if (!strcmp(status, "completed"))
        return 0;
    if (!strcmp(status, "completed_with_issues"))
        return 10;
    if (!strcmp(status, "waiting_for_input"))
        return 12;
    if (!strcmp(status, "pending_review"))
        return 13;
    return 11;
}

static char *read_stdin(void)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, stdin)) > 0;) {
        n += r;
        if (n + 1 >= cap) {
            if (cap >= (8u << 20))
                break;
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
        }
    }
    if (b)
        b[n] = '\0';
    return b;
}

int cli_run(int argc, char **argv)
{
    const char *sop_path = NULL, *data_path = NULL, *portal = NULL, *secrets_path = NULL;
    const char *traj = NULL, *ws = NULL, *record = NULL, *replay = NULL;
    int fallback = 0;
    rr *rec = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof(*files));
    size_t nfiles = 0;
    int approve = 0, status = 2;
    vars *answers = vars_new(), *data = vars_new(), *inputs = vars_new(), *secrets = vars_new();
    sop *s = NULL;
    char *text = NULL;
    cdp_browser *b = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--approve")) {
            approve = 1;
            continue;
        }
        if (!strcmp(a, "--help")) {
            run_usage("help");
            status = 0;
            goto out;
        }
        if (a[0] != '-' || !a[1]) {
            if (sop_path) {
                status = run_usage("more than one SOP");
                goto out;
            }
            sop_path = a;
            continue;
        }
        if (!v) {
            status = run_usage("an option needs a value");
            goto out;
        }
        i++;
        if (!strcmp(a, "--data"))
            data_path = v;
        else if (!strcmp(a, "--portal"))
            portal = v;
        else if (!strcmp(a, "--secrets"))
            secrets_path = v;
        else if (!strcmp(a, "--file"))
            files[nfiles++] = v;
        else if (!strcmp(a, "--trajectory"))
            traj = v;
        else if (!strcmp(a, "--browser"))
            ws = v;
        else if (!strcmp(a, "--record"))
            record = v;
        else if (!strcmp(a, "--replay"))
            replay = v;
        else if (!strcmp(a, "--replay-fallback")) {
            if (strcmp(v, "network")) {
                status = run_usage("--replay-fallback takes network");
                goto out;
            }
            fallback = 1;
        } else if (!strcmp(a, "--input")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                status = run_usage("--input takes NAME=VALUE");
                goto out;
            }
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
            vars_set(answers, name, eq + 1, 0);
        } else {
            status = run_usage("unknown option");
            goto out;
        }
    }
    if (record && replay) {
        status = run_usage("--record and --replay exclude each other");
        goto out;
    }
    if (!sop_path || !data_path || (!portal && !replay)) {
        status = run_usage(!sop_path ? "no SOP" : !data_path ? "no --data" : "no --portal");
        goto out;
    }

    sop_diags d = {0};
    s = sop_parse_file(sop_path, &d);
    sop_diags_print(&d, stderr);
    sop_diags_free(&d);
    if (!s)
        goto out;
    char err[1024];
    if (secrets_path && vars_load_secrets(secrets, secrets_path, err) < 0) {
        fprintf(stderr, "portier run: %s\n", err);
        goto out;
    }
    if (!strcmp(data_path, "-"))
        text = read_stdin();
    else if (pt_read_file(data_path, 8u << 20, &text, NULL) < 0) {
        fprintf(stderr, "portier run: cannot read the task data %s\n", data_path);
        goto out;
    }
    char problems[4096];
    if (vars_parse_data(data, text, problems, sizeof(problems)) < 0 ||
        vars_bind_inputs(s, data, NULL, inputs, problems, sizeof(problems)) > 0) {
        fprintf(stderr, "portier run: the task data does not fit %s:\n%s", sop_path, problems);
        goto out;
    }
    for (size_t i = 0; i < nfiles; i++)
        if (access(files[i], R_OK) != 0) {
            fprintf(stderr, "portier run: cannot read the file %s\n", files[i]);
            goto out;
        }

    if (record || replay) {
        rec = record ? rr_record(record, s, inputs, secrets, answers, portal, err)
                     : rr_replay(replay, s, inputs, secrets, answers, fallback, err);
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
    if (cdp_open(ws, &b, err) < 0) {
        fprintf(stderr, "portier run: %s\n", err);
        status = 11;
        goto out;
    }
    agent_options o = {.browser = b,
                       .portal = portal,
                       .inputs = inputs,
                       .secrets = secrets,
                       .answers = answers,
                       .files = files,
                       .nfiles = nfiles,
                       .approve = approve,
                       .trajectory_dir = traj};
    if (rec)
        rr_attach(rec, &o);
    agent_result r;
    agent_run(s, &o, &r);
    /* at a terminal, an `ask` is answered here and the task runs again
     * (it stopped before its commit point, so nothing was submitted) */
    for (int tries = 0; tries < 5 && !strcmp(r.status, "waiting_for_input") && r.ask_name &&
                        isatty(STDIN_FILENO) && !r.committed;
         tries++) {
        char line[1024];
        fprintf(stderr, "%s\n%s> ", r.ask_prompt ? r.ask_prompt : "", r.ask_name);
        fflush(stderr);
        if (!fgets(line, sizeof(line), stdin))
            break;
        line[strcspn(line, "\r\n")] = '\0';
        vars_set(answers, r.ask_name, line, 0);
        agent_result_free(&r);
        agent_run(s, &o, &r);
    }
    if (rec && rr_finish(rec, err) < 0)
        fprintf(stderr, "portier run: %s\n", err);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "status", r.status);
    cJSON_AddStringToObject(out, "notes", r.notes ? r.notes : "");
    cJSON *outputs = cJSON_AddObjectToObject(out, "outputs");
    for (size_t i = 0; i < vars_count(r.outputs); i++)
        cJSON_AddStringToObject(outputs, vars_name(r.outputs, i),
                                vars_get(r.outputs, vars_name(r.outputs, i)));
    cJSON_AddBoolToObject(out, "committed", r.committed);
    if (r.ask_name) {
        cJSON_AddStringToObject(out, "ask", r.ask_name);
        cJSON_AddStringToObject(out, "question", r.ask_prompt ? r.ask_prompt : "");
    }
    if (traj)
        cJSON_AddStringToObject(out, "trajectory", traj);
    char *json = cJSON_PrintUnformatted(out);
    printf("%s\n", json ? json : "{}");
    fflush(stdout);
    free(json);
    cJSON_Delete(out);
    PT_INFO("run", "%s: %s after %d steps", s->name ? s->name : sop_path, r.status, r.steps_run);
    status = exit_code(r.status);
    agent_result_free(&r);
out:
    cdp_close(b);
    rr_free(rec);
    free(text);
    sop_free(s);
    vars_free(answers);
    vars_free(data);
    vars_free(inputs);
    vars_free(secrets);
    free(files);
    return status;
}
