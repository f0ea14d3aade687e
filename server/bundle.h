/*
 * bundle.h - SOP bundles: an SOP and every file it `use`s, stored as one
 * version of an account's SOP for a task type, written out and parsed when a
 * task needs it, and the task data bound to its inputs.
 *
 * A bundle is a JSON object {"files": {"name.sop": "text", ...}, "main":
 * "name.sop"}; a version never changes once stored.
 */
#ifndef PORTIER_BUNDLE_H
#define PORTIER_BUNDLE_H

#include "agent/sop.h"
#include "agent/vars.h"
#include "server/store.h"

#include <stddef.h>
#include <stdint.h>

/* The SOP at path and every file it `use`s, as a bundle (a new string the
 * caller frees); NULL if it has errors (printed on stderr) or a file cannot
 * be read, with errsz bytes of err saying which. */
char *bundle_from_file(const char *path, char *err, size_t errsz);
/* Stores a bundle as the type's next version into *version (or, with
 * only_if_changed, keeps the current version when it is the same text). */
int bundle_install(store *st, int64_t acct, const char *type, const char *bundle, int *version,
                   int only_if_changed);
/* Writes a bundle's files into dir (once) and parses its main file: a new
 * tree (sop_free), or NULL with errsz bytes of err. */
sop *bundle_parse(const char *dir, const char *bundle_json, char *err, size_t errsz);

/* Parsed SOPs by account, type and version (never evicted: versions are
 * few), written out under data_dir/sops/. Thread-safe; its own lock. */
typedef struct bundle_cache bundle_cache;

/* A new cache over data_dir (copied), or NULL. */
bundle_cache *bundle_cache_new(const char *data_dir);
void bundle_cache_free(bundle_cache *c);
/* An account's SOP for a type and version, parsed, in *out (borrowed from
 * the cache: it lives as long as the cache). PT_FOUND; else with err:
 * PT_NONE (no such version), PT_EINVAL (it does not parse), PT_ECLOSED
 * (the store could not be read: try again later), PT_ENOMEM. */
int bundle_cache_get(bundle_cache *c, store *st, int64_t acct, const char *type, int version,
                     const sop **out, char *err);

/* Binds a task's data (its text) to the SOP's inputs, with the account's
 * input defaults, into `inputs` (borrowed). 0, or -1 / the number of
 * problems, listed in problems ("name: reason" lines); PT_ECLOSED when the
 * defaults could not be read (the store's trouble, not the data's). */
int bundle_bind(store *st, int64_t acct, const sop *sp, const char *data, vars *inputs,
                char *problems, size_t n);
/* A store_*_each callback that sets input = value in the vars ud. */
void bundle_add_default(void *ud, const char *input, const char *value);

#endif
