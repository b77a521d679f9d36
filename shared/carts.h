/*
 * carts.h -- the carts collection's documents, read and written by the
 * API (api/cart.c) and the worker (worker/batch_txn.c).
 *
 * A cart is {userId, items: [{productId, quantity}], rev, updatedAt}.
 * A write is conditional on the revision and the lines it was computed
 * from (carts_update_if), so two concurrent changes never overwrite each
 * other: the loser reads again.  rev counts writes, so that the cart
 * hint in Redis (shared/lua/catalog.lua's cart_hint) keeps the newest.  An order
 * removes the cart (worker/batch_txn.c); the next write starts it again.
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

/* Parse a carts document into c (carts_free() it). */
void	carts_parse(const bson_t *doc, struct cart *c);

/*
 * Create user's cart with c's lines (c gets its id, rev 1 and time).
 * Returns 1, 0 if a cart exists already (read it and update), -1 on
 * error (err set).
 */
int	carts_insert(mongoc_collection_t *, const bson_oid_t *user,
	    struct cart *c, bson_error_t *err);

/*
 * Write c's lines as the next revision of user's cart, only if the cart
 * is still at old's revision and, with same_lines, has exactly old's
 * lines in order (old came from a hint, not from the database): what
 * was written is then exactly c.  Returns 1 (c gets old's id and the
 * new revision), 0 if the cart is not old any more (read it again), -1
 * on error.
 */
int	carts_update_if(mongoc_collection_t *, const bson_oid_t *user,
	    const struct cart *old, int same_lines, struct cart *c,
	    bson_error_t *err);

/* A copy of src's lines and identity into dst; -1 out of memory. */
int	carts_copy(struct cart *dst, const struct cart *src);

/* Remove line i. */
void	carts_remove(struct cart *c, int i);

/* The index of product in c, or -1. */
int	carts_find(const struct cart *c, const bson_oid_t *product);

/* Append a line (the caller checks limits); -1 out of memory. */
int	carts_append(struct cart *c, const bson_oid_t *product, int64_t qty);

/* Do a and b hold the same lines (products and quantities, any order)? */
int	carts_same_lines(const struct cart *a, const struct cart *b);

void	carts_free(struct cart *c);

#endif
