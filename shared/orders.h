/*
 * orders.h -- an order document as the API shows it, built in one place
 * for GET /api/orders (api/orders.c) and for the checkout status the
 * worker records (worker/checkout.c).
 *
 * An order is {_id, checkoutId, userId, items: [{productId, title,
 * quantity, price}], total, createdAt, status, history, payBy?,
 * payment?, fulfilment?, cancellation?, refund?, updatedAt?}, prices and
 * total in int64 cents; total is the sum of price x quantity.  An order
 * from before statuses shows as "confirmed" (shared/lifecycle.h).
 */
#ifndef SHARED_ORDERS_H
#define SHARED_ORDERS_H

#include <jansson.h>
#include <mongoc/mongoc.h>

/* A new JSON order (decimal prices, ISO time) from an orders document. */
json_t	*orders_json(const bson_t *doc);

#endif
