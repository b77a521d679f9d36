/*
 * gate.c -- the stock gate: reserve a batch's lines in Redis before any
 * MongoDB work, and seed the counters that are missing.
 *
 * Each product's counter (gate:stock:<pid>) says how many units the
 * gate may still admit: MongoDB's stock minus what unsettled checkouts
 * have reserved.  gate_reserve() asks the library's gate_reserve for all
 * jobs of a batch at once, in stream order; a job whose lines do not fit
 * fails out_of_stock (or product_unavailable for a deleted product) with
 * no MongoDB operation at all, which is what keeps a sold-out flash sale
 * from costing a transaction per buyer.  checkout_finish settles each
 * reservation with the job's result (shared/lua/protocol.lua).
 *
 * A missing counter (never seeded, or dropped by a product write or by
 * gate_forget) is seeded here: gate_seed_begin names the checkouts
 * holding units of the product, one MongoDB snapshot gives its stock and
 * which of them have an order, gate_seed_set subtracts the rest.  The
 * counter may end too high, never too low: the gate can admit too many
 * (MongoDB, the authority, refuses them, and the product's counter is
 * then dropped and seeded again), but it never refuses a buyer while
 * MongoDB holds the stock.  The exceptions, documented in the README:
 * a product write answered 503 (Redis down when it tried to drop the
 * counter), and a job whose cart changed after it was submitted (the
 * gate judges the lines as submitted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "batch_txn.h"
#include "worker.h"

#define SEED_ROUNDS	4	/* reserve, seed, reserve... then give up */

static const char *
str(const redisReply *r)
{
	return (r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
}

/* The gate_reserve call for the open jobs of a batch. */
static void
reserve_args(struct rargs *a, struct job **jobs, int *open, int n)
{
	char	hex[25];
	int	i, k;

	rargs_fcall(a, FN_RESERVE, 0);
	rargs_addf(a, "%d", n);
	rargs_addf(a, "%lld", (long long)db_now_ms());
	for (i = 0; i < n; i++) {
		struct job	*j = jobs[open[i]];

		rargs_add(a, j->id);
		rargs_add(a, j->user);
		rargs_addf(a, "%lld", (long long)j->at);
		/* A first delivery's first call: no reservation yet. */
		rargs_add(a, j->first && !j->gated ? "1" : "");
		rargs_addf(a, "%d", j->want.n);
		for (k = 0; k < j->want.n; k++) {
			db_oid_hex(&j->want.lines[k].product, hex);
			rargs_add(a, hex);
			rargs_addf(a, "%lld",
			    (long long)j->want.lines[k].quantity);
		}
	}
}

/* Remember pid among the n to seed (at most max), once. */
static int
add_seed(char (*pids)[25], int n, int max, const char *pid)
{
	int	i;

	for (i = 0; i < n; i++) {
		if (strcmp(pids[i], pid) == 0)
			return (n);
	}
	if (n == max || strlen(pid) != 24)
		return (n);
	memcpy(pids[n], pid, 25);
	return (n + 1);
}

/* A product's sale rules as gate_seed_set takes them. */
static void
rule_arg(struct rargs *a, const struct order_seed *s)
{
	char	starts[24], ends[24], limit[24];

	starts[0] = ends[0] = limit[0] = '\0';
	if (s->starts != 0)
		snprintf(starts, sizeof(starts), "%lld", (long long)s->starts);
	if (s->ends != 0)
		snprintf(ends, sizeof(ends), "%lld", (long long)s->ends);
	if (s->limit != 0)
		snprintf(limit, sizeof(limit), "%lld", (long long)s->limit);
	rargs_addf(a, "%s|%s|%s", starts, ends, limit);
}

/* Seed the counters of products pids; 0, or -1 (logged). */
int
gate_seed(struct consumer *c, char (*pids)[25], int n)
{
	struct order_seed	*s;
	struct rargs		 a;
	redisReply		*r, **begun;
	char			 version[32], err[512], hex[25];
	int			 i, k, m, ret;

	s = calloc((size_t)n, sizeof(*s));
	begun = calloc((size_t)n, sizeof(*begun));
	ret = 0;
	for (i = 0, m = 0; i < n && ret == 0; i++) {
		rargs_fcall(&a, FN_SEED_BEGIN, 0);
		rargs_add(&a, pids[i]);
		r = rconn_argv(&c->rc, &a);
		rargs_free(&a);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			ret = -1;
		} else if (strcmp(str(r->element[0]), "missing") == 0) {
			begun[m] = r;
			db_oid_parse(pids[i], &s[m].product);
			s[m].nheld = (int)r->elements - 2;
			s[m].held = calloc((size_t)s[m].nheld + 1,
			    sizeof(char *));
			s[m].committed = calloc((size_t)s[m].nheld + 1,
			    sizeof(int));
			for (k = 0; k < s[m].nheld; k++)
				s[m].held[k] = r->element[2 + k]->str;
			m++;
			continue;
		}
		if (r != NULL)
			freeReplyObject(r);
	}
	if (ret == 0 && m > 0 &&
	    (ret = order_seed_read(c->mongo, s, m, err, sizeof(err))) == -1)
		log_warn("worker: reading stock to seed the gate failed",
		    "{s:s}", "error", err);
	for (i = 0; ret == 0 && i < m; i++) {
		snprintf(version, sizeof(version), "%s",
		    str(begun[i]->element[1]));
		rargs_fcall(&a, FN_SEED_SET, 0);
		db_oid_hex(&s[i].product, hex);
		rargs_add(&a, hex);
		rargs_add(&a, version);
		if (s[i].stock < 0)
			rargs_add(&a, "gone");
		else
			rargs_addf(&a, "%lld", (long long)s[i].stock);
		rule_arg(&a, &s[i]);
		for (k = 0; k < s[i].nheld; k++) {
			if (!s[i].committed[k])
				rargs_add(&a, s[i].held[k]);
		}
		r = rconn_argv(&c->rc, &a);
		rargs_free(&a);
		if (r == NULL)
			ret = -1;
		else
			freeReplyObject(r);
	}
	for (i = 0; i < m; i++) {
		freeReplyObject(begun[i]);
		free(s[i].held);
		free(s[i].committed);
	}
	free(begun);
	free(s);
	return (ret);
}

/* The failure a gate refusal what means for j; -1 if it is none. */
static int
refused(struct job *j, const char *what, const redisReply *r)
{
	if (strcmp(what, "short") == 0)
		j->code = ERR_OUT_OF_STOCK;
	else if (strcmp(what, "gone") == 0)
		j->code = ERR_PRODUCT_UNAVAILABLE;
	else if (strcmp(what, "ended") == 0)
		j->code = ERR_SALE_ENDED;
	else if (strcmp(what, "notstarted") == 0 && r->elements > 2) {
		j->code = ERR_SALE_NOT_STARTED;
		j->starts = atoll(str(r->element[2]));
	} else if (strcmp(what, "limit") == 0 && r->elements > 3) {
		j->code = ERR_LIMIT_EXCEEDED;
		j->limit = atoll(str(r->element[2]));
		j->held = atoll(str(r->element[3]));
	} else
		return (-1);
	return (0);
}

/*
 * Apply the answer for job j: reserved (*reserved set), refused, or to
 * be seeded (its products added to pids).  Returns the new nseed.
 */
static int
outcome(struct job *j, const redisReply *r, int *reserved, char (*pids)[25],
    int nseed, int max)
{
	const char	*what;
	size_t		 k;

	what = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ?
	    str(r->element[0]) : "";
	if (strcmp(what, "seed") == 0) {
		for (k = 1; k < r->elements; k++)
			nseed = add_seed(pids, nseed, max, str(r->element[k]));
		return (nseed);
	}
	if (refused(j, what, r) == 0) {
		j->state = CK_FAILED;
		j->by_gate = 1;
		snprintf(j->product, sizeof(j->product), "%s",
		    r->elements > 1 ? str(r->element[1]) : "");
	} else if (strcmp(what, "ok") == 0) {
		*reserved = 1;
	} else {
		log_error("worker: unexpected gate answer", "{s:s}",
		    "checkoutId", j->id);
	}
	return (nseed);
}

/*
 * Reserve the lines of the open jobs (state CK_UNKNOWN), seeding
 * counters as needed.  Refused jobs become failed; the others hold
 * their reservation.  Returns 0, or -1 if Redis or MongoDB failed
 * (retry: reserving again is harmless).
 */
int
gate_reserve(struct consumer *c, struct job **jobs, int n)
{
	struct rargs	 a;
	redisReply	*r;
	char		(*pids)[25];
	int		*open, *reserved, round, i, m, nseed, max, ret;

	open = calloc((size_t)n, sizeof(*open));
	reserved = calloc((size_t)n, sizeof(*reserved));
	max = 256;
	pids = calloc((size_t)max, sizeof(*pids));
	ret = 0;
	for (round = 0; round < SEED_ROUNDS && ret == 0; round++) {
		for (i = 0, m = 0; i < n; i++) {
			if (jobs[i]->state == CK_UNKNOWN && !jobs[i]->ack_only &&
			    !reserved[i])
				open[m++] = i;
		}
		if (m == 0)
			break;
		reserve_args(&a, jobs, open, m);
		r = rconn_argv(&c->rc, &a);
		rargs_free(&a);
		/* Sent: it may have reserved, even if its answer was lost. */
		for (i = 0; i < m; i++)
			jobs[open[i]]->gated = 1;
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    (int)r->elements != m) {
			if (r != NULL)
				freeReplyObject(r);
			ret = -1;
			break;
		}
		for (i = 0, nseed = 0; i < m; i++)
			nseed = outcome(jobs[open[i]], r->element[i],
			    &reserved[open[i]], pids, nseed, max);
		freeReplyObject(r);
		if (nseed == 0)
			break;
		ret = gate_seed(c, pids, nseed);
	}
	if (ret == 0 && round == SEED_ROUNDS)
		ret = -1;	/* the catalogue kept changing: later */
	free(open);
	free(reserved);
	free(pids);
	return (ret);
}

/*
 * MongoDB found j's buyer over a product's perCustomerLimit that the
 * gate did not count: tell the gate, so the next refusal is its own.
 */
void
gate_user_set(struct consumer *c, const struct job *j)
{
	struct rargs	a;

	rargs_fcall(&a, FN_GATE_USER_SET, 0);
	rargs_add(&a, j->product);
	rargs_add(&a, j->user);
	rargs_addf(&a, "%lld", j->held);
	rargs_add(&a, j->id);
	freeReplyObject(rconn_argv(&c->rc, &a));
	rargs_free(&a);
}

/* MongoDB refused what the gate admitted: seed product again. */
void
gate_forget(struct consumer *c, const char *product)
{
	struct rargs	a;

	rargs_fcall(&a, FN_GATE_FORGET, 0);
	rargs_add(&a, product);
	freeReplyObject(rconn_argv(&c->rc, &a));
	rargs_free(&a);
}
