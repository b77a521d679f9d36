/*
 * migrate.c -- collections, indexes, validators and the first admin.
 *
 * Indexes carry the invariants the code relies on: one user per email,
 * one cart per user, one order per checkoutId (the worker treats a
 * duplicate key there as "already committed").  The products validator
 * refuses a negative stock or price even from a buggy writer.  Running
 * it twice changes nothing.  The first admin (ADMIN_EMAIL) is created,
 * or an existing account promoted only when ADMIN_PASSWORD is its own
 * password.  In Redis: the checkout library, and Idempotency-Keys moved
 * to the names this build looks them up by.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/jwt.h"
#include "../shared/log.h"
#include "../shared/password.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "../shared/lifecycle.h"
#include "../shared/outbox.h"
#include "../shared/validate.h"
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
	/* The admin's listing, the sweeper's expiry and its repairs. */
	{ DB_ORDERS, "createdAt", "{\"createdAt\": -1}", 0 },
	{ DB_ORDERS, "status_createdAt", "{\"status\": 1, \"createdAt\": -1}",
	    0 },
	{ DB_ORDERS, "status_payBy", "{\"status\": 1, \"payBy\": 1}", 0 },
	{ DB_ORDERS, "unitsBack_updatedAt",
	    "{\"unitsBack\": 1, \"updatedAt\": 1}", 0 },
	{ DB_PRODUCTS, "createdAt", "{\"createdAt\": -1}", 0 },
	{ DB_PRODUCTS, "price", "{\"price\": 1}", 0 },
	{ DB_PRODUCTS, "title", "{\"title\": 1}", 0 },
	/* The notifier's claim: due documents, oldest first. */
	{ DB_OUTBOX, "state_nextAt", "{\"state\": 1, \"nextAt\": 1}", 0 },
};

static const char *collections[] = { DB_USERS, DB_PRODUCTS, DB_CARTS,
    DB_ORDERS, DB_OUTBOX };

static const char products_schema[] =
    "{\"$jsonSchema\": {\"bsonType\": \"object\","
    " \"required\": [\"title\", \"price\", \"stock\"],"
    " \"properties\": {"
    "  \"title\": {\"bsonType\": \"string\"},"
    "  \"price\": {\"bsonType\": [\"int\", \"long\"], \"minimum\": 0},"
    "  \"stock\": {\"bsonType\": [\"int\", \"long\"], \"minimum\": 0},"
    "  \"saleStartsAt\": {\"bsonType\": \"date\"},"
    "  \"saleEndsAt\": {\"bsonType\": \"date\"},"
    "  \"perCustomerLimit\": {\"bsonType\": [\"int\", \"long\"],"
    " \"minimum\": 1}}}}";

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

/* Promote the user of doc (its password verified): 0, or -1. */
static int
promote(mongoc_collection_t *users, const bson_t *doc, const char *email)
{
	bson_t		*q, *u;
	bson_error_t	 berr;
	bson_iter_t	 it;
	int		 ret;

	if (bson_iter_init_find(&it, doc, "role") && BSON_ITER_HOLDS_UTF8(&it) &&
	    strcmp(bson_iter_utf8(&it, NULL), ROLE_ADMIN) == 0)
		return (0);		/* already one */
	q = BCON_NEW("email", BCON_UTF8(email));
	/* A new role: the account's old tokens are refused (tokens.c). */
	u = BCON_NEW("$set", "{", "role", BCON_UTF8(ROLE_ADMIN), "}", "$inc",
	    "{", "tokenEpoch", BCON_INT64(1), "}");
	ret = mongoc_collection_update_one(users, q, u, NULL, NULL, &berr) ?
	    0 : -1;
	if (ret == 0)
		log_info("admin: promoted", "{s:s}", "email", email);
	else
		fprintf(stderr, "shopctl: promoting %s failed: %s\n", email,
		    berr.message);
	bson_destroy(q);
	bson_destroy(u);
	return (ret);
}

/* Insert a new admin with an argon2id hash of password: 1, 0 taken, -1. */
static int
create_admin(mongoc_collection_t *users, const char *email,
    const char *password)
{
	bson_t		*doc;
	bson_error_t	 berr;
	char		 hash[PASSWORD_HASH_MAX];
	int		 ret;

	if (password_hash(password, hash) == -1)
		return (-1);
	doc = BCON_NEW("email", BCON_UTF8(email), "password", BCON_UTF8(hash),
	    "role", BCON_UTF8(ROLE_ADMIN), "tokenEpoch", BCON_INT64(0),
	    "createdAt", BCON_DATE_TIME(db_now_ms()));
	ret = mongoc_collection_insert_one(users, doc, NULL, NULL, &berr) ?
	    1 : db_is_duplicate(&berr) ? 0 : -1;
	if (ret == 1)
		log_info("admin: created", "{s:s}", "email", email);
	else if (ret == -1)
		fprintf(stderr, "shopctl: creating %s failed: %s\n", email,
		    berr.message);
	bson_destroy(doc);
	return (ret);
}

int
migrate_admin(mongoc_client_t *client, const char *email_in,
    const char *password)
{
	mongoc_collection_t	*users;
	bson_t			*q, *doc;
	bson_error_t		 berr;
	bson_iter_t		 it;
	char			 email[EMAIL_MAX + 1];
	int			 ret, tries;

	if (validate_email(email_in, email, sizeof(email)) != ERR_NONE) {
		fprintf(stderr, "shopctl: %s is not a valid email address\n",
		    email_in);
		return (-1);
	}
	users = db_coll(client, DB_USERS);
	q = BCON_NEW("email", BCON_UTF8(email));
	ret = -1;
	for (tries = 0; tries < 3 && ret == -1; tries++) {
		if (db_find_doc(users, q, NULL, &doc, &berr) == -1) {
			fprintf(stderr, "shopctl: reading users failed: %s\n",
			    berr.message);
			break;
		}
		if (doc == NULL) {
			if ((ret = create_admin(users, email, password)) == 0)
				ret = -1;	/* registered meanwhile: again */
			else if (ret == 1)
				ret = 0;
			continue;
		}
		if (bson_iter_init_find(&it, doc, "password") &&
		    BSON_ITER_HOLDS_UTF8(&it) &&
		    password_verify(bson_iter_utf8(&it, NULL), password))
			ret = promote(users, doc, email);
		else
			fprintf(stderr, "shopctl: %s is already registered, and "
			    "ADMIN_PASSWORD is not its password: nothing done.  "
			    "To make that account an admin, give its own "
			    "password, or have an admin promote it (PATCH "
			    "/api/users/:id {\"role\": \"admin\"})\n", email);
		bson_destroy(doc);
		break;
	}
	bson_destroy(q);
	mongoc_collection_destroy(users);
	return (ret);
}

/* Orders from before statuses are confirmed (shared/lifecycle.h). */
static int
statuses(mongoc_client_t *client)
{
	mongoc_collection_t	*orders;
	bson_error_t		 berr;
	bson_t			*q, *u;
	int			 ret;

	orders = db_coll(client, DB_ORDERS);
	q = BCON_NEW("status", "{", "$exists", BCON_BOOL(false), "}");
	u = BCON_NEW("$set", "{", "status", BCON_UTF8(OS_CONFIRMED), "}");
	ret = mongoc_collection_update_many(orders, q, u, NULL, NULL, &berr) ?
	    0 : -1;
	if (ret == -1)
		log_error("migrate: setting order statuses failed", "{s:s}",
		    "error", berr.message);
	bson_destroy(q);
	bson_destroy(u);
	mongoc_collection_destroy(orders);
	return (ret);
}

/* Say so when the shop has no admin yet, and how to make one: 0. */
static int
no_admin_yet(mongoc_client_t *client)
{
	mongoc_collection_t	*users;
	bson_t			*q;
	int64_t			 n;

	users = db_coll(client, DB_USERS);
	q = BCON_NEW("role", BCON_UTF8(ROLE_ADMIN));
	n = mongoc_collection_count_documents(users, q, NULL, NULL, NULL,
	    NULL);
	if (n == 0)
		fprintf(stderr, "shopctl: there is no admin yet: set "
		    "ADMIN_EMAIL and ADMIN_PASSWORD (in .env) and run again, or "
		    "run `build/shopctl admin you@example.com`; product writes "
		    "and the admin routes need one\n");
	bson_destroy(q);
	mongoc_collection_destroy(users);
	return (0);
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
	if (statuses(client) == -1)
		return (-1);
	log_info("migrate: indexes and validators in place", "{s:s}",
	    "database", cfg.mongo_db);
	if (cfg.admin_email[0] == '\0')
		return (no_admin_yet(client));
	return (migrate_admin(client, cfg.admin_email, cfg.admin_password));
}

/* ----- Redis ----- */

/*
 * An Idempotency-Key as a build before the compact form kept it (name
 * "idem:<user>:<key>", value "pending|<hash>" or "done|<hash>|<id>",
 * with the whole hash): its name and value now (protocol.h), or -1 if
 * it is not one.
 */
static int
idem_compact(const char *old, const char *v, char name[IDEM_KEY_SIZE],
    char *value, size_t len)
{
	const char	*user, *key, *hash, *id;
	char		 uid[25];

	user = old + strlen(RK_IDEM);
	if ((key = strchr(user, ':')) == NULL || key - user != 24 ||
	    (v[0] != 'p' && v[0] != 'd') || (hash = strchr(v, '|')) == NULL)
		return (-1);
	memcpy(uid, user, 24);
	uid[24] = '\0';
	hash++;
	if ((id = strchr(hash, '|')) == NULL)
		id = hash + strlen(hash);
	if (!validate_oid(uid) || id - hash < IDEM_HASH_HEX)
		return (-1);
	protocol_idem_key(name, uid, key + 1);
	snprintf(value, len, "%c|%.*s%s", v[0], IDEM_HASH_HEX, hash, id);
	return (0);
}

/* Read n pipelined replies into out (NULL: free them); -1 if the
 * connection failed. */
static int
replies(redisContext *r, size_t n, redisReply **out)
{
	size_t	 i;
	void	*rep;

	for (i = 0; i < n; i++) {
		if (redisGetReply(r, &rep) != REDIS_OK)
			return (-1);
		if (out != NULL)
			out[i] = rep;
		else
			freeReplyObject(rep);
	}
	return (0);
}

/* Move one SCAN step's legacy keys (names) to their compact form. */
static int
idem_step(redisContext *r, const redisReply *names, long *moved)
{
	redisReply	**got;
	char		  name[IDEM_KEY_SIZE], value[128];
	size_t		  i, n;
	int		  ret;

	got = calloc(names->elements * 2 + 1, sizeof(*got));
	for (i = 0; i < names->elements; i++) {
		redisAppendCommand(r, "GET %s", names->element[i]->str);
		redisAppendCommand(r, "PTTL %s", names->element[i]->str);
	}
	ret = replies(r, names->elements * 2, got);
	for (i = 0, n = 0; ret == 0 && i < names->elements; i++) {
		if (got[2 * i]->type != REDIS_REPLY_STRING ||
		    got[2 * i + 1]->type != REDIS_REPLY_INTEGER ||
		    got[2 * i + 1]->integer <= 0 ||
		    idem_compact(names->element[i]->str, got[2 * i]->str, name,
		    value, sizeof(value)) == -1)
			continue;
		redisAppendCommand(r, "SET %s %s PX %lld NX", name, value,
		    got[2 * i + 1]->integer);
		redisAppendCommand(r, "DEL %s", names->element[i]->str);
		n++;
	}
	for (i = 0; got[i] != NULL; i++)
		freeReplyObject(got[i]);
	free(got);
	if (ret == 0)
		ret = replies(r, n * 2, NULL);
	*moved += (long)n;
	return (ret);
}

/*
 * Idempotency-Keys kept by a build before the compact form go to their
 * compact names with the time they had left, so that a retry after the
 * upgrade still gets its replay.  Compact names have no ':' after
 * "idem:", so a pass finds only what is left to move (an old API still
 * running during an upgrade may add some: run migrate again once it is
 * gone).
 */
static int
migrate_idem_keys(redisContext *r)
{
	redisReply	*scan;
	char		 cursor[32] = "0";
	long		 moved = 0;
	int		 ret;

	do {
		scan = redisCommand(r, "SCAN %s MATCH %s*:* COUNT 1000", cursor,
		    RK_IDEM);
		if (scan == NULL || scan->type != REDIS_REPLY_ARRAY ||
		    scan->elements != 2) {
			log_error("migrate: scanning Idempotency-Keys failed",
			    "{s:s}", "error", scan != NULL && scan->type ==
			    REDIS_REPLY_ERROR ? scan->str : r->errstr);
			freeReplyObject(scan);
			return (-1);
		}
		snprintf(cursor, sizeof(cursor), "%s", scan->element[0]->str);
		ret = idem_step(r, scan->element[1], &moved);
		freeReplyObject(scan);
		if (ret == -1) {
			log_error("migrate: moving Idempotency-Keys failed",
			    "{s:s}", "error", r->errstr);
			return (-1);
		}
	} while (strcmp(cursor, "0") != 0);
	if (moved > 0)
		log_info("migrate: Idempotency-Keys moved to compact names",
		    "{s:I}", "keys", (json_int_t)moved);
	return (0);
}

int
migrate_redis(void)
{
	redisContext	*r;
	char		 err[512];
	int		 i, ret;

	/* Redis may be starting as MongoDB may be (make run, systemd). */
	for (i = 0; i < 60; i++) {
		if ((r = redis_connect(err, sizeof(err))) != NULL) {
			log_info("migrate: the checkout library is in Redis",
			    "{s:s, s:i}", "host", cfg.redis_host, "port",
			    cfg.redis_port);
			ret = migrate_idem_keys(r);
			redisFree(r);
			return (ret);
		}
		usleep(500 * 1000);
	}
	fprintf(stderr, "shopctl: %s\n", err);
	return (-1);
}
