/*
 * config.h -- the process configuration, read once at start.
 *
 * Every variable comes from the environment, else from a .env file
 * (ENV_FILE, default ./.env), else from its default, and is validated
 * before anything else starts.  The table in config.c is the single
 * list of variables; `shopctl config` prints it for the README.
 */
#ifndef SHARED_CONFIG_H
#define SHARED_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_STR_MAX	1024

struct config {
	char	app_env[32];		/* development | test | production */
	int	production;		/* app_env is "production" */

	/* API */
	char	bind[64];		/* address the API listens on */
	long	port;			/* API TCP port */
	long	api_workers;		/* kore worker processes */
	long	db_threads;		/* DB threads per API process */
	long	hash_threads;		/* argon2id threads per API process */
	long	body_max;		/* request body limit, bytes */
	int	trust_proxy;		/* take client IP from X-Forwarded-For */
	char	metrics_token[256];	/* if set, /metrics wants this bearer */

	/* Dependencies */
	char	redis_url[CONFIG_STR_MAX];
	char	redis_host[256];	/* parsed from redis_url */
	int	redis_port;
	int	redis_db;
	char	redis_user[128];	/* an ACL user ("": default) */
	char	redis_password[256];
	long	redis_timeout_ms;	/* a Redis call slower than this: 503 */
	char	redis_sentinels[CONFIG_STR_MAX];	/* host:port,... */
	char	redis_master_name[128];	/* the Sentinels' name of it */
	char	redis_sentinel_password[256];	/* AUTH to the Sentinels */
	long	redis_min_replicas;	/* WAIT for this many (-1: auto) */
	long	redis_wait_ms;		/* WAIT's timeout */
	int	nsentinels;		/* parsed from redis_sentinels */
	struct {
		char	host[256];
		int	port;
	}	sentinels[8];
	char	mongo_uri[CONFIG_STR_MAX];
	char	mongo_db[128];		/* database name from the URI path */
	char	mongo_host[256];	/* first host of the URI */
	int	mongo_port;
	long	mongo_timeout_ms;	/* server selection and socket timeout */

	/* Auth */
	char	jwt_secret[512];
	long	jwt_ttl;		/* seconds */
	long	password_min;
	long	password_max;
	long	login_fail_email;	/* failures per email per window */
	long	login_fail_ip;		/* failures per client IP per window */
	long	login_window;		/* seconds */
	long	register_limit_ip;	/* registrations per IP per window */
	long	hash_queue_max;		/* password hashes waiting, then 503 */
	char	admin_email[256];
	char	admin_password[256];

	/* Catalogue and carts */
	long	price_max;		/* whole currency units */
	long	title_max;
	long	cart_max_qty;
	long	cart_max_lines;
	long	stock_max;		/* largest stock a product may hold */
	long	catalog_stock_lag_ms;	/* listing stock may trail orders */

	/* Checkout */
	long	queue_max;		/* stream length that answers 503 */
	long	checkout_wait_default;	/* seconds; 0 = answer 202 */
	long	checkout_wait_max;	/* seconds */
	long	checkout_ttl;		/* seconds a live status is kept */
	long	checkout_final_ttl;	/* seconds a final one is kept */
	long	idempotency_ttl;	/* seconds */
	long	submit_limit;		/* checkout submits per user ... */
	long	submit_window;		/* ... per this many seconds */
	long	waiters_per_user;	/* WebSockets + long polls per user */
	long	consumers;		/* consumer threads per worker process */
	long	batch_max;		/* checkouts per order transaction */
	long	lock_ttl_ms;		/* per-user lock lifetime */
	long	reclaim_idle_ms;	/* pending this long: reclaimed */
	long	max_deliveries;		/* then dead-lettered */

	/* After the sale (docs/ARCHITECTURE.md, "Order lifecycle") */
	long	payment_window_s;	/* 0: orders start confirmed */
	long	waitlist_ttl_s;		/* a waitlisted checkout then fails */
	long	sweep_ms;		/* the worker's sweeper runs this often */
	long	queue_positions;	/* 1: queued checkouts show their place */

	/* Notifications (the notifier) */
	char	smtp_url[CONFIG_STR_MAX];	/* empty: no email */
	char	smtp_tls[16];		/* required | optional | none */
	char	mail_from[256];
	char	webhook_urls[4096];	/* comma-separated; empty: none */
	char	webhook_secret[512];
	long	notify_retry_for;	/* seconds of retries, then parked */
	long	notify_backoff_ms;	/* first retry delay */
	long	notify_backoff_max_ms;	/* longest retry delay */
	long	notify_timeout_ms;	/* one send */
	long	notify_threads;		/* senders per notifier process */

	/* Processes and files */
	char	data_dir[CONFIG_STR_MAX];
	long	workers;		/* worker processes started by run */
	long	notifiers;		/* notifier processes started by run */
	long	notify_yield_queue;	/* checkout stream deeper: wait */
	long	notify_keep_done;	/* seconds; 0: forever */
	char	log_level[16];		/* debug | info | warn | error */
	char	log_requests[32];	/* all | sample:N | none */
	long	log_sample;		/* parsed: 1 all, N one in N, 0 none */
	long	log_slow_ms;		/* requests slower than this: logged */
};

extern struct config	cfg;

/*
 * Load cfg from the environment, .env and defaults, then validate it.
 * Returns 0, or -1 with a one-line message naming the variable in err.
 */
int	config_load(char *err, size_t errlen);

/*
 * For processes that sign and check no tokens (the worker): call before
 * config_load(), and a missing JWT_SECRET is not an error, whatever
 * APP_ENV says.
 */
void	config_without_jwt(void);

/* Print every variable with its default and meaning, as a Markdown table. */
void	config_print_table(void);

/*
 * Print the resolved settings as shell assignments, secrets left out and
 * the passwords in REDIS_URL and MONGO_URI shown as *** (unless secrets:
 * for scripts that eval the lines, never for a terminal).
 */
void	config_print_env(int secrets);

/*
 * The webhook signing key: WEBHOOK_SECRET's bytes after "whsec_",
 * base64-decoded (Standard Webhooks), or its text.  0, or -1 if it does
 * not decode or is longer than cap.
 */
int	config_webhook_key(unsigned char *key, size_t cap, size_t *len);

#endif
