/*
 * main.c -- the checkout worker process.
 *
 * Joins the consumer group of the checkout stream (creating both if
 * missing), refuses a MongoDB server without transactions, then runs
 * WORKER_CONSUMERS consumers, a reclaimer and a sweeper (sweep.c) until
 * SIGTERM or SIGINT:
 * then it stops taking jobs, lets each consumer finish the batch in
 * hand, and exits 0.  Redis or MongoDB going away does not stop it:
 * consumers reconnect and retry, and jobs stay pending in the stream
 * meanwhile.
 *
 * Each consumer reads up to BATCH_MAX entries at a time: whatever is
 * waiting, so a lone checkout on an idle system is placed at once and
 * batches grow only with the queue.  Its blocking read waits at most
 * half of REDIS_TIMEOUT_MS, inside the connection's own timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "worker.h"

mongoc_client_pool_t	*worker_mongo;

static char		 hostpid[80];

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
		    "group (is it Redis 7.0 or newer?)\n");
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
 * Read for c: its own pending entries first (after a restart or a
 * failure), then new ones, up to BATCH_MAX.  Returns the reply
 * (freeReplyObject it) or NULL on a Redis error.
 */
static redisReply *
read_batch(struct consumer *c, int pending)
{
	long	block;

	block = cfg.redis_timeout_ms / 2 < 1000 ? cfg.redis_timeout_ms / 2 :
	    1000;
	return (rconn_cmd(&c->rc, "XREADGROUP GROUP %s %s COUNT %ld BLOCK %ld "
	    "STREAMS %s %s", RK_GROUP, c->rc.name, cfg.batch_max, block,
	    RK_STREAM, pending ? "0" : ">"));
}

/* Run every entry of an XREADGROUP reply as one batch; how many. */
static int
handle(struct consumer *c, redisReply *rep)
{
	redisReply	*entries;
	struct job	*jobs;
	int		 i, n;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0 ||
	    rep->element[0]->type != REDIS_REPLY_ARRAY ||
	    rep->element[0]->elements < 2)
		return (0);
	entries = rep->element[0]->element[1];
	if ((n = (int)entries->elements) == 0)
		return (0);
	jobs = calloc((size_t)n, sizeof(*jobs));
	for (i = 0; i < n; i++)
		job_parse(entries->element[i], &jobs[i]);
	batch_run(c, jobs, n);
	for (i = 0; i < n; i++)
		job_clear(&jobs[i]);
	free(jobs);
	return (n);
}

static void *
consumer_main(void *arg)
{
	struct consumer	*c = arg;
	redisReply	*rep;
	int		 pending, n;

	c->mongo = mongoc_client_pool_pop(worker_mongo);
	pending = 1;
	while (!stop_requested()) {
		if ((rep = read_batch(c, pending)) == NULL) {
			stop_sleep_ms(200);
			continue;
		}
		if (rep->type == REDIS_REPLY_ERROR &&
		    strncmp(rep->str, "NOGROUP", 7) == 0)
			join_group(c->rc.redis);
		n = handle(c, rep);
		freeReplyObject(rep);
		if (pending && n == 0)
			pending = 0;
	}
	rconn_drop(&c->rc);
	mongoc_client_pool_push(worker_mongo, c->mongo);
	return (NULL);
}

int
main(void)
{
	struct consumer	*cs;
	char		 err[512], host[64];
	long		 i;
	int		 sig;

	config_without_jwt();		/* it checks no tokens */
	if (config_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "worker: %s\n", err);
		return (1);
	}
	log_init("worker");
	if (sodium_init() < 0)
		return (1);
	worker_mongo = db_pool_new("checkout-worker", (int)cfg.consumers + 3,
	    err, sizeof(err));
	if (worker_mongo == NULL) {
		fprintf(stderr, "worker: %s\n", err);
		return (1);
	}
	proc_init();
	preflight();
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(hostpid, sizeof(hostpid), "%.40s-%d", host, (int)getpid());
	cs = calloc((size_t)cfg.consumers, sizeof(*cs));
	for (i = 0; i < cfg.consumers; i++) {
		cs[i].id = (int)i;
		snprintf(cs[i].rc.name, sizeof(cs[i].rc.name), "%.70s-%d",
		    hostpid, (int)i);
		proc_start(consumer_main, &cs[i]);
	}
	proc_start(reclaim_main, hostpid);
	proc_start(sweep_main, hostpid);
	proc_start(keep_main, hostpid);
	log_info("worker: started", "{s:s, s:i, s:s, s:s, s:i}", "name",
	    hostpid, "consumers", (int)cfg.consumers, "stream", RK_STREAM,
	    "group", RK_GROUP, "batchMax", (int)cfg.batch_max);
	sig = proc_wait();
	log_info("worker: stopping", "{s:s, s:i}", "name", hostpid,
	    "signal", sig);
	proc_stop();
	log_info("worker: stopped", "{s:s}", "name", hostpid);
	free(cs);
	mongoc_client_pool_destroy(worker_mongo);
	mongoc_cleanup();
	return (0);
}
