/*
 * reclaim.c -- jobs left pending by dead workers, poison jobs, and the
 * stream's length.
 *
 * Every RECLAIM_IDLE_MS / 4 the reclaimer XAUTOCLAIMs entries idle for
 * longer than RECLAIM_IDLE_MS (a worker that died holding them; a live
 * worker renews its claim while it retries) and runs them itself as one
 * batch (batch.c): a dead worker's stock reservations are settled
 * with its jobs' results, so they come back within RECLAIM_IDLE_MS plus
 * one pass.  An entry delivered more than MAX_DELIVERIES times is
 * dead-lettered: its checkout becomes failed with code "internal" (unless
 * its order exists: then it completed), its reservation is returned,
 * nothing is dropped silently.
 *
 * It also trims acknowledged entries from the stream (XTRIM MINID up to
 * the oldest pending or undelivered entry), so that the stream's length,
 * which the API compares with QUEUE_MAX, is the work still to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "worker.h"

#define BATCH		16
#define TRIM_EVERY_MS	2000

/* Set each job's delivery count from XPENDING (for this consumer). */
static void
deliveries(struct consumer *c, struct job *jobs, int n)
{
	redisReply	*r, *e;
	size_t		 i;
	int		 k;

	r = rconn_cmd(&c->rc, "XPENDING %s %s %s %s %d %s", RK_STREAM, RK_GROUP,
	    jobs[0].msgid, jobs[n - 1].msgid, n * 2, c->rc.name);
	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY &&
	    i < r->elements; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
			continue;
		for (k = 0; k < n; k++) {
			if (strcmp(jobs[k].msgid, e->element[0]->str) == 0)
				jobs[k].deliveries = (long)e->element[3]->integer;
		}
	}
	if (r != NULL)
		freeReplyObject(r);
}

/*
 * Run the claimed entries as one batch; those delivered more than
 * MAX_DELIVERIES times are dead-lettered (unless their order exists).
 */
static void
run_claimed(struct consumer *c, const redisReply *entries)
{
	struct job	*jobs;
	char		 reason[BATCH][64];
	int		 i, n;

	n = (int)entries->elements;
	jobs = calloc((size_t)n, sizeof(*jobs));
	for (i = 0; i < n; i++)
		job_parse(entries->element[i], &jobs[i]);
	deliveries(c, jobs, n);
	for (i = 0; i < n; i++) {
		log_warn("worker: reclaimed a pending job", "{s:s, s:s, s:i}",
		    "msgid", jobs[i].msgid, "checkoutId", jobs[i].id,
		    "deliveries", (int)jobs[i].deliveries);
		if (i < BATCH && jobs[i].deliveries > cfg.max_deliveries) {
			snprintf(reason[i], sizeof(reason[i]),
			    "delivered %ld times", jobs[i].deliveries);
			jobs[i].dead = reason[i];
		}
	}
	batch_run(c, jobs, n);
	for (i = 0; i < n; i++)
		job_clear(&jobs[i]);
	free(jobs);
}

/* One XAUTOCLAIM pass; the number of entries it claimed. */
static int
reclaim_once(struct consumer *c)
{
	redisReply	*r, *entries;
	size_t		 i;
	int		 n;

	r = rconn_cmd(&c->rc, "XAUTOCLAIM %s %s %s %ld 0-0 COUNT %d", RK_STREAM,
	    RK_GROUP, c->rc.name, cfg.reclaim_idle_ms, BATCH);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
		if (r != NULL)
			freeReplyObject(r);
		return (0);
	}
	entries = r->element[1];
	n = (int)entries->elements;
	if (n > 0 && !stop_requested())
		run_claimed(c, entries);
	/* Redis 7: ids of pending entries whose data was trimmed. */
	if (r->elements > 2) {
		for (i = 0; i < r->element[2]->elements; i++)
			freeReplyObject(rconn_cmd(&c->rc, "XACK %s %s %s",
			    RK_STREAM, RK_GROUP, r->element[2]->element[i]->str));
	}
	freeReplyObject(r);
	return (n);
}

/* The smaller of two stream ids "ms-seq". */
static const char *
min_id(const char *a, const char *b)
{
	unsigned long long	am, as, bm, bs;

	if (sscanf(a, "%llu-%llu", &am, &as) != 2)
		return (b);
	if (sscanf(b, "%llu-%llu", &bm, &bs) != 2)
		return (a);
	return (am < bm || (am == bm && as < bs) ? a : b);
}

/* The group's last delivered id into out, or -1. */
static int
last_delivered(struct consumer *c, char *out, size_t len)
{
	redisReply	*r, *g;
	size_t		 i, k;
	int		 ret;

	ret = -1;
	if ((r = rconn_cmd(&c->rc, "XINFO GROUPS %s", RK_STREAM)) == NULL)
		return (-1);
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		g = r->element[i];
		for (k = 0; k + 1 < g->elements; k += 2) {
			if (strcmp(g->element[k]->str, "last-delivered-id") == 0)
				snprintf(out, len, "%s", g->element[k + 1]->str);
		}
		ret = 0;
	}
	freeReplyObject(r);
	return (ret);
}

/* Trim acknowledged entries: keep from the oldest pending or undelivered. */
static void
trim(struct consumer *c)
{
	redisReply	*r;
	char		 last[64], oldest[64];
	const char	*keep;

	if (last_delivered(c, last, sizeof(last)) == -1)
		return;
	keep = last;
	oldest[0] = '\0';
	r = rconn_cmd(&c->rc, "XPENDING %s %s", RK_STREAM, RK_GROUP);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		snprintf(oldest, sizeof(oldest), "%s", r->element[1]->str);
		keep = min_id(last, oldest);
	}
	if (r != NULL)
		freeReplyObject(r);
	freeReplyObject(rconn_cmd(&c->rc, "XTRIM %s MINID %s", RK_STREAM,
	    keep));
}

void *
reclaim_main(void *arg)
{
	struct consumer	 c;
	int64_t		 last_trim;
	long		 every;

	memset(&c, 0, sizeof(c));
	snprintf(c.rc.name, sizeof(c.rc.name), "%.70s-reclaim",
	    (const char *)arg);
	c.mongo = mongoc_client_pool_pop(worker_mongo);
	every = cfg.reclaim_idle_ms / 4 > 50 ? cfg.reclaim_idle_ms / 4 : 50;
	last_trim = 0;
	while (!stop_requested()) {
		if (reclaim_once(&c) < BATCH)
			stop_sleep_ms(every);
		if (db_now_ms() - last_trim > TRIM_EVERY_MS) {
			trim(&c);
			last_trim = db_now_ms();
		}
	}
	rconn_drop(&c.rc);
	mongoc_client_pool_push(worker_mongo, c.mongo);
	return (NULL);
}
