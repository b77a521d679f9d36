/*
 * tokens.c -- whose request is it, and does their token still stand.
 *
 * A bearer token is first checked alone (shared/jwt.c: HS256, signature,
 * expiry).  Then against Redis: it must not have been logged out
 * (auth:revoked:<signature>), and it must carry its user's current
 * token epoch (auth:epoch:<user>), which moves when the user is
 * disabled, demoted or promoted, or changes password: every token
 * issued before is refused from then on (401 token_revoked).  A user
 * whose epoch Redis does not know (the key expired, or Redis lost it)
 * is read from MongoDB and the epoch written back (epoch_set).
 *
 * A token verified alone is kept per process, whole, with its claims
 * (VERIFIED_SETS sets of four, the least recently used one replaced): a
 * client's next requests with it skip libjwt, whose decoding and HMAC
 * are ~15 µs, a fifth of a checkout submit's API CPU.  Only the very
 * token verified matches an entry (it is compared whole) and its expiry
 * is checked again on every use.
 *
 * The Redis answers are kept per process for TOKEN_CACHE_MS (1 s), by
 * token signature: a revocation takes effect everywhere within that second
 * (docs/ARCHITECTURE.md, section 2), and a client's burst of requests costs one
 * Redis lookup a second, not one per request.  Without Redis and without
 * a cached answer the request is a 503: a token is never trusted
 * unchecked.
 *
 * API: api_dispatch() calls tokens_check() before every route that takes
 * a token (Authorization, or ?access_token= for the WebSocket), until it
 * answers KORE_RESULT_OK; the route then finds ctx->who and the verdict
 * through api_auth().  The submit route checks in its own Redis call
 * instead (shared/lua/protocol.lua's checkout_submit), unless tokens_cached() says
 * the token was found good within the second, and tokens_remember()s it
 * after; tokens_epoch_run() serves it when Redis does not know the
 * epoch.  tokens_forget() drops a cached answer (a logout here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runtime.h"
#include "../../shared/config.h"
#include "../../shared/db.h"
#include "../../shared/protocol.h"
#include "../../shared/redis.h"

#define TOKEN_CACHE_MS	1000
#define CACHE_SLOTS	4096
#define VERIFIED_SETS	2048	/* of VERIFIED_WAYS tokens each */
#define VERIFIED_WAYS	4
#define VERIFIED_MAX	512	/* longer tokens are verified every time */

enum { TOKEN_UNCHECKED, TOKEN_REDIS, TOKEN_DB, TOKEN_CHECKED };

/* A token found good, until `until` (kore_time_ms). */
struct good {
	char		sig[96];	/* "" when empty */
	uint64_t	until;
};

static struct good	good[CACHE_SLOTS];

/*
 * Tokens that jwt_token_verify() found good, and their claims, by their
 * api_hash().  Four per set: with two, the bench's 2,000 buyers' tokens
 * missed ~3% of the time in sets that three of them share (each miss a
 * libjwt decoding), with four and as many entries almost never.
 */
struct verified {
	struct {
		char			token[VERIFIED_MAX];	/* "" if none */
		uint32_t		hash;
		uint64_t		used;	/* verify_clock when last used */
		struct principal	who;
	}	tok[VERIFIED_WAYS];
};

static struct verified	verified[VERIFIED_SETS];
static uint64_t		verify_clock;

/* jwt_token_verify() with the key, once per token and process: its
 * claims are taken from the entry of the same token after that. */
static enum err
verify(const char *token, struct principal *who)
{
	uint32_t	 h = api_hash(token);
	struct verified	*v = &verified[h % VERIFIED_SETS];
	enum err	 e;
	int		 i, old;

	for (i = 0, old = 0; i < VERIFIED_WAYS; i++) {
		if (v->tok[i].used < v->tok[old].used)
			old = i;
		if (v->tok[i].hash != h || v->tok[i].token[0] == '\0' ||
		    strcmp(v->tok[i].token, token) != 0)
			continue;
		v->tok[i].used = ++verify_clock;
		*who = v->tok[i].who;
		return (who->exp <= (long)time(NULL) ? ERR_TOKEN_EXPIRED :
		    ERR_NONE);
	}
	e = jwt_token_verify(token, cfg.jwt_secret, time(NULL), who);
	if (e == ERR_NONE && strlen(token) < VERIFIED_MAX) {
		memcpy(v->tok[old].token, token, strlen(token) + 1);
		v->tok[old].hash = h;
		v->tok[old].used = ++verify_clock;
		v->tok[old].who = *who;
	}
	return (e);
}

static struct good *
slot(const char *sig)
{
	return (&good[api_hash(sig) % CACHE_SLOTS]);
}

/* Was the token with signature sig found good less than 1 s ago? */
int
tokens_cached(const char *sig)
{
	struct good	*g = slot(sig);

	return (strcmp(g->sig, sig) == 0 && g->until > kore_time_ms());
}

/* The token with signature sig was just found good. */
void
tokens_remember(const char *sig)
{
	struct good	*g = slot(sig);

	snprintf(g->sig, sizeof(g->sig), "%s", sig);
	g->until = kore_time_ms() + TOKEN_CACHE_MS;
}

void
tokens_forget(const char *sig)
{
	struct good	*g = slot(sig);

	if (strcmp(g->sig, sig) == 0)
		g->sig[0] = '\0';
}

/* The Authorization header's bearer token into *token (borrowed): 1
 * found, 0 no header, -1 not a bearer token. */
static int
bearer(struct http_request *req, const char **token)
{
	const char	*h;

	if (!http_request_header(req, "authorization", &h))
		return (0);
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return (-1);
	for (h += 7; *h == ' '; h++)
		;
	*token = h;
	return (1);
}

/* The request's token: 1 found, 0 none, -1 malformed. */
static int
token_text(struct http_request *req, struct ctx *ctx, char *buf, size_t len)
{
	const char	*h;
	int		 r;

	if ((r = bearer(req, &h)) != 0) {
		if (r == -1 || strlen(h) >= len)
			return (-1);
		memcpy(buf, h, strlen(h) + 1);
		return (1);
	}
	if (ctx->route->token == TOKEN_OR_QUERY)
		return (api_query(req, "access_token", buf, len));
	return (0);
}

static int
decide(struct ctx *ctx, enum err e)
{
	ctx->auth_err = e;
	ctx->token_state = TOKEN_CHECKED;
	if (e == ERR_NONE)
		tokens_remember(ctx->who.sig);
	return (KORE_RESULT_OK);
}

/* Verify the token alone; then the cache, or ask Redis. */
static int
start(struct http_request *req, struct ctx *ctx)
{
	struct rargs	 a;
	struct call	*c;
	char		 token[4100];
	enum err	 e;
	int		 r;

	if ((r = token_text(req, ctx, token, sizeof(token))) != 1)
		return (decide(ctx, ERR_UNAUTHENTICATED));
	if ((e = verify(token, &ctx->who)) != ERR_NONE)
		return (decide(ctx, e == ERR_TOKEN_EXPIRED ? e : ERR_BAD_TOKEN));
	if (tokens_cached(ctx->who.sig)) {
		/* Not remembered again: the answer ages from its check. */
		ctx->auth_err = ERR_NONE;
		ctx->token_state = TOKEN_CHECKED;
		return (KORE_RESULT_OK);
	}
	rargs_fcall(&a, FN_TOKEN_STATE, 2);
	rargs_addf(&a, "%s%s", RK_EPOCH, ctx->who.sub);
	rargs_addf(&a, "%s%s", RK_REVOKED, ctx->who.sig);
	c = call_new(req, NULL);
	e = aredis_cmdv(c, a.n, a.v, a.len);
	rargs_free(&a);
	ctx->token_state = TOKEN_REDIS;
	return (call_start(req, ctx, c, e));
}

/* On a DB thread: the user's token epoch, or why there is none. */
void
tokens_epoch_run(struct call *c, mongoc_client_t *client)
{
	mongoc_collection_t	*users;
	mongoc_cursor_t		*cur;
	const bson_t		*doc;
	bson_t			*q, *opts;
	bson_error_t		 berr;
	bson_iter_t		 it;
	bson_oid_t		 oid;
	int64_t			 epoch;
	int			 disabled;

	db_oid_parse(json_string_value(json_object_get(c->in, "id")), &oid);
	users = db_coll(client, DB_USERS);
	q = BCON_NEW("_id", BCON_OID(&oid));
	opts = BCON_NEW("projection", "{", "tokenEpoch", BCON_INT32(1),
	    "disabled", BCON_INT32(1), "}");
	cur = mongoc_collection_find_with_opts(users, q, opts, NULL);
	c->err = ERR_BAD_TOKEN;			/* no such user any more */
	if (mongoc_cursor_next(cur, &doc)) {
		epoch = bson_iter_init_find(&it, doc, "tokenEpoch") ?
		    bson_iter_as_int64(&it) : 0;
		disabled = bson_iter_init_find(&it, doc, "disabled") &&
		    bson_iter_as_bool(&it);
		c->err = disabled ? ERR_TOKEN_REVOKED : ERR_NONE;
		c->out = json_integer(epoch);
	} else if (mongoc_cursor_error(cur, &berr)) {
		c->err = db_error(&berr);
	}
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(q);
	mongoc_collection_destroy(users);
}

/* The call that sets a user's epoch (kept a little longer than any token). */
static void
epoch_args(struct rargs *a, const char *user, long long epoch)
{
	rargs_fcall(a, FN_EPOCH_SET, 1);
	rargs_addf(a, "%s%s", RK_EPOCH, user);
	rargs_addf(a, "%lld", epoch);
	rargs_addf(a, "%ld", cfg.jwt_ttl + 60);
}

/* Tell Redis a user's epoch, not waiting for the answer. */
void
tokens_epoch_set(const char *user, long long epoch)
{
	struct rargs	a;

	epoch_args(&a, user, epoch);
	aredis_fire_args(&a);
	rargs_free(&a);
}

/*
 * Tell Redis a user's epoch for req; the handler runs again at next.  A
 * revocation, so durable: on the replicas (WAIT) before the answer, or
 * a failover could bring back the old epoch and the old tokens with it.
 */
int
tokens_epoch_tell(struct http_request *req, struct ctx *ctx, int next,
    const char *user, long long epoch)
{
	struct rargs	a;
	int		r;

	epoch_args(&a, user, epoch);
	r = call_args_durable(req, ctx, next, &a);
	/* Long-polls and sockets of older tokens end now, everywhere. */
	events_announce_revoked(user, NULL, epoch);
	rargs_free(&a);
	return (r);
}

/* Redis answered {epoch or nil, revoked}. */
static int
redis_answer(struct http_request *req, struct ctx *ctx)
{
	struct call	*c;
	json_t		*r;
	enum err	 e;

	if ((e = call_result(ctx, &r)) != ERR_NONE) {
		json_decref(r);
		return (decide(ctx, e));
	}
	if (json_integer_value(json_array_get(r, 1)) == 1) {
		json_decref(r);
		return (decide(ctx, ERR_TOKEN_REVOKED));
	}
	if (json_is_string(json_array_get(r, 0))) {
		e = atoll(json_string_value(json_array_get(r, 0))) ==
		    ctx->who.ver ? ERR_NONE : ERR_TOKEN_REVOKED;
		json_decref(r);
		return (decide(ctx, e));
	}
	json_decref(r);
	c = call_new(req, json_pack("{s:s}", "id", ctx->who.sub));
	ctx->token_state = TOKEN_DB;
	return (call_start(req, ctx, c, offload_submit(OFFLOAD_DB, c,
	    tokens_epoch_run)));
}

/* MongoDB answered with the user's epoch. */
static int
db_answer(struct http_request *req, struct ctx *ctx)
{
	json_t		*r;
	enum err	 e;
	long long	 epoch;

	(void)req;
	e = call_result(ctx, &r);
	epoch = json_integer_value(r);
	json_decref(r);
	if (e != ERR_NONE)
		return (decide(ctx, e));
	tokens_epoch_set(ctx->who.sub, epoch);
	return (decide(ctx, epoch == ctx->who.ver ? ERR_NONE :
	    ERR_TOKEN_REVOKED));
}

/*
 * Check the request's token (see above).  KORE_RESULT_RETRY while
 * waiting for Redis or MongoDB; KORE_RESULT_OK once decided, the verdict
 * in ctx->auth_err.
 */
int
tokens_check(struct http_request *req, struct ctx *ctx)
{
	switch (ctx->token_state) {
	case TOKEN_UNCHECKED:
		return (start(req, ctx));
	case TOKEN_REDIS:
		return (redis_answer(req, ctx));
	case TOKEN_DB:
		return (db_answer(req, ctx));
	default:
		return (KORE_RESULT_OK);
	}
}

/* Has the token been checked (ctx->auth_err holds the verdict)? */
int
tokens_checked(const struct ctx *ctx)
{
	return (ctx->token_state == TOKEN_CHECKED);
}

/*
 * Authenticate and require the admin role.  Returns 1 if the caller is
 * an admin; otherwise answers 401 or 403 and returns 0.
 */
int
api_require_admin(struct http_request *req, struct ctx *ctx)
{
	enum err	e;

	if ((e = api_auth(req, ctx)) != ERR_NONE) {
		api_error(req, e, NULL);
		return (0);
	}
	if (!ctx->who.admin) {
		api_error(req, ERR_ADMIN_ONLY, NULL);
		return (0);
	}
	return (1);
}

/*
 * The caller: ctx->who, once the token is checked (tokens_check(), before
 * the route).  For a TOKEN_IN_SCRIPT route, the token checked alone.
 */
enum err
api_auth(struct http_request *req, struct ctx *ctx)
{
	const char	*h;

	if (tokens_checked(ctx))
		return (ctx->auth_err);
	if (bearer(req, &h) != 1)
		return (ERR_UNAUTHENTICATED);
	return (verify(h, &ctx->who));
}

