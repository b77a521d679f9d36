/*
 * migrate.c -- collections, indexes, validators and the first admin.
 *
 * Indexes carry the invariants the code relies on: one user per email,
 * one cart per user, one order per checkoutId (the worker treats a
 * duplicate key there as "already committed").  The products validator
 * refuses a negative stock or price even from a buggy writer.  Running
 * it twice changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/jwt.h"
#include "../shared/log.h"
#include "../shared/password.h"
#include "migrate.h"

struct index {
	const char	*coll;
	const char	*name;
	const char	*keys;		/* relaxed JSON */
	int		 unique;
};

static const struct index indexes[] = {
	{ DB_USERS, "email_unique", "{\"email\": 1}", 1 },
	{ DB_CARTS, "userId_unique", "{\"userId\": 1}", 1 },
	{ DB_ORDERS, "checkoutId_unique", "{\"checkoutId\": 1}", 1 },
	{ DB_ORDERS, "userId_createdAt", "{\"userId\": 1, \"createdAt\": -1}",
	    0 },
	{ DB_PRODUCTS, "createdAt", "{\"createdAt\": -1}", 0 },
	{ DB_PRODUCTS, "price", "{\"price\": 1}", 0 },
	{ DB_PRODUCTS, "title", "{\"title\": 1}", 0 },
};

static const char *collections[] = { DB_USERS, DB_PRODUCTS, DB_CARTS,
    DB_ORDERS };

static const char products_schema[] =
    "{\"$jsonSchema\": {\"bsonType\": \"object\","
    " \"required\": [\"title\", \"price\", \"stock\"],"
    " \"properties\": {"
    "  \"title\": {\"bsonType\": \"string\"},"
    "  \"price\": {\"bsonType\": [\"int\", \"long\"], \"minimum\": 0},"
    "  \"stock\": {\"bsonType\": [\"int\", \"long\"], \"minimum\": 0}}}}";

/* Run cmd on the database; 0, or -1 with the error in berr. */
static int
command(mongoc_client_t *client, const bson_t *cmd, bson_error_t *berr)
{
	bson_t	reply;
	int	ok;

	ok = mongoc_client_write_command_with_opts(client, cfg.mongo_db, cmd,
	    NULL, &reply, berr);
	bson_destroy(&reply);
	return (ok ? 0 : -1);
}

static int
ensure_collection(mongoc_client_t *client, const char *name)
{
	bson_t		*cmd;
	bson_error_t	 berr;
	int		 ret;

	cmd = BCON_NEW("create", BCON_UTF8(name));
	ret = command(client, cmd, &berr);
	bson_destroy(cmd);
	if (ret == -1 && berr.code != 48) {	/* 48: NamespaceExists */
		log_error("migrate: create collection failed", "{s:s, s:s}",
		    "collection", name, "error", berr.message);
		return (-1);
	}
	return (0);
}

static int
ensure_validator(mongoc_client_t *client)
{
	bson_t		*validator, *cmd;
	bson_error_t	 berr;
	int		 ret;

	validator = bson_new_from_json((const uint8_t *)products_schema, -1,
	    &berr);
	if (validator == NULL) {
		log_error("migrate: bad schema", "{s:s}", "error", berr.message);
		return (-1);
	}
	cmd = BCON_NEW("collMod", BCON_UTF8(DB_PRODUCTS),
	    "validator", BCON_DOCUMENT(validator),
	    "validationLevel", BCON_UTF8("strict"));
	ret = command(client, cmd, &berr);
	if (ret == -1)
		log_error("migrate: products validator failed", "{s:s}",
		    "error", berr.message);
	bson_destroy(cmd);
	bson_destroy(validator);
	return (ret);
}

static int
ensure_index(mongoc_client_t *client, const struct index *ix)
{
	bson_t		*keys, *cmd;
	bson_error_t	 berr;
	int		 ret;

	keys = bson_new_from_json((const uint8_t *)ix->keys, -1, &berr);
	if (keys == NULL)
		return (-1);
	cmd = BCON_NEW("createIndexes", BCON_UTF8(ix->coll),
	    "indexes", "[", "{", "key", BCON_DOCUMENT(keys),
	    "name", BCON_UTF8(ix->name), "unique", BCON_BOOL(ix->unique),
	    "}", "]");
	ret = command(client, cmd, &berr);
	if (ret == -1)
		log_error("migrate: createIndexes failed", "{s:s, s:s, s:s}",
		    "collection", ix->coll, "index", ix->name,
		    "error", berr.message);
	bson_destroy(cmd);
	bson_destroy(keys);
	return (ret);
}

int
migrate_promote(mongoc_client_t *client, const char *email)
{
	mongoc_collection_t	*users;
	bson_t			*query, *update, reply;
	bson_error_t		 berr;
	bson_iter_t		 it;
	int			 ret;

	users = db_coll(client, DB_USERS);
	query = BCON_NEW("email", BCON_UTF8(email));
	update = BCON_NEW("$set", "{", "role", BCON_UTF8(ROLE_ADMIN), "}");
	ret = -1;
	if (mongoc_collection_update_one(users, query, update, NULL, &reply,
	    &berr)) {
		ret = bson_iter_init_find(&it, &reply, "matchedCount") &&
		    bson_iter_as_int64(&it) > 0 ? 1 : 0;
		if (ret == 1)
			log_info("admin: promoted", "{s:s}", "email", email);
	} else {
		log_error("admin: promote failed", "{s:s}", "error",
		    berr.message);
	}
	bson_destroy(&reply);
	bson_destroy(query);
	bson_destroy(update);
	mongoc_collection_destroy(users);
	return (ret);
}

int
migrate_create_admin(mongoc_client_t *client, const char *email,
    const char *password)
{
	mongoc_collection_t	*users;
	bson_t			*doc;
	bson_error_t		 berr;
	char			 hash[PASSWORD_HASH_MAX];
	int			 ret;

	if (password_hash(password, hash) == -1)
		return (-1);
	users = db_coll(client, DB_USERS);
	doc = BCON_NEW("email", BCON_UTF8(email), "password", BCON_UTF8(hash),
	    "role", BCON_UTF8(ROLE_ADMIN),
	    "createdAt", BCON_DATE_TIME(db_now_ms()));
	ret = mongoc_collection_insert_one(users, doc, NULL, NULL, &berr) ?
	    0 : -1;
	if (ret == 0)
		log_info("admin: created", "{s:s}", "email", email);
	else if (db_is_duplicate(&berr))
		ret = migrate_promote(client, email) == 1 ? 0 : -1;
	else
		log_error("admin: create failed", "{s:s}", "error",
		    berr.message);
	bson_destroy(doc);
	mongoc_collection_destroy(users);
	return (ret);
}

int
migrate_run(mongoc_client_t *client)
{
	size_t	i;

	for (i = 0; i < sizeof(collections) / sizeof(collections[0]); i++) {
		if (ensure_collection(client, collections[i]) == -1)
			return (-1);
	}
	if (ensure_validator(client) == -1)
		return (-1);
	for (i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
		if (ensure_index(client, &indexes[i]) == -1)
			return (-1);
	}
	log_info("migrate: indexes and validators in place", "{s:s}",
	    "database", cfg.mongo_db);
	if (cfg.admin_email[0] == '\0')
		return (0);
	if (migrate_promote(client, cfg.admin_email) == 1)
		return (0);
	return (migrate_create_admin(client, cfg.admin_email,
	    cfg.admin_password));
}
