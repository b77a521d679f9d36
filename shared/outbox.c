/*
 * outbox.c -- the outbox document of an order (outbox.h).
 */
#include <string.h>

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

void
outbox_target_read(bson_iter_t *t, struct outbox_target *out)
{
	const char	*key;

	memset(out, 0, sizeof(*out));
	out->kind = out->to = out->state = out->error = "";
	while (bson_iter_next(t)) {
		key = bson_iter_key(t);
		if (strcmp(key, "attempts") == 0)
			out->attempts = bson_iter_as_int64(t);
		if (!BSON_ITER_HOLDS_UTF8(t))
			continue;
		if (strcmp(key, "kind") == 0)
			out->kind = bson_iter_utf8(t, NULL);
		else if (strcmp(key, "to") == 0)
			out->to = bson_iter_utf8(t, NULL);
		else if (strcmp(key, "state") == 0)
			out->state = bson_iter_utf8(t, NULL);
		else if (strcmp(key, "lastError") == 0)
			out->error = bson_iter_utf8(t, NULL);
	}
}

/*
 * doc's targets into arr, its parked ones changed: pending again, due
 * now and with no attempts (replay), or dropped.  How many are pending
 * afterwards.
 */
static int
targets_rewrite(const bson_t *doc, int replay, int64_t now, bson_t *arr)
{
	struct outbox_target	 tg;
	bson_iter_t		 it, list, t;
	bson_t			 one;
	const char		*key;
	int			 pending;

	pending = 0;
	if (!bson_iter_init_find(&it, doc, "targets") ||
	    !bson_iter_recurse(&it, &list))
		return (0);
	while (bson_iter_next(&list) && bson_iter_recurse(&list, &t)) {
		outbox_target_read(&t, &tg);
		bson_iter_recurse(&list, &t);
		bson_append_document_begin(arr, bson_iter_key(&list), -1, &one);
		while (bson_iter_next(&t)) {
			key = bson_iter_key(&t);
			if (strcmp(tg.state, OUTBOX_PARKED) == 0 &&
			    (strcmp(key, "state") == 0 ||
			    (replay && (strcmp(key, "attempts") == 0 ||
			    strcmp(key, "nextAt") == 0))))
				continue;
			bson_append_iter(&one, key, -1, &t);
		}
		if (strcmp(tg.state, OUTBOX_PARKED) == 0) {
			BSON_APPEND_UTF8(&one, "state", replay ?
			    OUTBOX_PENDING : OUTBOX_DROPPED);
			if (replay) {
				BSON_APPEND_INT32(&one, "attempts", 0);
				BSON_APPEND_DATE_TIME(&one, "nextAt", now);
				pending++;
			}
		} else if (strcmp(tg.state, OUTBOX_PENDING) == 0) {
			pending++;
		}
		bson_append_document_end(arr, &one);
	}
	return (pending);
}

int
outbox_unpark(mongoc_collection_t *outbox, const bson_t *doc, int replay,
    bson_error_t *err)
{
	bson_iter_t	 it;
	bson_t		 q, u, set, arr, reply;
	int64_t		 now;
	int		 ret, pending;

	if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
		return (0);
	now = db_now_ms();
	bson_init(&q);
	BSON_APPEND_OID(&q, "_id", bson_iter_oid(&it));
	BSON_APPEND_UTF8(&q, "state", OUTBOX_PARKED);
	bson_init(&u);
	BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
	BSON_APPEND_ARRAY_BEGIN(&set, "targets", &arr);
	pending = targets_rewrite(doc, replay, now, &arr);
	bson_append_array_end(&set, &arr);
	BSON_APPEND_UTF8(&set, "state", pending > 0 ? OUTBOX_PENDING :
	    OUTBOX_DONE);
	if (pending > 0) {
		BSON_APPEND_DATE_TIME(&set, "nextAt", now);
		BSON_APPEND_DATE_TIME(&set, "retryFrom", now);
	}
	bson_append_document_end(&u, &set);
	ret = -1;
	if (mongoc_collection_update_one(outbox, &q, &u, NULL, &reply, err))
		ret = bson_iter_init_find(&it, &reply, "modifiedCount") &&
		    bson_iter_as_int64(&it) > 0 ? 1 : 0;
	bson_destroy(&reply);
	bson_destroy(&q);
	bson_destroy(&u);
	return (ret);
}
