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
#include "../shared/rconn.h"
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

/* GET and PTTL of each of names, the cmds to pipeline (2 per name). */
static struct rargs *
idem_reads(const redisReply *names)
{
	struct rargs	*cmds;
	size_t		 i;

	cmds = calloc(names->elements * 2, sizeof(*cmds));
	for (i = 0; i < names->elements; i++) {
		rargs_init(&cmds[2 * i], "GET");
		rargs_add(&cmds[2 * i], names->element[i]->str);
		rargs_init(&cmds[2 * i + 1], "PTTL");
		rargs_add(&cmds[2 * i + 1], names->element[i]->str);
	}
	return (cmds);
}

/*
 * The moves of the legacy keys among names, from their GET and PTTL
 * replies (got): SET the compact key with the time left, DEL the old
 * one; into moves (2 per name at most), their count returned.
 */
static int
idem_moves(const redisReply *names, redisReply **got, struct rargs *moves)
{
	char	name[IDEM_KEY_SIZE], value[128];
	size_t	i;
	int	k;

	for (i = 0, k = 0; i < names->elements; i++) {
		if (got[2 * i]->type != REDIS_REPLY_STRING ||
		    got[2 * i + 1]->type != REDIS_REPLY_INTEGER ||
		    got[2 * i + 1]->integer <= 0 ||
		    idem_compact(names->element[i]->str, got[2 * i]->str, name,
		    value, sizeof(value)) == -1)
			continue;
		rargs_init(&moves[k], "SET");
		rargs_add(&moves[k], name);
		rargs_add(&moves[k], value);
		rargs_add(&moves[k], "PX");
		rargs_addf(&moves[k], "%lld", got[2 * i + 1]->integer);
		rargs_add(&moves[k++], "NX");
		rargs_init(&moves[k], "DEL");
		rargs_add(&moves[k++], names->element[i]->str);
	}
	return (k);
}

/* Move one SCAN step's legacy keys (names) to their compact form. */
static int
idem_step(struct rconn *r, const redisReply *names, long *moved)
{
	struct rargs	 *reads, *moves;
	redisReply	**got;
	int		  n, k, ret;

	if ((n = (int)names->elements * 2) == 0)
		return (0);
	reads = idem_reads(names);
	moves = calloc((size_t)n, sizeof(*moves));
	got = calloc((size_t)n, sizeof(*got));
	k = 0;
	if ((ret = rconn_pipeline(r, reads, n, got)) == 0) {
		k = idem_moves(names, got, moves);
		rconn_free(got, NULL, n);
		memset(got, 0, (size_t)n * sizeof(*got));
		if (k > 0 && (ret = rconn_pipeline(r, moves, k, got)) == 0)
			rconn_free(got, NULL, k);
	}
	rconn_free(NULL, reads, n);
	rconn_free(NULL, moves, k);
	free(reads);
	free(moves);
	free(got);
	*moved += ret == 0 ? k / 2 : 0;
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
migrate_idem_keys(struct rconn *r)
{
	redisReply	*scan;
	char		 cursor[32] = "0";
	long		 moved = 0;
	int		 ret;

	do {
		scan = rconn_cmd(r, "SCAN %s MATCH %s*:* COUNT 1000", cursor,
		    RK_IDEM);
		if (scan == NULL || scan->type != REDIS_REPLY_ARRAY ||
		    scan->elements != 2) {
			log_error("migrate: scanning Idempotency-Keys failed",
			    "{s:s}", "error", scan != NULL && scan->type ==
			    REDIS_REPLY_ERROR ? scan->str : "connection lost");
			if (scan != NULL)
				freeReplyObject(scan);
			return (-1);
		}
		snprintf(cursor, sizeof(cursor), "%s", scan->element[0]->str);
		ret = idem_step(r, scan->element[1], &moved);
		freeReplyObject(scan);
		if (ret == -1) {
			log_error("migrate: moving Idempotency-Keys failed",
			    "{s:s}", "error", "connection lost");
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
	struct rconn	r = { .name = "shopctl" };
	char		err[512];
	int		i, ret;

	/* Redis may be starting as MongoDB may be (make run, systemd). */
	for (i = 0; i < 60; i++) {
		if ((r.redis = redis_connect(err, sizeof(err))) != NULL) {
			log_info("migrate: the checkout library is in Redis",
			    "{s:s, s:i}", "host", cfg.redis_host, "port",
			    cfg.redis_port);
			ret = migrate_idem_keys(&r);
			rconn_drop(&r);
			return (ret);
		}
		usleep(500 * 1000);
	}
	fprintf(stderr, "shopctl: %s\n", err);
	return (-1);
}
