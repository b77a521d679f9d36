/*
 * reclaim.c -- jobs left pending by dead workers, poison jobs, and the
 * stream's length.
 *
 * Every RECLAIM_IDLE_MS / 4 the reclaimer XAUTOCLAIMs entries idle for
 * longer than RECLAIM_IDLE_MS (a worker that died holding them; a live
 * worker renews its claim while it retries) and processes them itself.
 * An entry delivered more than MAX_DELIVERIES times is dead-lettered: its
 * checkout becomes failed with code "internal", nothing is dropped
 * silently.
 *
 * It also trims acknowledged entries from the stream (XTRIM MINID up to
 * the oldest pending or undelivered entry), so that the stream's length,
 * which the API compares with QUEUE_MAX, is the work still to do.
 */
#include <stdio.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "worker.h"

#define BATCH		16
#define TRIM_EVERY_MS	2000

/* How many times entry id has been delivered (0 if unknown). */
static long
deliveries(struct consumer *c, const char *id)
{
	redisReply	*r;
	long		 n;

	r = worker_cmd(c, "XPENDING %s %s %s %s 1", RK_STREAM, RK_GROUP, id,
	    id);
	n = 0;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->elements == 4)
		n = (long)r->element[0]->element[3]->integer;
	if (r != NULL)
		freeReplyObject(r);
	return (n);
}

static void
reclaim_entry(struct consumer *c, const redisReply *entry)
{
	const char	*id;
	char		 reason[96];
	long		 n;

	if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
		return;
	id = entry->element[0]->str;
	n = deliveries(c, id);
	log_warn("worker: reclaimed a pending job", "{s:s, s:s, s:i}",
	    "msgid", id, "checkoutId", checkout_field(entry, "checkoutId"),
	    "deliveries", (int)n);
	if (n > cfg.max_deliveries) {
		snprintf(reason, sizeof(reason), "delivered %ld times", n);
		reclaim_dead_letter(c, id, checkout_field(entry, "checkoutId"),
		    checkout_field(entry, "userId"), reason);
		return;
	}
	checkout_job(c, entry, n);
}

/* One XAUTOCLAIM pass; the number of entries it claimed. */
static int
reclaim_once(struct consumer *c)
{
	redisReply	*r, *entries;
	size_t		 i;
	int		 n;

	r = worker_cmd(c, "XAUTOCLAIM %s %s %s %ld 0-0 COUNT %d", RK_STREAM,
	    RK_GROUP, c->name, cfg.reclaim_idle_ms, BATCH);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
		if (r != NULL)
			freeReplyObject(r);
		return (0);
	}
	entries = r->element[1];
	n = (int)entries->elements;
	for (i = 0; i < entries->elements && !worker_stopping; i++)
		reclaim_entry(c, entries->element[i]);
	/* Redis 7: ids of pending entries whose data was trimmed. */
	if (r->elements > 2) {
		for (i = 0; i < r->element[2]->elements; i++)
			freeReplyObject(worker_cmd(c, "XACK %s %s %s",
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
	if ((r = worker_cmd(c, "XINFO GROUPS %s", RK_STREAM)) == NULL)
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
	r = worker_cmd(c, "XPENDING %s %s", RK_STREAM, RK_GROUP);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING) {
		snprintf(oldest, sizeof(oldest), "%s", r->element[1]->str);
		keep = min_id(last, oldest);
	}
	if (r != NULL)
		freeReplyObject(r);
	freeReplyObject(worker_cmd(c, "XTRIM %s MINID %s", RK_STREAM, keep));
}

void *
reclaim_main(void *arg)
{
	struct consumer	 c;
	int64_t		 last_trim;
	long		 every;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%.70s-reclaim", (const char *)arg);
	c.mongo = mongoc_client_pool_pop(worker_mongo);
	every = cfg.reclaim_idle_ms / 4 > 50 ? cfg.reclaim_idle_ms / 4 : 50;
	last_trim = 0;
	while (!worker_stopping) {
		if (reclaim_once(&c) < BATCH)
			worker_sleep_ms(every);
		if (db_now_ms() - last_trim > TRIM_EVERY_MS) {
			trim(&c);
			last_trim = db_now_ms();
		}
	}
	worker_redis_drop(&c);
	mongoc_client_pool_push(worker_mongo, c.mongo);
	return (NULL);
}
