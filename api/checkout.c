/*
 * checkout.c -- POST /api/checkout (submit), GET /api/checkout/:id
 * (status, long-poll) and GET /api/checkout/:id/events (WebSocket push).
 *
 * Submitting runs no order: one call of the library's checkout_submit
 * (shared/lua/protocol.lua) checks the Idempotency-Key, takes the cart's
 * lines from the hint the API keeps after each cart write, refuses when
 * the stream is longer than QUEUE_MAX (503), records the checkout as
 * queued and XADDs the job with its lines; then the API answers 202.
 * Without a hint the cart is read from MongoDB (400 cart_empty if it is
 * empty) and the call made again with its lines.  With
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
 * The status record in Redis holds the public body (shared/protocol.c
 * renders it, here and in the worker), the owner ("userId") and the
 * status; GET returns the body as it is, to the owner or an admin.  A
 * final status stays in Redis CHECKOUT_FINAL_TTL seconds, the minutes
 * in which its buyer looks; a completed checkout is then answered from
 * its order (found by checkoutId), a failed one is forgotten (404).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "api.h"
#include "../shared/carts.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/log.h"
#include "../shared/order_json.h"
#include "../shared/proc.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "../shared/validate.h"

#define PENDING_TTL	60	/* seconds a key may stay "being recorded" */

enum { SUB_START, SUB_SUBMITTED, SUB_CART, SUB_EPOCH, SUB_WAITED };
enum { GET_START, GET_READ, GET_READ_DB, GET_WAITED, GET_PLACE };
enum { WD_START, WD_READ, WD_READ_DB, WD_DONE };
enum { WS_START, WS_READ, WS_READ_DB };

struct submit {
	char		 id[25];	/* the new checkout's id */
	int		 waitlist;	/* {"waitlist": true} */
	char		 key[IDEM_KEY_SIZE];	/* its Idempotency-Key's */
	char		 hash[IDEM_HASH_HEX + 1];	/* of the canonical body */
	char		 now[40];	/* createdAt */
	long		 wait;		/* seconds to hold the request */
	struct call	*waiter;	/* events.c, while waiting */
};

struct status {
	long		 wait;		/* ?wait= seconds */
	struct call	*waiter;
	json_t		*fields;	/* new; the status hash */
};

static const char *const submit_fields[] = { "userId", "waitlist", NULL };

static void	answer_state(struct http_request *, const char *, int,
		    const char *);

/* ----- submit ----- */

static void
submit_free(void *arg)
{
	struct submit	*s = arg;

	if (s->waiter != NULL)
		call_release(s->waiter);
	free(s);
}

static void
answer_accepted(struct http_request *req, const char *id, int status)
{
	answer_state(req, id, status, "queued");
}

/*
 * The 202 (or replayed 200) for checkout id, in the state it is in
 * (queued, or waitlisted): {checkoutId, status, statusUrl} and Location.
 * Printed, not built with jansson, when the id needs no escaping (ours
 * are hex): every submit answers this.
 */
static void
answer_state(struct http_request *req, const char *id, int status,
    const char *state)
{
	char	url[64], text[192];
	int	n;

	if (id == NULL) {		/* not a string in Redis' reply */
		api_error(req, ERR_INTERNAL, NULL);
		return;
	}
	snprintf(url, sizeof(url), "/api/checkout/%s", id);
	http_response_header(req, "location", url);
	if (status == 200)
		http_response_header(req, "idempotent-replayed", "true");
	n = snprintf(text, sizeof(text), "{\"checkoutId\":\"%s\",\"status\":"
	    "\"%s\",\"statusUrl\":\"%s\"}", id, state, url);
	if (json_plain(id) && n > 0 && (size_t)n < sizeof(text))
		api_json_text(req, status, text, (size_t)n);
	else
		api_json(req, status, json_pack("{s:s, s:s, s:s}", "checkoutId",
		    id, "status", state, "statusUrl", url));
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

/* SHA-256 of the body in canonical form (sorted keys): its first
 * IDEM_HASH_HEX hex digits. */
static void
body_hash(json_t *body, char *hex)
{
	unsigned char	 d[crypto_hash_sha256_BYTES];
	char		*text;

	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	crypto_hash_sha256(d, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(hex, IDEM_HASH_HEX + 1, d, IDEM_HASH_HEX / 2);
	free(text);
}

/* On a DB thread: the cart's lines as text, or ERR_CART_EMPTY. */
static void
cart_check_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*carts;
	struct cart		 cart;
	bson_error_t		 berr;
	bson_oid_t		 user;
	char			*lines;
	size_t			 len;

	db_oid_parse(json_string_value(json_object_get(c->in, "userId")),
	    &user);
	carts = db_coll(client, DB_CARTS);
	if (carts_load(carts, &user, NULL, &cart, &berr) == -1) {
		c->err = db_error(&berr);
	} else if (cart.n == 0) {
		c->err = ERR_CART_EMPTY;
	} else {
		len = PROTOCOL_LINES_MAX(cart.n);
		lines = malloc(len);
		if (lines != NULL &&
		    protocol_lines_format(&cart, lines, len) == 0)
			c->out = json_string(lines);
		else
			c->err = ERR_INTERNAL;
		free(lines);
	}
	carts_free(&cart);
	mongoc_collection_destroy(carts);
}

/*
 * Record and queue the checkout in one Redis call (checkout_submit):
 * idempotency, the queue bound, the status record and the XADD.  lines
 * is "" the first time: the library takes them from the cart hint the
 * API keeps after each cart write, and answers "nocart" when there is
 * none, so a flash sale's submits cost no database read.
 */
static int
submit_call(struct http_request *req, struct ctx *ctx, struct submit *s,
    const char *lines)
{
	struct rargs	 a;
	char		*text;
	int		 r;

	text = protocol_body(s->id, CK_QUEUED, s->now, NULL, NULL);
	rargs_fcall(&a, FN_SUBMIT, 7);
	rargs_addf(&a, "%s%s", RK_CHECKOUT, s->id);
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, s->key[0] != '\0' ? s->key : RK_IDEM "none");
	rargs_addf(&a, "%s%s", RK_CART_LINES, ctx->who.sub);
	rargs_addf(&a, "%s%s", RK_EPOCH, ctx->who.sub);
	rargs_addf(&a, "%s%s", RK_REVOKED, ctx->who.sig);
	rargs_addf(&a, "%s%s", RK_RL_SUBMIT, ctx->who.sub);
	rargs_add(&a, s->id);
	rargs_add(&a, ctx->who.sub);
	rargs_add(&a, ctx->rid);
	rargs_add(&a, text);
	rargs_addf(&a, "%ld", cfg.checkout_ttl);
	rargs_addf(&a, "%ld", cfg.queue_max);
	rargs_add(&a, s->hash);
	rargs_addf(&a, "%ld", cfg.idempotency_ttl);
	rargs_add(&a, s->now);
	rargs_add(&a, lines);
	rargs_addf(&a, "%d", PENDING_TTL);
	/* A token found good within the second is not checked again. */
	if (tokens_cached(ctx->who.sig))
		rargs_add(&a, "-");
	else
		rargs_addf(&a, "%ld", ctx->who.ver);
	rargs_addf(&a, "%ld", cfg.submit_limit);
	rargs_addf(&a, "%ld", cfg.submit_window * 1000);
	rargs_addf(&a, "%llu", (unsigned long long)db_now_ms());
	rargs_add(&a, s->waitlist ? "1" : "");
	rargs_add(&a, cfg.queue_positions ? "1" : "0");
	r = call_args_durable(req, ctx, SUB_SUBMITTED, &a);
	rargs_free(&a);
	free(text);
	return (r);
}
/* Check the request: 0 to go on, -1 answered. */
static int
submit_check(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	const char	*key, *user, *field;
	enum err	 e;

	field = NULL;
	if ((e = api_auth(req, ctx)) != ERR_NONE ||
	    (e = api_body(req, ctx)) != ERR_NONE ||
	    (e = json_only_fields(ctx->body, submit_fields, &field)) != 0 ||
	    (e = json_field_string(ctx->body, "userId", 0, &user)) != 0) {
		api_error(req, e, e == ERR_UNKNOWN_FIELD ? field : e ==
		    ERR_WRONG_TYPE ? "userId" : NULL);
		return (-1);
	}
	if (user != NULL && strcmp(user, ctx->who.sub) != 0) {
		api_error_msg(req, ERR_FORBIDDEN, "userId", "userId must be "
		    "the authenticated user's id");
		return (-1);
	}
	if (json_object_get(ctx->body, "waitlist") != NULL &&
	    !json_is_boolean(json_object_get(ctx->body, "waitlist"))) {
		api_error_msg(req, ERR_WRONG_TYPE, "waitlist", "waitlist must "
		    "be true or false");
		return (-1);
	}
	s->waitlist = json_is_true(json_object_get(ctx->body, "waitlist"));
	if (http_request_header(req, "idempotency-key", &key)) {
		if ((e = validate_idempotency_key(key)) != ERR_NONE) {
			api_error(req, e, NULL);
			return (-1);
		}
		protocol_idem_key(s->key, ctx->who.sub, key);
		body_hash(ctx->body, s->hash);
	}
	s->wait = prefer_wait(req);
	return (0);
}

/* Check, then submit; a waiter first, so that no result is missed. */
static int
submit_start(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	bson_oid_t	oid;

	if (submit_check(req, ctx, s) == -1)
		return (KORE_RESULT_OK);
	bson_oid_init(&oid, NULL);
	db_oid_hex(&oid, s->id);
	proc_iso_time(db_now_ms(), s->now, sizeof(s->now));
	/* Over the user's waiters, the submit is answered 202 at once. */
	if (s->wait > 0)
		s->waiter = events_wait(req, ctx->who.sub, s->id, RANK_WAITLISTED,
		    kore_time_ms() + (uint64_t)s->wait * 1000);
	return (submit_call(req, ctx, s, ""));
}

/* Forget our pending Idempotency-Key: the submit did not happen. */
static void
unidem(struct submit *s)
{
	struct rargs	a;

	if (s->key[0] == '\0')
		return;
	rargs_fcall(&a, FN_UNIDEM, 1);
	rargs_add(&a, s->key);
	rargs_add(&a, s->hash);
	aredis_fire_args(&a);
	rargs_free(&a);
}

/* The database's answer about the cart: its lines, or why not. */
static int
submit_cart(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t		*lines;
	enum err	 e;
	int		 r;

	if ((e = call_result(ctx, &lines)) != ERR_NONE) {
		unidem(s);
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	r = submit_call(req, ctx, s, json_string_value(lines));
	json_decref(lines);
	return (r);
}

/* The user's epoch, from MongoDB (Redis did not know it): again. */
static int
submit_epoch(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t		*epoch;
	enum err	 e;

	e = call_result(ctx, &epoch);
	if (e == ERR_NONE) {
		tokens_epoch_set(ctx->who.sub, json_integer_value(epoch));
		if (json_integer_value(epoch) != ctx->who.ver)
			e = ERR_TOKEN_REVOKED;
	}
	json_decref(epoch);
	if (e != ERR_NONE) {
		unidem(s);
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	return (submit_call(req, ctx, s, ""));
}

/* Queued: answer 202, or hold the request until the result. */
static int
submit_queued(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	memcpy(ctx->checkout_id, s->id, sizeof(ctx->checkout_id));
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

/* checkout_submit answered: queued, a replay, a refusal, or "nocart". */
static int
submit_submitted(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t		*r;
	const char	*v;
	char		 retry[24];
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	v = json_string_value(json_array_get(r, 0));
	if (v == NULL)
		v = "";
	if (strcmp(v, "noepoch") == 0) {
		json_decref(r);
		return (call_offload(req, ctx, SUB_EPOCH, OFFLOAD_DB,
		    tokens_epoch_run, json_pack("{s:s}", "id", ctx->who.sub)));
	}
	if (strcmp(v, "limited") == 0) {
		snprintf(retry, sizeof(retry), "%lld", (long long)(json_integer_value(
		    json_array_get(r, 1)) + 999) / 1000);
		json_decref(r);
		http_response_header(req, "retry-after", retry);
		api_error_msg(req, ERR_RATE_LIMITED, NULL, "at most %ld checkouts "
		    "per %ld seconds; retry later", cfg.submit_limit,
		    cfg.submit_window);
		return (KORE_RESULT_OK);
	}
	if (strcmp(v, "nocart") == 0) {
		json_decref(r);
		return (call_offload(req, ctx, SUB_CART, OFFLOAD_DB,
		    cart_check_run, json_pack("{s:s}", "userId",
		    ctx->who.sub)));
	}
	if (strcmp(v, "queued") == 0 || strcmp(v, "replay") == 0)
		tokens_remember(ctx->who.sig);	/* checked by the script */
	if (strcmp(v, "queued") == 0) {
		json_decref(r);
		return (submit_queued(req, ctx, s));
	}
	if (strcmp(v, "replay") == 0)
		answer_accepted(req, json_string_value(json_array_get(r, 1)),
		    200);
	else
		api_error(req, strcmp(v, "pending") == 0 ?
		    ERR_IDEMPOTENCY_IN_PROGRESS : strcmp(v, "mismatch") == 0 ?
		    ERR_IDEMPOTENCY_MISMATCH : strcmp(v, "full") == 0 ?
		    ERR_QUEUE_FULL : strcmp(v, "revoked") == 0 ?
		    ERR_TOKEN_REVOKED : ERR_INTERNAL, NULL);
	json_decref(r);
	return (KORE_RESULT_OK);
}

/* The wait is over: 201 with the order, 409 with the failure, or 202. */
static int
submit_waited(struct http_request *req, struct ctx *ctx, struct submit *s)
{
	json_t			*body, *order, *error;
	enum checkout_state	 st;
	char			 loc[64];

	(void)call_result(ctx, &body);
	st = protocol_state(json_string_value(json_object_get(body,
	    "status")));
	if (st == CK_COMPLETED) {
		order = json_incref(json_object_get(body, "order"));
		snprintf(loc, sizeof(loc), "/api/orders/%s",
		    json_string_value(json_object_get(order, "id")));
		http_response_header(req, "location", loc);
		api_json(req, 201, order);
	} else if (st == CK_FAILED) {
		error = json_incref(json_object_get(body, "error"));
		api_json(req, 409, json_pack("{s:o, s:s}", "error", error,
		    "checkoutId", s->id));
	} else {
		answer_state(req, s->id, 202, st == CK_WAITLISTED ?
		    "waitlisted" : "queued");
	}
	json_decref(body);
	return (KORE_RESULT_OK);
}

/*
 * POST /api/checkout {} or {userId}; Idempotency-Key; Prefer: wait=N
 *   202 {checkoutId, status, statusUrl} + Location; 200 replay;
 *   201 order / 409 failure when waiting; 400 cart_empty; 401; 403;
 *   409 idempotency_in_progress; 422 idempotency_key_reused;
 *   429 rate_limited (SUBMIT_LIMIT per SUBMIT_WINDOW, Retry-After);
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
	case SUB_SUBMITTED:
		return (submit_submitted(req, ctx, s));
	case SUB_CART:
		return (submit_cart(req, ctx, s));
	case SUB_EPOCH:
		return (submit_epoch(req, ctx, s));
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

/* The seq of a status record (its place in the queue), or 0. */
static long long
seq_of(json_t *fields)
{
	const char	*s;

	s = json_string_value(json_object_get(fields, "seq"));
	return (s != NULL ? atoll(s) : 0);
}

/*
 * When the checkout's order submittedAt was (ms): the checkout's own
 * createdAt.  Orders from before that field: the second in its id.
 */
static int64_t
submitted_ms(const bson_t *doc, const char *checkout)
{
	bson_iter_t	it;
	bson_oid_t	oid;

	if (bson_iter_init_find(&it, doc, "submittedAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it))
		return (bson_iter_date_time(&it));
	if (checkout != NULL && db_oid_parse(checkout, &oid) == 0)
		return ((int64_t)bson_oid_get_time_t(&oid) * 1000);
	return (0);
}

/*
 * The status record of a completed checkout whose record has left Redis,
 * made from its order: an HGETALL reply's shape, so that every reader
 * takes either.  Updated when the order was placed.
 */
static json_t *
order_record(const bson_t *doc)
{
	json_t		*order, *r;
	const char	*checkout;
	char		 created[40], *body;
	int64_t		 at;

	order = orders_json(doc);
	checkout = json_string_value(json_object_get(order, "checkoutId"));
	created[0] = '\0';
	if ((at = submitted_ms(doc, checkout)) > 0)
		proc_iso_time(at, created, sizeof(created));
	body = protocol_body_at(checkout != NULL ? checkout : "",
	    CK_COMPLETED, created, json_string_value(json_object_get(order,
	    "createdAt")), doc, NULL);
	r = json_pack("[s, O, s, s, s, s]", "userId", json_object_get(order,
	    "userId"), "status", protocol_state_name(CK_COMPLETED), "body",
	    body);
	free(body);
	json_decref(order);
	return (r);
}

/* Off the loop: the order of checkout in.id as its status record. */
static void
order_record_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			*filter;

	coll = db_coll(client, DB_ORDERS);
	filter = BCON_NEW("checkoutId", BCON_UTF8(json_string_value(
	    json_object_get(c->in, "id"))));
	c->err = db_find_one(coll, filter, order_record,
	    ERR_CHECKOUT_NOT_FOUND, &c->out);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
}

/*
 * The status record the last call read, if the caller may read it:
 * *fields (new), and -1.  Otherwise what the handler returns: answered
 * (404, 403, or the call's error), or, when Redis had no record, the
 * order looked up by checkoutId (order_record) with db_step next.
 */
static int
record(struct http_request *req, struct ctx *ctx, int db_step,
    json_t **fields)
{
	json_t		*r;
	enum err	 e;

	*fields = NULL;
	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	if (json_array_size(r) == 0 && ctx->step != db_step) {
		json_decref(r);
		return (call_offload(req, ctx, db_step, OFFLOAD_DB,
		    order_record_run, json_pack("{s:s}", "id", ctx->param)));
	}
	*fields = hash_fields(r);
	json_decref(r);
	if ((e = readable(ctx, *fields)) != ERR_NONE) {
		json_decref(*fields);
		*fields = NULL;
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	return (-1);
}

/* The status body; a queued one with its position and etaMs. */
static int
status_body(struct http_request *req, json_t *fields)
{
	const char	*body;
	char		*text;
	long long	 pos, eta;

	body = json_string_value(json_object_get(fields, "body"));
	text = NULL;
	if (protocol_state(json_string_value(json_object_get(fields,
	    "status"))) == CK_QUEUED &&
	    queue_position(seq_of(fields), &pos, &eta) == 0)
		text = queue_body(body, pos, eta);
	if (text != NULL)
		body = text;
	api_json_text(req, 200, body, strlen(body));
	free(text);
	return (KORE_RESULT_OK);
}

/*
 * ?wait=N into *wait (0 if absent): one rule with Prefer: wait=N, a wait
 * longer than CHECKOUT_WAIT_MAX is shortened to it, however many digits
 * it has.  -1 if it is not a whole number of seconds.
 */
static int
query_wait(struct http_request *req, long *wait)
{
	char	v[4096];	/* longer is a 414 before this */
	size_t	i;
	int	r;

	*wait = 0;
	if ((r = api_query(req, "wait", v, sizeof(v))) <= 0)
		return (r);
	if (v[0] == '\0')
		return (-1);
	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] < '0' || v[i] > '9')
			return (-1);
		if (*wait <= cfg.checkout_wait_max)
			*wait = *wait * 10 + (v[i] - '0');
	}
	if (*wait > cfg.checkout_wait_max)
		*wait = cfg.checkout_wait_max;
	return (0);
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
	if (query_wait(req, &st->wait) == -1) {
		api_error_msg(req, ERR_BAD_QUERY, "wait", "wait must be a "
		    "number of seconds (0 or more; more than %ld is shortened "
		    "to %ld)", cfg.checkout_wait_max, cfg.checkout_wait_max);
		return (KORE_RESULT_OK);
	}
	/* Wait from before the read: a change after it cannot be missed. */
	if (st->wait > 0 && (st->waiter = events_wait(req, ctx->who.sub,
	    ctx->param, RANK_NEVER, kore_time_ms() + (uint64_t)st->wait *
	    1000)) ==
	    NULL) {
		api_error_msg(req, ERR_RATE_LIMITED, NULL, "at most %ld waiting "
		    "requests and WebSockets per user", cfg.waiters_per_user);
		return (KORE_RESULT_OK);
	}
	if (st->waiter != NULL)
		events_bind_token(st->waiter, &ctx->who);
	return (call_redis(req, ctx, GET_READ, "HGETALL %s%s", RK_CHECKOUT,
	    ctx->param));
}

/* The current status: answer it, or wait for the next change. */
static int
status_read(struct http_request *req, struct ctx *ctx, struct status *st)
{
	const char	*status;
	int		 rank, ret;

	if ((ret = record(req, ctx, GET_READ_DB, &st->fields)) != -1)
		return (ret);
	status = json_string_value(json_object_get(st->fields, "status"));
	rank = protocol_rank(protocol_state(status));
	if (st->waiter == NULL && rank == RANK_WAITLISTED)
		return (call_redis(req, ctx, GET_PLACE, "FCALL %s 0 %s",
		    FN_WAITLIST_POS, ctx->param));
	if (st->waiter == NULL || rank >= RANK_FINAL)
		return (status_body(req, st->fields));
	events_set_wake(st->waiter, rank + 1);
	ctx->step = GET_WAITED;
	ctx->call = st->waiter;
	st->waiter = NULL;
	if (!ctx->call->done)
		http_request_sleep(req);
	return (KORE_RESULT_RETRY);
}

/* A waitlisted checkout's body with its place on the waitlist. */
static int
status_place(struct http_request *req, struct ctx *ctx, struct status *st)
{
	json_t		*r;
	const char	*body;
	char		*text;

	text = NULL;
	body = json_string_value(json_object_get(st->fields, "body"));
	if (call_result(ctx, &r) == ERR_NONE && json_is_integer(r) &&
	    json_integer_value(r) >= 0)
		text = queue_body(body, json_integer_value(r), -1);
	json_decref(r);
	if (text != NULL)
		body = text;
	api_json_text(req, 200, body, strlen(body));
	free(text);
	return (KORE_RESULT_OK);
}

/*
 * GET /api/checkout/:id[?wait=N]
 *   200 {checkoutId, status, orderId?, order?, error?, createdAt,
 *   updatedAt, position?, etaMs?} (position in the queue while queued,
 *   on the product's waitlist while waitlisted); with wait, after the
 *   status changes or N seconds;
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
	case GET_READ_DB:
		return (status_read(req, ctx, st));
	case GET_PLACE:
		return (status_place(req, ctx, st));
	default:
		if (call_result(ctx, &body) == ERR_TOKEN_REVOKED) {
			json_decref(body);
			api_error(req, ERR_TOKEN_REVOKED, NULL);
			return (KORE_RESULT_OK);
		}
		if (body == NULL)
			return (status_body(req, st->fields));
		api_json(req, 200, body);
		return (KORE_RESULT_OK);
	}
}

/* ----- withdraw ----- */

/* The record says waitlisted: end it, unless it moved on meanwhile. */
static int
withdraw_read(struct http_request *req, struct ctx *ctx)
{
	struct rargs	 a;
	json_t		*fields, *body, *err;
	const char	*status;
	char		*text;
	int		 ret;

	if ((ret = record(req, ctx, WD_READ_DB, &fields)) != -1)
		return (ret);
	status = json_string_value(json_object_get(fields, "status"));
	if (protocol_rank(protocol_state(status)) >= RANK_FINAL) {
		/* Final (maybe read from its order): nothing to withdraw. */
		api_error_extra(req, ERR_NOT_WAITLISTED, json_pack("{s:s}",
		    "status", status));
		json_decref(fields);
		return (KORE_RESULT_OK);
	}
	body = json_loads(json_string_value(json_object_get(fields, "body")),
	    0, NULL);
	err = protocol_failure(ERR_WITHDRAWN, NULL);
	text = protocol_body(ctx->param, CK_FAILED, json_string_value(
	    json_object_get(body, "createdAt")), NULL, err);
	rargs_fcall(&a, FN_WAITLIST_FAIL, 0);
	rargs_addf(&a, "%ld", cfg.checkout_final_ttl);
	rargs_add(&a, RK_EVENTS);
	rargs_add(&a, ctx->param);
	rargs_add(&a, json_string_value(json_object_get(fields, "userId")));
	rargs_add(&a, text);
	ctx->data = text;
	ctx->data_free = free;
	ret = call_args_durable(req, ctx, WD_DONE, &a);
	rargs_free(&a);
	json_decref(err);
	json_decref(body);
	json_decref(fields);
	return (ret);
}

/* waitlist_fail answered: withdrawn, or it was not waitlisted (409). */
static int
withdraw_done(struct http_request *req, struct ctx *ctx)
{
	json_t		*r;
	const char	*v;
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	v = json_string_value(json_array_get(r, 0));
	if (v != NULL && strcmp(v, "done") == 0)
		api_json_text(req, 200, ctx->data, strlen(ctx->data));
	else
		api_error_extra(req, ERR_NOT_WAITLISTED, json_pack("{s:s}",
		    "status", v != NULL ? v : ""));
	json_decref(r);
	return (KORE_RESULT_OK);
}

/*
 * DELETE /api/checkout/:id (its owner, or an admin): a waitlisted
 * checkout leaves its waitlist and fails "withdrawn"
 *   200 the failed status; 400; 401; 403; 404; 409 not_waitlisted
 */
int
checkout_withdraw(struct http_request *req, struct ctx *ctx)
{
	bson_oid_t	oid;
	enum err	e;

	switch (ctx->step) {
	case WD_START:
		if ((e = api_auth(req, ctx)) != ERR_NONE ||
		    (e = api_param_oid(ctx, &oid)) != ERR_NONE) {
			api_error(req, e, e == ERR_BAD_ID ? "checkoutId" : NULL);
			return (KORE_RESULT_OK);
		}
		return (call_redis(req, ctx, WD_READ, "HGETALL %s%s",
		    RK_CHECKOUT, ctx->param));
	case WD_READ:
	case WD_READ_DB:
		return (withdraw_read(req, ctx));
	default:
		return (withdraw_done(req, ctx));
	}
}

/* ----- push: WebSocket ----- */

/*
 * What the handshake leaves on the connection for ws_connect, which
 * frees it: the newest status body and its rank, and whose it is.
 */
struct ws_start {
	char	id[25];
	struct principal who;		/* its token: a revocation closes it */
	int		rank;
	long long	seq;		/* queued: its place (queue.c) */
	char		body[];
};

/* The WebSocket request's state, until the handshake. */
struct ws {
	struct call	*waiter;	/* registered before the read */
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

	c->hdlr_extra = NULL;
	/* Its request's waiter held the user's place until just now. */
	if (w->rank < RANK_FINAL && events_watch(c, &w->who, w->id, w->rank,
	    w->rank == RANK_QUEUED ? w->seq : 0, w->body) == -1)
		w->rank = RANK_FINAL;
	ws_send(c, w->body, strlen(w->body), w->rank >= RANK_FINAL);
	kore_free(w);
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

static void
ws_free(void *arg)
{
	struct ws	*w = arg;

	if (w->waiter != NULL)
		call_release(w->waiter);
	free(w);
}

/* A WebSocket handshake kore will accept (checked before anything). */
static int
ws_upgrade(struct http_request *req)
{
	const char	*h;

	return (http_request_header(req, "upgrade", &h) &&
	    strcasecmp(h, "websocket") == 0 &&
	    http_request_header(req, "sec-websocket-key", &h) && *h != '\0' &&
	    http_request_header(req, "sec-websocket-version", &h) &&
	    strcmp(h, "13") == 0);
}

/* Check the handshake and token, watch, then read the status. */
static int
ws_start(struct http_request *req, struct ctx *ctx, struct ws *w)
{
	bson_oid_t	oid;
	enum err	e;

	if (!ws_upgrade(req)) {
		api_error(req, ERR_WEBSOCKET_REQUIRED, NULL);
		return (KORE_RESULT_OK);
	}
	if ((e = api_auth(req, ctx)) != ERR_NONE ||
	    (e = api_param_oid(ctx, &oid)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	/* Watch from before the read: a change after it cannot be missed. */
	if ((w->waiter = events_wait(req, ctx->who.sub, ctx->param, RANK_NEVER,
	    kore_time_ms() + (uint64_t)cfg.redis_timeout_ms * 2)) == NULL) {
		api_error_msg(req, ERR_RATE_LIMITED, NULL, "at most %ld waiting "
		    "requests and WebSockets per user", cfg.waiters_per_user);
		return (KORE_RESULT_OK);
	}
	return (call_redis(req, ctx, WS_READ, "HGETALL %s%s", RK_CHECKOUT,
	    ctx->param));
}

/* The status as read, or what the waiter saw since if it is newer. */
static struct ws_start *
ws_newest(struct ctx *ctx, json_t *fields, struct ws *w)
{
	struct ws_start	*ws;
	json_t		*seen;
	const char	*body;
	char		*text;
	int		 rank, seen_rank;

	body = json_string_value(json_object_get(fields, "body"));
	rank = protocol_rank(protocol_state(json_string_value(
	    json_object_get(fields, "status"))));
	seen = w->waiter != NULL ? w->waiter->out : NULL;
	seen_rank = protocol_rank(protocol_state(json_string_value(
	    json_object_get(seen, "status"))));
	text = NULL;
	if (seen_rank > rank) {
		text = json_dump_body(seen);
		body = text;
		rank = seen_rank;
	}
	ws = kore_calloc(1, sizeof(*ws) + strlen(body) + 1);
	memcpy(ws->id, ctx->param, 24);	/* a valid id: 24 characters */
	ws->who = ctx->who;
	ws->rank = rank;
	ws->seq = seq_of(fields);
	memcpy(ws->body, body, strlen(body) + 1);
	free(text);
	return (ws);
}

/*
 * GET /api/checkout/:id/events (WebSocket; token in Authorization or
 * ?access_token=): sends the current status body as a text message,
 * then each change, and closes after the final one.  400
 * websocket_required without a WebSocket handshake; 401; 403; 404.
 */
int
checkout_events(struct http_request *req, struct ctx *ctx)
{
	struct ws	*w;
	json_t		*fields;
	int		 ret;

	w = api_data(ctx, sizeof(*w), ws_free);
	if (ctx->step == WS_START)
		return (ws_start(req, ctx, w));
	if ((ret = record(req, ctx, WS_READ_DB, &fields)) != -1)
		return (ret);
	req->owner->hdlr_extra = ws_newest(ctx, fields, w);
	json_decref(fields);
	/* From here the connection's watch (ws_connect) takes over. */
	call_release(w->waiter);
	w->waiter = NULL;
	kore_websocket_handshake(req, "checkout_ws_connect",
	    "checkout_ws_message", "checkout_ws_disconnect");
	return (KORE_RESULT_OK);
}

void
checkout_init(void)
{
	events_init(ws_send, ws_close);
	if (cfg.queue_positions)
		queue_init();
}
