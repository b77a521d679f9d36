/*
 * lifecycle.h -- an order's life after it is placed: its states, the
 * transitions between them, and the units a cancelled or expired order
 * gives back (docs/ARCHITECTURE.md, "Order lifecycle").
 *
 *   awaiting_payment --payment--> confirmed --fulfil--> fulfilled
 *   awaiting_payment --(payBy passes: the worker's sweeper)--> expired
 *   awaiting_payment, confirmed --cancel--> cancelled --refund (paid)
 *
 * Each transition runs in one MongoDB transaction that rereads the
 * order, changes it only if its status still allows it (a conditional
 * update on that status), appends to its history, gives its units back
 * to the products (cancel, expiry) and inserts the outbox event that
 * announces it (shared/outbox.h): the event exists if and only if the
 * transition committed.  A transition that finds its own result already
 * there (the same cancel, the same payment reference) changes nothing
 * and answers with the order: retries are idempotent.  A request whose
 * order changed under it while it ran (a write conflict, then another
 * status) is refused: of two racing transitions exactly one wins.
 *
 * Units given back are marked in the order (unitsBack: "pending") in
 * the same transaction; returning them to the Redis stock gate is a
 * second, idempotent step (lifecycle_gate_args and the library's
 * gate_return), which the worker's sweeper repeats for every order
 * still pending after LIFECYCLE_REPAIR_MS, so a process that dies
 * between the two loses nothing and returns nothing twice.
 */
#ifndef SHARED_LIFECYCLE_H
#define SHARED_LIFECYCLE_H

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "errors.h"

struct rargs;

#define OS_AWAITING	"awaiting_payment"
#define OS_CONFIRMED	"confirmed"
#define OS_FULFILLED	"fulfilled"
#define OS_CANCELLED	"cancelled"
#define OS_EXPIRED	"expired"

#define REFUND_DUE	"due"
#define REFUND_DONE	"refunded"

#define UNITS_PENDING	"pending"	/* back in MongoDB, not yet in Redis */
#define UNITS_DONE	"done"

#define LIFECYCLE_REPAIR_MS	2000	/* then the sweeper returns them */
#define LIFECYCLE_THE_TOTAL	(-1)	/* a payment's amount: whatever is due
					   (the development test payment) */
#define LIFECYCLE_BATCH_MAX	128	/* orders one sweep expires at once */

enum transition {
	TR_PAY,		/* awaiting_payment -> confirmed */
	TR_FULFIL,	/* confirmed -> fulfilled */
	TR_CANCEL,	/* awaiting_payment, confirmed -> cancelled */
	TR_REFUND,	/* cancelled, refund due -> refunded */
	TR_EXPIRE	/* awaiting_payment past payBy -> expired */
};

/* One order of a transition request, and what is asked of it. */
struct lc_item {
	bson_oid_t	 id;
	enum transition	 what;
	const char	*actor;		/* user id, or "system" */
	int		 admin;		/* the actor may act on any order */
	const char	*reference;	/* payment or refund reference */
	int64_t		 amount;	/* payment, cents */
	const char	*carrier;	/* fulfilment, may be NULL */
	const char	*tracking;	/* fulfilment, may be NULL */
	const char	*reason;	/* cancellation, may be NULL */
	/* Out. */
	enum err	 err;		/* why it was refused, or ERR_NONE */
	char		 status[24];	/* its status now */
	json_t		*order;		/* new: the order as it is now */
	int		 changed;	/* this request made the transition */
	char		 user[25];	/* the buyer */
	char		*lines;		/* new: units given back, when changed:
					   "<productId>:<qty>,..." */
	char		 seen[24];	/* status the first run read */
};

/*
 * Transitions of several orders, in one transaction: each item says
 * what it asks (the API groups concurrent requests; the sweeper expires
 * many at once).  No order may appear twice.
 */
struct lc_request {
	int64_t		 now;		/* ms since the epoch */
	struct lc_item	*items;
	int		 n;
	/* Out. */
	int		 runs;		/* of the transaction body */
	char		 error[512];	/* why the database failed */
};

/*
 * Apply r to each of its items in one transaction (w: majority).
 * Returns 0 with every item decided (see lc_item), or -1 if the
 * database failed (r->error; nothing changed: call again).
 */
int	lifecycle_apply(mongoc_client_t *, struct lc_request *r);

/*
 * Append a new order's status, history and payBy to doc: confirmed, or
 * awaiting_payment until now + PAYMENT_WINDOW_S when that is set.
 */
void	lifecycle_start(bson_t *doc, const bson_oid_t *buyer, int64_t now);

/*
 * Fill it from an orders document as if it had just been cancelled: its
 * id, buyer and lines (for gate_return).
 */
void	lifecycle_item_of(const bson_t *doc, struct lc_item *it);

/* Free what applying left in the items. */
void	lifecycle_clear(struct lc_request *r);

/*
 * Append the library's gate_return arguments for the changed items of
 * r (orders whose units went back); returns how many orders.
 */
int	lifecycle_gate_args(struct rargs *, const struct lc_item *, int n);

/*
 * The status of an orders document ("confirmed" for orders from before
 * statuses), borrowed from doc.
 */
const char	*lifecycle_status(const bson_t *doc);

/* 1 if status is one whose units are held (not cancelled or expired). */
int	lifecycle_live(const char *status);

#endif
