/*
 * cart.c -- GET/POST /api/cart/:userId, with /api/cart/me for the
 * caller's own.  Only the owner or an admin reads or changes a cart (403
 * otherwise).  POST takes {productId, quantity} (sets that line; 0
 * removes it) or {items: [{productId, quantity}]} (replaces the cart).
 * Quantities are 1..CART_MAX_QTY, a cart has at most CART_MAX_LINES
 * lines and lists each product once; unknown products are refused
 * before anything is written.  Concurrent changes to one cart are
 * serialised by its revision (shared/carts.c): none is lost.
 *
 * The answer lists each line with the product's current title and
 * price, its line total, and the cart's subtotal; a line whose product
 * has been deleted stays, marked "available": false, out of the subtotal.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "../shared/carts.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/money.h"
#include "../shared/redis.h"

#define STORE_TRIES	20

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
 * Products by id, for the lines of c: a new JSON object id -> product,
 * each with its price in cents as "cents".
 */
static json_t *
products_of(mongoc_client_t *client, const struct cart *c, bson_error_t *err)
{
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_t			 q, in, ids;
	bson_iter_t		 it;
	json_t			*map, *p;
	char			 key[16];
	int			 i;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
	for (i = 0; i < c->n; i++) {
		bson_snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_OID(&ids, key, &c->lines[i].product);
	}
	bson_append_array_end(&in, &ids);
	bson_append_document_end(&q, &in);
	coll = db_coll(client, DB_PRODUCTS);
	cur = mongoc_collection_find_with_opts(coll, &q, NULL, NULL);
	map = json_object();
	while (mongoc_cursor_next(cur, &doc)) {
		p = products_json(doc);
		if (bson_iter_init_find(&it, doc, "price"))
			json_object_set_new(p, "cents",
			    json_integer(bson_iter_as_int64(&it)));
		json_object_set(map, json_string_value(json_object_get(p,
		    "id")), p);
		json_decref(p);
	}
	if (mongoc_cursor_error(cur, err)) {
		json_decref(map);
		map = NULL;
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(&q);
	return (map);
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
		if ((p = json_object_get(products, hex)) != NULL) {
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
		db_iso_time(c->updated, when, sizeof(when));
		json_object_set_new(out, "updatedAt", json_string(when));
	}
	return (out);
}

/* Finish a call with c rendered, or with the error. */
static void
answer(struct call *call, mongoc_client_t *client, const bson_oid_t *user,
    const struct cart *c)
{
	bson_error_t	 berr;
	json_t		*products;

	if ((products = products_of(client, c, &berr)) == NULL) {
		call->err = db_error(&berr);
		return;
	}
	call->out = render(user, c, products);
	json_decref(products);
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
 * Is every product the request names among products (id -> product)?
 * ERR_PRODUCT_NOT_FOUND with the field of the first one that is not.
 */
static enum err
check_products(json_t *in, json_t *products, char *field, size_t len)
{
	json_t	*items, *line;
	size_t	 i;

	if ((items = json_object_get(in, "items")) == NULL) {
		if (json_integer_value(json_object_get(in, "quantity")) == 0)
			return (ERR_NONE);	/* removing needs no product */
		if (json_object_get(products, json_string_value(
		    json_object_get(in, "productId"))) != NULL)
			return (ERR_NONE);
		snprintf(field, len, "productId");
		return (ERR_PRODUCT_NOT_FOUND);
	}
	json_array_foreach(items, i, line) {
		if (json_object_get(products, json_string_value(
		    json_object_get(line, "productId"))) == NULL) {
			snprintf(field, len, "items[%zu].productId", i);
			return (ERR_PRODUCT_NOT_FOUND);
		}
	}
	return (ERR_NONE);
}

/* Apply in to c: set or remove one line, or replace them all. */
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

/*
 * Read the cart, apply the change, look its products up once (to refuse
 * unknown ones before writing, and for the answer), store it if nobody
 * changed it meanwhile; else again.
 */
static void
write_run(struct call *call, mongoc_client_t *client)
{
	mongoc_collection_t	*carts;
	struct cart		 c;
	bson_error_t		 berr;
	bson_oid_t		 user;
	json_t			*products;
	char			 field[48];
	int			 tries, r;

	memset(&c, 0, sizeof(c));
	in_oid(call->in, "userId", &user);
	if (json_is_true(json_object_get(call->in, "checkUser")) &&
	    (call->err = user_exists(client, &user)) != ERR_NONE)
		return;
	carts = db_coll(client, DB_CARTS);
	products = NULL;
	for (tries = 0, r = 0; r == 0 && tries < STORE_TRIES; tries++) {
		carts_free(&c);
		json_decref(products);
		products = NULL;
		if ((r = carts_load(carts, &user, NULL, &c, &berr)) == -1)
			break;
		if ((call->err = apply(&c, call->in)) != ERR_NONE)
			goto done;
		if ((products = products_of(client, &c, &berr)) == NULL) {
			r = -1;
			break;
		}
		if ((call->err = check_products(call->in, products, field,
		    sizeof(field))) != ERR_NONE) {
			json_object_set_new(call->in, "badField",
			    json_string(field));
			goto done;
		}
		r = carts_store(carts, &user, &c, &berr);
	}
	if (r == 1)
		call->out = render(&user, &c, products);
	else
		call->err = r == -1 ? db_error(&berr) : ERR_OVERLOADED;
done:
	json_decref(products);
	carts_free(&c);
	mongoc_collection_destroy(carts);
}

/* ----- event loop ----- */

static void
in_free(void *in)
{
	json_decref(in);
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

/* The answer to a finished cart call; ctx->data holds its input. */
static int
finish(struct http_request *req, struct ctx *ctx)
{
	const char	*field;
	json_t		*out;
	enum err	 e;

	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		field = NULL;
		if (e == ERR_USER_NOT_FOUND)
			field = "userId";
		else if (e == ERR_PRODUCT_NOT_FOUND)
			field = json_string_value(json_object_get(ctx->data,
			    "badField"));
		if (e == ERR_CART_TOO_LARGE)
			input_error(req, e, "productId");
		else
			api_error(req, e, field);
		return (KORE_RESULT_OK);
	}
	/* The submit path's hint: how many lines the cart has (checkout.c). */
	aredis_fire("SET %s%s %d EX %d", RK_CART_LINES,
	    json_string_value(json_object_get(ctx->data, "userId")),
	    (int)json_array_size(json_object_get(out, "items")),
	    CART_HINT_TTL);
	api_json(req, 200, out);
	return (KORE_RESULT_OK);
}

/* GET /api/cart/:userId (or me) -> 200 cart; 400, 401, 403, 404 */
int
cart_get(struct http_request *req, struct ctx *ctx)
{
	json_t	*in;

	if (ctx->step > 0)
		return (finish(req, ctx));
	if ((in = target(req, ctx)) == NULL)
		return (KORE_RESULT_OK);
	ctx->data = json_incref(in);
	ctx->data_free = in_free;
	return (call_offload(req, ctx, 1, OFFLOAD_DB, read_run, in));
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
	char		 field[64];
	json_t		*in;
	enum err	 e;

	if (ctx->step > 0)
		return (finish(req, ctx));
	if ((in = target(req, ctx)) == NULL)
		return (KORE_RESULT_OK);
	field[0] = '\0';
	if ((e = api_body(req, ctx)) == ERR_NONE) {
		if (json_object_get(ctx->body, "items") != NULL)
			e = items_input(ctx->body, in, field, sizeof(field));
		else
			e = line_input(ctx->body, 0, in, field, sizeof(field),
			    "");
	}
	if (e != ERR_NONE) {
		json_decref(in);
		input_error(req, e, field[0] != '\0' ? field : NULL);
		return (KORE_RESULT_OK);
	}
	ctx->data = in;
	ctx->data_free = in_free;
	return (call_offload(req, ctx, 1, OFFLOAD_DB, write_run,
	    json_incref(in)));
}
