/*
 * dispatch.c -- the one kore handler every request enters through.
 *
 * api_dispatch() finds the route (in the table main.c gives
 * dispatch_init()) and creates the request context, then answers 404
 * (no route), 405 (wrong method, with Allow) or 413 (body over
 * BODY_MAX) itself, as JSON: kore's own error pages never reach a client
 * for those.  For a route that takes a token it checks the token
 * (tokens.c) before the route runs.  kore refuses bodies above 4 x
 * BODY_MAX before reading them, with a bare 413.  Each answered request
 * is counted (metrics.c) and logged as LOG_REQUESTS says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "runtime.h"
#include "../../shared/config.h"
#include "../../shared/log.h"

#define GET	HTTP_METHOD_GET
#define POST	HTTP_METHOD_POST
#define PUT	HTTP_METHOD_PUT
#define PATCH	HTTP_METHOD_PATCH
#define DELETE	HTTP_METHOD_DELETE

static const struct route	*routes;
static size_t			 nroutes;

/* The route table, and the metrics' shared counters named by route
 * (before the fork); 0, or -1. */
int
dispatch_init(const struct route *table, size_t n)
{
	const char	**names;
	size_t		  i;
	int		  r;

	routes = table;
	nroutes = n;
	if ((names = calloc(n, sizeof(*names))) == NULL)
		return (-1);
	for (i = 0; i < n; i++)
		names[i] = routes[i].name;
	r = metrics_init(names, n);
	free(names);
	return (r);
}

/* ----- routing ----- */

/* Match path against pattern; a ":id" segment is copied to ctx->param. */
static int
match(const char *pattern, const char *path, struct ctx *ctx)
{
	const char	*seg;
	size_t		 n;

	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == ':') {
			seg = path;
			while (*path != '\0' && *path != '/')
				path++;
			n = (size_t)(path - seg);
			if (n == 0 || n >= sizeof(ctx->param))
				return (0);
			memcpy(ctx->param, seg, n);
			ctx->param[n] = '\0';
			while (*pattern != '\0' && *pattern != '/')
				pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return (0);
	}
	return (*pattern == '\0' && *path == '\0');
}

/*
 * The largest body a route takes.  Anyone may post to register and log
 * in, and argon2id follows: their bodies (an email and passwords) are
 * capped small, so that no one has a megabyte of JSON parsed first.
 */
#define SMALL_BODY_MAX	4096

static size_t
body_limit(const struct route *r)
{
	if (r->flags & ROUTE_SMALL_BODY)
		return (SMALL_BODY_MAX);
	return ((size_t)cfg.body_max);
}

/*
 * The route for req's method and path.  NULL with *allowed set to the
 * methods the path takes (0: no such path).
 */
static const struct route *
route_find(struct http_request *req, struct ctx *ctx, int *allowed)
{
	char	 path[512];
	size_t	 i, n;
	int	 method;

	snprintf(path, sizeof(path), "%s", req->path);
	n = strlen(path);
	if (n > 1 && path[n - 1] == '/')
		path[n - 1] = '\0';
	method = req->method == HTTP_METHOD_HEAD ? GET : req->method;
	*allowed = 0;
	for (i = 0; i < nroutes; i++) {
		if (!match(routes[i].pattern, path, ctx))
			continue;
		if (routes[i].methods & method)
			return (&routes[i]);
		*allowed |= routes[i].methods;
	}
	return (NULL);
}

static void
allow_header(struct http_request *req, int methods)
{
	static const int	 m[] = { GET, POST, PUT, PATCH, DELETE };
	char			 buf[64];
	size_t			 i, off;

	buf[0] = '\0';
	for (i = 0, off = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		if (methods & m[i])
			off += (size_t)snprintf(buf + off, sizeof(buf) - off,
			    "%s%s", off > 0 ? ", " : "",
			    http_method_text(m[i]));
	}
	http_response_header(req, "allow", buf);
}

/* ----- the request context ----- */

static void
ctx_free(struct http_request *req)
{
	struct ctx	*ctx = req->hdlr_extra;

	if (ctx == NULL)
		return;
	if (ctx->call != NULL)
		call_release(ctx->call);
	ctx->call = NULL;
	json_decref(ctx->body);
	ctx->body = NULL;
	if (ctx->data != NULL && ctx->data_free != NULL)
		ctx->data_free(ctx->data);
	ctx->data = NULL;
}

/*
 * Take the client's X-Request-Id if it is sane, else make one: a random
 * prefix drawn once per process and a counter, so that ids are unique
 * without a system call per request.
 */
static void
request_id(struct http_request *req, struct ctx *ctx)
{
	static unsigned char	 prefix[6];
	static uint64_t		 seq;
	const char		*h;
	size_t			 n;

	if (http_request_header(req, "x-request-id", &h) &&
	    (n = strlen(h)) > 0 && n < sizeof(ctx->rid) &&
	    strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.:") == n) {
		memcpy(ctx->rid, h, n + 1);
	} else {
		if (seq == 0) {
			randombytes_buf(prefix, sizeof(prefix));
			randombytes_buf(&seq, sizeof(seq));
			seq &= 0xffffffffffULL;
		}
		snprintf(ctx->rid, sizeof(ctx->rid), "%02x%02x%02x%02x%02x%02x"
		    "%012llx", prefix[0], prefix[1], prefix[2], prefix[3],
		    prefix[4], prefix[5], (unsigned long long)(++seq &
		    0xffffffffffffULL));
	}
	http_response_header(req, "x-request-id", ctx->rid);
}

static uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

/*
 * kore reads a body only for POST, PUT and PATCH: the body of any other
 * request stays in the connection and is parsed as the next request.
 * Behind a proxy that keeps upstream connections alive that is request
 * smuggling, so such a request is refused and its connection closed
 * (nothing after it on the connection is read): 404 or 405 as for
 * any request, else 400.
 */
static int
body_smuggled(struct http_request *req)
{
	const char	*h;

	if (req->method & (HTTP_METHOD_POST | HTTP_METHOD_PUT |
	    HTTP_METHOD_PATCH))
		return (0);
	if (http_request_header(req, "transfer-encoding", &h))
		return (1);
	return (http_request_header(req, "content-length", &h) &&
	    strspn(h, "0") != strlen(h));
}

/* Route the request; 0 if a handler should run, -1 if answered here. */
static int
ctx_start(struct http_request *req, struct ctx *ctx)
{
	int	allowed, smuggled;

	ctx->start_us = now_us();
	request_id(req, ctx);
	if ((smuggled = body_smuggled(req)))
		req->owner->flags |= CONN_CLOSE_EMPTY;
	ctx->route = route_find(req, ctx, &allowed);
	if (ctx->route == NULL) {
		if (allowed == 0) {
			api_error(req, ERR_ROUTE_NOT_FOUND, NULL);
		} else {
			allow_header(req, allowed);
			api_error(req, ERR_METHOD_NOT_ALLOWED, NULL);
		}
		return (-1);
	}
	if (smuggled) {
		api_error(req, ERR_BODY_NOT_ALLOWED, NULL);
		return (-1);
	}
	if (req->http_body != NULL &&
	    req->http_body_length > body_limit(ctx->route)) {
		api_error_msg(req, ERR_BODY_TOO_LARGE, NULL, "the request body "
		    "is larger than the limit of %zu bytes for this route",
		    body_limit(ctx->route));
		return (-1);
	}
	return (0);
}

/*
 * Whether to write this request's line: every error, every slow one,
 * every checkout submit; the rest as LOG_REQUESTS says (all, one in N,
 * none), so that a sale's logs stay a few GB a day (README).
 */
static int
request_logged(struct http_request *req, struct ctx *ctx, double ms)
{
	static unsigned long	seen;

	if (req->status >= 400 || ms >= (double)cfg.log_slow_ms)
		return (1);
	if (ctx->route != NULL && (ctx->route->flags & ROUTE_LOG_ALWAYS))
		return (1);
	if (cfg.log_sample == 0)
		return (0);
	return (seen++ % (unsigned long)cfg.log_sample == 0);
}

static void
request_log(struct http_request *req, struct ctx *ctx)
{
	double	ms;

	ms = (double)(now_us() - ctx->start_us) / 1000.0;
	metrics_record(ctx->route != NULL ? (size_t)(ctx->route - routes) :
	    nroutes, req->status, ms / 1000.0);
	if (!log_enabled(LOG_LVL_INFO) || !request_logged(req, ctx, ms))
		return;
	log_request(ctx->rid, http_method_text(req->method), req->path,
	    ctx->route != NULL ? ctx->route->name : "-", req->status, ms,
	    ctx->checkout_id[0] != '\0' ? ctx->checkout_id : NULL,
	    ctx->checkout_id[0] != '\0' ? ctx->who.sub : NULL);
}

int
api_dispatch(struct http_request *req)
{
	struct ctx	*ctx;
	int		 r;

	if (!http_state_exists(req)) {
		ctx = http_state_create(req, sizeof(*ctx), ctx_free);
		if (ctx_start(req, ctx) == -1) {
			request_log(req, ctx);
			return (KORE_RESULT_OK);
		}
	}
	ctx = http_state_get(req);
	if (ctx->call != NULL && !ctx->call->done) {
		http_request_sleep(req);
		return (KORE_RESULT_RETRY);
	}
	/* The token first, for the routes that take one (tokens.c). */
	if (ctx->route->token == TOKEN_HEADER ||
	    ctx->route->token == TOKEN_OR_QUERY) {
		if (tokens_check(req, ctx) == KORE_RESULT_RETRY)
			return (KORE_RESULT_RETRY);
	}
	r = ctx->route->fn(req, ctx);
	if (r == KORE_RESULT_OK)
		request_log(req, ctx);
	return (r);
}
