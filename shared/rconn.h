/*
 * rconn.h -- a thread's synchronous Redis connection (rconn.c): made on
 * first use, re-made after an error or a failover, checked for the
 * checkout library.  Replies are new (freeReplyObject them); NULL means
 * Redis is away.
 */
#ifndef SHARED_RCONN_H
#define SHARED_RCONN_H

#include <stdarg.h>

#include <hiredis/hiredis.h>

struct rargs;

struct rconn {
	char		 name[96];	/* in logs: whose connection */
	redisContext	*redis;		/* NULL while disconnected */
};

int		rconn_up(struct rconn *);
void		rconn_drop(struct rconn *);
redisReply	*rconn_cmd(struct rconn *, const char *fmt, ...);
redisReply	*rconn_vcmd(struct rconn *, const char *fmt, va_list);
redisReply	*rconn_argv(struct rconn *, const struct rargs *);
redisReply	*rconn_persist(struct rconn *, const struct rargs *);
redisReply	*rconn_persist_durable(struct rconn *, const struct rargs *);
redisReply	*rconn_durable(struct rconn *, const struct rargs *);
int		rconn_pipeline(struct rconn *, const struct rargs *cmds,
		    int n, redisReply **out);
int		rconn_persist_pipeline(struct rconn *,
		    const struct rargs *cmds, int n, redisReply **out);
void		rconn_free(redisReply **, struct rargs *, int n);

#endif
