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

/* Is this the primary?  A replica is never written to. */
static int
check_primary(redisContext *c, char *err, size_t errlen)
{
	redisReply	*r;
	int		 ok;

	if ((r = redisCommand(c, "ROLE")) == NULL) {
		snprintf(err, errlen, "REDIS_URL: ROLE failed: %s", c->errstr);
		return (-1);
	}
	ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0;
	freeReplyObject(r);
	if (!ok)
		snprintf(err, errlen, "REDIS_URL: %s is not a primary (a "
		    "replica is never written to)", cfg.nsentinels > 0 ?
		    "the server the Sentinels named" : "the server");
	return (ok ? 0 : -1);
}

static int	loads_library;	/* redis_load_library() was called */

void
redis_load_library(void)
{
	loads_library = 1;
}

int
redis_library_matches(const redisReply *r)
{
	const redisReply	*lib;
	size_t			 i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
	    (lib = r->element[0])->type != REDIS_REPLY_ARRAY)
		return (0);
	for (i = 0; i + 1 < lib->elements; i += 2) {
		if (lib->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(lib->element[i]->str, "library_code") == 0)
			return (lib->element[i + 1]->type ==
			    REDIS_REPLY_STRING &&
			    strcmp(lib->element[i + 1]->str,
			    protocol_library) == 0);
	}
	return (0);
}

/* The library as this build has it: loaded (shopctl) or checked. */
static int
library(redisContext *c, char *err, size_t errlen)
{
	redisReply	*r;
	int		 ok;

	if (loads_library)
		return (setup_cmd(c, "FUNCTION LOAD (Redis 7.0 or newer is "
		    "needed)", err, errlen, "FUNCTION LOAD REPLACE %s",
		    protocol_library));
	r = redisCommand(c, "FUNCTION LIST LIBRARYNAME %s WITHCODE",
	    PROTOCOL_LIBRARY_NAME);
	ok = redis_library_matches(r);
	if (!ok)
		snprintf(err, errlen, "REDIS_URL: %s", r != NULL &&
		    r->type == REDIS_REPLY_ERROR ? r->str : REDIS_NO_LIBRARY);
	if (r != NULL)
		freeReplyObject(r);
	return (ok ? 0 : -1);
}

static int
setup(redisContext *c, char *err, size_t errlen)
{
	if (cfg.redis_password[0] != '\0' && (cfg.redis_user[0] != '\0' ?
	    setup_cmd(c, "AUTH", err, errlen, "AUTH %s %s", cfg.redis_user,
	    cfg.redis_password) : setup_cmd(c, "AUTH", err, errlen, "AUTH %s",
	    cfg.redis_password)) == -1)
		return (-1);
	if (check_primary(c, err, errlen) == -1)
		return (-1);
	if (setup_cmd(c, "SELECT", err, errlen, "SELECT %d",
	    cfg.redis_db) == -1)
		return (-1);
	return (library(c, err, errlen));
}

static struct timeval
timeout_of(long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return (tv);
}

/* A Sentinel's answer to get-master-addr-by-name: 0 and the address. */
static int
primary_of(const redisReply *r, char *host, size_t hostlen, int *port)
{
	long	n;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len >= hostlen)
		return (-1);
	n = strtol(r->element[1]->str, NULL, 10);
	if (n < 1 || n > 65535)
		return (-1);
	memcpy(host, r->element[0]->str, r->element[0]->len + 1);
	*port = (int)n;
	return (0);
}

int
sentinel_vote(struct sentinel_votes *v, const redisReply *r, char *host,
    size_t hostlen, int *port)
{
	char	h[256];
	int	p, i;

	v->asked++;
	if (primary_of(r, h, sizeof(h), &p) == -1)
		return (0);
	for (i = 0; i < v->nseen; i++)
		if (v->seen[i].port == p && strcmp(v->seen[i].host, h) == 0)
			break;
	if (i == v->nseen) {
		if (v->nseen == (int)(sizeof(v->seen) / sizeof(v->seen[0])))
			return (0);
		memcpy(v->seen[i].host, h, sizeof(h));
		v->seen[i].port = p;
		v->seen[i].votes = 0;
		v->nseen++;
	}
	if (++v->seen[i].votes < cfg.nsentinels / 2 + 1 ||
	    strlen(h) >= hostlen)
		return (0);
	memcpy(host, h, strlen(h) + 1);
	*port = p;
	return (1);
}

/* One Sentinel's answer (NULL if it gave none): AUTH, then the question. */
static redisReply *
ask_sentinel(int i, struct timeval tv)
{
	redisContext	*c;
	redisReply	*r;

	c = redisConnectWithTimeout(cfg.sentinels[i].host,
	    cfg.sentinels[i].port, tv);
	if (c == NULL || c->err) {
		if (c != NULL)
			redisFree(c);
		return (NULL);
	}
	redisSetTimeout(c, tv);
	r = NULL;
	if (cfg.redis_sentinel_password[0] != '\0')
		r = redisCommand(c, "AUTH %s", cfg.redis_sentinel_password);
	if (cfg.redis_sentinel_password[0] == '\0' ||
	    (r != NULL && r->type != REDIS_REPLY_ERROR)) {
		if (r != NULL)
			freeReplyObject(r);
		r = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
		    cfg.redis_master_name);
	}
	redisFree(c);
	return (r);
}

int
redis_primary(char *host, size_t hostlen, int *port, char *err,
    size_t errlen)
{
	struct sentinel_votes	 votes;
	redisReply		*r;
	struct timeval		 tv;
	int			 i, named, found;

	tv = timeout_of(cfg.redis_timeout_ms < SENTINEL_TIMEOUT_MS ?
	    cfg.redis_timeout_ms : SENTINEL_TIMEOUT_MS);
	memset(&votes, 0, sizeof(votes));
	found = 0;
	for (i = 0; i < cfg.nsentinels && !found; i++) {
		r = ask_sentinel(i, tv);
		found = sentinel_vote(&votes, r, host, hostlen, port);
		if (r != NULL)
			freeReplyObject(r);
	}
	if (found)
		return (0);
	for (i = named = 0; i < votes.nseen; i++)
		named += votes.seen[i].votes;
	snprintf(err, errlen, "REDIS_SENTINELS: no majority of the %d "
	    "Sentinels named one primary \"%s\" (%d did; check them, "
	    "REDIS_SENTINEL_PASSWORD and REDIS_MASTER_NAME)", cfg.nsentinels,
	    cfg.redis_master_name, named);
	return (-1);
}

redisContext *
redis_connect(char *err, size_t errlen)
{
	redisContext	*c;
	struct timeval	 tv;
	char		 host[256];
	int		 port;

	snprintf(host, sizeof(host), "%s", cfg.redis_host);
	port = cfg.redis_port;
	if (cfg.nsentinels > 0 &&
	    redis_primary(host, sizeof(host), &port, err, errlen) == -1)
		return (NULL);
	tv = timeout_of(cfg.redis_timeout_ms);
	c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err) {
		snprintf(err, errlen, "REDIS_URL: cannot connect to %s:%d: %s",
		    host, port, c != NULL ? c->errstr : "out of memory");
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

int
redis_no_library(const redisReply *r)
{
	return (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "Function not found") != NULL);
}

int
redis_readonly(const redisReply *r)
{
	return (r != NULL && r->type == REDIS_REPLY_ERROR &&
	    (strncmp(r->str, "READONLY", 8) == 0 ||
	    strncmp(r->str, "MASTERDOWN", 10) == 0 ||
	    strncmp(r->str, "NOREPLICAS", 10) == 0));
}

/* ----- argument lists ----- */

static void
no_memory(void)
{
	fprintf(stderr, "rargs: out of memory\n");
	abort();
}

/* Room for one more argument of n bytes (and its NUL) in a. */
static void
grow(struct rargs *a, size_t n)
{
	size_t	off;
	int	i;

	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 32 : a->cap * 2;
		if ((a->v = realloc(a->v, (size_t)a->cap * sizeof(*a->v))) ==
		    NULL || (a->len = realloc(a->len, (size_t)a->cap *
		    sizeof(*a->len))) == NULL)
			no_memory();
	}
	if (a->used + n + 1 <= a->size)
		return;
	while (a->used + n + 1 > a->size)
		a->size = a->size == 0 ? 512 : a->size * 2;
	if ((a->buf = realloc(a->buf, a->size)) == NULL)
		no_memory();
	/* The buffer may have moved: point v at it again. */
	for (i = 0, off = 0; i < a->n; off += a->len[i] + 1, i++)
		a->v[i] = a->buf + off;
}

/* The argument just written at the end of buf, n bytes long. */
static void
put(struct rargs *a, size_t n)
{
	a->v[a->n] = a->buf + a->used;
	a->len[a->n] = n;
	a->buf[a->used + n] = '\0';
	a->used += n + 1;
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
	size_t	n = strlen(s);

	grow(a, n);
	memcpy(a->buf + a->used, s, n);
	put(a, n);
}

void
rargs_addf(struct rargs *a, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	grow(a, 0);
	va_start(ap, fmt);
	n = vsnprintf(a->buf + a->used, a->size - a->used, fmt, ap);
	va_end(ap);
	if (n < 0)
		no_memory();
	if ((size_t)n >= a->size - a->used) {	/* cut short: again */
		grow(a, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(a->buf + a->used, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	put(a, (size_t)n);
}

void
rargs_free(struct rargs *a)
{
	free(a->v);
	free(a->len);
	free(a->buf);
	memset(a, 0, sizeof(*a));
}
