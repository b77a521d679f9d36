/*
 * checkout.c -- POST /api/checkout (submit), GET /api/checkout/:id
 * (status, long-poll) and GET /api/checkout/:id/events (WebSocket push).
 *
 * Submitting runs no order: it checks the Idempotency-Key, checks that
 * the cart is not empty, then records the checkout as queued and XADDs
 * the job in one Lua script (with the idempotency record, and a 503 when
 * the stream is longer than QUEUE_MAX), and answers 202.  With
 * Prefer: wait=N (or CHECKOUT_WAIT_DEFAULT) it holds the request until
 * the worker publishes the result: 201 with the order, 409 with the
 * failure, or 202 at the deadline; it is woken by the published result,
 * never by polling.
 *
 * Idempotency keys are per user and live IDEMPOTENCY_TTL seconds.  The
 * key is checked before anything about the cart, so a retry after a
 * completed checkout (whose cart is now empty) still gets its replay:
 * 200, the same body as the first answer, Idempotent-Replayed: true.
 * The same key with another body is a 422; while the first request is
 * still being recorded, a concurrent one gets 409.
 *
 * The status record in Redis holds the public body the worker wrote
 * ("body"), the owner ("userId") and the status; GET returns the body
 * as it is, to the owner or an admin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api.h"
#include "../shared/carts.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "../shared/validate.h"

#define PENDING_TTL	60	/* seconds a key may stay "being recorded" */

enum { SUB_START, SUB_IDEM, SUB_HINT, SUB_CART, SUB_RECORDED, SUB_WAITED };
enum { GET_START, GET_READ, GET_WAITED };

struct submit {
	char		 id[25];	/* the new checkout's id */
	char		 key[300];	/* "idem:<user>:<Idempotency-Key>" */
	char		 hash[65];	/* of the canonical body */
	long		 wait;		/* seconds to hold the request */
	struct call	*waiter;	/* events.c, while waiting */
};

struct status {
	long		 wait;		/* ?wait= seconds */
	struct call	*waiter;
	json_t		*fields;	/* new; the status hash */
};

/* KEYS: idempotency key.  ARGV: body hash, pending TTL. */
static const char idem_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then "
    "  redis.call('SET', KEYS[1], 'pending|' .. ARGV[1], 'EX', ARGV[2]) "
    "  return {'new'} "
    "end "
    "local kind, hash, id = string.match(v, '^(%a+)|([^|]*)|?(.*)$') "
    "if hash ~= ARGV[1] then return {'mismatch'} end "
    "if kind == 'pending' then return {'pending'} end "
    "return {'done', id}";

/* KEYS: idempotency key.  ARGV: body hash.  Drops our pending marker. */
static const char unidem_lua[] =
    "if redis.call('GET', KEYS[1]) == 'pending|' .. ARGV[1] then "
    "  redis.call('DEL', KEYS[1]) "
    "end "
    "return 1";

/*
 * KEYS: status hash, stream, idempotency key (or a dummy).
 * ARGV: id, userId, rid, body, status TTL, QUEUE_MAX, hash, key TTL,
 * has key (1/0), createdAt.
 */
static const char submit_lua[] =
    "if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[6]) then "
    "  if ARGV[9] == '1' then redis.call('DEL', KEYS[3]) end "
    "  return 'full' "
    "end "
    "redis.call('HSET', KEYS[1], 'userId', ARGV[2], 'status', 'queued', "
    "  'body', ARGV[4], 'rid', ARGV[3]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[5]) "
    "redis.call('XADD', KEYS[2], '*', 'checkoutId', ARGV[1], "
    "  'userId', ARGV[2], 'rid', ARGV[3], 'createdAt', ARGV[10]) "
    "if ARGV[9] == '1' then "
    "  redis.call('SET', KEYS[3], 'done|' .. ARGV[7] .. '|' .. ARGV[1], "
    "    'EX', ARGV[8]) "
    "end "
    "return 'ok'";

static const char *const submit_fields[] = { "userId", NULL };

/* ----- submit ----- */

static void
submit_free(void *arg)
{
	struct submit	*s = arg;

	if (s->waiter != NULL)
		call_release(s->waiter);
	free(s);
}

/* The 202 (or replayed 200) body for checkout id (new). */
static json_t *
accepted(const char *id)
{
	char	url[64];

	snprintf(url, sizeof(url), "/api/checkout/%s", id);
	return (json_pack("{s:s, s:s, s:s}", "checkoutId", id, "status",
	    "queued", "statusUrl", url));
}

static void
answer_accepted(struct http_request *req, const char *id, int status)
{
	json_t	*body;

	body = accepted(id);
	http_response_header(req, "location", json_string_value(
	    json_object_get(body, "statusUrl")));
	if (status == 200)
		http_response_header(req, "idempotent-replayed", "true");
	api_json(req, status, body);
}

/* Prefer: wait=N, else CHECKOUT_WAIT_DEFAULT; capped at the maximum. */
static long
prefer_wait(struct http_request *req)
{
	const char	*h, *p;
	long		 n;

	n = cfg.checkout_wait_default;
	if (http_request_header(req, "prefer", &h) &&
	    (p = strstr(h, "wait=")) != NULL)
		n = strtol(p + 5, NULL, 10);
	if (n < 0)
		n = 0;
	return (n > cfg.checkout_wait_max ? cfg.checkout_wait_max : n);
}

/* SHA-256 of the body in canonical form (sorted keys), as hex. */
static void
body_hash(json_t *body, char *hex)
{
	unsigned char	 d[crypto_hash_sha256_BYTES];
	char		*text;

	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	crypto_hash_sha256(d, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(hex, 65, d, sizeof(d));
	free(text);
}

static void
cart_check_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*carts;
	struct cart		 cart;
	bson_error_t		 berr;
	bson_oid_t		 user;

	db_oid_parse(json_string_value(json_object_get(c->in, "userId")),
	    &user);
	carts = db_coll(client, DB_CARTS);
	if (carts_load(carts, &user, NULL, &cart, &berr) == -1)
		c->err = db_error(&berr);
	else if (cart.n == 0)
		c->err = ERR_CART_EMPTY;
	carts_free(&cart);
	mongoc_collection_destroy(carts);
}

/*
 * Is the cart worth queueing?  The API keeps a hint in Redis, the number
 * of lines after each cart write; a positive hint is trusted, anything
 * else asks the database.  A hint can only be wrong towards "not empty"
 * (a cart emptied by an order an instant before), and then the worker
 * fails the checkout with cart_empty: nothing is ordered from an empty
 * cart, and a flash sale's submits do not each cost a database read.
 */
static int
cart_check(struct http_request *req, struct ctx *ctx)
{
	return (call_redis(req, ctx, SUB_HINT, "GET %s%s", RK_CART_LINES,
	    ctx->who.sub));
}

static int	submit_record(struct http_request *, struct ctx *,
		    struct submit *);

static int
submit_hint(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t	*r;
	int	 lines;

	lines = 0;
	if (call_result(ctx, &r) == ERR_NONE && json_is_string(r))
		lines = atoi(json_string_value(r));
	json_decref(r);
	if (lines > 0)
		return (submit_record(req, ctx, s));
	return (call_offload(req, ctx, SUB_CART, OFFLOAD_DB, cart_check_run,
	    json_pack("{s:s}", "userId", ctx->who.sub)));
}

/* The database's answer about the cart. */
static int
submit_cart(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	enum err	e;

	if ((e = call_result(ctx, NULL)) != ERR_NONE) {
		if (s->key[0] != '\0')
			aredis_fire("EVAL %s 1 %s %s", unidem_lua, s->key,
			    s->hash);
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	return (submit_record(req, ctx, s));
}

/* Check the request; start the idempotency check or the cart check. */
static int
submit_start(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	const char	*key, *user, *field;
	enum err	 e;

	if ((e = api_auth(req, ctx)) != ERR_NONE ||
	    (e = api_body(req, ctx)) != ERR_NONE ||
	    (e = json_only_fields(ctx->body, submit_fields, &field)) != 0) {
		api_error(req, e, e == ERR_UNKNOWN_FIELD ? field : NULL);
		return (KORE_RESULT_OK);
	}
	if ((e = json_field_string(ctx->body, "userId", 0, &user)) != 0) {
		api_error(req, e, "userId");
		return (KORE_RESULT_OK);
	}
	if (user != NULL && strcmp(user, ctx->who.sub) != 0) {
		api_error_msg(req, ERR_FORBIDDEN, "userId", "userId must be "
		    "the authenticated user's id");
		return (KORE_RESULT_OK);
	}
	s->wait = prefer_wait(req);
	if (!http_request_header(req, "idempotency-key", &key))
		return (cart_check(req, ctx));
	if ((e = validate_idempotency_key(key)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	snprintf(s->key, sizeof(s->key), "%s%s:%s", RK_IDEM, ctx->who.sub,
	    key);
	body_hash(ctx->body, s->hash);
	return (call_redis(req, ctx, SUB_IDEM, "EVAL %s 1 %s %s %d", idem_lua,
	    s->key, s->hash, PENDING_TTL));
}

/* The idempotency answer: go on, replay, 409 or 422. */
static int
submit_idem(struct http_request *req, struct ctx *ctx)
{
	const char	*kind;
	json_t		*r;
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	kind = json_string_value(json_array_get(r, 0));
	if (kind != NULL && strcmp(kind, "new") == 0) {
		json_decref(r);
		return (cart_check(req, ctx));
	}
	if (kind != NULL && strcmp(kind, "done") == 0)
		answer_accepted(req, json_string_value(json_array_get(r, 1)),
		    200);
	else if (kind != NULL && strcmp(kind, "pending") == 0)
		api_error(req, ERR_IDEMPOTENCY_IN_PROGRESS, NULL);
	else
		api_error(req, ERR_IDEMPOTENCY_MISMATCH, NULL);
	json_decref(r);
	return (KORE_RESULT_OK);
}

/* The cart is there: record and enqueue, with a waiter if asked to wait. */
static int
submit_record(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	bson_oid_t	 oid;
	json_t		*body;
	char		 now[40], *text;
	int		 r;

	bson_oid_init(&oid, NULL);
	db_oid_hex(&oid, s->id);
	db_iso_time(db_now_ms(), now, sizeof(now));
	body = json_pack("{s:s, s:s, s:s, s:s}", "checkoutId", s->id,
	    "status", "queued", "createdAt", now, "updatedAt", now);
	text = json_dump_body(body);
	json_decref(body);
	/* Wait from before the job exists: no result can be missed. */
	if (s->wait > 0)
		s->waiter = events_wait(req, s->id, 3, kore_time_ms() +
		    (uint64_t)s->wait * 1000);
	r = call_redis(req, ctx, SUB_RECORDED, "EVAL %s 3 %s%s %s %s %s %s %s "
	    "%s %ld %ld %s %ld %d %s", submit_lua, RK_CHECKOUT, s->id,
	    RK_STREAM, s->key[0] != '\0' ? s->key : "idem:none", s->id,
	    ctx->who.sub, ctx->rid, text, cfg.checkout_ttl, cfg.queue_max,
	    s->hash, cfg.idempotency_ttl, s->key[0] != '\0', now);
	free(text);
	return (r);
}

/* Recorded (or refused): answer 202, 503, or start waiting. */
static int
submit_recorded(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t		*r;
	const char	*v;
	enum err	 e;

	e = call_result(ctx, &r);
	v = json_string_value(r);
	if (e == ERR_NONE && (v == NULL || strcmp(v, "ok") != 0))
		e = v != NULL && strcmp(v, "full") == 0 ? ERR_QUEUE_FULL :
		    ERR_INTERNAL;
	json_decref(r);
	if (e != ERR_NONE) {
		if (s->key[0] != '\0' && e != ERR_QUEUE_FULL)
			aredis_fire("EVAL %s 1 %s %s", unidem_lua, s->key,
			    s->hash);
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	log_info("checkout: queued", "{s:s, s:s, s:s}", "rid", ctx->rid,
	    "checkoutId", s->id, "userId", ctx->who.sub);
	if (s->waiter == NULL) {
		answer_accepted(req, s->id, 202);
		return (KORE_RESULT_OK);
	}
	ctx->step = SUB_WAITED;
	ctx->call = s->waiter;
	s->waiter = NULL;
	if (!ctx->call->done)
		http_request_sleep(req);
	return (KORE_RESULT_RETRY);
}

/* The wait is over: 201 with the order, 409 with the failure, or 202. */
static int
submit_waited(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t		*body, *order, *error;
	const char	*status;
	char		 loc[64];

	(void)call_result(ctx, &body);
	status = json_string_value(json_object_get(body, "status"));
	if (status != NULL && strcmp(status, "completed") == 0) {
		order = json_incref(json_object_get(body, "order"));
		snprintf(loc, sizeof(loc), "/api/orders/%s",
		    json_string_value(json_object_get(order, "id")));
		http_response_header(req, "location", loc);
		api_json(req, 201, order);
	} else if (status != NULL && strcmp(status, "failed") == 0) {
		error = json_incref(json_object_get(body, "error"));
		api_json(req, 409, json_pack("{s:o, s:s}", "error", error,
		    "checkoutId", s->id));
	} else {
		answer_accepted(req, s->id, 202);
	}
	json_decref(body);
	return (KORE_RESULT_OK);
}

/*
 * POST /api/checkout {} or {userId}; Idempotency-Key; Prefer: wait=N
 *   202 {checkoutId, status, statusUrl} + Location; 200 replay;
 *   201 order / 409 failure when waiting; 400 cart_empty; 401; 403;
 *   409 idempotency_in_progress; 422 idempotency_key_reused;
 *   503 queue_full or a dependency down, with Retry-After
 */
int
checkout_submit(struct http_request *req, struct ctx *ctx)
{
	struct submit	*s;

	s = api_data(ctx, sizeof(*s), submit_free);
	switch (ctx->step) {
	case SUB_START:
		return (submit_start(req, ctx, s));
	case SUB_IDEM:
		return (submit_idem(req, ctx));
	case SUB_HINT:
		return (submit_hint(req, ctx, s));
	case SUB_CART:
		return (submit_cart(req, ctx, s));
	case SUB_RECORDED:
		return (submit_recorded(req, ctx, s));
	default:
		return (submit_waited(req, ctx, s));
	}
}

/* ----- status ----- */

static void
status_free(void *arg)
{
	struct status	*st = arg;

	if (st->waiter != NULL)
		call_release(st->waiter);
	json_decref(st->fields);
	free(st);
}

/* An HGETALL reply (flat array) as a new JSON object. */
static json_t *
hash_fields(json_t *reply)
{
	json_t	*o;
	size_t	 i;

	o = json_object();
	for (i = 0; i + 1 < json_array_size(reply); i += 2)
		json_object_set(o, json_string_value(json_array_get(reply, i)),
		    json_array_get(reply, i + 1));
	return (o);
}

/* Check the status record: 404 if there is none, 403 if not yours. */
static enum err
readable(struct ctx *ctx, json_t *fields)
{
	const char	*owner;

	if ((owner = json_string_value(json_object_get(fields, "userId"))) ==
	    NULL || json_object_get(fields, "body") == NULL)
		return (ERR_CHECKOUT_NOT_FOUND);
	if (strcmp(owner, ctx->who.sub) != 0 && !ctx->who.admin)
		return (ERR_FORBIDDEN);
	return (ERR_NONE);
}

static int
status_body(struct http_request *req, json_t *fields)
{
	const char	*body;

	body = json_string_value(json_object_get(fields, "body"));
	api_json_text(req, 200, body, strlen(body));
	return (KORE_RESULT_OK);
}

/* Authenticate, check the id and ?wait=; register a waiter if waiting. */
static int
status_start(struct http_request *req, struct ctx *ctx, struct status *st)
{
	bson_oid_t	oid;
	enum err	e;

	if ((e = api_auth(req, ctx)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	if ((e = api_param_oid(ctx, &oid)) != ERR_NONE) {
		api_error(req, e, "checkoutId");
		return (KORE_RESULT_OK);
	}
	if (api_query_long(req, "wait", 0, 0, cfg.checkout_wait_max,
	    &st->wait) != ERR_NONE) {
		api_error_msg(req, ERR_BAD_QUERY, "wait", "wait must be a "
		    "number of seconds from 0 to %ld", cfg.checkout_wait_max);
		return (KORE_RESULT_OK);
	}
	/* Wait from before the read: a change after it cannot be missed. */
	if (st->wait > 0)
		st->waiter = events_wait(req, ctx->param, 4, kore_time_ms() +
		    (uint64_t)st->wait * 1000);
	return (call_redis(req, ctx, GET_READ, "HGETALL %s%s", RK_CHECKOUT,
	    ctx->param));
}

/* The current status: answer it, or wait for the next change. */
static int
status_read(struct http_request *req, struct ctx *ctx, struct status *st)
{
	json_t		*r;
	const char	*status;
	enum err	 e;
	int		 rank;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	st->fields = hash_fields(r);
	json_decref(r);
	if ((e = readable(ctx, st->fields)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	status = json_string_value(json_object_get(st->fields, "status"));
	rank = events_rank(status);
	if (st->waiter == NULL || rank >= 3)
		return (status_body(req, st->fields));
	events_set_wake(st->waiter, rank + 1);
	ctx->step = GET_WAITED;
	ctx->call = st->waiter;
	st->waiter = NULL;
	if (!ctx->call->done)
		http_request_sleep(req);
	return (KORE_RESULT_RETRY);
}

/*
 * GET /api/checkout/:id[?wait=N]
 *   200 {checkoutId, status, orderId?, order?, error?, createdAt,
 *   updatedAt}; with wait, after the status changes or N seconds;
 *   400; 401; 403 not yours; 404
 */
int
checkout_status(struct http_request *req, struct ctx *ctx)
{
	struct status	*st;
	json_t		*body;

	st = api_data(ctx, sizeof(*st), status_free);
	switch (ctx->step) {
	case GET_START:
		return (status_start(req, ctx, st));
	case GET_READ:
		return (status_read(req, ctx, st));
	default:
		(void)call_result(ctx, &body);
		if (body == NULL)
			return (status_body(req, st->fields));
		api_json(req, 200, body);
		return (KORE_RESULT_OK);
	}
}

/* ----- push: WebSocket ----- */

/* What the handshake leaves on the connection for ws_connect (kore frees). */
struct ws_start {
	char	id[25];
	int	rank;
	char	body[];
};

int	checkout_ws_connect(struct connection *);
int	checkout_ws_message(struct connection *, u_int8_t, void *, size_t);
int	checkout_ws_disconnect(struct connection *);

static void
ws_send(struct connection *c, const char *text, size_t len, int final)
{
	kore_websocket_send(c, WEBSOCKET_OP_TEXT, text, len);
	if (final)
		kore_connection_disconnect(c);
}

static void
ws_close(struct connection *c, const char *id)
{
	(void)id;
	kore_connection_disconnect(c);
}

int
checkout_ws_connect(struct connection *c)
{
	struct ws_start	*w = c->hdlr_extra;

	ws_send(c, w->body, strlen(w->body), w->rank >= 3);
	if (w->rank < 3)
		events_watch(c, w->id, w->rank);
	return (KORE_RESULT_OK);
}

int
checkout_ws_message(struct connection *c, u_int8_t op, void *data,
    size_t len)
{
	(void)c;
	(void)op;
	(void)data;
	(void)len;
	return (KORE_RESULT_OK);	/* clients have nothing to say */
}

int
checkout_ws_disconnect(struct connection *c)
{
	events_unwatch(c);
	return (KORE_RESULT_OK);
}

/* A token from Authorization, or ?access_token= (browsers' WebSocket). */
static enum err
ws_auth(struct http_request *req, struct ctx *ctx)
{
	const char	*h;
	char		 token[4100];

	if (http_request_header(req, "authorization", &h))
		return (api_auth(req, ctx));
	if (api_query(req, "access_token", token, sizeof(token)) != 1)
		return (ERR_UNAUTHENTICATED);
	return (jwt_token_verify(token, cfg.jwt_secret, time(NULL),
	    &ctx->who));
}

/*
 * GET /api/checkout/:id/events (WebSocket; token in Authorization or
 * ?access_token=): sends the current status body as a text message,
 * then each change, and closes after the final one.
 */
int
checkout_events(struct http_request *req, struct ctx *ctx)
{
	struct ws_start	*w;
	json_t		*r, *fields;
	const char	*body;
	bson_oid_t	 oid;
	enum err	 e;

	if (ctx->step == 0) {
		if ((e = ws_auth(req, ctx)) != ERR_NONE ||
		    (e = api_param_oid(ctx, &oid)) != ERR_NONE) {
			api_error(req, e, NULL);
			return (KORE_RESULT_OK);
		}
		return (call_redis(req, ctx, 1, "HGETALL %s%s", RK_CHECKOUT,
		    ctx->param));
	}
	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	fields = hash_fields(r);
	json_decref(r);
	if ((e = readable(ctx, fields)) != ERR_NONE) {
		json_decref(fields);
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	body = json_string_value(json_object_get(fields, "body"));
	w = kore_calloc(1, sizeof(*w) + strlen(body) + 1);
	memcpy(w->id, ctx->param, 24);	/* a valid id: 24 characters */
	w->rank = events_rank(json_string_value(json_object_get(fields,
	    "status")));
	memcpy(w->body, body, strlen(body) + 1);
	json_decref(fields);
	req->owner->hdlr_extra = w;
	kore_websocket_handshake(req, "checkout_ws_connect",
	    "checkout_ws_message", "checkout_ws_disconnect");
	return (KORE_RESULT_OK);
}

void
checkout_init(void)
{
	events_init(ws_send, ws_close);
}
