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

/* ----- one-operation writes ----- */

/* Run a findAndModify on the carts; the new cart (if any) goes to c. */
static int
find_and_modify(mongoc_collection_t *coll, bson_t *cmd, struct cart *c,
    bson_error_t *err)
{
	bson_t		reply, doc;
	bson_iter_t	it;
	const uint8_t	*data;
	uint32_t	len;
	int		ok;

	memset(c, 0, sizeof(*c));
	ok = mongoc_collection_write_command_with_opts(coll, cmd, NULL, &reply,
	    err);
	if (ok && bson_iter_init_find(&it, &reply, "value") &&
	    BSON_ITER_HOLDS_DOCUMENT(&it)) {
		bson_iter_document(&it, &len, &data);
		if (bson_init_static(&doc, data, len))
			carts_parse(&doc, c);
	}
	bson_destroy(&reply);
	return (ok ? 0 : -1);
}

/* {productId: P, quantity: Q}, the line as an aggregation literal. */
static void
append_line(bson_t *b, const char *key, const bson_oid_t *product,
    int64_t qty)
{
	bson_t	line;

	bson_append_document_begin(b, key, -1, &line);
	BSON_APPEND_OID(&line, "productId", product);
	BSON_APPEND_INT64(&line, "quantity", qty);
	bson_append_document_end(b, &line);
}

/* The pipeline stage that sets (qty > 0) or removes product's line. */
static void
set_line_stage(bson_t *set, const bson_oid_t *product, int64_t qty)
{
	bson_t	items, cond, arr, has, in, map, m, inner, eq, cat, parts,
		tail, filt, f, ne;

	BSON_APPEND_DOCUMENT_BEGIN(set, "items", &items);
	if (qty == 0) {
		BSON_APPEND_DOCUMENT_BEGIN(&items, "$filter", &filt);
		BCON_APPEND(&filt, "input", "{", "$ifNull", "[", "$items", "[",
		    "]", "]", "}");
		BSON_APPEND_DOCUMENT_BEGIN(&filt, "cond", &f);
		BSON_APPEND_ARRAY_BEGIN(&f, "$ne", &ne);
		BSON_APPEND_UTF8(&ne, "0", "$$this.productId");
		BSON_APPEND_OID(&ne, "1", product);
		bson_append_array_end(&f, &ne);
		bson_append_document_end(&filt, &f);
		bson_append_document_end(&items, &filt);
		bson_append_document_end(set, &items);
		return;
	}
	BSON_APPEND_ARRAY_BEGIN(&items, "$cond", &cond);
	/* [0]: is the product in the cart already? */
	BSON_APPEND_DOCUMENT_BEGIN(&cond, "0", &has);
	BSON_APPEND_ARRAY_BEGIN(&has, "$in", &in);
	BSON_APPEND_OID(&in, "0", product);
	BCON_APPEND(&in, "1", "{", "$map", "{", "input", "{", "$ifNull", "[",
	    "$items", "[", "]", "]", "}", "in", "$$this.productId", "}", "}");
	bson_append_array_end(&has, &in);
	bson_append_document_end(&cond, &has);
	/* [1]: yes: replace that line. */
	BSON_APPEND_DOCUMENT_BEGIN(&cond, "1", &map);
	BSON_APPEND_DOCUMENT_BEGIN(&map, "$map", &m);
	BSON_APPEND_UTF8(&m, "input", "$items");
	BSON_APPEND_DOCUMENT_BEGIN(&m, "in", &inner);
	BSON_APPEND_ARRAY_BEGIN(&inner, "$cond", &arr);
	BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &eq);
	BCON_APPEND(&eq, "$eq", "[", "$$this.productId", BCON_OID(product),
	    "]");
	bson_append_document_end(&arr, &eq);
	append_line(&arr, "1", product, qty);
	BSON_APPEND_UTF8(&arr, "2", "$$this");
	bson_append_array_end(&inner, &arr);
	bson_append_document_end(&m, &inner);
	bson_append_document_end(&map, &m);
	bson_append_document_end(&cond, &map);
	/* [2]: no: append it. */
	BSON_APPEND_DOCUMENT_BEGIN(&cond, "2", &cat);
	BSON_APPEND_ARRAY_BEGIN(&cat, "$concatArrays", &parts);
	BCON_APPEND(&parts, "0", "{", "$ifNull", "[", "$items", "[", "]", "]",
	    "}");
	BSON_APPEND_ARRAY_BEGIN(&parts, "1", &tail);
	append_line(&tail, "0", product, qty);
	bson_append_array_end(&parts, &tail);
	bson_append_array_end(&cat, &parts);
	bson_append_document_end(&cond, &cat);
	bson_append_array_end(&items, &cond);
	bson_append_document_end(set, &items);
}

/* The findAndModify for carts_set_line; with room, only if not full. */
static bson_t *
set_line_cmd(const bson_oid_t *user, const bson_oid_t *product, int64_t qty,
    long max_lines, int upsert)
{
	bson_t	*cmd, q, or, a, b, update, stage, set, rev;
	char	 full[32];

	cmd = BCON_NEW("findAndModify", BCON_UTF8(DB_CARTS));
	BSON_APPEND_DOCUMENT_BEGIN(cmd, "query", &q);
	BSON_APPEND_OID(&q, "userId", user);
	if (qty > 0) {
		/* Room for the line: it is there, or the cart is not full. */
		bson_snprintf(full, sizeof(full), "items.%ld", max_lines - 1);
		BSON_APPEND_ARRAY_BEGIN(&q, "$or", &or);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
		BSON_APPEND_OID(&a, "items.productId", product);
		bson_append_document_end(&or, &a);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b);
		BCON_APPEND(&b, full, "{", "$exists", BCON_BOOL(false), "}");
		bson_append_document_end(&or, &b);
		bson_append_array_end(&q, &or);
	}
	bson_append_document_end(cmd, &q);
	BSON_APPEND_ARRAY_BEGIN(cmd, "update", &update);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "0", &stage);
	BSON_APPEND_DOCUMENT_BEGIN(&stage, "$set", &set);
	BSON_APPEND_OID(&set, "userId", user);
	set_line_stage(&set, product, qty);
	BSON_APPEND_DOCUMENT_BEGIN(&set, "rev", &rev);
	BCON_APPEND(&rev, "$add", "[", "{", "$ifNull", "[", "$rev",
	    BCON_INT64(0), "]", "}", BCON_INT64(1), "]");
	bson_append_document_end(&set, &rev);
	BSON_APPEND_DATE_TIME(&set, "updatedAt", db_now_ms());
	bson_append_document_end(&stage, &set);
	bson_append_document_end(&update, &stage);
	bson_append_array_end(cmd, &update);
	BSON_APPEND_BOOL(cmd, "upsert", upsert && qty > 0);
	BSON_APPEND_BOOL(cmd, "new", true);
	return (cmd);
}

int
carts_set_line(mongoc_collection_t *coll, const bson_oid_t *user,
    const bson_oid_t *product, int64_t qty, long max_lines, struct cart *c,
    bson_error_t *err)
{
	bson_t	*cmd;
	int	 ret;

	cmd = set_line_cmd(user, product, qty, max_lines, 1);
	ret = find_and_modify(coll, cmd, c, err);
	bson_destroy(cmd);
	if (ret == 0)
		return (1);
	if (!db_is_duplicate(err))
		return (-1);
	/*
	 * The upsert collided with an existing cart: either the cart has
	 * no room (the filter failed, so a new one was tried), or another
	 * write created it a moment ago.  Without upsert the filter tells.
	 */
	cmd = set_line_cmd(user, product, qty, max_lines, 0);
	ret = find_and_modify(coll, cmd, c, err);
	bson_destroy(cmd);
	if (ret == -1)
		return (-1);
	return (c->exists ? 1 : 0);
}

int
carts_replace(mongoc_collection_t *coll, const bson_oid_t *user,
    struct cart *c, bson_error_t *err)
{
	bson_t	*cmd, update, set;
	int	 ret;

	cmd = BCON_NEW("findAndModify", BCON_UTF8(DB_CARTS), "query", "{",
	    "userId", BCON_OID(user), "}");
	BSON_APPEND_DOCUMENT_BEGIN(cmd, "update", &update);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	append_items(&set, c);
	BSON_APPEND_DATE_TIME(&set, "updatedAt", db_now_ms());
	bson_append_document_end(&update, &set);
	BCON_APPEND(&update, "$inc", "{", "rev", BCON_INT64(1), "}");
	bson_append_document_end(cmd, &update);
	BSON_APPEND_BOOL(cmd, "upsert", true);
	BSON_APPEND_BOOL(cmd, "new", true);
	carts_free(c);
	ret = find_and_modify(coll, cmd, c, err);
	bson_destroy(cmd);
	return (ret == 0 ? 1 : -1);
}
