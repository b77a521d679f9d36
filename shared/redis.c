/*
 * redis.c -- synchronous connections for the worker and shopctl.
 */
#include <stdio.h>

#include "config.h"
#include "redis.h"

static int
setup(redisContext *c, char *err, size_t errlen)
{
	redisReply	*r;

	if (cfg.redis_password[0] != '\0') {
		r = redisCommand(c, "AUTH %s", cfg.redis_password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "REDIS_URL: AUTH failed: %s",
			    r != NULL ? r->str : c->errstr);
			if (r != NULL)
				freeReplyObject(r);
			return (-1);
		}
		freeReplyObject(r);
	}
	r = redisCommand(c, "SELECT %d", cfg.redis_db);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "REDIS_URL: SELECT %d failed: %s",
		    cfg.redis_db, r != NULL ? r->str : c->errstr);
		if (r != NULL)
			freeReplyObject(r);
		return (-1);
	}
	freeReplyObject(r);
	return (0);
}

redisContext *
redis_connect(char *err, size_t errlen)
{
	redisContext	*c;
	struct timeval	 tv;

	tv.tv_sec = cfg.redis_timeout_ms / 1000;
	tv.tv_usec = (cfg.redis_timeout_ms % 1000) * 1000;
	c = redisConnectWithTimeout(cfg.redis_host, cfg.redis_port, tv);
	if (c == NULL || c->err) {
		snprintf(err, errlen, "REDIS_URL: cannot connect to %s:%d: %s",
		    cfg.redis_host, cfg.redis_port,
		    c != NULL ? c->errstr : "out of memory");
		if (c != NULL)
			redisFree(c);
		return (NULL);
	}
	if (redisSetTimeout(c, tv) != REDIS_OK || setup(c, err, errlen) == -1) {
		if (c->err)
			snprintf(err, errlen, "REDIS_URL: %s", c->errstr);
		redisFree(c);
		return (NULL);
	}
	redisEnableKeepAlive(c);
	return (c);
}
