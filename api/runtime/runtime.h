/*
 * runtime.h -- the API's runtime, below its handlers: dispatch, the
 * request context, the asynchronous calls a handler sleeps on and the
 * backends that complete them (a DB thread pool, Redis on kore's loop),
 * the event hub, token checks, queue positions, metrics.
 *
 * Every route runs through one kore handler (dispatch.c), which finds the
 * route, creates the context and calls the route's function.  A route
 * function returns KORE_RESULT_OK once it has answered, or
 * KORE_RESULT_RETRY after starting a call: kore calls it again when the
 * call completes, with ctx->step telling it where it was.
 *
 * The layers, each using only those below it: call.c (the call object);
 * offload.c and aredis.c (the backends: they finish a call with
 * call_finish(), which runs the on_done callback the call carries and
 * wakes its request); request.c, events.c, queue.c, tokens.c,
 * metrics.c; await.c (starting calls for handlers); dispatch.c.  Nothing
 * here calls a handler: main.c gives the route table to dispatch_init().
 */
#ifndef API_RUNTIME_H
#define API_RUNTIME_H

#include <sys/queue.h>

#include <stdarg.h>
#include <stdint.h>

#include <kore/kore.h>
#include <kore/http.h>

#include <jansson.h>
#include <mongoc/mongoc.h>

#include "../../shared/errors.h"
#include "../../shared/jwt.h"

struct ctx;
struct call;
struct rargs;

/* Lists: ?limit= 1..LIST_MAX (default LIST_DEFAULT), ?offset= 0.. */
#define LIST_DEFAULT	20
#define LIST_MAX	100
#define OFFSET_MAX	10000

/* The thread pools blocking work runs on (offload.c). */
enum offload_pool {
	OFFLOAD_DB,		/* MongoDB queries */
	OFFLOAD_HASH,		/* argon2id, so it never starves queries */
	OFFLOAD__COUNT
};

/* What a route does with a bearer token (tokens.c). */
enum route_token {
	TOKEN_NONE,		/* public: none is read */
	TOKEN_HEADER,		/* Authorization, checked before the route */
	TOKEN_OR_QUERY,		/* the same, or ?access_token= (WebSocket) */
	TOKEN_IN_SCRIPT		/* verified alone; its Redis side is checked
				   by the route's own Redis call (submit) */
};

/* A route: method mask, path pattern with ":id" segments, function. */
struct route {
	int		 methods;
	const char	*pattern;
	const char	*name;		/* label in logs and metrics */
	int		(*fn)(struct http_request *, struct ctx *);
	enum route_token token;
	int		 flags;		/* ROUTE_* */
};

#define ROUTE_LOG_ALWAYS	0x1	/* its log line is never sampled away
					   (LOG_REQUESTS) */
#define ROUTE_SMALL_BODY	0x2	/* anyone may post, argon2id follows:
					   the body is capped at 4 KiB */

/*
 * The per-request context, kept in req->hdlr_extra and freed with the
 * request.  A handler keeps its own state in data (freed by data_free).
 */
struct ctx {
	const struct route	*route;
	char			 rid[40];	/* request id, for the logs */
	char			 param[32];	/* the ":id" path segment */
	char			 checkout_id[25];	/* one it queued, for
						   its log line */
	struct principal	 who;		/* set by the token check */
	int			 token_state;	/* tokens.c's progress */
	enum err		 auth_err;	/* its verdict, once checked */
	json_t			*body;		/* new; the parsed body */
	char			 body_where[160];	/* where it did not
						   parse, for the 400 */
	struct call		*call;		/* the call being waited on */
	int			 step;		/* the handler's progress */
	uint64_t		 start_us;	/* when the request began */
	void			*data;		/* handler state */
	void			(*data_free)(void *);
};

/*
 * An asynchronous call: work done off the event loop (a DB thread) or
 * by Redis, that wakes the request when it completes.  It is shared by
 * the request and the backend doing the work; whichever lets go last
 * frees it, so a client that disconnects early never leaves a backend
 * writing into freed memory.
 */
struct call {
	struct http_request	*req;		/* NULL once the request is gone */
	int			 busy;		/* a backend still holds it */
	int			 done;		/* the result is in */
	enum err		 err;		/* the result's error, or none */
	json_t			*in;		/* new; input for the backend */
	json_t			*out;		/* new; the result */
	void			(*run)(struct call *, mongoc_client_t *);
	void			(*on_done)(struct call *);	/* on the loop,
						   before the request wakes */
	void			(*on_release)(struct call *);	/* the request
						   let go while busy */
	void			*arg;		/* for on_done */
	uint64_t		 deadline;	/* ms; Redis calls time out */
	struct aconn		*conn;		/* the Redis connection it is on */
	uint64_t		 wait_gen;	/* the WAIT that confirms it */
	TAILQ_ENTRY(call)	 list;		/* on the backend's queue */
};

/* call.c: the call object (the backends finish calls here) */
struct call	*call_new(struct http_request *, json_t *in);
void		call_finish(struct call *);
void		call_release(struct call *);

/* offload.c: blocking work on threads with their own MongoDB client */
int		offload_init(mongoc_client_pool_t *, char *err, size_t errlen);
void		offload_shutdown(void);
enum err	offload_submit(enum offload_pool, struct call *,
		    void (*run)(struct call *, mongoc_client_t *));

/* aredis.c: Redis on kore's event loop */
int		aredis_init(void);
int		aredis_up(void);
enum err	aredis_cmd(struct call *, const char *fmt, ...);
enum err	aredis_vcmd(struct call *, const char *fmt, va_list);
void		aredis_fire(const char *fmt, ...);
void		aredis_fire_args(const struct rargs *);
enum err	aredis_cmdv(struct call *, int argc, const char **argv,
		    const size_t *lens);
enum err	aredis_cmdv_durable(struct call *, int argc,
		    const char **argv, const size_t *lens);
void		aredis_on_connect(void (*fn)(void));
void		aredis_subscribe(const char *channel,
		    void (*on_message)(const char *, size_t),
		    void (*on_resubscribed)(void));

/* request.c: replies, the one error writer, bodies, query strings */
void		api_json(struct http_request *, int status, json_t *body);
void		api_error(struct http_request *, enum err, const char *field);
void		api_error_with(struct http_request *, enum err,
		    const char *message, json_t *top);
char		*api_error_text(enum err);
void		api_error_extra(struct http_request *, enum err,
		    json_t *extra);
void		api_error_msg(struct http_request *, enum err, const char *field,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum err	api_body(struct http_request *, struct ctx *);
int		api_query(struct http_request *, const char *name, char *out,
		    size_t outlen);
int		api_query_text(struct http_request *, const char *name,
		    char *out, size_t outlen, long maxchars);
void		api_client_ip(struct http_request *, char *out, size_t outlen);
void		api_client_net(struct http_request *, char *out,
		    size_t outlen);
json_t		*api_id_pair(json_t *obj, const char *hex);
void		*api_data(struct ctx *, size_t,
		    void (*data_free)(void *));
void		api_json_text(struct http_request *, int status,
		    const char *text, size_t len);
void		api_json_free(void *);
enum err	api_query_long(struct http_request *, const char *name,
		    long def, long min, long max, long *out);
enum err	api_page_query(struct http_request *, long *limit,
		    long *offset, const char **bad);
enum err	api_param_oid(struct ctx *, bson_oid_t *);
uint32_t	api_hash(const char *);

/* events.c: checkout status changes to waiting requests and sockets */
void		events_init(void (*send)(struct connection *, const char *,
		    size_t, int final), void (*refresh)(struct connection *,
		    const char *));
struct call	*events_wait(struct http_request *, const char *user,
		    const char *id, int wake_rank, uint64_t deadline);
void		events_set_wake(struct call *, int rank);
void		events_bind_token(struct call *, const struct principal *);
int		events_watch(struct connection *, const struct principal *,
		    const char *id, int seen_rank, long long seq,
		    const char *body);
void		events_unwatch(struct connection *);
void		events_announce_revoked(const char *user, const char *sig,
		    long long epoch);

/* queue.c: a queued checkout's position and wait, sampled once a second */
void		queue_init(void);
double		queue_rate(void);
int		queue_position(long long seq, long long *position,
		    long long *eta_ms);
char		*queue_body(const char *body, long long position,
		    long long eta_ms);

/* tokens.c: is the bearer token good, and still standing */
int		tokens_check(struct http_request *, struct ctx *);
int		tokens_checked(const struct ctx *);
int		tokens_cached(const char *sig);
void		tokens_remember(const char *sig);
void		tokens_forget(const char *sig);
void		tokens_epoch_run(struct call *, mongoc_client_t *);
void		tokens_epoch_set(const char *user, long long epoch);
int		tokens_epoch_tell(struct http_request *, struct ctx *, int next,
		    const char *user, long long epoch);
enum err	api_auth(struct http_request *, struct ctx *);
int		api_require_admin(struct http_request *, struct ctx *);

/* metrics.c */
int		metrics_init(const char *const *route_names, size_t n);
void		metrics_record(size_t route, int status, double seconds);
int		metrics_get(struct http_request *, struct ctx *);

/* await.c: a handler starts a call and sleeps until it completes */
int		call_start(struct http_request *, struct ctx *, struct call *,
		    enum err);
struct call	*call_take(struct ctx *);
int		call_offload(struct http_request *, struct ctx *, int next,
		    enum offload_pool,
		    void (*run)(struct call *, mongoc_client_t *), json_t *in);
int		call_redis(struct http_request *, struct ctx *, int next,
		    const char *fmt, ...);
int		call_args(struct http_request *, struct ctx *, int next,
		    const struct rargs *);
int		call_args_durable(struct http_request *, struct ctx *, int next,
		    const struct rargs *);
enum err	call_result(struct ctx *, json_t **out);

/* dispatch.c: the one kore handler (api_dispatch) and its route table */
int		api_dispatch(struct http_request *);
int		dispatch_init(const struct route *, size_t n);

#endif
