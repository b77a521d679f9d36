/*
 * admin.c -- what the ops console shows, admin only, each view one
 * cheap call (docs/ARCHITECTURE.md, "Consoles"):
 *   GET /api/admin/queue     the checkout stream: length, lag, pending
 *                            per consumer, oldest pending, drain rate
 *   GET /api/admin/workers   worker and notifier processes alive, from
 *                            their heartbeats, with batches and orders/s
 *   GET /api/admin/history   a sample a second for ten minutes: submits,
 *                            orders and queue depth
 *   GET /api/admin/products  the catalogue with each product's stock-gate
 *                            counter and sale rules
 * Nothing here scans the stream: XLEN, XINFO and XPENDING's summary
 * are O(1) or O(consumers) (checkout.lua, admin_queue).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../shared/db.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"

/* Steps of the products view. */
enum { PR_START, PR_READ, PR_GATE };

/* The ms part of a stream id ("1796265974695-0"), or 0. */
static long long
id_ms(const char *id)
{
	return (id != NULL ? atoll(id) : 0);
}

/* A Redis reply element as an integer (they come as strings or ints). */
static long long
num(json_t *v)
{
	if (json_is_integer(v))
		return (json_integer_value(v));
	return (json_is_string(v) ? atoll(json_string_value(v)) : 0);
}

/* admin_queue's reply as the queue view (new). */
static json_t *
queue_json(json_t *r)
{
	json_t		*out, *cs;
	long long	 oldest;
	size_t		 i;

	oldest = id_ms(json_string_value(json_array_get(r, 3)));
	cs = json_array();
	for (i = 5; i + 2 < json_array_size(r); i += 3) {
		json_array_append_new(cs, json_pack("{s:O, s:I, s:I}", "name",
		    json_array_get(r, i), "pending", (json_int_t)num(
		    json_array_get(r, i + 1)), "idleMs", (json_int_t)num(
		    json_array_get(r, i + 2))));
	}
	out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "waiting",
	    (json_int_t)(num(json_array_get(r, 1)) > 0 ? num(json_array_get(r,
	    1)) : 0) + (json_int_t)num(json_array_get(r, 2)), "length",
	    (json_int_t)num(json_array_get(r, 0)), "lag",
	    (json_int_t)num(json_array_get(r, 1)), "pending",
	    (json_int_t)num(json_array_get(r, 2)), "deadLetters",
	    (json_int_t)num(json_array_get(r, 4)), "drainPerSec",
	    queue_rate(), "consumers", cs);
	json_object_set_new(out, "oldestPendingAgeMs", json_integer(
	    oldest > 0 ? (json_int_t)(db_now_ms() - oldest) : 0));
	return (out);
}

/* Answer the call's result through render, or its error. */
static int
answer(struct http_request *req, struct ctx *ctx, json_t *(*render)(json_t *))
{
	json_t		*r;
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, render(r));
	json_decref(r);
	return (KORE_RESULT_OK);
}

/* GET /api/admin/queue -> 200 {length, lag, pending, ...}; 401; 403 */
int
admin_queue(struct http_request *req, struct ctx *ctx)
{
	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		return (call_redis(req, ctx, 1, "FCALL %s 2 %s %s %s",
		    FN_ADMIN_QUEUE, RK_STREAM, RK_DEAD, RK_GROUP));
	}
	return (answer(req, ctx, queue_json));
}

/* One process's heartbeat hash (flat array) as JSON (new). */
static json_t *
proc_json(json_t *flat)
{
	json_t		*o, *v;
	const char	*k;
	long long	 at, last;
	size_t		 i;
	char		 when[32];

	o = json_object();
	for (i = 0; i + 1 < json_array_size(flat); i += 2) {
		k = json_string_value(json_array_get(flat, i));
		v = json_array_get(flat, i + 1);
		if (strcmp(k, "name") == 0 || strcmp(k, "kind") == 0)
			json_object_set(o, k, v);
		else if (strcmp(k, "batchesPerSec") == 0 ||
		    strcmp(k, "ordersPerSec") == 0)
			json_object_set_new(o, k, json_real(atof(
			    json_string_value(v))));
		else if (strcmp(k, "batches") == 0 || strcmp(k, "orders") == 0)
			json_object_set_new(o, k, json_integer(num(v)));
	}
	for (i = 0, at = 0, last = 0; i + 1 < json_array_size(flat); i += 2) {
		k = json_string_value(json_array_get(flat, i));
		if (strcmp(k, "at") == 0)
			at = num(json_array_get(flat, i + 1));
		else if (strcmp(k, "lastBatchAt") == 0)
			last = num(json_array_get(flat, i + 1));
	}
	json_object_set_new(o, "lastSeenMsAgo", json_integer(db_now_ms() -
	    at));
	if (last > 0) {
		db_iso_time(last, when, sizeof(when));
		json_object_set_new(o, "lastBatchAt", json_string(when));
	}
	return (o);
}

static json_t *
workers_json(json_t *r)
{
	json_t	*items;
	size_t	 i;

	items = json_array();
	for (i = 0; i < json_array_size(r); i++)
		json_array_append_new(items, proc_json(json_array_get(r, i)));
	return (json_pack("{s:o}", "items", items));
}

/* GET /api/admin/workers -> 200 {items: [process]}; 401; 403 */
int
admin_workers(struct http_request *req, struct ctx *ctx)
{
	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		return (call_redis(req, ctx, 1, "FCALL %s 0", FN_PROCS));
	}
	return (answer(req, ctx, workers_json));
}

/*
 * The samples (newest first, "<sec>|<submits>|<orders>|<depth>") as
 * per-second rates, oldest first (new).
 */
static json_t *
history_json(json_t *r)
{
	json_t		*items;
	long long	 t0, s0, o0, t, s, o, d;
	size_t		 i;
	char		 when[32];

	items = json_array();
	t0 = s0 = o0 = -1;
	for (i = json_array_size(r); i-- > 0;) {
		if (sscanf(json_string_value(json_array_get(r, i)) != NULL ?
		    json_string_value(json_array_get(r, i)) : "",
		    "%lld|%lld|%lld|%lld", &t, &s, &o, &d) != 4)
			continue;
		if (t0 >= 0 && t > t0) {
			db_iso_time(t * 1000, when, sizeof(when));
			json_array_append_new(items, json_pack("{s:s, s:f, s:f, "
			    "s:I}", "at", when, "submitsPerSec", (double)(s -
			    s0 > 0 ? s - s0 : 0) / (double)(t - t0),
			    "ordersPerSec", (double)(o - o0 > 0 ? o - o0 : 0) /
			    (double)(t - t0), "queue", (json_int_t)d));
		}
		t0 = t;
		s0 = s;
		o0 = o;
	}
	return (json_pack("{s:o}", "items", items));
}

/* GET /api/admin/history -> 200 {items: [{at, submitsPerSec, ...}]} */
int
admin_history(struct http_request *req, struct ctx *ctx)
{
	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		return (call_redis(req, ctx, 1, "LRANGE %s 0 599",
		    RK_HISTORY));
	}
	return (answer(req, ctx, history_json));
}

/* ----- products, with their gate ----- */

static void
products_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			 filter;

	bson_init(&filter);
	coll = db_coll(client, DB_PRODUCTS);
	c->err = db_page(coll, &filter, "createdAt", -1, json_integer_value(
	    json_object_get(c->in, "limit")), json_integer_value(
	    json_object_get(c->in, "offset")), -1, products_json, &c->out);
	mongoc_collection_destroy(coll);
	bson_destroy(&filter);
}

/* MGET of the page's gate counters (the page kept in ctx->data). */
static int
products_gate(struct http_request *req, struct ctx *ctx)
{
	struct rargs	 a;
	json_t		*page, *p;
	enum err	 e;
	size_t		 i;
	int		 r;

	if ((e = call_result(ctx, &page)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	ctx->data = page;
	ctx->data_free = api_json_free;
	if (json_array_size(json_object_get(page, "items")) == 0) {
		api_json(req, 200, json_incref(page));
		return (KORE_RESULT_OK);
	}
	rargs_init(&a, "MGET");
	json_array_foreach(json_object_get(page, "items"), i, p)
		rargs_addf(&a, "%s%s", RK_GATE_STOCK, json_string_value(
		    json_object_get(p, "id")));
	r = call_args(req, ctx, PR_GATE, &a);
	rargs_free(&a);
	return (r);
}

/* The counters into the page: gate is units, "gone", or null (unseeded). */
static int
products_done(struct http_request *req, struct ctx *ctx)
{
	json_t	*page = ctx->data, *r, *p, *v;
	size_t	 i;

	if (call_result(ctx, &r) != ERR_NONE) {
		api_error(req, ERR_REDIS_DOWN, NULL);
		return (KORE_RESULT_OK);
	}
	json_array_foreach(json_object_get(page, "items"), i, p) {
		v = json_array_get(r, i);
		json_object_set_new(p, "gate", !json_is_string(v) ?
		    json_null() : strcmp(json_string_value(v), "gone") == 0 ?
		    json_string("gone") : json_integer(num(v)));
	}
	json_decref(r);
	api_json(req, 200, json_incref(page));
	return (KORE_RESULT_OK);
}

/*
 * GET /api/admin/products?limit=&offset= -> 200 {items: [product + gate],
 * total, limit, offset}; 400; 401; 403
 */
int
admin_products(struct http_request *req, struct ctx *ctx)
{
	const char	*bad;
	long		 limit, offset;

	switch (ctx->step) {
	case PR_START:
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		if (api_page_query(req, &limit, &offset, &bad) != ERR_NONE) {
			api_error_msg(req, ERR_BAD_QUERY, bad, "query parameter "
			    "%s is invalid (limit 1..%d, offset 0..%d)", bad,
			    LIST_MAX, OFFSET_MAX);
			return (KORE_RESULT_OK);
		}
		return (call_offload(req, ctx, PR_READ, OFFLOAD_DB,
		    products_run, json_pack("{s:i, s:i}", "limit", (int)limit,
		    "offset", (int)offset)));
	case PR_READ:
		return (products_gate(req, ctx));
	default:
		return (products_done(req, ctx));
	}
}
