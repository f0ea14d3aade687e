/*
 * bundle.c - SOP bundles: made from files (`portier account set-sop`, the
 * demo), stored as versions, written out and parsed for tasks, and the
 * cache of parsed versions with its own lock. See bundle.h. It never runs
 * an SOP and never opens a secret.
 */
#define _GNU_SOURCE
#include "server/bundle.h"
#include "util/err.h"
#include "util/fsutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *bundle_from_file(const char *path, char *err, size_t errsz)
{
    sop_diags d = {0};
    sop *s = sop_parse_file(path, &d);
    sop_diags_print(&d, stderr);
    sop_diags_free(&d);
    if (!s) {
        snprintf(err, errsz, "%s has errors (above); nothing was stored", path);
        return NULL;
    }
    cJSON *b = cJSON_CreateObject(), *files = cJSON_AddObjectToObject(b, "files");
    const char *base = strrchr(path, '/');
    cJSON_AddStringToObject(b, "main", base ? base + 1 : path);
    int ok = 1;
    for (size_t i = 0; i < s->nfiles && ok; i++) {
        char *text = NULL;
        const char *fb = strrchr(s->files[i], '/');
        fb = fb ? fb + 1 : s->files[i];
        if (cJSON_GetObjectItem(files, fb))
            continue;
        if (pt_read_file(s->files[i], 1u << 20, &text, NULL) < 0) {
            snprintf(err, errsz, "cannot read %s", s->files[i]);
            ok = 0;
            break;
        }
        cJSON_AddStringToObject(files, fb, text);
        free(text);
    }
    sop_free(s);
    char *json = ok ? cJSON_PrintUnformatted(b) : NULL;
    cJSON_Delete(b);
    return json;
}

int bundle_install(store *st, int64_t acct, const char *type, const char *bundle, int *version,
                   int only_if_changed)
{
    if (only_if_changed) {
        char *cur = NULL;
        int v = 0;
        if (store_sop_current(st, acct, type, &v, &cur) == 1 && cur && !strcmp(cur, bundle)) {
            free(cur);
            *version = v;
            return 0;
        }
        free(cur);
    }
    return store_sop_add(st, acct, type, bundle, version);
}

/* Writes the bundle's files into dir, through a temporary folder renamed
 * into place, unless an earlier call did (dir/.complete). */
static int write_files(const char *dir, const cJSON *files, char *err, size_t errsz)
{
    char mark[4200];
    snprintf(mark, sizeof(mark), "%s/.complete", dir);
    if (access(mark, F_OK) == 0)
        return 0;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", dir, (int)getpid());
    pt_rmtree(tmp);
    if (mkdir(tmp, 0700) < 0) {
        snprintf(err, errsz, "cannot write the SOP files under %s", dir);
        return -1;
    }
    for (const cJSON *f = files->child; f; f = f->next) {
        char path[4400];
        if (strchr(f->string, '/') || f->string[0] == '.' || !cJSON_IsString(f))
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmp, f->string);
        pt_write_file(path, f->valuestring, strlen(f->valuestring), 0600);
    }
    char tmark[4300];
    snprintf(tmark, sizeof(tmark), "%s/.complete", tmp);
    pt_write_file(tmark, "", 0, 0600);
    /* another process (a node on this host) may have put the same files
     * there meanwhile, and may be reading them: a complete folder is never
     * removed, only one without its mark */
    if (rename(tmp, dir) < 0 && access(mark, F_OK) != 0) {
        pt_rmtree(dir);
        if (rename(tmp, dir) < 0 && access(mark, F_OK) != 0) {
            pt_rmtree(tmp);
            snprintf(err, errsz, "cannot write the SOP files under %s", dir);
            return -1;
        }
    }
    pt_rmtree(tmp); /* when another's won */
    return 0;
}

sop *bundle_parse(const char *dir, const char *bundle_json, char *err, size_t errsz)
{
    cJSON *b = cJSON_Parse(bundle_json);
    cJSON *files = cJSON_GetObjectItem(b, "files");
    const char *main_name = cJSON_GetStringValue(cJSON_GetObjectItem(b, "main"));
    sop *out = NULL;
    if (!cJSON_IsObject(files) || !main_name) {
        snprintf(err, errsz, "the stored SOP is not a bundle");
        goto done;
    }
    if (write_files(dir, files, err, errsz) < 0)
        goto done;
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, main_name);
    sop_diags d = {0};
    out = sop_parse_file(path, &d);
    if (!out) {
        char *m = NULL;
        size_t ml = 0;
        FILE *f = open_memstream(&m, &ml);
        if (f) {
            sop_diags_print(&d, f);
            fclose(f);
        }
        snprintf(err, errsz, "%s", m ? m : "the SOP does not parse");
        free(m);
    }
    sop_diags_free(&d);
done:
    cJSON_Delete(b);
    return out;
}

/* ---- The cache ----------------------------------------------------------- */

struct bundle_cache {
    char *data_dir;
    pthread_mutex_t mu; /* guards the entries and writing the folders */
    struct sop_entry {
        int64_t acct;
        char type[48];
        int version;
        sop *sop;
    } * entries;
    size_t n;
};

bundle_cache *bundle_cache_new(const char *data_dir)
{
    bundle_cache *c = calloc(1, sizeof(*c));
    if (!c || !(c->data_dir = strdup(data_dir))) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void bundle_cache_free(bundle_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        sop_free(c->entries[i].sop);
    free(c->entries);
    pthread_mutex_destroy(&c->mu);
    free(c->data_dir);
    free(c);
}

static const sop *cached(bundle_cache *c, int64_t acct, const char *type, int version)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].acct == acct && c->entries[i].version == version &&
            !strcmp(c->entries[i].type, type))
            return c->entries[i].sop;
    return NULL;
}

int bundle_cache_get(bundle_cache *c, store *st, int64_t acct, const char *type, int version,
                     const sop **out, char *err)
{
    pthread_mutex_lock(&c->mu);
    *out = cached(c, acct, type, version);
    pthread_mutex_unlock(&c->mu);
    if (*out)
        return PT_FOUND;
    char *bundle = NULL;
    int got = store_sop_get(st, acct, type, version, &bundle);
    if (got < 0)
        return pt_errc(err, PT_ECLOSED, "the store could not be read");
    if (got == 0) {
        pt_errf(err, "the account has no SOP %s version %d", type, version);
        return PT_NONE;
    }
    char dir[4400]; /* data_dir/sops/<account>/<type>/<version> */
    snprintf(dir, sizeof(dir), "%s/sops/%lld", c->data_dir, (long long)acct);
    mkdir(dir, 0700);
    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%s", type);
    mkdir(dir, 0700);
    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%d", version);
    char perr[2048];
    pthread_mutex_lock(&c->mu); /* one writer of the folder at a time */
    sop *parsed = bundle_parse(dir, bundle, perr, sizeof(perr));
    free(bundle);
    struct sop_entry *n = parsed ? realloc(c->entries, (c->n + 1) * sizeof(*n)) : NULL;
    if (!n) {
        pthread_mutex_unlock(&c->mu);
        int rc = parsed ? pt_errc(err, PT_ENOMEM, "out of memory")
                        : pt_errc(err, PT_EINVAL, "the account's SOP %s_%d does not parse: %s",
                                  type, version, perr);
        sop_free(parsed);
        return rc;
    }
    c->entries = n;
    n[c->n].acct = acct;
    snprintf(n[c->n].type, sizeof(n[c->n].type), "%s", type);
    n[c->n].version = version;
    n[c->n].sop = parsed;
    c->n++;
    pthread_mutex_unlock(&c->mu);
    *out = parsed;
    return PT_FOUND;
}

/* ---- Task data ----------------------------------------------------------- */

void bundle_add_default(void *ud, const char *input, const char *value)
{
    vars_set(ud, input, value, 0);
}

int bundle_bind(store *st, int64_t acct, const sop *sp, const char *data, vars *inputs,
                char *problems, size_t n)
{
    vars *defaults = vars_new();
    if (!defaults) {
        snprintf(problems, n, "out of memory");
        return -1;
    }
    /* without them a task would run with the SOP's defaults instead */
    if (store_default_each(st, acct, bundle_add_default, defaults) < 0) {
        snprintf(problems, n, "the account's input defaults could not be read from the store");
        vars_free(defaults);
        return PT_ECLOSED;
    }
    int rc = vars_bind_data(sp, data, defaults, inputs, problems, n);
    vars_free(defaults);
    return rc;
}
