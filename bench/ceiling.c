/*
 * ceiling.c -- the database's own ceiling for checkout's writes: the
 * worker's batch transaction (worker/batch_txn.c) run alone, by one client,
 * with no Redis, no HTTP and no contention.  `make bench` runs it in the
 * same run as the end-to-end scenarios and reports end-to-end orders/s
 * as a share of it.
 *
 * Usage: ceiling ORDERS BATCH PRODUCTS LINES
 *   ORDERS carts are made (straight into MongoDB), each with LINES lines
 *   over PRODUCTS products (enough stock for all), then placed BATCH at
 *   a time.  Prints one JSON object: orders, seconds, orders_per_s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/order_json.h"
#include "../worker/batch_txn.h"

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* PRODUCTS products with stock for every order. */
static bson_oid_t *
make_products(mongoc_client_t *client, int n, int64_t stock)
{
	mongoc_collection_t	*coll;
	bson_oid_t		*ids;
	bson_t			*doc;
	bson_error_t		 err;
	int			 i;

	ids = calloc((size_t)n, sizeof(*ids));
	coll = db_coll(client, DB_PRODUCTS);
	for (i = 0; i < n; i++) {
		bson_oid_init(&ids[i], NULL);
		doc = BCON_NEW("_id", BCON_OID(&ids[i]), "title",
		    BCON_UTF8("ceiling item"), "price", BCON_INT64(999),
		    "stock", BCON_INT64(stock), "createdAt",
		    BCON_DATE_TIME(db_now_ms()));
		if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &err)) {
			fprintf(stderr, "ceiling: %s\n", err.message);
			exit(1);
		}
		bson_destroy(doc);
	}
	mongoc_collection_destroy(coll);
	return (ids);
}

/* One cart per order: LINES lines, products taken round robin. */
static void
make_carts(mongoc_client_t *client, struct order_req *reqs, int n,
    const bson_oid_t *pids, int nprod, int lines)
{
	mongoc_collection_t	*coll;
	bson_t			 doc, items, line;
	bson_error_t		 err;
	char			 key[16];
	int			 i, k;

	coll = db_coll(client, DB_CARTS);
	for (i = 0; i < n; i++) {
		bson_oid_init(&reqs[i].user, NULL);
		bson_init(&doc);
		BSON_APPEND_OID(&doc, "userId", &reqs[i].user);
		BSON_APPEND_INT64(&doc, "rev", 1);
		BSON_APPEND_ARRAY_BEGIN(&doc, "items", &items);
		for (k = 0; k < lines; k++) {
			bson_snprintf(key, sizeof(key), "%d", k);
			bson_append_document_begin(&items, key, -1, &line);
			BSON_APPEND_OID(&line, "productId",
			    &pids[(i * lines + k) % nprod]);
			BSON_APPEND_INT64(&line, "quantity", 1);
			bson_append_document_end(&items, &line);
		}
		bson_append_array_end(&doc, &items);
		if (!mongoc_collection_insert_one(coll, &doc, NULL, NULL, &err)) {
			fprintf(stderr, "ceiling: %s\n", err.message);
			exit(1);
		}
		bson_destroy(&doc);
	}
	mongoc_collection_destroy(coll);
}

int
main(int argc, char **argv)
{
	mongoc_client_t		*client;
	struct order_req	*reqs;
	struct order_batch	 b;
	bson_oid_t		*pids, cid;
	char			 err[512], (*ids)[25];
	double			 t0, took;
	int			 n, batch, nprod, lines, i, done, failed;

	if (argc != 5) {
		fprintf(stderr, "usage: ceiling ORDERS BATCH PRODUCTS LINES\n");
		return (2);
	}
	n = atoi(argv[1]);
	batch = atoi(argv[2]);
	nprod = atoi(argv[3]);
	lines = atoi(argv[4]);
	if (n < 1 || batch < 1 || nprod < 1 || lines < 1 || lines > nprod ||
	    config_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "ceiling: bad arguments or configuration\n");
		return (2);
	}
	if ((client = db_client_new("ceiling", err, sizeof(err))) == NULL) {
		fprintf(stderr, "ceiling: %s\n", err);
		return (1);
	}
	reqs = calloc((size_t)n, sizeof(*reqs));
	ids = calloc((size_t)n, sizeof(*ids));
	pids = make_products(client, nprod, (int64_t)n * lines);
	make_carts(client, reqs, n, pids, nprod, lines);
	for (i = 0; i < n; i++) {
		bson_oid_init(&cid, NULL);
		db_oid_hex(&cid, ids[i]);
		reqs[i].checkout_id = ids[i];
	}
	failed = 0;
	t0 = now();
	for (done = 0; done < n; done += batch) {
		memset(&b, 0, sizeof(b));
		b.reqs = reqs + done;
		b.n = n - done < batch ? n - done : batch;
		if (order_batch_place(client, &b) == -1) {
			fprintf(stderr, "ceiling: %s\n", b.error);
			return (1);
		}
		for (i = 0; i < b.n; i++) {
			failed += b.reqs[i].state != CK_COMPLETED;
			/* As the worker: the ceiling's figures keep this. */
			if (b.reqs[i].doc != NULL)
				free(orders_text(b.reqs[i].doc));
			order_req_clear(&b.reqs[i]);
		}
	}
	took = now() - t0;
	printf("{\"orders\": %d, \"failed\": %d, \"batch\": %d, \"products\": "
	    "%d, \"lines\": %d, \"seconds\": %.3f, \"orders_per_s\": %.1f}\n",
	    n, failed, batch, nprod, lines, took, (double)n / took);
	free(reqs);
	free(ids);
	free(pids);
	mongoc_client_destroy(client);
	mongoc_cleanup();
	return (failed == 0 ? 0 : 1);
}
