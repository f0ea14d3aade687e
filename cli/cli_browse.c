/*
 * cli_browse.c - `portier browse`: look at a page the way the agent will.
 *
 * For people writing SOPs: open a URL in a fresh browser context, wait for
 * it to load, print the value of a script as JSON, save a screenshot, and
 * exit with no browser left behind (also on Ctrl-C).
 */
#include "cli/cli.h"
#include "cdp/cdp.h"
#include "util/fsutil.h"
#include "util/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int browse_usage(const char *why)
{
    if (strcmp(why, "help"))
        fprintf(stderr, "portier browse: %s\n", why);
    fprintf(strcmp(why, "help") ? stderr : stdout,
            "usage: portier browse URL [--eval JS] [--screenshot FILE] [--full-page]\n"
            "                      [--wait load|idle] [--timeout MS] [--browser ws://...]\n");
    return 2;
}

/* Ctrl-C or SIGTERM: give up on the browser, so that whatever the main
 * thread waits for fails at once and it cleans up (profile folder included)
 * as usual. The main thread may still be launching: it checks the flag
 * when it gets its browser. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int interrupted;
static cdp_browser *current;

static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig;
    if (sigwait(set, &sig) == 0) {
        pthread_mutex_lock(&sig_lock);
        interrupted = sig;
        if (current)
            cdp_abort(current, "interrupted");
        pthread_mutex_unlock(&sig_lock);
    }
    return NULL;
}

/* Publishes b to the signal thread (NULL withdraws it). Returns whether a
 * signal has come. */
static int set_current(cdp_browser *b)
{
    pthread_mutex_lock(&sig_lock);
    current = b;
    if (b && interrupted)
        cdp_abort(b, "interrupted");
    int intr = interrupted;
    pthread_mutex_unlock(&sig_lock);
    return intr;
}

/* An error, unless it is only the echo of an interruption. */
static void report(const char *what, const char *err)
{
    pthread_mutex_lock(&sig_lock);
    int intr = interrupted;
    pthread_mutex_unlock(&sig_lock);
    if (!intr)
        fprintf(stderr, "portier browse: %s%s\n", what, err);
}

int cli_browse(int argc, char **argv)
{
    const char *url = NULL, *js = NULL, *shot = NULL, *ws = NULL;
    int full = 0, timeout = 30000;
    unsigned wait = CDP_WAIT_LOAD;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--eval") == 0 && has)
            js = argv[++i];
        else if (strcmp(a, "--screenshot") == 0 && has)
            shot = argv[++i];
        else if (strcmp(a, "--browser") == 0 && has)
            ws = argv[++i];
        else if (strcmp(a, "--full-page") == 0)
            full = 1;
        else if (strcmp(a, "--timeout") == 0 && has)
            timeout = atoi(argv[++i]);
        else if (strcmp(a, "--wait") == 0 && has) {
            const char *w = argv[++i];
            if (strcmp(w, "load") == 0)
                wait = CDP_WAIT_LOAD;
            else if (strcmp(w, "idle") == 0)
                wait = CDP_WAIT_LOAD | CDP_WAIT_NETWORK_IDLE;
            else
                return browse_usage("--wait takes load or idle");
        } else if (strcmp(a, "--help") == 0) {
            browse_usage("help");
            return 0;
        } else if (a[0] == '-' && a[1] == '-')
            return browse_usage(has || strchr(a, '=') ? "unknown option" : "option needs a value");
        else if (!url)
            url = a;
        else
            return browse_usage("more than one URL");
    }
    if (!url)
        return browse_usage("no URL");
    if (timeout <= 0)
        return browse_usage("--timeout takes milliseconds > 0");

    sigset_t set;
    cli_stop_signals(&set);
    pthread_t sigt;
    pthread_create(&sigt, NULL, signal_thread, &set);

    char err[CDP_ERR_MAX];
    cdp_browser *b = NULL;
    cdp_page *page = NULL;
    char *ctx = NULL;
    int status = 1;
    if (cdp_open(ws, &b, err) < 0) {
        report("", err);
        goto out;
    }
    if (set_current(b))
        goto out;
    PT_DEBUG("browse", "browser ready");
    if (cdp_context_create(b, &ctx, err) < 0 || cdp_page_open(b, ctx, &page, err) < 0 ||
        cdp_page_navigate(page, url, wait, timeout, err) < 0) {
        report("", err);
        goto out;
    }
    PT_DEBUG("browse", "page loaded");
    if (js) {
        cJSON *v = NULL;
        if (cdp_page_eval(page, NULL, js, &v, timeout, err) < 0) {
            report("--eval: ", err);
            goto out;
        }
        char *text = cJSON_PrintUnformatted(v);
        printf("%s\n", text ? text : "null");
        fflush(stdout);
        free(text);
        cJSON_Delete(v);
    }
    if (shot) {
        unsigned char *png = NULL;
        size_t len = 0;
        if (cdp_page_screenshot(page, full, &png, &len, timeout, err) < 0) {
            report("--screenshot: ", err);
            goto out;
        }
        int w = pt_write_file(shot, png, len, 0644);
        free(png);
        if (w < 0) {
            fprintf(stderr, "portier browse: could not write %s\n", shot);
            goto out;
        }
        fprintf(stderr, "portier browse: wrote %s (%zu bytes)\n", shot, len);
    }
    status = 0;
out:
    cdp_page_close(page);
    if (ctx && b && !cdp_browser_gone(b, NULL))
        cdp_context_dispose(b, ctx, NULL);
    free(ctx);
    if (set_current(NULL))
        fprintf(stderr, "portier browse: interrupted\n");
    cdp_close(b);
    pthread_cancel(sigt);
    pthread_join(sigt, NULL);
    return interrupted ? 130 : status;
}
