/*
 * fuzz_sop.c - fuzz target: the SOP parser and linter on arbitrary bytes.
 * Whatever the input, it must return (a tree or diagnostics), never crash,
 * read out of bounds or leak. `use` is disabled (no folder).
 */
#include "agent/sop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sop_diags d = {0};
    sop *s = sop_parse_text("fuzz.sop", text, NULL, &d);
    sop_free(s);
    sop_diags_free(&d);
    free(text);
    return 0;
}
