/*
 * carts.h -- the carts collection's documents, read and written by the
 * API (api/cart.c) and the worker (worker/order.c).
 *
 * A cart is {userId, items: [{productId, quantity}], rev, updatedAt}.
 * rev counts writes: a writer that read revision r updates only where
 * rev is still r, so two concurrent changes never overwrite each other
 * (the loser reads again and retries).
 */
#ifndef SHARED_CARTS_H
#define SHARED_CARTS_H

#include <mongoc/mongoc.h>

struct cart_line {
	bson_oid_t	product;
	int64_t		quantity;
};

struct cart {
	int			 exists;	/* the document is there */
	bson_oid_t		 id;		/* its _id, if it exists */
	int64_t			 rev;		/* 0 if it does not exist */
	int64_t			 updated;	/* updatedAt, ms */
	int			 n;		/* lines used */
	int			 cap;		/* lines allocated */
	struct cart_line	*lines;		/* owned */
};

/*
 * Read user's cart into c (opts may carry a session).  Returns 1 found,
 * 0 absent (c is empty), -1 on error (err set).  carts_free() c after.
 */
int	carts_load(mongoc_collection_t *, const bson_oid_t *user,
	    const bson_t *opts, struct cart *c, bson_error_t *err);

/*
 * Write c's lines as the new revision of user's cart, if it is still at
 * c->rev.  Returns 1 written, 0 changed by someone else meanwhile (read
 * again), -1 on error.
 */
int	carts_store(mongoc_collection_t *, const bson_oid_t *user,
	    struct cart *c, bson_error_t *err);

/* The index of product in c, or -1. */
int	carts_find(const struct cart *c, const bson_oid_t *product);

/* Append a line (the caller checks limits); -1 out of memory. */
int	carts_append(struct cart *c, const bson_oid_t *product, int64_t qty);

/* Remove line i. */
void	carts_remove(struct cart *c, int i);

void	carts_free(struct cart *c);

#endif
