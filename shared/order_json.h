/*
 * order_json.h -- an order document as the API shows it, printed in one
 * place (orders_text()) for the checkout status the worker records
 * (worker/batch.c) and, parsed (orders_json()), for GET /api/orders
 * (api/orders.c), the notifier and shopctl.
 *
 * An order is {_id, checkoutId, userId, items: [{productId, title,
 * quantity, price}], total, createdAt, submittedAt (its checkout's
 * createdAt; not shown), status, history, payBy?,
 * payment?, fulfilment?, cancellation?, refund?, updatedAt?}, prices and
 * total in int64 cents; total is the sum of price x quantity.  An order
 * from before statuses shows as "confirmed" (shared/lifecycle.h).
 */
#ifndef SHARED_ORDERS_H
#define SHARED_ORDERS_H

#include <jansson.h>
#include <mongoc/mongoc.h>

/* A new JSON order (decimal prices, ISO time) from an orders document;
 * NULL only when out of memory. */
json_t	*orders_json(const bson_t *doc);

/* The same order as compact JSON text, as json_dump_body() would print
 * it (new; free() it); NULL only when out of memory. */
char	*orders_text(const bson_t *doc);

/* The order's id as orders_text() shows it, for a status body's
 * orderId (new): "" when doc is NULL or has none, null when it is not an
 * ObjectId, else the quoted hex; NULL only when out of memory. */
char	*orders_id_text(const bson_t *doc);

/* The order's lines as a job carries them, "<productId>:<qty>,..."
 * (new; free() it); NULL only when out of memory. */
char	*orders_lines(const bson_t *doc);

/* What an order listing asks for (GET /api/orders, shopctl orders). */
struct orders_query {
	const char	*user;		/* an id, or NULL for everyone's */
	const char	*status;	/* or NULL for any */
	int64_t		 from;		/* createdAt >= from ms (-1: none) */
	int64_t		 to;		/* createdAt < to ms (-1: none) */
};

/* The filter of q into filter (initialised here; bson_destroy it). */
void	orders_filter(const struct orders_query *q, bson_t *filter);

#endif
