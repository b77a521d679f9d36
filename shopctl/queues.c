/*
 * queues.c -- shopctl's tools for work that got stuck: dead-lettered
 * checkouts (the Redis stream checkout:dead) and parked notifications
 * (the MongoDB outbox, shared/outbox.h).
 *
 *   shopctl dlq list                 entry, checkout, user, deliveries,
 *                                    reason, age
 *   shopctl dlq replay ID|--all      re-queue as submitted; a checkout
 *                                    with an order is reported, not run
 *   shopctl dlq drop ID|--all        forget the entry
 *   shopctl outbox list              parked notifications, pending count
 *   shopctl outbox replay ID|--all   retry their parked targets now
 *   shopctl outbox drop ID|--all     give their parked targets up
 *
 * Every line printed names what it acted on; the exit status is 1 if
 * anything asked for could not be done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/outbox.h"
#include "../shared/protocol.h"
#include "../shared/rconn.h"
#include "../shared/redis.h"
#include "migrate.h"

/* A field of a stream entry's [field, value, ...] array, or "". */
static const char *
field(const redisReply *kv, const char *name)
{
	size_t	i;

	for (i = 0; i + 1 < kv->elements; i += 2) {
		if (strcmp(kv->element[i]->str, name) == 0)
			return (kv->element[i + 1]->str);
	}
	return ("");
}

/* Seconds since a stream id's or a date's milliseconds, as text. */
static void
age(long long ms, char *out, size_t len)
{
	long long	s;

	s = ((long long)time(NULL) * 1000 - ms) / 1000;
	if (s < 120)
		snprintf(out, len, "%llds", s);
	else if (s < 7200)
		snprintf(out, len, "%lldm", s / 60);
	else
		snprintf(out, len, "%lldh", s / 3600);
}

/* shopctl's connection (shared/rconn.c), made now or exit 1 saying why. */
static void
connect_redis(struct rconn *r)
{
	char	err[512];

	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "shopctl");
	if ((r->redis = redis_connect(err, sizeof(err))) == NULL) {
		fprintf(stderr, "shopctl: %s\n", err);
		exit(1);
	}
}

/* The dead letters: every entry, or the one with id (NULL: all). */
static redisReply *
dead_letters(struct rconn *r, const char *id)
{
	redisReply	*rep;

	rep = id == NULL ?
	    rconn_cmd(r, "XRANGE %s - +", RK_DEAD) :
	    rconn_cmd(r, "XRANGE %s %s %s", RK_DEAD, id, id);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR && id != NULL &&
	    strstr(rep->str, "Invalid stream ID") != NULL) {
		fprintf(stderr, "shopctl: %s is not a dead letter's id (the "
		    "ENTRY column of `shopctl dlq list`, such as "
		    "1796265974695-0)\n", id);
		exit(1);
	}
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "shopctl: cannot read %s: %s\n", RK_DEAD,
		    rep != NULL && rep->str != NULL ? rep->str :
		    "Redis is away");
		exit(1);
	}
	return (rep);
}

static void
dlq_list(struct rconn *r)
{
	redisReply	*rep, *kv;
	size_t		 i;
	char		 when[32];

	rep = dead_letters(r, NULL);
	printf("%-16s %-24s %-24s %10s %6s  %s\n", "ENTRY", "CHECKOUT",
	    "USER", "DELIVERIES", "AGE", "REASON");
	for (i = 0; i < rep->elements; i++) {
		kv = rep->element[i]->element[1];
		age(atoll(rep->element[i]->element[0]->str), when, sizeof(when));
		printf("%-16s %-24s %-24s %10s %6s  %s\n",
		    rep->element[i]->element[0]->str, field(kv, "checkoutId"),
		    field(kv, "userId"), *field(kv, "deliveries") != '\0' ?
		    field(kv, "deliveries") : "-", when, field(kv, "reason"));
	}
	printf("%zu dead-lettered (Redis %s:%d, database %d)\n",
	    rep->elements, r->redis != NULL && r->redis->tcp.host != NULL ?
	    r->redis->tcp.host : cfg.redis_host, r->redis != NULL ?
	    r->redis->tcp.port : (int)cfg.redis_port, cfg.redis_db);
	freeReplyObject(rep);
}

/* The order of a checkout, as hex into out[25]; 1 found, 0 none, -1. */
static int
order_of(mongoc_client_t *m, const char *checkout, char *out)
{
	mongoc_collection_t	*orders;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_t			*q, *doc;
	int			 ret;

	orders = db_coll(m, DB_ORDERS);
	q = BCON_NEW("checkoutId", BCON_UTF8(checkout));
	doc = NULL;
	ret = db_find_doc(orders, q, NULL, &doc, &berr);
	if (ret == 0 && doc != NULL && bson_iter_init_find(&it, doc, "_id")) {
		bson_oid_to_string(bson_iter_oid(&it), out);
		ret = 1;
	} else if (ret == -1) {
		fprintf(stderr, "shopctl: orders: %s\n", berr.message);
	}
	if (doc != NULL)
		bson_destroy(doc);
	bson_destroy(q);
	mongoc_collection_destroy(orders);
	return (ret);
}

/* Replay one dead letter (entry e of an XRANGE); 0 or -1. */
static int
dlq_replay_one(struct rconn *r, mongoc_client_t *m, const redisReply *e)
{
	struct rargs	 a;
	redisReply	*rep;
	const char	*id, *checkout;
	char		*body, order[25], ttl[24];
	int		 found;

	id = e->element[0]->str;
	checkout = field(e->element[1], "checkoutId");
	if ((found = order_of(m, checkout, order)) != 0) {
		if (found == 1)
			printf("%s checkout %s: has order %s, not re-run "
			    "(drop the entry)\n", id, checkout, order);
		return (-1);
	}
	body = protocol_body(checkout, CK_QUEUED,
	    field(e->element[1], "createdAt"), NULL, NULL);
	snprintf(ttl, sizeof(ttl), "%ld", cfg.checkout_ttl);
	rargs_fcall(&a, FN_DLQ_REPLAY, 2);
	rargs_add(&a, RK_DEAD);
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, id);
	rargs_add(&a, ttl);
	rargs_add(&a, RK_EVENTS);
	rargs_add(&a, body);
	/* Reported replayed only once the replicas have it, as the API's. */
	rep = rconn_durable(r, &a);
	rargs_free(&a);
	free(body);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		printf("%s checkout %s: not re-queued: %s\n", id, checkout,
		    rep != NULL && rep->str != NULL ? rep->str :
		    "Redis was lost before the replicas confirmed it");
		if (rep != NULL)
			freeReplyObject(rep);
		return (-1);
	}
	if (rep->elements < 2 || rep->element[1]->len == 0) {
		printf("%s checkout %s: is %s now, not the dead letter's "
		    "failure: not re-run (drop the entry)\n", id, checkout,
		    rep->elements > 2 ? rep->element[2]->str : "?");
		freeReplyObject(rep);
		return (-1);
	}
	printf("%s checkout %s: re-queued as %s\n", id, checkout,
	    rep->element[1]->str);
	freeReplyObject(rep);
	return (0);
}

static int
dlq_act(struct rconn *r, mongoc_client_t *m, const char *verb,
    const char *id)
{
	redisReply	*rep, *del;
	size_t		 i;
	int		 ret;

	rep = dead_letters(r, strcmp(id, "--all") == 0 ? NULL : id);
	if (rep->elements == 0 && strcmp(id, "--all") != 0) {
		fprintf(stderr, "shopctl: no dead letter %s\n", id);
		freeReplyObject(rep);
		return (1);
	}
	for (i = 0, ret = 0; i < rep->elements; i++) {
		if (strcmp(verb, "replay") == 0) {
			if (dlq_replay_one(r, m, rep->element[i]) == -1)
				ret = 1;
			continue;
		}
		del = rconn_cmd(r, "XDEL %s %s", RK_DEAD,
		    rep->element[i]->element[0]->str);
		printf("%s checkout %s: dropped\n",
		    rep->element[i]->element[0]->str,
		    field(rep->element[i]->element[1], "checkoutId"));
		if (del == NULL)
			ret = 1;
		else
			freeReplyObject(del);
	}
	freeReplyObject(rep);
	return (ret);
}

int
queues_dlq(mongoc_client_t *m, int argc, char **argv)
{
	struct rconn	 r;
	int		 ret;

	connect_redis(&r);
	ret = 0;
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		dlq_list(&r);
	else if (argc == 2 && (strcmp(argv[0], "replay") == 0 ||
	    strcmp(argv[0], "drop") == 0))
		ret = dlq_act(&r, m, argv[0], argv[1]);
	else
		ret = 2;
	rconn_drop(&r);
	return (ret);
}

/* The document's parked targets, a line each. */
static void
print_parked(const bson_t *doc)
{
	struct outbox_target tg;
	bson_iter_t	 it, arr, t;
	char		 id[25], when[32];

	if (!bson_iter_init_find(&it, doc, "_id"))
		return;
	bson_oid_to_string(bson_iter_oid(&it), id);
	age(bson_iter_init_find(&it, doc, "createdAt") ?
	    bson_iter_date_time(&it) : 0, when, sizeof(when));
	if (!bson_iter_init_find(&it, doc, "targets") ||
	    !bson_iter_recurse(&it, &arr))
		return;
	while (bson_iter_next(&arr) && bson_iter_recurse(&arr, &t)) {
		outbox_target_read(&t, &tg);
		if (strcmp(tg.state, OUTBOX_PARKED) == 0)
			printf("%-24s %-7s %8lld %6s  %s: %s\n", id, tg.kind,
			    (long long)tg.attempts, when, tg.to, tg.error);
	}
}

static int64_t
count(mongoc_collection_t *outbox, const char *state)
{
	bson_error_t	 berr;
	bson_t		*q;
	int64_t		 n;

	q = BCON_NEW("state", BCON_UTF8(state));
	n = mongoc_collection_count_documents(outbox, q, NULL, NULL, NULL,
	    &berr);
	bson_destroy(q);
	return (n);
}

static int
outbox_list(mongoc_collection_t *outbox)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_error_t	 berr;
	bson_t		*q;
	int		 ret;

	q = BCON_NEW("state", BCON_UTF8(OUTBOX_PARKED));
	printf("%-24s %-7s %8s %6s  %s\n", "ORDER", "KIND", "ATTEMPTS", "AGE",
	    "TO: LAST ERROR");
	cur = mongoc_collection_find_with_opts(outbox, q, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc))
		print_parked(doc);
	ret = 0;
	if (mongoc_cursor_error(cur, &berr)) {
		fprintf(stderr, "shopctl: outbox: %s\n", berr.message);
		ret = 1;
	} else {
		printf("%lld parked, %lld pending\n",
		    (long long)count(outbox, OUTBOX_PARKED),
		    (long long)count(outbox, OUTBOX_PENDING));
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	return (ret);
}

/* Replay or drop one parked document; 1 if it changed. */
static int
outbox_one(mongoc_collection_t *outbox, const bson_t *doc, int replay)
{
	bson_error_t	 berr;
	bson_iter_t	 it;
	char		 id[25];
	int		 r;

	if (!bson_iter_init_find(&it, doc, "_id"))
		return (0);
	bson_oid_to_string(bson_iter_oid(&it), id);
	if ((r = outbox_unpark(outbox, doc, replay, &berr)) == -1)
		fprintf(stderr, "shopctl: outbox %s: %s\n", id, berr.message);
	else if (r == 1)
		printf("%s: %s\n", id, replay ? "to retry now" : "dropped");
	return (r == 1);
}

static int
outbox_act(mongoc_collection_t *outbox, const char *verb, const char *id)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_oid_t	 oid;
	bson_t		*q;
	int		 replay, n;

	replay = strcmp(verb, "replay") == 0;
	if (strcmp(id, "--all") == 0)
		q = BCON_NEW("state", BCON_UTF8(OUTBOX_PARKED));
	else if (db_oid_parse(id, &oid) == 0)
		q = BCON_NEW("_id", BCON_OID(&oid), "state",
		    BCON_UTF8(OUTBOX_PARKED));
	else {
		fprintf(stderr, "shopctl: %s is not an order id\n", id);
		return (1);
	}
	n = 0;
	cur = mongoc_collection_find_with_opts(outbox, q, NULL, NULL);
	while (mongoc_cursor_next(cur, &doc))
		n += outbox_one(outbox, doc, replay);
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	if (n == 0 && strcmp(id, "--all") != 0) {
		fprintf(stderr, "shopctl: no parked notification %s\n", id);
		return (1);
	}
	printf("%d notification(s) %s\n", n, replay ? "to retry now" :
	    "dropped");
	return (0);
}

int
queues_outbox(mongoc_client_t *m, int argc, char **argv)
{
	mongoc_collection_t	*outbox;
	int			 ret;

	outbox = db_coll(m, DB_OUTBOX);
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		ret = outbox_list(outbox);
	else if (argc == 2 && (strcmp(argv[0], "replay") == 0 ||
	    strcmp(argv[0], "drop") == 0))
		ret = outbox_act(outbox, argv[0], argv[1]);
	else
		ret = 2;
	mongoc_collection_destroy(outbox);
	return (ret);
}
