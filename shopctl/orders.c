/*
 * orders.c -- shopctl orders: the shop's orders from a terminal, with
 * the filters and sorts of GET /api/orders for an admin.
 *
 *   shopctl orders [--status S] [--user ID] [--from T] [--to T]
 *                  [--sort createdAt|-createdAt|total|-total]
 *                  [--limit N]
 *
 * One line per order (id, created, status, buyer, units, total), newest
 * first by default, then a count of what matched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/lifecycle.h"
#include "../shared/money.h"
#include "../shared/order_json.h"
#include "../shared/validate.h"
#include "migrate.h"

#define LIMIT_MAX	10000

struct listing {
	struct orders_query	 q;
	const char		*sort;		/* field */
	int			 dir;
	long			 limit;
};

static int
bad(const char *what, const char *value)
{
	fprintf(stderr, "shopctl: orders: %s %s is invalid (status one of "
	    "awaiting_payment, confirmed, fulfilled, cancelled, expired; user "
	    "an id; from and to ISO 8601 times such as 2026-12-03T10:00:00Z; "
	    "sort one of createdAt, -createdAt, total, -total; limit "
	    "1..%d)\n", what, value, LIMIT_MAX);
	return (2);
}

/* The options into l; 0, or an exit status (said on stderr). */
static int
options(int argc, char **argv, struct listing *l)
{
	const char	*v;
	char		*end;
	int		 i;

	for (i = 2; i < argc; i += 2) {
		if (i + 1 >= argc)
			return (bad(argv[i], "(no value)"));
		v = argv[i + 1];
		if (strcmp(argv[i], "--status") == 0 && (strcmp(v, OS_AWAITING)
		    == 0 || strcmp(v, OS_CONFIRMED) == 0 || strcmp(v,
		    OS_FULFILLED) == 0 || strcmp(v, OS_CANCELLED) == 0 ||
		    strcmp(v, OS_EXPIRED) == 0))
			l->q.status = v;
		else if (strcmp(argv[i], "--user") == 0 && validate_oid(v))
			l->q.user = v;
		else if (strcmp(argv[i], "--from") == 0 &&
		    validate_iso_time(v, &l->q.from) == 0)
			;
		else if (strcmp(argv[i], "--to") == 0 &&
		    validate_iso_time(v, &l->q.to) == 0)
			;
		else if (strcmp(argv[i], "--sort") == 0 &&
		    (strcmp(v + (v[0] == '-'), "createdAt") == 0 ||
		    strcmp(v + (v[0] == '-'), "total") == 0)) {
			l->sort = v + (v[0] == '-');
			l->dir = v[0] == '-' ? -1 : 1;
		} else if (strcmp(argv[i], "--limit") == 0 &&
		    (l->limit = strtol(v, &end, 10)) >= 1 &&
		    l->limit <= LIMIT_MAX && *end == '\0')
			;
		else
			return (bad(argv[i], v));
	}
	return (0);
}

static void
print_order(const bson_t *doc)
{
	json_t		*o, *it;
	char		 total[32];
	int64_t		 cents;
	long long	 units;
	size_t		 i;

	o = orders_json(doc);
	units = 0;
	json_array_foreach(json_object_get(o, "items"), i, it)
		units += json_integer_value(json_object_get(it, "quantity"));
	if (money_from_json(json_object_get(o, "total"), INT64_MAX / 100,
	    &cents) != ERR_NONE)
		cents = 0;
	money_format(cents, total, sizeof(total));
	printf("%s  %s  %-16s  %s  %5lld  %12s\n",
	    json_string_value(json_object_get(o, "id")),
	    json_string_value(json_object_get(o, "createdAt")),
	    json_string_value(json_object_get(o, "status")),
	    json_string_value(json_object_get(o, "userId")), units, total);
	json_decref(o);
}

int
orders_command(mongoc_client_t *m, int argc, char **argv)
{
	struct listing		 l;
	mongoc_collection_t	*coll;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_error_t		 berr;
	bson_t			 filter, *opts;
	int64_t			 total;
	int			 ret, n;

	memset(&l, 0, sizeof(l));
	l.q.from = l.q.to = -1;
	l.sort = "createdAt";
	l.dir = -1;
	l.limit = 50;
	if ((ret = options(argc, argv, &l)) != 0)
		return (ret);
	orders_filter(&l.q, &filter);
	opts = BCON_NEW("sort", "{", l.sort, BCON_INT32(l.dir), "_id",
	    BCON_INT32(l.dir), "}", "limit", BCON_INT64(l.limit));
	coll = db_coll(m, DB_ORDERS);
	total = mongoc_collection_count_documents(coll, &filter, NULL, NULL,
	    NULL, &berr);
	printf("%-24s  %-24s  %-16s  %-24s  %5s  %12s\n", "order", "created",
	    "status", "buyer", "units", "total");
	cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
	for (n = 0; mongoc_cursor_next(cur, &doc); n++)
		print_order(doc);
	ret = 0;
	if (total < 0 || mongoc_cursor_error(cur, &berr)) {
		fprintf(stderr, "shopctl: orders: %s (MONGO_URI %s)\n",
		    berr.message, cfg.mongo_host);
		ret = 1;
	} else {
		printf("%d shown of %lld matching (database %s at %s:%d)\n", n,
		    (long long)total, cfg.mongo_db, cfg.mongo_host,
		    cfg.mongo_port);
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	bson_destroy(opts);
	bson_destroy(&filter);
	return (ret);
}
