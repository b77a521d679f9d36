/*
 * metrics.c -- GET /metrics in Prometheus' text format.
 *
 * kore answers from several worker processes, so request counters live
 * in one anonymous shared mapping made by the parent before it forks;
 * every worker adds to it atomically and any worker can read the sum.
 * The queue's length and pending count and the workers' job counters
 * come from Redis when /metrics is asked for.  Without METRICS_TOKEN the
 * endpoint is open (bind it to loopback, or keep it off the proxy);
 * with it, it wants Authorization: Bearer <METRICS_TOKEN>.
 */
#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "runtime.h"
#include "../../shared/config.h"
#include "../../shared/protocol.h"
#include "../../shared/redis.h"

#define MAX_ROUTES	64	/* routes, plus one for "none" */
#define NBUCKETS	13

static const int	codes[] = { 200, 201, 202, 204, 400, 401, 403, 404,
			    405, 409, 413, 415, 422, 429, 500, 503, 0 };
#define NCODES		(sizeof(codes) / sizeof(codes[0]))

static const double	bounds[NBUCKETS] = { 0.001, 0.0025, 0.005, 0.01,
			    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

struct counters {
	uint64_t	requests[MAX_ROUTES][NCODES];	/* by route, status */
	uint64_t	buckets[MAX_ROUTES][NBUCKETS + 1];	/* last: +Inf */
	uint64_t	micros[MAX_ROUTES];		/* latency sum, us */
};

static struct counters	*shared;
static const char	*names[MAX_ROUTES];
static size_t		 nroutes;

/* In the parent, before the fork: the shared counters and route names. */
int
metrics_init(const char *const *route_names, size_t n)
{
	size_t	i;

	if (n + 1 > MAX_ROUTES)
		return (-1);	/* a route would go uncounted: MAX_ROUTES */
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return (-1);
	nroutes = n;
	for (i = 0; i < nroutes; i++)
		names[i] = route_names[i];
	names[nroutes] = "none";
	return (0);
}

/* Count one answered request: route index (n: none), status, seconds. */
void
metrics_record(size_t route, int status, double seconds)
{
	size_t	c, b;

	if (shared == NULL)
		return;
	if (route > nroutes)
		route = nroutes;
	for (c = 0; c < NCODES - 1 && codes[c] != status; c++)
		;
	for (b = 0; b < NBUCKETS && seconds > bounds[b]; b++)
		;
	__atomic_fetch_add(&shared->requests[route][c], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&shared->buckets[route][b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&shared->micros[route],
	    (uint64_t)(seconds * 1e6), __ATOMIC_RELAXED);
}

static uint64_t
load(const uint64_t *p)
{
	return (__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void
requests_text(struct kore_buf *b)
{
	size_t		r, c, k;
	uint64_t	cum;

	kore_buf_appendf(b, "# HELP http_requests_total Requests answered, by "
	    "route and status.\n# TYPE http_requests_total counter\n");
	for (r = 0; r <= nroutes; r++) {
		for (c = 0; c < NCODES; c++) {
			if (load(&shared->requests[r][c]) == 0)
				continue;
			if (codes[c] == 0)
				kore_buf_appendf(b, "http_requests_total{route="
				    "\"%s\",status=\"other\"} %llu\n", names[r],
				    (unsigned long long)load(
				    &shared->requests[r][c]));
			else
				kore_buf_appendf(b, "http_requests_total{route="
				    "\"%s\",status=\"%d\"} %llu\n", names[r],
				    codes[c], (unsigned long long)load(
				    &shared->requests[r][c]));
		}
	}
	kore_buf_appendf(b, "# HELP http_request_duration_seconds Time to "
	    "answer.\n# TYPE http_request_duration_seconds histogram\n");
	for (r = 0; r <= nroutes; r++) {
		if (load(&shared->micros[r]) == 0 &&
		    load(&shared->buckets[r][0]) == 0)
			continue;	/* never asked */
		for (k = 0, cum = 0; k <= NBUCKETS; k++) {
			cum += load(&shared->buckets[r][k]);
			if (k < NBUCKETS)
				kore_buf_appendf(b, "http_request_duration_"
				    "seconds_bucket{route=\"%s\",le=\"%g\"} "
				    "%llu\n", names[r], bounds[k],
				    (unsigned long long)cum);
		}
		kore_buf_appendf(b, "http_request_duration_seconds_bucket{route="
		    "\"%s\",le=\"+Inf\"} %llu\nhttp_request_duration_seconds_"
		    "sum{route=\"%s\"} %.6f\nhttp_request_duration_seconds_"
		    "count{route=\"%s\"} %llu\n", names[r],
		    (unsigned long long)cum, names[r],
		    (double)load(&shared->micros[r]) / 1e6, names[r],
		    (unsigned long long)cum);
	}
}

static void
gauge(struct kore_buf *b, const char *name, const char *help,
    const char *type, json_int_t v)
{
	kore_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help,
	    name, type, name, (long long)v);
}

static json_int_t
stat_of(json_t *pairs, const char *name)
{
	size_t	i;

	for (i = 0; i + 1 < json_array_size(pairs); i += 2) {
		if (strcmp(json_string_value(json_array_get(pairs, i)),
		    name) == 0)
			return (atoll(json_string_value(json_array_get(pairs,
			    i + 1))));
	}
	return (0);
}

/* The workers' batch sizes as a histogram (stats "batch_le_<n>"). */
static void
batches_text(struct kore_buf *b, json_t *st)
{
	static const int	 le[] = { 1, 2, 4, 8, 16, 32, 64, 128 };
	json_int_t		 cum;
	size_t			 i;
	char			 name[32];

	kore_buf_appendf(b, "# HELP checkout_batch_size Checkouts per order "
	    "transaction batch.\n# TYPE checkout_batch_size histogram\n");
	for (i = 0, cum = 0; i < sizeof(le) / sizeof(le[0]); i++) {
		snprintf(name, sizeof(name), "batch_le_%d", le[i]);
		cum += stat_of(st, name);
		kore_buf_appendf(b, "checkout_batch_size_bucket{le=\"%d\"} "
		    "%lld\n", le[i], (long long)cum);
	}
	kore_buf_appendf(b, "checkout_batch_size_bucket{le=\"+Inf\"} %lld\n"
	    "checkout_batch_size_sum %lld\ncheckout_batch_size_count %lld\n",
	    (long long)stat_of(st, "batches"), (long long)stat_of(st,
	    "batched"), (long long)stat_of(st, "batches"));
}

/* The notifier's counters and its outbox gauges (notifier/). */
static void
notify_text(struct kore_buf *b, json_t *st)
{
	kore_buf_appendf(b, "# HELP notify_sent_total Notifications "
	    "delivered.\n# TYPE notify_sent_total counter\n"
	    "notify_sent_total{kind=\"email\"} %lld\n"
	    "notify_sent_total{kind=\"webhook\"} %lld\n",
	    (long long)stat_of(st, "notify_sent_email"),
	    (long long)stat_of(st, "notify_sent_webhook"));
	gauge(b, "notify_failed_total", "Sends that failed (each is retried "
	    "until NOTIFY_RETRY_FOR, then parked).", "counter",
	    stat_of(st, "notify_failed"));
	gauge(b, "notify_pending", "Outbox documents not yet delivered "
	    "(recounted every 5 s).", "gauge", stat_of(st, "notify_pending"));
	gauge(b, "notify_parked", "Outbox documents parked after their "
	    "retries: see shopctl outbox list.", "gauge",
	    stat_of(st, "notify_parked"));
}

static void
queue_text(struct kore_buf *b, json_t *r)
{
	json_t	*st = json_array_get(r, 2);

	gauge(b, "checkout_queue_length", "Entries in the checkout stream "
	    "(waiting or being worked on).", "gauge",
	    json_integer_value(json_array_get(r, 0)));
	gauge(b, "checkout_jobs_pending", "Jobs delivered to a worker and not "
	    "yet acknowledged.", "gauge",
	    json_integer_value(json_array_get(r, 1)));
	gauge(b, "checkout_jobs_completed_total", "Checkouts that became "
	    "orders.", "counter", stat_of(st, "completed"));
	gauge(b, "checkout_jobs_failed_total", "Checkouts that failed (out of "
	    "stock, empty cart, dead-lettered...).", "counter",
	    stat_of(st, "failed"));
	gauge(b, "checkout_jobs_dead_lettered_total", "Jobs delivered too "
	    "often, moved to the dead-letter stream.", "counter",
	    stat_of(st, "dead_lettered"));
	gauge(b, "checkout_lock_contention_total", "Jobs that found their "
	    "user's lock taken.", "counter", stat_of(st, "lock_contention"));
	gauge(b, "checkout_gate_refused_total", "Checkouts the stock gate "
	    "refused without a database operation.", "counter",
	    stat_of(st, "gate_refused"));
	batches_text(b, st);
	notify_text(b, st);
}

/* The bearer token is compared in constant time (but for its length). */
static int
authorized(struct http_request *req)
{
	const char	*h;
	size_t		 n;

	if (cfg.metrics_token[0] == '\0')
		return (1);
	if (!http_request_header(req, "authorization", &h) ||
	    strncmp(h, "Bearer ", 7) != 0)
		return (0);
	n = strlen(cfg.metrics_token);
	return (strlen(h + 7) == n &&
	    sodium_memcmp(h + 7, cfg.metrics_token, n) == 0);
}

/* GET /metrics -> 200 text/plain (Prometheus); 401 with METRICS_TOKEN */
int
metrics_get(struct http_request *req, struct ctx *ctx)
{
	struct kore_buf	 b;
	json_t		*r;

	if (ctx->step == 0) {
		if (!authorized(req)) {
			api_error(req, ERR_UNAUTHENTICATED, NULL);
			return (KORE_RESULT_OK);
		}
		return (call_redis(req, ctx, 1, "FCALL %s 2 %s %s %s",
		    FN_METRICS, RK_STREAM, RK_STATS, RK_GROUP));
	}
	kore_buf_init(&b, 8192);
	requests_text(&b);
	if (call_result(ctx, &r) == ERR_NONE)
		queue_text(&b, r);
	gauge(&b, "redis_up", "1 if this API process reaches Redis.", "gauge",
	    aredis_up());
	json_decref(r);
	http_response_header(req, "content-type",
	    "text/plain; version=0.0.4");
	http_response(req, 200, b.data, b.offset);
	kore_buf_cleanup(&b);
	return (KORE_RESULT_OK);
}
