/*
 * lifecycle.c -- order transitions in MongoDB transactions
 * (lifecycle.h says what each does and why it is safe to repeat).
 *
 * Inside mongoc_client_session_with_transaction(), which reruns the
 * body after a write conflict:
 *   1. read the orders (one query);
 *   2. decide each: refused (with the status that refuses it), already
 *      done (idempotent: nothing to write), or a change ($set);
 *   3. write each change as an update conditional on the status read,
 *      give cancelled and expired units back to the products (one bulk
 *      of $inc), and insert one outbox event per change.
 * The body hands with_transaction() the failed operation's reply, where
 * the TransientTransactionError label that makes it retry lives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "lifecycle.h"
#include "order_json.h"
#include "outbox.h"
#include "redis.h"

struct txn {
	struct lc_request	*r;
	mongoc_collection_t	*orders;
	mongoc_collection_t	*products;
	mongoc_collection_t	*outbox;
	bson_t			**docs;		/* per item: as read, or NULL */
	bson_t			**sets;		/* per item: its change, or NULL */
};

static const char *const events[] = {
	[TR_PAY] = OUTBOX_ORDER_CONFIRMED,
	[TR_FULFIL] = OUTBOX_ORDER_FULFILLED,
	[TR_CANCEL] = OUTBOX_ORDER_CANCELLED,
	[TR_REFUND] = OUTBOX_ORDER_REFUNDED,
	[TR_EXPIRE] = OUTBOX_ORDER_EXPIRED,
};

/* ----- reading an order ----- */

/* The string at dotted path in doc (borrowed), or NULL. */
static const char *
str_at(const bson_t *doc, const char *path)
{
	bson_iter_t	it, found;

	if (bson_iter_init(&it, doc) &&
	    bson_iter_find_descendant(&it, path, &found) &&
	    BSON_ITER_HOLDS_UTF8(&found))
		return (bson_iter_utf8(&found, NULL));
	return (NULL);
}

/* The integer or date at path in doc, or def. */
static int64_t
int_at(const bson_t *doc, const char *path, int64_t def)
{
	bson_iter_t	it, found;

	if (!bson_iter_init(&it, doc) ||
	    !bson_iter_find_descendant(&it, path, &found))
		return (def);
	if (BSON_ITER_HOLDS_DATE_TIME(&found))
		return (bson_iter_date_time(&found));
	if (BSON_ITER_HOLDS_INT(&found) || BSON_ITER_HOLDS_DOUBLE(&found))
		return (bson_iter_as_int64(&found));
	return (def);
}

const char *
lifecycle_status(const bson_t *doc)
{
	const char	*s;

	return ((s = str_at(doc, "status")) != NULL ? s : OS_CONFIRMED);
}

int
lifecycle_live(const char *status)
{
	return (strcmp(status, OS_CANCELLED) != 0 &&
	    strcmp(status, OS_EXPIRED) != 0);
}

void
lifecycle_start(bson_t *doc, const bson_oid_t *buyer, int64_t now)
{
	const char	*status;
	bson_t		 hist, entry;
	char		 hex[25];

	status = cfg.payment_window_s > 0 ? OS_AWAITING : OS_CONFIRMED;
	db_oid_hex(buyer, hex);
	BSON_APPEND_UTF8(doc, "status", status);
	BSON_APPEND_ARRAY_BEGIN(doc, "history", &hist);
	bson_append_document_begin(&hist, "0", 1, &entry);
	BSON_APPEND_UTF8(&entry, "status", status);
	BSON_APPEND_DATE_TIME(&entry, "at", now);
	BSON_APPEND_UTF8(&entry, "by", hex);
	bson_append_document_end(&hist, &entry);
	bson_append_array_end(doc, &hist);
	if (cfg.payment_window_s > 0)
		BSON_APPEND_DATE_TIME(doc, "payBy",
		    now + cfg.payment_window_s * 1000);
}

/* ----- deciding ----- */

/* A new $set for status, with the history so far plus this entry. */
static bson_t *
change(struct txn *t, int i, const char *status)
{
	bson_iter_t	 it, arr;
	bson_t		*set, hist, entry;
	char		 key[16];
	int		 n;

	set = bson_new();
	BSON_APPEND_UTF8(set, "status", status);
	BSON_APPEND_ARRAY_BEGIN(set, "history", &hist);
	n = 0;
	if (bson_iter_init_find(&it, t->docs[i], "history") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
		while (bson_iter_next(&arr)) {
			bson_snprintf(key, sizeof(key), "%d", n++);
			bson_append_iter(&hist, key, -1, &arr);
		}
	}
	bson_snprintf(key, sizeof(key), "%d", n);
	bson_append_document_begin(&hist, key, -1, &entry);
	BSON_APPEND_UTF8(&entry, "status", status);
	BSON_APPEND_DATE_TIME(&entry, "at", t->r->now);
	BSON_APPEND_UTF8(&entry, "by", t->r->items[i].actor);
	bson_append_document_end(&hist, &entry);
	bson_append_array_end(set, &hist);
	BSON_APPEND_DATE_TIME(set, "updatedAt", t->r->now);
	return (set);
}

static void
refuse(struct lc_item *it, enum err e)
{
	it->err = e;
}

static void
pay(struct txn *t, int i, const char *cur)
{
	struct lc_item		*a = &t->r->items[i];
	const char		*ref;
	bson_t			 sub;

	ref = str_at(t->docs[i], "payment.reference");
	if (ref != NULL && strcmp(ref, a->reference) == 0)
		return;			/* the same payment again */
	if (ref != NULL) {
		refuse(a, ERR_ALREADY_PAID);
		return;
	}
	if (strcmp(cur, OS_AWAITING) != 0 ||
	    int_at(t->docs[i], "payBy", 0) < t->r->now) {
		refuse(a, ERR_INVALID_TRANSITION);
		return;
	}
	if (a->amount == LIFECYCLE_THE_TOTAL)	/* a test payment */
		a->amount = int_at(t->docs[i], "total", 0);
	if (int_at(t->docs[i], "total", -1) != a->amount) {
		refuse(a, ERR_AMOUNT_MISMATCH);
		return;
	}
	t->sets[i] = change(t, i, OS_CONFIRMED);
	BSON_APPEND_DOCUMENT_BEGIN(t->sets[i], "payment", &sub);
	BSON_APPEND_UTF8(&sub, "reference", a->reference);
	BSON_APPEND_INT64(&sub, "amount", a->amount);
	BSON_APPEND_DATE_TIME(&sub, "at", t->r->now);
	BSON_APPEND_UTF8(&sub, "by", a->actor);
	bson_append_document_end(t->sets[i], &sub);
}

static void
fulfil(struct txn *t, int i, const char *cur)
{
	struct lc_item		*a = &t->r->items[i];
	bson_t			 sub;

	if (strcmp(cur, OS_FULFILLED) == 0)
		return;
	if (strcmp(cur, OS_CONFIRMED) != 0) {
		refuse(a, ERR_INVALID_TRANSITION);
		return;
	}
	t->sets[i] = change(t, i, OS_FULFILLED);
	BSON_APPEND_DOCUMENT_BEGIN(t->sets[i], "fulfilment", &sub);
	if (a->carrier != NULL)
		BSON_APPEND_UTF8(&sub, "carrier", a->carrier);
	if (a->tracking != NULL)
		BSON_APPEND_UTF8(&sub, "tracking", a->tracking);
	BSON_APPEND_DATE_TIME(&sub, "at", t->r->now);
	bson_append_document_end(t->sets[i], &sub);
}

/* Cancel and expire: the units go back, a payment becomes a refund. */
static void
give_back(struct txn *t, int i, const char *status)
{
	struct lc_item		*a = &t->r->items[i];
	bson_t			 sub;
	int64_t			 paid;

	t->sets[i] = change(t, i, status);
	BSON_APPEND_UTF8(t->sets[i], "unitsBack", UNITS_PENDING);
	if (strcmp(status, OS_CANCELLED) == 0) {
		BSON_APPEND_DOCUMENT_BEGIN(t->sets[i], "cancellation", &sub);
		BSON_APPEND_UTF8(&sub, "by", a->actor);
		if (a->reason != NULL)
			BSON_APPEND_UTF8(&sub, "reason", a->reason);
		BSON_APPEND_DATE_TIME(&sub, "at", t->r->now);
		bson_append_document_end(t->sets[i], &sub);
	}
	if ((paid = int_at(t->docs[i], "payment.amount", -1)) >= 0) {
		BSON_APPEND_DOCUMENT_BEGIN(t->sets[i], "refund", &sub);
		BSON_APPEND_INT64(&sub, "amount", paid);
		BSON_APPEND_UTF8(&sub, "status", REFUND_DUE);
		bson_append_document_end(t->sets[i], &sub);
	}
}

static void
cancel(struct txn *t, int i, const char *cur)
{
	struct lc_item		*a = &t->r->items[i];

	if (strcmp(cur, OS_CANCELLED) == 0)
		return;
	if (strcmp(cur, OS_AWAITING) != 0 && strcmp(cur, OS_CONFIRMED) != 0) {
		refuse(a, ERR_INVALID_TRANSITION);
		return;
	}
	give_back(t, i, OS_CANCELLED);
}

static void
expire(struct txn *t, int i, const char *cur)
{
	if (strcmp(cur, OS_AWAITING) != 0 ||
	    int_at(t->docs[i], "payBy", INT64_MAX) > t->r->now) {
		refuse(&t->r->items[i], ERR_INVALID_TRANSITION);
		return;
	}
	give_back(t, i, OS_EXPIRED);
}

static void
refund(struct txn *t, int i, const char *cur)
{
	struct lc_item		*a = &t->r->items[i];
	const char		*st, *ref;
	bson_t			 sub;

	st = str_at(t->docs[i], "refund.status");
	ref = str_at(t->docs[i], "refund.reference");
	if (st != NULL && strcmp(st, REFUND_DONE) == 0 && ref != NULL &&
	    strcmp(ref, a->reference) == 0)
		return;
	if (strcmp(cur, OS_CANCELLED) != 0 && strcmp(cur, OS_EXPIRED) != 0) {
		refuse(a, ERR_INVALID_TRANSITION);
		return;
	}
	if (st == NULL || strcmp(st, REFUND_DUE) != 0) {
		refuse(a, ERR_INVALID_TRANSITION);
		return;
	}
	t->sets[i] = bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(t->sets[i], "refund", &sub);
	BSON_APPEND_INT64(&sub, "amount", int_at(t->docs[i], "refund.amount",
	    0));
	BSON_APPEND_UTF8(&sub, "status", REFUND_DONE);
	BSON_APPEND_UTF8(&sub, "reference", a->reference);
	BSON_APPEND_DATE_TIME(&sub, "at", t->r->now);
	BSON_APPEND_UTF8(&sub, "by", a->actor);
	bson_append_document_end(t->sets[i], &sub);
	BSON_APPEND_DATE_TIME(t->sets[i], "updatedAt", t->r->now);
}

/* Step 2 for item i (its document read). */
static void
decide(struct txn *t, int i)
{
	struct lc_item		*it = &t->r->items[i];
	const char		*cur;
	bson_iter_t		 u;

	cur = lifecycle_status(t->docs[i]);
	snprintf(it->status, sizeof(it->status), "%s", cur);
	if (bson_iter_init_find(&u, t->docs[i], "userId") &&
	    BSON_ITER_HOLDS_OID(&u))
		db_oid_hex(bson_iter_oid(&u), it->user);
	if (!it->admin && strcmp(it->user, it->actor) != 0) {
		refuse(it, ERR_FORBIDDEN);
		return;
	}
	if (it->seen[0] == '\0')
		snprintf(it->seen, sizeof(it->seen), "%s", cur);
	switch (it->what) {
	case TR_PAY:
		pay(t, i, cur);
		break;
	case TR_FULFIL:
		fulfil(t, i, cur);
		break;
	case TR_CANCEL:
		cancel(t, i, cur);
		break;
	case TR_REFUND:
		refund(t, i, cur);
		break;
	case TR_EXPIRE:
		expire(t, i, cur);
		break;
	}
	/* It changed under us (a racing transition won): refused. */
	if (t->sets[i] != NULL && strcmp(it->seen, cur) != 0) {
		bson_destroy(t->sets[i]);
		t->sets[i] = NULL;
		refuse(it, ERR_INVALID_TRANSITION);
	}
}

/* ----- writing ----- */

/* Step 1: the orders, each into docs[]. */
static int
read_orders(struct txn *t, const bson_t *opts, bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_iter_t	 it;
	bson_t		 q, in, arr;
	char		 key[16];
	int		 i, ret;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0; i < t->r->n; i++) {
		bson_snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_OID(&arr, key, &t->r->items[i].id);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	cur = mongoc_collection_find_with_opts(t->orders, &q, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "_id") ||
		    !BSON_ITER_HOLDS_OID(&it))
			continue;
		for (i = 0; i < t->r->n; i++) {
			if (t->docs[i] == NULL &&
			    bson_oid_equal(&t->r->items[i].id,
			    bson_iter_oid(&it)))
				t->docs[i] = bson_copy(doc);
		}
	}
	ret = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	bson_destroy(&q);
	return (ret);
}

/* Step 3a: each change, only if the order's status is still as read. */
static bool
update_orders(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	bson_t	*q, u, r;
	int	 i;
	bool	 ok;

	for (i = 0, ok = true; ok && i < t->r->n; i++) {
		if (t->sets[i] == NULL)
			continue;
		q = BCON_NEW("_id", BCON_OID(&t->r->items[i].id));
		if (str_at(t->docs[i], "status") != NULL)
			BSON_APPEND_UTF8(q, "status", t->r->items[i].status);
		bson_init(&u);
		BSON_APPEND_DOCUMENT(&u, "$set", t->sets[i]);
		ok = mongoc_collection_update_one(t->orders, q, &u, opts, &r,
		    err);
		if (!ok)
			db_txn_failed(reply, &r);
		else if (int_at(&r, "matchedCount", 0) != 1) {
			bson_set_error(err, 0, 0, "an order changed in the "
			    "transaction's snapshot");
			ok = false;
		}
		bson_destroy(&r);
		bson_destroy(&u);
		bson_destroy(q);
	}
	return (ok);
}

/* Units of one product a transaction gives back. */
struct back {
	bson_oid_t	 product;
	int64_t		 units;
};

/* Add the lines of order doc to backs (n so far, room for max). */
static int
add_back(const bson_t *doc, struct back *backs, int n, int max)
{
	bson_iter_t	 it, arr, line;
	const bson_oid_t *pid;
	int64_t		 qty;
	int		 k;

	if (!bson_iter_init_find(&it, doc, "items") ||
	    !bson_iter_recurse(&it, &arr))
		return (n);
	while (bson_iter_next(&arr)) {
		if (!bson_iter_recurse(&arr, &line) ||
		    !bson_iter_find(&line, "productId") ||
		    !BSON_ITER_HOLDS_OID(&line))
			continue;
		pid = bson_iter_oid(&line);
		bson_iter_recurse(&arr, &line);
		qty = bson_iter_find(&line, "quantity") ?
		    bson_iter_as_int64(&line) : 0;
		for (k = 0; k < n && !bson_oid_equal(&backs[k].product, pid);
		    k++)
			;
		if (k == n && n == max)
			continue;	/* cannot happen: max counts every line */
		if (k == n) {
			bson_oid_copy(pid, &backs[n].product);
			backs[n++].units = 0;
		}
		backs[k].units += qty;
	}
	return (n);
}

/*
 * Step 3b: the units of cancelled and expired orders, back in stock:
 * one $inc per product, however many orders of it the batch returns.
 */
static bool
restock(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	mongoc_bulk_operation_t	*bulk;
	struct back		*backs;
	bson_iter_t		 it, arr;
	bson_t			 r, *q, *u;
	int			 i, n, max;
	bool			 ok;

	for (i = 0, max = 0; i < t->r->n; i++) {
		if (t->sets[i] != NULL &&
		    bson_iter_init_find(&it, t->docs[i], "items") &&
		    bson_iter_recurse(&it, &arr))
			while (bson_iter_next(&arr))
				max++;
	}
	backs = bson_malloc0((size_t)(max + 1) * sizeof(*backs));
	for (i = 0, n = 0; i < t->r->n; i++) {
		if (t->sets[i] != NULL && (t->r->items[i].what == TR_CANCEL ||
		    t->r->items[i].what == TR_EXPIRE))
			n = add_back(t->docs[i], backs, n, max);
	}
	bulk = mongoc_collection_create_bulk_operation_with_opts(t->products,
	    opts);
	for (i = 0; i < n; i++) {
		q = BCON_NEW("_id", BCON_OID(&backs[i].product));
		u = BCON_NEW("$inc", "{", "stock", BCON_INT64(backs[i].units),
		    "}");
		mongoc_bulk_operation_update_one(bulk, q, u, false);
		bson_destroy(q);
		bson_destroy(u);
	}
	ok = true;
	if (n > 0 && !(ok = mongoc_bulk_operation_execute(bulk, &r, err) !=
	    0))
		db_txn_failed(reply, &r);
	if (n > 0)
		bson_destroy(&r);
	mongoc_bulk_operation_destroy(bulk);
	bson_free(backs);
	return (ok);
}

/* Step 3c: one outbox event per change. */
static bool
announce(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	const bson_t	**docs;
	bson_t		**own, r;
	int		  i, n;
	bool		  ok;

	own = bson_malloc0((size_t)t->r->n * sizeof(*own));
	docs = bson_malloc0((size_t)t->r->n * sizeof(*docs));
	for (i = 0, n = 0; i < t->r->n; i++) {
		if (t->sets[i] == NULL)
			continue;
		own[n] = outbox_for_event(t->docs[i],
		    events[t->r->items[i].what], t->r->now);
		docs[n] = own[n];
		n++;
	}
	ok = true;
	if (n > 0 && !(ok = mongoc_collection_insert_many(t->outbox, docs,
	    (size_t)n, opts, &r, err)))
		db_txn_failed(reply, &r);
	if (n > 0)
		bson_destroy(&r);
	for (i = 0; i < n; i++)
		bson_destroy(own[i]);
	bson_free(own);
	bson_free(docs);
	return (ok);
}

/* Forget what a run read and decided. */
static void
txn_reset(struct txn *t)
{
	int	i;

	for (i = 0; i < t->r->n; i++) {
		if (t->docs[i] != NULL)
			bson_destroy(t->docs[i]);
		if (t->sets[i] != NULL)
			bson_destroy(t->sets[i]);
		t->docs[i] = t->sets[i] = NULL;
	}
}

static bool
txn_body(mongoc_client_session_t *s, void *arg, bson_t **reply,
    bson_error_t *err)
{
	struct txn	*t = arg;
	bson_t		 opts;
	bool		 ok;
	int		 i;

	t->r->runs++;
	txn_reset(t);
	for (i = 0; i < t->r->n; i++)
		t->r->items[i].err = ERR_NONE;
	bson_init(&opts);
	ok = mongoc_client_session_append(s, &opts, err) &&
	    read_orders(t, &opts, err) == 0;
	for (i = 0; ok && i < t->r->n; i++) {
		if (t->docs[i] == NULL)
			refuse(&t->r->items[i], ERR_ORDER_NOT_FOUND);
		else
			decide(t, i);
	}
	ok = ok && update_orders(t, &opts, reply, err) &&
	    restock(t, &opts, reply, err) && announce(t, &opts, reply, err);
	bson_destroy(&opts);
	return (ok);
}

/* The order as it is after the change: doc with set's fields over it. */
static json_t *
merged_json(const bson_t *doc, const bson_t *set)
{
	bson_iter_t	 it;
	bson_t		 merged;
	json_t		*o;

	if (set == NULL)
		return (orders_json(doc));
	bson_init(&merged);
	bson_iter_init(&it, doc);
	while (bson_iter_next(&it)) {
		if (!bson_has_field(set, bson_iter_key(&it)))
			bson_append_iter(&merged, NULL, 0, &it);
	}
	bson_concat(&merged, set);
	o = orders_json(&merged);
	bson_destroy(&merged);
	return (o);
}

/* After the commit: each item's order, and its lines if units went back. */
static void
outcome(struct txn *t)
{
	struct lc_item	*it;
	int		 i;

	for (i = 0; i < t->r->n; i++) {
		it = &t->r->items[i];
		if (t->docs[i] == NULL || it->err == ERR_FORBIDDEN)
			continue;
		it->order = merged_json(t->docs[i], t->sets[i]);
		if (t->sets[i] == NULL)
			continue;
		it->changed = 1;
		snprintf(it->status, sizeof(it->status), "%s",
		    json_string_value(json_object_get(it->order, "status")));
		if (it->what == TR_CANCEL || it->what == TR_EXPIRE)
			it->lines = orders_lines(t->docs[i]);
	}
}

int
lifecycle_apply(mongoc_client_t *client, struct lc_request *r)
{
	mongoc_client_session_t		*s;
	mongoc_transaction_opt_t	*topts;
	mongoc_write_concern_t		*wc;
	bson_error_t			 err;
	struct txn			 t;
	int				 ok;

	memset(&t, 0, sizeof(t));
	t.r = r;
	r->runs = 0;
	r->error[0] = '\0';
	if ((s = mongoc_client_start_session(client, NULL, &err)) == NULL) {
		snprintf(r->error, sizeof(r->error), "%s", err.message);
		return (-1);
	}
	t.docs = bson_malloc0((size_t)r->n * sizeof(*t.docs));
	t.sets = bson_malloc0((size_t)r->n * sizeof(*t.sets));
	t.orders = db_coll(client, DB_ORDERS);
	t.products = db_coll(client, DB_PRODUCTS);
	t.outbox = db_coll(client, DB_OUTBOX);
	topts = mongoc_transaction_opts_new();
	wc = mongoc_write_concern_new();
	mongoc_write_concern_set_wmajority(wc, 0);
	mongoc_transaction_opts_set_write_concern(topts, wc);
	ok = mongoc_client_session_with_transaction(s, txn_body, topts, &t,
	    NULL, &err);
	if (ok)
		outcome(&t);
	else
		snprintf(r->error, sizeof(r->error), "%s", err.message);
	txn_reset(&t);
	bson_free(t.docs);
	bson_free(t.sets);
	mongoc_write_concern_destroy(wc);
	mongoc_transaction_opts_destroy(topts);
	mongoc_collection_destroy(t.orders);
	mongoc_collection_destroy(t.products);
	mongoc_collection_destroy(t.outbox);
	mongoc_client_session_destroy(s);
	return (ok ? 0 : -1);
}

void
lifecycle_item_of(const bson_t *doc, struct lc_item *it)
{
	bson_iter_t	i;

	memset(it, 0, sizeof(*it));
	if (bson_iter_init_find(&i, doc, "_id") && BSON_ITER_HOLDS_OID(&i))
		bson_oid_copy(bson_iter_oid(&i), &it->id);
	if (bson_iter_init_find(&i, doc, "userId") && BSON_ITER_HOLDS_OID(&i))
		db_oid_hex(bson_iter_oid(&i), it->user);
	it->lines = orders_lines(doc);
}

void
lifecycle_clear(struct lc_request *r)
{
	int	i;

	for (i = 0; i < r->n; i++) {
		json_decref(r->items[i].order);
		r->items[i].order = NULL;
		free(r->items[i].lines);
		r->items[i].lines = NULL;
	}
}

int
lifecycle_gate_args(struct rargs *a, const struct lc_item *items, int n)
{
	int	i, k;

	for (i = 0, k = 0; i < n; i++)
		k += items[i].lines != NULL;
	rargs_addf(a, "%d", k);
	for (i = 0; i < n; i++) {
		char	 hex[25];

		if (items[i].lines == NULL)
			continue;
		db_oid_hex(&items[i].id, hex);
		rargs_add(a, hex);
		rargs_add(a, items[i].user);
		rargs_add(a, items[i].lines);
	}
	return (k);
}
