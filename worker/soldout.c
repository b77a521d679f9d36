/*
 * soldout.c -- refusing a checkout of a sold-out product without a
 * transaction.
 *
 * In a flash sale nearly every checkout fails for lack of stock, and
 * each of those ran a whole transaction (session, cart, products, a
 * decrement that matches nothing, abort) only to learn again that the
 * stock is gone.  When a transaction refuses a line for lack of stock,
 * the worker notes the stock it read and the catalogue version it read
 * before the transaction: "stock:seen:<product>" = "<version>:<stock>".
 *
 * Between two catalogue versions only orders change a product's stock,
 * and they only lower it (every admin write bumps the version before it
 * answers: api/products.c).  So while the version is still the noted
 * one, the stock is at most the noted stock, and a line asking for more
 * is refused from the note alone.  A note of another version is
 * ignored; a missing note or Redis trouble just means the transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/carts.h"
#include "../shared/db.h"
#include "../shared/redis.h"
#include "worker.h"

#define NOTE_TTL_MS	60000

/* The catalogue version, or -1 if Redis does not answer. */
long long
soldout_version(struct consumer *c)
{
	redisReply	*r;
	long long	 v;

	if ((r = worker_cmd(c, "GET %s", RK_CATALOG)) == NULL)
		return (-1);
	v = r->type == REDIS_REPLY_STRING ? atoll(r->str) :
	    r->type == REDIS_REPLY_NIL ? 0 : -1;
	freeReplyObject(r);
	return (v);
}

/* Note that product had stock under catalogue version v. */
void
soldout_note(struct consumer *c, long long v, const bson_oid_t *product,
    int64_t stock)
{
	char	hex[25], note[64];

	db_oid_hex(product, hex);
	snprintf(note, sizeof(note), "%lld:%lld", v, (long long)stock);
	freeReplyObject(worker_cmd(c, "SET %s%s %s PX %d", RK_STOCK_SEEN, hex,
	    note, NOTE_TTL_MS));
}

/* Whether a note says line l asks for more than there is. */
static int
short_of(const redisReply *version, const redisReply *note,
    const struct cart_line *l)
{
	long long	nv, ns, cv;

	if (note->type != REDIS_REPLY_STRING ||
	    sscanf(note->str, "%lld:%lld", &nv, &ns) != 2)
		return (0);
	cv = version->type == REDIS_REPLY_STRING ? atoll(version->str) : 0;
	return (nv == cv && l->quantity > ns);
}

/*
 * The index of a line of cart that the notes refuse, or -1.  The
 * version is read in the same MGET as the notes.
 */
int
soldout_check(struct consumer *c, const struct cart *cart)
{
	redisReply	*r;
	const char	*argv[1 + 1 + 64];
	char		 keys[64][40];
	int		 i, n, found;

	n = cart->n < 64 ? cart->n : 64;
	argv[0] = "MGET";
	argv[1] = RK_CATALOG;
	for (i = 0; i < n; i++) {
		memcpy(keys[i], RK_STOCK_SEEN, strlen(RK_STOCK_SEEN));
		db_oid_hex(&cart->lines[i].product,
		    keys[i] + strlen(RK_STOCK_SEEN));
		argv[2 + i] = keys[i];
	}
	if (worker_redis(c) == -1)
		return (-1);
	if ((r = redisCommandArgv(c->redis, 2 + n, argv, NULL)) == NULL) {
		worker_redis_drop(c);
		return (-1);
	}
	found = -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)(1 + n)) {
		for (i = 0; i < n && found < 0; i++) {
			if (short_of(r->element[0], r->element[1 + i],
			    &cart->lines[i]))
				found = i;
		}
	}
	freeReplyObject(r);
	return (found);
}
