/*
 * session.c - kept sessions (agent.h): a browser context and its page that
 * outlive one run, and the one fact the agent keeps about them, whether a
 * run signed in with them.
 *
 * It owns the context's life. It never decides who may use a session (the
 * host's pool does) and holds nothing of a task: between runs the page is on
 * about:blank and its recorded dialogs and exceptions are forgotten.
 */
#include "agent/agent.h"
#include "agent/run.h"

#include <stdlib.h>
#include <string.h>

int agent_session_open(cdp_browser *b, agent_session **out, char *err)
{
    *out = NULL;
    agent_session *s = calloc(1, sizeof(*s));
    if (!s)
        return pt_errc(err, PT_ENOMEM, "out of memory");
    s->browser = b;
    int rc = cdp_context_create(b, &s->context, err);
    if (!rc)
        rc = cdp_page_open(b, s->context, &s->page, err);
    if (rc) {
        agent_session_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void agent_session_close(agent_session *s)
{
    if (!s)
        return;
    cdp_page_close(s->page);
    if (s->context && !cdp_browser_gone(s->browser, NULL))
        cdp_context_dispose(s->browser, s->context, NULL);
    free(s->context);
    free(s);
}

int agent_session_signed_in(const agent_session *s)
{
    return s && s->signed_in;
}

cdp_browser *agent_session_browser(const agent_session *s)
{
    return s->browser;
}

void session_leave(agent_session *s)
{
    char err[ERR_SIZE];
    /* nothing of this run stays on screen for the next one */
    if (cdp_page_navigate(s->page, "about:blank", CDP_WAIT_LOAD, 5000, err))
        s->signed_in = 0; /* a page that cannot even leave is not kept */
    cdp_page_forget(s->page);
}
