/*
 * outbox.c -- the outbox document of an order (outbox.h).
 */
#include "db.h"
#include "outbox.h"

bson_t *
outbox_for_order(const bson_t *order)
{
	bson_iter_t	 it;
	bson_t		*doc;
	int64_t		 at;

	doc = bson_new();
	if (bson_iter_init_find(&it, order, "_id"))
		BSON_APPEND_OID(doc, "_id", bson_iter_oid(&it));
	BSON_APPEND_UTF8(doc, "event", OUTBOX_ORDER_COMPLETED);
	if (bson_iter_init_find(&it, order, "userId"))
		BSON_APPEND_OID(doc, "userId", bson_iter_oid(&it));
	if (bson_iter_init_find(&it, order, "checkoutId"))
		BSON_APPEND_UTF8(doc, "checkoutId", bson_iter_utf8(&it, NULL));
	at = bson_iter_init_find(&it, order, "createdAt") ?
	    bson_iter_date_time(&it) : db_now_ms();
	BSON_APPEND_DATE_TIME(doc, "createdAt", at);
	BSON_APPEND_UTF8(doc, "state", OUTBOX_PENDING);
	BSON_APPEND_DATE_TIME(doc, "nextAt", at);
	BSON_APPEND_DATE_TIME(doc, "retryFrom", at);
	return (doc);
}

bson_t *
outbox_for_event(const bson_t *order, const char *event, int64_t at)
{
	bson_iter_t	 it;
	bson_oid_t	 id;
	bson_t		*doc;

	doc = bson_new();
	bson_oid_init(&id, NULL);
	BSON_APPEND_OID(doc, "_id", &id);
	if (bson_iter_init_find(&it, order, "_id"))
		BSON_APPEND_OID(doc, "orderId", bson_iter_oid(&it));
	BSON_APPEND_UTF8(doc, "event", event);
	if (bson_iter_init_find(&it, order, "userId"))
		BSON_APPEND_OID(doc, "userId", bson_iter_oid(&it));
	if (bson_iter_init_find(&it, order, "checkoutId"))
		BSON_APPEND_UTF8(doc, "checkoutId", bson_iter_utf8(&it, NULL));
	BSON_APPEND_DATE_TIME(doc, "createdAt", at);
	BSON_APPEND_UTF8(doc, "state", OUTBOX_PENDING);
	BSON_APPEND_DATE_TIME(doc, "nextAt", at);
	BSON_APPEND_DATE_TIME(doc, "retryFrom", at);
	return (doc);
}

int
outbox_order_id(const bson_t *doc, bson_oid_t *out)
{
	bson_iter_t	it;

	if ((bson_iter_init_find(&it, doc, "orderId") ||
	    bson_iter_init_find(&it, doc, "_id")) && BSON_ITER_HOLDS_OID(&it)) {
		bson_oid_copy(bson_iter_oid(&it), out);
		return (0);
	}
	return (-1);
}

void
outbox_event_id(const bson_oid_t *order, char *out)
{
	char	hex[25];

	bson_oid_to_string(order, hex);
	snprintf(out, 29, "evt_%s", hex);
}
