/*
 * redis.c -- synchronous connections for the worker and shopctl, and the
 * argument lists every process builds its commands with.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "protocol.h"
#include "redis.h"

/* Run one setup command; -1 with "REDIS_URL: <what> failed: ..." in err. */
static int
setup_cmd(redisContext *c, const char *what, char *err, size_t errlen,
    const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "REDIS_URL: %s failed: %s", what,
		    r != NULL ? r->str : c->errstr);
		if (r != NULL)
			freeReplyObject(r);
		return (-1);
	}
	freeReplyObject(r);
	return (0);
}

static int
setup(redisContext *c, char *err, size_t errlen)
{
	if (cfg.redis_password[0] != '\0' && setup_cmd(c, "AUTH", err, errlen,
	    "AUTH %s", cfg.redis_password) == -1)
		return (-1);
	if (setup_cmd(c, "SELECT", err, errlen, "SELECT %d",
	    cfg.redis_db) == -1)
		return (-1);
	if (setup_cmd(c, "FUNCTION LOAD (Redis 7.0 or newer is needed)", err,
	    errlen, "FUNCTION LOAD REPLACE %s", protocol_library) == -1)
		return (-1);
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

/* ----- argument lists ----- */

static void
grow(struct rargs *a)
{
	if (a->n < a->cap)
		return;
	a->cap = a->cap == 0 ? 16 : a->cap * 2;
	if ((a->own = realloc(a->own, (size_t)a->cap * sizeof(*a->own))) ==
	    NULL ||
	    (a->v = realloc(a->v, (size_t)a->cap * sizeof(*a->v))) == NULL ||
	    (a->len = realloc(a->len, (size_t)a->cap * sizeof(*a->len))) ==
	    NULL) {
		fprintf(stderr, "rargs: out of memory\n");
		abort();
	}
}

/* Append s, which a now owns. */
static void
put(struct rargs *a, char *s)
{
	grow(a);
	a->own[a->n] = s;
	a->v[a->n] = s;
	a->len[a->n] = strlen(s);
	a->n++;
}

void
rargs_init(struct rargs *a, const char *first)
{
	memset(a, 0, sizeof(*a));
	rargs_add(a, first);
}

void
rargs_fcall(struct rargs *a, const char *fn, int nkeys)
{
	rargs_init(a, "FCALL");
	rargs_add(a, fn);
	rargs_addf(a, "%d", nkeys);
}

void
rargs_add(struct rargs *a, const char *s)
{
	char	*copy;

	if ((copy = strdup(s)) == NULL) {
		fprintf(stderr, "rargs: out of memory\n");
		abort();
	}
	put(a, copy);
}

void
rargs_addf(struct rargs *a, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1) {
		fprintf(stderr, "rargs: out of memory\n");
		abort();
	}
	va_end(ap);
	put(a, s);
}

void
rargs_free(struct rargs *a)
{
	int	i;

	for (i = 0; i < a->n; i++)
		free(a->own[i]);
	free(a->own);
	free(a->v);
	free(a->len);
	memset(a, 0, sizeof(*a));
}
