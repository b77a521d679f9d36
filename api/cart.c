/*
 * cart.c -- GET/POST /api/cart/:userId, with /api/cart/me for the
 * caller's own.  Only the owner or an admin reads or changes a cart (403
 * otherwise).  POST takes {productId, quantity} (sets that line; 0
 * removes it) or {items: [{productId, quantity}]} (replaces the cart).
 * Quantities are 1..CART_MAX_QTY, a cart has at most CART_MAX_LINES
 * lines and lists each product once; unknown products are refused
 * before anything is written.  Every write is conditional on the cart's
 * revision (shared/carts.c), so concurrent changes to one cart never
 * overwrite each other: the loser reads again.
 *
 * The answer lists each line with the product's current title and
 * price, its line total, and the cart's subtotal; a line whose product
 * has been deleted stays, marked "available": false, out of the subtotal.
 *
 * One database operation per write: the products a cart names come
 * from this process's product cache (cache.c), checked against the
 * catalogue version, which is fetched together with the cart hint in one
 * Redis MGET.  The hint ("<rev>|<cartId>|<productId>:<qty>,...", kept
 * after each cart answer through the library's cart_hint, newest
 * revision wins) says what the cart holds before it is read: the new
 * cart is computed from it and written only where the cart is still
 * exactly that revision with those lines.  A stale or missing hint
 * costs a read and a second write, never a wrong cart; products not
 * cached cost one query (and are cached).  The submit path trusts a
 * hint with lines (api/checkout.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../shared/carts.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/money.h"
#include "../shared/proc.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"

#define STORE_TRIES	20	/* conditional writes before 503 */

enum { CART_START, CART_CACHED, CART_DONE };

struct cartreq {
	json_t			*in;		/* new; the request, checked */
	struct catalog_version	 v;		/* read with the hint */
	int			 versioned;	/* v is valid: use the cache */
	void			(*run)(struct call *, mongoc_client_t *);
};

static void	input_error(struct http_request *, enum err, const char *);

static const char *const line_fields[] = { "productId", "quantity", NULL };
static const char *const replace_fields[] = { "items", NULL };

/* ----- threads ----- */

/* ERR_NONE if the user exists (for an admin's request). */
static enum err
user_exists(mongoc_client_t *client, const bson_oid_t *user)
{
	mongoc_collection_t	*users;
	bson_t			*q;
	bson_error_t		 berr;
	int64_t			 n;

	users = db_coll(client, DB_USERS);
	q = BCON_NEW("_id", BCON_OID(user));
	n = mongoc_collection_count_documents(users, q, NULL, NULL, NULL,
	    &berr);
	bson_destroy(q);
	mongoc_collection_destroy(users);
	if (n < 0)
		return (db_error(&berr));
	return (n == 0 ? ERR_USER_NOT_FOUND : ERR_NONE);
}

/*
 * Read the products ids (a JSON array of hex ids) into known and into
 * fetched (both id -> product with "cents", or null when there is no
 * such product): one query.
 */
static enum err
fetch_products(mongoc_client_t *client, json_t *ids, json_t *known,
    json_t *fetched)
{
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_t			 q, in, arr;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_oid_t		 oid;
	json_t			*p, *id;
	char			 key[16];
	size_t			 i;
	enum err		 e;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	json_array_foreach(ids, i, id) {
		db_oid_parse(json_string_value(id), &oid);
		bson_snprintf(key, sizeof(key), "%zu", i);
		BSON_APPEND_OID(&arr, key, &oid);
		json_object_set_new(known, json_string_value(id), json_null());
		json_object_set_new(fetched, json_string_value(id),
		    json_null());
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	coll = db_coll(client, DB_PRODUCTS);
	cur = mongoc_collection_find_with_opts(coll, &q, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		p = products_json(doc);
		if (bson_iter_init_find(&it, doc, "price"))
			json_object_set_new(p, "cents",
			    json_integer(bson_iter_as_int64(&it)));
		json_object_set(known, json_string_value(json_object_get(p,
		    "id")), p);
		json_object_set(fetched, json_string_value(json_object_get(p,
		    "id")), p);
		json_decref(p);
	}
	e = mongoc_cursor_error(cur, &berr) ? db_error(&berr) : ERR_NONE;
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&q);
	return (e);
}

/* Add id to ids unless known has it (or ids already does). */
static void
want(json_t *ids, json_t *known, const char *id)
{
	json_t	*v;
	size_t	 i;

	if (id == NULL || json_object_get(known, id) != NULL)
		return;
	json_array_foreach(ids, i, v) {
		if (strcmp(json_string_value(v), id) == 0)
			return;
	}
	json_array_append_new(ids, json_string(id));
}

/* Fetch what the request and cart c name that known lacks. */
static enum err
complete(mongoc_client_t *client, json_t *in, const struct cart *c)
{
	json_t		*ids, *items, *line;
	char		 hex[25];
	size_t		 i;
	enum err	 e;
	int		 k;

	ids = json_array();
	if ((items = json_object_get(in, "items")) != NULL) {
		json_array_foreach(items, i, line)
			want(ids, json_object_get(in, "known"),
			    json_string_value(json_object_get(line,
			    "productId")));
	} else if (json_integer_value(json_object_get(in, "quantity")) > 0) {
		want(ids, json_object_get(in, "known"), json_string_value(
		    json_object_get(in, "productId")));
	}
	for (k = 0; c != NULL && k < c->n; k++) {
		db_oid_hex(&c->lines[k].product, hex);
		want(ids, json_object_get(in, "known"), hex);
	}
	e = ERR_NONE;
	if (json_array_size(ids) > 0)
		e = fetch_products(client, ids, json_object_get(in, "known"),
		    json_object_get(in, "fetched"));
	json_decref(ids);
	return (e);
}

/* The answer for c: lines with current titles and prices, subtotal. */
static json_t *
render(const bson_oid_t *user, const struct cart *c, json_t *products)
{
	json_t		*out, *items, *line, *p;
	int64_t		 subtotal, price;
	char		 hex[25], when[40];
	int		 i;

	items = json_array();
	subtotal = 0;
	for (i = 0; i < c->n; i++) {
		db_oid_hex(&c->lines[i].product, hex);
		line = json_pack("{s:s, s:I}", "productId", hex, "quantity",
		    (json_int_t)c->lines[i].quantity);
		if (json_is_object(p = json_object_get(products, hex))) {
			price = json_integer_value(json_object_get(p, "cents"));
			json_object_set(line, "title", json_object_get(p,
			    "title"));
			json_object_set(line, "price", json_object_get(p,
			    "price"));
			json_object_set_new(line, "lineTotal",
			    money_to_json(price * c->lines[i].quantity));
			json_object_set_new(line, "available", json_true());
			subtotal += price * c->lines[i].quantity;
		} else {
			json_object_set_new(line, "available", json_false());
		}
		json_array_append_new(items, line);
	}
	db_oid_hex(user, hex);
	out = json_pack("{s:s, s:o, s:o}", "userId", hex, "items", items,
	    "subtotal", money_to_json(subtotal));
	if (c->exists) {
		db_oid_hex(&c->id, hex);
		api_id_pair(out, hex);
		proc_iso_time(c->updated, when, sizeof(when));
		json_object_set_new(out, "updatedAt", json_string(when));
	}
	return (out);
}

/* Finish call with c rendered, its revision and lines (for the hint). */
static void
answer(struct call *call, mongoc_client_t *client, const bson_oid_t *user,
    const struct cart *c)
{
	char		*lines;
	size_t		 len;
	enum err	 e;

	if ((e = complete(client, call->in, c)) != ERR_NONE) {
		call->err = e;
		return;
	}
	len = PROTOCOL_LINES_MAX(c->n);
	if ((lines = malloc(len)) == NULL ||
	    protocol_lines_format(c, lines, len) == -1) {
		free(lines);
		call->err = ERR_INTERNAL;
		return;
	}
	call->out = json_pack("{s:o, s:O, s:I, s:s}", "cart", render(user, c,
	    json_object_get(call->in, "known")), "fetched",
	    json_object_get(call->in, "fetched"), "rev", (json_int_t)c->rev,
	    "lines", lines);
	free(lines);
}

static int
in_oid(json_t *in, const char *key, bson_oid_t *oid)
{
	return (db_oid_parse(json_string_value(json_object_get(in, key)), oid));
}

static void
read_run(struct call *call, mongoc_client_t *client)
{
	mongoc_collection_t	*carts;
	struct cart		 c;
	bson_error_t		 berr;
	bson_oid_t		 user;

	in_oid(call->in, "userId", &user);
	if (json_is_true(json_object_get(call->in, "checkUser")) &&
	    (call->err = user_exists(client, &user)) != ERR_NONE)
		return;
	carts = db_coll(client, DB_CARTS);
	if (carts_load(carts, &user, NULL, &c, &berr) == -1)
		call->err = db_error(&berr);
	else
		answer(call, client, &user, &c);
	carts_free(&c);
	mongoc_collection_destroy(carts);
}

/*
 * Is every product the request names known to exist?  ERR_PRODUCT_
 * NOT_FOUND with the field of the first one that is not.
 */
static enum err
check_products(json_t *in, char *field, size_t len)
{
	json_t	*items, *line, *known;
	size_t	 i;

	known = json_object_get(in, "known");
	if ((items = json_object_get(in, "items")) == NULL) {
		if (json_integer_value(json_object_get(in, "quantity")) == 0)
			return (ERR_NONE);	/* removing needs no product */
		if (json_is_object(json_object_get(known, json_string_value(
		    json_object_get(in, "productId")))))
			return (ERR_NONE);
		snprintf(field, len, "productId");
		return (ERR_PRODUCT_NOT_FOUND);
	}
	json_array_foreach(items, i, line) {
		if (!json_is_object(json_object_get(known, json_string_value(
		    json_object_get(line, "productId"))))) {
			snprintf(field, len, "items[%zu].productId", i);
			return (ERR_PRODUCT_NOT_FOUND);
		}
	}
	return (ERR_NONE);
}

/* Apply the request to c: set or remove one line, or replace them all. */
static enum err
apply(struct cart *c, json_t *in)
{
	json_t		*items, *line;
	bson_oid_t	 pid;
	int64_t		 qty;
	size_t		 n;
	int		 i;

	if ((items = json_object_get(in, "items")) != NULL) {
		c->n = 0;
		json_array_foreach(items, n, line) {
			in_oid(line, "productId", &pid);
			qty = json_integer_value(json_object_get(line,
			    "quantity"));
			if (carts_append(c, &pid, qty) == -1)
				return (ERR_INTERNAL);
		}
		return (ERR_NONE);
	}
	in_oid(in, "productId", &pid);
	qty = json_integer_value(json_object_get(in, "quantity"));
	i = carts_find(c, &pid);
	if (qty == 0) {
		if (i >= 0)
			carts_remove(c, i);
	} else if (i >= 0) {
		c->lines[i].quantity = qty;
	} else if (c->n >= cfg.cart_max_lines) {
		return (ERR_CART_TOO_LARGE);
	} else if (carts_append(c, &pid, qty) == -1) {
		return (ERR_INTERNAL);
	}
	return (ERR_NONE);
}

/* The cart a hint "<rev>|<cartId>|<lines>" describes; -1 if none. */
static int
hint_cart(const char *hint, struct cart *c)
{
	const char	*id, *lines;
	char		 hex[25], *end;
	long long	 rev;

	memset(c, 0, sizeof(*c));
	if (hint == NULL || (rev = strtoll(hint, &end, 10)) <= 0 ||
	    *end != '|' || (lines = strchr(end + 1, '|')) == NULL)
		return (-1);
	id = end + 1;
	if (lines - id != 24)
		return (-1);
	memcpy(hex, id, 24);
	hex[24] = '\0';
	/* Lines first: parsing them starts c afresh. */
	if (protocol_lines_parse(lines + 1, c) == -1)
		return (-1);
	if (db_oid_parse(hex, &c->id) == -1) {
		carts_free(c);
		return (-1);
	}
	c->exists = 1;
	c->rev = rev;
	return (0);
}

/*
 * Compute the cart from old and write it if the cart is still old:
 * 1 written (into c), 0 changed meanwhile, -1 not written, *e saying
 * why (a full cart, or the database).
 */
static int
try_store(mongoc_collection_t *carts, json_t *in, const bson_oid_t *user,
    const struct cart *old, int from_hint, struct cart *c,
    bson_error_t *berr, enum err *e)
{
	int	r;

	if (carts_copy(c, old) == -1) {
		*e = ERR_INTERNAL;
		return (-1);
	}
	if ((*e = apply(c, in)) != ERR_NONE)
		return (-1);
	if (!old->exists)
		r = carts_insert(carts, user, c, berr);
	else
		r = carts_update_if(carts, user, old, from_hint, c, berr);
	if (r == -1)
		*e = db_error(berr);
	else if (r == 0)
		carts_free(c);
	return (r);
}

/*
 * Write the request: from the hint in one operation when the cart is
 * still what the hint says; else read, apply, write conditionally, and
 * again if another write got in between.  The cart as written goes to c.
 */
static enum err
store(mongoc_collection_t *carts, json_t *in, const bson_oid_t *user,
    struct cart *c, bson_error_t *berr)
{
	struct cart	old;
	enum err	e;
	int		tries, r;

	r = 0;
	e = ERR_NONE;
	if (hint_cart(json_string_value(json_object_get(in, "hint")), &old) ==
	    0)
		r = try_store(carts, in, user, &old, 1, c, berr, &e);
	for (tries = 0; r == 0 && tries < STORE_TRIES; tries++) {
		carts_free(&old);
		if (carts_load(carts, user, NULL, &old, berr) == -1) {
			e = db_error(berr);
			r = -1;
			break;
		}
		r = try_store(carts, in, user, &old, 0, c, berr, &e);
	}
	carts_free(&old);
	if (r == 0)
		e = ERR_OVERLOADED;
	return (e);
}

/*
 * Check the user (for an admin), fetch the products not known, refuse
 * unknown ones, write, and answer with the cart as written.
 */
static void
write_run(struct call *call, mongoc_client_t *client)
{
	mongoc_collection_t	*carts;
	struct cart		 c;
	bson_error_t		 berr;
	bson_oid_t		 user;
	char			 field[48];

	memset(&c, 0, sizeof(c));
	in_oid(call->in, "userId", &user);
	if (json_is_true(json_object_get(call->in, "checkUser")) &&
	    (call->err = user_exists(client, &user)) != ERR_NONE)
		return;
	if ((call->err = complete(client, call->in, NULL)) != ERR_NONE)
		return;
	if ((call->err = check_products(call->in, field, sizeof(field))) !=
	    ERR_NONE) {
		call->out = json_pack("{s:s}", "field", field);
		return;
	}
	carts = db_coll(client, DB_CARTS);
	if ((call->err = store(carts, call->in, &user, &c, &berr)) ==
	    ERR_NONE)
		answer(call, client, &user, &c);
	carts_free(&c);
	mongoc_collection_destroy(carts);
}

/* ----- event loop ----- */

static void
req_free(void *arg)
{
	struct cartreq	*r = arg;

	json_decref(r->in);
	free(r);
}

/*
 * Authenticate and resolve :userId ("me" is the caller) into in, which
 * is new; check the caller may act on it.  Answers and returns NULL if
 * not.
 */
static json_t *
target(struct http_request *req, struct ctx *ctx)
{
	const char	*user;
	bson_oid_t	 oid;
	enum err	 e;

	if ((e = api_auth(req, ctx)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (NULL);
	}
	user = strcmp(ctx->param, "me") == 0 ? ctx->who.sub : ctx->param;
	if (db_oid_parse(user, &oid) == -1) {
		api_error(req, ERR_BAD_ID, "userId");
		return (NULL);
	}
	if (strcmp(user, ctx->who.sub) != 0 && !ctx->who.admin) {
		api_error(req, ERR_FORBIDDEN, NULL);
		return (NULL);
	}
	return (json_pack("{s:s, s:b}", "userId", user, "checkUser",
	    strcmp(user, ctx->who.sub) != 0));
}

/* The known products (new): what the cache has of the request and hint. */
static json_t *
known_products(struct cartreq *r, const char *hint)
{
	json_t		*known, *items, *line, *p;
	const char	*s, *id;
	char		 hex[25];
	size_t		 i;

	known = json_object();
	if (!r->versioned)
		return (known);
	items = json_object_get(r->in, "items");
	json_array_foreach(items, i, line) {
		id = json_string_value(json_object_get(line, "productId"));
		if ((p = cache_product(id, &r->v)) != NULL)
			json_object_set_new(known, id, json_deep_copy(p));
	}
	id = json_string_value(json_object_get(r->in, "productId"));
	if (id != NULL && (p = cache_product(id, &r->v)) != NULL)
		json_object_set_new(known, id, json_deep_copy(p));
	/* The hint, "<rev>|<cartId>|<id>:<qty>,...": the cart's products. */
	s = hint != NULL ? strchr(hint, '|') : NULL;
	s = s != NULL ? strchr(s + 1, '|') : NULL;
	for (; s != NULL; s = strchr(s, ',')) {
		s++;
		if (strlen(s) < 24)
			break;
		memcpy(hex, s, 24);
		hex[24] = '\0';
		if ((p = cache_product(hex, &r->v)) != NULL)
			json_object_set_new(known, hex, json_deep_copy(p));
	}
	return (known);
}

/* Run the request on a DB thread with what the cache knows. */
static int
cart_run(struct http_request *req, struct ctx *ctx, struct cartreq *r,
    const char *hint)
{
	json_t	*in;

	in = json_deep_copy(r->in);
	json_object_set_new(in, "known", known_products(r, hint));
	json_object_set_new(in, "fetched", json_object());
	if (hint != NULL)
		json_object_set_new(in, "hint", json_string(hint));
	return (call_offload(req, ctx, CART_DONE, OFFLOAD_DB, r->run, in));
}

/* The versions and the hint are in (or Redis is away: no cache). */
static int
cart_cached(struct http_request *req, struct ctx *ctx, struct cartreq *r)
{
	json_t	*out;
	int	 ret;

	if (call_result(ctx, &out) == ERR_NONE) {
		cache_versions(out, &r->v);
		r->versioned = 1;
	}
	ret = cart_run(req, ctx, r, json_string_value(json_array_get(out, 2)));
	json_decref(out);
	return (ret);
}

/* Cache what the thread read, keep the hint, answer. */
static int
finish(struct http_request *req, struct ctx *ctx, struct cartreq *r)
{
	struct rargs	 a;
	const char	*field, *id;
	json_t		*out, *p;
	enum err	 e;

	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		field = NULL;
		if (e == ERR_USER_NOT_FOUND)
			field = "userId";
		else if (e == ERR_PRODUCT_NOT_FOUND)
			field = json_string_value(json_object_get(out, "field"));
		else if (e == ERR_CART_TOO_LARGE)
			field = "productId";
		input_error(req, e, field);
		json_decref(out);
		return (KORE_RESULT_OK);
	}
	json_object_foreach(json_object_get(out, "fetched"), id, p) {
		if (r->versioned)
			cache_product_put(id, &r->v, p);
	}
	rargs_fcall(&a, FN_CART_HINT, 1);
	rargs_addf(&a, "%s%s", RK_CART_LINES, json_string_value(
	    json_object_get(r->in, "userId")));
	rargs_addf(&a, "%lld", (long long)json_integer_value(
	    json_object_get(out, "rev")));
	id = json_string_value(json_object_get(json_object_get(out, "cart"),
	    "id"));
	rargs_add(&a, id != NULL ? id : "");
	rargs_add(&a, json_string_value(json_object_get(out, "lines")));
	rargs_addf(&a, "%d", CART_HINT_TTL);
	aredis_fire_args(&a);
	rargs_free(&a);
	api_json(req, 200, json_incref(json_object_get(out, "cart")));
	json_decref(out);
	return (KORE_RESULT_OK);
}

/* Steps shared by GET and POST, once r->in is set. */
static int
cart_step(struct http_request *req, struct ctx *ctx, struct cartreq *r)
{
	switch (ctx->step) {
	case CART_START:
		if (!aredis_up())
			return (cart_run(req, ctx, r, NULL));
		return (call_redis(req, ctx, CART_CACHED, "MGET %s %s %s%s",
		    RK_CATALOG, RK_STOCK, RK_CART_LINES, json_string_value(
		    json_object_get(r->in, "userId"))));
	case CART_CACHED:
		return (cart_cached(req, ctx, r));
	default:
		return (finish(req, ctx, r));
	}
}

/* GET /api/cart/:userId (or me) -> 200 cart; 400, 401, 403, 404 */
int
cart_get(struct http_request *req, struct ctx *ctx)
{
	struct cartreq	*r;

	r = api_data(ctx, sizeof(*r), req_free);
	if (ctx->step == CART_START) {
		if ((r->in = target(req, ctx)) == NULL)
			return (KORE_RESULT_OK);
		r->run = read_run;
	}
	return (cart_step(req, ctx, r));
}

/* Check one {productId, quantity} (qmin is 0 or 1) into out. */
static enum err
line_input(json_t *line, json_int_t qmin, json_t *out, char *field,
    size_t len, const char *prefix)
{
	const char	*pid, *bad;
	bson_oid_t	 oid;
	json_int_t	 qty;
	enum err	 e;

	snprintf(field, len, "%s", prefix);
	if (!json_is_object(line))
		return (ERR_WRONG_TYPE);
	if ((e = json_only_fields(line, line_fields, &bad)) != ERR_NONE) {
		snprintf(field, len, "%s%s%s", prefix, *prefix ? "." : "", bad);
		return (e);
	}
	snprintf(field, len, "%s%sproductId", prefix, *prefix ? "." : "");
	if ((e = json_field_string(line, "productId", 1, &pid)) != ERR_NONE)
		return (e);
	if (db_oid_parse(pid, &oid) == -1)
		return (ERR_BAD_ID);
	snprintf(field, len, "%s%squantity", prefix, *prefix ? "." : "");
	if ((e = json_field_int(line, "quantity", 1, qmin, cfg.cart_max_qty,
	    &qty)) != ERR_NONE)
		return (e);
	json_object_set_new(out, "productId", json_string(pid));
	json_object_set_new(out, "quantity", json_integer(qty));
	return (ERR_NONE);
}

/* Check {items: [...]} into in. */
static enum err
items_input(json_t *body, json_t *in, char *field, size_t len)
{
	const char	*bad;
	json_t		*items, *line, *out;
	char		 prefix[32];
	size_t		 i, j;
	enum err	 e;

	snprintf(field, len, "items");
	if ((e = json_only_fields(body, replace_fields, &bad)) != ERR_NONE) {
		snprintf(field, len, "%s", bad);
		return (e);
	}
	if (!json_is_array(items = json_object_get(body, "items")))
		return (ERR_WRONG_TYPE);
	if (json_array_size(items) > (size_t)cfg.cart_max_lines)
		return (ERR_CART_TOO_LARGE);
	out = json_array();
	json_object_set_new(in, "items", out);
	json_array_foreach(items, i, line) {
		snprintf(prefix, sizeof(prefix), "items[%zu]", i);
		json_array_append_new(out, json_object());
		if ((e = line_input(line, 1, json_array_get(out, i), field,
		    len, prefix)) != ERR_NONE)
			return (e);
		for (j = 0; j < i; j++) {
			if (json_equal(json_object_get(json_array_get(out, j),
			    "productId"), json_object_get(json_array_get(out,
			    i), "productId"))) {
				snprintf(field, len, "%s.productId", prefix);
				return (ERR_INVALID);
			}
		}
	}
	return (ERR_NONE);
}

/* 400 (or 422) for a bad cart body, with the rule spelt out. */
static void
input_error(struct http_request *req, enum err e, const char *field)
{
	if (e == ERR_OUT_OF_RANGE || (e == ERR_WRONG_TYPE &&
	    strstr(field, "quantity") != NULL))
		api_error_msg(req, e, field, "%s must be an integer from %d to "
		    "%ld", field, strchr(field, '[') != NULL ? 1 : 0,
		    cfg.cart_max_qty);
	else if (e == ERR_CART_TOO_LARGE)
		api_error_msg(req, e, field, "a cart holds at most %ld lines",
		    cfg.cart_max_lines);
	else if (e == ERR_INVALID)
		api_error_msg(req, e, field, "%s is listed twice; a cart "
		    "lists each product once", field);
	else if (e == ERR_WRONG_TYPE && strstr(field, "productId") != NULL)
		api_error_msg(req, e, field, "%s must be a string: a product "
		    "id of 24 hexadecimal characters", field);
	else
		api_error(req, e, field);
}

/*
 * POST /api/cart/:userId (or me), {productId, quantity} or {items}
 *   200 cart; 400 invalid input; 401; 403 not yours; 404 unknown
 *   product or user; 422 cart_too_large
 */
int
cart_update(struct http_request *req, struct ctx *ctx)
{
	struct cartreq	*r;
	char		 field[64];
	enum err	 e;

	r = api_data(ctx, sizeof(*r), req_free);
	if (ctx->step != CART_START)
		return (cart_step(req, ctx, r));
	if ((r->in = target(req, ctx)) == NULL)
		return (KORE_RESULT_OK);
	field[0] = '\0';
	if ((e = api_body(req, ctx)) == ERR_NONE) {
		if (json_object_get(ctx->body, "items") != NULL)
			e = items_input(ctx->body, r->in, field, sizeof(field));
		else
			e = line_input(ctx->body, 0, r->in, field,
			    sizeof(field), "");
	}
	if (e != ERR_NONE) {
		input_error(req, e, field[0] != '\0' ? field : NULL);
		return (KORE_RESULT_OK);
	}
	r->run = write_run;
	return (cart_step(req, ctx, r));
}
