/*
 * outbox.h -- what a committed order announces, and how far that got.
 *
 * The order transaction (worker/batch_txn.c) inserts, beside each order, one
 * outbox document with the order's _id:
 *
 *   {_id, event: "order.completed", userId, checkoutId, createdAt,
 *    state: "pending", nextAt: createdAt, retryFrom: createdAt}
 *
 * so an order is announced if and only if it committed.  Each later
 * transition (shared/lifecycle.h) inserts one more, in its own
 * transaction, with a new _id and orderId naming the order:
 *
 *   {_id, orderId, event: "order.confirmed" | "order.fulfilled" |
 *    "order.cancelled" | "order.expired" | "order.refunded", ...}
 *  The notifier
 * (notifier/main.c) delivers it: it claims a due document by moving
 * its nextAt past a lease (a conditional update: one claimer wins), adds
 * the destinations the first time (targets: the buyer's email, each of
 * WEBHOOK_URLS), sends what is due and writes back per target:
 *
 *   targets: [{kind: "email"|"webhook", to, state, attempts, nextAt,
 *              lastError, sentAt}]
 *
 * A target is pending, sent, parked (retried NOTIFY_RETRY_FOR seconds
 * since retryFrom) or dropped (by an operator).  The document is pending
 * while a target is, then parked if one is, else done.  A notifier that
 * dies mid-send leaves its claim to expire, and the send is repeated:
 * at least once, with the same event id (outbox_event_id).  shopctl
 * outbox lists, replays and drops parked ones.
 */
#ifndef SHARED_OUTBOX_H
#define SHARED_OUTBOX_H

#include <mongoc/mongoc.h>

#define DB_OUTBOX		"outbox"
#define OUTBOX_ORDER_COMPLETED	"order.completed"
#define OUTBOX_ORDER_CONFIRMED	"order.confirmed"
#define OUTBOX_ORDER_FULFILLED	"order.fulfilled"
#define OUTBOX_ORDER_CANCELLED	"order.cancelled"
#define OUTBOX_ORDER_EXPIRED	"order.expired"
#define OUTBOX_ORDER_REFUNDED	"order.refunded"

#define OUTBOX_PENDING		"pending"
#define OUTBOX_DONE		"done"
#define OUTBOX_PARKED		"parked"
#define OUTBOX_SENT		"sent"		/* a target's */
#define OUTBOX_DROPPED		"dropped"	/* a target's */

/* The outbox document of a new order document (new; bson_destroy it). */
bson_t	*outbox_for_order(const bson_t *order);

/*
 * The outbox document of a transition of order (shared/lifecycle.c) at
 * ms: its own _id, with orderId naming the order (new).
 */
bson_t	*outbox_for_event(const bson_t *order, const char *event, int64_t at);

/* One target of an outbox document, as read (borrowed from it). */
struct outbox_target {
	const char	*kind, *to, *state, *error;
	int64_t		 attempts;
};

/* Read the target t points into (a document of "targets") into out. */
void	 outbox_target_read(bson_iter_t *t, struct outbox_target *out);

/*
 * An operator's decision on a parked document: its parked targets
 * pending again, due now and with no attempts (replay), or dropped.
 * Conditional on the document still being parked.  Returns 1 changed, 0
 * it was not parked (any more), -1 with err.
 */
int	 outbox_unpark(mongoc_collection_t *, const bson_t *doc, int replay,
	    bson_error_t *err);

/* The order an outbox document announces: orderId, else its _id. */
int	 outbox_order_id(const bson_t *doc, bson_oid_t *out);

/* "evt_<order id>": the id receivers de-duplicate by, into out[29]. */
void	 outbox_event_id(const bson_oid_t *order, char *out);

#endif
