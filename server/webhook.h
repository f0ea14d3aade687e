/*
 * webhook.h - signed, durable, retried delivery of task events
 * (docs/webhooks.md).
 *
 * One account's endpoint holds at most an eighth of the delivery slots, so
 * a dead or slow one never holds up the other accounts' events.
 *
 * Events are rows of the store's outbox, written in the same transaction as
 * the task's final status. A deliverer thread sends them with libcurl multi,
 * signed as the Standard Webhooks specification says, and records every
 * attempt; a failed attempt is retried on a schedule, a crash loses nothing
 * (undelivered rows are still in the outbox after a restart).
 */
#ifndef PORTIER_WEBHOOK_H
#define PORTIER_WEBHOOK_H

#include "server/keys.h"
#include "util/buf.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct webhooks webhooks;

/* Starts the deliverer on its own thread with its own store connection;
 * k (borrowed) opens the accounts' signing secrets and must outlive it.
 * node (copied) names this node in the outbox rows it claims: every node
 * works the outbox, and a row is sent by the node that claimed it (the
 * claim outlives an attempt's timeout; one a dead node left expires). */
webhooks *webhooks_start(const char *db_path, const char *node, const keys *k, char *err);
/* Delivers to loopback, link-local and private addresses too (serve
 * --allow-private-webhooks); otherwise every connect is checked, whatever
 * the endpoint's name resolves to then. */
void webhooks_allow_private(webhooks *w, int allow);
/* Whether url may be an account's endpoint: http or https, with a host;
 * unless allow_private, the host is resolved and none of its addresses may
 * be loopback, link-local, private or otherwise not public. 0, or -1 with
 * err saying which (the URL is an operator's, not PHI). */
int webhook_url_check(const char *url, int allow_private, char *err);
/* New rows may be due: look now. */
void webhooks_kick(webhooks *w);
/* Stops; attempts in flight are abandoned (and sent again after restart). */
void webhooks_stop(webhooks *w);
/* Prometheus lines: attempts, failures, dead letters, latency; every
 * sample carries labels (`node="a"`, without braces). */
void webhooks_metrics(webhooks *w, const char *labels, pt_buf *out);

/* RFC 8785 (JCS) canonical JSON of v (malloc'd): sorted keys, no space. */
char *webhook_jcs(const cJSON *v);
/* The value of webhook-signature for these secrets (whsec_...): one
 * "v1,<base64>" per secret, space-separated, over "id.timestamp.body".
 * Returns 0, or -1 if a secret is not whsec_ base64. */
int webhook_signature(const char *const *secrets, size_t n, const char *id, int64_t timestamp,
                      const char *body, size_t bodylen, char *out, size_t outsz);
/* The envelope {"signature", "event", "created_at", "data"}; signature is
 * the hex HMAC-SHA256 of data's JCS form under secret's key (malloc'd). */
char *webhook_envelope(const char *event, int64_t created_ms, const char *data_json,
                       const char *secret);

/* Sends one event now, synchronously (`portier webhook test`): *status is
 * the HTTP status (0: none), *reply the first bytes of the body (malloc'd).
 * The URL is held to webhook_url_check's rules first, and the address
 * connected to as well (allow_private as there): nothing is sent to an
 * endpoint that set-webhook would refuse. Returns 0 if a response came
 * back, -1 with err otherwise. */
int webhook_send(const char *url, const char *const *secrets, size_t nsecrets, const char *event_id,
                 const char *body, int allow_private, long *status, char **reply,
                 int64_t *latency_ms, char *err);

/* Event names: "task_finished,task_waiting" (a comma list, each once) into
 * a STORE_EVENT_* mask; 0, or -1 with err naming what is not an event. */
int webhook_events_parse(const char *list, unsigned *mask, char *err);
/* The mask's names as a new JSON array (the caller deletes it). */
cJSON *webhook_events_json(unsigned mask);
/* The names clients may ask for, for messages. */
#define WEBHOOK_EVENT_NAMES "task_finished, task_waiting"
/* Sends the account's endpoint a signed "ping" event now (`portier webhook
 * test`, the dashboard's Send test event) and says what came back:
 * {"url", "event_id", "http_status", "latency_ms", "reply", "ok"[, "error"]}
 * (new); *ok is 1 for a 2xx. a->webhook_url must be set. An endpoint that
 * webhook_url_check refuses (allow_private as there) is not sent to: the
 * "error" says why. */
cJSON *webhook_ping(const account *a, const char *secret, int allow_private, int *ok);

/* The retry delays in seconds: PORTIER_WEBHOOK_RETRY_SCHEDULE ("0,5,300")
 * or the default (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
size_t webhook_schedule(int64_t *delays, size_t max);

#endif
