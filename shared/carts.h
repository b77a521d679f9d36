/*
 * carts.h -- the carts collection's documents, read and written by the
 * API (api/cart.c) and the worker (worker/order.c).
 *
 * A cart is {userId, items: [{productId, quantity}], rev, updatedAt}.
 * Every write is one atomic findAndModify, so two concurrent changes
 * never overwrite each other; rev counts writes, so that the cart hint
 * in Redis (checkout.lua's cart_hint) keeps the newest one.  An order
 * removes the cart (worker/order.c); the next write starts it again.
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
 * Set product's line in user's cart to qty (0 removes it) in one
 * findAndModify, creating the cart if needed; the cart as written goes
 * to c (carts_free() it).  Returns 1, 0 if the cart already has
 * max_lines lines without product, -1 on error (err set).
 */
int	carts_set_line(mongoc_collection_t *, const bson_oid_t *user,
	    const bson_oid_t *product, int64_t qty, long max_lines,
	    struct cart *c, bson_error_t *err);

/*
 * Replace user's cart lines with c's in one findAndModify (creating the
 * cart if needed); c then holds the cart as written.  1, or -1 on error.
 */
int	carts_replace(mongoc_collection_t *, const bson_oid_t *user,
	    struct cart *c, bson_error_t *err);

/* The index of product in c, or -1. */
int	carts_find(const struct cart *c, const bson_oid_t *product);

/* Append a line (the caller checks limits); -1 out of memory. */
int	carts_append(struct cart *c, const bson_oid_t *product, int64_t qty);

void	carts_free(struct cart *c);

#endif
