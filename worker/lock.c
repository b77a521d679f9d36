/*
 * lock.c -- the per-user lock (one checkout per user at a time) and the
 * per-product locks that queue up the orders of a contended product.
 *
 * SET lock:user:<id> <token> NX PX LOCK_TTL_MS takes it; the token is 16
 * random bytes, and release deletes the key only if it still holds our
 * token (Lua compare-and-delete), never with a bare DEL: a worker whose
 * lock expired must not free the lock a second worker has taken since.
 * The lock only keeps one user's checkouts from racing each other; the
 * transaction and the unique checkoutId are what keep orders exact.
 *
 * Product locks (lock:product:<id>) are taken only by a transaction that
 * has already hit a write conflict (order.c): every order of a product
 * on sale writes its stock, and without them concurrent transactions
 * kept aborting each other (a median of 7 to 15 attempts per order with
 * 16 consumers, and fewer orders per second than with 4).  Taken in id
 * order, so two workers never wait for each other in a circle.
 */
#include <stdlib.h>
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

static int
cmp_id(const void *a, const void *b)
{
	return (strcmp(a, b));
}

/*
 * Take the locks of n products (ids of 25 bytes each, sorted here),
 * waiting up to LOCK_TTL_MS for each.  Returns how many it took, in
 * order; a lock not taken in time is skipped: the transaction stays
 * correct without it, only slower.
 */
int
lock_products(struct consumer *c, char (*ids)[25], int n, const char *token)
{
	redisReply	*r;
	int64_t		 waited;
	int		 i, got;

	qsort(ids, (size_t)n, sizeof(ids[0]), cmp_id);
	for (i = 0, got = 0; i < n; i++) {
		for (waited = 0; waited < cfg.lock_ttl_ms && !worker_stopping;
		    waited += 2) {
			r = worker_cmd(c, "SET %s%s %s NX PX %ld", RK_LOCK_PRODUCT,
			    ids[i], token, cfg.lock_ttl_ms);
			if (r != NULL && r->type == REDIS_REPLY_STATUS) {
				freeReplyObject(r);
				got++;
				break;
			}
			if (r != NULL)
				freeReplyObject(r);
			worker_sleep_ms(2);
		}
	}
	return (got);
}

/* Release the product locks still holding token. */
void
unlock_products(struct consumer *c, char (*ids)[25], int n, const char *token)
{
	int	i;

	for (i = 0; i < n; i++)
		freeReplyObject(worker_cmd(c, "EVAL %s 1 %s%s %s", release_lua,
		    RK_LOCK_PRODUCT, ids[i], token));
}
