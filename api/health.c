/*
 * health.c -- GET /health (the process answers) and GET /ready (Redis
 * and MongoDB both answer).  Neither needs a token.
 *
 * /ready pings Redis, then MongoDB on a DB thread, and answers 200
 * {"status": "ready", "checks": {...}} or 503 with the standard error
 * naming what is down and the same "checks" object.
 */
#include "api.h"
#include "../shared/db.h"

enum { READY_START, READY_REDIS, READY_MONGO };

struct ready {
	int	redis_ok;
	int	mongo_ok;
};

/* GET /health -> 200 {"status": "ok"} */
int
health_get(struct http_request *req, struct ctx *ctx)
{
	(void)ctx;
	api_json(req, 200, json_pack("{s:s}", "status", "ok"));
	return (KORE_RESULT_OK);
}

static void
mongo_ping(struct call *c, mongoc_client_t *client)
{
	bson_t		cmd, reply;
	bson_error_t	berr;

	bson_init(&cmd);
	BSON_APPEND_INT32(&cmd, "ping", 1);
	if (!mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply,
	    &berr))
		c->err = db_error(&berr);
	bson_destroy(&cmd);
	bson_destroy(&reply);
}

static void
ready_reply(struct http_request *req, const struct ready *r)
{
	json_t		*checks;
	enum err	 e;

	checks = json_pack("{s:s, s:s}", "redis", r->redis_ok ? "ok" : "down",
	    "mongo", r->mongo_ok ? "ok" : "down");
	if (r->redis_ok && r->mongo_ok) {
		api_json(req, 200, json_pack("{s:s, s:o}", "status", "ready",
		    "checks", checks));
		return;
	}
	e = r->redis_ok ? ERR_MONGO_DOWN : ERR_REDIS_DOWN;
	api_error_with(req, e, !r->redis_ok && !r->mongo_ok ?
	    "Redis and MongoDB are unavailable" : NULL, json_pack("{s:s, s:o}",
	    "status", "not_ready", "checks", checks));
}

/* GET /ready -> 200, or 503 naming the dependency that is down */
int
health_ready(struct http_request *req, struct ctx *ctx)
{
	struct ready	*r;

	r = api_data(ctx, sizeof(*r), NULL);
	switch (ctx->step) {
	case READY_START:
		return (call_redis(req, ctx, READY_REDIS, "PING"));
	case READY_REDIS:
		r->redis_ok = call_result(ctx, NULL) == ERR_NONE;
		return (call_offload(req, ctx, READY_MONGO, OFFLOAD_DB,
		    mongo_ping, NULL));
	default:
		r->mongo_ok = call_result(ctx, NULL) == ERR_NONE;
		ready_reply(req, r);
		return (KORE_RESULT_OK);
	}
}
