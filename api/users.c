/*
 * users.c -- user administration: GET /api/users (admin, paginated,
 * ?q= searches emails), GET /api/users/:id (admin or self) and PATCH
 * /api/users/:id {role?, disabled?} (admin).
 *
 * A user as the API shows it never carries the password hash.  A change
 * of role or of disabled moves the user's token epoch, in MongoDB and
 * then in Redis before the answer, so that every token issued before is
 * refused from then on (api/runtime/tokens.c); a disabled user cannot log in,
 * and their queued checkouts still finish (the worker does not ask).
 * No change may leave the shop without an active admin: the last admin
 * cannot demote or disable themself (409 last_admin).  Changes of
 * admins run in one transaction that also writes one guard document
 * (meta "admins"), so that two admins demoting each other at once
 * cannot both succeed.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"

#define QUERY_MAX	254	/* longest ?q= */

enum { PATCH_START, PATCH_DONE, PATCH_TOLD };

static const char *const patch_fields[] = { "role", "disabled", NULL };

/* A new JSON user from a users document: never the password hash. */
json_t *
users_json(const bson_t *doc)
{
	bson_iter_t	 it;
	json_t		*u;
	char		 hex[25];

	u = json_object();
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
		db_oid_hex(bson_iter_oid(&it), hex);
		api_id_pair(u, hex);
	}
	if (bson_iter_init_find(&it, doc, "email") && BSON_ITER_HOLDS_UTF8(&it))
		json_object_set_new(u, "email",
		    json_string(bson_iter_utf8(&it, NULL)));
	json_object_set_new(u, "role", json_string(ROLE_CUSTOMER));
	if (bson_iter_init_find(&it, doc, "role") && BSON_ITER_HOLDS_UTF8(&it))
		json_object_set_new(u, "role",
		    json_string(bson_iter_utf8(&it, NULL)));
	json_object_set_new(u, "disabled", json_boolean(
	    bson_iter_init_find(&it, doc, "disabled") &&
	    bson_iter_as_bool(&it)));
	db_time_json(u, doc, "createdAt");
	return (u);
}

/* ----- reads ----- */

static void
list_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*coll;
	bson_t			 filter;

	bson_init(&filter);
	if (json_is_string(json_object_get(c->in, "q")))
		db_substring(&filter, "email", json_string_value(
		    json_object_get(c->in, "q")));
	coll = db_coll(client, DB_USERS);
	c->err = db_page(coll, &filter, "createdAt", -1, json_integer_value(
	    json_object_get(c->in, "limit")), json_integer_value(
	    json_object_get(c->in, "offset")), -1, users_json, &c->out);
	mongoc_collection_destroy(coll);
	bson_destroy(&filter);
}

static void
get_run(struct call *c, mongoc_client_t *client)
{
	c->err = db_find_by_id(client, DB_USERS, json_string_value(
	    json_object_get(c->in, "id")), users_json, ERR_USER_NOT_FOUND,
	    &c->out);
}

/* Answer a finished read. */
static int
answer(struct http_request *req, struct ctx *ctx)
{
	json_t		*out;
	enum err	 e;

	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		api_error(req, e, e == ERR_USER_NOT_FOUND ? "id" : NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, out);
	return (KORE_RESULT_OK);
}

/*
 * GET /api/users?limit=&offset=&q= (admin)
 *   200 {items, total, limit, offset}; 400 invalid_query; 401; 403
 */
int
users_list(struct http_request *req, struct ctx *ctx)
{
	const char	*bad;
	char		 q[4 * QUERY_MAX + 1];
	long		 limit, offset;
	json_t		*in;
	int		 hasq;

	if (ctx->step > 0)
		return (answer(req, ctx));
	if (!api_require_admin(req, ctx))
		return (KORE_RESULT_OK);
	if (api_page_query(req, &limit, &offset, &bad) != ERR_NONE ||
	    (bad = "q", hasq = api_query_text(req, "q", q, sizeof(q),
	    QUERY_MAX)) == -1) {
		api_error_msg(req, ERR_BAD_QUERY, bad, "query parameter %s is "
		    "invalid (limit 1..%d, offset 0..%d, q up to %d characters)",
		    bad, LIST_MAX, OFFSET_MAX, QUERY_MAX);
		return (KORE_RESULT_OK);
	}
	in = json_pack("{s:i, s:i}", "limit", (int)limit, "offset",
	    (int)offset);
	if (hasq == 1 && q[0] != '\0')
		json_object_set_new(in, "q", json_string(q));
	return (call_offload(req, ctx, 1, OFFLOAD_DB, list_run, in));
}

/* GET /api/users/:id (admin or the user) -> 200; 400; 401; 403; 404 */
int
users_get(struct http_request *req, struct ctx *ctx)
{
	bson_oid_t	oid;
	enum err	e;

	if (ctx->step > 0)
		return (answer(req, ctx));
	if ((e = api_auth(req, ctx)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	if ((e = api_param_oid(ctx, &oid)) != ERR_NONE) {
		api_error(req, e, "id");
		return (KORE_RESULT_OK);
	}
	if (!ctx->who.admin && strcmp(ctx->param, ctx->who.sub) != 0) {
		api_error(req, ERR_FORBIDDEN, NULL);
		return (KORE_RESULT_OK);
	}
	return (call_offload(req, ctx, 1, OFFLOAD_DB, get_run,
	    json_pack("{s:s}", "id", ctx->param)));
}

/* ----- PATCH ----- */

struct patch {
	json_t			*in;		/* borrowed: the call's input */
	bson_oid_t		 user;
	bson_t			*after;		/* the user as written */
	enum err		 refused;	/* why the change is refused */
	int64_t			 epoch;		/* the user's epoch after */
};

/* Active admins other than the patched user (in the transaction). */
static int64_t
other_admins(mongoc_collection_t *users, const bson_oid_t *user,
    const bson_t *opts, bson_error_t *err)
{
	bson_t	*q;
	int64_t	 n;

	q = BCON_NEW("role", BCON_UTF8(ROLE_ADMIN), "disabled", "{", "$ne",
	    BCON_BOOL(true), "}", "_id", "{", "$ne", BCON_OID(user), "}");
	n = mongoc_collection_count_documents(users, q, opts, NULL, NULL, err);
	bson_destroy(q);
	return (n);
}

/* The guard: every change of admins writes it, so two conflict. */
static bool
guard(mongoc_client_t *client, const bson_t *opts, bson_t **reply,
    bson_error_t *err)
{
	mongoc_collection_t	*meta;
	bson_t			*q, *u, r, upsert;
	bool			 ok;

	meta = db_coll(client, "meta");
	q = BCON_NEW("_id", BCON_UTF8("admins"));
	u = BCON_NEW("$inc", "{", "changes", BCON_INT64(1), "}");
	bson_copy_to(opts, &upsert);
	BSON_APPEND_BOOL(&upsert, "upsert", true);
	ok = mongoc_collection_update_one(meta, q, u, &upsert, &r, err);
	bson_destroy(&upsert);
	if (!ok && reply != NULL) {
		bson_destroy(*reply);
		*reply = bson_copy(&r);
	}
	bson_destroy(&r);
	bson_destroy(q);
	bson_destroy(u);
	mongoc_collection_destroy(meta);
	return (ok);
}

/* The user's role and disabled after the patch; 1 if either changes. */
static int
changes(struct patch *p, const bson_t *doc, const char **role, int *disabled)
{
	bson_iter_t	it;
	const char	*was_role;
	int		 was_disabled;

	was_role = bson_iter_init_find(&it, doc, "role") &&
	    BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) :
	    ROLE_CUSTOMER;
	was_disabled = bson_iter_init_find(&it, doc, "disabled") &&
	    bson_iter_as_bool(&it);
	*role = json_is_string(json_object_get(p->in, "role")) ?
	    json_string_value(json_object_get(p->in, "role")) : was_role;
	*disabled = json_is_boolean(json_object_get(p->in, "disabled")) ?
	    json_is_true(json_object_get(p->in, "disabled")) : was_disabled;
	if (strcmp(was_role, ROLE_ADMIN) == 0 && !was_disabled &&
	    (strcmp(*role, ROLE_ADMIN) != 0 || *disabled))
		p->refused = ERR_LAST_ADMIN;	/* unless another admin */
	return (strcmp(*role, was_role) != 0 || *disabled != was_disabled);
}

static bool
patch_body(mongoc_client_session_t *s, void *arg, bson_t **reply,
    bson_error_t *err)
{
	struct patch		*p = arg;
	mongoc_client_t		*client;
	mongoc_collection_t	*users;
	const char		*role;
	bson_t			 opts, *q, *u, *doc;
	int64_t			 n;
	int			 disabled, changed;
	bool			 ok;

	client = mongoc_client_session_get_client(s);
	users = db_coll(client, DB_USERS);
	bson_init(&opts);
	p->refused = ERR_NONE;
	ok = false;
	q = BCON_NEW("_id", BCON_OID(&p->user));
	doc = NULL;
	if (!mongoc_client_session_append(s, &opts, err) ||
	    db_find_doc(users, q, &opts, &doc, err) == -1)
		goto done;
	if (doc == NULL) {
		p->refused = ERR_USER_NOT_FOUND;
		ok = true;
		goto done;
	}
	changed = changes(p, doc, &role, &disabled);
	if (p->refused == ERR_LAST_ADMIN) {
		if (!guard(client, &opts, reply, err) ||
		    (n = other_admins(users, &p->user, &opts, err)) < 0)
			goto done;
		if (n > 0)
			p->refused = ERR_NONE;
	}
	if (p->refused != ERR_NONE || !changed) {
		ok = true;
		goto done;
	}
	u = BCON_NEW("$set", "{", "role", BCON_UTF8(role), "disabled",
	    BCON_BOOL(disabled), "}", "$inc", "{", "tokenEpoch",
	    BCON_INT64(1), "}");
	ok = mongoc_collection_update_one(users, q, u, &opts, NULL, err);
	bson_destroy(u);
done:
	if (doc != NULL)
		bson_destroy(doc);
	bson_destroy(q);
	bson_destroy(&opts);
	mongoc_collection_destroy(users);
	return (ok);
}

/* On a DB thread: the patch in one transaction, then the user as is. */
static void
patch_run(struct call *c, mongoc_client_t *client)
{
	mongoc_client_session_t	*s;
	mongoc_collection_t	*users;
	struct patch		 p;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_t			*q, *doc;

	memset(&p, 0, sizeof(p));
	p.in = c->in;
	db_oid_parse(json_string_value(json_object_get(c->in, "id")), &p.user);
	if ((s = mongoc_client_start_session(client, NULL, &berr)) == NULL ||
	    !mongoc_client_session_with_transaction(s, patch_body, NULL, &p,
	    NULL, &berr)) {
		c->err = db_error(&berr);
		if (s != NULL)
			mongoc_client_session_destroy(s);
		return;
	}
	mongoc_client_session_destroy(s);
	if ((c->err = p.refused) != ERR_NONE)
		return;
	users = db_coll(client, DB_USERS);
	q = BCON_NEW("_id", BCON_OID(&p.user));
	doc = NULL;
	if (db_find_doc(users, q, NULL, &doc, &berr) == -1 || doc == NULL) {
		c->err = doc == NULL ? ERR_USER_NOT_FOUND : db_error(&berr);
	} else {
		c->out = json_pack("{s:o, s:I}", "user", users_json(doc),
		    "epoch", (json_int_t)(bson_iter_init_find(&it, doc,
		    "tokenEpoch") ? bson_iter_as_int64(&it) : 0));
	}
	if (doc != NULL)
		bson_destroy(doc);
	bson_destroy(q);
	mongoc_collection_destroy(users);
}

/* Check {role?, disabled?} into in (new); NULL after answering 400. */
static json_t *
patch_input(struct http_request *req, struct ctx *ctx)
{
	const char	*role, *field;
	json_t		*in, *v;
	enum err	 e;

	field = NULL;
	if ((e = api_body(req, ctx)) != ERR_NONE ||
	    (e = json_only_fields(ctx->body, patch_fields, &field)) != 0 ||
	    (field = "role", e = json_field_string(ctx->body, "role", 0,
	    &role)) != 0) {
		api_error(req, e, field);
		return (NULL);
	}
	if (role != NULL && strcmp(role, ROLE_ADMIN) != 0 &&
	    strcmp(role, ROLE_CUSTOMER) != 0 &&
	    strcmp(role, ROLE_PAYMENTS) != 0) {
		api_error_msg(req, ERR_INVALID, "role", "role must be \"%s\", "
		    "\"%s\" or \"%s\"", ROLE_CUSTOMER, ROLE_ADMIN,
		    ROLE_PAYMENTS);
		return (NULL);
	}
	v = json_object_get(ctx->body, "disabled");
	if (v != NULL && !json_is_boolean(v)) {
		api_error_msg(req, ERR_WRONG_TYPE, "disabled", "disabled must be "
		    "true or false");
		return (NULL);
	}
	if (role == NULL && v == NULL) {
		api_error_msg(req, ERR_MISSING_FIELD, NULL, "a PATCH needs role "
		    "or disabled");
		return (NULL);
	}
	in = json_pack("{s:s}", "id", ctx->param);
	if (role != NULL)
		json_object_set_new(in, "role", json_string(role));
	if (v != NULL)
		json_object_set(in, "disabled", v);
	return (in);
}

/* Written: tell Redis the user's new epoch before answering. */
static int
patch_done(struct http_request *req, struct ctx *ctx)
{
	json_t		*out;
	enum err	 e;

	if ((e = call_result(ctx, &out)) != ERR_NONE) {
		api_error(req, e, e == ERR_USER_NOT_FOUND ? "id" : NULL);
		return (KORE_RESULT_OK);
	}
	ctx->data = out;
	ctx->data_free = (void (*)(void *))json_decref;
	return (tokens_epoch_tell(req, ctx, PATCH_TOLD, ctx->param,
	    (long long)json_integer_value(json_object_get(out, "epoch"))));
}

/*
 * PATCH /api/users/:id {role?, disabled?} (admin)
 *   200 user; 400; 401; 403 admin_only; 404; 409 last_admin;
 *   503 if Redis could not be told (the change is saved: repeat it)
 */
int
users_update(struct http_request *req, struct ctx *ctx)
{
	bson_oid_t	 oid;
	json_t		*in;
	enum err	 e;

	if (ctx->step == PATCH_DONE)
		return (patch_done(req, ctx));
	if (ctx->step == PATCH_TOLD) {
		if (call_result(ctx, NULL) != ERR_NONE) {
			api_error_msg(req, ERR_REDIS_DOWN, NULL, "the change "
			    "was saved, but Redis could not be told (old "
			    "tokens may still work): repeat the request");
			return (KORE_RESULT_OK);
		}
		api_json(req, 200, json_incref(json_object_get(ctx->data,
		    "user")));
		return (KORE_RESULT_OK);
	}
	if (!api_require_admin(req, ctx))
		return (KORE_RESULT_OK);
	if ((e = api_param_oid(ctx, &oid)) != ERR_NONE) {
		api_error(req, e, "id");
		return (KORE_RESULT_OK);
	}
	if ((in = patch_input(req, ctx)) == NULL)
		return (KORE_RESULT_OK);
	return (call_offload(req, ctx, PATCH_DONE, OFFLOAD_DB, patch_run, in));
}
