/*
 * events.c -- checkout status changes, from Redis pub/sub to the requests
 * and WebSocket clients waiting for them.
 *
 * Workers PUBLISH each new status body on RK_EVENTS (a batch's in one
 * message, a line each).  Every API process subscribes once and hands
 * each body to the waiters registered for that checkout id; nothing here
 * polls.  A waiter remembers the newest body it has seen (by rank:
 * queued < processing < waitlisted < final) and is woken once that rank
 * reaches the one it waits for, or at its deadline.  Register before
 * reading the current status, so that no change between the read and
 * the wait is missed.
 *
 * When the subscription comes back after Redis was away, every HTTP
 * waiter is woken without a body (events may have been missed: the
 * handler reads the status again), and every WebSocket client gets the
 * status re-read and sent.
 *
 * API: events_wait() returns a call (busy: held here) for an HTTP
 * request; events_set_wake() sets the rank to wake at; call_release()
 * of the call takes the waiter out.  events_watch() and events_unwatch()
 * do the same for a WebSocket connection.  Waiters are found by checkout
 * id and WebSocket watchers also by connection, in hash tables, so that
 * neither a message nor a close scans everyone (a flash sale closes tens
 * of thousands of sockets).  Ranks come from shared/protocol.c.
 *
 * A long-poll and a WebSocket are bound to the token that opened them:
 * a revocation (a logout, a new token epoch: events_announce_revoked(),
 * published on the same channel so every API process hears it) ends the
 * long-poll with 401 token_revoked and closes the socket after saying
 * so.  Revocations are rare; each one looks at every waiter.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "../../shared/config.h"
#include "../../shared/log.h"
#include "../../shared/protocol.h"
#include "../../shared/redis.h"

#define BUCKETS		4096
#define EXPIRE_MS	100

struct waiter {
	char			 id[25];	/* checkout id */
	char			 user[25];	/* whose: counted in users[] */
	char			 sig[96];	/* its token's ("": not bound) */
	long			 ver;		/* its token's epoch */
	int			 wake_rank;	/* wake at this rank or above */
	int			 seen_rank;	/* rank of the newest body seen */
	uint64_t		 deadline;	/* kore_time_ms(); 0: none */
	struct call		*call;		/* an HTTP request's, or NULL */
	struct connection	*ws;		/* a WebSocket client, or NULL */
	long long		 seq;		/* ws, queued: its place (queue.c) */
	long long		 position;	/* ws, queued: the last one sent */
	char			*queued;	/* ws, queued: its body (owned) */
	TAILQ_ENTRY(waiter)	 bucket;	/* by checkout id */
	TAILQ_ENTRY(waiter)	 byconn;	/* by connection (ws only) */
	TAILQ_ENTRY(waiter)	 all;
};

TAILQ_HEAD(waiterq, waiter);

/* How many waiters a user holds in this process (WAITERS_PER_USER). */
struct holder {
	char			 user[25];
	int			 n;
	TAILQ_ENTRY(holder)	 list;
};

TAILQ_HEAD(holderq, holder);

static struct holderq	holders[BUCKETS];

static struct waiterq	buckets[BUCKETS];
static struct waiterq	conns[BUCKETS];
static struct waiterq	requests = TAILQ_HEAD_INITIALIZER(requests);	/* HTTP */
static struct waiterq	sockets = TAILQ_HEAD_INITIALIZER(sockets);	/* ws */
static void		(*ws_send)(struct connection *, const char *, size_t,
			    int final);
static void		(*ws_refresh)(struct connection *, const char *id);

static struct waiterq *
bucket_of(const char *id)
{
	return (&buckets[api_hash(id) % BUCKETS]);
}

static struct waiterq *
conn_bucket(const struct connection *c)
{
	return (&conns[((uintptr_t)c >> 4) % BUCKETS]);
}

static void	detach(struct call *);

static struct holder *
holder_of(const char *user, int create)
{
	struct holderq	*q;
	struct holder	*h;

	q = &holders[api_hash(user) % BUCKETS];
	TAILQ_FOREACH(h, q, list) {
		if (strcmp(h->user, user) == 0)
			return (h);
	}
	if (!create)
		return (NULL);
	if ((h = calloc(1, sizeof(*h))) == NULL)
		fatal("events: out of memory");
	snprintf(h->user, sizeof(h->user), "%s", user);
	TAILQ_INSERT_TAIL(q, h, list);
	return (h);
}

/* Count a waiter for user: 0, or -1 if the user holds too many. */
static int
hold(const char *user)
{
	struct holder	*h;

	h = holder_of(user, 1);
	if (h->n >= cfg.waiters_per_user)
		return (-1);
	h->n++;
	return (0);
}

static void
unhold(const char *user)
{
	struct holder	*h;

	if ((h = holder_of(user, 0)) == NULL)
		return;
	if (--h->n <= 0) {
		TAILQ_REMOVE(&holders[api_hash(user) % BUCKETS], h, list);
		free(h);
	}
}

static void
remove_waiter(struct waiter *w)
{
	unhold(w->user);
	free(w->queued);
	w->queued = NULL;
	TAILQ_REMOVE(bucket_of(w->id), w, bucket);
	if (w->ws != NULL) {
		TAILQ_REMOVE(conn_bucket(w->ws), w, byconn);
		TAILQ_REMOVE(&sockets, w, all);
	} else {
		TAILQ_REMOVE(&requests, w, all);
	}
}

/* Take w out and wake its request with what it has seen. */
static void
wake(struct waiter *w)
{
	struct call	*c = w->call;

	remove_waiter(w);
	c->arg = NULL;
	free(w);
	call_finish(c);
}

static void
deliver(struct waiter *w, json_t *body, const char *text, size_t len,
    int rank)
{
	struct connection	*ws;

	if (rank <= w->seen_rank)
		return;		/* older than what it has, or the same */
	w->seen_rank = rank;
	free(w->queued);	/* no longer queued: no more positions */
	w->queued = NULL;
	if (w->ws != NULL) {
		ws = w->ws;
		if (rank == RANK_FINAL) {	/* the last message: it closes */
			remove_waiter(w);
			free(w);
		}
		ws_send(ws, text, len, rank == RANK_FINAL);
		return;
	}
	json_decref(w->call->out);
	w->call->out = json_incref(body);
	if (rank >= w->wake_rank)
		wake(w);
}

/* Is w's token the one revoked (by sig, or by an epoch above its own)? */
static int
revoked(const struct waiter *w, const char *user, const char *sig,
    long long epoch)
{
	if (w->sig[0] == '\0' || strcmp(w->user, user) != 0)
		return (0);
	return (sig != NULL ? strcmp(w->sig, sig) == 0 : w->ver < epoch);
}

/* {"revoked": {"userId", "sig" or "epoch"}}: end what that token holds. */
static void
on_revoked(json_t *r)
{
	static char	*revoked_body;	/* the same for every socket */
	struct waiter	*w, *next;
	const char	*user, *sig;
	long long	 epoch;

	user = json_string_value(json_object_get(r, "userId"));
	sig = json_string_value(json_object_get(r, "sig"));
	epoch = json_integer_value(json_object_get(r, "epoch"));
	if (user == NULL)
		return;
	if (revoked_body == NULL &&
	    (revoked_body = api_error_text(ERR_TOKEN_REVOKED)) == NULL)
		return;
	for (w = TAILQ_FIRST(&requests); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (revoked(w, user, sig, epoch)) {
			w->call->err = ERR_TOKEN_REVOKED;
			wake(w);
		}
	}
	for (w = TAILQ_FIRST(&sockets); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (revoked(w, user, sig, epoch)) {
			struct connection *ws = w->ws;

			remove_waiter(w);
			free(w);
			ws_send(ws, revoked_body, strlen(revoked_body), 1);
		}
	}
}

#define STATUS_PREFIX	"{\"checkoutId\":\""

/*
 * Is a status body (text) about a checkout nobody here waits for?  Every
 * status change reaches every API process, and a sale's are nearly all
 * unwatched: those are dropped without parsing.  Status bodies begin
 * with their checkoutId (protocol_body); anything else is parsed.
 */
static int
unwatched(const char *text, size_t len)
{
	struct waiter	*w;
	char		 id[sizeof(w->id)];
	const char	*start, *end;
	size_t		 n, k;

	n = strlen(STATUS_PREFIX);
	if (len <= n || memcmp(text, STATUS_PREFIX, n) != 0)
		return (0);
	start = text + n;
	if ((end = memchr(start, '"', len - n)) == NULL ||
	    (k = (size_t)(end - start)) >= sizeof(id))
		return (0);
	memcpy(id, start, k);
	id[k] = '\0';
	TAILQ_FOREACH(w, bucket_of(id), bucket) {
		if (strcmp(w->id, id) == 0)
			return (0);
	}
	return (1);
}

/* A status body, or a revocation. */
static void
on_body(const char *text, size_t len)
{
	struct waiter	*w, *next;
	json_t		*body;
	const char	*id;
	int		 rank;

	if (unwatched(text, len) ||
	    (body = json_loadb(text, len, 0, NULL)) == NULL)
		return;
	if (json_is_object(json_object_get(body, "revoked"))) {
		on_revoked(json_object_get(body, "revoked"));
		json_decref(body);
		return;
	}
	id = json_string_value(json_object_get(body, "checkoutId"));
	rank = protocol_rank(protocol_state(json_string_value(
	    json_object_get(body, "status"))));
	if (id != NULL && rank > 0) {
		for (w = TAILQ_FIRST(bucket_of(id)); w != NULL; w = next) {
			next = TAILQ_NEXT(w, bucket);
			if (strcmp(w->id, id) == 0)
				deliver(w, body, text, len, rank);
		}
	}
	json_decref(body);
}

/*
 * A message on RK_EVENTS: one body a line (a worker publishes a batch's
 * in one message; bodies are compact JSON, with no newline inside).
 */
static void
on_event(const char *text, size_t len)
{
	const char	*end, *nl;

	for (end = text + len; text < end; text = nl + 1) {
		if ((nl = memchr(text, '\n', (size_t)(end - text))) == NULL)
			nl = end;
		if (nl > text)
			on_body(text, (size_t)(nl - text));
	}
}

/* Events may have been missed: send every waiter back to read again. */
static void
on_resubscribed(void)
{
	struct waiter		*w, *next;
	struct connection	*ws;

	for (w = TAILQ_FIRST(&sockets); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		ws = w->ws;
		remove_waiter(w);
		free(w);
		ws_refresh(ws, NULL);
	}
	while ((w = TAILQ_FIRST(&requests)) != NULL)
		wake(w);
}

/*
 * Once a second: each WebSocket of a queued checkout gets its body again
 * with its new position, when that changed (queue.c).
 */
static void
positions(void *arg, uint64_t now)
{
	struct waiter	*w;
	long long	 pos, eta;
	char		*text;

	(void)arg;
	(void)now;
	TAILQ_FOREACH(w, &sockets, all) {
		if (w->queued == NULL ||
		    queue_position(w->seq, &pos, &eta) == -1 ||
		    pos == w->position)
			continue;
		w->position = pos;
		if ((text = queue_body(w->queued, pos, eta)) != NULL) {
			ws_send(w->ws, text, strlen(text), 0);
			free(text);
		}
	}
}

static void
expire(void *arg, uint64_t now)
{
	struct waiter	*w, *next;

	(void)arg;
	for (w = TAILQ_FIRST(&requests); w != NULL; w = next) {
		next = TAILQ_NEXT(w, all);
		if (w->deadline <= now)
			wake(w);
	}
}

void
events_init(void (*send)(struct connection *, const char *, size_t, int),
    void (*refresh)(struct connection *, const char *))
{
	size_t	i;

	for (i = 0; i < BUCKETS; i++) {
		TAILQ_INIT(&buckets[i]);
		TAILQ_INIT(&conns[i]);
		TAILQ_INIT(&holders[i]);
	}
	ws_send = send;
	ws_refresh = refresh;
	aredis_subscribe(RK_EVENTS, on_event, on_resubscribed);
	kore_timer_add(expire, EXPIRE_MS, NULL, 0);
	kore_timer_add(positions, 1000, NULL, 0);
}

/*
 * A new waiter of user for checkout id; ws for a socket's, else a
 * request's.  NULL if the user holds WAITERS_PER_USER already.
 */
static struct waiter *
add_waiter(const char *user, const char *id, struct connection *ws)
{
	struct waiter	*w;

	if (hold(user) == -1)
		return (NULL);
	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("events: out of memory");
	snprintf(w->id, sizeof(w->id), "%s", id);
	snprintf(w->user, sizeof(w->user), "%s", user);
	w->ws = ws;
	TAILQ_INSERT_TAIL(bucket_of(w->id), w, bucket);
	if (ws != NULL) {
		TAILQ_INSERT_TAIL(conn_bucket(ws), w, byconn);
		TAILQ_INSERT_TAIL(&sockets, w, all);
	} else {
		TAILQ_INSERT_TAIL(&requests, w, all);
	}
	return (w);
}

/*
 * Wait for checkout id on behalf of user's req until deadline
 * (kore_time_ms).  The call completes when a body of rank wake_rank or
 * above arrives, at the deadline, or when Redis comes back; its out is
 * then the newest body seen (new), or NULL.  Give it to call_start(), or
 * call_release() it.  NULL if the user holds WAITERS_PER_USER waiters
 * and sockets in this process already (answer 429).
 */
struct call *
events_wait(struct http_request *req, const char *user, const char *id,
    int wake_rank, uint64_t deadline)
{
	struct waiter	*w;
	struct call	*c;

	if ((w = add_waiter(user, id, NULL)) == NULL)
		return (NULL);
	c = call_new(req, NULL);
	c->busy = 1;
	w->wake_rank = wake_rank;
	w->deadline = deadline;
	w->call = c;
	c->arg = w;
	c->on_release = detach;
	return (c);
}

/* c's waiter ends (401) when who's token is revoked. */
void
events_bind_token(struct call *c, const struct principal *who)
{
	struct waiter	*w = c->arg;

	if (w == NULL)
		return;
	snprintf(w->sig, sizeof(w->sig), "%s", who->sig);
	w->ver = who->ver;
}

/* Tell every API process: end what this token (or epoch) holds. */
void
events_announce_revoked(const char *user, const char *sig, long long epoch)
{
	struct rargs	 a;
	json_t		*m;
	char		*text;

	m = sig != NULL ?
	    json_pack("{s:{s:s, s:s}}", "revoked", "userId", user, "sig", sig) :
	    json_pack("{s:{s:s, s:I}}", "revoked", "userId", user, "epoch",
	    (json_int_t)epoch);
	text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (text == NULL)
		return;
	rargs_init(&a, "PUBLISH");
	rargs_add(&a, RK_EVENTS);
	rargs_add(&a, text);
	aredis_fire_args(&a);
	rargs_free(&a);
	free(text);
}

/* Wake at rank or above from now on (at once, if already seen). */
void
events_set_wake(struct call *c, int rank)
{
	struct waiter	*w = c->arg;

	if (w == NULL)
		return;		/* already woken */
	w->wake_rank = rank;
	if (w->seen_rank >= rank)
		wake(w);
}

/* The request let go of c while it waited: take the waiter out. */
static void
detach(struct call *c)
{
	struct waiter	*w = c->arg;

	if (w != NULL) {
		remove_waiter(w);
		free(w);
		c->arg = NULL;
	}
	c->busy = 0;
}

/*
 * Send every status change of checkout id to user's WebSocket ws; -1 if
 * the user holds WAITERS_PER_USER already.  While it is queued (body,
 * with seq), its position too, when it changes (at most once a second).
 */
int
events_watch(struct connection *ws, const struct principal *who,
    const char *id, int seen_rank, long long seq, const char *body)
{
	struct waiter	*w;

	if ((w = add_waiter(who->sub, id, ws)) == NULL)
		return (-1);
	snprintf(w->sig, sizeof(w->sig), "%s", who->sig);
	w->ver = who->ver;
	w->seen_rank = seen_rank;
	w->wake_rank = RANK_NEVER;
	w->seq = seq;
	w->position = -1;
	if (body != NULL && seq > 0 && (w->queued = strdup(body)) == NULL)
		fatal("events: out of memory");
	return (0);
}

void
events_unwatch(struct connection *ws)
{
	struct waiter	*w, *next;

	for (w = TAILQ_FIRST(conn_bucket(ws)); w != NULL; w = next) {
		next = TAILQ_NEXT(w, byconn);
		if (w->ws == ws) {
			remove_waiter(w);
			free(w);
		}
	}
}
