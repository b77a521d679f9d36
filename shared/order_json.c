/*
 * order_json.c -- orders documents to JSON (order_json.h).
 */
#include "db.h"
#include "money.h"
#include "order_json.h"

static json_t *
oid_string(bson_iter_t *it)
{
	char	hex[25];

	if (!BSON_ITER_HOLDS_OID(it))
		return (json_null());
	db_oid_hex(bson_iter_oid(it), hex);
	return (json_string(hex));
}

static json_t *
line_json(bson_iter_t *line)
{
	json_t	*l;

	l = json_object();
	while (bson_iter_next(line)) {
		if (BSON_ITER_IS_KEY(line, "productId"))
			json_object_set_new(l, "productId", oid_string(line));
		else if (BSON_ITER_IS_KEY(line, "title") &&
		    BSON_ITER_HOLDS_UTF8(line))
			json_object_set_new(l, "title",
			    json_string(bson_iter_utf8(line, NULL)));
		else if (BSON_ITER_IS_KEY(line, "quantity"))
			json_object_set_new(l, "quantity",
			    json_integer(bson_iter_as_int64(line)));
		else if (BSON_ITER_IS_KEY(line, "price"))
			json_object_set_new(l, "price",
			    money_to_json(bson_iter_as_int64(line)));
	}
	return (l);
}

static json_t *
items_json(bson_iter_t *it)
{
	bson_iter_t	 arr, line;
	json_t		*items;

	items = json_array();
	if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &arr))
		return (items);
	while (bson_iter_next(&arr)) {
		if (BSON_ITER_HOLDS_DOCUMENT(&arr) &&
		    bson_iter_recurse(&arr, &line))
			json_array_append_new(items, line_json(&line));
	}
	return (items);
}

/*
 * A lifecycle subdocument (payment, fulfilment, cancellation, refund)
 * or a history entry: strings as they are, dates in ISO 8601, amounts
 * as decimals.
 */
static json_t *
sub_json(bson_iter_t *it)
{
	bson_iter_t	 f;
	json_t		*o;
	char		 when[32];

	o = json_object();
	if (!bson_iter_recurse(it, &f))
		return (o);
	while (bson_iter_next(&f)) {
		if (BSON_ITER_HOLDS_UTF8(&f)) {
			json_object_set_new(o, bson_iter_key(&f),
			    json_string(bson_iter_utf8(&f, NULL)));
		} else if (BSON_ITER_HOLDS_DATE_TIME(&f)) {
			db_iso_time(bson_iter_date_time(&f), when,
			    sizeof(when));
			json_object_set_new(o, bson_iter_key(&f),
			    json_string(when));
		} else if (BSON_ITER_IS_KEY(&f, "amount")) {
			json_object_set_new(o, "amount",
			    money_to_json(bson_iter_as_int64(&f)));
		}
	}
	return (o);
}

static json_t *
history_json(const bson_t *doc)
{
	bson_iter_t	 it, arr;
	json_t		*h;

	h = json_array();
	if (!bson_iter_init_find(&it, doc, "history") ||
	    !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
		return (h);
	while (bson_iter_next(&arr)) {
		if (BSON_ITER_HOLDS_DOCUMENT(&arr))
			json_array_append_new(h, sub_json(&arr));
	}
	return (h);
}

/* status, history, payBy and the lifecycle subdocuments of doc into o. */
static void
lifecycle_json(json_t *o, const bson_t *doc)
{
	static const char *const subs[] = { "payment", "fulfilment",
	    "cancellation", "refund", NULL };
	bson_iter_t	 it;
	int		 i;

	json_object_set_new(o, "status", json_string(
	    bson_iter_init_find(&it, doc, "status") &&
	    BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) :
	    "confirmed"));
	json_object_set_new(o, "history", history_json(doc));
	db_time_json(o, doc, "payBy");
	for (i = 0; subs[i] != NULL; i++) {
		if (bson_iter_init_find(&it, doc, subs[i]) &&
		    BSON_ITER_HOLDS_DOCUMENT(&it))
			json_object_set_new(o, subs[i], sub_json(&it));
	}
	db_time_json(o, doc, "updatedAt");
}

json_t *
orders_json(const bson_t *doc)
{
	bson_iter_t	 it;
	json_t		*o, *id;

	o = json_object();
	if (bson_iter_init_find(&it, doc, "_id")) {
		id = oid_string(&it);
		json_object_set(o, "id", id);
		json_object_set_new(o, "_id", id);
	}
	if (bson_iter_init_find(&it, doc, "checkoutId") &&
	    BSON_ITER_HOLDS_UTF8(&it))
		json_object_set_new(o, "checkoutId",
		    json_string(bson_iter_utf8(&it, NULL)));
	if (bson_iter_init_find(&it, doc, "userId"))
		json_object_set_new(o, "userId", oid_string(&it));
	if (bson_iter_init_find(&it, doc, "items"))
		json_object_set_new(o, "items", items_json(&it));
	if (bson_iter_init_find(&it, doc, "total"))
		json_object_set_new(o, "total",
		    money_to_json(bson_iter_as_int64(&it)));
	db_time_json(o, doc, "createdAt");
	lifecycle_json(o, doc);
	return (o);
}

void
orders_filter(const struct orders_query *q, bson_t *filter)
{
	bson_oid_t	 user;
	bson_t		 range;

	bson_init(filter);
	if (q->user != NULL && db_oid_parse(q->user, &user) == 0)
		BSON_APPEND_OID(filter, "userId", &user);
	if (q->status != NULL)
		BSON_APPEND_UTF8(filter, "status", q->status);
	if (q->from < 0 && q->to < 0)
		return;
	BSON_APPEND_DOCUMENT_BEGIN(filter, "createdAt", &range);
	if (q->from >= 0)
		BSON_APPEND_DATE_TIME(&range, "$gte", q->from);
	if (q->to >= 0)
		BSON_APPEND_DATE_TIME(&range, "$lt", q->to);
	bson_append_document_end(filter, &range);
}
