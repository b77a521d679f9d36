/*
 * main.c -- the notifier process: delivers what committed orders
 * announce (the outbox, shared/outbox.h) by email and webhooks, so that
 * a slow or failing mail server or receiver never touches a checkout.
 *
 * NOTIFIER_THREADS senders each loop: claim one due outbox document
 * (its nextAt moved past a lease by a conditional update: one claimer
 * wins), give it its targets the first time (the buyer's email when
 * SMTP_URL is set, each of WEBHOOK_URLS), send each target that is due,
 * and write back what happened.  A failed send is retried as retry.c
 * says (NOTIFY_BACKOFF_MS doubling per attempt up to
 * NOTIFY_BACKOFF_MAX_MS, with jitter, for NOTIFY_RETRY_FOR seconds);
 * then the target is parked (shopctl outbox, and the notify_parked
 * gauge of /metrics).  A
 * notifier killed mid-send leaves its claim to expire after the lease,
 * and the target is sent again, with the same event id: at least once.
 *
 * Counters go to the stats hash the API's /metrics reads; Redis being
 * away only loses counts.  SIGTERM or SIGINT: each sender finishes the
 * document in hand, then the process exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/order_json.h"
#include "../shared/outbox.h"
#include "../shared/proc.h"
#include "../shared/protocol.h"
#include "../shared/rconn.h"
#include "../shared/redis.h"
#include "notify.h"

#define TARGETS_MAX	17		/* the email and 16 webhooks */
#define IDLE_MS		250		/* nothing due: look again */
#define GAUGE_MS	5000		/* pending and parked recounted */

struct target {
	char	 kind[8];		/* "email" | "webhook" */
	char	 to[1024];
	char	 state[8];
	int64_t	 attempts;
	int64_t	 next_at;		/* ms */
	char	 error[256];
	int64_t	 sent_at;
};

struct sender {
	int			 id;
	struct rconn		 rc;	/* rc.name: the claim's owner */
	mongoc_client_t		*mongo;
};

static mongoc_client_pool_t	*pool;
static char			 webhooks[TARGETS_MAX - 1][1024];
static int			 nwebhooks;

/* XINFO GROUPS' answer: the workers' group's jobs not yet acked. */
static long long
waiting_jobs(const redisReply *r)
{
	const redisReply	*g, *k, *v;
	long long		 n;
	size_t			 i, j;
	int			 ours;

	if (r->type != REDIS_REPLY_ARRAY)
		return (0);
	for (i = 0; i < r->elements; i++) {
		g = r->element[i];
		if (g->type != REDIS_REPLY_ARRAY)
			continue;
		ours = 0;
		n = 0;
		for (j = 0; j + 1 < g->elements; j += 2) {
			k = g->element[j];
			v = g->element[j + 1];
			if (k->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(k->str, "name") == 0 &&
			    v->type == REDIS_REPLY_STRING)
				ours = strcmp(v->str, RK_GROUP) == 0;
			else if ((strcmp(k->str, "pending") == 0 ||
			    strcmp(k->str, "lag") == 0) &&
			    v->type == REDIS_REPLY_INTEGER)
				n += v->integer;	/* lag: not yet read */
		}
		if (ours)
			return (n);
	}
	return (0);
}

/*
 * Is a sale on?  While more than NOTIFY_YIELD_QUEUE checkout jobs wait
 * (not yet read or not yet acked by the workers), mail waits: it shares machines (CPU, the
 * database) with the checkout path, and a buyer's answer matters more
 * than their email arriving a second sooner.  Redis away: not deep.
 */
static int
checkouts_busy(struct sender *s)
{
	redisReply	*r;
	int		 busy;

	if (cfg.notify_yield_queue == 0 ||
	    (r = rconn_cmd(&s->rc, "XINFO GROUPS %s", RK_STREAM)) == NULL)
		return (0);
	busy = waiting_jobs(r) > cfg.notify_yield_queue;
	freeReplyObject(r);
	return (busy);
}

/* A stats counter; a Redis that is away loses it. */
static void
count(struct sender *s, const char *field)
{
	freeReplyObject(rconn_cmd(&s->rc, "HINCRBY %s %s 1", RK_STATS,
	    field));
}

/* How long a claim holds: every target's send, and a margin. */
static int64_t
lease_ms(void)
{
	return ((int64_t)cfg.notify_timeout_ms * (1 + nwebhooks) + 5000);
}

/* Claim one due document: its _id into id; 1, 0 if none, -1 error. */
static int
claim(struct sender *s, mongoc_collection_t *outbox, bson_oid_t *id)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_error_t	 berr;
	bson_iter_t	 it;
	bson_t		*q, *opts, *u, *cq, reply;
	int64_t		 now, due;
	int		 won;

	now = db_now_ms();
	q = BCON_NEW("state", BCON_UTF8(OUTBOX_PENDING), "nextAt", "{",
	    "$lte", BCON_DATE_TIME(now), "}");
	opts = BCON_NEW("sort", "{", "nextAt", BCON_INT32(1), "}", "limit",
	    BCON_INT32(8), "projection", "{", "nextAt", BCON_INT32(1), "}");
	u = BCON_NEW("$set", "{", "nextAt", BCON_DATE_TIME(now + lease_ms()),
	    "owner", BCON_UTF8(s->rc.name), "}");
	cur = mongoc_collection_find_with_opts(outbox, q, opts, NULL);
	won = 0;
	while (!won && mongoc_cursor_next(cur, &doc)) {
		if (!bson_iter_init_find(&it, doc, "_id"))
			continue;
		bson_oid_copy(bson_iter_oid(&it), id);
		due = bson_iter_init_find(&it, doc, "nextAt") ?
		    bson_iter_date_time(&it) : 0;
		cq = BCON_NEW("_id", BCON_OID(id), "state",
		    BCON_UTF8(OUTBOX_PENDING), "nextAt", BCON_DATE_TIME(due));
		if (mongoc_collection_update_one(outbox, cq, u, NULL, &reply,
		    &berr) && bson_iter_init_find(&it, &reply,
		    "modifiedCount") && bson_iter_as_int64(&it) == 1)
			won = 1;
		bson_destroy(&reply);
		bson_destroy(cq);
	}
	if (mongoc_cursor_error(cur, &berr) && !won) {
		log_warn("notifier: cannot read the outbox", "{s:s}", "error",
		    berr.message);
		won = -1;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	bson_destroy(opts);
	bson_destroy(u);
	return (won);
}

static void
copy_str(char *dst, size_t len, const bson_iter_t *it)
{
	snprintf(dst, len, "%s", BSON_ITER_HOLDS_UTF8(it) ?
	    bson_iter_utf8(it, NULL) : "");
}

/* The targets a document holds; how many. */
static int
targets_read(const bson_t *doc, struct target *t)
{
	bson_iter_t	 it, arr, f;
	int		 n;

	if (!bson_iter_init_find(&it, doc, "targets") ||
	    !bson_iter_recurse(&it, &arr))
		return (0);
	for (n = 0; n < TARGETS_MAX && bson_iter_next(&arr) &&
	    bson_iter_recurse(&arr, &f); n++) {
		memset(&t[n], 0, sizeof(t[n]));
		while (bson_iter_next(&f)) {
			if (strcmp(bson_iter_key(&f), "kind") == 0)
				copy_str(t[n].kind, sizeof(t[n].kind), &f);
			else if (strcmp(bson_iter_key(&f), "to") == 0)
				copy_str(t[n].to, sizeof(t[n].to), &f);
			else if (strcmp(bson_iter_key(&f), "state") == 0)
				copy_str(t[n].state, sizeof(t[n].state), &f);
			else if (strcmp(bson_iter_key(&f), "lastError") == 0)
				copy_str(t[n].error, sizeof(t[n].error), &f);
			else if (strcmp(bson_iter_key(&f), "attempts") == 0)
				t[n].attempts = bson_iter_as_int64(&f);
			else if (strcmp(bson_iter_key(&f), "nextAt") == 0)
				t[n].next_at = bson_iter_date_time(&f);
			else if (strcmp(bson_iter_key(&f), "sentAt") == 0)
				t[n].sent_at = bson_iter_date_time(&f);
		}
	}
	return (n);
}

static void
target_add(struct target *t, const char *kind, const char *to)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->kind, sizeof(t->kind), "%s", kind);
	snprintf(t->to, sizeof(t->to), "%s", to);
	snprintf(t->state, sizeof(t->state), "%s", OUTBOX_PENDING);
}

/* The buyer's email into out; 0, or -1 if the user is gone. */
static int
buyer_email(mongoc_client_t *m, const bson_t *doc, char *out, size_t len)
{
	mongoc_collection_t	*users;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_t			*q, *user;
	int			 ret;

	if (!bson_iter_init_find(&it, doc, "userId"))
		return (-1);
	users = db_coll(m, DB_USERS);
	q = BCON_NEW("_id", BCON_OID(bson_iter_oid(&it)));
	user = NULL;
	ret = -1;
	if (db_find_doc(users, q, NULL, &user, &berr) == 0 && user != NULL &&
	    bson_iter_init_find(&it, user, "email")) {
		copy_str(out, len, &it);
		ret = 0;
	}
	if (user != NULL)
		bson_destroy(user);
	bson_destroy(q);
	mongoc_collection_destroy(users);
	return (ret);
}

/* First claim: where this document goes, as configured now. */
static int
targets_make(mongoc_client_t *m, const bson_t *doc, struct target *t)
{
	char	email[320];
	int	n, i;

	n = 0;
	if (cfg.smtp_url[0] != '\0' &&
	    buyer_email(m, doc, email, sizeof(email)) == 0)
		target_add(&t[n++], "email", email);
	for (i = 0; i < nwebhooks; i++)
		target_add(&t[n++], "webhook", webhooks[i]);
	return (n);
}

/* Send one due target of n; record the outcome in t. */
static void
send_one(struct sender *s, const struct notice *n, struct target *t,
    int64_t retry_from)
{
	char	err[256], to[256];
	int	ok;

	/* A webhook is logged by its origin (its path may hold a token). */
	if (strcmp(t->kind, "email") == 0)
		snprintf(to, sizeof(to), "%s", t->to);
	else
		log_url(t->to, to, sizeof(to));
	ok = strcmp(t->kind, "email") == 0 ?
	    notify_email(n, t->to, err, sizeof(err)) :
	    notify_webhook(n, t->to, err, sizeof(err));
	if (ok == 0) {
		snprintf(t->state, sizeof(t->state), "%s", OUTBOX_SENT);
		t->sent_at = db_now_ms();
		t->error[0] = '\0';
		count(s, strcmp(t->kind, "email") == 0 ? "notify_sent_email" :
		    "notify_sent_webhook");
		log_info("notifier: sent", "{s:s, s:s, s:s}", "event",
		    n->event_id, "kind", t->kind, "to", to);
		return;
	}
	t->attempts++;
	snprintf(t->error, sizeof(t->error), "%s", err);
	count(s, "notify_failed");
	if (retry_over(retry_from, db_now_ms())) {
		snprintf(t->state, sizeof(t->state), "%s", OUTBOX_PARKED);
		count(s, "notify_parked_total");
		log_error("notifier: parked", "{s:s, s:s, s:s, s:i, s:s}",
		    "event", n->event_id, "kind", t->kind, "to", to,
		    "attempts", (int)t->attempts, "error", err);
		return;
	}
	t->next_at = db_now_ms() + retry_backoff_ms(t->attempts);
	log_warn("notifier: send failed, will retry", "{s:s, s:s, s:i, s:s}",
	    "event", n->event_id, "kind", t->kind, "attempts",
	    (int)t->attempts, "error", err);
}

/* The document's state and nextAt from its targets'. */
static const char *
doc_state(const struct target *t, int n, int64_t *next_at)
{
	const char	*state;
	int		 i;

	state = OUTBOX_DONE;
	*next_at = INT64_MAX;
	for (i = 0; i < n; i++) {
		if (strcmp(t[i].state, OUTBOX_PENDING) == 0) {
			state = OUTBOX_PENDING;
			if (t[i].next_at < *next_at)
				*next_at = t[i].next_at;
		} else if (strcmp(t[i].state, OUTBOX_PARKED) == 0 &&
		    strcmp(state, OUTBOX_PENDING) != 0) {
			state = OUTBOX_PARKED;
		}
	}
	if (*next_at == INT64_MAX)
		*next_at = db_now_ms();
	return (state);
}

/* Write targets and state back, if the claim is still ours. */
static void
write_back(struct sender *s, mongoc_collection_t *outbox,
    const bson_oid_t *id, const struct target *t, int n)
{
	bson_error_t	 berr;
	bson_t		 q, u, set, arr, one;
	const char	*state;
	int64_t		 next_at;
	char		 key[16];
	int		 i;

	state = doc_state(t, n, &next_at);
	bson_init(&q);
	BSON_APPEND_OID(&q, "_id", id);
	BSON_APPEND_UTF8(&q, "owner", s->rc.name);
	bson_init(&u);
	BSON_APPEND_DOCUMENT_BEGIN(&u, "$set", &set);
	BSON_APPEND_ARRAY_BEGIN(&set, "targets", &arr);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%d", i);
		BSON_APPEND_DOCUMENT_BEGIN(&arr, key, &one);
		BSON_APPEND_UTF8(&one, "kind", t[i].kind);
		BSON_APPEND_UTF8(&one, "to", t[i].to);
		BSON_APPEND_UTF8(&one, "state", t[i].state);
		BSON_APPEND_INT64(&one, "attempts", t[i].attempts);
		BSON_APPEND_DATE_TIME(&one, "nextAt", t[i].next_at);
		BSON_APPEND_UTF8(&one, "lastError", t[i].error);
		if (t[i].sent_at != 0)
			BSON_APPEND_DATE_TIME(&one, "sentAt", t[i].sent_at);
		bson_append_document_end(&arr, &one);
	}
	bson_append_array_end(&set, &arr);
	BSON_APPEND_UTF8(&set, "state", state);
	BSON_APPEND_DATE_TIME(&set, "nextAt", next_at);
	bson_append_document_end(&u, &set);
	if (!mongoc_collection_update_one(outbox, &q, &u, NULL, NULL, &berr))
		log_warn("notifier: cannot record a delivery (it will be "
		    "repeated)", "{s:s}", "error", berr.message);
	bson_destroy(&q);
	bson_destroy(&u);
}

/* The order the document announces, as the API shows it; NULL if gone. */
static json_t *
order_of(mongoc_client_t *m, const bson_oid_t *id)
{
	mongoc_collection_t	*orders;
	bson_error_t		 berr;
	bson_t			*q, *doc;
	json_t			*o;

	orders = db_coll(m, DB_ORDERS);
	q = BCON_NEW("_id", BCON_OID(id));
	doc = NULL;
	o = NULL;
	if (db_find_doc(orders, q, NULL, &doc, &berr) == 0 && doc != NULL) {
		o = orders_json(doc);
		bson_destroy(doc);
	}
	bson_destroy(q);
	mongoc_collection_destroy(orders);
	return (o);
}

/* Deliver what is due of the claimed document id. */
static void
deliver(struct sender *s, mongoc_collection_t *outbox, const bson_oid_t *id)
{
	struct target	 t[TARGETS_MAX];
	struct notice	 n;
	bson_error_t	 berr;
	bson_iter_t	 it;
	bson_oid_t	 order;
	bson_t		*q, *doc;
	int64_t		 retry_from, now;
	int		 nt, i;

	q = BCON_NEW("_id", BCON_OID(id));
	doc = NULL;
	if (db_find_doc(outbox, q, NULL, &doc, &berr) == -1 || doc == NULL) {
		bson_destroy(q);
		return;		/* the claim expires; tried again then */
	}
	bson_destroy(q);
	if ((nt = targets_read(doc, t)) == 0)
		nt = targets_make(s->mongo, doc, t);
	retry_from = bson_iter_init_find(&it, doc, "retryFrom") ?
	    bson_iter_date_time(&it) : db_now_ms();
	memset(&n, 0, sizeof(n));
	outbox_event_id(id, n.event_id);
	n.event = bson_iter_init_find(&it, doc, "event") &&
	    BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) :
	    OUTBOX_ORDER_COMPLETED;
	if (outbox_order_id(doc, &order) == -1 ||
	    (n.order = order_of(s->mongo, &order)) == NULL) {
		bson_destroy(doc);
		return;		/* not readable now: after the lease */
	}
	now = db_now_ms();
	for (i = 0; i < nt && !stop_requested(); i++) {
		if (strcmp(t[i].state, OUTBOX_PENDING) == 0 &&
		    t[i].next_at <= now)
			send_one(s, &n, &t[i], retry_from);
	}
	write_back(s, outbox, id, t, nt);
	json_decref(n.order);
	bson_destroy(doc);
}

static void *
sender_main(void *arg)
{
	struct sender		*s = arg;
	mongoc_collection_t	*outbox;
	bson_oid_t		 id;
	int			 r;

	s->mongo = mongoc_client_pool_pop(pool);
	outbox = db_coll(s->mongo, DB_OUTBOX);
	while (!stop_requested()) {
		if (checkouts_busy(s)) {
			stop_sleep_ms(IDLE_MS);
			continue;
		}
		if ((r = claim(s, outbox, &id)) == 1)
			deliver(s, outbox, &id);
		else
			stop_sleep_ms(r == 0 ? IDLE_MS : 1000);
	}
	mongoc_collection_destroy(outbox);
	mongoc_client_pool_push(pool, s->mongo);
	rconn_drop(&s->rc);
	return (NULL);
}

/*
 * Delivered documents older than NOTIFY_KEEP_DONE go: a done document's
 * nextAt is when it was delivered, and {state, nextAt} is indexed.
 */
static void
sweep_done(mongoc_collection_t *outbox)
{
	bson_error_t	 berr;
	bson_t		*q, reply;
	bson_iter_t	 it;

	if (cfg.notify_keep_done == 0)
		return;
	q = BCON_NEW("state", BCON_UTF8(OUTBOX_DONE), "nextAt", "{",
	    "$lt", BCON_DATE_TIME(db_now_ms() - cfg.notify_keep_done * 1000),
	    "}");
	if (!mongoc_collection_delete_many(outbox, q, NULL, &reply, &berr))
		log_warn("notifier: cannot remove delivered notifications",
		    "{s:s}", "error", berr.message);
	else if (bson_iter_init_find(&it, &reply, "deletedCount") &&
	    bson_iter_as_int64(&it) > 0)
		log_info("notifier: removed delivered notifications",
		    "{s:I}", "count", (json_int_t)bson_iter_as_int64(&it));
	bson_destroy(&reply);
	bson_destroy(q);
}

/*
 * Every GAUGE_MS: how many documents are pending and parked, to stats;
 * and the delivered ones past NOTIFY_KEEP_DONE removed.
 */
static void *
gauge_main(void *arg)
{
	struct sender		*s = arg;
	mongoc_collection_t	*outbox;
	bson_error_t		 berr;
	bson_t			*pq, *kq;
	int64_t			 pending, parked;

	s->mongo = mongoc_client_pool_pop(pool);
	outbox = db_coll(s->mongo, DB_OUTBOX);
	pq = BCON_NEW("state", BCON_UTF8(OUTBOX_PENDING));
	kq = BCON_NEW("state", BCON_UTF8(OUTBOX_PARKED));
	while (!stop_requested()) {
		pending = mongoc_collection_count_documents(outbox, pq, NULL,
		    NULL, NULL, &berr);
		parked = mongoc_collection_count_documents(outbox, kq, NULL,
		    NULL, NULL, &berr);
		if (pending >= 0 && parked >= 0)
			freeReplyObject(rconn_cmd(&s->rc, "HSET %s "
			    "notify_pending %lld notify_parked %lld", RK_STATS,
			    (long long)pending, (long long)parked));
		sweep_done(outbox);
		/* Alive, for the ops console (GET /api/admin/workers). */
		freeReplyObject(rconn_cmd(&s->rc, "FCALL %s 0 %s notifier "
		    "%lld 0 0 0 0 0 %d", FN_HEARTBEAT, s->rc.name,
		    (long long)db_now_ms(), GAUGE_MS / 1000 * 3));
		stop_sleep_ms(GAUGE_MS);
	}
	bson_destroy(pq);
	bson_destroy(kq);
	mongoc_collection_destroy(outbox);
	mongoc_client_pool_push(pool, s->mongo);
	rconn_drop(&s->rc);
	return (NULL);
}

/* WEBHOOK_URLS, split. */
static int
read_webhooks(char *err, size_t errlen)
{
	char	copy[sizeof(cfg.webhook_urls)], *url, *save;

	memcpy(copy, cfg.webhook_urls, sizeof(copy));
	for (url = strtok_r(copy, ",", &save); url != NULL;
	    url = strtok_r(NULL, ",", &save)) {
		if (nwebhooks == TARGETS_MAX - 1) {
			snprintf(err, errlen, "WEBHOOK_URLS: at most %d URLs",
			    TARGETS_MAX - 1);
			return (-1);
		}
		snprintf(webhooks[nwebhooks++], sizeof(webhooks[0]), "%s", url);
	}
	return (0);
}

static void
fail(const char *msg)
{
	fprintf(stderr, "notifier: %s\n", msg);
	exit(1);
}

int
main(void)
{
	struct sender	*ss, gauge;
	char		 err[512], host[64];
	long		 i;
	int		 sig;

	config_without_jwt();
	if (config_load(err, sizeof(err)) == -1)
		fail(err);
	log_init("notifier");
	if (sodium_init() < 0 || notify_init(err, sizeof(err)) == -1 ||
	    read_webhooks(err, sizeof(err)) == -1)
		fail(err[0] != '\0' ? err : "cannot initialise libsodium");
	pool = db_pool_new("checkout-notifier", (int)cfg.notify_threads + 2,
	    err, sizeof(err));
	if (pool == NULL)
		fail(err);
	proc_init();
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	ss = calloc((size_t)cfg.notify_threads, sizeof(*ss));
	for (i = 0; i < cfg.notify_threads; i++) {
		ss[i].id = (int)i;
		snprintf(ss[i].rc.name, sizeof(ss[i].rc.name), "%.40s-%d-%ld",
		    host, (int)getpid(), i);
		proc_start(sender_main, &ss[i]);
	}
	memset(&gauge, 0, sizeof(gauge));
	snprintf(gauge.rc.name, sizeof(gauge.rc.name), "%.40s-%d-notifier",
	    host, (int)getpid());
	proc_start(gauge_main, &gauge);
	log_info("notifier: started", "{s:i, s:b, s:i}", "threads",
	    (int)cfg.notify_threads, "email", cfg.smtp_url[0] != '\0',
	    "webhooks", nwebhooks);
	sig = proc_wait();
	log_info("notifier: stopping", "{s:i}", "signal", sig);
	proc_stop();
	free(ss);
	mongoc_client_pool_destroy(pool);
	mongoc_cleanup();
	notify_cleanup();
	log_info("notifier: stopped", "{}");
	return (0);
}
