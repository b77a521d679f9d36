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

void
outbox_event_id(const bson_oid_t *order, char *out)
{
	char	hex[25];

	bson_oid_to_string(order, hex);
	snprintf(out, 29, "evt_%s", hex);
}
