/*
 * intercept.c - answering the requests that cdp_page_intercept pauses:
 * let one go on, fulfil it with a response of the caller's, fail it, or read
 * the body of its response; and the typed view of a paused request.
 *
 * It owns the Fetch.continueRequest / fulfillRequest / failRequest /
 * getResponseBody messages and the shape of Fetch.requestPaused. Pausing
 * and queueing (Fetch.enable on every session) is page.c's. It must never
 * decide how a request is answered: that is the caller's.
 */
#include "cdp/cdp_internal.h"
#include "util/err.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT 15000

void cdp__request_view(const cJSON *params, cdp_request *req)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(params, "request");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(params, "responseStatusCode");
    memset(req, 0, sizeof(*req));
    req->id = pt_json_str(params, "requestId");
    req->method = pt_json_str(r, "method");
    req->url = pt_json_str(r, "url");
    req->post_data = pt_json_str(r, "postData");
    req->resource_type = pt_json_str(params, "resourceType");
    req->headers = cJSON_GetObjectItemCaseSensitive(r, "headers");
    req->has_response = cJSON_IsNumber(code);
    req->status = req->has_response ? code->valueint : 0;
    req->status_text = pt_json_str(params, "responseStatusText");
    req->response_headers = cJSON_GetObjectItemCaseSensitive(params, "responseHeaders");
    req->network_id = pt_json_str(params, "networkId");
}

static double number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int cdp__net_view(const char *method, const cJSON *params, cdp_net_event *ev)
{
    static const struct {
        const char *method;
        enum cdp_net_kind kind;
    } kinds[] = {
        {"Network.requestWillBeSent", CDP_NET_SENT},
        {"Network.responseReceived", CDP_NET_RESPONSE},
        {"Network.responseReceivedExtraInfo", CDP_NET_RAW_HEADERS},
        {"Network.loadingFinished", CDP_NET_FINISHED},
        {"Page.domContentEventFired", CDP_NET_DOM_CONTENT},
        {"Page.loadEventFired", CDP_NET_LOAD},
    };
    size_t i = 0;
    while (i < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[i].method, method))
        i++;
    if (i == sizeof(kinds) / sizeof(kinds[0]))
        return -1;
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(params, "response");
    memset(ev, 0, sizeof(*ev));
    ev->kind = kinds[i].kind;
    ev->request_id = pt_json_str(params, "requestId");
    ev->wall_time = number(params, "wallTime");
    ev->timestamp = number(params, "timestamp");
    ev->status =
        (int)(ev->kind == CDP_NET_RESPONSE ? number(resp, "status") : number(params, "statusCode"));
    ev->timing = cJSON_GetObjectItemCaseSensitive(resp, "timing");
    ev->headers = ev->kind == CDP_NET_RAW_HEADERS
                      ? cJSON_GetObjectItemCaseSensitive(params, "headers")
                      : NULL;
    return 0;
}

static cJSON *request_params(const char *request_id)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "requestId", request_id ? request_id : "");
    return p;
}

int cdp_request_continue(cdp_session *s, const char *request_id, char *err)
{
    return cdp_call(s, "Fetch.continueRequest", request_params(request_id), NULL, CALL_TIMEOUT,
                    err);
}

int cdp_request_fail(cdp_session *s, const char *request_id, char *err)
{
    cJSON *p = request_params(request_id);
    cJSON_AddStringToObject(p, "errorReason", "Failed");
    return cdp_call(s, "Fetch.failRequest", p, NULL, CALL_TIMEOUT, err);
}

int cdp_request_fulfil(cdp_session *s, const char *request_id, int status, const char *phrase,
                       const cJSON *headers, const char *body_b64, char *err)
{
    cJSON *p = request_params(request_id);
    cJSON_AddNumberToObject(p, "responseCode", status);
    if (phrase)
        cJSON_AddStringToObject(p, "responsePhrase", phrase);
    cJSON_AddItemToObject(p, "responseHeaders",
                          headers ? cJSON_Duplicate(headers, 1) : cJSON_CreateArray());
    cJSON_AddStringToObject(p, "body", body_b64 ? body_b64 : "");
    return cdp_call(s, "Fetch.fulfillRequest", p, NULL, CALL_TIMEOUT, err);
}

int cdp_request_body(cdp_session *s, const char *request_id, char **body, int *base64, char *err)
{
    cJSON *res = NULL;
    *body = NULL;
    *base64 = 0;
    int rc =
        cdp_call(s, "Fetch.getResponseBody", request_params(request_id), &res, CALL_TIMEOUT, err);
    if (rc)
        return rc;
    const char *b = pt_json_str(res, "body");
    *base64 = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "base64Encoded"));
    if (b && !(*body = strdup(b)))
        rc = pt_errf(err, "out of memory");
    cJSON_Delete(res);
    return rc;
}
