/*
 * batch.c -- a batch of checkout jobs, from delivery to XACK.
 *
 * A consumer hands batch_run() what one XREADGROUP gave it: one job
 * on an idle system, up to BATCH_MAX under load.  For the batch:
 *   1. take every user's lock and mark each checkout processing (and
 *      publish), in one call (the library's batch_begin); a job whose
 *      user is busy, or has an earlier job in the batch, runs on its
 *      own afterwards, waiting for the lock up to LOCK_WAIT_MS, then
 *      goes to the back of the stream; a checkout that is final already
 *      is only acknowledged;
 *   2. a job delivered before: look for its order (batch_txn.c) — if it
 *      exists the checkout completed, whatever happens next;
 *   3. reserve the lines in the stock gate (gate.c): what it refuses
 *      fails with no MongoDB operation;
 *   4. take the locks of the batch's products, then place the rest in
 *      one transaction (batch_txn.c), retrying with back-off while the
 *      database fails (the claims are renewed meanwhile so that no
 *      other worker takes the jobs); what the transaction failed is
 *      looked for once more by checkoutId, in case another delivery
 *      of the same checkout placed it meanwhile;
 *   5. record each result, publish it, settle its reservation, XACK it
 *      and release its user's lock, all in one call (batch_finish): a
 *      job is acknowledged only together with its result.
 * Every step may be repeated safely, which is what makes redelivery
 * harmless: a final status is never overwritten, a reservation is made
 * once per checkout, and an order is found by its unique checkoutId
 * before anything is reported.  A checkout whose commit's outcome was
 * not known (a lost connection, a restarted database) is looked up
 * before it is reported, so no buyer is told "failed" while an order
 * exists for their checkout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/order_json.h"
#include "../shared/proc.h"
#include "../shared/redis.h"
#include "../shared/validate.h"
#include "batch_txn.h"
#include "worker.h"

#define LOCK_WAIT_MS	2000	/* then the job goes to the back */
#define LOCK_POLL_MS	20
#define RETRY_FIRST_MS	100
#define RETRY_MAX_MS	2000

/* This process's counts, for its heartbeat (batch_counts). */
static _Atomic long	counted_batches;
static _Atomic long	counted_orders;
static _Atomic int64_t	last_batch_at;

/* The product locks of one transaction. */
struct plocks {
	struct consumer	*c;
	char		 token[40];
	char		(*ids)[25];	/* owned */
	int		 n;
	int		 held;		/* taken */
	struct job	**jobs;		/* the batch, renewed on each rerun */
	int		 njobs;
};

/* ----- jobs ----- */

/* The value of field name in a stream entry (borrowed), or "". */
const char *
job_field(const redisReply *entry, const char *name)
{
	const redisReply	*f;
	size_t			 i;

	if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2)
		return ("");
	f = entry->element[1];
	for (i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements;
	    i += 2) {
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, name) == 0)
			return (f->element[i + 1]->str);
	}
	return ("");
}

/* The job of a stream entry; -1 if its ids are missing or malformed. */
int
job_parse(const redisReply *entry, struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->deliveries = -1;
	j->start = db_now_ms();
	if (entry->type == REDIS_REPLY_ARRAY && entry->elements >= 1 &&
	    entry->element[0]->type == REDIS_REPLY_STRING)
		snprintf(j->msgid, sizeof(j->msgid), "%s",
		    entry->element[0]->str);
	snprintf(j->id, sizeof(j->id), "%s", job_field(entry,
	    "checkoutId"));
	snprintf(j->user, sizeof(j->user), "%s", job_field(entry,
	    "userId"));
	snprintf(j->rid, sizeof(j->rid), "%s", job_field(entry, "rid"));
	snprintf(j->created, sizeof(j->created), "%s", job_field(entry,
	    "createdAt"));
	if (validate_iso_time(j->created, &j->at) == -1)
		j->at = j->start;
	j->lines = strdup(job_field(entry, "lines"));
	j->waitlist = strcmp(job_field(entry, "waitlist"), "1") == 0;
	j->replay = strcmp(job_field(entry, "replay"), "1") == 0;
	/* Bad lines only cost the gate: the transaction reads the cart. */
	if (j->lines == NULL || protocol_lines_parse(j->lines, &j->want) == -1)
		memset(&j->want, 0, sizeof(j->want));
	return (validate_oid(j->id) && validate_oid(j->user) ? 0 : -1);
}

void
job_clear(struct job *j)
{
	free(j->lines);
	j->lines = NULL;
	carts_free(&j->want);
	if (j->order != NULL)
		bson_destroy(j->order);
	j->order = NULL;
}

static int
open_job(const struct job *j)
{
	return (!j->ack_only && j->state == CK_UNKNOWN);
}

/* ----- Redis steps ----- */

/*
 * Can batch_begin finish j if the gate refuses it (one line; not
 * waitlisted, a replay or a dead letter: those take the long way)?
 */
static int
finishable(const struct job *j)
{
	return (j->want.n == 1 && !j->waitlist && !j->replay &&
	    j->dead == NULL);
}

/* The out_of_stock error of a product, made once for the jobs of a
 * batch that order it rather than once a job. */
struct refusal {
	char	 product[25];
	json_t	*err;
};

static json_t *
refusal_of(struct refusal *r, const char *product)
{
	if (r->err == NULL || strcmp(r->product, product) != 0) {
		json_decref(r->err);
		r->err = protocol_failure(ERR_OUT_OF_STOCK, product);
		snprintf(r->product, sizeof(r->product), "%s", product);
	}
	return (r->err);
}

/* batch_begin's eight arguments for job j (a new lock token). */
static void
begin_args(struct rargs *a, struct job *j, struct refusal *r)
{
	char	*body, hex[25];

	lock_token(j->token, sizeof(j->token));
	body = protocol_body(j->id, CK_PROCESSING, j->created, NULL, NULL);
	rargs_add(a, j->id);
	rargs_add(a, j->user);
	rargs_add(a, j->token);
	rargs_add(a, body);
	free(body);
	rargs_add(a, j->msgid);
	rargs_addf(a, "%lld", (long long)j->at);
	if (!finishable(j)) {
		rargs_add(a, "");
		rargs_add(a, "");
		return;
	}
	db_oid_hex(&j->want.lines[0].product, hex);
	rargs_addf(a, "%s:%lld", hex, (long long)j->want.lines[0].quantity);
	body = protocol_body(j->id, CK_FAILED, j->created, NULL,
	    refusal_of(r, hex));
	rargs_add(a, body);
	free(body);
}

/* batch_begin finished j: failed out_of_stock by the gate, acked. */
static void
finished_by_begin(struct job *j)
{
	j->finished = 1;
	j->state = CK_FAILED;
	j->code = ERR_OUT_OF_STOCK;
	j->by_gate = 1;
	db_oid_hex(&j->want.lines[0].product, j->product);
}

/*
 * Step 1: lock and mark jobs (batch_begin), finishing there the first
 * deliveries the gate refuses.  Each job's locked, first, ack_only and
 * finished say what it got.  0, or -1 if the worker is stopping.
 */
static int
begin(struct consumer *c, struct job **jobs, int n)
{
	struct rargs	 a;
	struct refusal	 refusal = { "", NULL };
	redisReply	*r, *e;
	int		 i, ret;

	rargs_fcall(&a, FN_BEGIN, 2);
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, RK_STATS);
	rargs_addf(&a, "%ld", cfg.lock_ttl_ms);
	rargs_add(&a, RK_EVENTS);
	rargs_add(&a, RK_GROUP);
	rargs_addf(&a, "%ld", cfg.checkout_final_ttl);
	for (i = 0; i < n; i++)
		begin_args(&a, jobs[i], &refusal);
	json_decref(refusal.err);
	/* Durable: it may record results and acknowledge their jobs. */
	r = rconn_persist_durable(&c->rc, &a);
	rargs_free(&a);
	ret = r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    (int)r->elements == n ? 0 : -1;
	for (i = 0; ret == 0 && i < n; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_STRING ||
		    strcmp(e->str, "busy") == 0)
			continue;
		if (strcmp(e->str, "refused") == 0) {
			finished_by_begin(jobs[i]);
			continue;
		}
		jobs[i]->locked = 1;
		jobs[i]->ack_only = protocol_rank(protocol_state(e->str)) ==
		    RANK_FINAL;
		jobs[i]->first = strcmp(e->str, "first") == 0;
	}
	if (r != NULL && ret == -1 && r->type == REDIS_REPLY_ERROR)
		log_error("worker: batch_begin failed", "{s:s}", "error",
		    r->str);
	if (r != NULL)
		freeReplyObject(r);
	return (r == NULL ? -1 : 0);
}

/* The error object of failed job j, with what its code needs. */
static json_t *
failure(const struct job *j)
{
	json_t	*err;
	char	 when[32];

	err = protocol_failure(j->code, j->product);
	if (j->code == ERR_LIMIT_EXCEEDED) {
		json_object_set_new(err, "limit", json_integer(j->limit));
		json_object_set_new(err, "held", json_integer(j->held));
	} else if (j->code == ERR_SALE_NOT_STARTED && j->starts > 0) {
		proc_iso_time(j->starts, when, sizeof(when));
		json_object_set_new(err, "startsAt", json_string(when));
	}
	return (err);
}

/* Out of stock, and its buyer asked to wait for returned units. */
static int
waitlisted(const struct job *j)
{
	return (j->state == CK_FAILED && j->code == ERR_OUT_OF_STOCK &&
	    j->waitlist && j->dead == NULL && j->product[0] != '\0');
}

/* batch_finish's ten arguments for job j. */
static void
finish_args(struct rargs *a, struct job *j)
{
	json_t	*err;
	char	*body, *lines;

	err = NULL;
	if (waitlisted(j))
		j->state = CK_WAITLISTED;
	if (j->state == CK_FAILED)
		err = failure(j);
	body = j->ack_only || j->state == CK_UNKNOWN ? strdup("") :
	    protocol_body(j->id, j->state, j->created, j->order, err);
	lines = j->state == CK_COMPLETED ? orders_lines(j->order) :
	    strdup(j->state == CK_WAITLISTED && j->lines != NULL ? j->lines :
	    "");
	rargs_add(a, j->msgid);
	rargs_add(a, j->id);
	rargs_add(a, j->user);
	rargs_add(a, j->ack_only ? "" : protocol_state_name(j->state));
	rargs_add(a, body);
	rargs_add(a, j->dead != NULL ? j->dead : "");
	rargs_add(a, lines);
	rargs_add(a, j->locked ? j->token : "");
	rargs_addf(a, "%ld", j->deliveries);
	if (j->state == CK_WAITLISTED)
		rargs_addf(a, "%s|%s", j->product, j->created);
	else
		rargs_add(a, "");
	free(body);
	free(lines);
	json_decref(err);
}

/* moved: another consumer holds the job now; this one wrote nothing. */
static void
log_done(struct consumer *c, const struct job *j, int batch, int moved)
{
	const struct log_field	f[] = {
		LOG_F_STR("rid", j->rid), LOG_F_STR("checkoutId", j->id),
		LOG_F_STR("userId", j->user), LOG_F_STR("consumer", c->rc.name),
		LOG_F_STR("status", moved ? "moved" : j->ack_only ? "acked" :
		    protocol_state_name(j->state)),
		LOG_F_STR("code", !moved && j->state == CK_FAILED ?
		    err_info(j->code)->code : ""),
		LOG_F_INT("ms", db_now_ms() - j->start),
		LOG_F_INT("deliveries", j->deliveries),
		LOG_F_INT("attempts", j->attempts), LOG_F_INT("batch", batch),
		LOG_F_BOOL("gate", j->by_gate)
	};

	/* A line per checkout: printed, not built with jansson. */
	log_fields(LOG_LVL_INFO, "checkout", f, sizeof(f) / sizeof(f[0]));
	if (j->dead != NULL)
		log_error("worker: job dead-lettered", "{s:s, s:s, s:s}",
		    "msgid", j->msgid, "checkoutId", j->id, "reason", j->dead);
}

/* Count a batch this process finished, for its heartbeat. */
static void
count_batch(struct job **jobs, int n)
{
	int	i;

	counted_batches++;
	for (i = 0; i < n; i++)
		counted_orders += jobs[i]->state == CK_COMPLETED &&
		    !jobs[i]->ack_only;
	last_batch_at = db_now_ms();
}

/*
 * Log the jobs of jobs[0..n) that batch_begin finished (their line
 * each, as finish_all would), counting them as a batch of their own.
 */
static void
log_finished(struct consumer *c, struct job **jobs, int n)
{
	int	i, k;

	for (i = 0, k = 0; i < n; i++) {
		if (jobs[i]->finished) {
			log_done(c, jobs[i], n, 0);
			k++;
		}
	}
	if (k > 0)
		count_batch(jobs, 0);
}

/*
 * Step 5: record every result, settle, XACK and unlock, in one call,
 * counting the batch; then log.  Nothing is logged if the worker stopped
 * before Redis answered: the jobs stay pending and are reclaimed.
 */
static void
finish_all(struct consumer *c, struct job **jobs, int n)
{
	static const int	 sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128 };
	struct rargs		 a;
	redisReply		*r;
	size_t			 k;
	int			 i, refused;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]) - 1 &&
	    n > sizes[k]; k++)
		;
	for (i = 0, refused = 0; i < n; i++)
		refused += jobs[i]->by_gate;
	rargs_fcall(&a, FN_FINISH, 4);
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, RK_STATS);
	rargs_add(&a, RK_STOCK);
	rargs_add(&a, RK_DEAD);
	rargs_add(&a, RK_GROUP);
	rargs_addf(&a, "%ld", cfg.checkout_final_ttl);
	rargs_add(&a, RK_EVENTS);
	rargs_addf(&a, "%d", n);
	rargs_addf(&a, "batch_le_%d", sizes[k]);
	rargs_addf(&a, "%d", refused);
	rargs_add(&a, c->rc.name);
	rargs_addf(&a, "%ld", cfg.checkout_ttl);
	for (i = 0; i < n; i++)
		finish_args(&a, jobs[i]);
	if ((r = rconn_persist_durable(&c->rc, &a)) != NULL) {
		if (r->type == REDIS_REPLY_ERROR)
			log_error("worker: finishing failed", "{s:s}", "error",
			    r->str);
		else
			for (i = 0; i < n; i++)
				log_done(c, jobs[i], n, r->type ==
				    REDIS_REPLY_ARRAY && (size_t)i < r->elements &&
				    r->element[i]->type == REDIS_REPLY_STRING &&
				    strcmp(r->element[i]->str, "moved") == 0);
		freeReplyObject(r);
		count_batch(jobs, n);
	}
	rargs_free(&a);
	for (i = 0; i < n; i++)
		jobs[i]->locked = 0;
}

void
batch_counts(long *batches, long *orders, int64_t *last)
{
	*batches = counted_batches;
	*orders = counted_orders;
	*last = last_batch_at;
}

static void
renew(struct consumer *c, struct job **jobs, int n, const struct plocks *l)
{
	int	held = l != NULL && l->held;

	keep_renew(c, c->rc.name, jobs, n, held ? l->ids : NULL,
	    held ? l->n : 0, held ? l->token : NULL);
}

/*
 * Wait after a failure: back-off doubling to RETRY_MAX_MS, claims
 * renewed.  -1 if the worker is stopping (leave the jobs pending).
 */
static int
back_off(struct consumer *c, struct job **jobs, int n, long *wait,
    const char *what, const char *error)
{
	log_warn("worker: retrying", "{s:s, s:s, s:i}", "step", what,
	    "error", error, "batch", n);
	if (stop_requested())
		return (-1);
	stop_sleep_ms(*wait);
	*wait = *wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : *wait * 2;
	renew(c, jobs, n, NULL);
	return (stop_requested() ? -1 : 0);
}

/* ----- MongoDB steps ----- */

/* The order requests for the jobs want() picks; map[k]: request k's job. */
static int
requests(struct job **jobs, int n, int (*want)(const struct job *),
    struct order_req *reqs, int *map)
{
	int	i, k;

	for (i = 0, k = 0; i < n; i++) {
		if (!want(jobs[i]))
			continue;
		memset(&reqs[k], 0, sizeof(reqs[k]));
		reqs[k].checkout_id = jobs[i]->id;
		reqs[k].at = jobs[i]->at;
		reqs[k].exact = jobs[i]->replay ? &jobs[i]->want : NULL;
		db_oid_parse(jobs[i]->user, &reqs[k].user);
		map[k++] = i;
	}
	return (k);
}

/* Copy what a request decided to its job (the order is moved). */
static void
take_result(struct job *j, struct order_req *r)
{
	if (r->state == CK_UNKNOWN)
		return;
	j->state = r->state;
	if (j->order != NULL)
		bson_destroy(j->order);
	j->order = r->doc;
	r->doc = NULL;
	j->code = r->code;
	j->limit = r->limit;
	j->held = r->held;
	j->starts = r->starts;
	if (r->has_product)
		db_oid_hex(&r->product, j->product);
}

static int
delivered_before(const struct job *j)
{
	return (open_job(j) && (!j->first || j->dead != NULL));
}

/*
 * A job the order transaction failed.  Another delivery of the same
 * checkout (its worker taken for dead, its user lock expired) may have
 * placed the order meanwhile, so that this one found the cart emptied
 * or the stock taken by that very order: it is looked for once more.
 */
static int
failed_in_order(const struct job *j)
{
	return (!j->ack_only && j->state == CK_FAILED && !j->by_gate &&
	    j->dead == NULL);
}

/*
 * Find the orders of the jobs want picks (by checkoutId) and complete
 * those jobs with them; -1 if stopping.
 */
static int
find_existing(struct consumer *c, struct job **jobs, int n,
    int (*want)(const struct job *))
{
	struct order_req	*reqs;
	char			 err[512];
	long			 wait;
	int			*map, k, i, ret;

	reqs = calloc((size_t)n, sizeof(*reqs));
	map = calloc((size_t)n, sizeof(*map));
	ret = 0;
	if ((k = requests(jobs, n, want, reqs, map)) > 0) {
		wait = RETRY_FIRST_MS;
		while ((ret = order_find_existing(c->mongo, reqs, k, err,
		    sizeof(err))) == -1 && (ret = back_off(c, jobs, n, &wait,
		    "find", err)) == 0)
			;
		for (i = 0; ret == 0 && i < k; i++)
			take_result(jobs[map[i]], &reqs[i]);
	}
	for (i = 0; i < k; i++)
		order_req_clear(&reqs[i]);
	free(reqs);
	free(map);
	return (ret);
}

/* Add pid to l's products, once. */
static void
plocks_add(struct plocks *l, const char *pid, int max)
{
	int	i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->ids[i], pid) == 0)
			return;
	}
	if (l->n < max)
		memcpy(l->ids[l->n++], pid, 25);
}

/* Step 4a: the locks of the products the open jobs will order. */
static void
plocks_take(struct plocks *l, struct job **jobs, int n)
{
	char	hex[25];
	int	i, k, max;

	for (i = 0, max = 0; i < n; i++)
		max += open_job(jobs[i]) ? jobs[i]->want.n : 0;
	if (max == 0)
		return;
	l->ids = calloc((size_t)max, sizeof(*l->ids));
	for (i = 0; i < n; i++) {
		for (k = 0; open_job(jobs[i]) && k < jobs[i]->want.n; k++) {
			db_oid_hex(&jobs[i]->want.lines[k].product, hex);
			plocks_add(l, hex, max);
		}
	}
	lock_token(l->token, sizeof(l->token));
	l->held = lock_products(l->c, l->ids, l->n, l->token,
	    sizeof(l->token));
}

static void
plocks_release(struct plocks *l)
{
	if (l->held)
		unlock_products(l->c, l->ids, l->n, l->token);
	free(l->ids);
	memset(l, 0, sizeof(*l));
}

/*
 * The transaction runs again (a write conflict, a transient error): renew
 * the batch's claims and locks, so that however often it reruns no job
 * is taken by another worker meanwhile; without the product locks (it
 * orders a product the jobs' lines did not name, or the locks timed
 * out), take those of every product it orders first.
 */
static void
on_rerun(void *arg, char (*pids)[25], int n)
{
	struct plocks	*l = arg;

	renew(l->c, l->jobs, l->njobs, l);
	if (l->held)
		return;
	free(l->ids);
	l->ids = calloc((size_t)n, sizeof(*l->ids));
	memcpy(l->ids, pids, (size_t)n * sizeof(*l->ids));
	l->n = n;
	lock_token(l->token, sizeof(l->token));
	l->held = lock_products(l->c, l->ids, l->n, l->token,
	    sizeof(l->token));
}

/* Run the batch transaction until the database answers. */
static int
place_all(struct consumer *c, struct job **jobs, int n,
    struct order_req *reqs, int k, struct plocks *l, int *runs)
{
	struct order_batch	b;
	long			wait;
	int			tries, ret;

	memset(&b, 0, sizeof(b));
	b.reqs = reqs;
	b.n = k;
	b.on_rerun = on_rerun;
	b.arg = l;
	wait = RETRY_FIRST_MS;
	for (tries = 0;; tries++) {
		/* After a failed try the orders may have committed after all. */
		b.look_first = tries > 0;
		if ((ret = order_batch_place(c->mongo, &b)) == 0)
			break;
		if (back_off(c, jobs, n, &wait, "order", b.error) == -1)
			break;
	}
	*runs = b.runs;
	return (ret);
}

/*
 * Step 4: the open jobs in one transaction.  MongoDB refused what the
 * gate admitted: that product's counter is dropped and seeded again.
 */
static int
place(struct consumer *c, struct job **jobs, int n)
{
	struct order_req	*reqs;
	struct plocks		 l;
	int			*map, k, i, ret, runs;

	reqs = calloc((size_t)n, sizeof(*reqs));
	map = calloc((size_t)n, sizeof(*map));
	memset(&l, 0, sizeof(l));
	l.c = c;
	l.jobs = jobs;
	l.njobs = n;
	ret = 0;
	runs = 0;
	if ((k = requests(jobs, n, open_job, reqs, map)) > 0) {
		plocks_take(&l, jobs, n);
		keep_begin(c, jobs, n);
		ret = place_all(c, jobs, n, reqs, k, &l, &runs);
		keep_end(c);
	}
	plocks_release(&l);
	for (i = 0; ret == 0 && i < k; i++) {
		jobs[map[i]]->attempts = runs;
		take_result(jobs[map[i]], &reqs[i]);
		if (jobs[map[i]]->code == ERR_OUT_OF_STOCK &&
		    !jobs[map[i]]->by_gate)
			gate_forget(c, jobs[map[i]]->product);
		if (jobs[map[i]]->code == ERR_LIMIT_EXCEEDED)
			gate_user_set(c, jobs[map[i]]);
	}
	for (i = 0; i < k; i++)
		order_req_clear(&reqs[i]);
	free(reqs);
	free(map);
	return (ret);
}

/* ----- the batch ----- */

/* Steps 2-5 for jobs whose users' locks are held. */
static void
run_locked(struct consumer *c, struct job **jobs, int n)
{
	long	wait;
	int	i;

	/* Step 2: the orders of jobs delivered before. */
	if (find_existing(c, jobs, n, delivered_before) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (open_job(jobs[i]) && jobs[i]->dead != NULL) {
			jobs[i]->state = CK_FAILED;
			jobs[i]->code = ERR_INTERNAL;
		}
	}
	wait = RETRY_FIRST_MS;
	while (gate_reserve(c, jobs, n) == -1) {
		if (back_off(c, jobs, n, &wait, "gate", "reserving stock "
		    "failed (Redis, or MongoDB while seeding)") == -1)
			return;
	}
	if (place(c, jobs, n) == -1)
		return;
	/* Never report failed while an order exists for the checkout. */
	if (find_existing(c, jobs, n, failed_in_order) == -1)
		return;
	finish_all(c, jobs, n);
}

/* Put j at the back of the stream: its user is busy. */
static void
requeue(struct consumer *c, struct job *j)
{
	struct rargs	 a;

	rargs_fcall(&a, FN_REQUEUE, 1);
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, RK_GROUP);
	rargs_add(&a, j->msgid);
	rargs_add(&a, j->id);
	rargs_add(&a, j->user);
	rargs_add(&a, j->rid);
	rargs_add(&a, j->created);
	rargs_add(&a, j->lines != NULL ? j->lines : "");
	rargs_add(&a, j->waitlist ? "1" : "");
	freeReplyObject(rconn_persist(&c->rc, &a));
	rargs_free(&a);
	log_info("worker: user busy, job requeued", "{s:s, s:s}", "rid",
	    j->rid, "checkoutId", j->id);
}

/*
 * Begin j alone, waiting for its user's lock up to LOCK_WAIT_MS.  1 it
 * has it; 0 the job was sent to the back of the stream instead (or, a
 * dead letter, left pending); -1 stopping.
 */
static int
begin_waiting(struct consumer *c, struct job *j)
{
	int64_t	until;
	int	counted;

	until = db_now_ms() + LOCK_WAIT_MS;
	counted = 0;
	for (;;) {
		if (begin(c, &j, 1) == -1 || stop_requested())
			return (-1);
		if (j->finished) {
			log_finished(c, &j, 1);
			return (0);
		}
		if (j->locked)
			return (1);
		if (!counted++)
			freeReplyObject(rconn_cmd(&c->rc, "HINCRBY %s lock_contention "
			    "1", RK_STATS));
		if (db_now_ms() > until) {
			/* A dead letter stays pending: requeueing it would
			 * reset its delivery count. */
			if (j->dead == NULL)
				requeue(c, j);
			return (0);
		}
		stop_sleep_ms(LOCK_POLL_MS);
	}
}

/* Jobs without valid ids cannot be locked or ordered: dead letters. */
static int
malformed(struct consumer *c, struct job **jobs, int n)
{
	struct job	*bad[1];
	int		 i, k;

	for (i = 0, k = 0; i < n; i++) {
		if (validate_oid(jobs[i]->id) && validate_oid(jobs[i]->user)) {
			jobs[k++] = jobs[i];
			continue;
		}
		jobs[i]->state = CK_FAILED;
		jobs[i]->code = ERR_INTERNAL;
		jobs[i]->dead = "malformed job";
		bad[0] = jobs[i];
		finish_all(c, bad, 1);
	}
	return (k);
}

/* Does an earlier job of the batch have the same user? */
static int
user_seen(struct job **jobs, int i)
{
	int	k;

	for (k = 0; k < i; k++) {
		if (strcmp(jobs[k]->user, jobs[i]->user) == 0)
			return (1);
	}
	return (0);
}

/*
 * Run jobs[0..n) (the entries of one read, in stream order) through
 * every step.  Jobs whose user is busy, or has an earlier job here, run
 * one by one afterwards.
 */
void
batch_run(struct consumer *c, struct job *all, int n)
{
	struct job	**jobs, **now, **later;
	int		  i, nnow, nlater;

	jobs = calloc((size_t)n, sizeof(*jobs));
	now = calloc((size_t)n, sizeof(*now));
	later = calloc((size_t)n, sizeof(*later));
	for (i = 0; i < n; i++)
		jobs[i] = &all[i];
	n = malformed(c, jobs, n);
	for (i = 0, nnow = 0, nlater = 0; i < n; i++) {
		if (user_seen(jobs, i))
			later[nlater++] = jobs[i];
		else
			now[nnow++] = jobs[i];
	}
	if (nnow > 0 && begin(c, now, nnow) == 0) {
		log_finished(c, now, nnow);
		for (i = 0, n = 0; i < nnow; i++) {
			if (now[i]->locked)
				now[n++] = now[i];
			else if (!now[i]->finished)
				later[nlater++] = now[i];
		}
		if (n > 0)
			run_locked(c, now, n);
	}
	for (i = 0; i < nlater && !stop_requested(); i++) {
		if (begin_waiting(c, later[i]) == 1)
			run_locked(c, &later[i], 1);
	}
	free(jobs);
	free(now);
	free(later);
}
