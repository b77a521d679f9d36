/*
 * main.c -- the API's kore hooks, its route table and the one handler
 * every request enters through.
 *
 * kore_parent_configure() loads and validates the configuration before
 * any worker forks (a bad value stops the server with one line naming
 * the variable) and applies it to kore: listener, worker count, body and
 * connection limits.  kore_worker_configure() then opens, per worker,
 * the MongoDB pool, the offload threads and the Redis connections.
 *
 * api_dispatch() finds the route and creates the request context, then
 * answers 404 (no route), 405 (wrong method, with Allow) or 413 (body
 * over BODY_MAX) itself, as JSON: kore's own error pages never reach a
 * client for those.  For a route that takes a token it checks the token
 * (tokens.c) before the route runs.  kore refuses bodies above 4 x BODY_MAX before
 * reading them, with a bare 413.
 */
#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <kore/hooks.h>
#include <kore/seccomp.h>
#include <sodium.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"

int	api_dispatch(struct http_request *);

static int	metrics_start(void);

mongoc_client_pool_t	*api_mongo;

#define GET	HTTP_METHOD_GET
#define POST	HTTP_METHOD_POST
#define PUT	HTTP_METHOD_PUT
#define PATCH	HTTP_METHOD_PATCH
#define DELETE	HTTP_METHOD_DELETE

#define T	TOKEN_HEADER

static const struct route routes[] = {
	{ GET, "/", "root", docs_root, TOKEN_NONE },
	{ GET, "/shop", "web_shop", web_shop, TOKEN_NONE },
	{ GET, "/admin", "web_admin", web_admin, TOKEN_NONE },
	{ GET, "/static/:id", "web_static", web_static, TOKEN_NONE },
	{ GET, "/health", "health", health_get, TOKEN_NONE },
	{ GET, "/ready", "ready", health_ready, TOKEN_NONE },
	{ GET, "/metrics", "metrics", metrics_get, TOKEN_NONE },
	{ GET, "/openapi.json", "openapi", docs_openapi_get, TOKEN_NONE },
	{ GET, "/docs", "docs", docs_page, TOKEN_NONE },
	{ GET, "/docs/redoc.standalone.js", "docs_asset", docs_script,
	    TOKEN_NONE },
	{ POST, "/api/auth/register", "auth_register", auth_register,
	    TOKEN_NONE },
	{ POST, "/api/auth/login", "auth_login", auth_login, TOKEN_NONE },
	{ POST, "/api/auth/logout", "auth_logout", auth_logout, T },
	{ POST, "/api/auth/password", "auth_password", auth_password, T },
	{ GET, "/api/auth/me", "auth_me", auth_me, T },
	{ GET, "/api/users", "users_list", users_list, T },
	{ GET, "/api/users/:id", "users_get", users_get, T },
	{ PATCH, "/api/users/:id", "users_update", users_update, T },
	{ GET, "/api/products", "products_list", products_list, TOKEN_NONE },
	{ POST, "/api/products", "products_create", products_write, T },
	{ GET, "/api/products/:id", "products_get", products_get, TOKEN_NONE },
	{ PUT, "/api/products/:id", "products_replace", products_write, T },
	{ PATCH, "/api/products/:id", "products_patch", products_write, T },
	{ DELETE, "/api/products/:id", "products_delete", products_write, T },
	{ GET, "/api/cart/:id", "cart_get", cart_get, T },
	{ POST, "/api/cart/:id", "cart_update", cart_update, T },
	{ POST, "/api/checkout", "checkout_submit", checkout_submit,
	    TOKEN_IN_SCRIPT },
	{ GET, "/api/checkout/:id", "checkout_status", checkout_status, T },
	{ DELETE, "/api/checkout/:id", "checkout_withdraw", checkout_withdraw,
	    T },
	{ GET, "/api/checkout/:id/events", "checkout_events",
	    checkout_events, TOKEN_OR_QUERY },
	{ GET, "/api/admin/queue", "admin_queue", admin_queue, T },
	{ GET, "/api/admin/workers", "admin_workers", admin_workers, T },
	{ GET, "/api/admin/history", "admin_history", admin_history, T },
	{ GET, "/api/admin/products", "admin_products", admin_products, T },
	{ GET, "/api/admin/deadletters", "admin_deadletters",
	    admin_deadletters, T },
	{ POST, "/api/admin/deadletters/:id/replay", "admin_deadletter_replay",
	    admin_deadletter_replay, T },
	{ DELETE, "/api/admin/deadletters/:id", "admin_deadletter_drop",
	    admin_deadletter_drop, T },
	{ GET, "/api/admin/notifications", "admin_notifications",
	    admin_notifications, T },
	{ POST, "/api/admin/notifications/:id/replay",
	    "admin_notification_replay", admin_notification_replay, T },
	{ DELETE, "/api/admin/notifications/:id", "admin_notification_drop",
	    admin_notification_drop, T },
	{ GET, "/api/orders", "orders_list", orders_list, T },
	{ GET, "/api/orders/:id", "orders_get", orders_get, T },
	{ POST, "/api/orders/:id/payment", "orders_pay", orders_pay, T },
	{ POST, "/api/orders/:id/fulfil", "orders_fulfil", orders_fulfil, T },
	{ POST, "/api/orders/:id/cancel", "orders_cancel", orders_cancel, T },
	{ POST, "/api/orders/:id/refund", "orders_refund", orders_refund, T },
	{ POST, "/api/orders/:id/test-payment", "orders_test_pay",
	    orders_test_pay, T },
};

#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

/*
 * System calls the API needs beyond kore's own list: threads and
 * eventfds for the offload pools, sockets for MongoDB and Redis.
 */
KORE_SECCOMP_FILTER("api",
    KORE_SYSCALL_ALLOW(clone),
    KORE_SYSCALL_ALLOW(clone3),
    KORE_SYSCALL_ALLOW(set_robust_list),
    KORE_SYSCALL_ALLOW(rseq),
    KORE_SYSCALL_ALLOW(futex),
    KORE_SYSCALL_ALLOW(eventfd2),
    KORE_SYSCALL_ALLOW(socket),
    KORE_SYSCALL_ALLOW(connect),
    KORE_SYSCALL_ALLOW(getsockopt),
    KORE_SYSCALL_ALLOW(setsockopt),
    KORE_SYSCALL_ALLOW(getsockname),
    KORE_SYSCALL_ALLOW(getpeername),
    KORE_SYSCALL_ALLOW(poll),
    KORE_SYSCALL_ALLOW(ppoll),
    KORE_SYSCALL_ALLOW(sendmsg),
    KORE_SYSCALL_ALLOW(recvmsg),
    KORE_SYSCALL_ALLOW(sendto),
    KORE_SYSCALL_ALLOW(recvfrom),
    KORE_SYSCALL_ALLOW(shutdown),
    KORE_SYSCALL_ALLOW(uname),
    KORE_SYSCALL_ALLOW(newfstatat),
    KORE_SYSCALL_ALLOW(getrandom),
    KORE_SYSCALL_ALLOW(sched_yield),
    KORE_SYSCALL_ALLOW(gettid),
    KORE_SYSCALL_ALLOW(prlimit64),
    KORE_SYSCALL_ALLOW(sysinfo),
    KORE_SYSCALL_ALLOW(madvise),
    KORE_SYSCALL_ALLOW(mremap),
    KORE_SYSCALL_ALLOW(sched_getaffinity),
    KORE_SYSCALL_ALLOW(getrusage),
    KORE_SYSCALL_ALLOW(clock_gettime),
    KORE_SYSCALL_ALLOW(gettimeofday),
);

static void
die(const char *msg)
{
	fprintf(stderr, "api: %s\n", msg);
	exit(1);
}

void
kore_parent_configure(int argc, char **argv)
{
	struct kore_server	*srv;
	struct rlimit		 rl;
	char			 err[512], port[16];

	(void)argc;
	(void)argv;
	/* kore's start-up lines are still buffered: print them once, not
	 * again from every forked worker. */
	fflush(stdout);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (config_load(err, sizeof(err)) == -1)
		die(err);
	log_init("api");
	if (sodium_init() < 0)
		die("libsodium failed to initialise");

	worker_count = (u_int8_t)cfg.api_workers;
	/* kore asks for this many descriptors plus a few of its own. */
	worker_rlimit_nofiles = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max < 65536 + 64)
		worker_rlimit_nofiles = (u_int32_t)rl.rlim_max - 64;
	worker_max_connections = worker_rlimit_nofiles - 256;
	http_request_limit = 40000;
	/* Room for long query strings and tokens; kore drops a connection
	 * whose headers do not fit (ops/nginx refuses them first). */
	http_header_max = 16384;
	http_body_max = (size_t)cfg.body_max * 4;
	http_hsts_enable = 0;	/* TLS and HSTS belong to the proxy */

	if (metrics_start() == -1)
		die("cannot map the shared metrics counters (or more routes "
		    "than api/metrics.c's MAX_ROUTES)");
	if ((srv = kore_server_lookup("api")) == NULL)
		die("the kore configuration has no `server api` block");
	snprintf(port, sizeof(port), "%ld", cfg.port);
	if (!kore_server_bind(srv, cfg.bind, port, NULL)) {
		snprintf(err, sizeof(err), "PORT: cannot listen on %s:%ld "
		    "(in use, or not allowed)", cfg.bind, cfg.port);
		die(err);
	}
	log_info("api: listening", "{s:s, s:i, s:s}", "bind", cfg.bind,
	    "port", (int)cfg.port, "env", cfg.app_env);
}

static void
flush_logs(void *arg, uint64_t now)
{
	(void)arg;
	(void)now;
	log_flush();
}

void
kore_worker_configure(void)
{
	char	err[512];

	log_init("api");
	log_buffered(1);
	kore_timer_add(flush_logs, 100, NULL, 0);
	api_mongo = db_pool_new("checkout-api",
	    (int)(cfg.db_threads + cfg.hash_threads + 2), err, sizeof(err));
	if (api_mongo == NULL)
		die(err);
	if (offload_init(api_mongo, err, sizeof(err)) == -1)
		die(err);
	aredis_on_connect(cache_flush);
	aredis_init();
	checkout_init();
}

/* The metrics' shared counters, named by route (before the fork). */
static int
metrics_start(void)
{
	const char	*names[NROUTES];
	size_t		 i;

	for (i = 0; i < NROUTES; i++)
		names[i] = routes[i].name;
	return (metrics_init(names, NROUTES));
}

/*
 * The worker is stopping: join our threads and close the MongoDB pool
 * (and its monitoring thread) before kore unloads the module.
 */
void
kore_worker_teardown(void)
{
	log_flush();
	offload_shutdown();
	if (api_mongo != NULL)
		mongoc_client_pool_destroy(api_mongo);
	api_mongo = NULL;
	log_flush();
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
#define AUTH_BODY_MAX	4096

static size_t
body_limit(const struct route *r)
{
	if (r->fn == auth_login || r->fn == auth_register ||
	    r->fn == auth_password)
		return (AUTH_BODY_MAX);
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
	for (i = 0; i < NROUTES; i++) {
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
	if (ctx->route != NULL && ctx->route->fn == checkout_submit)
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
	    NROUTES, req->status, ms / 1000.0);
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
