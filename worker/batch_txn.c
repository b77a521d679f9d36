/*
 * order.c -- a batch of checkouts as one MongoDB transaction.
 *
 * Inside mongoc_client_session_with_transaction(), which retries
 * transient errors (write conflicts, unknown commit results):
 *   0. when asked, or when this is a rerun: find the orders of the
 *      batch's checkouts (checkoutId is unique); one that exists was
 *      committed by an earlier delivery or an earlier run whose answer
 *      was lost, and is reported as it is;
 *   1. read every cart of the batch (one query); an empty one fails
 *      with cart_empty;
 *   2. read every product in them (one query);
 *   3. allocate stock in stream order: a checkout whose product is gone
 *      fails with product_unavailable, one that asks for more than is
 *      left fails with out_of_stock; either way it takes nothing and
 *      the next checkout is served;
 *   4. take each product's total with one conditional decrement
 *      ({_id, stock: {$gte: total}} -> $inc -total), all in one bulk;
 *   5. insert the orders (insert_many); each keeps the prices of now,
 *      and total is the sum of price x quantity, in cents; each starts
 *      confirmed, or awaiting_payment with a payBy when
 *      PAYMENT_WINDOW_S is set (shared/lifecycle.h); and beside
 *      each, its outbox document (one more insert_many): the order is
 *      announced (email, webhooks) if and only if it commits
 *      (shared/outbox.h);
 *   6. remove the ordered carts (delete_many): a checkout orders the
 *      whole cart.
 * The commit asks for w: majority: the order survives the loss of the
 * primary (and with SecantusDB's --sync-on-commit, a crash of the
 * database process) before anyone is told it exists.  A failed checkout
 * changes no stock and no cart.
 *
 * The callback hands with_transaction() the reply of the operation that
 * failed: the TransientTransactionError label that makes it retry lives
 * there (docs/DATABASE.md).
 */
#include <stdio.h>
#include <string.h>

#include "../shared/carts.h"
#include "../shared/db.h"
#include "../shared/lifecycle.h"
#include "../shared/outbox.h"
#include "batch_txn.h"

#define PRODUCTS_MAX	4096	/* distinct products in one batch */

struct product {
	bson_oid_t	 id;
	int		 found;		/* in the database */
	int64_t		 price;		/* cents */
	int64_t		 left;		/* stock read, minus what is taken */
	int64_t		 take;		/* units this batch takes */
	char		*title;		/* owned */
	int64_t		 starts;	/* saleStartsAt, ms; 0: none */
	int64_t		 ends;		/* saleEndsAt, ms; 0: none */
	int64_t		 limit;		/* perCustomerLimit; 0: none */
};

/* Units of a limited product a buyer holds in live orders. */
struct held {
	bson_oid_t	 user;
	struct product	*p;
	int64_t		 units;
};

struct txn {
	struct order_batch	*b;
	mongoc_collection_t	*carts;
	mongoc_collection_t	*products;
	mongoc_collection_t	*orders;
	mongoc_collection_t	*outbox;
	struct cart		*cart;		/* per request, as read */
	struct product		*prods;		/* distinct, in first-seen order */
	int			 nprods;
	bson_t			**docs;		/* per request: the new order */
	int			 nlocked;	/* products passed to on_rerun */
	struct held		*held;		/* limited products held */
	int			 nheld;
	int64_t			 now;		/* ms, for the sale windows */
};

/* Forget what a run read and built (not what it decided). */
static void
txn_reset(struct txn *t)
{
	int	i;

	for (i = 0; i < t->b->n; i++) {
		carts_free(&t->cart[i]);
		if (t->docs[i] != NULL)
			bson_destroy(t->docs[i]);
		t->docs[i] = NULL;
	}
	for (i = 0; i < t->nprods; i++)
		bson_free(t->prods[i].title);
	t->nprods = 0;
	bson_free(t->held);
	t->held = NULL;
	t->nheld = 0;
}

/* Undecide every request that is not skipped. */
static void
undecide(struct order_batch *b)
{
	int	i;

	for (i = 0; i < b->n; i++) {
		if (!b->reqs[i].skip)
			order_req_clear(&b->reqs[i]);
	}
}

void
order_req_clear(struct order_req *r)
{
	if (r->doc != NULL)
		bson_destroy(r->doc);
	r->doc = NULL;
	r->state = CK_UNKNOWN;
	r->code = ERR_NONE;
	r->has_product = 0;
	r->limit = r->held = r->starts = 0;
}

static void
fail(struct order_req *r, enum err code, const bson_oid_t *product)
{
	r->state = CK_FAILED;
	r->code = code;
	r->has_product = product != NULL;
	if (product != NULL)
		bson_oid_copy(product, &r->product);
}

/* ----- reads ----- */

/* {field: {$in: [...]}} over the open requests; 0 if there are none. */
static int
in_filter(struct txn *t, bson_t *q, const char *field, int users)
{
	bson_t	in, arr;
	char	key[16];
	int	i, n;

	bson_init(q);
	BSON_APPEND_DOCUMENT_BEGIN(q, field, &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0, n = 0; i < t->b->n; i++) {
		if (t->b->reqs[i].skip || t->b->reqs[i].state != CK_UNKNOWN)
			continue;
		bson_snprintf(key, sizeof(key), "%d", n++);
		if (users)
			BSON_APPEND_OID(&arr, key, &t->b->reqs[i].user);
		else
			BSON_APPEND_UTF8(&arr, key, t->b->reqs[i].checkout_id);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(q, &in);
	return (n);
}

/* The open request whose checkoutId is id, or -1. */
static int
req_of_checkout(const struct order_batch *b, const char *id)
{
	int	i;

	for (i = 0; i < b->n; i++) {
		if (!b->reqs[i].skip && strcmp(b->reqs[i].checkout_id, id) == 0)
			return (i);
	}
	return (-1);
}

/* Step 0: complete the requests whose order exists. */
static int
look(struct txn *t, mongoc_collection_t *orders, const bson_t *opts,
    bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_iter_t	 it;
	bson_t		 q;
	int		 i, ret;

	if (in_filter(t, &q, "checkoutId", 0) == 0) {
		bson_destroy(&q);
		return (0);
	}
	cur = mongoc_collection_find_with_opts(orders, &q, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "checkoutId") ||
		    !BSON_ITER_HOLDS_UTF8(&it) ||
		    (i = req_of_checkout(t->b, bson_iter_utf8(&it, NULL))) < 0)
			continue;
		t->b->reqs[i].state = CK_COMPLETED;
		if (t->b->reqs[i].doc != NULL)
			bson_destroy(t->b->reqs[i].doc);
		t->b->reqs[i].doc = bson_copy(doc);
	}
	ret = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	bson_destroy(&q);
	return (ret);
}

/* Step 1: every open request's cart; empty ones fail. */
static int
read_carts(struct txn *t, const bson_t *opts, bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_iter_t	 it;
	bson_t		 q;
	int		 i, ret;

	if (in_filter(t, &q, "userId", 1) == 0) {
		bson_destroy(&q);
		return (0);
	}
	cur = mongoc_collection_find_with_opts(t->carts, &q, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "userId") ||
		    !BSON_ITER_HOLDS_OID(&it))
			continue;
		for (i = 0; i < t->b->n; i++) {
			if (!t->b->reqs[i].skip &&
			    bson_oid_equal(&t->b->reqs[i].user,
			    bson_iter_oid(&it)))
				carts_parse(doc, &t->cart[i]);
		}
	}
	ret = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	bson_destroy(&q);
	for (i = 0; ret == 0 && i < t->b->n; i++) {
		if (t->b->reqs[i].skip || t->b->reqs[i].state != CK_UNKNOWN)
			continue;
		if (t->cart[i].n == 0)
			fail(&t->b->reqs[i], ERR_CART_EMPTY, NULL);
		else if (t->b->reqs[i].exact != NULL &&
		    !carts_same_lines(&t->cart[i], t->b->reqs[i].exact))
			fail(&t->b->reqs[i], ERR_CART_CHANGED, NULL);
	}
	return (ret);
}

static struct product *
product_of(struct txn *t, const bson_oid_t *id)
{
	int	i;

	for (i = 0; i < t->nprods; i++) {
		if (bson_oid_equal(&t->prods[i].id, id))
			return (&t->prods[i]);
	}
	return (NULL);
}

/* The distinct products of the open requests' carts, as {_id: {$in}}. */
static int
product_filter(struct txn *t, bson_t *q)
{
	struct cart_line	*l;
	bson_t			 in, arr;
	char			 key[16];
	int			 i, j;

	bson_init(q);
	BSON_APPEND_DOCUMENT_BEGIN(q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0; i < t->b->n; i++) {
		if (t->b->reqs[i].skip || t->b->reqs[i].state != CK_UNKNOWN)
			continue;
		for (j = 0; j < t->cart[i].n; j++) {
			l = &t->cart[i].lines[j];
			if (product_of(t, &l->product) != NULL ||
			    t->nprods == PRODUCTS_MAX)
				continue;
			memset(&t->prods[t->nprods], 0, sizeof(t->prods[0]));
			bson_oid_copy(&l->product, &t->prods[t->nprods].id);
			bson_snprintf(key, sizeof(key), "%d", t->nprods++);
			BSON_APPEND_OID(&arr, key, &l->product);
		}
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(q, &in);
	return (t->nprods);
}

/* A product's sale rules: each 0 when unset. */
static void
sale_rules(const bson_t *doc, int64_t *starts, int64_t *ends, int64_t *limit)
{
	bson_iter_t	it;

	*starts = bson_iter_init_find(&it, doc, "saleStartsAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) : 0;
	*ends = bson_iter_init_find(&it, doc, "saleEndsAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) : 0;
	*limit = bson_iter_init_find(&it, doc, "perCustomerLimit") &&
	    BSON_ITER_HOLDS_INT(&it) ? bson_iter_as_int64(&it) : 0;
}

/* Step 2: price, title and stock of every product in the carts. */
static int
read_products(struct txn *t, const bson_t *opts, bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	struct product	*p;
	bson_iter_t	 it;
	bson_t		 q;
	int		 ret;

	if (product_filter(t, &q) == 0) {
		bson_destroy(&q);
		return (0);
	}
	cur = mongoc_collection_find_with_opts(t->products, &q, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "_id") ||
		    !BSON_ITER_HOLDS_OID(&it) ||
		    (p = product_of(t, bson_iter_oid(&it))) == NULL)
			continue;
		p->found = 1;
		if (bson_iter_init_find(&it, doc, "price"))
			p->price = bson_iter_as_int64(&it);
		if (bson_iter_init_find(&it, doc, "stock"))
			p->left = bson_iter_as_int64(&it);
		if (bson_iter_init_find(&it, doc, "title") &&
		    BSON_ITER_HOLDS_UTF8(&it))
			p->title = bson_strdup(bson_iter_utf8(&it, NULL));
		sale_rules(doc, &p->starts, &p->ends, &p->limit);
	}
	ret = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	bson_destroy(&q);
	return (ret);
}

/* Count the units of product p (limited) in one live order's items. */
static void
held_add(struct txn *t, const bson_oid_t *user, bson_iter_t *items)
{
	bson_iter_t	 arr, line;
	struct product	*p;
	int		 k;

	if (!bson_iter_recurse(items, &arr))
		return;
	while (bson_iter_next(&arr)) {
		if (!bson_iter_recurse(&arr, &line) ||
		    !bson_iter_find(&line, "productId") ||
		    !BSON_ITER_HOLDS_OID(&line) ||
		    (p = product_of(t, bson_iter_oid(&line))) == NULL ||
		    p->limit == 0)
			continue;
		bson_iter_recurse(&arr, &line);
		if (!bson_iter_find(&line, "quantity"))
			continue;
		for (k = 0; k < t->nheld; k++) {
			if (t->held[k].p == p &&
			    bson_oid_equal(&t->held[k].user, user))
				break;
		}
		if (k == t->nheld) {
			t->held = bson_realloc(t->held, (size_t)(k + 1) *
			    sizeof(*t->held));
			bson_oid_copy(user, &t->held[k].user);
			t->held[k].p = p;
			t->held[k].units = 0;
			t->nheld++;
		}
		t->held[k].units += bson_iter_as_int64(&line);
	}
}

/*
 * Step 2b: the units of limited products (perCustomerLimit) that the
 * batch's buyers hold in orders not cancelled or expired, in one query
 * of the same snapshot; nothing when no product in the batch is limited.
 */
static int
read_held(struct txn *t, const bson_t *opts, bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_iter_t	 it, u;
	bson_t		 q, in, arr, nin;
	char		 key[16];
	int		 i, n, ret;

	if (in_filter(t, &q, "userId", 1) == 0) {
		bson_destroy(&q);
		return (0);
	}
	BSON_APPEND_DOCUMENT_BEGIN(&q, "items.productId", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0, n = 0; i < t->nprods; i++) {
		if (t->prods[i].limit == 0)
			continue;
		bson_snprintf(key, sizeof(key), "%d", n++);
		BSON_APPEND_OID(&arr, key, &t->prods[i].id);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "status", &nin);
	BSON_APPEND_ARRAY_BEGIN(&nin, "$nin", &arr);
	BSON_APPEND_UTF8(&arr, "0", OS_CANCELLED);
	BSON_APPEND_UTF8(&arr, "1", OS_EXPIRED);
	bson_append_array_end(&nin, &arr);
	bson_append_document_end(&q, &nin);
	ret = 0;
	if (n > 0) {
		cur = mongoc_collection_find_with_opts(t->orders, &q, opts,
		    NULL);
		while (mongoc_cursor_next(cur, &doc)) {
			if (bson_iter_init_find(&u, doc, "userId") &&
			    BSON_ITER_HOLDS_OID(&u) &&
			    bson_iter_init_find(&it, doc, "items"))
				held_add(t, bson_iter_oid(&u), &it);
		}
		ret = mongoc_cursor_error(cur, err) ? -1 : 0;
		mongoc_cursor_destroy(cur);
	}
	bson_destroy(&q);
	return (ret);
}

/* Units of p that user holds in live orders. */
static int64_t
held_of(const struct txn *t, const bson_oid_t *user, const struct product *p)
{
	int	k;

	for (k = 0; k < t->nheld; k++) {
		if (t->held[k].p == p && bson_oid_equal(&t->held[k].user, user))
			return (t->held[k].units);
	}
	return (0);
}

/* ----- allocation ----- */

/* A line's sale rule refuses it: fail request r and say so. */
static int
rule_refuses(struct txn *t, struct order_req *r, const struct product *p,
    int64_t qty)
{
	int64_t	held, at;

	at = r->at > 0 ? r->at : t->now;
	if (p->starts != 0 && at < p->starts) {
		fail(r, ERR_SALE_NOT_STARTED, &p->id);
		r->starts = p->starts;
		return (1);
	}
	if (p->ends != 0 && at >= p->ends) {
		fail(r, ERR_SALE_ENDED, &p->id);
		return (1);
	}
	held = p->limit != 0 ? held_of(t, &r->user, p) : 0;
	if (p->limit != 0 && held + qty > p->limit) {
		fail(r, ERR_LIMIT_EXCEEDED, &p->id);
		r->limit = p->limit;
		r->held = held;
		return (1);
	}
	return (0);
}

/* Step 3 for request i: take its lines, or fail it and take nothing. */
static void
allocate(struct txn *t, int i)
{
	struct cart	*c = &t->cart[i];
	struct product	*p;
	int		 j;

	for (j = 0; j < c->n; j++) {
		p = product_of(t, &c->lines[j].product);
		if (p == NULL || !p->found) {
			fail(&t->b->reqs[i], ERR_PRODUCT_UNAVAILABLE,
			    &c->lines[j].product);
			return;
		}
		if (rule_refuses(t, &t->b->reqs[i], p, c->lines[j].quantity))
			return;
		if (p->left < c->lines[j].quantity) {
			fail(&t->b->reqs[i], ERR_OUT_OF_STOCK,
			    &c->lines[j].product);
			return;
		}
	}
	for (j = 0; j < c->n; j++) {
		p = product_of(t, &c->lines[j].product);
		p->left -= c->lines[j].quantity;
		p->take += c->lines[j].quantity;
	}
	t->b->reqs[i].state = CK_COMPLETED;
}

/* A new order document for request i's cart at its current prices. */
static bson_t *
order_doc(struct txn *t, int i)
{
	const struct cart	*c = &t->cart[i];
	struct product		*p;
	bson_t			*doc, items, line;
	bson_oid_t		 oid;
	int64_t			 total, now;
	char			 key[16];
	int			 j;

	now = db_now_ms();
	doc = bson_new();
	bson_oid_init(&oid, NULL);
	BSON_APPEND_OID(doc, "_id", &oid);
	BSON_APPEND_UTF8(doc, "checkoutId", t->b->reqs[i].checkout_id);
	BSON_APPEND_OID(doc, "userId", &t->b->reqs[i].user);
	BSON_APPEND_ARRAY_BEGIN(doc, "items", &items);
	for (j = 0, total = 0; j < c->n; j++) {
		p = product_of(t, &c->lines[j].product);
		bson_snprintf(key, sizeof(key), "%d", j);
		bson_append_document_begin(&items, key, -1, &line);
		BSON_APPEND_OID(&line, "productId", &c->lines[j].product);
		BSON_APPEND_UTF8(&line, "title", p->title != NULL ? p->title :
		    "");
		BSON_APPEND_INT64(&line, "quantity", c->lines[j].quantity);
		BSON_APPEND_INT64(&line, "price", p->price);
		bson_append_document_end(&items, &line);
		total += p->price * c->lines[j].quantity;
	}
	bson_append_array_end(doc, &items);
	BSON_APPEND_INT64(doc, "total", total);
	BSON_APPEND_DATE_TIME(doc, "createdAt", now);
	/* The checkout's own createdAt, once its status has left Redis. */
	BSON_APPEND_DATE_TIME(doc, "submittedAt", t->b->reqs[i].at > 0 ?
	    t->b->reqs[i].at : now);
	lifecycle_start(doc, &t->b->reqs[i].user, now);
	return (doc);
}

/* ----- writes ----- */

/* Step 4: one conditional decrement per product, in one bulk write. */
static bool
take_stock(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	mongoc_bulk_operation_t	*bulk;
	bson_t			 r, *q, *u;
	bson_iter_t		 it;
	bool			 ok;
	int			 i, ops;

	bulk = mongoc_collection_create_bulk_operation_with_opts(t->products,
	    opts);
	for (i = 0, ops = 0; i < t->nprods; i++) {
		if (t->prods[i].take == 0)
			continue;
		q = BCON_NEW("_id", BCON_OID(&t->prods[i].id), "stock", "{",
		    "$gte", BCON_INT64(t->prods[i].take), "}");
		u = BCON_NEW("$inc", "{", "stock",
		    BCON_INT64(-t->prods[i].take), "}");
		mongoc_bulk_operation_update_one(bulk, q, u, false);
		bson_destroy(q);
		bson_destroy(u);
		ops++;
	}
	ok = mongoc_bulk_operation_execute(bulk, &r, err) != 0;
	if (!ok)
		db_txn_failed(reply, &r);
	else if (!bson_iter_init_find(&it, &r, "nMatched") ||
	    bson_iter_as_int64(&it) != ops) {
		/* Cannot happen in a snapshot; never decrement blindly. */
		bson_set_error(err, 0, 0, "a stock decrement matched nothing");
		ok = false;
	}
	bson_destroy(&r);
	mongoc_bulk_operation_destroy(bulk);
	return (ok);
}

/* Step 5: the orders of the completed requests, in one insert_many. */
static bool
insert_orders(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	const bson_t	**docs;
	bson_t		 r;
	bool		 ok;
	int		 i, n;

	docs = bson_malloc0((size_t)t->b->n * sizeof(*docs));
	for (i = 0, n = 0; i < t->b->n; i++) {
		if (t->docs[i] != NULL)
			docs[n++] = t->docs[i];
	}
	ok = mongoc_collection_insert_many(t->orders, docs, (size_t)n, opts,
	    &r, err);
	/* A duplicate checkoutId: another delivery committed meanwhile. */
	if (!ok && !db_is_duplicate(err))
		db_txn_failed(reply, &r);
	bson_destroy(&r);
	bson_free(docs);
	t->b->writes = ok ? n : 0;
	return (ok);
}

/* Step 5 too: what the new orders announce, in one insert_many. */
static bool
insert_outbox(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	const bson_t	**docs;
	bson_t		**own, r;
	bool		  ok;
	int		  i, n;

	own = bson_malloc0((size_t)t->b->n * sizeof(*own));
	docs = bson_malloc0((size_t)t->b->n * sizeof(*docs));
	for (i = 0, n = 0; i < t->b->n; i++) {
		if (t->docs[i] != NULL) {
			own[n] = outbox_for_order(t->docs[i]);
			docs[n] = own[n];
			n++;
		}
	}
	ok = mongoc_collection_insert_many(t->outbox, docs, (size_t)n, opts,
	    &r, err);
	if (!ok)
		db_txn_failed(reply, &r);
	bson_destroy(&r);
	for (i = 0; i < n; i++)
		bson_destroy(own[i]);
	bson_free(own);
	bson_free(docs);
	return (ok);
}

/* Step 6: the carts of the completed requests, in one delete_many. */
static bool
remove_carts(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	bson_t	q, in, arr, r;
	char	key[16];
	bool	ok;
	int	i, n;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "userId", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0, n = 0; i < t->b->n; i++) {
		if (t->docs[i] == NULL)
			continue;
		bson_snprintf(key, sizeof(key), "%d", n++);
		BSON_APPEND_OID(&arr, key, &t->b->reqs[i].user);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	ok = mongoc_collection_delete_many(t->carts, &q, opts, &r, err);
	if (!ok)
		db_txn_failed(reply, &r);
	bson_destroy(&r);
	bson_destroy(&q);
	return (ok);
}

/* Steps 3-6: allocate in order, then write what was allocated. */
static bool
write_batch(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	int	i, n;

	for (i = 0, n = 0; i < t->b->n; i++) {
		if (t->b->reqs[i].skip || t->b->reqs[i].state != CK_UNKNOWN)
			continue;
		allocate(t, i);
		if (t->b->reqs[i].state == CK_COMPLETED) {
			t->docs[i] = order_doc(t, i);
			n++;
		}
	}
	if (n == 0)
		return (true);
	return (take_stock(t, opts, reply, err) &&
	    insert_orders(t, opts, reply, err) &&
	    insert_outbox(t, opts, reply, err) &&
	    remove_carts(t, opts, reply, err));
}

/* The products the batch's carts name, for on_rerun. */
static void
rerun_locks(struct txn *t)
{
	char	(*ids)[25];
	int	 i;

	if (t->b->on_rerun == NULL || t->nlocked > 0 || t->nprods == 0)
		return;
	ids = bson_malloc((size_t)t->nprods * sizeof(*ids));
	for (i = 0; i < t->nprods; i++)
		db_oid_hex(&t->prods[i].id, ids[i]);
	t->b->on_rerun(t->b->arg, ids, t->nprods);
	t->nlocked = t->nprods;
	bson_free(ids);
}

static bool
txn_body(mongoc_client_session_t *s, void *arg, bson_t **reply,
    bson_error_t *err)
{
	struct txn	*t = arg;
	bson_t		 opts;
	bool		 ok;

	if (t->b->runs++ > 0)
		rerun_locks(t);
	txn_reset(t);
	undecide(t->b);
	t->b->writes = 0;
	bson_init(&opts);
	ok = mongoc_client_session_append(s, &opts, err) &&
	    ((!t->b->look_first && t->b->runs == 1) ||
	    look(t, t->orders, &opts, err) == 0) &&
	    read_carts(t, &opts, err) == 0 &&
	    read_products(t, &opts, err) == 0 &&
	    read_held(t, &opts, err) == 0 &&
	    write_batch(t, &opts, reply, err);
	bson_destroy(&opts);
	return (ok);
}

static int
run_transaction(mongoc_client_t *client, struct txn *t)
{
	mongoc_client_session_t		*s;
	mongoc_transaction_opt_t	*topts;
	mongoc_write_concern_t		*wc;
	bson_error_t			 err;
	int				 ok;

	if ((s = mongoc_client_start_session(client, NULL, &err)) == NULL) {
		snprintf(t->b->error, sizeof(t->b->error), "%s", err.message);
		return (-1);
	}
	topts = mongoc_transaction_opts_new();
	wc = mongoc_write_concern_new();
	mongoc_write_concern_set_wmajority(wc, 0);
	mongoc_transaction_opts_set_write_concern(topts, wc);
	ok = mongoc_client_session_with_transaction(s, txn_body, topts, t,
	    NULL, &err);
	if (!ok)
		snprintf(t->b->error, sizeof(t->b->error), "%s", err.message);
	mongoc_write_concern_destroy(wc);
	mongoc_transaction_opts_destroy(topts);
	mongoc_client_session_destroy(s);
	return (ok ? 0 : -1);
}

int
order_batch_place(mongoc_client_t *client, struct order_batch *b)
{
	struct txn	t;
	int		i, ret;

	memset(&t, 0, sizeof(t));
	t.b = b;
	t.now = db_now_ms();
	b->runs = 0;
	b->writes = 0;
	b->error[0] = '\0';
	t.cart = bson_malloc0((size_t)b->n * sizeof(*t.cart));
	t.docs = bson_malloc0((size_t)b->n * sizeof(*t.docs));
	t.prods = bson_malloc0(PRODUCTS_MAX * sizeof(*t.prods));
	t.carts = db_coll(client, DB_CARTS);
	t.products = db_coll(client, DB_PRODUCTS);
	t.orders = db_coll(client, DB_ORDERS);
	t.outbox = db_coll(client, DB_OUTBOX);
	ret = run_transaction(client, &t);
	for (i = 0; ret == 0 && i < b->n; i++) {
		if (t.docs[i] != NULL && b->reqs[i].state == CK_COMPLETED) {
			b->reqs[i].doc = t.docs[i];	/* moved */
			t.docs[i] = NULL;
		}
	}
	if (ret == -1)
		undecide(b);
	txn_reset(&t);
	bson_free(t.cart);
	bson_free(t.docs);
	bson_free(t.prods);
	mongoc_collection_destroy(t.carts);
	mongoc_collection_destroy(t.products);
	mongoc_collection_destroy(t.orders);
	mongoc_collection_destroy(t.outbox);
	return (ret);
}

int
order_find_existing(mongoc_client_t *client, struct order_req *reqs, int n,
    char *errbuf, size_t errlen)
{
	struct order_batch	b;
	struct txn		t;
	mongoc_collection_t	*orders;
	bson_error_t		 err;
	int			 ret;

	memset(&b, 0, sizeof(b));
	memset(&t, 0, sizeof(t));
	b.reqs = reqs;
	b.n = n;
	t.b = &b;
	orders = db_coll(client, DB_ORDERS);
	if ((ret = look(&t, orders, NULL, &err)) == -1)
		snprintf(errbuf, errlen, "%s", err.message);
	mongoc_collection_destroy(orders);
	return (ret);
}

/* ----- seeding the stock gate ----- */

struct seed_read {
	struct order_seed	*s;
	int			 n;
};

/* The stock of each product in s (-1 when it is gone). */
static int
seed_stocks(mongoc_client_t *client, struct seed_read *r, const bson_t *opts,
    bson_error_t *err)
{
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_iter_t		 it;
	bson_t			 q, in, arr;
	char			 key[16];
	int			 i, ret;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0; i < r->n; i++) {
		r->s[i].stock = -1;
		bson_snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_OID(&arr, key, &r->s[i].product);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	coll = db_coll(client, DB_PRODUCTS);
	cur = mongoc_collection_find_with_opts(coll, &q, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "_id") ||
		    !BSON_ITER_HOLDS_OID(&it))
			continue;
		for (i = 0; i < r->n; i++) {
			if (bson_oid_equal(&r->s[i].product, bson_iter_oid(&it)) &&
			    bson_iter_init_find(&it, doc, "stock")) {
				r->s[i].stock = bson_iter_as_int64(&it);
				sale_rules(doc, &r->s[i].starts, &r->s[i].ends,
				    &r->s[i].limit);
				break;
			}
		}
	}
	ret = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&q);
	return (ret);
}

/* Mark the held checkouts of s that have an order. */
static void
seed_mark(struct seed_read *r, const char *id)
{
	int	i, j;

	for (i = 0; i < r->n; i++) {
		for (j = 0; j < r->s[i].nheld; j++) {
			if (strcmp(r->s[i].held[j], id) == 0)
				r->s[i].committed[j] = 1;
		}
	}
}

static int
seed_orders(mongoc_client_t *client, struct seed_read *r, const bson_t *opts,
    bson_error_t *err)
{
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_iter_t		 it;
	bson_t			 q, in, arr;
	char			 key[16];
	int			 i, j, n, ret;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "checkoutId", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0, n = 0; i < r->n; i++) {
		for (j = 0; j < r->s[i].nheld; j++) {
			r->s[i].committed[j] = 0;
			bson_snprintf(key, sizeof(key), "%d", n++);
			BSON_APPEND_UTF8(&arr, key, r->s[i].held[j]);
		}
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	ret = 0;
	if (n > 0) {
		coll = db_coll(client, DB_ORDERS);
		cur = mongoc_collection_find_with_opts(coll, &q, opts, NULL);
		while (mongoc_cursor_next(cur, &doc)) {
			if (bson_iter_init_find(&it, doc, "checkoutId") &&
			    BSON_ITER_HOLDS_UTF8(&it))
				seed_mark(r, bson_iter_utf8(&it, NULL));
		}
		ret = mongoc_cursor_error(cur, err) ? -1 : 0;
		mongoc_cursor_destroy(cur);
		mongoc_collection_destroy(coll);
	}
	bson_destroy(&q);
	return (ret);
}

static bool
seed_body(mongoc_client_session_t *s, void *arg, bson_t **reply,
    bson_error_t *err)
{
	struct seed_read	*r = arg;
	mongoc_client_t		*client;
	bson_t			 opts;
	bool			 ok;

	(void)reply;
	client = mongoc_client_session_get_client(s);
	bson_init(&opts);
	ok = mongoc_client_session_append(s, &opts, err) &&
	    seed_stocks(client, r, &opts, err) == 0 &&
	    seed_orders(client, r, &opts, err) == 0;
	bson_destroy(&opts);
	return (ok);
}

int
order_seed_read(mongoc_client_t *client, struct order_seed *s, int n,
    char *errbuf, size_t errlen)
{
	mongoc_client_session_t	*sess;
	struct seed_read	 r;
	bson_error_t		 err;
	int			 ok;

	r.s = s;
	r.n = n;
	if ((sess = mongoc_client_start_session(client, NULL, &err)) == NULL) {
		snprintf(errbuf, errlen, "%s", err.message);
		return (-1);
	}
	ok = mongoc_client_session_with_transaction(sess, seed_body, NULL, &r,
	    NULL, &err);
	if (!ok)
		snprintf(errbuf, errlen, "%s", err.message);
	mongoc_client_session_destroy(sess);
	return (ok ? 0 : -1);
}
