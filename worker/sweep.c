/*
 * sweep.c -- the sweeper: a thread of every worker process that ends
 * what a buyer or an order left waiting (docs/ARCHITECTURE.md, "Order
 * lifecycle").  Every SWEEP_INTERVAL_MS it:
 *   1. expires unpaid orders whose payBy has passed, up to
 *      LIFECYCLE_BATCH_MAX per transaction (shared/lifecycle.c), and
 *      returns their units to the stock gate (gate_return);
 *   2. returns to the gate the units of every cancelled or expired
 *      order still marked unitsBack "pending" LIFECYCLE_REPAIR_MS after
 *      its transition (its process died between MongoDB and Redis, or
 *      Redis was away), then marks them "done";
 *   3. visits each product's waitlist (shared/lua/protocol.lua, waitlist_tick):
 *      offers it the units a restock brought (returns are offered at
 *      once by gate_return), and fails out_of_stock the checkouts that
 *      waited WAITLIST_TTL_S or whose sale has ended;
 *   4. writes the process's heartbeat (batches and orders per second)
 *      and, first in each second, the ops console's sample.
 * Every worker runs one, so it survives restarts, and any number may run
 * at once: an expiry is a conditional update inside a transaction (two
 * sweepers conflict, the loser reruns and finds the order expired), and
 * gate_return counts an order's units once (its gate:back marker).  A
 * killed sweeper leaves either nothing done or a committed expiry whose
 * units the next pass returns: nothing is lost, nothing returned twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/lifecycle.h"
#include "../shared/log.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "handoff.h"
#include "worker.h"

#define REPAIR_MAX	512	/* orders one repair pass looks at */
#define WAITLIST_DUE_MAX	100	/* waits waitlist_tick ends at once */
#define HEARTBEAT_TTL_S	10	/* then a worker is not alive */

/* Up to max ids of orders matching q, oldest field first, into ids. */
static int
find_ids(struct consumer *c, const bson_t *q, const char *field,
    bson_oid_t *ids, int max)
{
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_t			*opts;
	int			 n;

	opts = BCON_NEW("sort", "{", field, BCON_INT32(1), "}", "limit",
	    BCON_INT64(max), "projection", "{", "_id", BCON_INT32(1), "}");
	coll = db_coll(c->mongo, DB_ORDERS);
	cur = mongoc_collection_find_with_opts(coll, q, opts, NULL);
	n = 0;
	while (n < max && mongoc_cursor_next(cur, &doc)) {
		if (bson_iter_init_find(&it, doc, "_id") &&
		    BSON_ITER_HOLDS_OID(&it))
			bson_oid_copy(bson_iter_oid(&it), &ids[n++]);
	}
	if (mongoc_cursor_error(cur, &berr)) {
		log_warn("sweeper: reading orders failed", "{s:s}", "error",
		    berr.message);
		n = -1;
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(opts);
	return (n);
}

/* Return the units of the changed items to the gate; 0, or -1. */
static int
give_back(struct consumer *c, const struct lc_item *items, int n)
{
	struct rargs	 a;
	redisReply	*r;
	int		 ret;

	rargs_fcall(&a, FN_GATE_RETURN, 2);
	rargs_add(&a, RK_STOCK);
	rargs_add(&a, RK_CATALOG);
	if (lifecycle_gate_args(&a, items, n) == 0) {
		rargs_free(&a);
		return (0);
	}
	r = rconn_persist(&c->rc, &a);
	rargs_free(&a);
	ret = r != NULL && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
	if (r != NULL)
		freeReplyObject(r);
	return (ret);
}

/*
 * The items whose units gate_return took (those with lines) are done:
 * nothing left to repair.  Others are left as they are (another
 * process's return may still be on its way).
 */
static void
mark_done(struct consumer *c, const struct lc_item *items, int n)
{
	mongoc_collection_t	*coll;
	bson_error_t		 berr;
	bson_t			 q, in, arr, *u;
	char			 key[16];
	int			 i, k;

	bson_init(&q);
	BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
	BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
	for (i = 0, k = 0; i < n; i++) {
		if (items[i].lines == NULL)
			continue;
		bson_snprintf(key, sizeof(key), "%d", k++);
		BSON_APPEND_OID(&arr, key, &items[i].id);
	}
	bson_append_array_end(&in, &arr);
	bson_append_document_end(&q, &in);
	BSON_APPEND_UTF8(&q, "unitsBack", UNITS_PENDING);
	u = BCON_NEW("$set", "{", "unitsBack", BCON_UTF8(UNITS_DONE), "}");
	coll = db_coll(c->mongo, DB_ORDERS);
	if (!mongoc_collection_update_many(coll, &q, u, NULL, NULL, &berr))
		log_warn("sweeper: marking returned units failed", "{s:s}",
		    "error", berr.message);
	mongoc_collection_destroy(coll);
	bson_destroy(&q);
	bson_destroy(u);
}

/* Step 1: expire what is due; how many expired, or -1. */
static int
expire_due(struct consumer *c)
{
	struct lc_request	 r;
	struct lc_item		 items[LIFECYCLE_BATCH_MAX];
	bson_oid_t		 ids[LIFECYCLE_BATCH_MAX];
	bson_t			*q;
	int			 i, n, expired;

	q = BCON_NEW("status", BCON_UTF8(OS_AWAITING), "payBy", "{", "$lte",
	    BCON_DATE_TIME(db_now_ms()), "}");
	n = find_ids(c, q, "payBy", ids, LIFECYCLE_BATCH_MAX);
	bson_destroy(q);
	if (n <= 0)
		return (n);
	memset(&r, 0, sizeof(r));
	memset(items, 0, sizeof(items));
	r.now = db_now_ms();
	r.items = items;
	r.n = n;
	for (i = 0; i < n; i++) {
		bson_oid_copy(&ids[i], &items[i].id);
		items[i].what = TR_EXPIRE;
		items[i].actor = "system";
		items[i].admin = 1;
	}
	if (lifecycle_apply(c->mongo, &r) == -1) {
		log_warn("sweeper: expiring orders failed", "{s:s}", "error",
		    r.error);
		return (-1);
	}
	for (i = 0, expired = 0; i < n; i++)
		expired += items[i].changed;
	if (expired > 0) {
		if (give_back(c, items, n) == 0)	/* else step 2 does it */
			mark_done(c, items, n);
		log_info("sweeper: orders expired", "{s:i, s:i}", "count",
		    expired, "runs", r.runs);
	}
	lifecycle_clear(&r);
	return (expired);
}

/*
 * Up to max orders whose units are back in MongoDB but not yet in the
 * gate since LIFECYCLE_REPAIR_MS, oldest first, as lc_items with their
 * buyer and lines (for gate_return), in one query; how many, or -1.
 */
static int
pending_items(struct consumer *c, struct lc_item *items, int max)
{
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_error_t		 berr;
	bson_t			*q, *opts;
	int			 k;

	q = BCON_NEW("unitsBack", BCON_UTF8(UNITS_PENDING), "updatedAt", "{",
	    "$lt", BCON_DATE_TIME(db_now_ms() - LIFECYCLE_REPAIR_MS), "}");
	opts = BCON_NEW("sort", "{", "updatedAt", BCON_INT32(1), "}", "limit",
	    BCON_INT64(max), "projection", "{", "userId", BCON_INT32(1),
	    "items", BCON_INT32(1), "}");
	coll = db_coll(c->mongo, DB_ORDERS);
	cur = mongoc_collection_find_with_opts(coll, q, opts, NULL);
	k = 0;
	while (k < max && mongoc_cursor_next(cur, &doc))
		lifecycle_item_of(doc, &items[k++]);
	if (mongoc_cursor_error(cur, &berr)) {
		log_warn("sweeper: reading orders failed", "{s:s}", "error",
		    berr.message);
		k = -1;
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(opts);
	bson_destroy(q);
	return (k);
}

/* Step 2: units back in MongoDB but not yet in the gate. */
static int
repair(struct consumer *c)
{
	struct lc_item	*items;
	int		 i, k;

	items = calloc(REPAIR_MAX, sizeof(*items));
	k = pending_items(c, items, REPAIR_MAX);
	if (k > 0 && give_back(c, items, k) == 0) {
		mark_done(c, items, k);
		log_info("sweeper: returned units repaired", "{s:i}", "count",
		    k);
	}
	for (i = 0; i < REPAIR_MAX; i++)
		free(items[i].lines);
	free(items);
	return (k);
}

/*
 * End the waitlisted checkouts r names from element k on (id, createdAt
 * pairs): failed out_of_stock.  How many it named.
 */
static int
waitlist_end(struct consumer *c, const redisReply *r, size_t k)
{
	struct rargs	 a;
	json_t		*err;
	char		*body;
	int		 n;

	rargs_fcall(&a, FN_WAITLIST_FAIL, 0);
	rargs_addf(&a, "%ld", cfg.checkout_final_ttl);
	rargs_add(&a, RK_EVENTS);
	err = protocol_failure(ERR_OUT_OF_STOCK, NULL);
	for (n = 0; k + 1 < r->elements; k += 2, n++) {
		body = protocol_body(r->element[k]->str, CK_FAILED,
		    r->element[k + 1]->str, NULL, err);
		rargs_add(&a, r->element[k]->str);
		rargs_add(&a, "");
		rargs_add(&a, body);
		free(body);
	}
	if (n > 0) {
		freeReplyObject(rconn_persist(&c->rc, &a));
		log_info("sweeper: waitlisted checkouts ended", "{s:i}",
		    "count", n);
	}
	json_decref(err);
	rargs_free(&a);
	return (n);
}

/*
 * One product's waitlist: served, and its ended waits failed, a hundred
 * at a time while there are more.  A missing counter is seeded first.
 */
static void
waitlist_visit(struct consumer *c, const char *product)
{
	redisReply	*r;
	char		 pid[1][25];
	int		 more, rounds;

	for (rounds = 0, more = 1; more && rounds < 100 &&
	    !stop_requested(); rounds++) {
		more = 0;
		r = rconn_cmd(&c->rc, "FCALL %s 0 %s %lld %lld", FN_WAITLIST_TICK,
		    product, (long long)db_now_ms(),
		    (long long)cfg.waitlist_ttl_s * 1000);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    r->elements > 0 &&
		    r->element[0]->type == REDIS_REPLY_STRING) {
			if (strcmp(r->element[0]->str, "seed") == 0) {
				memcpy(pid[0], product, 25);
				more = gate_seed(c, pid, 1) == 0;
			} else if (strcmp(r->element[0]->str, "ok") == 0) {
				more = waitlist_end(c, r, 2) == WAITLIST_DUE_MAX;
			}
		}
		if (r != NULL)
			freeReplyObject(r);
	}
}

/*
 * Step 3: each product's waitlist: served (units a restock brought, or
 * a return the gate could not take at once), and those whose wait is
 * over (WAITLIST_TTL_S, or the sale ended) failed out_of_stock.
 */
static void
waitlists(struct consumer *c)
{
	redisReply	*pids;
	size_t		 i;

	if ((pids = rconn_cmd(&c->rc, "SMEMBERS %s", RK_WAITLISTS)) == NULL)
		return;
	for (i = 0; pids->type == REDIS_REPLY_ARRAY && i < pids->elements;
	    i++) {
		if (pids->element[i]->type == REDIS_REPLY_STRING &&
		    strlen(pids->element[i]->str) == 24)
			waitlist_visit(c, pids->element[i]->str);
	}
	freeReplyObject(pids);
}

/*
 * Step 4: this process is alive (its heartbeat, with its batches and
 * orders per second and its product locks handed on), and the console's
 * sample of this second.
 */
static void
heartbeat(struct consumer *c, long *batches, long *orders, int64_t *at)
{
	long	b, o;
	int64_t	last, now;
	double	secs;

	batch_counts(&b, &o, &last);
	now = db_now_ms();
	secs = *at > 0 && now > *at ? (double)(now - *at) / 1000.0 : 1.0;
	freeReplyObject(rconn_cmd(&c->rc, "FCALL %s 0 %s worker %lld %ld %ld %lld "
	    "%.1f %.1f %d %ld", FN_HEARTBEAT, c->rc.name, (long long)now, b,
	    o, (long long)last, (double)(b - *batches) / secs,
	    (double)(o - *orders) / secs, HEARTBEAT_TTL_S, handoff_count()));
	freeReplyObject(rconn_cmd(&c->rc, "FCALL %s 2 %s %s %lld %s",
	    FN_HISTORY_TICK, RK_HISTORY, RK_STREAM, (long long)(now / 1000),
	    RK_GROUP));
	*batches = b;
	*orders = o;
	*at = now;
}

void *
sweep_main(void *arg)
{
	struct consumer	c;
	long		batches, orders;
	int64_t		at;

	memset(&c, 0, sizeof(c));
	snprintf(c.rc.name, sizeof(c.rc.name), "%.70s", (const char *)arg);
	c.mongo = mongoc_client_pool_pop(worker_mongo);
	batches = orders = 0;
	at = 0;
	while (!stop_requested()) {
		heartbeat(&c, &batches, &orders, &at);
		while (expire_due(&c) == LIFECYCLE_BATCH_MAX &&
		    !stop_requested())
			;
		repair(&c);
		waitlists(&c);
		stop_sleep_ms(cfg.sweep_ms);
	}
	rconn_drop(&c.rc);
	mongoc_client_pool_push(worker_mongo, c.mongo);
	return (NULL);
}
