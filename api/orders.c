/*
 * orders.c -- the orders: GET /api/orders (a customer's own; an admin's
 * every order, with filters and sorts), GET /api/orders/:id (its owner
 * or an admin), and the transitions of shared/lifecycle.h:
 *   POST /api/orders/:id/payment {reference, amount}  admin or payments
 *   POST /api/orders/:id/fulfil {carrier?, tracking?}  admin
 *   POST /api/orders/:id/cancel {reason?}              owner or admin
 *   POST /api/orders/:id/refund {reference}            admin
 * Concurrent transitions run together, one transaction per group (group
 * commit, below); one that does not apply is a 409 naming the order's
 * current status.  Units a cancel
 * gives back go to the stock gate before the answer (gate_return); if
 * Redis is away, the worker's sweeper returns them within seconds.
 * Orders are created only by the worker; their prices are those at the
 * time of the order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/lifecycle.h"
#include "../shared/log.h"
#include "../shared/money.h"
#include "../shared/order_json.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "../shared/validate.h"

#define REFERENCE_MAX	128	/* characters of a payment reference */

static const char *const none[] = { NULL };	/* a body of no fields */
#define NOTE_MAX	500	/* of a reason, carrier or tracking number */

/* Steps of a transition. */
enum { TR_START, TR_APPLIED, TR_RETURNED };

static const char *const statuses[] = { OS_AWAITING, OS_CONFIRMED,
    OS_FULFILLED, OS_CANCELLED, OS_EXPIRED, NULL };

static const struct {
	const char	*name;		/* ?sort= value */
	const char	*field;
	int		 dir;
} sorts[] = {
	{ "-createdAt", "createdAt", -1 },
	{ "createdAt", "createdAt", 1 },
	{ "total", "total", 1 },
	{ "-total", "total", -1 },
};

/* ----- reads ----- */

/* The listing c->in asks for, as MongoDB's filter. */
static void
list_filter(json_t *in, bson_t *filter)
{
	struct orders_query	q;
	json_t			*v;

	q.user = json_string_value(json_object_get(in, "userId"));
	q.status = json_string_value(json_object_get(in, "status"));
	q.from = json_is_integer(v = json_object_get(in, "from")) ?
	    json_integer_value(v) : -1;
	q.to = json_is_integer(v = json_object_get(in, "to")) ?
	    json_integer_value(v) : -1;
	orders_filter(&q, filter);
}

static void
list_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			 filter;

	list_filter(c->in, &filter);
	coll = db_coll(client, DB_ORDERS);
	c->err = db_page(coll, &filter, json_string_value(json_object_get(
	    c->in, "field")), (int)json_integer_value(json_object_get(c->in,
	    "dir")), json_integer_value(json_object_get(c->in, "limit")),
	    json_integer_value(json_object_get(c->in, "offset")), -1,
	    orders_json, &c->out);
	mongoc_collection_destroy(coll);
	bson_destroy(&filter);
}

static void
get_run(struct call *c, mongoc_client_t *client)
{
	c->err = db_find_by_id(client, DB_ORDERS, json_string_value(
	    json_object_get(c->in, "id")), orders_json, ERR_ORDER_NOT_FOUND,
	    &c->out);
}

/* ?status= into in; 0, or -1 if it names no status. */
static int
status_query(struct http_request *req, json_t *in)
{
	char	v[32];
	int	i, r;

	if ((r = api_query(req, "status", v, sizeof(v))) <= 0)
		return (r);
	for (i = 0; statuses[i] != NULL; i++) {
		if (strcmp(statuses[i], v) == 0) {
			json_object_set_new(in, "status", json_string(v));
			return (0);
		}
	}
	return (-1);
}

/* ?from= / ?to= (ISO 8601) into in as ms; 0, or -1 if malformed. */
static int
time_query(struct http_request *req, const char *name, json_t *in)
{
	char	v[64];
	int64_t	ms;
	int	r;

	if ((r = api_query(req, name, v, sizeof(v))) <= 0)
		return (r);
	if (validate_iso_time(v, &ms) == -1)
		return (-1);
	json_object_set_new(in, name, json_integer(ms));
	return (0);
}

/* ?sort= into in; 0, or -1 if it is none of sorts[]. */
static int
sort_query(struct http_request *req, json_t *in)
{
	char	v[32];
	size_t	i;
	int	r;

	if ((r = api_query(req, "sort", v, sizeof(v))) == -1)
		return (-1);
	if (r == 0)
		snprintf(v, sizeof(v), "-createdAt");
	for (i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++) {
		if (strcmp(sorts[i].name, v) == 0) {
			json_object_set_new(in, "field",
			    json_string(sorts[i].field));
			json_object_set_new(in, "dir",
			    json_integer(sorts[i].dir));
			return (0);
		}
	}
	return (-1);
}

/*
 * Whose orders and which: a customer's own (?userId= may only name
 * them), an admin's every order or ?userId='s.  NULL: answered.
 */
static json_t *
list_input(struct http_request *req, struct ctx *ctx)
{
	char		 user[32];
	const char	*bad;
	json_t		*in;
	long		 limit, offset;
	int		 r;

	in = json_object();
	if (api_page_query(req, &limit, &offset, &bad) != ERR_NONE)
		goto bad;
	json_object_set_new(in, "limit", json_integer(limit));
	json_object_set_new(in, "offset", json_integer(offset));
	bad = "userId";
	if ((r = api_query(req, "userId", user, sizeof(user))) == -1 ||
	    (r == 1 && !validate_oid(user)))
		goto bad;
	if (r == 0 && !ctx->who.admin)
		snprintf(user, sizeof(user), "%s", ctx->who.sub);
	if (r == 1 || !ctx->who.admin)
		json_object_set_new(in, "userId", json_string(user));
	if ((bad = "status", status_query(req, in)) == -1 ||
	    (bad = "from", time_query(req, "from", in)) == -1 ||
	    (bad = "to", time_query(req, "to", in)) == -1 ||
	    (bad = "sort", sort_query(req, in)) == -1)
		goto bad;
	if (!ctx->who.admin && strcmp(user, ctx->who.sub) != 0) {
		json_decref(in);
		api_error(req, ERR_FORBIDDEN, "userId");
		return (NULL);
	}
	return (in);
bad:
	json_decref(in);
	api_error_msg(req, ERR_BAD_QUERY, bad, "query parameter %s is invalid "
	    "(limit 1..%d, offset 0..%d, userId an id, status one of "
	    "awaiting_payment, confirmed, fulfilled, cancelled, expired, "
	    "from and to ISO 8601 times such as 2026-12-03T10:00:00Z, sort "
	    "one of createdAt, -createdAt, total, -total)", bad, LIST_MAX,
	    OFFSET_MAX);
	return (NULL);
}

/*
 * GET /api/orders?limit=&offset=&userId=&status=&from=&to=&sort=
 *   -> {items, total, limit, offset}; 400 names the parameter; 403
 *   a customer naming another user
 */
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

/* ----- transitions ----- */

/*
 * Group commit: the transitions that concurrent requests of this API
 * process ask for run together, up to GROUP_MAX in one transaction.  The
 * first DB thread to find no group running leads the next one; the
 * others wait for their results.  A sale's cancels of one product then
 * cost one stock increment per group instead of a transaction each,
 * conflicting with each other.  No order appears twice in a group (a
 * second request for it waits for the next).
 */
#define GROUP_MAX	64

struct pending {
	struct lc_item		 item;		/* asked, then decided */
	int			 done;
	int			 failed;	/* the database failed */
	TAILQ_ENTRY(pending)	 list;
};

TAILQ_HEAD(pendingq, pending);

static pthread_mutex_t	group_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	group_done = PTHREAD_COND_INITIALIZER;
static struct pendingq	group_queue = TAILQ_HEAD_INITIALIZER(group_queue);
static int		group_leading;

/* Take the next group off the queue into g (lock held); its size. */
static int
group_take(struct pending **g)
{
	struct pending	*p, *next;
	int		 n, k;

	n = 0;
	for (p = TAILQ_FIRST(&group_queue); p != NULL && n < GROUP_MAX;
	    p = next) {
		next = TAILQ_NEXT(p, list);
		for (k = 0; k < n && !bson_oid_equal(&g[k]->item.id,
		    &p->item.id); k++)
			;
		if (k < n)
			continue;	/* that order is in this group already */
		TAILQ_REMOVE(&group_queue, p, list);
		g[n++] = p;
	}
	return (n);
}

/* Lead one group (lock held on entry and on return). */
static void
group_lead(mongoc_client_t *client)
{
	struct pending		*g[GROUP_MAX];
	struct lc_item		 items[GROUP_MAX];
	struct lc_request	 r;
	int			 i, n, ret;

	group_leading = 1;
	n = group_take(g);
	pthread_mutex_unlock(&group_lock);
	memset(&r, 0, sizeof(r));
	for (i = 0; i < n; i++)
		items[i] = g[i]->item;
	r.now = db_now_ms();
	r.items = items;
	r.n = n;
	if ((ret = lifecycle_apply(client, &r)) == -1)
		log_warn("orders: transitions failed", "{s:s, s:i}", "error",
		    r.error, "group", n);
	pthread_mutex_lock(&group_lock);
	for (i = 0; i < n; i++) {
		g[i]->item = items[i];		/* its order and lines move */
		g[i]->failed = ret == -1;
		g[i]->done = 1;
	}
	group_leading = 0;
	pthread_cond_broadcast(&group_done);
}

/* The transition c->in asks for, on a DB thread, in a group. */
static void
transition_run(struct call *c, mongoc_client_t *client)
{
	struct pending	 p;
	struct lc_item	*it = &p.item;
	json_t		*in = c->in;

	memset(&p, 0, sizeof(p));
	it->what = (enum transition)json_integer_value(json_object_get(in,
	    "what"));
	it->actor = json_string_value(json_object_get(in, "actor"));
	it->admin = json_is_true(json_object_get(in, "admin"));
	it->reference = json_string_value(json_object_get(in, "reference"));
	it->amount = json_integer_value(json_object_get(in, "amount"));
	it->carrier = json_string_value(json_object_get(in, "carrier"));
	it->tracking = json_string_value(json_object_get(in, "tracking"));
	it->reason = json_string_value(json_object_get(in, "reason"));
	db_oid_parse(json_string_value(json_object_get(in, "id")), &it->id);
	pthread_mutex_lock(&group_lock);
	TAILQ_INSERT_TAIL(&group_queue, &p, list);
	while (!p.done) {
		if (!group_leading)
			group_lead(client);
		else
			pthread_cond_wait(&group_done, &group_lock);
	}
	pthread_mutex_unlock(&group_lock);
	if (p.failed) {
		c->err = ERR_MONGO_DOWN;
		return;
	}
	c->out = json_pack("{s:i, s:s, s:s}", "err", (int)it->err, "status",
	    it->status, "user", it->user);
	if (it->order != NULL)
		json_object_set_new(c->out, "order", it->order);
	if (it->lines != NULL)
		json_object_set_new(c->out, "lines", json_string(it->lines));
	free(it->lines);
}

/* An optional text field of the body into in; ERR_NONE or why not. */
static enum err
text_field(json_t *body, const char *name, long max, int required,
    json_t *in)
{
	char		 text[4 * NOTE_MAX + 1];
	const char	*s;
	enum err	 e;

	if ((e = json_field_string(body, name, required, &s)) != ERR_NONE)
		return (e);
	if (s == NULL)
		return (ERR_NONE);
	if ((e = validate_text(s, max, text, sizeof(text))) != ERR_NONE)
		return (e);
	json_object_set_new(in, name, json_string(text));
	return (ERR_NONE);
}

/* The body of transition what into in; ERR_NONE, or why not (field). */
static enum err
transition_body(json_t *body, enum transition what, json_t *in,
    const char **field)
{
	static const char *const pay[] = { "reference", "amount", NULL };
	static const char *const ful[] = { "carrier", "tracking", NULL };
	static const char *const can[] = { "reason", NULL };
	static const char *const ref[] = { "reference", NULL };
	const char *const	*allowed;
	int64_t			 cents;
	enum err		 e;

	allowed = what == TR_PAY ? pay : what == TR_FULFIL ? ful :
	    what == TR_CANCEL ? can : ref;
	if ((e = json_only_fields(body, allowed, field)) != ERR_NONE)
		return (e);
	switch (what) {
	case TR_PAY:
		*field = "amount";
		if (json_object_get(body, "amount") == NULL)
			return (ERR_MISSING_FIELD);
		if ((e = money_from_json(json_object_get(body, "amount"),
		    INT64_MAX / 100, &cents)) != ERR_NONE)
			return (e);
		json_object_set_new(in, "amount", json_integer(cents));
		/* FALLTHROUGH */
	case TR_REFUND:
		*field = "reference";
		return (text_field(body, "reference", REFERENCE_MAX, 1, in));
	case TR_FULFIL:
		*field = "carrier";
		if ((e = text_field(body, "carrier", NOTE_MAX, 0, in)) !=
		    ERR_NONE)
			return (e);
		*field = "tracking";
		return (text_field(body, "tracking", NOTE_MAX, 0, in));
	default:
		*field = "reason";
		return (text_field(body, "reason", NOTE_MAX, 0, in));
	}
}

/* 400 for a bad transition field, with its rule spelt out. */
static void
body_error(struct http_request *req, enum err e, const char *field)
{
	if (field == NULL || e == ERR_MISSING_FIELD || e == ERR_UNKNOWN_FIELD)
		api_error(req, e, field);
	else if (strcmp(field, "amount") == 0)
		api_error_msg(req, e, field, "amount must be the order's total "
		    "as a number with at most 2 decimal places");
	else
		api_error_msg(req, e == ERR_WRONG_TYPE ? e : ERR_INVALID, field,
		    "%s must be a string of 1 to %d characters without "
		    "control characters", field, strcmp(field, "reference") ==
		    0 ? REFERENCE_MAX : NOTE_MAX);
}

/* Who may ask for what: ERR_NONE, or the 401/403 to answer. */
static enum err
transition_allowed(struct http_request *req, struct ctx *ctx,
    enum transition what, int test)
{
	enum err	e;

	if ((e = api_auth(req, ctx)) != ERR_NONE)
		return (e);
	if (test && strcmp(cfg.app_env, "development") != 0)
		return (ERR_DEVELOPMENT_ONLY);
	if (what == TR_PAY && !test && !ctx->who.admin && !ctx->who.payments)
		return (ERR_PAYMENTS_ONLY);
	if ((what == TR_FULFIL || what == TR_REFUND) && !ctx->who.admin)
		return (ERR_ADMIN_ONLY);
	return (ERR_NONE);
}

/* Step TR_START: check and start the transaction. */
static int
transition_start(struct http_request *req, struct ctx *ctx,
    enum transition what, int test)
{
	bson_oid_t	 oid;
	const char	*field;
	json_t		*in;
	enum err	 e;

	if ((e = transition_allowed(req, ctx, what, test)) != ERR_NONE ||
	    (e = api_param_oid(ctx, &oid)) != ERR_NONE) {
		api_error(req, e, e == ERR_BAD_ID ? "id" : NULL);
		return (KORE_RESULT_OK);
	}
	/* Payments act on any order, as an admin does: for payments only. */
	in = json_pack("{s:s, s:i, s:s, s:b}", "id", ctx->param, "what",
	    (int)what, "actor", ctx->who.sub, "admin", ctx->who.admin ||
	    (what == TR_PAY && !test && ctx->who.payments));
	field = NULL;
	if (test) {		/* the owner pays what is due, for a demo */
		json_object_set_new(in, "amount",
		    json_integer(LIFECYCLE_THE_TOTAL));
		json_object_set_new(in, "reference", json_sprintf("test-%s",
		    ctx->param));
	}
	if ((e = api_body(req, ctx)) != ERR_NONE || (!test &&
	    (e = transition_body(ctx->body, what, in, &field)) != ERR_NONE) ||
	    (test && (e = json_only_fields(ctx->body, none, &field)) !=
	    ERR_NONE)) {
		json_decref(in);
		body_error(req, e, field);
		return (KORE_RESULT_OK);
	}
	return (call_offload(req, ctx, TR_APPLIED, OFFLOAD_DB, transition_run,
	    in));
}

/* Step TR_APPLIED: refused, done, or units to give back first. */
static int
transition_applied(struct http_request *req, struct ctx *ctx)
{
	struct rargs	 a;
	json_t		*out;
	enum err	 e;
	int		 r;

	if ((e = call_result(ctx, &out)) == ERR_NONE)
		e = (enum err)json_integer_value(json_object_get(out, "err"));
	if (e == ERR_INVALID_TRANSITION || e == ERR_AMOUNT_MISMATCH ||
	    e == ERR_ALREADY_PAID) {
		api_error_extra(req, e, json_pack("{s:O}", "status",
		    json_object_get(out, "status")));
	} else if (e != ERR_NONE) {
		api_error(req, e, NULL);
	} else if (json_object_get(out, "lines") == NULL) {
		api_json(req, 200, json_incref(json_object_get(out, "order")));
	} else {
		ctx->data = out;
		ctx->data_free = api_json_free;
		rargs_fcall(&a, FN_GATE_RETURN, 2);
		rargs_add(&a, RK_STOCK);
		rargs_add(&a, RK_CATALOG);
		rargs_add(&a, "1");
		rargs_add(&a, ctx->param);
		rargs_add(&a, json_string_value(json_object_get(out, "user")));
		rargs_add(&a, json_string_value(json_object_get(out, "lines")));
		r = call_args(req, ctx, TR_RETURNED, &a);
		rargs_free(&a);
		return (r);
	}
	json_decref(out);
	return (KORE_RESULT_OK);
}

/* Step TR_RETURNED: the units are back on sale (or the sweeper will do). */
static int
transition_returned(struct http_request *req, struct ctx *ctx)
{
	json_t	*out = ctx->data;

	if (call_result(ctx, NULL) != ERR_NONE)
		log_warn("orders: units not yet back in the gate (the sweeper "
		    "returns them)", "{s:s, s:s}", "rid", ctx->rid, "orderId",
		    ctx->param);
	api_json(req, 200, json_incref(json_object_get(out, "order")));
	return (KORE_RESULT_OK);
}

static int
transition(struct http_request *req, struct ctx *ctx, enum transition what,
    int test)
{
	switch (ctx->step) {
	case TR_START:
		return (transition_start(req, ctx, what, test));
	case TR_APPLIED:
		return (transition_applied(req, ctx));
	default:
		return (transition_returned(req, ctx));
	}
}

/*
 * POST /api/orders/:id/payment {reference, amount} (admin or payments)
 *   200 order (confirmed; the same reference again: the same answer);
 *   409 amount_mismatch, already_paid, invalid_transition (+ status)
 */
int
orders_pay(struct http_request *req, struct ctx *ctx)
{
	return (transition(req, ctx, TR_PAY, 0));
}

/* POST /api/orders/:id/fulfil {carrier?, tracking?} (admin): 200; 409 */
int
orders_fulfil(struct http_request *req, struct ctx *ctx)
{
	return (transition(req, ctx, TR_FULFIL, 0));
}

/*
 * POST /api/orders/:id/cancel {reason?} (its owner, or an admin): 200
 * order, its units back on sale; 403 not yours; 409 invalid_transition
 */
int
orders_cancel(struct http_request *req, struct ctx *ctx)
{
	return (transition(req, ctx, TR_CANCEL, 0));
}

/* POST /api/orders/:id/refund {reference} (admin): 200; 409 */
int
orders_refund(struct http_request *req, struct ctx *ctx)
{
	return (transition(req, ctx, TR_REFUND, 0));
}

/*
 * POST /api/orders/:id/test-payment (its owner or an admin; APP_ENV=
 * development only, for the storefront demo's button): the payment of
 * what is due, with reference "test-<id>".  200 order; 403
 * development_only elsewhere; 409 as a payment.
 */
int
orders_test_pay(struct http_request *req, struct ctx *ctx)
{
	return (transition(req, ctx, TR_PAY, 1));
}
