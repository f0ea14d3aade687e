/*
 * json.h - the one cJSON accessor every module wrote for itself.
 */
#ifndef PT_JSON_H
#define PT_JSON_H

#include <cjson/cJSON.h>

/* The string member k of object o, or NULL (no o, no k, not a string). */
static inline const char *pt_json_str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

#endif
