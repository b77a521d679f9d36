/*
 * main.c -- the API's kore hooks and its route table.
 *
 * kore_parent_configure() loads and validates the configuration before
 * any worker forks (a bad value stops the server with one line naming
 * the variable) and applies it to kore: listener, worker count, body and
 * connection limits.  kore_worker_configure() then opens, per worker,
 * the MongoDB pool, the offload threads and the Redis connections.
 *
 * Every request enters through api_dispatch() (runtime/dispatch.c), which
 * routes it with this table.
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

static mongoc_client_pool_t	*api_mongo;

#define GET	HTTP_METHOD_GET
#define POST	HTTP_METHOD_POST
#define PUT	HTTP_METHOD_PUT
#define PATCH	HTTP_METHOD_PATCH
#define DELETE	HTTP_METHOD_DELETE

#define T	TOKEN_HEADER

static const struct route routes[] = {
	{ GET, "/", "root", docs_root, TOKEN_NONE, 0 },
	{ GET, "/shop", "web_shop", web_shop, TOKEN_NONE, 0 },
	{ GET, "/admin", "web_admin", web_admin, TOKEN_NONE, 0 },
	{ GET, "/static/:id", "web_static", web_static, TOKEN_NONE, 0 },
	{ GET, "/health", "health", health_get, TOKEN_NONE, 0 },
	{ GET, "/ready", "ready", health_ready, TOKEN_NONE, 0 },
	{ GET, "/metrics", "metrics", metrics_get, TOKEN_NONE, 0 },
	{ GET, "/openapi.json", "openapi", docs_openapi_get, TOKEN_NONE, 0 },
	{ GET, "/docs", "docs", docs_page, TOKEN_NONE, 0 },
	{ GET, "/docs/redoc.standalone.js", "docs_asset", docs_script,
	    TOKEN_NONE, 0 },
	{ POST, "/api/auth/register", "auth_register", auth_register,
	    TOKEN_NONE, ROUTE_SMALL_BODY },
	{ POST, "/api/auth/login", "auth_login", auth_login, TOKEN_NONE,
	    ROUTE_SMALL_BODY },
	{ POST, "/api/auth/logout", "auth_logout", auth_logout, T, 0 },
	{ POST, "/api/auth/password", "auth_password", auth_password, T,
	    ROUTE_SMALL_BODY },
	{ GET, "/api/auth/me", "auth_me", auth_me, T, 0 },
	{ GET, "/api/users", "users_list", users_list, T, 0 },
	{ GET, "/api/users/:id", "users_get", users_get, T, 0 },
	{ PATCH, "/api/users/:id", "users_update", users_update, T, 0 },
	{ GET, "/api/products", "products_list", products_list, TOKEN_NONE, 0 },
	{ POST, "/api/products", "products_create", products_write, T, 0 },
	{ GET, "/api/products/:id", "products_get", products_get,
	    TOKEN_NONE, 0 },
	{ PUT, "/api/products/:id", "products_replace", products_write, T, 0 },
	{ PATCH, "/api/products/:id", "products_patch", products_write, T, 0 },
	{ DELETE, "/api/products/:id", "products_delete", products_write,
	    T, 0 },
	{ GET, "/api/cart/:id", "cart_get", cart_get, T, 0 },
	{ POST, "/api/cart/:id", "cart_update", cart_update, T, 0 },
	{ POST, "/api/checkout", "checkout_submit", checkout_submit,
	    TOKEN_IN_SCRIPT, ROUTE_LOG_ALWAYS },
	{ GET, "/api/checkout/:id", "checkout_status", checkout_status, T, 0 },
	{ DELETE, "/api/checkout/:id", "checkout_withdraw", checkout_withdraw,
	    T, 0 },
	{ GET, "/api/checkout/:id/events", "checkout_events",
	    checkout_events, TOKEN_OR_QUERY, 0 },
	{ GET, "/api/admin/queue", "admin_queue", admin_queue, T, 0 },
	{ GET, "/api/admin/workers", "admin_workers", admin_workers, T, 0 },
	{ GET, "/api/admin/history", "admin_history", admin_history, T, 0 },
	{ GET, "/api/admin/products", "admin_products", admin_products, T, 0 },
	{ GET, "/api/admin/deadletters", "admin_deadletters",
	    admin_deadletters, T, 0 },
	{ POST, "/api/admin/deadletters/:id/replay", "admin_deadletter_replay",
	    admin_deadletter_replay, T, 0 },
	{ DELETE, "/api/admin/deadletters/:id", "admin_deadletter_drop",
	    admin_deadletter_drop, T, 0 },
	{ GET, "/api/admin/notifications", "admin_notifications",
	    admin_notifications, T, 0 },
	{ POST, "/api/admin/notifications/:id/replay",
	    "admin_notification_replay", admin_notification_replay, T, 0 },
	{ DELETE, "/api/admin/notifications/:id", "admin_notification_drop",
	    admin_notification_drop, T, 0 },
	{ GET, "/api/orders", "orders_list", orders_list, T, 0 },
	{ GET, "/api/orders/:id", "orders_get", orders_get, T, 0 },
	{ POST, "/api/orders/:id/payment", "orders_pay", orders_pay, T, 0 },
	{ POST, "/api/orders/:id/fulfil", "orders_fulfil", orders_fulfil,
	    T, 0 },
	{ POST, "/api/orders/:id/cancel", "orders_cancel", orders_cancel,
	    T, 0 },
	{ POST, "/api/orders/:id/refund", "orders_refund", orders_refund,
	    T, 0 },
	{ POST, "/api/orders/:id/test-payment", "orders_test_pay",
	    orders_test_pay, T, 0 },
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

	if (dispatch_init(routes, NROUTES) == -1)
		die("cannot map the shared metrics counters (or more routes "
		    "than api/runtime/metrics.c's MAX_ROUTES)");
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
