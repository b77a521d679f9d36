/*
 * lock.c -- lock tokens, and the per-product locks that queue up the
 * orders of a contended product.
 *
 * The per-user lock (one checkout per user at a time) is taken and
 * released by the library's batch_begin and batch_finish
 * (shared/lua/protocol.lua): SET lock:user:<id> <token> NX PX LOCK_TTL_MS,
 * released only while it still holds our token, never with a bare DEL,
 * so that a worker whose lock expired cannot free the lock a second
 * worker has taken since.  The token is 16 random bytes from here.  The
 * lock only keeps one user's checkouts from racing each other; the
 * transaction and the unique checkoutId are what keep orders exact.
 *
 * Product locks (lock:product:<id>): a batch takes the locks of every
 * product it will order before its transaction, all or none at once
 * (locks_take), so batches that share a product run one after the
 * other instead of aborting each other with write conflicts, and two
 * holders never wait for each other in a circle.  A lock not taken
 * within LOCK_TTL_MS is given up: the transaction stays correct without
 * it, only slower.  A single product's lock passes between consumers of
 * this process without Redis when one waits for it (handoff.c).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../shared/config.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "handoff.h"
#include "worker.h"

#define PRODUCT_POLL_MS	1
#define HANDOFF_MS	100	/* a chain of handoffs, at most (handoff.c) */

void
lock_token(char *token, size_t len)
{
	unsigned char	raw[16];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, len, raw, sizeof(raw));
}

static void
names(struct rargs *a, char (*ids)[25], int n)
{
	int	i;

	for (i = 0; i < n; i++)
		rargs_addf(a, "%s%s", RK_LOCK_PRODUCT, ids[i]);
}

/* One try at the locks in Redis: 1 taken. */
static int
take(struct consumer *c, const struct rargs *a)
{
	redisReply	*r;
	int		 got;

	r = rconn_argv(&c->rc, a);
	got = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	if (r != NULL)
		freeReplyObject(r);
	return (got);
}

/*
 * Take the locks of n products (hex ids), all at once, waiting up to
 * LOCK_TTL_MS.  token (len bytes) is the new lock's; a lock handed on by
 * another consumer of this process comes with its own, written there.
 * Returns 1 if taken, 0 if not (given up, or the worker is stopping).
 */
int
lock_products(struct consumer *c, char (*ids)[25], int n, char *token,
    size_t len)
{
	struct rargs	 a;
	int64_t		 deadline;
	int		 got, local;

	rargs_fcall(&a, FN_LOCKS_TAKE, 0);
	rargs_add(&a, token);
	rargs_addf(&a, "%ld", cfg.lock_ttl_ms);
	names(&a, ids, n);
	got = 0;
	deadline = proc_now_ms() + cfg.lock_ttl_ms;
	while (proc_now_ms() < deadline && !stop_requested()) {
		local = n == 1 ? handoff_wait(ids[0], token, len, deadline,
		    stop_requested) : HANDOFF_NONE;
		if ((got = local == HANDOFF_TAKEN))
			break;
		if (local == HANDOFF_NONE && (got = take(c, &a))) {
			if (n == 1)
				handoff_taken(ids[0], token);
			break;
		}
		/* Released at the end of a chain: other processes first. */
		stop_sleep_ms(local == HANDOFF_RELEASED ? 2 * PRODUCT_POLL_MS :
		    PRODUCT_POLL_MS);
	}
	rargs_free(&a);
	return (got);
}

/*
 * Release the product locks still holding token, or hand a single one on
 * to a consumer of this process that waits for it.
 */
void
unlock_products(struct consumer *c, char (*ids)[25], int n, const char *token)
{
	struct rargs	a;

	if (n == 1 && handoff_give(ids[0], token, cfg.lock_ttl_ms / 4 <
	    HANDOFF_MS ? cfg.lock_ttl_ms / 4 : HANDOFF_MS))
		return;
	rargs_fcall(&a, FN_LOCKS_RELEASE, 0);
	rargs_add(&a, token);
	names(&a, ids, n);
	freeReplyObject(rconn_argv(&c->rc, &a));
	rargs_free(&a);
}
