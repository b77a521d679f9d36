/*
 * await.c -- how a handler waits: it starts a call on a backend (a DB
 * thread through offload.c, a Redis command through aredis.c), returns
 * KORE_RESULT_RETRY, and is run again at the step it named once the call
 * completes; call_result() then hands it the outcome.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "runtime.h"
#include "../../shared/redis.h"

/*
 * Make c the call ctx waits on, given e, what starting it returned.  On
 * success req sleeps until c completes; on failure c is done at once
 * with e and the handler runs again on the next pass of the loop.
 * Either way the handler returns what this returns.
 */
int
call_start(struct http_request *req, struct ctx *ctx, struct call *c,
    enum err e)
{
	ctx->call = c;
	if (e != ERR_NONE) {
		c->err = e;
		c->done = 1;
		return (KORE_RESULT_RETRY);
	}
	http_request_sleep(req);
	return (KORE_RESULT_RETRY);
}

/* The completed call ctx waited on; the caller must call_release() it. */
struct call *
call_take(struct ctx *ctx)
{
	struct call	*c;

	c = ctx->call;
	ctx->call = NULL;
	return (c);
}

/*
 * Run fn on an offload pool with input in (stolen); the handler runs
 * again at step next when it is done.
 */
int
call_offload(struct http_request *req, struct ctx *ctx, int next,
    enum offload_pool pool, void (*run)(struct call *, mongoc_client_t *),
    json_t *in)
{
	struct call	*c;

	c = call_new(req, in);
	ctx->step = next;
	return (call_start(req, ctx, c, offload_submit(pool, c, run)));
}

/* Send a Redis command for req; the handler runs again at step next. */
int
call_redis(struct http_request *req, struct ctx *ctx, int next,
    const char *fmt, ...)
{
	struct call	*c;
	va_list		 ap;
	enum err	 e;

	c = call_new(req, NULL);
	ctx->step = next;
	va_start(ap, fmt);
	e = aredis_vcmd(c, fmt, ap);
	va_end(ap);
	return (call_start(req, ctx, c, e));
}

/* Send the command in a for req through send (aredis_cmdv or its kin). */
static int
send_args(struct http_request *req, struct ctx *ctx, int next,
    const struct rargs *a, enum err (*send)(struct call *, int,
    const char **, const size_t *))
{
	struct call	*c;

	c = call_new(req, NULL);
	ctx->step = next;
	return (call_start(req, ctx, c, send(c, a->n, a->v, a->len)));
}

/* Send the command in a (a Redis function call, say) for req. */
int
call_args(struct http_request *req, struct ctx *ctx, int next,
    const struct rargs *a)
{
	return (send_args(req, ctx, next, a, aredis_cmdv));
}

/* call_args() for a write that must reach the replicas first. */
int
call_args_durable(struct http_request *req, struct ctx *ctx, int next,
    const struct rargs *a)
{
	return (send_args(req, ctx, next, a, aredis_cmdv_durable));
}

/*
 * Collect the completed call: returns its error and, if out is not NULL,
 * hands over its result (new; NULL if none).  The call is released.
 */
enum err
call_result(struct ctx *ctx, json_t **out)
{
	struct call	*c;
	enum err	 e;

	c = call_take(ctx);
	e = c->err;
	if (out != NULL) {
		*out = c->out;
		c->out = NULL;
	}
	call_release(c);
	return (e);
}
