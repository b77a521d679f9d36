/*
 * checkout.c -- one checkout job, from delivery to XACK.
 *
 * A job is {checkoutId, userId, rid, createdAt} on the checkout stream.
 * For each: take the user's lock, mark the checkout processing (and
 * publish), run the order transaction (order.c), record the result,
 * publish it and XACK, in one Lua script, so the job is acknowledged
 * only together with its durable result.  Then release the lock.
 *
 * Every step may be repeated safely, which is what makes redelivery
 * harmless: a job whose checkout is already final is only acknowledged;
 * the transaction recognises an order an earlier delivery committed (by
 * its unique checkoutId); recording a result never overwrites a final
 * one.  A database failure keeps the job and retries it with back-off
 * (renewing its claim so no other worker takes it meanwhile); a worker
 * told to stop leaves it pending for the others.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "../shared/validate.h"
#include "worker.h"

#define LOCK_WAIT_MS	2000	/* then the job goes to the back */
#define RETRY_MAX_MS	2000

struct job {
	const char	*msgid;
	char		 id[32];
	char		 user[32];
	char		 rid[64];
	char		 created[40];
	long		 deliveries;
	int		 first;		/* no delivery reached the order before */
	int64_t		 start;
};

/* KEYS: status hash.  ARGV: body, userId, channel. */
/*
 * KEYS: status hash.  ARGV: body, userId, channel.  Returns the final
 * status if there is one, "first" if no delivery got this far before,
 * else "again".
 */
static const char mark_lua[] =
    "local cur = redis.call('HGET', KEYS[1], 'status') "
    "if cur == 'completed' or cur == 'failed' then return cur end "
    "redis.call('HSET', KEYS[1], 'status', 'processing', 'body', ARGV[1], "
    "  'userId', ARGV[2]) "
    "redis.call('PUBLISH', ARGV[3], ARGV[1]) "
    "if cur == 'queued' then return 'first' end "
    "return 'again'";

/*
 * KEYS: status hash, stream, stats hash, stock version, dead stream,
 * the user's cart hint (dropped after an order: api/checkout.c).
 * ARGV: group, msgid, status, body, userId, ttl, channel, dead reason
 * (empty unless dead-lettered), checkoutId.  A final status is never
 * overwritten; the job is acknowledged either way.
 */
static const char finish_lua[] =
    "local cur = redis.call('HGET', KEYS[1], 'status') "
    "if cur ~= 'completed' and cur ~= 'failed' then "
    "  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'body', ARGV[4], "
    "    'userId', ARGV[5]) "
    "  redis.call('EXPIRE', KEYS[1], ARGV[6]) "
    "  redis.call('PUBLISH', ARGV[7], ARGV[4]) "
    "  redis.call('HINCRBY', KEYS[3], ARGV[3], 1) "
    "  if ARGV[3] == 'completed' then "
    "    redis.call('INCR', KEYS[4]) "
    "    redis.call('DEL', KEYS[6]) "
    "  end "
    "  if ARGV[8] ~= '' then "
    "    redis.call('XADD', KEYS[5], '*', 'msgid', ARGV[2], "
    "      'checkoutId', ARGV[9], 'userId', ARGV[5], 'reason', ARGV[8]) "
    "    redis.call('HINCRBY', KEYS[3], 'dead_lettered', 1) "
    "  end "
    "end "
    "redis.call('XACK', KEYS[2], ARGV[1], ARGV[2]) "
    "return cur or ''";

/* KEYS: stream.  ARGV: group, msgid, checkoutId, userId, rid, createdAt. */
static const char requeue_lua[] =
    "redis.call('XADD', KEYS[1], '*', 'checkoutId', ARGV[3], "
    "  'userId', ARGV[4], 'rid', ARGV[5], 'createdAt', ARGV[6]) "
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
    "return 1";

static const struct {
	const char	*code;
	const char	*message;
} failures[] = {
	{ "out_of_stock", "not enough stock of a product in the cart" },
	{ "product_unavailable", "a product in the cart no longer exists" },
	{ "cart_empty", "the cart is empty" },
	{ "internal", "the checkout could not be processed" },
};

/*
 * Run a command until Redis answers, reconnecting as needed; NULL only
 * when the worker is stopping.
 */
static redisReply *
persist(struct consumer *c, const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap, aq;

	va_start(ap, fmt);
	for (;;) {
		va_copy(aq, ap);
		r = worker_vcmd(c, fmt, aq);
		va_end(aq);
		if (r != NULL || worker_stopping)
			break;
		worker_sleep_ms(200);
	}
	va_end(ap);
	return (r);
}

/* The value of field name in a stream entry (borrowed), or "". */
const char *
checkout_field(const redisReply *entry, const char *name)
{
	const redisReply	*f = entry->element[1];
	size_t			 i;

	for (i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements;
	    i += 2) {
		if (strcmp(f->element[i]->str, name) == 0)
			return (f->element[i + 1]->str);
	}
	return ("");
}

/* The job's fields; -1 if one is missing or malformed. */
static int
parse(const redisReply *entry, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->msgid = entry->element[0]->str;
	snprintf(j->id, sizeof(j->id), "%s", checkout_field(entry,
	    "checkoutId"));
	snprintf(j->user, sizeof(j->user), "%s", checkout_field(entry,
	    "userId"));
	snprintf(j->rid, sizeof(j->rid), "%s", checkout_field(entry, "rid"));
	snprintf(j->created, sizeof(j->created), "%s", checkout_field(entry,
	    "createdAt"));
	return (validate_oid(j->id) && validate_oid(j->user) ? 0 : -1);
}

/* The public status body (new text): what GET /api/checkout/:id shows. */
static char *
body(const struct job *j, const char *status, json_t *order, json_t *error)
{
	json_t	*b;
	char	 now[40], *text;

	db_iso_time(db_now_ms(), now, sizeof(now));
	b = json_pack("{s:s, s:s, s:s, s:s}", "checkoutId", j->id, "status",
	    status, "createdAt", j->created, "updatedAt", now);
	if (order != NULL) {
		json_object_set(b, "orderId", json_object_get(order, "id"));
		json_object_set(b, "order", order);
	}
	if (error != NULL)
		json_object_set(b, "error", error);
	text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(15));
	json_decref(b);
	return (text);
}

static json_t *
failure(const char *code, const char *product)
{
	json_t	*e;
	size_t	 i;

	for (i = 0; i < sizeof(failures) / sizeof(failures[0]) - 1; i++) {
		if (strcmp(failures[i].code, code) == 0)
			break;
	}
	e = json_pack("{s:s, s:s}", "code", failures[i].code, "message",
	    failures[i].message);
	if (product != NULL && *product != '\0')
		json_object_set_new(e, "productId", json_string(product));
	return (e);
}

/*
 * Record status and body, publish, XACK, in one script; reason non-empty
 * also dead-letters the job.  Returns the status it found (static), or
 * NULL if the worker stopped before Redis answered.
 */
static const char *
finish(struct consumer *c, const struct job *j, const char *status,
    const char *text, const char *reason)
{
	redisReply	*r;
	const char	*was;

	r = persist(c, "EVAL %s 6 %s%s %s %s %s %s %s%s %s %s %s %s %s %ld %s "
	    "%s %s", finish_lua, RK_CHECKOUT, j->id, RK_STREAM, RK_STATS,
	    RK_STOCK, RK_DEAD, RK_CART_LINES, j->user, RK_GROUP, j->msgid,
	    status, text, j->user,
	    cfg.checkout_ttl, RK_EVENTS, reason, j->id);
	if (r == NULL)
		return (NULL);
	was = "";
	if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "completed") == 0)
		was = "completed";
	else if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "failed") == 0)
		was = "failed";
	else if (r->type == REDIS_REPLY_ERROR)
		log_error("worker: finish script failed", "{s:s, s:s}", "rid",
		    j->rid, "error", r->str);
	freeReplyObject(r);
	return (was);
}

/*
 * Dead-letter a job that cannot be processed: its checkout becomes
 * failed with code "internal" and the job goes to the dead-letter stream.
 */
void
reclaim_dead_letter(struct consumer *c, const char *msgid,
    const char *checkout_id, const char *user_id, const char *reason)
{
	struct job	 j;
	json_t		*e;
	char		*text;

	memset(&j, 0, sizeof(j));
	j.msgid = msgid;
	snprintf(j.id, sizeof(j.id), "%s", checkout_id);
	snprintf(j.user, sizeof(j.user), "%s", user_id);
	e = failure("internal", NULL);
	text = body(&j, "failed", NULL, e);
	(void)finish(c, &j, "failed", text, reason);
	log_error("worker: job dead-lettered", "{s:s, s:s, s:s}", "msgid",
	    msgid, "checkoutId", checkout_id, "reason", reason);
	free(text);
	json_decref(e);
}

/*
 * Take the user's lock, waiting up to LOCK_WAIT_MS.  1 taken; 0 the job
 * was sent to the back of the stream instead; -1 stopping.
 */
static int
lock_wait(struct consumer *c, const struct job *j, const char *token)
{
	redisReply	*r;
	int64_t		 until;
	int		 got, counted;

	until = db_now_ms() + LOCK_WAIT_MS;
	counted = 0;
	while ((got = lock_take(c, j->user, token)) != 1) {
		if (worker_stopping)
			return (-1);
		if (got == 0 && !counted++)
			freeReplyObject(worker_cmd(c, "HINCRBY %s lock_contention "
			    "1", RK_STATS));
		if (got == 0 && db_now_ms() > until) {
			r = persist(c, "EVAL %s 1 %s %s %s %s %s %s %s",
			    requeue_lua, RK_STREAM, RK_GROUP, j->msgid, j->id,
			    j->user, j->rid, j->created);
			if (r != NULL)
				freeReplyObject(r);
			log_info("worker: user busy, job requeued", "{s:s, s:s}",
			    "rid", j->rid, "checkoutId", j->id);
			return (0);
		}
		worker_sleep_ms(got == -1 ? 200 : 20);
	}
	return (1);
}

/* Run the transaction until it has an answer; 0, or -1 if stopping. */
static int
place(struct consumer *c, const struct job *j, struct order_result *res)
{
	redisReply	*r;
	long		 wait;
	int		 tries;

	for (tries = 0, wait = 100;; tries++) {
		/* After a failed try the order may have committed after all. */
		order_place(c, j->id, j->user, j->first && tries == 0, res);
		if (res->outcome != ORDER_RETRY)
			return (0);
		log_warn("worker: database failed, retrying", "{s:s, s:s, s:s}",
		    "rid", j->rid, "checkoutId", j->id, "error", res->detail);
		if (worker_stopping)
			return (-1);
		worker_sleep_ms(wait);
		wait = wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait * 2;
		/* Renew the claim: the job is being worked on. */
		if ((r = worker_cmd(c, "XCLAIM %s %s %s 0 %s JUSTID", RK_STREAM,
		    RK_GROUP, c->name, j->msgid)) != NULL)
			freeReplyObject(r);
	}
}

static void
log_done(struct consumer *c, const struct job *j, const char *status,
    const struct order_result *res)
{
	log_info("checkout", "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, "
	    "s:i}",
	    "rid", j->rid, "checkoutId", j->id, "userId", j->user,
	    "consumer", c->name, "status", status, "code",
	    res->code != NULL ? res->code : "", "ms",
	    (json_int_t)(db_now_ms() - j->start), "deliveries",
	    (json_int_t)j->deliveries, "attempts", res->attempts,
	    "productLocks", res->locked);
}

/* Mark processing; 1 if the checkout is already final (just ack). */
static int
mark(struct consumer *c, struct job *j)
{
	redisReply	*r;
	char		*text;
	int		 final;

	text = body(j, "processing", NULL, NULL);
	r = persist(c, "EVAL %s 1 %s%s %s %s %s", mark_lua, RK_CHECKOUT, j->id,
	    text, j->user, RK_EVENTS);
	free(text);
	if (r == NULL)
		return (-1);
	final = r->type == REDIS_REPLY_STRING &&
	    (strcmp(r->str, "completed") == 0 || strcmp(r->str, "failed") == 0);
	j->first = r->type == REDIS_REPLY_STRING && strcmp(r->str, "first") == 0;
	freeReplyObject(r);
	return (final);
}

static void
run(struct consumer *c, struct job *j)
{
	struct order_result	 res;
	json_t			*err;
	const char		*status;
	char			*text;

	memset(&res, 0, sizeof(res));
	if (place(c, j, &res) == -1)
		return;
	err = NULL;
	status = "completed";
	if (res.outcome == ORDER_FAILED) {
		status = "failed";
		err = failure(res.code, res.product);
	}
	text = body(j, status, res.order, err);
	if (finish(c, j, status, text, "") != NULL)
		log_done(c, j, status, &res);
	free(text);
	json_decref(err);
	json_decref(res.order);
}

void
checkout_job(struct consumer *c, const redisReply *entry, long deliveries)
{
	struct job	j;
	char		token[40];
	int		r;

	if (parse(entry, &j) == -1) {
		reclaim_dead_letter(c, j.msgid, j.id, j.user, "malformed job");
		return;
	}
	j.deliveries = deliveries;
	j.start = db_now_ms();
	lock_token(token, sizeof(token));
	if (lock_wait(c, &j, token) != 1)
		return;
	if ((r = mark(c, &j)) == 1)
		(void)finish(c, &j, "completed", "", "");	/* just XACK */
	else if (r == 0)
		run(c, &j);
	lock_release(c, j.user, token);
}
