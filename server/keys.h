/*
 * keys.h - keys and sealing: the master key, account secrets (portal
 * credentials, TOTP seeds), API keys and webhook signing secrets.
 *
 * This is the only module that sees a secret in the clear on its way into or
 * out of the store: the store holds sealed bytes (AES-GCM under the master
 * key, bound to the account and the secret's name) and API keys only as
 * hashes. The master key never leaves a `keys` handle.
 */
#ifndef PORTIER_KEYS_H
#define PORTIER_KEYS_H

#include "agent/vars.h"
#include "server/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct keys keys;

/* The master key of the database at db_path: PORTIER_MASTER_KEY (64 hex
 * digits), else the file key_file (or, if NULL, PORTIER_MASTER_KEY_FILE),
 * else DB.key (made with mode 0600 on first use). A new handle (free with
 * keys_free), or NULL with err. A key file must hold 64 hex digits.
 * A PostgreSQL store (store_is_pg) takes only the first two: with it there
 * is no "beside the database" to fall back to, and no key is refused. */
keys *keys_load(const char *db_path, const char *key_file, char *err);
/* Whether the key came from a file in the database's own folder (or its
 * data folder): a copy or a backup of that folder carries its own key. */
int keys_beside_db(const keys *k);
/* Wipes the key and frees the handle (NULL: no-op). */
void keys_free(keys *k);

/* Seals value as the account's secret `name`: a new buffer in *out (the
 * caller frees it). 0 or negative. */
int keys_seal(const keys *k, int64_t acct, const char *name, const char *value, unsigned char **out,
              size_t *outlen);
/* Opens what keys_seal sealed: a new string (free it with keys_wipe), or
 * NULL if it does not open (another master key, other account or name). */
char *keys_open(const keys *k, int64_t acct, const char *name, const unsigned char *sealed,
                size_t len);
/* Overwrites and frees a secret in the clear (NULL: no-op). */
void keys_wipe(char *plain);

/* ---- Data at rest -------------------------------------------------------
 * Everything that carries PHI (task columns, outbox payloads, uploaded
 * files, trajectories) is sealed under its account's data key: 32 random
 * bytes made on first use and stored wrapped by the master key
 * (accounts.data_key). Clearing an account's data key leaves all of its
 * sealed data unreadable. `aad` names where the bytes belong (a row and
 * column, a file), so bytes moved elsewhere do not open. */

/* Attaches the sealer of task columns and outbox payloads to a store
 * connection (k is borrowed: it must outlive st). */
void keys_attach(const keys *k, store *st);
/* Seals n bytes of the account's data: a new buffer (*out, *outlen). */
int keys_seal_data(const keys *k, store *st, int64_t acct, const char *aad, const void *plain,
                   size_t n, unsigned char **out, size_t *outlen);
/* Opens what keys_seal_data sealed: a new NUL-terminated buffer (*plain,
 * *n; the caller frees it). 0 or negative (PT_ECLOSED: the account's key
 * could not be read from the store, which may work again later). */
int keys_open_data(const keys *k, store *st, int64_t acct, const char *aad,
                   const unsigned char *in, size_t len, char **plain, size_t *n);
/* Writes a file sealed (mode 0600, replacing it atomically). */
int keys_write_file(const keys *k, store *st, int64_t acct, const char *aad, const char *path,
                    const void *data, size_t n);
/* Reads a file keys_write_file wrote, opened (a file without the seal's
 * mark is read as it is: written before sealing). At most max bytes.
 * A new buffer (*out, *n; the caller frees it). 0 or negative (PT_ECLOSED
 * as keys_open_data). */
int keys_read_file(const keys *k, store *st, int64_t acct, const char *aad, const char *path,
                   size_t max, char **out, size_t *n);

/* A task's trajectory file `name` in folder dir (a run's trajectory):
 * written sealed, read opened (as keys_write_file, keys_read_file). */
int keys_write_trajectory(const keys *k, store *st, int64_t acct, int64_t taskid, const char *dir,
                          const char *name, const void *data, size_t n);
int keys_read_trajectory(const keys *k, store *st, int64_t acct, int64_t taskid, const char *dir,
                         const char *name, size_t max, char **out, size_t *n);

/* ---- Portal secrets ------------------------------------------------------ */

/* Stores an account's secret, sealed. */
int keys_set_secret(const keys *k, store *st, int64_t acct, const char *name, const char *value);
/* Opens every secret of the account into `into` (borrowed), registering
 * each value with the log's mask (pt_log_mask). A secret that does not open
 * is logged by name and skipped. 0, or negative when the store could not
 * be read (what was read is in `into`). */
int keys_load_secrets(const keys *k, store *st, int64_t acct, vars *into);

/* ---- API keys ------------------------------------------------------------ */

/* The hash the store keeps of an API key (64 hex digits). */
void keys_api_key_hash(const char *key, char hash[65]);
/* A new account with a new API key (*key, "pk_" + 48 hex digits, shown
 * once) and a new webhook secret (*whsec, a new string the caller frees). */
int keys_create_account(const keys *k, store *st, const char *name, const char *portal,
                        const char *webhook_url, int64_t *id, char key[64], char **whsec,
                        char *err);
/* A new API key for the account (the old one stops working). */
int keys_rotate_api_key(store *st, int64_t id, char key[64]);
/* A member of staff's personal dashboard key ("pu_" + 48 hex digits, into
 * key; only its hash is stored) for a new user of the account. 0, or -1
 * with err. */
int keys_add_user(store *st, int64_t acct, const char *name, char key[64], char *err);

/* ---- Webhook secrets ----------------------------------------------------- */

/* The account's current signing secret ("whsec_..."; free with keys_wipe),
 * or NULL if it has none or it does not open. */
char *keys_webhook_secret(const keys *k, const account *a);
/* The secrets a delivery is signed with: the current one, then the previous
 * one while its grace period lasts. out[] receives *n strings (free each
 * with keys_wipe). */
void keys_webhook_secrets(const keys *k, const account *a, char *out[2], size_t *n);
/* A new signing secret replacing the current one at once (no grace):
 * *whsec is a new string the caller frees. */
int keys_renew_webhook_secret(const keys *k, store *st, int64_t acct, char **whsec);
/* A new signing secret; the current one stays valid until `until` (epoch
 * ms). *fresh is the new secret (the caller frees it). */
int keys_rotate_webhook_secret(const keys *k, store *st, const account *a, int64_t until,
                               char **fresh);

#endif
