/*
 * store_user.c - the store's members of staff (users with personal keys),
 * their signed-in dashboard sessions and the record of who acted on a task.
 * See store.h. It keeps only hashes of keys and session cookies; when a
 * session has ended is server/dashboard.c's to decide, not the store's.
 */
#define _GNU_SOURCE
#include "server/store.h"
#include "server/store_internal.h"
#include "util/crypto.h"
#include "util/err.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_user_add(store *st, int64_t acct, const char *name, const char *key_hash, char *err)
{
    store_stmt *s = store__q(st, "INSERT INTO users(account_id, name, key_hash, created_at)"
                                   " VALUES(?,?,?,?)");
    if (!s)
        return pt_errf(err, "store error");
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, name);
    store__bind_text(s, 3, key_hash);
    store__bind_int64(s, 4, pt_wall_ms());
    int rc = store__step(s);
    store__reset(s);
    if (rc == STORE_CONSTRAINT)
        return pt_errf(err, "the account already has a user named '%s'", name);
    if (rc != STORE_DONE)
        return pt_errf(err, "cannot add the user: %s", store__errmsg(st));
    return 0;
}

int store_user_remove(store *st, int64_t acct, const char *name)
{
    store_stmt *s = store__q(st, "SELECT id FROM users WHERE account_id=? AND name=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, acct);
    store__bind_text(s, 2, name);
    int rc = store__step(s);
    int64_t id = rc == STORE_ROW ? store__col_int64(s, 0) : 0;
    store__reset(s);
    if (rc != STORE_ROW)
        return rc == STORE_DONE ? 0 : -1;
    if (store_begin(st) < 0)
        return -1;
    store_stmt *d = store__q(st, "DELETE FROM web_sessions WHERE user_id=?");
    if (d)
        store__bind_int64(d, 1, id);
    store_stmt *u = store__q(st, "DELETE FROM users WHERE id=?");
    if (u)
        store__bind_int64(u, 1, id);
    if (store__run(st, d) < 0 || store__run(st, u) < 0) {
        store_rollback(st);
        return -1;
    }
    return store_commit(st) < 0 ? -1 : 1;
}

int store_user_by_key(store *st, const char *key_hash, int64_t *acct, int64_t *user,
                      char name[64])
{
    store_stmt *s =
        store__q(st, "SELECT account_id, id, name, key_hash FROM users WHERE key_hash=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, key_hash);
    int rc = store__step(s), found = 0;
    if (rc == STORE_ROW) {
        /* the index found it; compare once more in constant time */
        const char *stored = store__col_str(s, 3);
        found = stored && strlen(stored) == 64 && pt_equal_ct(stored, key_hash, 64);
        *acct = store__col_int64(s, 0);
        *user = store__col_int64(s, 1);
        snprintf(name, 64, "%s", store__col_str(s, 2));
    }
    store__reset(s);
    return found ? 1 : rc == STORE_ROW || rc == STORE_DONE ? 0 : -1;
}

/* ---- Web sessions -------------------------------------------------------- */

int store_session_add(store *st, const char *id_hash, const web_session *ws)
{
    store_stmt *s =
        store__q(st, "INSERT INTO web_sessions(id_hash, account_id, user_id, actor, csrf,"
                     " created_at, seen_at) VALUES(?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    store__bind_text(s, 1, id_hash);
    store__bind_int64(s, 2, ws->account_id);
    if (ws->user_id)
        store__bind_int64(s, 3, ws->user_id);
    store__bind_text(s, 4, ws->actor);
    store__bind_text(s, 5, ws->csrf);
    store__bind_int64(s, 6, ws->created_at);
    store__bind_int64(s, 7, ws->seen_at);
    return store__run(st, s);
}

int store_session_get(store *st, const char *id_hash, web_session *ws)
{
    store_stmt *s = store__q(st, "SELECT account_id, user_id, actor, csrf, created_at, seen_at"
                                   " FROM web_sessions WHERE id_hash=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, id_hash);
    memset(ws, 0, sizeof(*ws));
    int rc = store__step(s);
    if (rc == STORE_ROW) {
        ws->account_id = store__col_int64(s, 0);
        ws->user_id = store__col_int64(s, 1);
        snprintf(ws->actor, sizeof(ws->actor), "%s", store__col_str(s, 2));
        snprintf(ws->csrf, sizeof(ws->csrf), "%s", store__col_str(s, 3));
        ws->created_at = store__col_int64(s, 4);
        ws->seen_at = store__col_int64(s, 5);
    }
    store__reset(s);
    return rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
}

int store_session_touch(store *st, const char *id_hash, int64_t now)
{
    store_stmt *s = store__q(st, "UPDATE web_sessions SET seen_at=? WHERE id_hash=?");
    if (!s)
        return -1;
    store__bind_int64(s, 1, now);
    store__bind_text(s, 2, id_hash);
    return store__run(st, s);
}

int store_session_end(store *st, const char *id_hash)
{
    store_stmt *s = store__q(st, "DELETE FROM web_sessions WHERE id_hash=?");
    if (!s)
        return -1;
    store__bind_text(s, 1, id_hash);
    return store__run(st, s);
}

/* ---- Who acted on a task ------------------------------------------------- */

int store_action_add(store *st, int64_t taskid, const char *actor, const char *action)
{
    store_stmt *s =
        store__q(st, "INSERT INTO actions(task_id, at, actor, action) VALUES(?,?,?,?)");
    if (!s)
        return -1;
    store__bind_int64(s, 1, taskid);
    store__bind_int64(s, 2, pt_wall_ms());
    store__bind_text(s, 3, actor);
    store__bind_text(s, 4, action);
    return store__run(st, s);
}

cJSON *store_actions(store *st, int64_t taskid)
{
    cJSON *arr = cJSON_CreateArray();
    store_stmt *s =
        store__q(st, "SELECT at, actor, action FROM actions WHERE task_id=? ORDER BY id");
    if (!s)
        return arr;
    store__bind_int64(s, 1, taskid);
    while (store__step(s) == STORE_ROW) {
        cJSON *a = cJSON_CreateObject();
        store_json_time(a, "at", store__col_int64(s, 0));
        cJSON_AddStringToObject(a, "actor", store__col_str(s, 1));
        cJSON_AddStringToObject(a, "action", store__col_str(s, 2));
        cJSON_AddItemToArray(arr, a);
    }
    store__reset(s);
    return arr;
}
