/*
 * account_setup.h - the operator's account set-up, shared by
 * `portier account ...` and `portier serve --demo`.
 */
#ifndef PORTIER_ACCOUNT_SETUP_H
#define PORTIER_ACCOUNT_SETUP_H

#include "server/store.h"

/* Opens (and migrates) the store and reads the master key. */
int setup_open(const char *db, store **st, unsigned char master[32], char *err);
/* A new account with a new API key (*key, shown once) and webhook secret
 * (*whsec, malloc'd). */
int setup_create(store *st, const unsigned char master[32], const char *name, const char *portal,
                 const char *webhook_url, int64_t *id, char key[64], char **whsec, char *err);
int setup_rotate_key(store *st, int64_t id, char key[64]);
int setup_set_secret(store *st, const unsigned char master[32], int64_t id, const char *name,
                     const char *value);
/* The SOP at path and every file it `use`s, as a bundle (malloc'd JSON);
 * NULL if it has errors (printed on stderr). */
char *setup_bundle(const char *path, char *err, size_t errsz);
/* Stores a bundle as the type's next version (or, with only_if_changed,
 * keeps the current version when it is the same text). */
int setup_set_sop(store *st, int64_t id, const char *type, const char *bundle, int *version,
                  int only_if_changed);

#endif
