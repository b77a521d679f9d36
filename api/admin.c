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
 *   GET, POST .../replay, DELETE /api/admin/deadletters[/:id]
 *                            dead-lettered checkouts: replay (unless its
 *                            order exists) or drop, as shopctl dlq does
 *   GET, POST .../replay, DELETE /api/admin/notifications[/:id]
 *                            parked notifications, as shopctl outbox
 * Nothing here scans the stream: XLEN, XINFO and XPENDING's summary
 * are O(1) or O(consumers) (shared/lua/catalog.lua, admin_queue).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/outbox.h"
#include "../shared/proc.h"
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
		else if (strcmp(k, "batches") == 0 || strcmp(k, "orders") == 0 ||
		    strcmp(k, "lockHandoffs") == 0)
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
		proc_iso_time(last, when, sizeof(when));
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
			proc_iso_time(t * 1000, when, sizeof(when));
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

/* ----- dead letters ----- */

/* Steps of a dead letter's replay. */
enum { DL_START, DL_READ, DL_LOOKED, DL_DONE };

#define DEAD_MAX	100	/* dead letters one listing shows */

/*
 * A stream entry id's two numbers fit Redis' 64 bits (the spec allows 20
 * digits, which may not): else no such entry.
 */
static int
entry_fits(const char *s)
{
	char	*end;

	errno = 0;
	(void)strtoull(s, &end, 10);
	if (errno == ERANGE || *end != '-')
		return (0);
	(void)strtoull(end + 1, NULL, 10);
	return (errno != ERANGE);
}

/* A stream entry id: digits, '-', digits. */
static int
entry_id(const char *s)
{
	size_t	i, dash;

	for (i = 0, dash = 0; s[i] != '\0'; i++) {
		if (s[i] == '-' && dash == 0 && i > 0)
			dash = i;
		else if (s[i] < '0' || s[i] > '9')
			return (0);
	}
	return (dash > 0 && dash + 1 < i && i < 42);
}

/* A dead letter (an XRANGE entry) as JSON (new). */
static json_t *
dead_json(json_t *e)
{
	json_t		*o, *f;
	const char	*k, *id;
	size_t		 i;

	id = json_string_value(json_array_get(e, 0));
	o = json_pack("{s:s, s:I}", "id", id != NULL ? id : "", "ageMs",
	    (json_int_t)(db_now_ms() - id_ms(id)));
	f = json_array_get(e, 1);
	for (i = 0; i + 1 < json_array_size(f); i += 2) {
		k = json_string_value(json_array_get(f, i));
		if (strcmp(k, "checkoutId") == 0 || strcmp(k, "userId") == 0 ||
		    strcmp(k, "reason") == 0 || strcmp(k, "lines") == 0 ||
		    strcmp(k, "createdAt") == 0)
			json_object_set(o, k, json_array_get(f, i + 1));
		else if (strcmp(k, "deliveries") == 0)
			json_object_set_new(o, k, json_integer(num(
			    json_array_get(f, i + 1))));
	}
	return (o);
}

static json_t *
deads_json(json_t *r)
{
	json_t	*items;
	size_t	 i;

	items = json_array();
	for (i = 0; i < json_array_size(json_array_get(r, 1)); i++)
		json_array_append_new(items, dead_json(json_array_get(
		    json_array_get(r, 1), i)));
	return (json_pack("{s:o, s:I}", "items", items, "total",
	    (json_int_t)num(json_array_get(r, 0))));
}

/* GET /api/admin/deadletters -> 200 {items: [...], total}; 401; 403 */
int
admin_deadletters(struct http_request *req, struct ctx *ctx)
{
	struct rargs	a;
	int		r;

	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		/* Oldest first, at most DEAD_MAX: MULTI gives both at once. */
		rargs_fcall(&a, FN_DEAD_LIST, 1);
		rargs_add(&a, RK_DEAD);
		rargs_addf(&a, "%d", DEAD_MAX);
		r = call_args(req, ctx, 1, &a);
		rargs_free(&a);
		return (r);
	}
	return (answer(req, ctx, deads_json));
}

/* The order of checkout c->in.checkoutId, if one exists (DB thread). */
static void
order_lookup_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*orders;
	bson_error_t		 berr;
	bson_t			*q, *doc;

	orders = db_coll(client, DB_ORDERS);
	q = BCON_NEW("checkoutId", BCON_UTF8(json_string_value(
	    json_object_get(c->in, "checkoutId"))));
	doc = NULL;
	if (db_find_doc(orders, q, NULL, &doc, &berr) == -1)
		c->err = db_error(&berr);
	c->out = json_boolean(doc != NULL);
	if (doc != NULL)
		bson_destroy(doc);
	bson_destroy(q);
	mongoc_collection_destroy(orders);
}

/* The entry read: look for its order (a replay must not order twice). */
static int
replay_read(struct http_request *req, struct ctx *ctx)
{
	json_t		*r, *e;
	const char	*cid;
	enum err	 err;

	if ((err = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, err, NULL);
		return (KORE_RESULT_OK);
	}
	if ((e = json_array_get(r, 0)) == NULL) {
		json_decref(r);
		api_error(req, ERR_DEAD_LETTER_NOT_FOUND, "id");
		return (KORE_RESULT_OK);
	}
	ctx->data = dead_json(e);
	ctx->data_free = api_json_free;
	json_decref(r);
	cid = json_string_value(json_object_get(ctx->data, "checkoutId"));
	return (call_offload(req, ctx, DL_LOOKED, OFFLOAD_DB, order_lookup_run,
	    json_pack("{s:s}", "checkoutId", cid != NULL ? cid : "")));
}

/* No order: put the job back on the stream (dlq_replay), queued. */
static int
replay_looked(struct http_request *req, struct ctx *ctx)
{
	struct rargs	 a;
	json_t		*found, *d = ctx->data;
	char		*body;
	enum err	 e;
	int		 r;

	if ((e = call_result(ctx, &found)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	if (json_is_true(found)) {
		json_decref(found);
		api_error(req, ERR_ORDER_EXISTS, NULL);
		return (KORE_RESULT_OK);
	}
	json_decref(found);
	body = protocol_body(json_string_value(json_object_get(d,
	    "checkoutId")), CK_QUEUED, json_string_value(json_object_get(d,
	    "createdAt")), NULL, NULL);
	rargs_fcall(&a, FN_DLQ_REPLAY, 2);
	rargs_add(&a, RK_DEAD);
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, ctx->param);
	rargs_addf(&a, "%ld", cfg.checkout_ttl);
	rargs_add(&a, RK_EVENTS);
	rargs_add(&a, body);
	r = call_args_durable(req, ctx, DL_DONE, &a);
	rargs_free(&a);
	free(body);
	return (r);
}

static int
replay_done(struct http_request *req, struct ctx *ctx)
{
	json_t		*r;
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		/* NOENTRY: dropped or replayed meanwhile; NOJOB: too old. */
		api_error(req, e == ERR_INTERNAL ? ERR_DEAD_LETTER_NOT_FOUND :
		    e, NULL);
		return (KORE_RESULT_OK);
	}
	if (!json_is_string(json_array_get(r, 1)) ||
	    json_string_length(json_array_get(r, 1)) == 0) {
		json_decref(r);
		api_error(req, ERR_NOT_REPLAYABLE, NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, json_pack("{s:O, s:s, s:O}", "checkoutId",
	    json_array_get(r, 0), "status", "queued", "entry",
	    json_array_get(r, 1)));
	json_decref(r);
	return (KORE_RESULT_OK);
}

/*
 * POST /api/admin/deadletters/:id/replay -> 200 {checkoutId, status:
 * queued, entry}: the job is on the stream again as it was submitted;
 * 400; 401; 403; 404; 409 order_exists or not_replayable (drop it
 * instead)
 */
int
admin_deadletter_replay(struct http_request *req, struct ctx *ctx)
{
	switch (ctx->step) {
	case DL_START:
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		if (!entry_id(ctx->param)) {
			api_error_msg(req, ERR_BAD_ID, "id", "id must be a dead "
			    "letter's entry id, such as 1796265974695-0");
			return (KORE_RESULT_OK);
		}
		if (!entry_fits(ctx->param)) {
			api_error(req, ERR_DEAD_LETTER_NOT_FOUND, "id");
			return (KORE_RESULT_OK);
		}
		return (call_redis(req, ctx, DL_READ, "XRANGE %s %s %s",
		    RK_DEAD, ctx->param, ctx->param));
	case DL_READ:
		return (replay_read(req, ctx));
	case DL_LOOKED:
		return (replay_looked(req, ctx));
	default:
		return (replay_done(req, ctx));
	}
}

/* DELETE /api/admin/deadletters/:id -> 204; 400; 401; 403; 404 */
int
admin_deadletter_drop(struct http_request *req, struct ctx *ctx)
{
	json_t		*r;
	enum err	 e;

	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		if (!entry_id(ctx->param)) {
			api_error_msg(req, ERR_BAD_ID, "id", "id must be a dead "
			    "letter's entry id, such as 1796265974695-0");
			return (KORE_RESULT_OK);
		}
		if (!entry_fits(ctx->param)) {
			api_error(req, ERR_DEAD_LETTER_NOT_FOUND, "id");
			return (KORE_RESULT_OK);
		}
		return (call_redis(req, ctx, 1, "XDEL %s %s", RK_DEAD,
		    ctx->param));
	}
	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	if (num(r) == 1)
		http_response(req, 204, NULL, 0);
	else
		api_error(req, ERR_DEAD_LETTER_NOT_FOUND, "id");
	json_decref(r);
	return (KORE_RESULT_OK);
}

/* ----- parked notifications ----- */

/* A parked outbox document as JSON (new). */
static json_t *
parked_json(const bson_t *doc)
{
	struct outbox_target	 tg;
	bson_iter_t		 it, arr, t;
	bson_oid_t		 order;
	json_t			*o, *targets;
	char			 hex[25];

	o = json_object();
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
		db_oid_hex(bson_iter_oid(&it), hex);
		json_object_set_new(o, "id", json_string(hex));
	}
	if (outbox_order_id(doc, &order) == 0) {
		db_oid_hex(&order, hex);
		json_object_set_new(o, "orderId", json_string(hex));
	}
	if (bson_iter_init_find(&it, doc, "event") && BSON_ITER_HOLDS_UTF8(&it))
		json_object_set_new(o, "event", json_string(bson_iter_utf8(&it,
		    NULL)));
	db_time_json(o, doc, "createdAt");
	targets = json_array();
	if (bson_iter_init_find(&it, doc, "targets") &&
	    bson_iter_recurse(&it, &arr))
		while (bson_iter_next(&arr) && bson_iter_recurse(&arr, &t)) {
			outbox_target_read(&t, &tg);
			json_array_append_new(targets, json_pack("{s:s, s:s, "
			    "s:s, s:I, s:s}", "kind", tg.kind, "to", tg.to,
			    "state", tg.state, "attempts",
			    (json_int_t)tg.attempts, "lastError", tg.error));
		}
	json_object_set_new(o, "targets", targets);
	return (o);
}

static void
parked_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			*filter;

	filter = BCON_NEW("state", BCON_UTF8(OUTBOX_PARKED));
	coll = db_coll(client, DB_OUTBOX);
	c->err = db_page(coll, filter, "nextAt", 1, json_integer_value(
	    json_object_get(c->in, "limit")), json_integer_value(
	    json_object_get(c->in, "offset")), -1, parked_json, &c->out);
	mongoc_collection_destroy(coll);
	bson_destroy(filter);
}

/* GET /api/admin/notifications?limit=&offset= -> 200 page; 400; 401; 403 */
int
admin_notifications(struct http_request *req, struct ctx *ctx)
{
	json_t		*out;
	const char	*bad;
	long		 limit, offset;
	enum err	 e;

	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		if (api_page_query(req, &limit, &offset, &bad) != ERR_NONE) {
			api_error_msg(req, ERR_BAD_QUERY, bad, "query parameter "
			    "%s is invalid (limit 1..%d, offset 0..%d)", bad,
			    LIST_MAX, OFFSET_MAX);
			return (KORE_RESULT_OK);
		}
		return (call_offload(req, ctx, 1, OFFLOAD_DB, parked_run,
		    json_pack("{s:i, s:i}", "limit", (int)limit, "offset",
		    (int)offset)));
	}
	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, out);
	return (KORE_RESULT_OK);
}

/* Replay or drop parked notification c->in.id (DB thread). */
static void
unpark_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_error_t		 berr;
	bson_oid_t		 oid;
	bson_t			*q, *doc;
	int			 r;

	db_oid_parse(json_string_value(json_object_get(c->in, "id")), &oid);
	q = BCON_NEW("_id", BCON_OID(&oid), "state", BCON_UTF8(OUTBOX_PARKED));
	coll = db_coll(client, DB_OUTBOX);
	doc = NULL;
	if (db_find_doc(coll, q, NULL, &doc, &berr) == -1)
		c->err = db_error(&berr);
	else if (doc == NULL)
		c->err = ERR_NOTIFICATION_NOT_FOUND;
	else if ((r = outbox_unpark(coll, doc, json_is_true(json_object_get(
	    c->in, "replay")), &berr)) == -1)
		c->err = db_error(&berr);
	else if (r == 0)
		c->err = ERR_NOTIFICATION_NOT_FOUND;	/* not parked now */
	if (doc != NULL)
		bson_destroy(doc);
	bson_destroy(q);
	mongoc_collection_destroy(coll);
}

static int
unpark(struct http_request *req, struct ctx *ctx, int replay)
{
	bson_oid_t	oid;
	enum err	e;

	if (ctx->step == 0) {
		if (!api_require_admin(req, ctx))
			return (KORE_RESULT_OK);
		if ((e = api_param_oid(ctx, &oid)) != ERR_NONE) {
			api_error(req, e, "id");
			return (KORE_RESULT_OK);
		}
		return (call_offload(req, ctx, 1, OFFLOAD_DB, unpark_run,
		    json_pack("{s:s, s:b}", "id", ctx->param, "replay",
		    replay)));
	}
	if ((e = call_result(ctx, NULL)) != ERR_NONE) {
		api_error(req, e, e == ERR_NOTIFICATION_NOT_FOUND ? "id" : NULL);
		return (KORE_RESULT_OK);
	}
	if (replay)
		api_json(req, 200, json_pack("{s:s, s:s}", "id", ctx->param,
		    "state", OUTBOX_PENDING));
	else
		http_response(req, 204, NULL, 0);
	return (KORE_RESULT_OK);
}

/*
 * POST /api/admin/notifications/:id/replay -> 200 {id, state: pending}:
 * its parked targets are tried again now; 400; 401; 403; 404
 */
int
admin_notification_replay(struct http_request *req, struct ctx *ctx)
{
	return (unpark(req, ctx, 1));
}

/* DELETE /api/admin/notifications/:id -> 204 (dropped); 400; 401; 403; 404 */
int
admin_notification_drop(struct http_request *req, struct ctx *ctx)
{
	return (unpark(req, ctx, 0));
}
