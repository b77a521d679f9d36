/*
 * auth.c -- POST /api/auth/register, /login, /logout, /password and
 * GET /api/auth/me.
 *
 * Passwords are hashed and verified with argon2id on the HASH pool,
 * never on the event loop; when more than HASH_QUEUE_MAX are waiting in
 * this process, a new one is refused with 503 and Retry-After rather
 * than queued for minutes.  A login for an unknown email, a wrong
 * password and a disabled account all spend the same argon2id time and
 * get the same 401.
 *
 * Every login attempt is counted, per email and per client address (the
 * /64 of an IPv6 client), before any password is checked, and one that
 * succeeds is forgiven: so at most LOGIN_FAIL_EMAIL / LOGIN_FAIL_IP
 * failures per LOGIN_WINDOW are ever checked, however many arrive at
 * once (the library's limit_attempt counts only when no counter is
 * full).  Past a limit the answer is 429 with Retry-After.
 * Registrations are counted per client address the same way when
 * REGISTER_LIMIT_IP is set.
 *
 * A token carries its user's token epoch ("ver"); logging out revokes
 * the token itself, changing the password moves the epoch (every other
 * token of the user is refused from then on, api/runtime/tokens.c) and answers
 * with a new token.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/password.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "../shared/validate.h"

enum { REG_START, REG_COUNTED, REG_DONE };
enum { LOGIN_START, LOGIN_COUNTED, LOGIN_VERIFIED };
enum { PW_START, PW_COUNTED, PW_DONE, PW_TOLD };

struct login {
	char	email[EMAIL_MAX + 1];	/* normalised */
	char	net[64];		/* client address, or its /64 */
	json_t	*user;			/* new; the user, once verified */
};

static const char *const credential_fields[] = { "email", "password", NULL };
static const char *const password_fields[] = { "currentPassword",
    "newPassword", NULL };

/*
 * Check {email, password} in ctx->body: the normalised email goes to
 * email, the password (borrowed from the body) to *pw.
 */
static enum err
credentials(struct ctx *ctx, char *email, size_t len, const char **pw,
    const char **field)
{
	const char	*raw;
	enum err	 e;

	if ((e = json_only_fields(ctx->body, credential_fields, field)) != 0)
		return (e);
	*field = "email";
	if ((e = json_field_string(ctx->body, "email", 1, &raw)) != 0)
		return (e);
	if ((e = validate_email(raw, email, len)) != ERR_NONE)
		return (e);
	*field = "password";
	if ((e = json_field_string(ctx->body, "password", 1, pw)) != 0)
		return (e);
	return (validate_password(*pw));
}

/*
 * Count an attempt against counters (keys, each with its limit) in one
 * call; the handler runs again at step next with the answer.
 */
static int
count_attempt(struct http_request *req, struct ctx *ctx, int next,
    const char *const *keys, const long *limits, int n)
{
	struct rargs	a;
	int		i, r;

	rargs_fcall(&a, FN_LIMIT, n);
	for (i = 0; i < n; i++)
		rargs_add(&a, keys[i]);
	rargs_addf(&a, "%ld", cfg.login_window);
	for (i = 0; i < n; i++)
		rargs_addf(&a, "%ld", limits[i]);
	r = call_args(req, ctx, next, &a);
	rargs_free(&a);
	return (r);
}

/*
 * The counting's answer: 0 to go on; else answered (429 with
 * Retry-After, or the error) and -1.
 */
static int
counted(struct http_request *req, struct ctx *ctx)
{
	json_t		*r;
	json_int_t	 wait;
	char		 retry[24];
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		json_decref(r);
		api_error(req, e, NULL);
		return (-1);
	}
	wait = json_integer_value(r);
	json_decref(r);
	if (wait <= 0)
		return (0);
	snprintf(retry, sizeof(retry), "%lld", (long long)wait);
	http_response_header(req, "retry-after", retry);
	api_error(req, ERR_RATE_LIMITED, NULL);
	return (-1);
}

/* Take back the attempt on these counters (the login succeeded). */
static void
forgive(const char *const *keys, int n)
{
	struct rargs	a;
	int		i;

	rargs_fcall(&a, FN_FORGIVE, n);
	for (i = 0; i < n; i++)
		rargs_add(&a, keys[i]);
	aredis_fire_args(&a);
	rargs_free(&a);
}

/* ----- register ----- */

/* On a HASH thread: hash, insert (a taken email is a 409). */
static void
register_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*users;
	bson_t			*doc, reply;
	bson_error_t		 berr;
	bson_oid_t		 oid;
	char			 hash[PASSWORD_HASH_MAX];
	const char		*email, *pw;

	email = json_string_value(json_object_get(c->in, "email"));
	pw = json_string_value(json_object_get(c->in, "password"));
	if (password_hash(pw, hash) == -1) {
		c->err = ERR_INTERNAL;
		return;
	}
	bson_oid_init(&oid, NULL);
	doc = BCON_NEW("_id", BCON_OID(&oid), "email", BCON_UTF8(email),
	    "password", BCON_UTF8(hash), "role", BCON_UTF8(ROLE_CUSTOMER),
	    "tokenEpoch", BCON_INT64(0), "createdAt",
	    BCON_DATE_TIME(db_now_ms()));
	users = db_coll(client, DB_USERS);
	if (mongoc_collection_insert_one(users, doc, NULL, &reply, &berr))
		c->out = users_json(doc);
	else if (db_is_duplicate(&berr))
		c->err = ERR_EMAIL_TAKEN;
	else
		c->err = db_error(&berr);
	bson_destroy(&reply);
	bson_destroy(doc);
	mongoc_collection_destroy(users);
}

static int
register_hash(struct http_request *req, struct ctx *ctx)
{
	char		 email[EMAIL_MAX + 1];
	const char	*pw, *field;

	(void)credentials(ctx, email, sizeof(email), &pw, &field);
	return (call_offload(req, ctx, REG_DONE, OFFLOAD_HASH, register_run,
	    json_pack("{s:s, s:s}", "email", email, "password", pw)));
}

/*
 * POST /api/auth/register {email, password}
 *   201 {id, email, role, disabled, createdAt}; 400 invalid;
 *   409 email_taken; 429 rate_limited (REGISTER_LIMIT_IP);
 *   503 overloaded (too many hashes waiting)
 */
int
auth_register(struct http_request *req, struct ctx *ctx)
{
	char		 email[EMAIL_MAX + 1], net[64], key[128];
	const char	*pw, *field, *keys[1];
	json_t		*user;
	enum err	 e;

	switch (ctx->step) {
	case REG_START:
		field = NULL;
		if ((e = api_body(req, ctx)) != ERR_NONE ||
		    (e = credentials(ctx, email, sizeof(email), &pw,
		    &field)) != ERR_NONE) {
			api_error(req, e, field);
			return (KORE_RESULT_OK);
		}
		if (cfg.register_limit_ip == 0)
			return (register_hash(req, ctx));
		api_client_net(req, net, sizeof(net));
		snprintf(key, sizeof(key), "%s%s", RK_RL_REGISTER, net);
		keys[0] = key;
		return (count_attempt(req, ctx, REG_COUNTED, keys,
		    &cfg.register_limit_ip, 1));
	case REG_COUNTED:
		if (counted(req, ctx) == -1)
			return (KORE_RESULT_OK);
		return (register_hash(req, ctx));
	default:
		if ((e = call_result(ctx, &user)) != ERR_NONE) {
			api_error(req, e, e == ERR_EMAIL_TAKEN ? "email" :
			    NULL);
			return (KORE_RESULT_OK);
		}
		api_json(req, 201, user);
		return (KORE_RESULT_OK);
	}
}

/* ----- login ----- */

/*
 * On a HASH thread: find the user and verify; an unknown user burns the
 * same time.  A disabled user is refused like a wrong password.  The
 * user goes to out with its token epoch as "epoch".
 */
static void
login_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*users;
	bson_t			*q, *doc;
	bson_error_t		 berr;
	bson_iter_t		 it;
	const char		*pw;
	int			 ok;

	pw = json_string_value(json_object_get(c->in, "password"));
	users = db_coll(client, DB_USERS);
	q = BCON_NEW("email", BCON_UTF8(json_string_value(json_object_get(
	    c->in, "email"))));
	c->err = ERR_BAD_CREDENTIALS;
	if (db_find_doc(users, q, NULL, &doc, &berr) == -1) {
		c->err = db_error(&berr);
	} else if (doc == NULL) {
		password_burn(pw);
	} else {
		ok = bson_iter_init_find(&it, doc, "password") &&
		    BSON_ITER_HOLDS_UTF8(&it) &&
		    password_verify(bson_iter_utf8(&it, NULL), pw);
		if (ok && !(bson_iter_init_find(&it, doc, "disabled") &&
		    bson_iter_as_bool(&it))) {
			c->err = ERR_NONE;
			c->out = users_json(doc);
			json_object_set_new(c->out, "epoch", json_integer(
			    bson_iter_init_find(&it, doc, "tokenEpoch") ?
			    bson_iter_as_int64(&it) : 0));
		}
		bson_destroy(doc);
	}
	bson_destroy(q);
	mongoc_collection_destroy(users);
}

static void
login_free(void *arg)
{
	struct login	*l = arg;

	json_decref(l->user);
	free(l);
}

/* The counters an attempt for l is counted on. */
static void
login_keys(const struct login *l, char (*buf)[320], const char **keys)
{
	snprintf(buf[0], sizeof(buf[0]), "%s%s", RK_RL_EMAIL, l->email);
	snprintf(buf[1], sizeof(buf[1]), "%s%s", RK_RL_IP, l->net);
	keys[0] = buf[0];
	keys[1] = buf[1];
}

/* Check the body, then count the attempt (before any hashing). */
static int
login_start(struct http_request *req, struct ctx *ctx, struct login *l)
{
	const char	*pw, *field, *keys[2];
	char		 buf[2][320];
	long		 limits[2];
	enum err	 e;

	field = NULL;
	if ((e = api_body(req, ctx)) != ERR_NONE ||
	    (e = credentials(ctx, l->email, sizeof(l->email), &pw,
	    &field)) != ERR_NONE) {
		/* A bad password length cannot be right: same 401. */
		api_error(req, e == ERR_PASSWORD_LENGTH ?
		    ERR_BAD_CREDENTIALS : e, e == ERR_PASSWORD_LENGTH ?
		    NULL : field);
		return (KORE_RESULT_OK);
	}
	api_client_net(req, l->net, sizeof(l->net));
	login_keys(l, buf, keys);
	limits[0] = cfg.login_fail_email;
	limits[1] = cfg.login_fail_ip;
	return (count_attempt(req, ctx, LOGIN_COUNTED, keys, limits, 2));
}

/* A token for user (its epoch as "ver"), answered with the user. */
static void
answer_token(struct http_request *req, json_t *user, int status)
{
	json_int_t	 epoch;
	char		*token;

	epoch = json_integer_value(json_object_get(user, "epoch"));
	json_object_del(user, "epoch");
	token = jwt_token_issue(json_string_value(json_object_get(user, "id")),
	    json_string_value(json_object_get(user, "role")), (long)epoch,
	    cfg.jwt_secret, cfg.jwt_ttl, time(NULL));
	if (token == NULL) {
		json_decref(user);
		api_error(req, ERR_INTERNAL, NULL);
		return;
	}
	api_json(req, status, json_pack("{s:s, s:I, s:o}", "token", token,
	    "expiresIn", (json_int_t)cfg.jwt_ttl, "user", user));
	free(token);
}

/* Verified: forgive the attempt, tell Redis the epoch, answer. */
static int
login_verified(struct http_request *req, struct ctx *ctx, struct login *l)
{
	const char	*keys[2];
	char		 buf[2][320];
	enum err	 e;

	login_keys(l, buf, keys);
	if ((e = call_result(ctx, &l->user)) != ERR_NONE) {
		if (e != ERR_BAD_CREDENTIALS)
			forgive(keys, 2);	/* not the client's fault */
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	forgive(keys, 2);
	tokens_epoch_set(json_string_value(json_object_get(l->user, "id")),
	    json_integer_value(json_object_get(l->user, "epoch")));
	answer_token(req, l->user, 200);
	l->user = NULL;
	return (KORE_RESULT_OK);
}

/*
 * POST /api/auth/login {email, password}
 *   200 {token, expiresIn, user}; 401 invalid_credentials (unknown
 *   email, wrong password and disabled account alike); 429 rate_limited
 *   with Retry-After; 503 overloaded (too many hashes waiting)
 */
int
auth_login(struct http_request *req, struct ctx *ctx)
{
	struct login	*l;

	l = api_data(ctx, sizeof(*l), login_free);
	switch (ctx->step) {
	case LOGIN_START:
		return (login_start(req, ctx, l));
	case LOGIN_COUNTED:
		if (counted(req, ctx) == -1)
			return (KORE_RESULT_OK);
		return (call_offload(req, ctx, LOGIN_VERIFIED, OFFLOAD_HASH,
		    login_run, json_pack("{s:s, s:O}", "email", l->email,
		    "password", json_object_get(ctx->body, "password"))));
	default:
		return (login_verified(req, ctx, l));
	}
}

/* ----- logout ----- */

/*
 * POST /api/auth/logout -> 204; 401.  The presented token is refused
 * from then on (by its signature, until it would have expired).
 */
int
auth_logout(struct http_request *req, struct ctx *ctx)
{
	struct rargs	a;
	long		ttl;
	int		r;
	enum err	e;

	if (ctx->step == 0) {
		if ((e = api_auth(req, ctx)) != ERR_NONE) {
			api_error(req, e, NULL);
			return (KORE_RESULT_OK);
		}
		/* Durable (WAIT): a failover must not bring the token back. */
		ttl = ctx->who.exp - (long)time(NULL) + 1;
		rargs_init(&a, "SET");
		rargs_addf(&a, "%s%s", RK_REVOKED, ctx->who.sig);
		rargs_add(&a, "1");
		rargs_add(&a, "EX");
		rargs_addf(&a, "%ld", ttl > 0 ? ttl : 1);
		r = call_args_durable(req, ctx, 1, &a);
		rargs_free(&a);
		return (r);
	}
	if ((e = call_result(ctx, NULL)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	tokens_forget(ctx->who.sig);
	events_announce_revoked(ctx->who.sub, ctx->who.sig, 0);
	http_response(req, 204, NULL, 0);
	return (KORE_RESULT_OK);
}

/* ----- password ----- */

/*
 * On a HASH thread: verify the current password, store the new one and
 * move the token epoch; the user (with "epoch") goes to out.
 */
static void
password_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*users;
	bson_t			*q, *u, *doc;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_oid_t		 oid;
	char			 hash[PASSWORD_HASH_MAX];
	const char		*cur;

	cur = json_string_value(json_object_get(c->in, "current"));
	db_oid_parse(json_string_value(json_object_get(c->in, "id")), &oid);
	users = db_coll(client, DB_USERS);
	q = BCON_NEW("_id", BCON_OID(&oid));
	u = NULL;
	if (db_find_doc(users, q, NULL, &doc, &berr) == -1) {
		c->err = db_error(&berr);
	} else if (doc == NULL) {
		c->err = ERR_BAD_TOKEN;
	} else if (!bson_iter_init_find(&it, doc, "password") ||
	    !BSON_ITER_HOLDS_UTF8(&it) ||
	    !password_verify(bson_iter_utf8(&it, NULL), cur)) {
		c->err = ERR_WRONG_PASSWORD;
	} else if (password_hash(json_string_value(json_object_get(c->in,
	    "new")), hash) == -1) {
		c->err = ERR_INTERNAL;
	} else {
		u = BCON_NEW("$set", "{", "password", BCON_UTF8(hash), "}",
		    "$inc", "{", "tokenEpoch", BCON_INT64(1), "}");
		bson_destroy(doc);
		doc = NULL;
		if (!mongoc_collection_update_one(users, q, u, NULL, NULL,
		    &berr) || db_find_doc(users, q, NULL, &doc, &berr) == -1 ||
		    doc == NULL) {
			c->err = doc == NULL ? db_error(&berr) : ERR_INTERNAL;
		} else {
			c->out = users_json(doc);
			json_object_set_new(c->out, "epoch", json_integer(
			    bson_iter_init_find(&it, doc, "tokenEpoch") ?
			    bson_iter_as_int64(&it) : 0));
		}
	}
	if (doc != NULL)
		bson_destroy(doc);
	if (u != NULL)
		bson_destroy(u);
	bson_destroy(q);
	mongoc_collection_destroy(users);
}

/* Check {currentPassword, newPassword}; count the attempt. */
static int
password_start(struct http_request *req, struct ctx *ctx)
{
	const char	*cur, *new, *field, *keys[1];
	char		 key[128];
	enum err	 e;

	field = NULL;
	if ((e = api_auth(req, ctx)) != ERR_NONE ||
	    (e = api_body(req, ctx)) != ERR_NONE ||
	    (e = json_only_fields(ctx->body, password_fields, &field)) != 0 ||
	    (field = "currentPassword", e = json_field_string(ctx->body,
	    "currentPassword", 1, &cur)) != 0 ||
	    (field = "newPassword", e = json_field_string(ctx->body,
	    "newPassword", 1, &new)) != 0 ||
	    (e = validate_password(new)) != ERR_NONE) {
		api_error(req, e, e == ERR_UNAUTHENTICATED || e ==
		    ERR_BAD_TOKEN || e == ERR_TOKEN_EXPIRED || e ==
		    ERR_TOKEN_REVOKED ? NULL : field);
		return (KORE_RESULT_OK);
	}
	snprintf(key, sizeof(key), "%s%s", RK_RL_PASSWORD, ctx->who.sub);
	keys[0] = key;
	return (count_attempt(req, ctx, PW_COUNTED, keys,
	    &cfg.login_fail_email, 1));
}

/* The password is changed: tell Redis the new epoch before answering. */
static int
password_done(struct http_request *req, struct ctx *ctx)
{
	const char	*keys[1];
	char		 key[128];
	json_t		*user;
	enum err	 e;

	if ((e = call_result(ctx, &user)) != ERR_NONE) {
		api_error(req, e, e == ERR_WRONG_PASSWORD ? "currentPassword" :
		    NULL);
		return (KORE_RESULT_OK);
	}
	snprintf(key, sizeof(key), "%s%s", RK_RL_PASSWORD, ctx->who.sub);
	keys[0] = key;
	forgive(keys, 1);
	ctx->data = user;
	ctx->data_free = (void (*)(void *))json_decref;
	return (tokens_epoch_tell(req, ctx, PW_TOLD, ctx->who.sub,
	    (long long)json_integer_value(json_object_get(user, "epoch"))));
}

/*
 * POST /api/auth/password {currentPassword, newPassword}
 *   200 {token, expiresIn, user}: every other token of the user is
 *   revoked; 400; 401; 403 wrong_password; 429; 503 (the password is
 *   changed but Redis could not be told: repeat it)
 */
int
auth_password(struct http_request *req, struct ctx *ctx)
{
	switch (ctx->step) {
	case PW_START:
		return (password_start(req, ctx));
	case PW_COUNTED:
		if (counted(req, ctx) == -1)
			return (KORE_RESULT_OK);
		return (call_offload(req, ctx, PW_DONE, OFFLOAD_HASH,
		    password_run, json_pack("{s:s, s:O, s:O}", "id",
		    ctx->who.sub, "current", json_object_get(ctx->body,
		    "currentPassword"), "new", json_object_get(ctx->body,
		    "newPassword"))));
	case PW_DONE:
		return (password_done(req, ctx));
	default:
		if (call_result(ctx, NULL) != ERR_NONE) {
			api_error_msg(req, ERR_REDIS_DOWN, NULL, "the password "
			    "was changed, but Redis could not be told (old "
			    "tokens may still work): change it again");
			return (KORE_RESULT_OK);
		}
		tokens_forget(ctx->who.sig);
		answer_token(req, json_incref(ctx->data), 200);
		return (KORE_RESULT_OK);
	}
}

/* ----- me ----- */

static void
me_run(struct call *c, mongoc_client_t *client)
{
	/* A token for a user deleted since: 401. */
	c->err = db_find_by_id(client, DB_USERS, json_string_value(
	    json_object_get(c->in, "id")), users_json, ERR_BAD_TOKEN, &c->out);
}

/* GET /api/auth/me -> 200 {id, email, role, disabled, createdAt}; 401 */
int
auth_me(struct http_request *req, struct ctx *ctx)
{
	json_t		*user;
	enum err	 e;

	if (ctx->step == 0) {
		if ((e = api_auth(req, ctx)) != ERR_NONE) {
			api_error(req, e, NULL);
			return (KORE_RESULT_OK);
		}
		return (call_offload(req, ctx, 1, OFFLOAD_DB, me_run,
		    json_pack("{s:s}", "id", ctx->who.sub)));
	}
	if ((e = call_result(ctx, &user)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 200, user);
	return (KORE_RESULT_OK);
}
