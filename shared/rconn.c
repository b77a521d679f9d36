/*
 * rconn.c -- a thread's synchronous Redis connection, for the worker, the
 * notifier and shopctl (rconn.h).
 *
 * Each thread owns one connection, opened on first use and dropped after
 * any I/O error, or when the server turns out to be a replica (a
 * failover) or to have lost the checkout library, so that the next call
 * reconnects to the primary and checks for the library (redis.c).  A
 * call returns NULL while Redis is away: the caller keeps its work and
 * tries again later.  The persist variants try until Redis answers or
 * the program stops, for results that must not be lost; the durable one
 * also WAITs for REDIS_MIN_REPLICAS.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "proc.h"
#include "rconn.h"
#include "redis.h"

#define PERSIST_WAIT_MS	200

/* Connect c->redis if needed: 0, or -1 (logged). */
int
rconn_up(struct rconn *c)
{
	char	err[512];

	if (c->redis != NULL)
		return (0);
	if ((c->redis = redis_connect(err, sizeof(err))) == NULL) {
		log_warn("redis unavailable", "{s:s, s:s}", "conn", c->name,
		    "error", err);
		return (-1);
	}
	return (0);
}

void
rconn_drop(struct rconn *c)
{
	if (c->redis != NULL)
		redisFree(c->redis);
	c->redis = NULL;
}

/*
 * Redis lost our library (FUNCTION FLUSH, a new empty server), or the
 * server is a replica now (a failover demoted it): drop the connection,
 * so that reconnecting finds the primary and checks for the library.
 */
static int
lost_library(struct rconn *c, redisReply *r)
{
	if (redis_readonly(r)) {
		log_warn("redis is no longer the primary; reconnecting",
		    "{s:s}", "error", r->str);
		rconn_drop(c);
		return (1);
	}
	if (!redis_no_library(r))
		return (0);
	/* Reconnecting checks for it again (shopctl migrate loads it). */
	log_warn("redis lost the checkout library; run shopctl migrate",
	    NULL);
	rconn_drop(c);
	return (1);
}

redisReply *
rconn_vcmd(struct rconn *c, const char *fmt, va_list ap)
{
	redisReply	*r;

	if (rconn_up(c) == -1)
		return (NULL);
	if ((r = redisvCommand(c->redis, fmt, ap)) == NULL)
		rconn_drop(c);
	else if (redis_readonly(r)) {
		lost_library(c, r);
		freeReplyObject(r);
		r = NULL;
	}
	return (r);
}

redisReply *
rconn_cmd(struct rconn *c, const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;

	va_start(ap, fmt);
	r = rconn_vcmd(c, fmt, ap);
	va_end(ap);
	return (r);
}

redisReply *
rconn_argv(struct rconn *c, const struct rargs *a)
{
	redisReply	*r;
	int		 tries;

	for (tries = 0; tries < 2; tries++) {
		if (rconn_up(c) == -1)
			return (NULL);
		r = redisCommandArgv(c->redis, a->n, a->v,
		    a->len);
		if (r == NULL) {
			rconn_drop(c);
			return (NULL);
		}
		if (!lost_library(c, r))
			return (r);
		freeReplyObject(r);
	}
	return (NULL);
}

int
rconn_pipeline(struct rconn *c, const struct rargs *cmds, int n,
    redisReply **out)
{
	void	*r;
	int	 i, j;

	if (rconn_up(c) == -1)
		return (-1);
	for (i = 0; i < n; i++)
		redisAppendCommandArgv(c->redis, cmds[i].n,
		    cmds[i].v, cmds[i].len);
	for (i = 0; i < n; i++) {
		if (redisGetReply(c->redis, &r) != REDIS_OK) {
			for (j = 0; j < i; j++)
				freeReplyObject(out[j]);
			rconn_drop(c);
			return (-1);
		}
		out[i] = r;
	}
	for (i = 0; i < n; i++) {
		if (lost_library(c, out[i])) {
			for (j = 0; j < n; j++)
				freeReplyObject(out[j]);
			return (-1);
		}
	}
	return (0);
}

redisReply *
rconn_persist(struct rconn *c, const struct rargs *a)
{
	redisReply	*r;

	while ((r = rconn_argv(c, a)) == NULL && !stop_requested())
		stop_sleep_ms(PERSIST_WAIT_MS);
	return (r);
}

int
rconn_persist_pipeline(struct rconn *c, const struct rargs *cmds, int n,
    redisReply **out)
{
	while (rconn_pipeline(c, cmds, n, out) == -1) {
		if (stop_requested())
			return (-1);
		stop_sleep_ms(PERSIST_WAIT_MS);
	}
	return (0);
}

/*
 * WAIT for r's write to reach the replicas: r, or NULL (r freed) if the
 * connection was lost before WAIT answered.  Replicas that do not
 * confirm within REDIS_WAIT_MS are logged, not waited for: the primary
 * that holds the write is alive.
 */
static redisReply *
confirmed(struct rconn *c, redisReply *r)
{
	redisReply	*w;

	if (cfg.redis_min_replicas == 0)
		return (r);
	w = rconn_cmd(c, "WAIT %ld %ld", cfg.redis_min_replicas,
	    cfg.redis_wait_ms);
	if (w != NULL && w->type == REDIS_REPLY_INTEGER) {
		if (w->integer < cfg.redis_min_replicas)
			log_warn("redis: a write not confirmed by a replica",
			    "{s:I, s:i}", "replicas", (json_int_t)w->integer,
			    "waited_ms", (int)cfg.redis_wait_ms);
		freeReplyObject(w);
		return (r);
	}
	if (w != NULL)
		freeReplyObject(w);
	freeReplyObject(r);
	return (NULL);
}

/*
 * rconn_persist() for a write that must reach REDIS_MIN_REPLICAS
 * replicas before the program goes on (a batch's results and acks): the
 * call, then WAIT on the same connection.  If the connection is lost
 * before WAIT answers (a failover), the write may be lost with the old
 * primary, so it is made again on the new one: a must be idempotent.
 * Replicas that do not confirm within REDIS_WAIT_MS are logged, not
 * waited for: the primary that holds the write is alive.
 */
redisReply *
rconn_persist_durable(struct rconn *c, const struct rargs *a)
{
	redisReply	*r;

	for (;;) {
		if ((r = rconn_persist(c, a)) == NULL)
			return (NULL);
		if ((r = confirmed(c, r)) != NULL || stop_requested())
			return (r);
		log_warn("redis lost before WAIT; writing again", NULL);
	}
}

/*
 * rconn_argv() for a write that must reach REDIS_MIN_REPLICAS replicas
 * before it is reported, tried once (shopctl): the reply, or NULL if
 * Redis was away or was lost before WAIT answered (then the write may be
 * lost: say so, and let the operator run it again; a must be idempotent).
 */
redisReply *
rconn_durable(struct rconn *c, const struct rargs *a)
{
	redisReply	*r;

	if ((r = rconn_argv(c, a)) == NULL)
		return (NULL);
	return (confirmed(c, r));
}

/* Free n replies and n argument lists. */
void
rconn_free(redisReply **replies, struct rargs *cmds, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		if (replies != NULL && replies[i] != NULL)
			freeReplyObject(replies[i]);
		if (cmds != NULL)
			rargs_free(&cmds[i]);
	}
}
