/*
 * db.h -- MongoDB access shared by the API, the worker and shopctl.
 *
 * The URI comes from cfg.mongo_uri; db.c adds timeouts (MONGO_TIMEOUT_MS)
 * unless the URI sets its own, so that a database that is down turns
 * into an error within seconds instead of a hung request.  Clients from
 * a pool are for threads; a single client is for one thread only.
 */
#ifndef SHARED_DB_H
#define SHARED_DB_H

#include <stddef.h>

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "errors.h"

#define DB_USERS	"users"
#define DB_PRODUCTS	"products"
#define DB_CARTS	"carts"
#define DB_ORDERS	"orders"

/* A new pool of at most max clients, or NULL with a message in err. */
mongoc_client_pool_t	*db_pool_new(const char *appname, int max, char *err,
			    size_t errlen);

/* A new single-threaded client, or NULL with a message in err. */
mongoc_client_t		*db_client_new(const char *appname, char *err,
			    size_t errlen);

/* A new handle on collection name of cfg.mongo_db; destroy it after use. */
mongoc_collection_t	*db_coll(mongoc_client_t *, const char *name);

/*
 * Check that the server answers and runs multi-document transactions
 * (a replica-set member or mongos).  Returns 0, or -1 with a one-line
 * message in err that says how to fix it.
 */
int		db_check_server(mongoc_client_t *, char *err, size_t errlen);

/* Turns a document into its API JSON (new). */
typedef json_t	*(*db_to_json)(const bson_t *);

/*
 * The one document of coll matching filter, as to_json makes it (*out,
 * new).  Returns ERR_NONE, not_found when there is none, or the error.
 */
enum err	db_find_one(mongoc_collection_t *coll, const bson_t *filter,
		    db_to_json to_json, enum err not_found, json_t **out);

/*
 * The document of collection name whose _id is the hex id, as
 * db_find_one() gives it.
 */
enum err	db_find_by_id(mongoc_client_t *, const char *name,
		    const char *hex, db_to_json to_json, enum err not_found,
		    json_t **out);

/*
 * The one document of coll matching filter (opts may carry a session):
 * *doc is a new copy (bson_destroy it) or NULL if there is none.
 * Returns 0, or -1 with err set.
 */
int		db_find_doc(mongoc_collection_t *coll, const bson_t *filter,
		    const bson_t *opts, bson_t **doc, bson_error_t *err);

/*
 * Append {field: /q/i} to filter, q matched literally (regular
 * expression characters escaped): a case-insensitive substring search.
 */
void		db_substring(bson_t *filter, const char *field, const char *q);

/*
 * One page of coll: {items, total, limit, offset}, the documents
 * matching filter in opts' sort from offset, at most limit of them.
 * known_total, when not negative, is the total already known (a cached
 * count): then the documents are not counted again.
 */
enum err	db_page(mongoc_collection_t *coll, const bson_t *filter,
		    const char *sort_field, int dir, json_int_t limit,
		    json_int_t offset, int64_t known_total, db_to_json to_json,
		    json_t **out);

/*
 * In a with_transaction() callback: keep a copy of the failed operation's
 * reply in *reply, where the TransientTransactionError label that makes
 * it retry lives (docs/DATABASE.md).  Returns false, for the callback.
 */
bool		db_txn_failed(bson_t **reply, const bson_t *got);

/* ERR_MONGO_DOWN for connection and selection errors, else ERR_INTERNAL. */
enum err	db_error(const bson_error_t *);

/* 1 if the error is a duplicate key (E11000). */
int		db_is_duplicate(const bson_error_t *);

/* Fill hex (25 bytes) from an ObjectId. */
void		db_oid_hex(const bson_oid_t *, char *hex);

/* Parse a 24-digit hex id; -1 if it is not one. */
int		db_oid_parse(const char *hex, bson_oid_t *);

/* Milliseconds since the epoch, for createdAt fields. */
int64_t		db_now_ms(void);

/* doc's date field, when it holds one, into o under the same name. */
void		db_time_json(json_t *o, const bson_t *doc, const char *field);

#endif
