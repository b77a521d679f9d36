/*
 * protocol.h -- the checkout protocol's one owner: the states of a
 * checkout, the public status body, the failure a checkout ends with,
 * the cart lines a job carries, and the Redis functions (shared/lua/protocol.lua)
 * that record, queue, mark, finish and gate checkouts.
 *
 * The API submits and reads; the worker marks, gates and finishes; both
 * render bodies here, so GET /api/checkout/:id, the WebSocket and the
 * worker's PUBLISH always show the same shape:
 *   {checkoutId, status, createdAt, updatedAt, orderId?, order?, error?}
 * Each Redis function is documented (KEYS, ARGV, reply) in
 * shared/lua/protocol.lua.
 */
#ifndef SHARED_PROTOCOL_H
#define SHARED_PROTOCOL_H

#include <stddef.h>

#include <jansson.h>

#include "carts.h"
#include "errors.h"

enum checkout_state {
	CK_UNKNOWN,		/* no record, or a value we do not know */
	CK_QUEUED,		/* submitted, waiting in the stream */
	CK_PROCESSING,		/* a worker has it */
	CK_COMPLETED,		/* final: the order exists */
	CK_FAILED,		/* final: nothing was ordered */
	CK_WAITLISTED		/* out of stock, waiting for returned units */
};

/*
 * Ranks for waiting: 0 unknown, then queued < processing < waitlisted <
 * final.  A waitlisted checkout is processed again when units come back
 * (processing, a lower rank, is then not pushed again).
 */
#define RANK_QUEUED	1
#define RANK_PROCESSING	2
#define RANK_WAITLISTED	3
#define RANK_FINAL	4
#define RANK_NEVER	5	/* wake at no rank: a WebSocket's watch */

/* The Redis functions of shared/lua/, by name (the build checks
 * that each is registered there, and nothing else). */
#define FN_SUBMIT	"checkout_submit"
#define FN_UNIDEM	"checkout_unidem"
/* The library's name (the library's first line says it). */
#define PROTOCOL_LIBRARY_NAME	"checkout"

#define FN_BEGIN	"batch_begin"
#define FN_FINISH	"batch_finish"
#define FN_REQUEUE	"checkout_requeue"
#define FN_DLQ_REPLAY	"dlq_replay"
#define FN_RESERVE	"gate_reserve"
#define FN_SEED_BEGIN	"gate_seed_begin"
#define FN_SEED_SET	"gate_seed_set"
#define FN_GATE_FORGET	"gate_forget"
#define FN_GATE_USER_SET	"gate_user_set"
#define FN_GATE_RETURN	"gate_return"
#define FN_CATALOG_BUMP	"catalog_bump"
#define FN_CART_HINT	"cart_hint"
#define FN_LOCK_RELEASE	"lock_release"
#define FN_LOCKS_TAKE	"locks_take"
#define FN_LOCKS_RELEASE	"locks_release"
#define FN_LOCKS_RENEW	"locks_renew"
#define FN_METRICS	"metrics_gauges"
#define FN_QUEUE_STATE	"queue_state"
#define FN_HEARTBEAT	"heartbeat"
#define FN_PROCS	"procs_alive"
#define FN_HISTORY_TICK	"history_tick"
#define FN_ADMIN_QUEUE	"admin_queue"
#define FN_DEAD_LIST	"dead_list"
#define FN_WAITLIST_TICK	"waitlist_tick"
#define FN_WAITLIST_FAIL	"waitlist_fail"
#define FN_WAITLIST_POS	"waitlist_position"
#define FN_LIMIT	"limit_attempt"
#define FN_FORGIVE	"limit_forgive"
#define FN_TOKEN_STATE	"token_state"
#define FN_EPOCH_SET	"epoch_set"

/* The library's source, for FUNCTION LOAD REPLACE (static). */
extern const char	protocol_library[];

/* "queued", ... (static); "" for CK_UNKNOWN. */
const char		*protocol_state_name(enum checkout_state);

/* The state a status text names; CK_UNKNOWN for NULL or anything else. */
enum checkout_state	 protocol_state(const char *);

/* The rank of a state (RANK_*). */
int			 protocol_rank(enum checkout_state);

/*
 * The public status body as compact JSON text (new; free() it).  order,
 * an orders document shown as orders_text() shows it (its id becomes
 * orderId), and error are borrowed and may be NULL.
 */
char	*protocol_body(const char *checkout_id, enum checkout_state,
	    const char *created_at, const bson_t *order, json_t *error);

/* The same, updated at updated_at rather than now (NULL: now). */
char	*protocol_body_at(const char *checkout_id, enum checkout_state,
	    const char *created_at, const char *updated_at,
	    const bson_t *order, json_t *error);

/*
 * The error object of a failed checkout (new): {code, message,
 * productId?} from shared/errors.c's table.  product may be NULL.
 */
json_t	*protocol_failure(enum err, const char *product);

/*
 * Lines as a job and the cart hint carry them: "<productId>:<qty>,...".
 * Format c's lines into buf; -1 if they do not fit.
 */
int	protocol_lines_format(const struct cart *c, char *buf, size_t len);

/*
 * Parse text into c (carts_free() it); -1 if malformed.  A product that
 * appears twice is summed.
 */
int	protocol_lines_parse(const char *text, struct cart *c);

/* Longest lines text for lines lines: 24 + 1 + 20 + 1 bytes each. */
#define PROTOCOL_LINES_MAX(lines)	((size_t)(lines) * 46 + 1)

/*
 * An Idempotency-Key as Redis keeps it (checkout_submit, 24 h): under a
 * name of fixed length, RK_IDEM and 128 bits of SHA-256 over
 * "<user>:<key>" in base64url (22 characters, whatever the key's
 * length), with 64 bits of the request body's SHA-256 (IDEM_HASH_HEX
 * hex digits) in its value: "p|<hash>" while it is being recorded,
 * "d|<hash>|<checkoutId>" once it is.  ~180 bytes of Redis a key; the
 * key in clear and the whole hash took ~290.
 */
#define IDEM_KEY_SIZE	28	/* "idem:" + 22, and the NUL */
#define IDEM_HASH_HEX	16

/* The Redis key of user's Idempotency-Key key, into out. */
void	protocol_idem_key(char out[IDEM_KEY_SIZE], const char *user,
	    const char *key);

#endif
