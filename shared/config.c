/*
 * config.c -- environment over .env over defaults, validated at start.
 *
 * API: config_load() fills the global cfg once, before any thread or
 * fork; afterwards cfg is read-only, so every process and thread may read
 * it without locks.  To add a variable, add a field to struct config and
 * one row to vars[]: the row carries its default, bounds and the text the
 * README shows.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>
#include <sodium.h>

#include "config.h"

enum kind { K_LONG, K_STR, K_BOOL };

struct var {
	const char	*name;
	enum kind	 kind;
	size_t		 off;		/* offset of the field in cfg */
	size_t		 size;		/* K_STR: size of the buffer */
	const char	*def;		/* default, as text; NULL: empty */
	long		 min;		/* K_LONG bounds, inclusive */
	long		 max;
	const char	*doc;
};

#define L(n, f, d, lo, hi, doc) \
	{ n, K_LONG, offsetof(struct config, f), 0, d, lo, hi, doc }
#define S(n, f, d, doc) \
	{ n, K_STR, offsetof(struct config, f), \
	    sizeof(((struct config *)0)->f), d, 0, 0, doc }
#define B(n, f, d, doc) \
	{ n, K_BOOL, offsetof(struct config, f), 0, d, 0, 1, doc }

static const struct var vars[] = {
	S("APP_ENV", app_env, "development",
	    "development, test or production; only development runs without "
	    "JWT_SECRET"),
	S("BIND_ADDRESS", bind, "127.0.0.1", "address the API listens on"),
	L("PORT", port, "3000", 1, 65535, "API port"),
	L("API_WORKERS", api_workers, "2", 1, 64, "API (kore) processes"),
	L("DB_THREADS", db_threads, "8", 1, 256,
	    "MongoDB threads per API process"),
	L("HASH_THREADS", hash_threads, "1", 1, 64,
	    "password-hashing threads per API process"),
	L("BODY_MAX", body_max, "1048576", 1024, 67108864,
	    "largest request body, bytes (413 above)"),
	B("TRUST_PROXY", trust_proxy, "0",
	    "1: client IP from X-Forwarded-For (set behind the proxy)"),
	S("METRICS_TOKEN", metrics_token, NULL,
	    "if set, /metrics requires Authorization: Bearer <token> (16+ "
	    "characters; required in production)"),
	S("REDIS_URL", redis_url, "redis://127.0.0.1:6379/0",
	    "redis://[[user]:password@]host[:port][/db] (user: an ACL user, "
	    "ops/redis/make-acl.sh)"),
	L("REDIS_TIMEOUT_MS", redis_timeout_ms, "2000", 50, 60000,
	    "a Redis call slower than this answers 503"),
	S("REDIS_SENTINELS", redis_sentinels, NULL,
	    "host:port,... of Redis Sentinels (up to 8); set: the primary "
	    "is the one they name REDIS_MASTER_NAME, not REDIS_URL's host"),
	S("REDIS_MASTER_NAME", redis_master_name, "checkout",
	    "the Sentinels' name of the Redis primary"),
	S("REDIS_SENTINEL_PASSWORD", redis_sentinel_password, NULL,
	    "the Sentinels' requirepass; a primary is used only when a "
	    "majority of REDIS_SENTINELS name it"),
	L("REDIS_MIN_REPLICAS", redis_min_replicas, "-1", -1, 16,
	    "replicas a checkout must reach (WAIT) before it is answered 202 "
	    "and before a worker acks; -1: 1 with REDIS_SENTINELS, else 0"),
	L("REDIS_WAIT_MS", redis_wait_ms, "1000", 10, 60000,
	    "longest WAIT for those replicas; then the submit answers 503"),
	S("MONGO_URI", mongo_uri,
	    "mongodb://127.0.0.1:27017/shop?retryWrites=false",
	    "MongoDB URI; the path names the database (retryWrites=false for "
	    "the embedded SecantusDB: docs/DATABASE.md)"),
	L("MONGO_TIMEOUT_MS", mongo_timeout_ms, "5000", 100, 120000,
	    "MongoDB server-selection and socket timeout"),
	S("JWT_SECRET", jwt_secret, NULL,
	    "HS256 key (32+ characters in production); required unless "
	    "APP_ENV=development"),
	L("JWT_TTL", jwt_ttl, "3600", 60, 2592000, "token lifetime, seconds"),
	L("PASSWORD_MIN", password_min, "8", 8, 128, "shortest password"),
	L("PASSWORD_MAX", password_max, "128", 8, 1024, "longest password"),
	L("LOGIN_FAIL_EMAIL", login_fail_email, "10", 1, 1000000,
	    "failed logins per email per window, then 429"),
	L("LOGIN_FAIL_IP", login_fail_ip, "100", 1, 1000000,
	    "failed logins per client IP per window, then 429"),
	L("LOGIN_WINDOW", login_window, "900", 1, 86400,
	    "rate-limit window, seconds"),
	L("REGISTER_LIMIT_IP", register_limit_ip, "0", 0, 1000000,
	    "registrations per client IP per LOGIN_WINDOW, then 429 (0: no "
	    "limit)"),
	L("HASH_QUEUE_MAX", hash_queue_max, "64", 1, 100000,
	    "password hashes waiting per API process, then 503"),
	S("ADMIN_EMAIL", admin_email, NULL,
	    "first admin, created or promoted by the migration step"),
	S("ADMIN_PASSWORD", admin_password, NULL, "first admin's password"),
	L("PRICE_MAX", price_max, "1000000", 1, 90000000000L,
	    "highest price, whole currency units"),
	L("TITLE_MAX", title_max, "200", 1, 10000, "longest product title"),
	L("CART_MAX_QTY", cart_max_qty, "1000", 1, 1000000,
	    "largest quantity on one cart line"),
	L("CART_MAX_LINES", cart_max_lines, "100", 1, 10000,
	    "most lines in one cart"),
	L("STOCK_MAX", stock_max, "1000000000", 0, 1000000000000L,
	    "largest stock of one product"),
	L("CATALOG_STOCK_LAG_MS", catalog_stock_lag_ms, "1000", 0, 60000,
	    "how long cached listings may show stock from before an order"),
	L("QUEUE_MAX", queue_max, "100000", 1, 100000000,
	    "checkout stream length above which submits answer 503"),
	L("CHECKOUT_WAIT_DEFAULT", checkout_wait_default, "0", 0, 30,
	    "seconds a checkout without Prefer waits (0: answer 202)"),
	L("CHECKOUT_WAIT_MAX", checkout_wait_max, "30", 0, 30,
	    "longest Prefer: wait / ?wait=, seconds"),
	L("CHECKOUT_TTL", checkout_ttl, "604800", 60, 31536000,
	    "seconds a checkout that is not final (or was dead-lettered) is "
	    "kept in Redis"),
	L("CHECKOUT_FINAL_TTL", checkout_final_ttl, "300", 10, 31536000,
	    "seconds a final checkout status is kept in Redis (a completed "
	    "one is then answered from its order)"),
	L("IDEMPOTENCY_TTL", idempotency_ttl, "86400", 60, 31536000,
	    "seconds an Idempotency-Key is remembered"),
	L("SUBMIT_LIMIT", submit_limit, "10", 1, 1000000,
	    "checkout submits per user per SUBMIT_WINDOW (token bucket), "
	    "then 429"),
	L("SUBMIT_WINDOW", submit_window, "10", 1, 86400,
	    "seconds the submit bucket refills over"),
	L("WAITERS_PER_USER", waiters_per_user, "16", 1, 100000,
	    "WebSockets and long polls one user may hold per API process, "
	    "then 429"),
	L("WORKER_CONSUMERS", consumers, "2", 1, 256,
	    "consumer threads per worker process"),
	L("BATCH_MAX", batch_max, "64", 1, 1024,
	    "most checkouts a consumer places in one transaction"),
	L("LOCK_TTL_MS", lock_ttl_ms, "30000", 100, 3600000,
	    "per-user lock lifetime; longer than the slowest job"),
	L("RECLAIM_IDLE_MS", reclaim_idle_ms, "30000", 100, 3600000,
	    "a job pending this long is taken over from its worker"),
	L("MAX_DELIVERIES", max_deliveries, "5", 1, 1000,
	    "deliveries before a job is dead-lettered"),
	L("PAYMENT_WINDOW_S", payment_window_s, "0", 0, 604800,
	    "seconds a new order awaits payment, then it expires and its "
	    "units go back on sale (0: orders start confirmed)"),
	L("WAITLIST_TTL_S", waitlist_ttl_s, "3600", 1, 2592000,
	    "seconds a waitlisted checkout waits for returned units, then "
	    "it fails out_of_stock"),
	L("QUEUE_POSITIONS", queue_positions, "1", 0, 1,
	    "1: a queued checkout's status carries position and etaMs (one "
	    "INCR per submit, one XINFO per API process a second); 0: not"),
	L("SWEEP_INTERVAL_MS", sweep_ms, "1000", 50, 5000,
	    "how often each worker expires unpaid orders, repairs returns "
	    "and serves waitlists"),
	S("SMTP_URL", smtp_url, NULL,
	    "smtp://[user:password@]host[:port] (STARTTLS per SMTP_TLS) or "
	    "smtps://; empty: no order emails (`make run` starts a local "
	    "sink)"),
	S("SMTP_TLS", smtp_tls, "required",
	    "STARTTLS on smtp://: required, optional (when offered) or none"),
	S("MAIL_FROM", mail_from, "orders@localhost",
	    "sender address of order emails"),
	S("WEBHOOK_URLS", webhook_urls, NULL,
	    "comma-separated http(s) URLs that receive order.completed"),
	S("WEBHOOK_SECRET", webhook_secret, NULL,
	    "key of the webhook-signature HMAC (whsec_<base64> or text); "
	    "required with WEBHOOK_URLS"),
	L("NOTIFY_RETRY_FOR", notify_retry_for, "86400", 1, 31536000,
	    "seconds a notification is retried, then parked (shopctl outbox)"),
	L("NOTIFY_BACKOFF_MS", notify_backoff_ms, "1000", 1, 3600000,
	    "first retry delay; doubles per attempt, with jitter"),
	L("NOTIFY_BACKOFF_MAX_MS", notify_backoff_max_ms, "600000", 1,
	    86400000, "longest retry delay"),
	L("NOTIFY_TIMEOUT_MS", notify_timeout_ms, "10000", 100, 600000,
	    "one email or webhook send, connect to answer"),
	L("NOTIFY_KEEP_DONE", notify_keep_done, "604800", 0, 315360000,
	    "seconds a delivered notification is kept in the outbox, then "
	    "removed (0: kept forever)"),
	L("NOTIFY_YIELD_QUEUE", notify_yield_queue, "1000", 0, 100000000,
	    "while more checkout jobs than this wait for workers, the "
	    "notifier pauses (a sale first, mail after; 0: never)"),
	L("NOTIFIER_THREADS", notify_threads, "4", 1, 256,
	    "concurrent sends per notifier process"),
	S("DATA_DIR", data_dir, "./data",
	    "Redis and SecantusDB data, logs and pid files of `make run`"),
	L("WORKERS", workers, "2", 0, 256, "worker processes `make run` starts"),
	L("NOTIFIERS", notifiers, "1", 0, 64,
	    "notifier processes `make run` starts"),
	S("LOG_LEVEL", log_level, "info", "debug, info, warn or error"),
	S("LOG_REQUESTS", log_requests, "sample:100",
	    "request lines the API writes: all, sample:N (one in N) or none; "
	    "errors, slow requests and checkouts are always written"),
	L("LOG_SLOW_MS", log_slow_ms, "250", 1, 600000,
	    "a request slower than this is always logged"),
};

#define NVARS	(sizeof(vars) / sizeof(vars[0]))

struct config	cfg;

static int	without_jwt;	/* config_without_jwt() was called */

void
config_without_jwt(void)
{
	without_jwt = 1;
}

struct dotenv {
	char	*names[256];
	char	*values[256];
	int	 n;
};

static int	dotenv_read(struct dotenv *, char *, size_t);
static void	dotenv_free(struct dotenv *);
static const char	*lookup(const struct dotenv *, const char *);
static int	set_var(const struct var *, const char *, char *, size_t);
static int	check(char *, size_t);
static int	parse_redis_url(char *, size_t);
static int	parse_sentinels(char *, size_t);
static int	parse_log_requests(char *, size_t);
/* The public key of APP_ENV=development, refused everywhere else. */
#define DEV_JWT_SECRET	"development-only-secret-do-not-deploy"

static int	check_secret_values(char *, size_t);
static void	redact(const char *, char *, size_t);
static int	check_secrets(char *, size_t);
static int	check_money(char *, size_t);
static int	parse_mongo_uri(char *, size_t);
static int	check_notify(char *, size_t);

int
config_load(char *err, size_t errlen)
{
	struct dotenv	 env;
	const char	*v;
	size_t		 i;
	int		 ret;

	ret = -1;
	memset(&cfg, 0, sizeof(cfg));
	memset(&env, 0, sizeof(env));
	if (dotenv_read(&env, err, errlen) == -1)
		goto cleanup;

	for (i = 0; i < NVARS; i++) {
		if ((v = getenv(vars[i].name)) == NULL &&
		    (v = lookup(&env, vars[i].name)) == NULL)
			v = vars[i].def != NULL ? vars[i].def : "";
		if (set_var(&vars[i], v, err, errlen) == -1)
			goto cleanup;
	}
	ret = check(err, errlen);

cleanup:
	dotenv_free(&env);
	return (ret);
}

/* Strip blanks and one pair of matching quotes, in place. */
static char *
trim(char *s)
{
	char	*e;
	size_t	 n;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	n = strlen(s);
	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
		s[n - 1] = '\0';
		s++;
	}
	return (s);
}

/*
 * Read KEY=VALUE lines from ENV_FILE or ./.env; a missing default file
 * is not an error, a missing ENV_FILE is.
 */
static int
dotenv_read(struct dotenv *env, char *err, size_t errlen)
{
	FILE		*fp;
	const char	*path;
	char		 line[2048], *p, *eq;

	if ((path = getenv("ENV_FILE")) == NULL)
		path = ".env";
	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && getenv("ENV_FILE") == NULL)
			return (0);
		snprintf(err, errlen, "config: ENV_FILE %s: %s", path,
		    strerror(errno));
		return (-1);
	}
	while (fgets(line, sizeof(line), fp) != NULL && env->n < 256) {
		p = trim(line);
		if (strncmp(p, "export ", 7) == 0)
			p = trim(p + 7);
		if (*p == '#' || (eq = strchr(p, '=')) == NULL)
			continue;
		*eq = '\0';
		env->names[env->n] = strdup(trim(p));
		env->values[env->n] = strdup(trim(eq + 1));
		env->n++;
	}
	fclose(fp);
	return (0);
}

static void
dotenv_free(struct dotenv *env)
{
	int	i;

	for (i = 0; i < env->n; i++) {
		free(env->names[i]);
		free(env->values[i]);
	}
	env->n = 0;
}

static const char *
lookup(const struct dotenv *env, const char *name)
{
	int	i;

	for (i = env->n - 1; i >= 0; i--) {
		if (strcmp(env->names[i], name) == 0)
			return (env->values[i]);
	}
	return (NULL);
}

static int
set_var(const struct var *var, const char *v, char *err, size_t errlen)
{
	char	*field, *end;
	long	 n;

	field = (char *)&cfg + var->off;
	switch (var->kind) {
	case K_STR:
		if (strlen(v) >= var->size) {
			snprintf(err, errlen, "config: %s is longer than %zu "
			    "characters", var->name, var->size - 1);
			return (-1);
		}
		memcpy(field, v, strlen(v) + 1);
		return (0);
	case K_BOOL:
		if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
			n = 1;
		else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
		    *v == '\0')
			n = 0;
		else {
			snprintf(err, errlen, "config: %s must be 0 or 1, "
			    "not \"%s\"", var->name, v);
			return (-1);
		}
		*(int *)(void *)field = (int)n;
		return (0);
	case K_LONG:
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' ||
		    n < var->min || n > var->max) {
			snprintf(err, errlen, "config: %s must be an integer "
			    "from %ld to %ld, not \"%s\"", var->name, var->min,
			    var->max, v);
			return (-1);
		}
		*(long *)(void *)field = n;
		return (0);
	}
	return (-1);
}

/* Cross-field rules and the parsed forms of the URLs. */
static int
check(char *err, size_t errlen)
{
	if (strcmp(cfg.app_env, "development") != 0 &&
	    strcmp(cfg.app_env, "test") != 0 &&
	    strcmp(cfg.app_env, "production") != 0) {
		snprintf(err, errlen, "config: APP_ENV must be development, "
		    "test or production, not \"%s\"", cfg.app_env);
		return (-1);
	}
	cfg.production = strcmp(cfg.app_env, "production") == 0;

	if (cfg.jwt_secret[0] == '\0' && without_jwt) {
		/* Nothing here signs or checks a token. */
	} else if (cfg.jwt_secret[0] == '\0') {
		if (strcmp(cfg.app_env, "development") != 0) {
			snprintf(err, errlen, "config: JWT_SECRET is required "
			    "when APP_ENV=%s (only development has a default)",
			    cfg.app_env);
			return (-1);
		}
		/* Development only; the README says so. */
		snprintf(cfg.jwt_secret, sizeof(cfg.jwt_secret), "%s",
		    DEV_JWT_SECRET);
	}
	if (check_secrets(err, errlen) == -1)
		return (-1);
	if (cfg.password_max < cfg.password_min) {
		snprintf(err, errlen, "config: PASSWORD_MAX is below "
		    "PASSWORD_MIN");
		return (-1);
	}
	if (strcmp(cfg.log_level, "debug") != 0 &&
	    strcmp(cfg.log_level, "info") != 0 &&
	    strcmp(cfg.log_level, "warn") != 0 &&
	    strcmp(cfg.log_level, "error") != 0) {
		snprintf(err, errlen, "config: LOG_LEVEL must be debug, info, "
		    "warn or error, not \"%s\"", cfg.log_level);
		return (-1);
	}
	if (parse_log_requests(err, errlen) == -1 ||
	    check_money(err, errlen) == -1)
		return (-1);
	if ((cfg.admin_email[0] == '\0') != (cfg.admin_password[0] == '\0')) {
		snprintf(err, errlen, "config: ADMIN_EMAIL and ADMIN_PASSWORD "
		    "must be set together");
		return (-1);
	}
	if (parse_redis_url(err, errlen) == -1 ||
	    parse_sentinels(err, errlen) == -1 ||
	    parse_mongo_uri(err, errlen) == -1 ||
	    check_notify(err, errlen) == -1)
		return (-1);
	return (check_secret_values(err, errlen));
}

/*
 * Does s hold a placeholder ("change-me", "CHANGE_ME_...", "changeme":
 * letters compared without case, anything else skipped) or the public
 * development key?
 */
static int
placeholder(const char *s)
{
	char	letters[CONFIG_STR_MAX];
	size_t	n;

	if (strstr(s, DEV_JWT_SECRET) != NULL)
		return (1);
	for (n = 0; *s != '\0' && n < sizeof(letters) - 1; s++)
		if (isalnum((unsigned char)*s))
			letters[n++] = (char)tolower((unsigned char)*s);
	letters[n] = '\0';
	return (strstr(letters, "changeme") != NULL);
}

int
config_webhook_key(unsigned char *key, size_t cap, size_t *len)
{
	const char	*s = cfg.webhook_secret;

	if (strncmp(s, "whsec_", 6) == 0)
		return (sodium_base642bin(key, cap, s + 6, strlen(s + 6), NULL,
		    len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 ? 0 : -1);
	if ((*len = strlen(s)) > cap)
		return (-1);
	memcpy(key, s, *len);
	return (0);
}

/* The bytes of the webhook key; 0 if it does not decode. */
static size_t
webhook_key_len(void)
{
	unsigned char	key[512];
	size_t		len;

	return (config_webhook_key(key, sizeof(key), &len) == 0 ? len : 0);
}

/* A secret too short for anything but development: its rule, or NULL. */
static const char *
too_short(void)
{
	if (strlen(cfg.jwt_secret) < 32 &&
	    !(without_jwt && cfg.jwt_secret[0] == '\0'))
		return ("JWT_SECRET must be at least 32 characters");
	/* The API's file (shopctl reads it too); workers serve no /metrics. */
	if (cfg.production && !without_jwt && cfg.metrics_token[0] == '\0')
		return ("METRICS_TOKEN is required (Prometheus sends it; "
		    "/metrics is not open to all)");
	if (cfg.metrics_token[0] != '\0' && strlen(cfg.metrics_token) < 16)
		return ("METRICS_TOKEN must be at least 16 characters");
	if (cfg.webhook_secret[0] != '\0' && webhook_key_len() < 24)
		return ("WEBHOOK_SECRET must be a key of at least 24 bytes "
		    "(whsec_ and their base64) or 24 characters");
	if (cfg.redis_sentinel_password[0] != '\0' &&
	    strlen(cfg.redis_sentinel_password) < 16)
		return ("REDIS_SENTINEL_PASSWORD must be at least 16 "
		    "characters");
	return (NULL);
}

/*
 * Every environment but development (whose key is public and which
 * listens on loopback only) refuses a secret that is a placeholder, the
 * public development key, or too short: a deployment that forgot one
 * must not start.
 */
static int
check_secret_values(char *err, size_t errlen)
{
	static const char *const	 names[] = { "JWT_SECRET",
	    "METRICS_TOKEN", "ADMIN_PASSWORD", "REDIS_URL", "MONGO_URI",
	    "SMTP_URL", "WEBHOOK_SECRET", "REDIS_SENTINEL_PASSWORD" };
	const char			*values[8], *rule;
	size_t				 i;

	if (strcmp(cfg.app_env, "development") == 0)
		return (0);
	values[0] = cfg.jwt_secret;
	values[1] = cfg.metrics_token;
	values[2] = cfg.admin_password;
	values[3] = cfg.redis_password;
	values[4] = cfg.mongo_uri;
	values[5] = cfg.smtp_url;
	values[6] = cfg.webhook_secret;
	values[7] = cfg.redis_sentinel_password;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (placeholder(values[i])) {
			snprintf(err, errlen, "config: %s holds a placeholder "
			    "or the public development key: set a real secret "
			    "before running with APP_ENV=%s", names[i],
			    cfg.app_env);
			return (-1);
		}
	}
	if ((rule = too_short()) != NULL) {
		snprintf(err, errlen, "config: %s when APP_ENV=%s", rule,
		    cfg.app_env);
		return (-1);
	}
	return (0);
}

/* Does s start with one of the two prefixes? */
static int
scheme(const char *s, const char *a, const char *b)
{
	return (strncmp(s, a, strlen(a)) == 0 || strncmp(s, b, strlen(b)) == 0);
}

/* The notifier's settings: URLs it can use, a secret for webhooks. */
static int
check_notify(char *err, size_t errlen)
{
	char	copy[sizeof(cfg.webhook_urls)], *url, *save;

	if (cfg.smtp_url[0] != '\0' &&
	    !scheme(cfg.smtp_url, "smtp://", "smtps://")) {
		snprintf(err, errlen, "config: SMTP_URL must start with "
		    "smtp:// or smtps://");
		return (-1);
	}
	if (strcmp(cfg.smtp_tls, "required") != 0 &&
	    strcmp(cfg.smtp_tls, "optional") != 0 &&
	    strcmp(cfg.smtp_tls, "none") != 0) {
		snprintf(err, errlen, "config: SMTP_TLS must be required, "
		    "optional or none, not \"%s\"", cfg.smtp_tls);
		return (-1);
	}
	memcpy(copy, cfg.webhook_urls, sizeof(copy));
	for (url = strtok_r(copy, ",", &save); url != NULL;
	    url = strtok_r(NULL, ",", &save)) {
		if (!scheme(url, "http://", "https://")) {
			snprintf(err, errlen, "config: WEBHOOK_URLS: \"%.200s\" "
			    "is not an http:// or https:// URL", url);
			return (-1);
		}
	}
	if (cfg.webhook_urls[0] != '\0' && cfg.webhook_secret[0] == '\0') {
		snprintf(err, errlen, "config: WEBHOOK_SECRET is required "
		    "with WEBHOOK_URLS (receivers check the signature)");
		return (-1);
	}
	return (0);
}

/* A loopback address: 127.0.0.0/8, ::1 or localhost. */
static int
loopback(const char *addr)
{
	return (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	    strcmp(addr, "localhost") == 0);
}

/*
 * The development key is public: development answers on loopback only.
 * Elsewhere a JWT_SECRET is required, and long enough in production.
 */
static int
check_secrets(char *err, size_t errlen)
{
	if (strcmp(cfg.app_env, "development") == 0 && !loopback(cfg.bind)) {
		snprintf(err, errlen, "config: APP_ENV=development listens on "
		    "loopback only (its JWT key is public), not BIND_ADDRESS=%s; "
		    "set APP_ENV=production and a JWT_SECRET to serve others",
		    cfg.bind);
		return (-1);
	}
	return (0);
}

/*
 * The largest order total, price x quantity x lines in cents, must fit a
 * 64-bit integer: a configuration that could overflow it is refused.
 */
static int
check_money(char *err, size_t errlen)
{
	int64_t	t;

	if (__builtin_mul_overflow((int64_t)cfg.price_max, (int64_t)100, &t) ||
	    __builtin_mul_overflow(t, (int64_t)cfg.cart_max_qty, &t) ||
	    __builtin_mul_overflow(t, (int64_t)cfg.cart_max_lines, &t)) {
		snprintf(err, errlen, "config: PRICE_MAX x CART_MAX_QTY x "
		    "CART_MAX_LINES is too large: an order's total in cents "
		    "would not fit 64 bits");
		return (-1);
	}
	return (0);
}

/* LOG_REQUESTS: all, none or sample:N (1 <= N <= 1000000). */
static int
parse_log_requests(char *err, size_t errlen)
{
	char	*end;
	long	 n;

	if (strcmp(cfg.log_requests, "all") == 0) {
		cfg.log_sample = 1;
		return (0);
	}
	if (strcmp(cfg.log_requests, "none") == 0) {
		cfg.log_sample = 0;
		return (0);
	}
	if (strncmp(cfg.log_requests, "sample:", 7) == 0) {
		n = strtol(cfg.log_requests + 7, &end, 10);
		if (end != cfg.log_requests + 7 && *end == '\0' && n >= 1 &&
		    n <= 1000000) {
			cfg.log_sample = n;
			return (0);
		}
	}
	snprintf(err, errlen, "config: LOG_REQUESTS must be all, none or "
	    "sample:N with N from 1 to 1000000, not \"%s\"", cfg.log_requests);
	return (-1);
}

/* REDIS_SENTINELS: host:port,...; REDIS_MIN_REPLICAS' default. */
static int
parse_sentinels(char *err, size_t errlen)
{
	char	 buf[CONFIG_STR_MAX], *p, *next, *colon, *end;
	long	 n;

	snprintf(buf, sizeof(buf), "%s", cfg.redis_sentinels);
	cfg.nsentinels = 0;
	for (p = buf; *p != '\0'; p = next) {
		if ((next = strchr(p, ',')) != NULL)
			*next++ = '\0';
		else
			next = p + strlen(p);
		if ((colon = strrchr(p, ':')) == NULL || colon == p ||
		    (size_t)(colon - p) >= sizeof(cfg.sentinels[0].host) ||
		    cfg.nsentinels == 8)
			goto bad;
		*colon = '\0';
		n = strtol(colon + 1, &end, 10);
		if (*end != '\0' || n < 1 || n > 65535)
			goto bad;
		memcpy(cfg.sentinels[cfg.nsentinels].host, p, strlen(p) + 1);
		cfg.sentinels[cfg.nsentinels++].port = (int)n;
	}
	if (cfg.redis_sentinels[0] != '\0' && cfg.nsentinels == 0)
		goto bad;
	if (cfg.redis_min_replicas == -1)
		cfg.redis_min_replicas = cfg.nsentinels > 0 ? 1 : 0;
	return (0);
bad:
	snprintf(err, errlen, "config: REDIS_SENTINELS must be up to 8 "
	    "host:port separated by commas, not \"%s\"", cfg.redis_sentinels);
	return (-1);
}

/* redis://[[user]:password@]host[:port][/db] */
static int
parse_redis_url(char *err, size_t errlen)
{
	char	 buf[CONFIG_STR_MAX], *p, *at, *colon, *slash, *end;
	long	 n;

	snprintf(buf, sizeof(buf), "%s", cfg.redis_url);
	if (strncmp(buf, "redis://", 8) != 0)
		goto bad;
	p = buf + 8;
	if ((slash = strchr(p, '/')) != NULL)
		*slash++ = '\0';
	cfg.redis_user[0] = '\0';
	if ((at = strrchr(p, '@')) != NULL) {
		*at = '\0';
		colon = strchr(p, ':');
		if (strlen(p) >= sizeof(cfg.redis_password) ||
		    (colon != NULL && (size_t)(colon - p) >=
		    sizeof(cfg.redis_user)))
			goto bad;
		if (colon != NULL) {		/* an ACL user before ':' */
			memcpy(cfg.redis_user, p, (size_t)(colon - p));
			cfg.redis_user[colon - p] = '\0';
		}
		memcpy(cfg.redis_password, colon != NULL ? colon + 1 : p,
		    strlen(colon != NULL ? colon + 1 : p) + 1);
		p = at + 1;
	}
	cfg.redis_port = 6379;
	if ((colon = strrchr(p, ':')) != NULL) {
		*colon = '\0';
		n = strtol(colon + 1, &end, 10);
		if (*end != '\0' || n < 1 || n > 65535)
			goto bad;
		cfg.redis_port = (int)n;
	}
	if (*p == '\0' || strlen(p) >= sizeof(cfg.redis_host))
		goto bad;
	memcpy(cfg.redis_host, p, strlen(p) + 1);
	cfg.redis_db = 0;
	if (slash != NULL && *slash != '\0') {
		n = strtol(slash, &end, 10);
		if (*end != '\0' || n < 0 || n > 1000)
			goto bad;
		cfg.redis_db = (int)n;
	}
	return (0);
bad:
	redact(cfg.redis_url, buf, sizeof(buf));
	snprintf(err, errlen, "config: REDIS_URL must look like "
	    "redis://[[user]:password@]host[:port][/db], not \"%s\"", buf);
	return (-1);
}

static int
parse_mongo_uri(char *err, size_t errlen)
{
	mongoc_uri_t	*uri;
	bson_error_t	 berr;
	const mongoc_host_list_t	*host;
	const char	*db;

	/*
	 * mongoc's counters live in shared memory for a tool nobody runs
	 * here; when /dev/shm has no room (many processes, a CI machine)
	 * mongoc_init() prints a warning line, which would break the
	 * one-line configuration errors.  Counters in plain memory.
	 */
	setenv("MONGOC_DISABLE_SHM", "1", 0);
	mongoc_init();
	/* Quiet: a bad URI is reported below, in one line. */
	mongoc_log_set_handler(NULL, NULL);
	if ((uri = mongoc_uri_new_with_error(cfg.mongo_uri, &berr)) == NULL) {
		snprintf(err, errlen, "config: MONGO_URI is not a valid "
		    "MongoDB URI: %s", berr.message);
		return (-1);
	}
	db = mongoc_uri_get_database(uri);
	snprintf(cfg.mongo_db, sizeof(cfg.mongo_db), "%s",
	    db != NULL && *db != '\0' ? db : "shop");
	if ((host = mongoc_uri_get_hosts(uri)) != NULL) {
		snprintf(cfg.mongo_host, sizeof(cfg.mongo_host), "%s",
		    host->host);
		cfg.mongo_port = host->port;
	}
	mongoc_uri_destroy(uri);
	return (0);
}

void
config_print_table(void)
{
	size_t	i;

	printf("| Variable | Default | Meaning |\n|---|---|---|\n");
	for (i = 0; i < NVARS; i++) {
		printf("| `%s` | %s%s%s | %s |\n", vars[i].name,
		    vars[i].def ? "`" : "", vars[i].def ? vars[i].def : "(unset)",
		    vars[i].def ? "`" : "", vars[i].doc);
	}
}

/* Shell-quote s between single quotes. */
static void
print_quoted(const char *name, const char *s)
{
	printf("%s='", name);
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	}
	printf("'\n");
}

/*
 * url with the password of its "user:password@" part (if any) replaced
 * by "***", into out.
 */
static void
redact(const char *url, char *out, size_t len)
{
	const char	*scheme, *at, *colon;

	snprintf(out, len, "%s", url);
	if ((scheme = strstr(url, "://")) == NULL ||
	    (at = strchr(scheme + 3, '@')) == NULL)
		return;
	colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
	if (colon == NULL || colon + 1 == at)
		return;
	snprintf(out, len, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

void
config_print_env(int secrets)
{
	char	 buf[64], url[CONFIG_STR_MAX + 8];
	size_t	 i;
	char	*field;

	for (i = 0; i < NVARS; i++) {
		if (strstr(vars[i].name, "SECRET") != NULL ||
		    strstr(vars[i].name, "PASSWORD") != NULL ||
		    strstr(vars[i].name, "TOKEN") != NULL)
			continue;
		field = (char *)&cfg + vars[i].off;
		if (!secrets && vars[i].kind == K_STR &&
		    strstr(vars[i].name, "_URL") != NULL) {
			redact(field, url, sizeof(url));
			print_quoted(vars[i].name, url);
			continue;
		}
		if (!secrets && vars[i].kind == K_STR &&
		    strstr(vars[i].name, "_URI") != NULL) {
			redact(field, url, sizeof(url));
			print_quoted(vars[i].name, url);
			continue;
		}
		if (vars[i].kind == K_STR) {
			print_quoted(vars[i].name, field);
			continue;
		}
		if (vars[i].kind == K_LONG)
			snprintf(buf, sizeof(buf), "%ld",
			    *(long *)(void *)field);
		else
			snprintf(buf, sizeof(buf), "%d", *(int *)(void *)field);
		print_quoted(vars[i].name, buf);
	}
	print_quoted("REDIS_HOST", cfg.redis_host);
	printf("REDIS_PORT='%d'\n", cfg.redis_port);
	print_quoted("MONGO_DB", cfg.mongo_db);
	print_quoted("MONGO_HOST", cfg.mongo_host);
	printf("MONGO_PORT='%d'\n", cfg.mongo_port);
}
