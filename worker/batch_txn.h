/*
 * batch_txn.h -- the MongoDB side of checkout (batch_txn.c): place a batch of
 * checkouts in one transaction, find orders earlier deliveries
 * committed, and read what seeding the stock gate needs.
 *
 * Nothing here talks to Redis: the worker (batch.c, gate.c) does the
 * Redis work before and after, and tests/dbcheck.c runs the same
 * transaction alone to measure the database's own ceiling.
 */
#ifndef WORKER_BATCH_TXN_H
#define WORKER_BATCH_TXN_H

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "../shared/errors.h"
#include "../shared/protocol.h"

/* One checkout of a batch. */
struct order_req {
	const char		*checkout_id;	/* borrowed */
	bson_oid_t		 user;
	int64_t			 at;		/* submitted, ms: sale windows
						   judge this time (0: now) */
	int			 skip;		/* decided already: leave it */
	const struct cart	*exact;		/* a replay: the cart must hold
						   exactly these lines, as
						   submitted (else
						   cart_changed) */
	/* What placing it decided. */
	enum checkout_state	 state;		/* COMPLETED, FAILED or UNKNOWN */
	bson_t			*doc;		/* new; the order, when
						   completed */
	enum err		 code;		/* when failed */
	bson_oid_t		 product;	/* the product a failure is about */
	int			 has_product;
	long long		 limit;		/* limit_exceeded: the limit */
	long long		 held;		/* ... and the units held */
	long long		 starts;	/* sale_not_started: ms */
};

struct order_batch {
	struct order_req	*reqs;		/* in stream order */
	int			 n;
	int			 look_first;	/* an order may exist: look */
	/*
	 * Called before the transaction runs again after a write
	 * conflict, with the batch's products (hex ids): the worker takes
	 * their locks so that the rerun queues behind the other orders of
	 * those products instead of racing them.  May be NULL.
	 */
	void			(*on_rerun)(void *arg, char (*pids)[25], int n);
	void			*arg;
	/* Out. */
	int			 runs;		/* of the transaction body */
	int			 writes;	/* orders inserted by the commit */
	char			 error[512];	/* why it failed, for the log */
};

/*
 * Place every request of b not marked skip in one transaction: the
 * carts in one query, the products in one, stock taken in stream order
 * with one conditional decrement per product, the orders inserted in
 * one insert_many, the ordered carts removed in one delete_many.  A
 * request that cannot be filled fails alone (cart_empty,
 * product_unavailable, out_of_stock) and changes nothing; with
 * look_first, or when the transaction runs again, requests whose order
 * exists (by checkoutId) are completed with it and nothing is done
 * twice.  Commits with w: majority.
 * Returns 0 with every request decided, or -1 if the database failed
 * (b->error says why; nothing is decided: call again, with look_first).
 */
int	order_batch_place(mongoc_client_t *, struct order_batch *b);

/*
 * Complete the requests (not skipped) whose order exists, in one query.
 * Returns 0, or -1 with the error in err.
 */
int	order_find_existing(mongoc_client_t *, struct order_req *, int n,
	    char *err, size_t errlen);

/* What seeding the gate counter of one product needs to know. */
struct order_seed {
	bson_oid_t	 product;
	char		**held;		/* borrowed: checkouts holding units */
	int		 nheld;
	/* Out, read in one snapshot. */
	int64_t		 stock;		/* -1: the product is gone */
	int64_t		 starts;	/* saleStartsAt, ms (0: none) */
	int64_t		 ends;		/* saleEndsAt, ms (0: none) */
	int64_t		 limit;		/* perCustomerLimit (0: none) */
	int		*committed;	/* per held: its order exists */
};

/*
 * Read, in one snapshot, the stock of each product of s and which held
 * checkouts have an order.  Returns 0, or -1 with the error in err.
 */
int	order_seed_read(mongoc_client_t *, struct order_seed *s, int n,
	    char *err, size_t errlen);

/* Free what placing left in r (the order). */
void	order_req_clear(struct order_req *r);

#endif
