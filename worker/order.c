/*
 * order.c -- one checkout as one MongoDB transaction.
 *
 * Inside mongoc_client_session_with_transaction(), which retries
 * transient errors (write conflicts, unknown commit results):
 *   1. read the user's cart; empty: refuse with cart_empty;
 *   2. read every product in it; one gone: refuse product_unavailable;
 *   3. per line, take stock conditionally ({_id, stock: {$gte: q}} ->
 *      $inc -q); nothing matched: refuse out_of_stock;
 *   4. insert the order, whose checkoutId is unique; a duplicate key
 *      means an earlier delivery of this job committed: report that
 *      order and change nothing;
 *   5. remove the ordered lines from the cart.
 * A refused checkout stops at the first step that fails, before any
 * write of its own: in a flash sale nearly every checkout is one.
 * A refusal aborts the transaction, so a checkout that fails changes no
 * stock and no cart.  The order keeps each line's price at this moment;
 * total is the sum of price x quantity, in cents.
 *
 * The callback hands with_transaction() the reply of the operation that
 * failed: the TransientTransactionError label that makes it retry lives
 * there (docs/DATABASE.md).
 */
#include <string.h>

#include "../shared/carts.h"
#include "../shared/db.h"
#include "../shared/orders.h"
#include "worker.h"

#define LOCK_MAX	128	/* product locks per order, at most */

struct txn {
	struct consumer		*c;		/* for the product locks */
	mongoc_collection_t	*carts;
	mongoc_collection_t	*products;
	mongoc_collection_t	*orders;
	bson_oid_t		 user;
	const char		*checkout_id;
	struct cart		 cart;		/* as read in the transaction */
	int64_t			*prices;	/* per cart line, cents */
	int64_t			*stocks;	/* per cart line, as read */
	char			**titles;	/* per cart line */
	long long		 version;	/* catalogue version, read first */
	int			 runs;		/* of the callback */
	char			 want[LOCK_MAX][25];	/* the cart's products */
	int			 nwant;
	int			 nlocked;	/* of want, taken in order */
	char			 token[40];	/* of the product locks */
	/* What the last run of the callback found. */
	const char		*refused;	/* failure code, or NULL */
	bson_oid_t		 product;	/* the line it is about */
	int64_t			 seen;		/* out of stock: the stock read */
	int			 duplicate;	/* the order exists already */
	bson_t			*order;		/* the order inserted */
};

static void
txn_reset(struct txn *t)
{
	int	i;

	for (i = 0; t->titles != NULL && i < t->cart.n; i++)
		bson_free(t->titles[i]);
	bson_free(t->titles);
	bson_free(t->prices);
	bson_free(t->stocks);
	t->titles = NULL;
	t->prices = NULL;
	t->stocks = NULL;
	carts_free(&t->cart);
	if (t->order != NULL)
		bson_destroy(t->order);
	t->order = NULL;
	t->refused = NULL;
	t->duplicate = 0;
}

/* Refuse the checkout: with_transaction aborts and does not retry. */
static bool
refuse(struct txn *t, const char *code, const bson_oid_t *product,
    bson_error_t *err)
{
	t->refused = code;
	if (product != NULL)
		bson_oid_copy(product, &t->product);
	bson_set_error(err, 0, 0, "checkout refused: %s", code);
	return (false);
}

/* Keep a copy of the failed operation's reply for with_transaction. */
static bool
failed(bson_t **reply, const bson_t *got)
{
	if (got != NULL) {
		bson_destroy(*reply);
		*reply = bson_copy(got);
	}
	return (false);
}

/* Prices and titles of the cart's products; 0, or the missing line. */
static int
read_products(struct txn *t, const bson_t *opts, bson_error_t *err,
    int *missing)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_t		 q, in, ids;
	bson_iter_t	 it;
	char		 key[16];
	int		 i, ret;

	t->prices = bson_malloc0((size_t)t->cart.n * sizeof(*t->prices));
	t->stocks = bson_malloc0((size_t)t->cart.n * sizeof(*t->stocks));
	t->titles = bson_malloc0((size_t)t->cart.n * sizeof(*t->titles));
	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
	for (i = 0; i < t->cart.n; i++) {
		bson_snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_OID(&ids, key, &t->cart.lines[i].product);
	}
	bson_append_array_end(&in, &ids);
	bson_append_document_end(&q, &in);
	cur = mongoc_collection_find_with_opts(t->products, &q, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "_id") ||
		    (i = carts_find(&t->cart, bson_iter_oid(&it))) < 0)
			continue;
		if (bson_iter_init_find(&it, doc, "price"))
			t->prices[i] = bson_iter_as_int64(&it);
		if (bson_iter_init_find(&it, doc, "stock"))
			t->stocks[i] = bson_iter_as_int64(&it);
		if (bson_iter_init_find(&it, doc, "title"))
			t->titles[i] = bson_strdup(bson_iter_utf8(&it, NULL));
	}
	ret = mongoc_cursor_error(cur, err) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	bson_destroy(&q);
	*missing = -1;
	for (i = 0; ret == 0 && i < t->cart.n && *missing < 0; i++) {
		if (t->titles[i] == NULL)
			*missing = i;
	}
	return (ret);
}

/* Take q units of product; 1 taken, 0 not enough, -1 error. */
static int
take_stock(struct txn *t, const struct cart_line *l, const bson_t *opts,
    bson_t **reply, bson_error_t *err)
{
	bson_t		*q, *u, r;
	bson_iter_t	 it;
	int		 ret;

	q = BCON_NEW("_id", BCON_OID(&l->product), "stock", "{", "$gte",
	    BCON_INT64(l->quantity), "}");
	u = BCON_NEW("$inc", "{", "stock", BCON_INT64(-l->quantity), "}");
	ret = -1;
	if (mongoc_collection_update_one(t->products, q, u, opts, &r, err))
		ret = bson_iter_init_find(&it, &r, "matchedCount") &&
		    bson_iter_as_int64(&it) == 1 ? 1 : 0;
	else
		failed(reply, &r);
	bson_destroy(&r);
	bson_destroy(q);
	bson_destroy(u);
	return (ret);
}

/* A new order document for the cart at its current prices. */
static bson_t *
order_doc(const struct txn *t)
{
	bson_t		*doc, items, line;
	bson_oid_t	 oid;
	int64_t		 total;
	char		 key[16];
	int		 i;

	doc = bson_new();
	bson_oid_init(&oid, NULL);
	BSON_APPEND_OID(doc, "_id", &oid);
	BSON_APPEND_UTF8(doc, "checkoutId", t->checkout_id);
	BSON_APPEND_OID(doc, "userId", &t->user);
	BSON_APPEND_ARRAY_BEGIN(doc, "items", &items);
	for (i = 0, total = 0; i < t->cart.n; i++) {
		bson_snprintf(key, sizeof(key), "%d", i);
		bson_append_document_begin(&items, key, -1, &line);
		BSON_APPEND_OID(&line, "productId", &t->cart.lines[i].product);
		BSON_APPEND_UTF8(&line, "title", t->titles[i]);
		BSON_APPEND_INT64(&line, "quantity", t->cart.lines[i].quantity);
		BSON_APPEND_INT64(&line, "price", t->prices[i]);
		bson_append_document_end(&items, &line);
		total += t->prices[i] * t->cart.lines[i].quantity;
	}
	bson_append_array_end(doc, &items);
	BSON_APPEND_INT64(doc, "total", total);
	BSON_APPEND_DATE_TIME(doc, "createdAt", db_now_ms());
	return (doc);
}

/* Remove the ordered lines from the cart. */
static bool
empty_cart(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	bson_t	*q, u, pull, items, in, ids, r;
	char	 key[16];
	bool	 ok;
	int	 i;

	q = BCON_NEW("userId", BCON_OID(&t->user));
	bson_init(&u);
	BSON_APPEND_DOCUMENT_BEGIN(&u, "$pull", &pull);
	BSON_APPEND_DOCUMENT_BEGIN(&pull, "items", &items);
	BSON_APPEND_DOCUMENT_BEGIN(&items, "productId", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
	for (i = 0; i < t->cart.n; i++) {
		bson_snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_OID(&ids, key, &t->cart.lines[i].product);
	}
	bson_append_array_end(&in, &ids);
	bson_append_document_end(&items, &in);
	bson_append_document_end(&pull, &items);
	bson_append_document_end(&u, &pull);
	BCON_APPEND(&u, "$inc", "{", "rev", BCON_INT64(1), "}");
	ok = mongoc_collection_update_one(t->carts, q, &u, opts, &r, err);
	if (!ok)
		failed(reply, &r);
	bson_destroy(&r);
	bson_destroy(&u);
	bson_destroy(q);
	return (ok);
}

/* Remember the cart's products: a retry locks them (lock.c). */
static void
remember_products(struct txn *t)
{
	int	i;

	if (t->nwant > 0)
		return;
	for (i = 0; i < t->cart.n && i < LOCK_MAX; i++)
		db_oid_hex(&t->cart.lines[i].product, t->want[i]);
	t->nwant = i;
}

static bool
txn_steps(struct txn *t, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	bson_t	r;
	int	i, missing;

	if (carts_load(t->carts, &t->user, opts, &t->cart, err) == -1)
		return (false);
	if (t->cart.n == 0)
		return (refuse(t, "cart_empty", NULL, err));
	remember_products(t);
	if (read_products(t, opts, err, &missing) == -1)
		return (false);
	if (missing >= 0)
		return (refuse(t, "product_unavailable",
		    &t->cart.lines[missing].product, err));
	for (i = 0; i < t->cart.n; i++) {
		switch (take_stock(t, &t->cart.lines[i], opts, reply, err)) {
		case 0:
			t->seen = t->stocks[i];
			return (refuse(t, "out_of_stock",
			    &t->cart.lines[i].product, err));
		case -1:
			return (false);
		}
	}
	t->order = order_doc(t);
	if (!mongoc_collection_insert_one(t->orders, t->order, opts, &r,
	    err)) {
		t->duplicate = db_is_duplicate(err);
		failed(reply, t->duplicate ? NULL : &r);
		bson_destroy(&r);
		return (false);
	}
	bson_destroy(&r);
	if (!empty_cart(t, opts, reply, err))
		return (false);
	return (true);
}

static bool
txn_body(mongoc_client_session_t *s, void *arg, bson_t **reply,
    bson_error_t *err)
{
	struct txn	*t = arg;
	bson_t		 opts;
	bool		 ok;

	/*
	 * A rerun follows a write conflict: queue up behind the other
	 * orders of these products instead of racing them again.
	 */
	if (t->runs++ > 0 && t->nlocked == 0 && t->nwant > 0) {
		lock_token(t->token, sizeof(t->token));
		t->nlocked = lock_products(t->c, t->want, t->nwant, t->token);
	}
	txn_reset(t);
	bson_init(&opts);
	ok = mongoc_client_session_append(s, &opts, err) &&
	    txn_steps(t, &opts, reply, err);
	bson_destroy(&opts);
	return (ok);
}

/*
 * The order an earlier delivery committed, as JSON (new), or NULL; with
 * *failed_read set if the database could not tell.
 */
static json_t *
existing_order(mongoc_collection_t *orders, const char *checkout_id,
    bson_error_t *err, int *failed_read)
{
	bson_t		*q;
	json_t		*o;
	enum err	 e;

	q = BCON_NEW("checkoutId", BCON_UTF8(checkout_id));
	e = db_find_one(orders, q, orders_json, ERR_ORDER_NOT_FOUND, &o);
	bson_destroy(q);
	*failed_read = e != ERR_NONE && e != ERR_ORDER_NOT_FOUND;
	if (*failed_read)
		bson_set_error(err, 0, 0, "reading the order failed");
	return (o);
}

/*
 * Refuse from the stock notes alone (soldout.c), reading the cart
 * outside any transaction; 1 if refused.
 */
static int
refused_early(struct txn *t, struct order_result *res)
{
	struct cart	 cart;
	bson_error_t	 err;
	int		 i;

	if (t->version < 0 ||
	    carts_load(t->carts, &t->user, NULL, &cart, &err) != 1)
		return (0);
	if ((i = soldout_check(t->c, &cart)) >= 0) {
		res->outcome = ORDER_FAILED;
		res->code = "out_of_stock";
		db_oid_hex(&cart.lines[i].product, res->product);
	}
	carts_free(&cart);
	return (i >= 0);
}

static void
outcome(struct order_result *res, struct txn *t, int ok,
    const bson_error_t *err)
{
	if (ok) {
		res->outcome = ORDER_COMPLETED;
		res->order = orders_json(t->order);
	} else if (t->refused != NULL) {
		res->outcome = ORDER_FAILED;
		res->code = t->refused;
		if (strcmp(t->refused, "cart_empty") != 0)
			db_oid_hex(&t->product, res->product);
		if (strcmp(t->refused, "out_of_stock") == 0 && t->version >= 0)
			soldout_note(t->c, t->version, &t->product, t->seen);
	} else {
		res->outcome = ORDER_RETRY;
		snprintf(res->detail, sizeof(res->detail), "%s", err->message);
	}
}

/*
 * Place the order of checkout_id.  first: no delivery of this job has
 * reached this point before, so there can be no earlier order to find.
 */
void
order_place(struct consumer *c, const char *checkout_id, const char *user_id,
    int first, struct order_result *res)
{
	mongoc_client_t		*client = c->mongo;
	mongoc_client_session_t	*s;
	mongoc_transaction_opt_t *topts;
	mongoc_write_concern_t	*wc;
	struct txn		 t;
	bson_error_t		 err;
	int			 ok, bad_read;

	memset(res, 0, sizeof(*res));
	memset(&t, 0, sizeof(t));
	t.c = c;
	t.checkout_id = checkout_id;
	db_oid_parse(user_id, &t.user);
	t.carts = db_coll(client, DB_CARTS);
	t.products = db_coll(client, DB_PRODUCTS);
	t.orders = db_coll(client, DB_ORDERS);
	res->outcome = ORDER_RETRY;
	bad_read = 0;
	if (!first)
		res->order = existing_order(t.orders, checkout_id, &err,
		    &bad_read);
	if (res->order != NULL || bad_read) {
		if (res->order != NULL)
			res->outcome = ORDER_COMPLETED;
		else
			snprintf(res->detail, sizeof(res->detail), "%s",
			    err.message);
		goto cleanup;
	}
	/* Read before the transaction's snapshot: see soldout.c. */
	t.version = soldout_version(c);
	if (refused_early(&t, res))
		goto cleanup;
	if ((s = mongoc_client_start_session(client, NULL, &err)) == NULL) {
		snprintf(res->detail, sizeof(res->detail), "%s", err.message);
		goto cleanup;
	}
	topts = mongoc_transaction_opts_new();
	wc = mongoc_write_concern_new();
	mongoc_write_concern_set_wmajority(wc, 0);
	mongoc_transaction_opts_set_write_concern(topts, wc);
	ok = mongoc_client_session_with_transaction(s, txn_body, topts, &t,
	    NULL, &err);
	res->attempts = t.runs;
	res->locked = t.nlocked;
	if (t.nlocked > 0)
		unlock_products(c, t.want, t.nlocked, t.token);
	if (!ok && t.duplicate) {
		res->order = existing_order(t.orders, checkout_id, &err,
		    &bad_read);
		res->outcome = res->order != NULL ? ORDER_COMPLETED :
		    ORDER_RETRY;
	} else {
		outcome(res, &t, ok, &err);
	}
	mongoc_write_concern_destroy(wc);
	mongoc_transaction_opts_destroy(topts);
	mongoc_client_session_destroy(s);
cleanup:
	txn_reset(&t);
	mongoc_collection_destroy(t.carts);
	mongoc_collection_destroy(t.products);
	mongoc_collection_destroy(t.orders);
}
