/*
 * products.c -- the catalogue: GET /api/products (public, cached),
 * GET /api/products/:id, and the admin's POST, PUT, PATCH and DELETE.
 *
 * Prices are decimals in the API and int64 cents in MongoDB; stock is an
 * integer 0..STOCK_MAX; titles have 1..TITLE_MAX characters.  Every
 * write bumps the catalogue version in Redis before it answers, so the
 * next read anywhere sees it (cache.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/log.h"
#include "../shared/money.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "../shared/validate.h"

#define QUERY_MAX	200	/* longest ?q= */

/* Steps of a cached read. */
enum { READ_START, READ_VERSIONS, READ_WAITED, READ_FETCHED };

/* Steps of a write. */
enum { WRITE_START, WRITE_DONE, WRITE_BUMPED };

struct read {
	/* The cache keys of the answer and of the list's total ("" for one
	 * product); q may take 4 bytes a character. */
	char			 key[4 * QUERY_MAX + 96];
	char			 count_key[4 * QUERY_MAX + 16];
	json_t			*query;		/* new; input for the thread */
	struct catalog_version	 v;		/* versions read first */
	int			 versioned;	/* v is valid: cache it */
	void			(*run)(struct call *, mongoc_client_t *);
};

struct write {
	json_t	*result;	/* new; the answer, kept while bumping */
	int	 status;	/* 200, 201 or 204 */
};

static const char *const product_fields[] = { "title", "price", "stock",
    "saleStartsAt", "saleEndsAt", "perCustomerLimit", NULL };

/* The sale rules: optional, null clears (a PUT clears what it omits). */
static const char *const rule_fields[] = { "saleStartsAt", "saleEndsAt",
    "perCustomerLimit", NULL };

#define LIMIT_MAX	1000000	/* largest perCustomerLimit */

static const struct {
	const char	*name;		/* ?sort= value */
	const char	*field;		/* MongoDB field */
	int		 dir;
} sorts[] = {
	{ "-createdAt", "createdAt", -1 },
	{ "createdAt", "createdAt", 1 },
	{ "price", "price", 1 },
	{ "-price", "price", -1 },
	{ "title", "title", 1 },
	{ "-title", "title", -1 },
};

/* ----- documents ----- */

/* A new JSON product from a products document. */
json_t *
products_json(const bson_t *doc)
{
	bson_iter_t	 it;
	json_t		*p;
	char		 hex[25];

	p = json_object();
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
		db_oid_hex(bson_iter_oid(&it), hex);
		api_id_pair(p, hex);
	}
	if (bson_iter_init_find(&it, doc, "title") && BSON_ITER_HOLDS_UTF8(&it))
		json_object_set_new(p, "title",
		    json_string(bson_iter_utf8(&it, NULL)));
	if (bson_iter_init_find(&it, doc, "price"))
		json_object_set_new(p, "price",
		    money_to_json(bson_iter_as_int64(&it)));
	if (bson_iter_init_find(&it, doc, "stock"))
		json_object_set_new(p, "stock",
		    json_integer(bson_iter_as_int64(&it)));
	db_time_json(p, doc, "saleStartsAt");
	db_time_json(p, doc, "saleEndsAt");
	if (bson_iter_init_find(&it, doc, "perCustomerLimit"))
		json_object_set_new(p, "perCustomerLimit",
		    json_integer(bson_iter_as_int64(&it)));
	db_time_json(p, doc, "createdAt");
	db_time_json(p, doc, "updatedAt");
	return (p);
}

/* ----- reads (threads) ----- */

static void
list_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			 filter;

	bson_init(&filter);
	if (json_is_string(json_object_get(c->in, "q")))
		db_substring(&filter, "title",
		    json_string_value(json_object_get(c->in, "q")));
	coll = db_coll(client, DB_PRODUCTS);
	c->err = db_page(coll, &filter, json_string_value(json_object_get(
	    c->in, "field")), (int)json_integer_value(json_object_get(c->in,
	    "dir")), json_integer_value(json_object_get(c->in, "limit")),
	    json_integer_value(json_object_get(c->in, "offset")),
	    json_is_integer(json_object_get(c->in, "total")) ?
	    json_integer_value(json_object_get(c->in, "total")) : -1,
	    products_json, &c->out);
	mongoc_collection_destroy(coll);
	bson_destroy(&filter);
}

static void
get_run(struct call *c, mongoc_client_t *client)
{
	c->err = db_find_by_id(client, DB_PRODUCTS, json_string_value(
	    json_object_get(c->in, "id")), products_json,
	    ERR_PRODUCT_NOT_FOUND, &c->out);
}

/* ----- cached reads (event loop) ----- */

static void
read_free(void *arg)
{
	struct read	*r = arg;

	json_decref(r->query);
	free(r);
}

/*
 * Answer from the cache, or join a fill of the key (may_wait), or fetch
 * from the database (leading a fill when the versions are known).
 */
static int
lookup(struct http_request *req, struct ctx *ctx, struct read *r,
    int may_wait)
{
	struct call	*c;
	const char	*body;
	size_t		 len;
	int		 leader;
	enum err	 e;

	ctx->step = READ_FETCHED;
	if (r->versioned) {
		if ((body = cache_get(r->key, &r->v, &len)) != NULL) {
			api_json_text(req, 200, body, len);
			return (KORE_RESULT_OK);
		}
		/* A list's total, counted once per catalogue version. */
		if (r->count_key[0] != '\0' &&
		    (body = cache_get(r->count_key, &r->v, &len)) != NULL)
			json_object_set_new(r->query, "total",
			    json_integer(atoll(body)));
		if (may_wait) {
			c = cache_fill(req, r->key, &r->v, &leader);
			if (!leader) {
				ctx->step = READ_WAITED;
				return (call_start(req, ctx, c, ERR_NONE));
			}
			c->in = json_incref(r->query);
			if ((e = offload_submit(OFFLOAD_DB, c, r->run)) !=
			    ERR_NONE && c->on_done != NULL) {
				c->err = e;	/* release the waiters now */
				c->on_done(c);
				c->on_done = NULL;
			}
			return (call_start(req, ctx, c, e));
		}
	}
	return (call_offload(req, ctx, READ_FETCHED, OFFLOAD_DB, r->run,
	    json_incref(r->query)));
}

/* Remember a list's total for its count key (as text). */
static void
count_put(struct read *r, json_int_t total)
{
	char	text[32];

	snprintf(text, sizeof(text), "%lld", (long long)total);
	cache_put(r->count_key, &r->v, text, strlen(text));
}

/*
 * Serve r->key from the cache or from run on a DB thread.  Step by step:
 * fetch the versions (skipped while Redis is down: then the database
 * answers and nothing is cached), look up, fetch, store.
 */
static int
cached_read(struct http_request *req, struct ctx *ctx, struct read *r)
{
	json_t		*out;
	char		*text;
	enum err	 e;

	switch (ctx->step) {
	case READ_START:
		if (!aredis_up())
			return (call_offload(req, ctx, READ_FETCHED, OFFLOAD_DB,
			    r->run, json_incref(r->query)));
		return (call_redis(req, ctx, READ_VERSIONS, "MGET %s %s",
		    RK_CATALOG, RK_STOCK));
	case READ_VERSIONS:
		if (call_result(ctx, &out) == ERR_NONE) {
			cache_versions(out, &r->v);
			r->versioned = 1;
		}
		json_decref(out);
		return (lookup(req, ctx, r, 1));
	case READ_WAITED:
		(void)call_result(ctx, NULL);
		return (lookup(req, ctx, r, 0));
	default:
		if ((e = call_result(ctx, &out)) != ERR_NONE) {
			api_error(req, e, NULL);
			return (KORE_RESULT_OK);
		}
		if (r->versioned && r->count_key[0] != '\0')
			count_put(r, json_integer_value(json_object_get(out,
			    "total")));
		text = json_dump_body(out);
		json_decref(out);
		api_json_text(req, 200, text, strlen(text));
		free(text);
		return (KORE_RESULT_OK);
	}
}

/* Parse ?limit, ?offset, ?q and ?sort into r; 400 names the parameter. */
static int
list_query(struct http_request *req, struct read *r)
{
	char		 q[4 * QUERY_MAX + 1], sort[32];
	const char	*bad;
	long		 limit, offset;
	size_t		 i;
	int		 hasq, hassort;

	if (api_page_query(req, &limit, &offset, &bad) != ERR_NONE)
		goto bad;
	bad = "q";
	if ((hasq = api_query_text(req, "q", q, sizeof(q), QUERY_MAX)) == -1)
		goto bad;
	bad = "sort";
	if ((hassort = api_query(req, "sort", sort, sizeof(sort))) == -1)
		goto bad;
	if (hassort == 0)
		snprintf(sort, sizeof(sort), "-createdAt");
	for (i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++) {
		if (strcmp(sorts[i].name, sort) == 0)
			break;
	}
	if (i == sizeof(sorts) / sizeof(sorts[0]))
		goto bad;
	r->query = json_pack("{s:i, s:i, s:s, s:i}", "limit", (int)limit,
	    "offset", (int)offset, "field", sorts[i].field, "dir",
	    sorts[i].dir);
	if (hasq && q[0] != '\0')
		json_object_set_new(r->query, "q", json_string(q));
	snprintf(r->key, sizeof(r->key), "list|%ld|%ld|%s|%s", limit, offset,
	    sort, hasq ? q : "");
	snprintf(r->count_key, sizeof(r->count_key), "count|%s", hasq ? q :
	    "");
	return (0);
bad:
	api_error_msg(req, ERR_BAD_QUERY, bad, "query parameter %s is invalid "
	    "(limit 1..%d, offset 0..%d, q up to %d characters, sort one of "
	    "price, -price, title, -title, createdAt, -createdAt)", bad,
	    LIST_MAX, OFFSET_MAX, QUERY_MAX);
	return (-1);
}

/*
 * GET /api/products?limit=&offset=&q=&sort=
 *   200 {items, total, limit, offset}; 400 invalid_query
 */
int
products_list(struct http_request *req, struct ctx *ctx)
{
	struct read	*r;

	r = api_data(ctx, sizeof(*r), read_free);
	if (ctx->step == READ_START) {
		r->run = list_run;
		if (list_query(req, r) == -1)
			return (KORE_RESULT_OK);
	}
	return (cached_read(req, ctx, r));
}

/* GET /api/products/:id -> 200 product; 400 invalid_id; 404 */
int
products_get(struct http_request *req, struct ctx *ctx)
{
	struct read	*r;
	bson_oid_t	 oid;
	enum err	 e;

	r = api_data(ctx, sizeof(*r), read_free);
	if (ctx->step == READ_START) {
		if ((e = api_param_oid(ctx, &oid)) != ERR_NONE) {
			api_error(req, e, "id");
			return (KORE_RESULT_OK);
		}
		r->run = get_run;
		r->query = json_pack("{s:s}", "id", ctx->param);
		snprintf(r->key, sizeof(r->key), "one|%s", ctx->param);
	}
	return (cached_read(req, ctx, r));
}

/* ----- writes ----- */

/* 400 for a bad product field, with its rule spelt out. */
static void
field_error(struct http_request *req, enum err e, const char *field)
{
	if (strcmp(field, "title") == 0 && e != ERR_MISSING_FIELD)
		api_error_msg(req, e == ERR_WRONG_TYPE ? e : ERR_INVALID,
		    field, "title must be a string of 1 to %ld characters "
		    "without control characters", cfg.title_max);
	else if (strcmp(field, "price") == 0 && e != ERR_MISSING_FIELD)
		api_error_msg(req, e, field, "price must be a number from 0 "
		    "to %ld with at most 2 decimal places", cfg.price_max);
	else if (strcmp(field, "stock") == 0 && e != ERR_MISSING_FIELD)
		api_error_msg(req, e == ERR_WRONG_TYPE ? e : ERR_OUT_OF_RANGE,
		    field, "stock must be an integer from 0 to %ld",
		    cfg.stock_max);
	else if (strncmp(field, "sale", 4) == 0 && e != ERR_SALE_WINDOW)
		api_error_msg(req, e == ERR_WRONG_TYPE ? e : ERR_INVALID, field,
		    "%s must be null or an ISO 8601 time with a zone, such as "
		    "2026-12-03T10:00:00Z", field);
	else if (strcmp(field, "perCustomerLimit") == 0)
		api_error_msg(req, e == ERR_WRONG_TYPE ? e : ERR_OUT_OF_RANGE,
		    field, "perCustomerLimit must be null or an integer from 1 "
		    "to %d", LIMIT_MAX);
	else
		api_error(req, e, field);
}

/*
 * The sale rules of body into fields: times as ms, null kept as null
 * (clear it).  Both times given: the end must be after the start (with
 * one, update_run compares it with the stored other).
 */
static enum err
rules_input(json_t *body, json_t *fields, const char **field)
{
	json_t		*v;
	int64_t		 ms;
	int		 i;

	for (i = 0; i < 2; i++) {
		*field = rule_fields[i];
		if ((v = json_object_get(body, *field)) == NULL)
			continue;
		if (json_is_null(v)) {
			json_object_set_new(fields, *field, json_null());
			continue;
		}
		if (!json_is_string(v))
			return (ERR_WRONG_TYPE);
		if (validate_iso_time(json_string_value(v), &ms) == -1)
			return (ERR_INVALID);
		json_object_set_new(fields, *field, json_integer(ms));
	}
	*field = "perCustomerLimit";
	if ((v = json_object_get(body, *field)) != NULL && json_is_null(v))
		json_object_set_new(fields, *field, json_null());
	else if (v != NULL) {
		json_int_t	limit;
		enum err	e;

		if ((e = json_field_int(body, *field, 1, 1, LIMIT_MAX,
		    &limit)) != ERR_NONE)
			return (e);
		json_object_set_new(fields, *field, json_integer(limit));
	}
	*field = "saleEndsAt";
	if (json_is_integer(json_object_get(fields, "saleStartsAt")) &&
	    json_is_integer(json_object_get(fields, "saleEndsAt")) &&
	    json_integer_value(json_object_get(fields, "saleEndsAt")) <=
	    json_integer_value(json_object_get(fields, "saleStartsAt")))
		return (ERR_SALE_WINDOW);
	return (ERR_NONE);
}

/*
 * Check the product fields of body into fields (title trimmed, price in
 * cents).  With partial, absent fields are left out, but one must be
 * there; otherwise all three are required.
 */
static enum err
product_input(json_t *body, int partial, json_t *fields, const char **field)
{
	char		 title[4096];
	const char	*s;
	json_int_t	 stock;
	int64_t		 cents;
	enum err	 e;
	int		 i;

	if ((e = json_only_fields(body, product_fields, field)) != ERR_NONE)
		return (e);
	*field = "title";
	if ((e = json_field_string(body, "title", !partial, &s)) != ERR_NONE)
		return (e);
	if (s != NULL) {
		if ((e = validate_title(s, title, sizeof(title))) != ERR_NONE)
			return (e);
		json_object_set_new(fields, "title", json_string(title));
	}
	*field = "price";
	if (json_object_get(body, "price") != NULL) {
		if ((e = money_from_json(json_object_get(body, "price"),
		    money_max_cents(), &cents)) != ERR_NONE)
			return (e);
		json_object_set_new(fields, "price", json_integer(cents));
	} else if (!partial) {
		return (ERR_MISSING_FIELD);
	}
	*field = "stock";
	stock = -1;
	if ((e = json_field_int(body, "stock", !partial, 0, cfg.stock_max,
	    &stock)) != ERR_NONE)
		return (e);
	if (stock >= 0)
		json_object_set_new(fields, "stock", json_integer(stock));
	if ((e = rules_input(body, fields, field)) != ERR_NONE)
		return (e);
	*field = "title";
	for (i = 0; product_fields[i] != NULL; i++) {
		if (json_object_get(fields, product_fields[i]) != NULL)
			return (ERR_NONE);
	}
	return (ERR_MISSING_FIELD);
}

/* Append the fields of in (title, price, stock, rules set) to doc. */
static void
append_fields(bson_t *doc, json_t *in)
{
	json_t	*v;

	if ((v = json_object_get(in, "title")) != NULL)
		BSON_APPEND_UTF8(doc, "title", json_string_value(v));
	if ((v = json_object_get(in, "price")) != NULL)
		BSON_APPEND_INT64(doc, "price", json_integer_value(v));
	if ((v = json_object_get(in, "stock")) != NULL)
		BSON_APPEND_INT64(doc, "stock", json_integer_value(v));
	if (json_is_integer(v = json_object_get(in, "saleStartsAt")))
		BSON_APPEND_DATE_TIME(doc, "saleStartsAt", json_integer_value(v));
	if (json_is_integer(v = json_object_get(in, "saleEndsAt")))
		BSON_APPEND_DATE_TIME(doc, "saleEndsAt", json_integer_value(v));
	if (json_is_integer(v = json_object_get(in, "perCustomerLimit")))
		BSON_APPEND_INT64(doc, "perCustomerLimit",
		    json_integer_value(v));
}

/*
 * The rules an update clears: those given as null, and for a PUT
 * (replace) those not given.  0 if none.
 */
static int
append_unset(bson_t *unset, json_t *in)
{
	json_t	*v;
	int	 i, n;

	for (i = 0, n = 0; rule_fields[i] != NULL; i++) {
		v = json_object_get(in, rule_fields[i]);
		if (json_is_null(v) || (v == NULL &&
		    json_is_true(json_object_get(in, "replace")))) {
			BSON_APPEND_UTF8(unset, rule_fields[i], "");
			n++;
		}
	}
	return (n);
}

/*
 * An update that sets one end of the sale window must keep it after
 * the other, stored one: ERR_NONE, or ERR_SALE_WINDOW, or the lookup's
 * error.
 */
static enum err
window_check(mongoc_collection_t *coll, const bson_t *q, json_t *in)
{
	bson_t		*doc;
	bson_error_t	 berr;
	bson_iter_t	 it;
	json_t		*s, *e;
	int64_t		 starts, ends;

	s = json_object_get(in, "saleStartsAt");
	e = json_object_get(in, "saleEndsAt");
	if (!json_is_integer(s) == !json_is_integer(e) ||
	    json_is_null(s) || json_is_null(e) ||
	    json_is_true(json_object_get(in, "replace")))
		return (ERR_NONE);	/* both, or none, given: checked */
	if (db_find_doc(coll, q, NULL, &doc, &berr) == -1)
		return (db_error(&berr));
	if (doc == NULL)
		return (ERR_PRODUCT_NOT_FOUND);
	starts = json_is_integer(s) ? json_integer_value(s) :
	    bson_iter_init_find(&it, doc, "saleStartsAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) :
	    INT64_MIN;
	ends = json_is_integer(e) ? json_integer_value(e) :
	    bson_iter_init_find(&it, doc, "saleEndsAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) :
	    INT64_MAX;
	bson_destroy(doc);
	return (ends > starts ? ERR_NONE : ERR_SALE_WINDOW);
}

static void
create_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			 doc;
	bson_error_t		 berr;
	bson_oid_t		 oid;
	int64_t			 now;

	bson_init(&doc);
	bson_oid_init(&oid, NULL);
	now = db_now_ms();
	BSON_APPEND_OID(&doc, "_id", &oid);
	append_fields(&doc, c->in);
	BSON_APPEND_DATE_TIME(&doc, "createdAt", now);
	BSON_APPEND_DATE_TIME(&doc, "updatedAt", now);
	coll = db_coll(client, DB_PRODUCTS);
	if (mongoc_collection_insert_one(coll, &doc, NULL, NULL, &berr))
		c->out = products_json(&doc);
	else
		c->err = db_error(&berr);
	mongoc_collection_destroy(coll);
	bson_destroy(&doc);
}

/* A new JSON product from a findAndModify reply's "value", or NULL. */
static json_t *
modified_json(const bson_t *reply)
{
	bson_iter_t	 it;
	const uint8_t	*data;
	uint32_t	 len;
	bson_t		 doc;

	if (!bson_iter_init_find(&it, reply, "value") ||
	    !BSON_ITER_HOLDS_DOCUMENT(&it))
		return (NULL);
	bson_iter_document(&it, &len, &data);
	if (!bson_init_static(&doc, data, len))
		return (NULL);
	return (products_json(&doc));
}

static void
update_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t		*coll;
	mongoc_find_and_modify_opts_t	*opts;
	bson_t				*q, update, set, unset, reply;
	bson_error_t			 berr;
	bson_oid_t			 oid;

	db_oid_parse(json_string_value(json_object_get(c->in, "id")), &oid);
	q = BCON_NEW("_id", BCON_OID(&oid));
	bson_init(&update);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	append_fields(&set, c->in);
	BSON_APPEND_DATE_TIME(&set, "updatedAt", db_now_ms());
	bson_append_document_end(&update, &set);
	bson_init(&unset);
	if (append_unset(&unset, c->in) > 0)
		BSON_APPEND_DOCUMENT(&update, "$unset", &unset);
	bson_destroy(&unset);
	opts = mongoc_find_and_modify_opts_new();
	mongoc_find_and_modify_opts_set_update(opts, &update);
	mongoc_find_and_modify_opts_set_flags(opts,
	    MONGOC_FIND_AND_MODIFY_RETURN_NEW);
	coll = db_coll(client, DB_PRODUCTS);
	bson_init(&reply);
	if ((c->err = window_check(coll, q, c->in)) != ERR_NONE)
		;
	else if (!mongoc_collection_find_and_modify_with_opts(coll, q, opts,
	    &reply, &berr))
		c->err = db_error(&berr);
	else if ((c->out = modified_json(&reply)) == NULL)
		c->err = ERR_PRODUCT_NOT_FOUND;
	bson_destroy(&reply);
	mongoc_collection_destroy(coll);
	mongoc_find_and_modify_opts_destroy(opts);
	bson_destroy(&update);
	bson_destroy(q);
}

static void
delete_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			*q, reply;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_oid_t		 oid;

	db_oid_parse(json_string_value(json_object_get(c->in, "id")), &oid);
	q = BCON_NEW("_id", BCON_OID(&oid));
	coll = db_coll(client, DB_PRODUCTS);
	if (!mongoc_collection_delete_one(coll, q, NULL, &reply, &berr))
		c->err = db_error(&berr);
	else if (!bson_iter_init_find(&it, &reply, "deletedCount") ||
	    bson_iter_as_int64(&it) == 0)
		c->err = ERR_PRODUCT_NOT_FOUND;
	bson_destroy(&reply);
	mongoc_collection_destroy(coll);
	bson_destroy(q);
}

static void
write_free(void *arg)
{
	struct write	*w = arg;

	json_decref(w->result);
	free(w);
}

/*
 * After the database has answered: bump the catalogue version and drop
 * the product's stock-gate counter (catalog_bump), then answer with the
 * result.  If Redis cannot be told, the write is done but other API
 * processes may serve their cached copy and the gate its old stock:
 * answer 503, so that the admin repeats it (every API process also
 * drops its cache when Redis comes back).
 */
static int
write_finish(struct http_request *req, struct ctx *ctx, struct write *w)
{
	struct rargs	a;
	enum err	e;
	char		loc[64];
	int		r;

	if (ctx->step == WRITE_DONE) {
		if ((e = call_result(ctx, &w->result)) != ERR_NONE) {
			api_error(req, e, e == ERR_PRODUCT_NOT_FOUND ? "id" :
			    e == ERR_SALE_WINDOW ? "saleEndsAt" : NULL);
			return (KORE_RESULT_OK);
		}
		rargs_fcall(&a, FN_CATALOG_BUMP, 1);
		rargs_add(&a, RK_CATALOG);
		rargs_add(&a, w->status == 201 ? "" : ctx->param);
		r = call_args(req, ctx, WRITE_BUMPED, &a);
		rargs_free(&a);
		return (r);
	}
	if (call_result(ctx, NULL) != ERR_NONE) {
		log_error("products: catalogue version not bumped", "{s:s, s:s}",
		    "rid", ctx->rid, "productId", json_string_value(
		    json_object_get(w->result, "id")));
		api_error_msg(req, ERR_REDIS_DOWN, NULL, "the product was "
		    "saved, but Redis could not be told (caches and the stock "
		    "gate may be stale): repeat the request");
		return (KORE_RESULT_OK);
	}
	if (w->status == 204) {
		http_response(req, 204, NULL, 0);
		return (KORE_RESULT_OK);
	}
	if (w->status == 201) {
		snprintf(loc, sizeof(loc), "/api/products/%s",
		    json_string_value(json_object_get(w->result, "id")));
		http_response_header(req, "location", loc);
	}
	api_json(req, w->status, w->result);
	w->result = NULL;
	return (KORE_RESULT_OK);
}

/*
 * Validate an admin write and start it: create (no id), replace (PUT),
 * patch (PATCH) or delete.
 */
static int
write_start(struct http_request *req, struct ctx *ctx, struct write *w)
{
	void		(*run)(struct call *, mongoc_client_t *);
	bson_oid_t	 oid;
	json_t		*in;
	const char	*field;
	enum err	 e;

	if (!api_require_admin(req, ctx))
		return (KORE_RESULT_OK);
	in = json_object();
	if (req->method != HTTP_METHOD_POST) {
		if ((e = api_param_oid(ctx, &oid)) != ERR_NONE) {
			json_decref(in);
			api_error(req, e, "id");
			return (KORE_RESULT_OK);
		}
		json_object_set_new(in, "id", json_string(ctx->param));
	}
	if (req->method != HTTP_METHOD_DELETE) {
		field = NULL;
		if ((e = api_body(req, ctx)) != ERR_NONE ||
		    (e = product_input(ctx->body, req->method ==
		    HTTP_METHOD_PATCH, in, &field)) != ERR_NONE) {
			json_decref(in);
			if (field == NULL)
				api_error(req, e, NULL);
			else if (e == ERR_MISSING_FIELD &&
			    req->method == HTTP_METHOD_PATCH)
				api_error_msg(req, e, NULL, "a PATCH needs at "
				    "least one of title, price, stock, "
				    "saleStartsAt, saleEndsAt and "
				    "perCustomerLimit");
			else
				field_error(req, e, field);
			return (KORE_RESULT_OK);
		}
	}
	if (req->method == HTTP_METHOD_PUT)
		json_object_set_new(in, "replace", json_true());
	switch (req->method) {
	case HTTP_METHOD_POST:
		run = create_run;
		w->status = 201;
		break;
	case HTTP_METHOD_DELETE:
		run = delete_run;
		w->status = 204;
		break;
	default:
		run = update_run;
		w->status = 200;
		break;
	}
	return (call_offload(req, ctx, WRITE_DONE, OFFLOAD_DB, run, in));
}

/*
 * The admin's writes; 401 without a token, 403 for a customer:
 *   POST /api/products {title, price, stock} -> 201 product + Location
 *   PUT /api/products/:id {title, price, stock} (all) -> 200 product
 *   PATCH /api/products/:id (any of the three) -> 200 product
 *   DELETE /api/products/:id -> 204
 * 400 names the bad field; 404 product_not_found.
 */
int
products_write(struct http_request *req, struct ctx *ctx)
{
	struct write	*w;

	w = api_data(ctx, sizeof(*w), write_free);
	if (ctx->step == WRITE_START)
		return (write_start(req, ctx, w));
	return (write_finish(req, ctx, w));
}
