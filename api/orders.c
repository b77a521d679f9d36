/*
 * orders.c -- GET /api/orders (the caller's, newest first, paginated)
 * and GET /api/orders/:id (its owner or an admin).  An admin may list
 * another user's orders with ?userId=.  Orders are written only by the
 * worker; their prices are those at the time of the order.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "../shared/db.h"
#include "../shared/orders.h"
#include "../shared/validate.h"

static void
list_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			*filter;
	bson_oid_t		 user;

	db_oid_parse(json_string_value(json_object_get(c->in, "userId")),
	    &user);
	filter = BCON_NEW("userId", BCON_OID(&user));
	coll = db_coll(client, DB_ORDERS);
	c->err = db_page(coll, filter, "createdAt", -1, json_integer_value(
	    json_object_get(c->in, "limit")), json_integer_value(
	    json_object_get(c->in, "offset")), -1, orders_json, &c->out);
	mongoc_collection_destroy(coll);
	bson_destroy(filter);
}

static void
get_run(struct call *c, mongoc_client_t *client)
{
	c->err = db_find_by_id(client, DB_ORDERS, json_string_value(
	    json_object_get(c->in, "id")), orders_json, ERR_ORDER_NOT_FOUND,
	    &c->out);
}

/* Whose orders: the caller's, or ?userId= for an admin.  NULL: answered. */
static json_t *
list_input(struct http_request *req, struct ctx *ctx)
{
	char		 user[32];
	const char	*bad;
	long		 limit, offset;
	int		 r;

	if (api_page_query(req, &limit, &offset, &bad) != ERR_NONE)
		goto bad;
	bad = "userId";
	snprintf(user, sizeof(user), "%s", ctx->who.sub);
	if ((r = api_query(req, "userId", user, sizeof(user))) == -1 ||
	    !validate_oid(user))
		goto bad;
	if (strcmp(user, ctx->who.sub) != 0 && !ctx->who.admin) {
		api_error(req, ERR_FORBIDDEN, "userId");
		return (NULL);
	}
	return (json_pack("{s:s, s:i, s:i}", "userId", user, "limit",
	    (int)limit, "offset", (int)offset));
bad:
	api_error_msg(req, ERR_BAD_QUERY, bad, "query parameter %s is invalid "
	    "(limit 1..%d, offset 0..%d, userId an id)", bad, LIST_MAX,
	    OFFSET_MAX);
	return (NULL);
}

/* GET /api/orders?limit=&offset=[&userId=] -> {items, total, limit, offset} */
int
orders_list(struct http_request *req, struct ctx *ctx)
{
	json_t		*in, *out;
	enum err	 e;

	if (ctx->step == 0) {
		if ((e = api_auth(req, ctx)) != ERR_NONE) {
			api_error(req, e, NULL);
			return (KORE_RESULT_OK);
		}
		if ((in = list_input(req, ctx)) == NULL)
			return (KORE_RESULT_OK);
		return (call_offload(req, ctx, 1, OFFLOAD_DB, list_run, in));
	}
	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, out);
	return (KORE_RESULT_OK);
}

/* GET /api/orders/:id -> 200 order; 400; 401; 403 not yours; 404 */
int
orders_get(struct http_request *req, struct ctx *ctx)
{
	json_t		*out;
	bson_oid_t	 oid;
	const char	*owner;
	enum err	 e;

	if (ctx->step == 0) {
		if ((e = api_auth(req, ctx)) != ERR_NONE ||
		    (e = api_param_oid(ctx, &oid)) != ERR_NONE) {
			api_error(req, e, e == ERR_BAD_ID ? "id" : NULL);
			return (KORE_RESULT_OK);
		}
		return (call_offload(req, ctx, 1, OFFLOAD_DB, get_run,
		    json_pack("{s:s}", "id", ctx->param)));
	}
	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	owner = json_string_value(json_object_get(out, "userId"));
	if (owner == NULL || (strcmp(owner, ctx->who.sub) != 0 &&
	    !ctx->who.admin)) {
		json_decref(out);
		api_error(req, ERR_FORBIDDEN, NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, out);
	return (KORE_RESULT_OK);
}
