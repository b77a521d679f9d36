/*
 * lock.c -- the per-user lock (one checkout per user at a time) and the
 * per-product locks that queue up the orders of a contended product.
 *
 * SET lock:user:<id> <token> NX PX LOCK_TTL_MS takes it; the token is 16
 * random bytes, and release deletes the key only if it still holds our
 * token (the library's lock_release, a compare-and-delete), never with
 * a bare DEL: a worker whose lock expired must not free the lock a
 * second worker has taken since.  A batch takes the locks of all its
 * users in one pipeline and releases them in another.  The lock only
 * keeps one user's checkouts from racing each other; the transaction
 * and the unique checkoutId are what keep orders exact.
 *
 * Product locks (lock:product:<id>) are taken only by a transaction that
 * has already hit a write conflict (order.c's on_rerun): every order of
 * a product on sale writes its stock, and without them concurrent
 * transactions kept aborting each other.  Taken in id order, so two
 * workers never wait for each other in a circle.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../shared/config.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "worker.h"

#define PRODUCT_POLL_MS	2

void
lock_token(char *token, size_t len)
{
	unsigned char	raw[16];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, len, raw, sizeof(raw));
}

static void
set_nx(struct rargs *a, const char *prefix, const char *id,
    const char *token)
{
	rargs_init(a, "SET");
	rargs_addf(a, "%s%s", prefix, id);
	rargs_add(a, token);
	rargs_add(a, "NX");
	rargs_add(a, "PX");
	rargs_addf(a, "%ld", cfg.lock_ttl_ms);
}

static int
taken(const redisReply *r)
{
	return (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0);
}

/* Take j's user's lock: 1 taken, 0 held by another, -1 Redis away. */
int
lock_take(struct consumer *c, struct job *j)
{
	struct rargs	 a;
	redisReply	*r;

	lock_token(j->token, sizeof(j->token));
	set_nx(&a, RK_LOCK, j->user, j->token);
	r = conn_argv(c, &a);
	rargs_free(&a);
	if (r == NULL)
		return (-1);
	j->locked = taken(r);
	freeReplyObject(r);
	return (j->locked);
}

/*
 * Try the locks of n jobs' users in one pipeline; each job's locked says
 * whether it got its own.  0, or -1 if Redis did not answer (none held).
 */
int
lock_users(struct consumer *c, struct job **jobs, int n)
{
	struct rargs	*cmds;
	redisReply	**r;
	int		 i, ret;

	cmds = calloc((size_t)n, sizeof(*cmds));
	r = calloc((size_t)n, sizeof(*r));
	for (i = 0; i < n; i++) {
		lock_token(jobs[i]->token, sizeof(jobs[i]->token));
		set_nx(&cmds[i], RK_LOCK, jobs[i]->user, jobs[i]->token);
	}
	ret = conn_pipeline(c, cmds, n, r);
	for (i = 0; ret == 0 && i < n; i++)
		jobs[i]->locked = taken(r[i]);
	conn_free(ret == 0 ? r : NULL, cmds, n);
	free(cmds);
	free(r);
	return (ret);
}

static void
release(struct rargs *a, const char *prefix, const char *id,
    const char *token)
{
	rargs_fcall(a, FN_LOCK_RELEASE, 1);
	rargs_addf(a, "%s%s", prefix, id);
	rargs_add(a, token);
}

/* Release the locks the jobs hold (a lock left behind expires). */
void
unlock_users(struct consumer *c, struct job **jobs, int n)
{
	struct rargs	*cmds;
	redisReply	**r;
	int		 i, k;

	cmds = calloc((size_t)n, sizeof(*cmds));
	r = calloc((size_t)n, sizeof(*r));
	for (i = 0, k = 0; i < n; i++) {
		if (jobs[i]->locked)
			release(&cmds[k++], RK_LOCK, jobs[i]->user,
			    jobs[i]->token);
		jobs[i]->locked = 0;
	}
	if (k > 0 && conn_pipeline(c, cmds, k, r) == 0)
		conn_free(r, NULL, k);
	conn_free(NULL, cmds, k);
	free(cmds);
	free(r);
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
	struct rargs	 a;
	redisReply	*r;
	int64_t		 waited;
	int		 i, got, ok;

	qsort(ids, (size_t)n, sizeof(ids[0]), cmp_id);
	for (i = 0, got = 0; i < n; i++) {
		set_nx(&a, RK_LOCK_PRODUCT, ids[i], token);
		for (waited = 0; waited < cfg.lock_ttl_ms && !stop_requested();
		    waited += PRODUCT_POLL_MS) {
			r = conn_argv(c, &a);
			ok = r != NULL && taken(r);
			if (r != NULL)
				freeReplyObject(r);
			if (ok) {
				got++;
				break;
			}
			stop_sleep_ms(PRODUCT_POLL_MS);
		}
		rargs_free(&a);
	}
	return (got);
}

/* Release the product locks still holding token. */
void
unlock_products(struct consumer *c, char (*ids)[25], int n, const char *token)
{
	struct rargs	 a;
	int		 i;

	for (i = 0; i < n; i++) {
		release(&a, RK_LOCK_PRODUCT, ids[i], token);
		freeReplyObject(conn_argv(c, &a));
		rargs_free(&a);
	}
}
