/*
 * auth.c -- POST /api/auth/register, POST /api/auth/login, GET
 * /api/auth/me.
 *
 * Passwords are hashed and verified with argon2id on the HASH pool,
 * never on the event loop.  A login for an unknown email spends the same
 * argon2id time and gets the same 401 as a wrong password, so neither
 * the answer nor its timing tells whether an account exists.  Failed
 * logins are counted in Redis per email and per client IP for
 * LOGIN_WINDOW seconds; past LOGIN_FAIL_EMAIL or LOGIN_FAIL_IP the login
 * answers 429 with Retry-After before any password is checked.
 * Successful logins are not counted.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/json.h"
#include "../shared/password.h"
#include "../shared/redis.h"
#include "../shared/validate.h"

enum { LOGIN_START, LOGIN_LIMITS, LOGIN_VERIFIED, LOGIN_COUNTED };

struct login {
	char	email[EMAIL_MAX + 1];	/* normalised */
	char	ip[64];			/* client address */
	json_t	*user;			/* new; the user, once verified */
};

/* KEYS: email and IP counters.  Returns {count, ttl, count, ttl}. */
static const char limits_lua[] =
    "local r = {} "
    "for i = 1, 2 do "
    "  r[#r + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') "
    "  r[#r + 1] = redis.call('TTL', KEYS[i]) "
    "end "
    "return r";

/* KEYS: email and IP counters; ARGV[1]: window.  Counts one failure. */
static const char failed_lua[] =
    "for i = 1, 2 do "
    "  if redis.call('INCR', KEYS[i]) == 1 then "
    "    redis.call('EXPIRE', KEYS[i], ARGV[1]) "
    "  end "
    "end "
    "return 1";

static const char *const credential_fields[] = { "email", "password", NULL };

/* A new JSON user from a users document. */
static json_t *
user_json(const bson_t *doc)
{
	bson_iter_t	 it;
	json_t		*u;
	char		 hex[25], when[40];

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
	if (bson_iter_init_find(&it, doc, "createdAt") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it)) {
		db_iso_time(bson_iter_date_time(&it), when, sizeof(when));
		json_object_set_new(u, "createdAt", json_string(when));
	}
	return (u);
}

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

/* ----- register ----- */

/* On a HASH thread: refuse a taken email, hash, insert. */
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
	    "createdAt", BCON_DATE_TIME(db_now_ms()));
	users = db_coll(client, DB_USERS);
	if (mongoc_collection_insert_one(users, doc, NULL, &reply, &berr))
		c->out = user_json(doc);
	else if (db_is_duplicate(&berr))
		c->err = ERR_EMAIL_TAKEN;
	else
		c->err = db_error(&berr);
	bson_destroy(&reply);
	bson_destroy(doc);
	mongoc_collection_destroy(users);
}

/*
 * POST /api/auth/register {email, password}
 *   201 {id, email, role, createdAt}; 400 invalid; 409 email_taken
 */
int
auth_register(struct http_request *req, struct ctx *ctx)
{
	char		 email[EMAIL_MAX + 1];
	const char	*pw, *field;
	json_t		*user;
	enum err	 e;

	if (ctx->step == 0) {
		field = NULL;
		if ((e = api_body(req, ctx)) != ERR_NONE ||
		    (e = credentials(ctx, email, sizeof(email), &pw,
		    &field)) != ERR_NONE) {
			api_error(req, e, field);
			return (KORE_RESULT_OK);
		}
		return (call_offload(req, ctx, 1, OFFLOAD_HASH, register_run,
		    json_pack("{s:s, s:s}", "email", email, "password", pw)));
	}
	if ((e = call_result(ctx, &user)) != ERR_NONE) {
		api_error(req, e, e == ERR_EMAIL_TAKEN ? "email" : NULL);
		return (KORE_RESULT_OK);
	}
	api_json(req, 201, user);
	return (KORE_RESULT_OK);
}

/* ----- login ----- */

/* On a HASH thread: find the user and verify, or burn the same time. */
static void
login_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*users;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_t			*q;
	bson_error_t		 berr;
	bson_iter_t		 it;
	const char		*email, *pw;

	email = json_string_value(json_object_get(c->in, "email"));
	pw = json_string_value(json_object_get(c->in, "password"));
	users = db_coll(client, DB_USERS);
	q = BCON_NEW("email", BCON_UTF8(email));
	cur = mongoc_collection_find_with_opts(users, q, NULL, NULL);
	c->err = ERR_BAD_CREDENTIALS;
	if (mongoc_cursor_next(cur, &doc)) {
		if (bson_iter_init_find(&it, doc, "password") &&
		    BSON_ITER_HOLDS_UTF8(&it) &&
		    password_verify(bson_iter_utf8(&it, NULL), pw)) {
			c->err = ERR_NONE;
			c->out = user_json(doc);
		}
	} else if (mongoc_cursor_error(cur, &berr)) {
		c->err = db_error(&berr);
	} else {
		password_burn(pw);
	}
	mongoc_cursor_destroy(cur);
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

/* Send the rate-limit check, or answer 400. */
static int
login_start(struct http_request *req, struct ctx *ctx, struct login *l)
{
	const char	*pw, *field;
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
	api_client_ip(req, l->ip, sizeof(l->ip));
	return (call_redis(req, ctx, LOGIN_LIMITS, "EVAL %s 2 %s%s %s%s",
	    limits_lua,
	    RK_RL_EMAIL, l->email, RK_RL_IP, l->ip));
}

/* 429 if either counter is over its limit; else verify on a thread. */
static int
login_limits(struct http_request *req, struct ctx *ctx, struct login *l)
{
	json_t		*r;
	json_int_t	 ne, te, ni, ti, wait;
	char		 retry[24];
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (KORE_RESULT_OK);
	}
	ne = json_integer_value(json_array_get(r, 0));
	te = json_integer_value(json_array_get(r, 1));
	ni = json_integer_value(json_array_get(r, 2));
	ti = json_integer_value(json_array_get(r, 3));
	json_decref(r);
	wait = 0;
	if (ne >= cfg.login_fail_email)
		wait = te;
	if (ni >= cfg.login_fail_ip && ti > wait)
		wait = ti;
	if (ne >= cfg.login_fail_email || ni >= cfg.login_fail_ip) {
		snprintf(retry, sizeof(retry), "%lld",
		    (long long)(wait > 0 ? wait : 1));
		http_response_header(req, "retry-after", retry);
		api_error(req, ERR_RATE_LIMITED, NULL);
		return (KORE_RESULT_OK);
	}
	return (call_offload(req, ctx, LOGIN_VERIFIED, OFFLOAD_HASH, login_run,
	    json_pack("{s:s, s:O}", "email", l->email, "password",
	    json_object_get(ctx->body, "password"))));
}

static void
login_success(struct http_request *req, json_t *user)
{
	const char	*id, *role;
	char		*token;

	id = json_string_value(json_object_get(user, "id"));
	role = json_string_value(json_object_get(user, "role"));
	token = jwt_token_issue(id, role, cfg.jwt_secret, cfg.jwt_ttl,
	    time(NULL));
	if (token == NULL) {
		json_decref(user);
		api_error(req, ERR_INTERNAL, NULL);
		return;
	}
	api_json(req, 200, json_pack("{s:s, s:I, s:o}", "token", token,
	    "expiresIn", (json_int_t)cfg.jwt_ttl, "user", user));
	free(token);
}

/*
 * POST /api/auth/login {email, password}
 *   200 {token, expiresIn, user}; 401 invalid_credentials (unknown email
 *   and wrong password alike); 429 rate_limited with Retry-After
 */
int
auth_login(struct http_request *req, struct ctx *ctx)
{
	struct login	*l;
	enum err	 e;

	l = api_data(ctx, sizeof(*l), login_free);
	switch (ctx->step) {
	case LOGIN_START:
		return (login_start(req, ctx, l));
	case LOGIN_LIMITS:
		return (login_limits(req, ctx, l));
	case LOGIN_VERIFIED:
		if ((e = call_result(ctx, &l->user)) == ERR_NONE) {
			login_success(req, l->user);
			l->user = NULL;
			return (KORE_RESULT_OK);
		}
		if (e != ERR_BAD_CREDENTIALS) {
			api_error(req, e, NULL);
			return (KORE_RESULT_OK);
		}
		return (call_redis(req, ctx, LOGIN_COUNTED,
		    "EVAL %s 2 %s%s %s%s %ld",
		    failed_lua, RK_RL_EMAIL, l->email, RK_RL_IP, l->ip,
		    cfg.login_window));
	default:
		(void)call_result(ctx, NULL);
		api_error(req, ERR_BAD_CREDENTIALS, NULL);
		return (KORE_RESULT_OK);
	}
}

/* ----- me ----- */

static void
me_run(struct call *c, mongoc_client_t *client)
{
	/* A token for a user deleted since: 401. */
	c->err = db_find_by_id(client, DB_USERS, json_string_value(
	    json_object_get(c->in, "id")), user_json, ERR_BAD_TOKEN, &c->out);
}

/* GET /api/auth/me -> 200 {id, email, role, createdAt}; 401 */
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
