/*
 * keys.c - keystrokes (see run.h): named keys, text typed key by key, and
 * the keys that fill native date, time and datetime-local inputs, which
 * ignore inserted text (typed in the browser's own field order).
 *
 * It owns turning a value into keys. It must never find or judge elements,
 * and never speaks the protocol: cdp_input_* sends the keys.
 */
#define _GNU_SOURCE
#include "agent/agent.h"
#include "agent/run.h"
#include "util/err.h"
#include "util/json.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The US-layout virtual key code of a printable ASCII character, so that a
 * page sees the key a person would press ('.' is VK_OEM_PERIOD, not 46,
 * which is Delete); 0 for other characters (the text still arrives). */
static int char_key_code(unsigned char c)
{
    static const char *const oem[] = {";:", "=+", ",<", "-_", ".>", "/?", "`~"};
    static const char *const oem2[] = {"[{", "\\|", "]}", "'\""};
    static const char shifted_digits[] = ")!@#$%^&*(";
    if (c >= 'a' && c <= 'z')
        return c - 32;
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ')
        return c;
    for (int i = 0; i < 10; i++)
        if (c == (unsigned char)shifted_digits[i])
            return '0' + i;
    for (int i = 0; i < 7; i++)
        if (strchr(oem[i], c))
            return 186 + i;
    for (int i = 0; i < 4; i++)
        if (strchr(oem2[i], c))
            return 219 + i;
    return 0;
}

/* Length of the UTF-8 character at s (1 for a stray byte). */
static size_t utf8_len(const char *s)
{
    unsigned char c = (unsigned char)*s;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    for (size_t i = 1; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

/* One character typed as a key down and up. */
static int press_char(run *R, const char *c, size_t len, char *err)
{
    cdp_key k;
    memset(&k, 0, sizeof(k));
    memcpy(k.key, c, len);
    memcpy(k.text, c, len);
    k.key_code = char_key_code((unsigned char)c[0]);
    if (len == 1 && c[0] == ' ')
        snprintf(k.code, sizeof(k.code), "Space");
    return cdp_input_press(R->page, &k, err);
}

int keys_press(run *R, const char *name, char *err)
{
    cdp_key k;
    size_t len = name[0] ? utf8_len(name) : 0;
    if (len && !name[len] && len < sizeof(k.text))
        return press_char(R, name, len, err);
    if (cdp_key_named(name, &k) == PT_FOUND)
        return cdp_input_press(R->page, &k, err);
    return pt_errf(err,
                   "unknown key \"%s\" (Enter, Tab, Escape, Backspace, Delete, arrows, Home, "
                   "End, PageUp, PageDown, Space, or one character)",
                   name);
}

int keys_type(run *R, const char *text, char *err)
{
    for (const char *c = text; *c;) {
        size_t len = utf8_len(c);
        int rc = press_char(R, c, len, err);
        if (rc)
            return rc;
        c += len;
    }
    return 0;
}

/* Formats an ISO date the way a text field asks (by its placeholder). */
void keys_date_for_field(const char *iso, const char *placeholder, char *out, size_t outsz)
{
    const char *y = iso, *m = iso + 5, *d = iso + 8;
    if (strcasestr(placeholder, "DD/MM/YYYY"))
        snprintf(out, outsz, "%.2s/%.2s/%.4s", d, m, y);
    else if (strcasestr(placeholder, "YYYY-MM-DD"))
        snprintf(out, outsz, "%s", iso);
    else if (strcasestr(placeholder, "MMDDYYYY"))
        snprintf(out, outsz, "%.2s%.2s%.4s", m, d, y);
    else
        snprintf(out, outsz, "%.2s/%.2s/%.4s", m, d, y);
}

/* dom.js's dateOrder or hourCycle: from the look at the field when it
 * said (R->field), else asked now; out keeps its default when neither. */
static void locale_of(run *R, const char *op, char *out, size_t outsz, char *err)
{
    const char *seen = pt_json_str(R->field, op);
    if (seen && *seen) {
        snprintf(out, outsz, "%s", seen);
        return;
    }
    dom_out o;
    if (dom_call(R, R->depth, NULL, op, NULL, 1, &o, 3000, err) == 0 && cJSON_IsString(o.value))
        snprintf(out, outsz, "%s", o.value->valuestring);
    cJSON_Delete(o.value);
}

/* The keys that put value into a native date, time or datetime-local
 * input: its date part (if with_date) in the browser's field order, then
 * its time part (if with_time) as the locale's clock shows it (02:30 PM is
 * typed 0230P). Writes the normalised date and HH:MM the field will hold. */
int keys_datetime(run *R, const char *value, int with_date, int with_time, char iso[11],
                  char hhmm[8], char *kb, size_t kbsz, char *err)
{
    size_t n = 0;
    kb[0] = '\0';
    iso[0] = hhmm[0] = '\0';
    char date_part[64], time_part[32] = "";
    snprintf(date_part, sizeof(date_part), "%s", value);
    if (with_time) {
        /* "2025-03-25T14:30", "2025-03-25 14:30" or, for time, "14:30" */
        char *sep = with_date ? strpbrk(date_part, "T ") : date_part;
        if (!sep || sscanf(with_date ? sep + 1 : sep, "%31s", time_part) != 1)
            return pt_errf(err, "the field takes a %s, and the value is not one",
                           with_date ? "date and time" : "time");
        if (with_date)
            *sep = '\0';
    }
    if (with_date) {
        if (vars_normalize_date(date_part, iso) < 0)
            return pt_errf(err, "the field is a date, and the value is not one");
        char order[8] = "mdy";
        locale_of(R, "dateOrder", order, sizeof(order), err);
        for (const char *c = order; *c && n + 4 < kbsz; c++) {
            const char *part = *c == 'y' ? iso : *c == 'm' ? iso + 5 : iso + 8;
            size_t len = *c == 'y' ? 4 : 2;
            memcpy(kb + n, part, len);
            n += len;
        }
        kb[n] = '\0';
    }
    if (with_time) {
        int h, m;
        char ampm[4] = "";
        if (sscanf(time_part, "%d:%d%3s", &h, &m, ampm) < 2 || h < 0 || h > 23 || m < 0 || m > 59)
            return pt_errf(err, "the field takes a time such as 14:30, and the value is not one");
        if ((ampm[0] == 'p' || ampm[0] == 'P') && h < 12)
            h += 12;
        snprintf(hhmm, 8, "%02d:%02d", h % 100, m % 100);
        char cycle[8] = "h12";
        locale_of(R, "hourCycle", cycle, sizeof(cycle), err);
        int h12 = !strcmp(cycle, "h12") || !strcmp(cycle, "h11");
        char t[16];
        if (h12)
            snprintf(t, sizeof(t), "%02d%02d%c", h % 12 == 0 ? 12 : h % 12, m, h < 12 ? 'A' : 'P');
        else
            snprintf(t, sizeof(t), "%02d%02d", h, m);
        /* '|' marks where the date ends and the time begins */
        snprintf(kb + n, kbsz - n, "%s%s", with_date ? "|" : "", t);
    }
    return 0;
}
