/*
 * lock.c -- the per-user lock: one checkout per user at a time.
 *
 * SET lock:user:<id> <token> NX PX LOCK_TTL_MS takes it; the token is 16
 * random bytes, and release deletes the key only if it still holds our
 * token (Lua compare-and-delete), never with a bare DEL: a worker whose
 * lock expired must not free the lock a second worker has taken since.
 * The lock only keeps one user's checkouts from racing each other; the
 * transaction and the unique checkoutId are what keep orders exact.
 */
#include <string.h>

#include <sodium.h>

#include "../shared/config.h"
#include "../shared/redis.h"
#include "worker.h"

static const char release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "  return redis.call('DEL', KEYS[1]) "
    "end "
    "return 0";

void
lock_token(char *token, size_t len)
{
	unsigned char	raw[16];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, len, raw, sizeof(raw));
}

int
lock_take(struct consumer *c, const char *user, const char *token)
{
	redisReply	*r;
	int		 ret;

	if ((r = worker_cmd(c, "SET %s%s %s NX PX %ld", RK_LOCK, user, token,
	    cfg.lock_ttl_ms)) == NULL)
		return (-1);
	ret = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
	freeReplyObject(r);
	return (ret);
}

int
lock_release(struct consumer *c, const char *user, const char *token)
{
	redisReply	*r;

	if ((r = worker_cmd(c, "EVAL %s 1 %s%s %s", release_lua, RK_LOCK, user,
	    token)) == NULL)
		return (-1);
	freeReplyObject(r);
	return (0);
}
