/*
 * input.c - real input to a page: mouse events at a point, key events,
 * inserted text, and the table of named keys.
 *
 * It owns the Input.dispatchMouseEvent / dispatchKeyEvent / insertText
 * messages and what each key is (key, code, text, virtual key code). It
 * must never decide where to click or what to type: callers say so.
 */
#include "cdp/cdp_internal.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CALL_TIMEOUT 15000

static const char *const mouse_types[] = {
    [CDP_MOUSE_MOVE] = "mouseMoved",
    [CDP_MOUSE_PRESS] = "mousePressed",
    [CDP_MOUSE_RELEASE] = "mouseReleased",
};

static cJSON *mouse_params(enum cdp_mouse_event type, double x, double y, int clicks)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", mouse_types[type]);
    cJSON_AddNumberToObject(m, "x", x);
    cJSON_AddNumberToObject(m, "y", y);
    if (type != CDP_MOUSE_MOVE) {
        cJSON_AddStringToObject(m, "button", "left");
        cJSON_AddNumberToObject(m, "clickCount", clicks);
        cJSON_AddNumberToObject(m, "buttons", type == CDP_MOUSE_PRESS ? 1 : 0);
    }
    return m;
}

/* Sends the n events of one gesture (a click, a key press) back to back and
 * waits for all their replies: one round trip. Chromium takes a session's
 * input in the order it was sent, each event dispatched to the page before
 * the next, as a person's would be. methods[i] with params[i] (taken). 0,
 * or the first error. */
#define GESTURE_MAX 8
static int send_gesture(cdp_page *p, const char *const *methods, cJSON **params, int n, char *err)
{
    cdp_pending *calls[GESTURE_MAX] = {0};
    int rc = 0;
    cdp__page_fence(p);
    cdp__count_round_trip();
    for (int i = 0; i < n; i++) {
        if (rc || i >= GESTURE_MAX)
            cJSON_Delete(params[i]);
        else
            rc = cdp__call_begin(cdp_page_session(p), methods[i], params[i], &calls[i], err);
    }
    for (int i = 0; i < n && i < GESTURE_MAX; i++) {
        char e[CDP_ERR_MAX];
        int r = calls[i] ? cdp__call_finish(calls[i], NULL, rc ? 0 : CALL_TIMEOUT, e) : 0;
        if (r && !rc) {
            pt_errf(err, "%s", e);
            rc = r;
        }
    }
    return rc;
}

static const char MOUSE[] = "Input.dispatchMouseEvent", KEY[] = "Input.dispatchKeyEvent";

int cdp_input_mouse(cdp_page *p, enum cdp_mouse_event type, double x, double y, int clicks,
                    char *err)
{
    cJSON *m = mouse_params(type, x, y, clicks);
    const char *const methods[] = {MOUSE};
    return send_gesture(p, methods, &m, 1, err);
}

int cdp_input_click(cdp_page *p, double x, double y, char *err)
{
    cJSON *m[3] = {mouse_params(CDP_MOUSE_MOVE, x, y, 0), mouse_params(CDP_MOUSE_PRESS, x, y, 1),
                   mouse_params(CDP_MOUSE_RELEASE, x, y, 1)};
    const char *const methods[] = {MOUSE, MOUSE, MOUSE};
    return send_gesture(p, methods, m, 3, err);
}

int cdp_input_drop_files(cdp_page *p, double x, double y, const char *const *paths, size_t n,
                         char *err)
{
    static const char *const types[] = {"dragEnter", "dragOver", "drop"};
    int rc = 0;
    for (size_t t = 0; t < 3 && !rc; t++) {
        cJSON *m = cJSON_CreateObject(), *data = cJSON_CreateObject();
        cJSON *files = cJSON_AddArrayToObject(data, "files");
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(files, cJSON_CreateString(paths[i]));
        cJSON_AddArrayToObject(data, "items");
        cJSON_AddNumberToObject(data, "dragOperationsMask", 1); /* copy */
        cJSON_AddStringToObject(m, "type", types[t]);
        cJSON_AddNumberToObject(m, "x", x);
        cJSON_AddNumberToObject(m, "y", y);
        cJSON_AddItemToObject(m, "data", data);
        cdp__page_fence(p);
        rc = cdp_call(cdp_page_session(p), "Input.dispatchDragEvent", m, NULL, CALL_TIMEOUT, err);
    }
    return rc;
}

static const struct named_key {
    const char *name, *code, *text;
    int vk;
} named_keys[] = {
    {"Enter", "Enter", "\r", 13},
    {"Tab", "Tab", NULL, 9},
    {"Escape", "Escape", NULL, 27},
    {"Backspace", "Backspace", NULL, 8},
    {"Delete", "Delete", NULL, 46},
    {"ArrowDown", "ArrowDown", NULL, 40},
    {"ArrowUp", "ArrowUp", NULL, 38},
    {"ArrowLeft", "ArrowLeft", NULL, 37},
    {"ArrowRight", "ArrowRight", NULL, 39},
    {"Home", "Home", NULL, 36},
    {"End", "End", NULL, 35},
    {"PageDown", "PageDown", NULL, 34},
    {"PageUp", "PageUp", NULL, 33},
    {"Space", "Space", " ", 32},
};

int cdp_key_named(const char *name, cdp_key *k)
{
    memset(k, 0, sizeof(*k));
    for (size_t i = 0; i < sizeof(named_keys) / sizeof(named_keys[0]); i++) {
        const struct named_key *n = &named_keys[i];
        if (strcasecmp(n->name, name) != 0)
            continue;
        snprintf(k->key, sizeof(k->key), "%s", n->name);
        snprintf(k->code, sizeof(k->code), "%s", n->code);
        snprintf(k->text, sizeof(k->text), "%s", n->text ? n->text : "");
        k->key_code = n->vk;
        return PT_FOUND;
    }
    if (strlen(name) != 1)
        return PT_NONE;
    k->key[0] = k->text[0] = name[0];
    k->key_code = (name[0] >= 'a' && name[0] <= 'z') ? name[0] - 32 : name[0];
    return PT_FOUND;
}

static cJSON *key_params(enum cdp_key_event type, const cdp_key *k)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", type == CDP_KEY_DOWN ? "keyDown" : "keyUp");
    cJSON_AddStringToObject(m, "key", k->key);
    if (k->code[0])
        cJSON_AddStringToObject(m, "code", k->code);
    if (type == CDP_KEY_DOWN && k->text[0]) {
        cJSON_AddStringToObject(m, "text", k->text);
        cJSON_AddStringToObject(m, "unmodifiedText", k->text);
    }
    cJSON_AddNumberToObject(m, "windowsVirtualKeyCode", k->key_code);
    if (k->modifiers)
        cJSON_AddNumberToObject(m, "modifiers", k->modifiers);
    return m;
}

int cdp_input_key(cdp_page *p, enum cdp_key_event type, const cdp_key *k, char *err)
{
    cJSON *m = key_params(type, k);
    const char *const methods[] = {KEY};
    return send_gesture(p, methods, &m, 1, err);
}

int cdp_input_press(cdp_page *p, const cdp_key *k, char *err)
{
    cJSON *m[2] = {key_params(CDP_KEY_DOWN, k), key_params(CDP_KEY_UP, k)};
    const char *const methods[] = {KEY, KEY};
    return send_gesture(p, methods, m, 2, err);
}

int cdp_input_replace(cdp_page *p, const char *text, char *err)
{
    /* Ctrl+A, with the editing command named, as Chromium's own shortcut
     * would run it */
    cdp_key a = {.key = "a", .code = "KeyA", .key_code = 65, .modifiers = CDP_MOD_CTRL};
    cdp_key del;
    cdp_key_named("Delete", &del);
    cJSON *sel = key_params(CDP_KEY_DOWN, &a);
    cJSON_ReplaceItemInObjectCaseSensitive(sel, "type", cJSON_CreateString("rawKeyDown"));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(sel, "commands"), cJSON_CreateString("selectAll"));
    cJSON *m[4] = {sel, key_params(CDP_KEY_UP, &a)};
    const char *methods[4] = {KEY, KEY, KEY, KEY};
    if (*text) {
        m[2] = cJSON_CreateObject();
        cJSON_AddStringToObject(m[2], "text", text);
        methods[2] = "Input.insertText";
    } else {
        m[2] = key_params(CDP_KEY_DOWN, &del);
        m[3] = key_params(CDP_KEY_UP, &del);
    }
    return send_gesture(p, methods, m, *text ? 3 : 4, err);
}

int cdp_input_insert_text(cdp_page *p, const char *text, char *err)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "text", text);
    cdp__page_fence(p);
    return cdp__call(cdp_page_session(p), "Input.insertText", m, NULL, CALL_TIMEOUT, err);
}
