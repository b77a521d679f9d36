/*
 * api.h -- the API's handlers: one file per resource, each route a
 * function of the route table (main.c).
 *
 * Who may call what: a handler reads its request and answers through
 * runtime/request.c (every error through api_error and its kin, one
 * writer), checks its caller with api_auth()/api_require_admin()
 * (runtime/tokens.c), and does anything that waits (Redis, MongoDB,
 * password hashing) by starting a call (runtime/await.c) and returning:
 * handlers never block the event loop, and only the backends
 * (runtime/aredis.c, runtime/offload.c and the run functions it calls on
 * its threads) touch Redis and MongoDB.  The runtime never calls a
 * handler.
 */
#ifndef API_API_H
#define API_API_H

#include "runtime/runtime.h"

/* auth.c */
int		auth_register(struct http_request *, struct ctx *);
int		auth_login(struct http_request *, struct ctx *);
int		auth_logout(struct http_request *, struct ctx *);
int		auth_password(struct http_request *, struct ctx *);
int		auth_me(struct http_request *, struct ctx *);

/* users.c */
json_t		*users_json(const bson_t *doc);
int		users_list(struct http_request *, struct ctx *);
int		users_get(struct http_request *, struct ctx *);
int		users_update(struct http_request *, struct ctx *);

/* checkout.c */
int		checkout_submit(struct http_request *, struct ctx *);
int		checkout_status(struct http_request *, struct ctx *);
int		checkout_withdraw(struct http_request *, struct ctx *);
int		checkout_events(struct http_request *, struct ctx *);
void		checkout_init(void);

/* orders.c */
int		orders_list(struct http_request *, struct ctx *);
int		orders_get(struct http_request *, struct ctx *);
int		orders_pay(struct http_request *, struct ctx *);
int		orders_fulfil(struct http_request *, struct ctx *);
int		orders_cancel(struct http_request *, struct ctx *);
int		orders_refund(struct http_request *, struct ctx *);
int		orders_test_pay(struct http_request *, struct ctx *);

/* cache.c: rendered catalogue answers, checked against Redis versions */
struct catalog_version {
	long long	catalog;	/* RK_CATALOG: product writes */
	long long	stock;		/* RK_STOCK: committed orders */
};
const char	*cache_get(const char *key, const struct catalog_version *,
		    size_t *len);
void		cache_put(const char *key, const struct catalog_version *,
		    const char *body, size_t len);
void		cache_flush(void);
void		cache_versions(json_t *reply, struct catalog_version *);
struct call	*cache_fill(struct http_request *, const char *key,
		    const struct catalog_version *, int *leader);
json_t		*cache_product(const char *id,
		    const struct catalog_version *);
void		cache_product_put(const char *id,
		    const struct catalog_version *, json_t *product);

/* products.c */
int		products_list(struct http_request *, struct ctx *);
int		products_get(struct http_request *, struct ctx *);
int		products_write(struct http_request *, struct ctx *);
json_t		*products_json(const bson_t *doc);

/* cart.c */
int		cart_get(struct http_request *, struct ctx *);
int		cart_update(struct http_request *, struct ctx *);

/* admin.c: the ops console's views (admin only) */
int		admin_queue(struct http_request *, struct ctx *);
int		admin_workers(struct http_request *, struct ctx *);
int		admin_history(struct http_request *, struct ctx *);
int		admin_products(struct http_request *, struct ctx *);
int		admin_deadletters(struct http_request *, struct ctx *);
int		admin_deadletter_replay(struct http_request *, struct ctx *);
int		admin_deadletter_drop(struct http_request *, struct ctx *);
int		admin_notifications(struct http_request *, struct ctx *);
int		admin_notification_replay(struct http_request *,
		    struct ctx *);
int		admin_notification_drop(struct http_request *, struct ctx *);

/* web.c: the consoles' pages and their scripts (web/) */
int		web_shop(struct http_request *, struct ctx *);
int		web_admin(struct http_request *, struct ctx *);
int		web_static(struct http_request *, struct ctx *);

/* docs.c */
int		docs_openapi_get(struct http_request *, struct ctx *);
int		docs_page(struct http_request *, struct ctx *);
int		docs_script(struct http_request *, struct ctx *);
int		docs_root(struct http_request *, struct ctx *);

/* health.c */
int		health_get(struct http_request *, struct ctx *);
int		health_ready(struct http_request *, struct ctx *);

#endif
