/*
 * db.c -- MongoDB clients, error classes and small helpers.
 *
 * mongoc_init() is called by config_load(); mongoc is not fork-safe, so
 * every process creates its clients after it has forked.
 */
#include <sys/time.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "proc.h"
#include "validate.h"

static pthread_once_t	log_once = PTHREAD_ONCE_INIT;

/*
 * mongoc's own messages, as our log lines.  Aborting a transaction the
 * server has already aborted after a write conflict is routine (the
 * retry follows), and so is ending sessions at exit: both are demoted
 * to debug.
 */
static void
on_mongoc_log(mongoc_log_level_t level, const char *domain, const char *msg,
    void *arg)
{
	enum log_level	lvl;

	(void)arg;
	if (level <= MONGOC_LOG_LEVEL_ERROR)
		lvl = LOG_LVL_ERROR;
	else if (level == MONGOC_LOG_LEVEL_WARNING)
		lvl = LOG_LVL_WARN;
	else if (level <= MONGOC_LOG_LEVEL_INFO)
		lvl = LOG_LVL_INFO;
	else
		return;
	if (strstr(msg, "abortTransaction") != NULL ||
	    strstr(msg, "endSessions") != NULL)
		lvl = LOG_LVL_DEBUG;
	log_event(lvl, "mongoc", "{s:s, s:s}", "domain", domain,
	    "detail", msg);
}

static void
log_setup(void)
{
	mongoc_log_set_handler(on_mongoc_log, NULL);
}

static mongoc_uri_t *
uri_new(const char *appname, char *err, size_t errlen)
{
	mongoc_uri_t	*uri;
	bson_error_t	 berr;
	int32_t		 ms;

	pthread_once(&log_once, log_setup);
	if ((uri = mongoc_uri_new_with_error(cfg.mongo_uri, &berr)) == NULL) {
		snprintf(err, errlen, "MONGO_URI: %s", berr.message);
		return (NULL);
	}
	ms = (int32_t)cfg.mongo_timeout_ms;
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri,
		    MONGOC_URI_SERVERSELECTIONTIMEOUTMS, ms);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
		    ms);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
		    ms * 2);
	mongoc_uri_set_appname(uri, appname);
	return (uri);
}

mongoc_client_pool_t *
db_pool_new(const char *appname, int max, char *err, size_t errlen)
{
	mongoc_client_pool_t	*pool;
	mongoc_uri_t		*uri;

	if ((uri = uri_new(appname, err, errlen)) == NULL)
		return (NULL);
	pool = mongoc_client_pool_new(uri);
	mongoc_uri_destroy(uri);
	if (pool == NULL) {
		snprintf(err, errlen, "MONGO_URI: cannot create a client pool");
		return (NULL);
	}
	mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_pool_max_size(pool, (uint32_t)max);
	return (pool);
}

mongoc_client_t *
db_client_new(const char *appname, char *err, size_t errlen)
{
	mongoc_client_t	*client;
	mongoc_uri_t	*uri;

	if ((uri = uri_new(appname, err, errlen)) == NULL)
		return (NULL);
	client = mongoc_client_new_from_uri(uri);
	mongoc_uri_destroy(uri);
	if (client == NULL) {
		snprintf(err, errlen, "MONGO_URI: cannot create a client");
		return (NULL);
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	return (client);
}

mongoc_collection_t *
db_coll(mongoc_client_t *client, const char *name)
{
	return (mongoc_client_get_collection(client, cfg.mongo_db, name));
}

int
db_check_server(mongoc_client_t *client, char *err, size_t errlen)
{
	bson_t		 cmd, reply;
	bson_error_t	 berr;
	bson_iter_t	 it;
	int		 ok;

	bson_init(&cmd);
	BSON_APPEND_INT32(&cmd, "hello", 1);
	ok = mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply,
	    &berr);
	bson_destroy(&cmd);
	if (!ok) {
		snprintf(err, errlen, "MONGO_URI: cannot reach %s:%d: %s",
		    cfg.mongo_host, cfg.mongo_port, berr.message);
		bson_destroy(&reply);
		return (-1);
	}
	ok = bson_iter_init_find(&it, &reply, "setName") ||
	    (bson_iter_init_find(&it, &reply, "msg") &&
	    BSON_ITER_HOLDS_UTF8(&it) &&
	    strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0);
	bson_destroy(&reply);
	if (!ok) {
		snprintf(err, errlen, "MONGO_URI: the server at %s:%d is a "
		    "standalone mongod, which has no multi-document "
		    "transactions; start it as a replica set (mongod --replSet "
		    "rs0, then rs.initiate()) or use SecantusDB (make run "
		    "starts one)", cfg.mongo_host, cfg.mongo_port);
		return (-1);
	}
	return (0);
}

enum err
db_error(const bson_error_t *e)
{
	if (e->domain == MONGOC_ERROR_SERVER_SELECTION ||
	    e->domain == MONGOC_ERROR_STREAM ||
	    e->domain == MONGOC_ERROR_CLIENT ||
	    (e->domain == MONGOC_ERROR_PROTOCOL &&
	    e->code != MONGOC_ERROR_PROTOCOL_INVALID_REPLY))
		return (ERR_MONGO_DOWN);
	return (ERR_INTERNAL);
}

int
db_is_duplicate(const bson_error_t *e)
{
	return (e->code == 11000 || e->code == 11001);
}

void
db_oid_hex(const bson_oid_t *oid, char *hex)
{
	bson_oid_to_string(oid, hex);
}

int
db_oid_parse(const char *hex, bson_oid_t *oid)
{
	if (!validate_oid(hex))
		return (-1);
	bson_oid_init_from_string(oid, hex);
	return (0);
}

int64_t
db_now_ms(void)
{
	struct timeval	tv;

	gettimeofday(&tv, NULL);
	return ((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

void
db_time_json(json_t *o, const bson_t *doc, const char *field)
{
	bson_iter_t	it;
	char		when[32];

	if (!bson_iter_init_find(&it, doc, field) ||
	    !BSON_ITER_HOLDS_DATE_TIME(&it))
		return;
	proc_iso_time(bson_iter_date_time(&it), when, sizeof(when));
	json_object_set_new(o, field, json_string(when));
}

enum err
db_find_one(mongoc_collection_t *coll, const bson_t *filter,
    db_to_json to_json, enum err not_found, json_t **out)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	bson_error_t	 berr;
	enum err	 e;

	*out = NULL;
	cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	e = not_found;
	if (mongoc_cursor_next(cur, &doc)) {
		*out = to_json(doc);
		e = ERR_NONE;
	} else if (mongoc_cursor_error(cur, &berr)) {
		e = db_error(&berr);
	}
	mongoc_cursor_destroy(cur);
	return (e);
}

enum err
db_find_by_id(mongoc_client_t *client, const char *name, const char *hex,
    db_to_json to_json, enum err not_found, json_t **out)
{
	mongoc_collection_t	*coll;
	bson_t			*q;
	bson_oid_t		 oid;
	enum err		 e;

	*out = NULL;
	if (db_oid_parse(hex, &oid) == -1)
		return (not_found);
	coll = db_coll(client, name);
	q = BCON_NEW("_id", BCON_OID(&oid));
	e = db_find_one(coll, q, to_json, not_found, out);
	bson_destroy(q);
	mongoc_collection_destroy(coll);
	return (e);
}

/* Appends the documents of filter in opts to items, counting in *seen. */
static int
page_read(mongoc_collection_t *coll, const bson_t *filter, const bson_t *opts,
    json_int_t offset, json_int_t *seen, db_to_json to_json, json_t *items,
    bson_error_t *berr)
{
	mongoc_cursor_t	*cur;
	const bson_t	*doc;
	int		 ret;

	cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	while (mongoc_cursor_next(cur, &doc))
		if ((*seen)++ >= offset)
			json_array_append_new(items, to_json(doc));
	ret = mongoc_cursor_error(cur, berr) ? -1 : 0;
	mongoc_cursor_destroy(cur);
	return (ret);
}

/*
 * filter and createdAt in [lo, hi) (lo 0: no lower bound; hi INT64_MAX:
 * no upper one).  Not {$and: [{}, ...]}: SecantusDB then scans.
 */
static bson_t *
window_filter(const bson_t *filter, int64_t lo, int64_t hi)
{
	bson_t	*f, *and, range, clause;

	f = bson_new();
	and = bson_empty(filter) ? f : bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(and, "createdAt", &range);
	if (lo > 0)
		BSON_APPEND_DATE_TIME(&range, "$gte", lo);
	if (hi != INT64_MAX)
		BSON_APPEND_DATE_TIME(&range, "$lt", hi);
	bson_append_document_end(and, &range);
	if (and != f) {
		BSON_APPEND_ARRAY_BEGIN(f, "$and", &clause);
		BSON_APPEND_DOCUMENT(&clause, "0", filter);
		BSON_APPEND_DOCUMENT(&clause, "1", and);
		bson_append_array_end(f, &clause);
		bson_destroy(and);
	}
	return (f);
}

/*
 * Newest first by createdAt, in windows that grow eightfold back from now
 * (1 s, 8 s, 64 s, ...; the first open towards the future, since clocks
 * differ, the last towards the past).  SecantusDB reads every document a
 * filter matches before it sorts and limits: a page of 20 of 100,000
 * orders took 0.2-0.4 s; in windows a page costs the documents of the
 * windows it spans.  MongoDB walks the index either way.  Documents
 * without a createdAt are not listed (ours all have one).
 */
static int
page_newest(mongoc_collection_t *coll, const bson_t *filter, json_int_t limit,
    json_int_t offset, db_to_json to_json, json_t *items, bson_error_t *berr)
{
	int64_t		 now, lo, hi, w;
	json_int_t	 seen;
	bson_t		*f, *opts;
	int		 ret;

	now = db_now_ms();
	hi = INT64_MAX;
	seen = 0;
	ret = 0;
	for (w = 1000; ret == 0 && seen < offset + limit; w *= 8) {
		lo = now - w > 0 ? now - w : 0;
		f = window_filter(filter, lo, hi);
		opts = BCON_NEW("sort", "{", "createdAt", BCON_INT32(-1), "_id",
		    BCON_INT32(-1), "}", "limit", BCON_INT64(offset + limit -
		    seen));
		ret = page_read(coll, f, opts, offset, &seen, to_json, items,
		    berr);
		bson_destroy(opts);
		bson_destroy(f);
		if (lo == 0)
			break;
		hi = lo;
	}
	return (ret);
}

/* Pages of more than this many documents are read in windows. */
#define PAGE_WINDOWS_FROM	2000

enum err
db_page(mongoc_collection_t *coll, const bson_t *filter,
    const char *sort_field, int dir, json_int_t limit, json_int_t offset,
    int64_t known_total, db_to_json to_json, json_t **out)
{
	bson_t		*opts;
	bson_error_t	 berr;
	json_t		*items;
	json_int_t	 seen;
	int64_t		 total;
	int		 ret;

	*out = NULL;
	/*
	 * Everything: the collection's own count, not a scan of it (100,000
	 * orders: 0.32 s counted, 0.09 s from the count on SecantusDB; on
	 * MongoDB it is metadata, exact but after an unclean shutdown).
	 */
	if (known_total >= 0)
		total = known_total;
	else if (bson_empty(filter))
		total = mongoc_collection_estimated_document_count(coll, NULL,
		    NULL, NULL, &berr);
	else
		total = mongoc_collection_count_documents(coll, filter, NULL,
		    NULL, NULL, &berr);
	if (total < 0)
		return (db_error(&berr));
	items = json_array();
	seen = 0;
	if (offset >= total) {
		ret = 0;
	} else if (dir == -1 && strcmp(sort_field, "createdAt") == 0 &&
	    total > PAGE_WINDOWS_FROM) {
		ret = page_newest(coll, filter, limit, offset, to_json, items,
		    &berr);
	} else {
		/* _id breaks ties, so pages neither repeat nor skip. */
		opts = BCON_NEW("sort", "{", sort_field, BCON_INT32(dir), "_id",
		    BCON_INT32(dir), "}", "skip", BCON_INT64(offset),
		    "limit", BCON_INT64(limit));
		ret = page_read(coll, filter, opts, 0, &seen, to_json, items,
		    &berr);
		bson_destroy(opts);
	}
	if (ret == -1) {
		json_decref(items);
		return (db_error(&berr));
	}
	*out = json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
	    (json_int_t)total, "limit", limit, "offset", offset);
	return (ERR_NONE);
}

int
db_find_doc(mongoc_collection_t *coll, const bson_t *filter,
    const bson_t *opts, bson_t **doc, bson_error_t *err)
{
	mongoc_cursor_t	*cur;
	const bson_t	*d;
	int		 ret;

	*doc = NULL;
	cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	ret = 0;
	if (mongoc_cursor_next(cur, &d))
		*doc = bson_copy(d);
	else if (mongoc_cursor_error(cur, err))
		ret = -1;
	mongoc_cursor_destroy(cur);
	return (ret);
}

void
db_substring(bson_t *filter, const char *field, const char *q)
{
	char	*rx;
	size_t	 i, o;

	rx = bson_malloc(strlen(q) * 2 + 1);
	for (i = 0, o = 0; q[i] != '\0'; i++) {
		if (strchr("\\^$.|?*+()[]{}", q[i]) != NULL)
			rx[o++] = '\\';
		rx[o++] = q[i];
	}
	rx[o] = '\0';
	BCON_APPEND(filter, field, "{", "$regex", BCON_UTF8(rx), "$options",
	    BCON_UTF8("i"), "}");
	bson_free(rx);
}

bool
db_txn_failed(bson_t **reply, const bson_t *got)
{
	if (got != NULL && reply != NULL) {
		bson_destroy(*reply);
		*reply = bson_copy(got);
	}
	return (false);
}
