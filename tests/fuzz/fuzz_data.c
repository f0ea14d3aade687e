/*
 * fuzz_data.c - fuzz target: task data (key: value lines or JSON), dates,
 * and binding to the claim SOP's inputs, on arbitrary bytes.
 */
#include "agent/vars.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char claim[] =
    "sop c \"C\"\nsummary \"s\"\ninput member_id required /^\\d{9}$/\ninput dob required date\n"
    "input pos required map home=12 office=11\ninput payer default \"PPO\"\n"
    "goto \"{{member_id}}{{dob}}{{pos}}{{payer}}\"\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sop *s;
    if (!s)
        s = sop_parse_text("c.sop", claim, NULL, NULL);
    char *text = malloc(size + 1);
    if (!text || !s)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    vars *v = vars_new(), *out = vars_new();
    char errs[4096], iso[11];
    vars_parse_data(v, text, errs, sizeof(errs));
    vars_bind_inputs(s, v, NULL, out, errs, sizeof(errs));
    vars_normalize_date(text, iso);
    char err[512];
    free(vars_expand(text, v, NULL, NULL, NULL, 1, err));
    vars_free(v);
    vars_free(out);
    free(text);
    return 0;
}
