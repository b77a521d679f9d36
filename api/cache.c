/*
 * cache.c -- rendered catalogue answers, per API process, kept exactly
 * as fresh as the catalogue versions in Redis say.
 *
 * Two counters live in Redis: RK_CATALOG, bumped by every product write
 * (create, update, delete) before it answers, and RK_STOCK, bumped by the
 * worker after each committed order.  A reader fetches both (one MGET)
 * before it looks here; an entry serves only if it was filled under the
 * same catalogue version, and under the same stock version or less than
 * CATALOG_STOCK_LAG_MS ago.  So an admin's change is visible to the next
 * read anywhere, and stock figures in listings trail completed orders by
 * at most that lag, which keeps a flash sale's orders from emptying the
 * cache for everyone browsing.
 *
 * An entry is tagged with the versions read *before* its database query,
 * so a write that lands during the query makes the entry stale at once.
 * When the Redis connection comes back the whole cache is dropped: a
 * write that could not bump the counter meanwhile must not be hidden.
 *
 * Misses are coalesced: the first request to miss a key under given
 * versions becomes the leader of a fill and fetches; requests that miss
 * the same key under the same versions meanwhile wait for that fill
 * instead of querying too, so a price change read by a thousand clients
 * at once costs one query per API process, not a thousand.
 *
 * API: cache_get() returns a borrowed body or NULL; cache_put() copies.
 * cache_fill() returns the call to wait on (see below).  The table holds
 * CACHE_SLOTS entries, replaced by hash slot.  cache_product() and
 * cache_product_put() keep single products for carts, by id, under the
 * catalogue version alone.
 */
#include <stdlib.h>
#include <string.h>

#include "../shared/json.h"

#include "api.h"
#include "../shared/config.h"

#define CACHE_SLOTS	1024
#define KEY_MAX		320
#define PRODUCT_SLOTS	8192

struct entry {
	char		 key[KEY_MAX];	/* "" when empty */
	char		*body;		/* rendered JSON, owned */
	size_t		 len;
	long long	 catalog;	/* versions it was filled under */
	long long	 stock;
	uint64_t	 filled;	/* kore_time_ms() at fill */
};

TAILQ_HEAD(callq, call);

struct fill {
	char			 key[KEY_MAX];	/* "" when no fill runs */
	struct catalog_version	 v;		/* versions it fills under */
	struct call		*leader;	/* the call fetching */
	struct callq		 waiters;	/* calls of requests waiting */
};

/*
 * What a cart needs of a product (title, price; or that it does not
 * exist), by id, valid while the catalogue version is the one it was
 * read under: any product write bumps that version, so a price change
 * or a deletion is seen by the next cart answer.  A cart write whose
 * products are all here costs one database operation.
 */
struct pentry {
	char		 id[25];	/* "" when empty */
	json_t		*product;	/* owned: object, or null (no such) */
	long long	 catalog;	/* the version it was read under */
};

static struct entry	slots[CACHE_SLOTS];
static struct fill	fills[CACHE_SLOTS];
static struct pentry	products[PRODUCT_SLOTS];

/* The body cached for key under these versions (borrowed), or NULL. */
const char *
cache_get(const char *key, const struct catalog_version *v, size_t *len)
{
	struct entry	*e;

	e = &slots[api_hash(key) % CACHE_SLOTS];
	if (e->body == NULL || strcmp(e->key, key) != 0)
		return (NULL);
	if (e->catalog != v->catalog)
		return (NULL);
	if (e->stock != v->stock &&
	    kore_time_ms() - e->filled >= (uint64_t)cfg.catalog_stock_lag_ms)
		return (NULL);
	*len = e->len;
	return (e->body);
}

/* Keep a copy of body for key, filled under versions v. */
void
cache_put(const char *key, const struct catalog_version *v, const char *body,
    size_t len)
{
	struct entry	*e;
	char		*copy;

	if (strlen(key) >= KEY_MAX || (copy = malloc(len + 1)) == NULL)
		return;
	memcpy(copy, body, len);
	copy[len] = '\0';
	e = &slots[api_hash(key) % CACHE_SLOTS];
	free(e->body);
	memcpy(e->key, key, strlen(key) + 1);
	e->body = copy;
	e->len = len;
	e->catalog = v->catalog;
	e->stock = v->stock;
	e->filled = kore_time_ms();
}

/* Forget everything (Redis reconnected: versions may have been missed). */
void
cache_flush(void)
{
	size_t	i;

	for (i = 0; i < CACHE_SLOTS; i++) {
		free(slots[i].body);
		slots[i].body = NULL;
		slots[i].key[0] = '\0';
	}
	for (i = 0; i < PRODUCT_SLOTS; i++) {
		json_decref(products[i].product);
		products[i].product = NULL;
	}
}

/* Versions from an MGET reply of {catalog, stock} (nil counts as 0). */
void
cache_versions(json_t *reply, struct catalog_version *v)
{
	const char	*s;

	s = json_string_value(json_array_get(reply, 0));
	v->catalog = s != NULL ? atoll(s) : 0;
	s = json_string_value(json_array_get(reply, 1));
	v->stock = s != NULL ? atoll(s) : 0;
}

/* The leader's fetch is over (on the loop): cache it, release waiters. */
static void
fill_done(struct call *leader)
{
	struct fill	*f = leader->arg;
	struct call	*c;
	char		*text;

	if (leader->err == ERR_NONE && leader->out != NULL &&
	    (text = json_dump_body(leader->out)) != NULL) {
		cache_put(f->key, &f->v, text, strlen(text));
		free(text);
	}
	while ((c = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, c, list);
		call_finish(c);
	}
	f->key[0] = '\0';
	f->leader = NULL;
}

/*
 * A call for req, which missed key under v.  If a fill of that key under
 * those versions is running, the call waits for it (*leader = 0): once
 * it completes, look the key up again.  Otherwise the call leads a new
 * fill (*leader = 1): the caller starts it on a DB thread, and its
 * result is cached when it completes, whether or not req is still there.
 */
struct call *
cache_fill(struct http_request *req, const char *key,
    const struct catalog_version *v, int *leader)
{
	struct fill	*f;
	struct call	*c;

	c = call_new(req, NULL);
	f = &fills[api_hash(key) % CACHE_SLOTS];
	if (f->leader != NULL && strcmp(f->key, key) == 0 &&
	    f->v.catalog == v->catalog && f->v.stock == v->stock) {
		c->busy = 1;
		TAILQ_INSERT_TAIL(&f->waiters, c, list);
		*leader = 0;
		return (c);
	}
	*leader = 1;
	if (f->leader != NULL || strlen(key) >= KEY_MAX)
		return (c);		/* the slot is busy: fetch alone */
	memcpy(f->key, key, strlen(key) + 1);
	f->v = *v;
	f->leader = c;
	TAILQ_INIT(&f->waiters);
	c->on_done = fill_done;
	c->arg = f;
	return (c);
}

/* ----- products by id, for carts ----- */

/* Product id under version v (borrowed: an object or null), or NULL. */
json_t *
cache_product(const char *id, const struct catalog_version *v)
{
	struct pentry	*e;

	e = &products[api_hash(id) % PRODUCT_SLOTS];
	if (e->product == NULL || strcmp(e->id, id) != 0 ||
	    e->catalog != v->catalog)
		return (NULL);
	return (e->product);
}

/* Remember product (an object, or null: no such product); copied. */
void
cache_product_put(const char *id, const struct catalog_version *v,
    json_t *product)
{
	struct pentry	*e;

	if (strlen(id) != 24)
		return;
	e = &products[api_hash(id) % PRODUCT_SLOTS];
	json_decref(e->product);
	memcpy(e->id, id, 25);
	e->product = json_deep_copy(product);
	e->catalog = v->catalog;
}
