/*
 * carts.c -- carts documents: load, parse, and the one-operation writes
 * the API makes (findAndModify, atomic per cart).
 */
#include <stdlib.h>
#include <string.h>

#include "carts.h"
#include "db.h"

int
carts_append(struct cart *c, const bson_oid_t *product, int64_t qty)
{
	struct cart_line	*p;
	int			 cap;

	if (c->n == c->cap) {
		cap = c->cap == 0 ? 8 : c->cap * 2;
		if ((p = realloc(c->lines, (size_t)cap * sizeof(*p))) == NULL)
			return (-1);
		c->lines = p;
		c->cap = cap;
	}
	bson_oid_copy(product, &c->lines[c->n].product);
	c->lines[c->n].quantity = qty;
	c->n++;
	return (0);
}

void
carts_remove(struct cart *c, int i)
{
	memmove(&c->lines[i], &c->lines[i + 1],
	    (size_t)(c->n - i - 1) * sizeof(c->lines[0]));
	c->n--;
}

int
carts_copy(struct cart *dst, const struct cart *src)
{
	int	i;

	memset(dst, 0, sizeof(*dst));
	dst->exists = src->exists;
	dst->id = src->id;
	dst->rev = src->rev;
	dst->updated = src->updated;
	for (i = 0; i < src->n; i++) {
		if (carts_append(dst, &src->lines[i].product,
		    src->lines[i].quantity) == -1)
			return (-1);
	}
	return (0);
}

int
carts_find(const struct cart *c, const bson_oid_t *product)
{
	int	i;

	for (i = 0; i < c->n; i++) {
		if (bson_oid_equal(&c->lines[i].product, product))
			return (i);
	}
	return (-1);
}

void
carts_free(struct cart *c)
{
	free(c->lines);
	memset(c, 0, sizeof(*c));
}

/* Lines from the items array at it; odd entries are skipped. */
static int
parse_items(bson_iter_t *it, struct cart *c)
{
	bson_iter_t	arr, line, f;
	bson_oid_t	pid;
	int64_t		qty;

	if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &arr))
		return (0);
	while (bson_iter_next(&arr)) {
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) ||
		    !bson_iter_recurse(&arr, &line))
			continue;
		if (!bson_iter_find(&line, "productId") ||
		    !BSON_ITER_HOLDS_OID(&line))
			continue;
		bson_oid_copy(bson_iter_oid(&line), &pid);
		bson_iter_recurse(&arr, &f);
		qty = bson_iter_find(&f, "quantity") ? bson_iter_as_int64(&f) : 0;
		if (qty > 0 && carts_append(c, &pid, qty) == -1)
			return (-1);
	}
	return (0);
}

void
carts_parse(const bson_t *doc, struct cart *c)
{
	bson_iter_t	it;

	c->exists = 1;
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		bson_oid_copy(bson_iter_oid(&it), &c->id);
	if (bson_iter_init_find(&it, doc, "rev"))
		c->rev = bson_iter_as_int64(&it);
	if (bson_iter_init_find(&it, doc, "updatedAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it))
		c->updated = bson_iter_date_time(&it);
	if (bson_iter_init_find(&it, doc, "items"))
		parse_items(&it, c);
}

int
carts_load(mongoc_collection_t *coll, const bson_oid_t *user,
    const bson_t *opts, struct cart *c, bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_t		*q;
	int		 ret;

	memset(c, 0, sizeof(*c));
	q = BCON_NEW("userId", BCON_OID(user));
	cur = mongoc_collection_find_with_opts(coll, q, opts, NULL);
	ret = 0;
	if (mongoc_cursor_next(cur, &doc)) {
		carts_parse(doc, c);
		ret = 1;
	} else if (mongoc_cursor_error(cur, err)) {
		ret = -1;
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	return (ret);
}

static void
append_items(bson_t *doc, const struct cart *c)
{
	bson_t	arr, line;
	char	key[16];
	int	i;

	BSON_APPEND_ARRAY_BEGIN(doc, "items", &arr);
	for (i = 0; i < c->n; i++) {
		bson_snprintf(key, sizeof(key), "%d", i);
		bson_append_document_begin(&arr, key, -1, &line);
		BSON_APPEND_OID(&line, "productId", &c->lines[i].product);
		BSON_APPEND_INT64(&line, "quantity", c->lines[i].quantity);
		bson_append_document_end(&arr, &line);
	}
	bson_append_array_end(doc, &arr);
}

/* ----- writes ----- */

int
carts_insert(mongoc_collection_t *coll, const bson_oid_t *user,
    struct cart *c, bson_error_t *err)
{
	bson_t	doc;
	int	ret;

	bson_init(&doc);
	bson_oid_init(&c->id, NULL);
	c->rev = 1;
	c->updated = db_now_ms();
	BSON_APPEND_OID(&doc, "_id", &c->id);
	BSON_APPEND_OID(&doc, "userId", user);
	append_items(&doc, c);
	BSON_APPEND_INT64(&doc, "rev", c->rev);
	BSON_APPEND_DATE_TIME(&doc, "updatedAt", c->updated);
	ret = mongoc_collection_insert_one(coll, &doc, NULL, NULL, err) ? 1 :
	    db_is_duplicate(err) ? 0 : -1;
	if (ret == 1)
		c->exists = 1;
	bson_destroy(&doc);
	return (ret);
}

int
carts_update_if(mongoc_collection_t *coll, const bson_oid_t *user,
    const struct cart *old, int same_lines, struct cart *c,
    bson_error_t *err)
{
	bson_t		 q, update, set, reply;
	bson_iter_t	 it;
	int		 ret;

	bson_init(&q);
	BSON_APPEND_OID(&q, "userId", user);
	BSON_APPEND_INT64(&q, "rev", old->rev);
	if (same_lines)
		append_items(&q, old);
	bson_init(&update);
	c->updated = db_now_ms();
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	append_items(&set, c);
	BSON_APPEND_DATE_TIME(&set, "updatedAt", c->updated);
	bson_append_document_end(&update, &set);
	BCON_APPEND(&update, "$inc", "{", "rev", BCON_INT64(1), "}");
	ret = -1;
	if (mongoc_collection_update_one(coll, &q, &update, NULL, &reply, err))
		ret = bson_iter_init_find(&it, &reply, "matchedCount") &&
		    bson_iter_as_int64(&it) == 1 ? 1 : 0;
	if (ret == 1) {
		c->exists = 1;
		c->id = old->id;
		c->rev = old->rev + 1;
	}
	bson_destroy(&reply);
	bson_destroy(&update);
	bson_destroy(&q);
	return (ret);
}

int
carts_same_lines(const struct cart *a, const struct cart *b)
{
	int	i, k;

	if (a->n != b->n)
		return (0);
	for (i = 0; i < a->n; i++) {
		k = carts_find(b, &a->lines[i].product);
		if (k == -1 || b->lines[k].quantity != a->lines[i].quantity)
			return (0);
	}
	return (1);
}
