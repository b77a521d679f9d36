/*
 * main.c -- the checkout worker process.
 *
 * Joins the consumer group of the checkout stream (creating both if
 * missing), refuses a MongoDB server without transactions, then runs
 * WORKER_CONSUMERS consumers and a reclaimer until SIGTERM or SIGINT:
 * then it stops taking jobs, lets each consumer finish the job in hand,
 * and exits 0.  Redis or MongoDB going away does not stop it: consumers
 * reconnect and retry, and jobs stay pending in the stream meanwhile.
 */
#include <sys/time.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "worker.h"

volatile sig_atomic_t	 worker_stopping;
mongoc_client_pool_t	*worker_mongo;

static char		 hostpid[80];

static void
on_signal(int sig)
{
	(void)sig;
	worker_stopping = 1;
}

void
worker_sleep_ms(long ms)
{
	struct timespec	ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !worker_stopping)
		;
}

/* Connect c->redis if needed: 0, or -1 (logged, retry later). */
int
worker_redis(struct consumer *c)
{
	char	err[512];

	if (c->redis != NULL)
		return (0);
	if ((c->redis = redis_connect(err, sizeof(err))) == NULL) {
		log_warn("worker: redis unavailable", "{s:s, s:s}", "consumer",
		    c->name, "error", err);
		return (-1);
	}
	return (0);
}

/*
 * Run a command on c's connection, connecting first if needed.  Returns
 * the reply (freeReplyObject it), or NULL after an I/O error, which also
 * drops the connection so that the next call reconnects.  A Redis error
 * reply is returned as a reply.
 */
redisReply *
worker_vcmd(struct consumer *c, const char *fmt, va_list ap)
{
	redisReply	*r;

	if (worker_redis(c) == -1)
		return (NULL);
	if ((r = redisvCommand(c->redis, fmt, ap)) == NULL)
		worker_redis_drop(c);
	return (r);
}

redisReply *
worker_cmd(struct consumer *c, const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;

	va_start(ap, fmt);
	r = worker_vcmd(c, fmt, ap);
	va_end(ap);
	return (r);
}

void
worker_redis_drop(struct consumer *c)
{
	if (c->redis != NULL)
		redisFree(c->redis);
	c->redis = NULL;
}

/* XGROUP CREATE ... MKSTREAM; an existing group is fine. */
static int
join_group(redisContext *r)
{
	redisReply	*rep;
	int		 ok;

	rep = redisCommand(r, "XGROUP CREATE %s %s 0 MKSTREAM", RK_STREAM,
	    RK_GROUP);
	if (rep == NULL)
		return (-1);
	ok = rep->type != REDIS_REPLY_ERROR ||
	    strncmp(rep->str, "BUSYGROUP", 9) == 0;
	if (!ok)
		log_error("worker: XGROUP CREATE failed", "{s:s}", "error",
		    rep->str);
	freeReplyObject(rep);
	return (ok ? 0 : -1);
}

/* Check both dependencies once at start; exit with one line if not. */
static void
preflight(void)
{
	redisContext	*r;
	mongoc_client_t	*m;
	char		 err[512];

	if ((r = redis_connect(err, sizeof(err))) == NULL) {
		fprintf(stderr, "worker: %s\n", err);
		exit(1);
	}
	if (join_group(r) == -1) {
		fprintf(stderr, "worker: REDIS_URL: cannot create the consumer "
		    "group (is it Redis 6.2 or newer?)\n");
		exit(1);
	}
	redisFree(r);
	m = mongoc_client_pool_pop(worker_mongo);
	if (db_check_server(m, err, sizeof(err)) == -1) {
		fprintf(stderr, "worker: %s\n", err);
		exit(1);
	}
	mongoc_client_pool_push(worker_mongo, m);
}

/*
 * Read one batch for c: its own pending entries first (after a restart
 * or a failure), then new ones.  Returns the reply (freeReplyObject it)
 * or NULL on a Redis error.
 */
static redisReply *
read_batch(struct consumer *c, int pending)
{
	return (redisCommand(c->redis, "XREADGROUP GROUP %s %s COUNT 1 "
	    "BLOCK 1000 STREAMS %s %s", RK_GROUP, c->name, RK_STREAM,
	    pending ? "0" : ">"));
}

/* Hand every entry of an XREADGROUP reply to checkout_job(). */
static int
handle_batch(struct consumer *c, redisReply *rep)
{
	redisReply	*entries;
	size_t		 i;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
		return (0);
	entries = rep->element[0]->element[1];
	for (i = 0; i < entries->elements; i++)
		checkout_job(c, entries->element[i], -1);
	return ((int)entries->elements);
}

static void *
consumer_main(void *arg)
{
	struct consumer	*c = arg;
	redisReply	*rep;
	int		 pending, n;

	c->mongo = mongoc_client_pool_pop(worker_mongo);
	pending = 1;
	while (!worker_stopping) {
		if (worker_redis(c) == -1) {
			worker_sleep_ms(500);
			continue;
		}
		if ((rep = read_batch(c, pending)) == NULL) {
			worker_redis_drop(c);
			worker_sleep_ms(200);
			continue;
		}
		if (rep->type == REDIS_REPLY_ERROR &&
		    strncmp(rep->str, "NOGROUP", 7) == 0)
			join_group(c->redis);
		n = handle_batch(c, rep);
		freeReplyObject(rep);
		if (pending && n == 0)
			pending = 0;
	}
	worker_redis_drop(c);
	mongoc_client_pool_push(worker_mongo, c->mongo);
	return (NULL);
}

static void
start_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
main(void)
{
	struct consumer	*cs;
	pthread_t	 reclaimer;
	char		 err[512], host[64];
	long		 i;

	if (config_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "worker: %s\n", err);
		return (1);
	}
	log_init("worker");
	if (sodium_init() < 0)
		return (1);
	worker_mongo = db_pool_new("checkout-worker", (int)cfg.consumers + 2,
	    err, sizeof(err));
	if (worker_mongo == NULL) {
		fprintf(stderr, "worker: %s\n", err);
		return (1);
	}
	start_signals();
	preflight();
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(hostpid, sizeof(hostpid), "%.40s-%d", host, (int)getpid());
	cs = calloc((size_t)cfg.consumers, sizeof(*cs));
	for (i = 0; i < cfg.consumers; i++) {
		cs[i].id = (int)i;
		snprintf(cs[i].name, sizeof(cs[i].name), "%.70s-%d", hostpid, (int)i);
		pthread_create(&cs[i].tid, NULL, consumer_main, &cs[i]);
	}
	pthread_create(&reclaimer, NULL, reclaim_main, hostpid);
	log_info("worker: started", "{s:s, s:i, s:s, s:s}", "name", hostpid,
	    "consumers", (int)cfg.consumers, "stream", RK_STREAM,
	    "group", RK_GROUP);
	for (i = 0; i < cfg.consumers; i++)
		pthread_join(cs[i].tid, NULL);
	pthread_join(reclaimer, NULL);
	log_info("worker: stopped", "{s:s}", "name", hostpid);
	free(cs);
	mongoc_client_pool_destroy(worker_mongo);
	mongoc_cleanup();
	return (0);
}
