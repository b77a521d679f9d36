/*
 * dbcheck.c -- what checkout correctness needs from the database,
 * measured through mongo-c-driver.
 *
 *   decrement   T threads race conditional decrements ({_id, stock:
 *               {$gte: 1}} -> $inc -1) on one product of stock K: exactly
 *               K must succeed and the stock must end at 0.
 *   txn-abort   a transaction that inserts, updates and then aborts
 *               leaves no trace.
 *   txn-commit  a committed transaction's writes are all visible.
 *   txn-race    T threads each run N transactions that decrement one
 *               shared stock inside mongoc_client_session_with_transaction;
 *               write conflicts must be retried, never lost: exactly K
 *               decrements commit, and the orders they insert number K.
 *   unique      T threads insert the same unique key at once: exactly one
 *               succeeds, the others get duplicate-key errors.
 *   rate        single-connection and concurrent insert rates.
 *
 * Prints one JSON object with every figure; exits 1 if an invariant
 * fails.  Uses collections named dbcheck_* in cfg.mongo_db.
 * Usage: dbcheck [threads] [stock]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../shared/config.h"
#include "../shared/db.h"

#define MAX_THREADS	64

static mongoc_client_pool_t	*pool;
static int			 nthreads = 8;
static int			 stock = 200;
static int			 failures;

struct worker {
	pthread_t	tid;
	int		id;
	long		ok;		/* successes */
	long		conflicts;	/* duplicate keys, out of stock */
	long		errors;		/* anything else */
	double		seconds;	/* rate runs: how long to run */
};

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "dbcheck: FAILED: %s\n", what);
		failures++;
	}
}

static mongoc_collection_t *
coll(mongoc_client_t *client, const char *name)
{
	return (mongoc_client_get_collection(client, cfg.mongo_db, name));
}

static void
reset(const char *name, int64_t initial)
{
	mongoc_client_t		*client;
	mongoc_collection_t	*c;
	bson_t			*doc;
	bson_error_t		 berr;

	client = mongoc_client_pool_pop(pool);
	c = coll(client, name);
	mongoc_collection_drop(c, &berr);
	if (initial >= 0) {
		doc = BCON_NEW("_id", BCON_INT32(1), "stock",
		    BCON_INT64(initial));
		if (!mongoc_collection_insert_one(c, doc, NULL, NULL, &berr))
			fprintf(stderr, "dbcheck: insert: %s\n", berr.message);
		bson_destroy(doc);
	}
	mongoc_collection_destroy(c);
	mongoc_client_pool_push(pool, client);
}

static int64_t
read_stock(const char *name)
{
	mongoc_client_t		*client;
	mongoc_collection_t	*c;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_t			*q;
	bson_iter_t		 it;
	int64_t			 v;

	v = -1;
	client = mongoc_client_pool_pop(pool);
	c = coll(client, name);
	q = BCON_NEW("_id", BCON_INT32(1));
	cur = mongoc_collection_find_with_opts(c, q, NULL, NULL);
	if (mongoc_cursor_next(cur, &doc) &&
	    bson_iter_init_find(&it, doc, "stock"))
		v = bson_iter_as_int64(&it);
	mongoc_cursor_destroy(cur);
	bson_destroy(q);
	mongoc_collection_destroy(c);
	mongoc_client_pool_push(pool, client);
	return (v);
}

static int64_t
count_docs(const char *name)
{
	mongoc_client_t		*client;
	mongoc_collection_t	*c;
	bson_t			*q;
	bson_error_t		 berr;
	int64_t			 n;

	client = mongoc_client_pool_pop(pool);
	c = coll(client, name);
	q = bson_new();
	n = mongoc_collection_count_documents(c, q, NULL, NULL, NULL, &berr);
	bson_destroy(q);
	mongoc_collection_destroy(c);
	mongoc_client_pool_push(pool, client);
	return (n);
}

static void
run_threads(struct worker *w, void *(*fn)(void *))
{
	int	i;

	for (i = 0; i < nthreads; i++) {
		w[i].id = i;
		pthread_create(&w[i].tid, NULL, fn, &w[i]);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(w[i].tid, NULL);
}

static void
totals(struct worker *w, long *ok, long *conflicts, long *errors)
{
	int	i;

	*ok = *conflicts = *errors = 0;
	for (i = 0; i < nthreads; i++) {
		*ok += w[i].ok;
		*conflicts += w[i].conflicts;
		*errors += w[i].errors;
	}
}

/* ----- decrement ----- */

/*
 * 1 if one unit was taken, 0 if none was left, -1 on error.  If reply is
 * not NULL it receives the server's reply (a copy; the caller destroys
 * it): with_transaction reads its errorLabels to decide on a retry.
 */
static int
decrement_one(mongoc_collection_t *c, bson_t *opts, bson_t **out,
    bson_error_t *berr)
{
	bson_t		*q, *u, reply;
	bson_iter_t	 it;
	int		 ret;

	q = BCON_NEW("_id", BCON_INT32(1), "stock", "{", "$gte", BCON_INT32(1),
	    "}");
	u = BCON_NEW("$inc", "{", "stock", BCON_INT32(-1), "}");
	ret = -1;
	if (mongoc_collection_update_one(c, q, u, opts, &reply, berr))
		ret = bson_iter_init_find(&it, &reply, "modifiedCount") &&
		    bson_iter_as_int64(&it) == 1 ? 1 : 0;
	if (out != NULL)
		*out = bson_copy(&reply);
	bson_destroy(&reply);
	bson_destroy(q);
	bson_destroy(u);
	return (ret);
}

static void *
decrement_main(void *arg)
{
	struct worker		*w = arg;
	mongoc_client_t		*client;
	mongoc_collection_t	*c;
	bson_error_t		 berr;
	int			 r, misses;

	client = mongoc_client_pool_pop(pool);
	c = coll(client, "dbcheck_stock");
	/* Keep going until several attempts in a row find no stock. */
	for (misses = 0; misses < 3;) {
		r = decrement_one(c, NULL, NULL, &berr);
		if (r == 1) {
			w->ok++;
			misses = 0;
		} else if (r == 0) {
			w->conflicts++;
			misses++;
		} else {
			w->errors++;
			fprintf(stderr, "dbcheck: decrement: %s\n",
			    berr.message);
			if (w->errors > 100)
				break;
		}
	}
	mongoc_collection_destroy(c);
	mongoc_client_pool_push(pool, client);
	return (NULL);
}

static void
test_decrement(json_t *out)
{
	struct worker	w[MAX_THREADS];
	long		ok, misses, errors;
	int64_t		left;
	double		t0;

	memset(w, 0, sizeof(w));
	reset("dbcheck_stock", stock);
	t0 = now();
	run_threads(w, decrement_main);
	totals(w, &ok, &misses, &errors);
	left = read_stock("dbcheck_stock");
	json_object_set_new(out, "decrement", json_pack("{s:i, s:i, s:I, s:I,"
	    " s:I, s:I, s:f}", "threads", nthreads, "stock", stock,
	    "succeeded", (json_int_t)ok, "errors", (json_int_t)errors,
	    "final_stock", (json_int_t)left, "misses", (json_int_t)misses,
	    "seconds", now() - t0));
	check(ok == stock, "decrement: successes != stock");
	check(left == 0, "decrement: final stock != 0");
	check(errors == 0, "decrement: errors");
}

/* ----- transactions ----- */

struct txn_ctx {
	mongoc_collection_t	*stock;
	mongoc_collection_t	*orders;
	int			 abort;		/* return false at the end */
	int			 out_of_stock;	/* set by the callback */
};

/* Decrement the shared stock and insert an order, in the session. */
static bool
txn_body(mongoc_client_session_t *s, void *arg, bson_t **reply,
    bson_error_t *berr)
{
	struct txn_ctx	*t = arg;
	bson_t		 opts, *doc, local;
	int		 r;

	t->out_of_stock = 0;
	bson_init(&opts);
	if (!mongoc_client_session_append(s, &opts, berr)) {
		bson_destroy(&opts);
		return (false);
	}
	if ((r = decrement_one(t->stock, &opts, reply, berr)) != 1) {
		bson_destroy(&opts);
		if (r == 0) {
			t->out_of_stock = 1;
			bson_set_error(berr, 0, 0, "out of stock");
		}
		return (false);
	}
	bson_destroy(*reply);
	doc = BCON_NEW("at", BCON_DOUBLE(now()));
	r = mongoc_collection_insert_one(t->orders, doc, &opts, &local, berr);
	*reply = bson_copy(&local);
	bson_destroy(&local);
	bson_destroy(doc);
	bson_destroy(&opts);
	if (!r)
		return (false);
	if (t->abort) {
		bson_set_error(berr, 0, 0, "deliberate abort");
		return (false);
	}
	return (true);
}

static int
txn_run(mongoc_client_t *client, struct txn_ctx *t, bson_error_t *berr)
{
	mongoc_client_session_t	*s;
	int			 ok;

	if ((s = mongoc_client_start_session(client, NULL, berr)) == NULL)
		return (0);
	ok = mongoc_client_session_with_transaction(s, txn_body, NULL, t,
	    NULL, berr);
	mongoc_client_session_destroy(s);
	return (ok);
}

static void
test_txn_single(json_t *out)
{
	mongoc_client_t	*client;
	struct txn_ctx	 t;
	bson_error_t	 berr;
	int		 ok_abort, ok_commit;
	int64_t		 s1, o1, s2, o2;

	reset("dbcheck_stock", 10);
	reset("dbcheck_orders", -1);
	client = mongoc_client_pool_pop(pool);
	memset(&t, 0, sizeof(t));
	t.stock = coll(client, "dbcheck_stock");
	t.orders = coll(client, "dbcheck_orders");
	t.abort = 1;
	ok_abort = txn_run(client, &t, &berr);
	s1 = read_stock("dbcheck_stock");
	o1 = count_docs("dbcheck_orders");
	t.abort = 0;
	ok_commit = txn_run(client, &t, &berr);
	if (!ok_commit)
		fprintf(stderr, "dbcheck: commit: %s\n", berr.message);
	s2 = read_stock("dbcheck_stock");
	o2 = count_docs("dbcheck_orders");
	mongoc_collection_destroy(t.stock);
	mongoc_collection_destroy(t.orders);
	mongoc_client_pool_push(pool, client);
	json_object_set_new(out, "txn_abort", json_pack("{s:b, s:I, s:I}",
	    "returned_ok", ok_abort, "stock_after", (json_int_t)s1,
	    "orders_after", (json_int_t)o1));
	json_object_set_new(out, "txn_commit", json_pack("{s:b, s:I, s:I}",
	    "returned_ok", ok_commit, "stock_after", (json_int_t)s2,
	    "orders_after", (json_int_t)o2));
	check(!ok_abort && s1 == 10 && o1 == 0, "txn-abort left a trace");
	check(ok_commit && s2 == 9 && o2 == 1, "txn-commit not visible");
}

static void *
txn_race_main(void *arg)
{
	struct worker	*w = arg;
	mongoc_client_t	*client;
	struct txn_ctx	 t;
	bson_error_t	 berr;
	int		 misses;

	client = mongoc_client_pool_pop(pool);
	memset(&t, 0, sizeof(t));
	t.stock = coll(client, "dbcheck_stock");
	t.orders = coll(client, "dbcheck_orders");
	for (misses = 0; misses < 3;) {
		if (txn_run(client, &t, &berr)) {
			w->ok++;
			misses = 0;
		} else if (t.out_of_stock) {
			w->conflicts++;
			misses++;
		} else {
			w->errors++;
			fprintf(stderr, "dbcheck: txn: %s\n", berr.message);
			if (w->errors > 100)
				break;
		}
	}
	mongoc_collection_destroy(t.stock);
	mongoc_collection_destroy(t.orders);
	mongoc_client_pool_push(pool, client);
	return (NULL);
}

static void
test_txn_race(json_t *out)
{
	struct worker	w[MAX_THREADS];
	long		ok, misses, errors;
	int64_t		left, orders;
	double		t0, secs;

	memset(w, 0, sizeof(w));
	reset("dbcheck_stock", stock);
	reset("dbcheck_orders", -1);
	t0 = now();
	run_threads(w, txn_race_main);
	secs = now() - t0;
	totals(w, &ok, &misses, &errors);
	left = read_stock("dbcheck_stock");
	orders = count_docs("dbcheck_orders");
	json_object_set_new(out, "txn_race", json_pack("{s:i, s:i, s:I, s:I,"
	    " s:I, s:I, s:f, s:f}", "threads", nthreads, "stock", stock,
	    "committed", (json_int_t)ok, "errors", (json_int_t)errors,
	    "final_stock", (json_int_t)left, "orders", (json_int_t)orders,
	    "seconds", secs, "txn_per_s", (double)ok / secs));
	check(ok == stock, "txn-race: commits != stock");
	check(left == 0, "txn-race: final stock != 0");
	check(orders == stock, "txn-race: orders != stock");
}

/* ----- unique index ----- */

static pthread_barrier_t	barrier;

static void *
unique_main(void *arg)
{
	struct worker		*w = arg;
	mongoc_client_t		*client;
	mongoc_collection_t	*c;
	bson_t			*doc;
	bson_error_t		 berr;

	client = mongoc_client_pool_pop(pool);
	c = coll(client, "dbcheck_unique");
	doc = BCON_NEW("key", BCON_UTF8("same-checkout-id"), "by",
	    BCON_INT32(w->id));
	pthread_barrier_wait(&barrier);
	if (mongoc_collection_insert_one(c, doc, NULL, NULL, &berr))
		w->ok++;
	else if (db_is_duplicate(&berr))
		w->conflicts++;
	else
		w->errors++;
	bson_destroy(doc);
	mongoc_collection_destroy(c);
	mongoc_client_pool_push(pool, client);
	return (NULL);
}

static void
test_unique(json_t *out)
{
	mongoc_client_t		*client;
	struct worker		 w[MAX_THREADS];
	bson_t			*cmd, reply;
	bson_error_t		 berr;
	long			 ok, dups, errors;
	int			 round, rounds_ok;

	rounds_ok = 0;
	for (round = 0; round < 20; round++) {
		reset("dbcheck_unique", -1);
		client = mongoc_client_pool_pop(pool);
		cmd = BCON_NEW("createIndexes", BCON_UTF8("dbcheck_unique"),
		    "indexes", "[", "{", "key", "{", "key", BCON_INT32(1), "}",
		    "name", BCON_UTF8("key_unique"), "unique", BCON_BOOL(true),
		    "}", "]");
		if (!mongoc_client_write_command_with_opts(client,
		    cfg.mongo_db, cmd, NULL, &reply, &berr))
			fprintf(stderr, "dbcheck: index: %s\n", berr.message);
		bson_destroy(&reply);
		bson_destroy(cmd);
		mongoc_client_pool_push(pool, client);

		memset(w, 0, sizeof(w));
		pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
		run_threads(w, unique_main);
		pthread_barrier_destroy(&barrier);
		totals(w, &ok, &dups, &errors);
		if (ok == 1 && dups == nthreads - 1 && errors == 0 &&
		    count_docs("dbcheck_unique") == 1)
			rounds_ok++;
	}
	json_object_set_new(out, "unique", json_pack("{s:i, s:i, s:i}",
	    "threads", nthreads, "rounds", 20, "rounds_exactly_one",
	    rounds_ok));
	check(rounds_ok == 20, "unique: a round inserted more or less than one");
}

/* ----- rates ----- */

static void *
rate_main(void *arg)
{
	struct worker		*w = arg;
	mongoc_client_t		*client;
	mongoc_collection_t	*c;
	bson_t			*doc;
	bson_error_t		 berr;
	double			 end;

	client = mongoc_client_pool_pop(pool);
	c = coll(client, "dbcheck_rate");
	end = now() + w->seconds;
	while (now() < end) {
		doc = BCON_NEW("t", BCON_INT32(w->id), "n",
		    BCON_INT64(w->ok));
		if (mongoc_collection_insert_one(c, doc, NULL, NULL, &berr))
			w->ok++;
		else
			w->errors++;
		bson_destroy(doc);
	}
	mongoc_collection_destroy(c);
	mongoc_client_pool_push(pool, client);
	return (NULL);
}

static double
rate(int threads, double seconds)
{
	struct worker	w[MAX_THREADS];
	long		ok, dups, errors;
	int		saved, i;

	memset(w, 0, sizeof(w));
	for (i = 0; i < MAX_THREADS; i++)
		w[i].seconds = seconds;
	saved = nthreads;
	nthreads = threads;
	reset("dbcheck_rate", -1);
	run_threads(w, rate_main);
	totals(w, &ok, &dups, &errors);
	nthreads = saved;
	return ((double)ok / seconds);
}

static void
test_rate(json_t *out)
{
	json_object_set_new(out, "insert_rate", json_pack("{s:f, s:i, s:f}",
	    "single_per_s", rate(1, 2.0), "threads", nthreads,
	    "concurrent_per_s", rate(nthreads, 2.0)));
}

int
main(int argc, char **argv)
{
	json_t	*out;
	char	 err[512], *text;

	if (argc > 1)
		nthreads = atoi(argv[1]);
	if (argc > 2)
		stock = atoi(argv[2]);
	if (nthreads < 2 || nthreads > MAX_THREADS || stock < 1) {
		fprintf(stderr, "usage: dbcheck [threads 2..64] [stock]\n");
		return (2);
	}
	if (config_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "dbcheck: %s\n", err);
		return (2);
	}
	if ((pool = db_pool_new("dbcheck", nthreads + 2, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "dbcheck: %s\n", err);
		return (2);
	}
	out = json_object();
	test_decrement(out);
	test_txn_single(out);
	test_txn_race(out);
	test_unique(out);
	test_rate(out);
	json_object_set_new(out, "failures", json_integer(failures));
	text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(6));
	printf("%s\n", text);
	free(text);
	json_decref(out);
	mongoc_client_pool_destroy(pool);
	mongoc_cleanup();
	return (failures == 0 ? 0 : 1);
}
