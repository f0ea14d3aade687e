/*
 * cli_store.c - `portier store copy`: moves an installation's database into
 * another one (SQLite to PostgreSQL, to go from one node to several). The
 * copying is server/store_copy.c's; this file reads arguments, opens both
 * stores with the source's master key, and says what to run next.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int store_usage(const char *why)
{
    if (strcmp(why, "help"))
        fprintf(stderr, "portier store: %s\n", why);
    fprintf(strcmp(why, "help") ? stderr : stdout,
            "usage: portier store copy --from portier.db --to postgres://USER@HOST:PORT/DB\n"
            "                          [--master-key-file FILE]\n"
            "  copies every table into an empty database (one that has rows is refused);\n"
            "  the copy is used with the same master key (the source's DB.key, or\n"
            "  PORTIER_MASTER_KEY / --master-key-file) and the same data folder\n"
            "  (serve --data-dir portier.db.d)\n");
    return 2;
}

int cli_store(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *key_file = NULL;
    int copy = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help"))
            return store_usage("help") - 2;
        if (!strcmp(a, "copy") && !copy) {
            copy = 1;
            continue;
        }
        if (!v || strncmp(a, "--", 2))
            return store_usage(v ? "unknown argument" : "an option needs a value");
        i++;
        if (!strcmp(a, "--from"))
            from = v;
        else if (!strcmp(a, "--to"))
            to = v;
        else if (!strcmp(a, "--master-key-file"))
            key_file = v;
        else
            return store_usage("unknown option");
    }
    if (!copy || !from || !to)
        return store_usage("copy needs --from and --to");
    char err[PT_ERR_MAX];
    if (!cli_db_exists("portier store", from)) /* a missing source is not made empty */
        return 1;
    store *src = store_open(from, 1, err), *dst = NULL;
    keys *k = NULL;
    int rc = 1;
    int64_t rows = 0;
    if (!src || !(k = keys_load(from, key_file, err)) || !(dst = store_open(to, 1, err))) {
        fprintf(stderr, "portier store: %s\n", err);
        goto out;
    }
    keys_attach(k, dst);
    if (store_copy(src, dst, &rows, err) < 0) {
        fprintf(stderr, "portier store: %s\n", err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", store_label(src));
    cJSON_AddStringToObject(o, "to", store_label(dst));
    cJSON_AddNumberToObject(o, "rows", (double)rows);
    cli_print_json(o);
    fprintf(stderr,
            "portier store: copied; serve it with the same master key%s%s%s and the same "
            "data folder (--data-dir)\n",
            keys_beside_db(k) ? " (" : "", keys_beside_db(k) ? from : "",
            keys_beside_db(k) ? ".key: --master-key-file)" : "");
    rc = 0;
out:
    keys_free(k);
    store_close(dst);
    store_close(src);
    return rc;
}
