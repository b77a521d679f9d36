/*
 * aredis.c -- hiredis' asynchronous API on kore's event loop.
 *
 * Each kore worker keeps two connections: "cmd" for commands, pipelined
 * in order, and "sub" for the pub/sub subscription.  The adapter maps
 * hiredis' addRead/delRead/addWrite/delWrite hooks onto one level-
 * triggered epoll registration per socket (the model is hiredis'
 * adapters/ae.h).
 *
 * API:
 *   aredis_cmd(call, fmt, ...) sends a command; when the reply comes the
 *   call's out holds it as JSON (strings, integers, arrays, null) and the
 *   request wakes.  A Redis error reply sets ERR_INTERNAL with the error
 *   text in out.  While Redis is down the call fails at once with
 *   ERR_REDIS_DOWN, which the API answers with 503.
 *
 * A connection is usable ("up") once its setup has answered: AUTH (with
 * a password), SELECT and, on the command connection, FUNCTION LOAD of
 * the checkout library (shared/checkout.lua).  A setup command that
 * fails is logged with Redis' answer and the connection is dropped and
 * tried again: meanwhile requests get 503, never a 500 or the wrong
 * database.
 *
 * hiredis 0.14 has no timeouts for asynchronous commands, so a timer
 * watches the oldest command in flight: older than REDIS_TIMEOUT_MS and
 * the connection is dropped, which fails every command on it (hiredis
 * calls each callback once with a NULL reply) and reconnects.
 */
#include <sys/epoll.h>

#include <stdarg.h>
#include <string.h>

#include <hiredis/async.h>

#include "api.h"
#include "../shared/config.h"
#include "../shared/log.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"

#define RECONNECT_MS	250
#define WATCH_MS	100

TAILQ_HEAD(callq, call);

struct rconn {
	struct kore_event	 evt;		/* first: kore's epoll data */
	const char		*name;		/* "cmd" or "sub" */
	redisAsyncContext	*ac;		/* NULL while disconnected */
	int			 fd;
	int			 mask;		/* EPOLLIN / EPOLLOUT wanted */
	int			 registered;	/* fd is in kore's epoll set */
	int			 up;		/* connected and usable */
	int			 reconnecting;	/* a reconnect timer is set */
	int			 setup_left;	/* setup replies still to come */
	void			(*on_up)(struct rconn *);
};

static struct rconn	cmdconn = { .name = "cmd" };
static struct rconn	subconn = { .name = "sub" };
static struct callq	inflight = TAILQ_HEAD_INITIALIZER(inflight);

static void		(*connect_hook)(void);
static const char	*sub_channel;
static void		(*sub_message)(const char *, size_t);
static void		(*sub_resubscribed)(void);

static void	conn_start(struct rconn *);
static void	subscribe(struct rconn *);

/* ----- the kore adapter ----- */

static void
ev_update(struct rconn *rc)
{
	if (rc->mask == 0) {
		if (rc->registered)
			kore_platform_disable_read(rc->fd);
		rc->registered = 0;
		return;
	}
	kore_platform_event_schedule(rc->fd, rc->mask, 0, rc);
	rc->registered = 1;
}

static void
ev_add_read(void *arg)
{
	struct rconn	*rc = arg;

	rc->mask |= EPOLLIN;
	ev_update(rc);
}

static void
ev_del_read(void *arg)
{
	struct rconn	*rc = arg;

	rc->mask &= ~EPOLLIN;
	ev_update(rc);
}

static void
ev_add_write(void *arg)
{
	struct rconn	*rc = arg;

	rc->mask |= EPOLLOUT;
	ev_update(rc);
}

static void
ev_del_write(void *arg)
{
	struct rconn	*rc = arg;

	rc->mask &= ~EPOLLOUT;
	ev_update(rc);
}

/* hiredis is freeing the context: forget the socket. */
static void
ev_cleanup(void *arg)
{
	struct rconn	*rc = arg;

	rc->mask = 0;
	ev_update(rc);
	rc->ac = NULL;
	rc->up = 0;
}

/* kore saw events on the socket. */
static void
ev_handle(void *arg, int error)
{
	struct rconn	*rc = arg;
	int		 flags;

	flags = rc->evt.flags;
	rc->evt.flags &= ~(KORE_EVENT_READ | KORE_EVENT_WRITE);
	if (rc->ac != NULL && (flags & KORE_EVENT_WRITE))
		redisAsyncHandleWrite(rc->ac);
	if (rc->ac != NULL && ((flags & KORE_EVENT_READ) || error))
		redisAsyncHandleRead(rc->ac);
}

static void
ev_attach(struct rconn *rc)
{
	redisAsyncContext	*ac = rc->ac;

	rc->fd = ac->c.fd;
	rc->mask = 0;
	rc->registered = 0;
	rc->evt.type = KORE_TYPE_TASK;
	rc->evt.flags = 0;
	rc->evt.handle = ev_handle;
	ac->data = rc;
	ac->ev.data = rc;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
}

/* ----- connections ----- */

static void
reconnect_fire(void *arg, uint64_t now)
{
	struct rconn	*rc = arg;

	(void)now;
	rc->reconnecting = 0;
	conn_start(rc);
}

static void
schedule_reconnect(struct rconn *rc)
{
	if (rc->reconnecting)
		return;
	rc->reconnecting = 1;
	kore_timer_add(reconnect_fire, RECONNECT_MS, rc, KORE_TIMER_ONESHOT);
}

/* The connection's setup has answered: it is usable. */
static void
ready(struct rconn *rc)
{
	log_info("redis: connected", "{s:s}", "conn", rc->name);
	rc->up = 1;
	if (rc == &cmdconn && connect_hook != NULL)
		connect_hook();
	if (rc->on_up != NULL)
		rc->on_up(rc);
}

/* A setup command answered (privdata names it). */
static void
on_setup(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rconn	*rc = ac->data;
	redisReply	*r = reply;

	if (r == NULL)
		return;		/* the connection is going */
	if (r->type == REDIS_REPLY_ERROR) {
		log_error("redis: connection setup failed", "{s:s, s:s, s:s}",
		    "conn", rc->name, "command", (const char *)privdata,
		    "error", r->str);
		rc->setup_left = -1;
		redisAsyncDisconnect(ac);
		return;
	}
	if (rc->setup_left > 0 && --rc->setup_left == 0)
		ready(rc);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	if (status != REDIS_OK) {
		log_debug("redis: connect failed", "{s:s, s:s}", "conn",
		    rc->name, "error", ac->errstr);
		schedule_reconnect(rc);
		return;
	}
	if (rc->setup_left == 0)
		ready(rc);
}

/* Queue the setup commands, sent first once the socket connects. */
static void
setup(struct rconn *rc, redisAsyncContext *ac)
{
	rc->setup_left = 0;
	if (cfg.redis_password[0] != '\0') {
		redisAsyncCommand(ac, on_setup, "AUTH", "AUTH %s",
		    cfg.redis_password);
		rc->setup_left++;
	}
	if (rc != &cmdconn)
		return;
	redisAsyncCommand(ac, on_setup, "SELECT", "SELECT %d", cfg.redis_db);
	redisAsyncCommand(ac, on_setup, "FUNCTION LOAD",
	    "FUNCTION LOAD REPLACE %s", protocol_library);
	rc->setup_left += 2;
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn	*rc = ac->data;

	(void)status;
	log_warn("redis: disconnected", "{s:s, s:s}", "conn", rc->name,
	    "error", ac->errstr != NULL ? ac->errstr : "");
	rc->up = 0;
	schedule_reconnect(rc);
}

static void
conn_start(struct rconn *rc)
{
	redisAsyncContext	*ac;

	ac = redisAsyncConnect(cfg.redis_host, cfg.redis_port);
	if (ac == NULL || ac->err) {
		if (ac != NULL)
			redisAsyncFree(ac);
		schedule_reconnect(rc);
		return;
	}
	rc->ac = ac;
	ev_attach(rc);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	setup(rc, ac);
}

/* Drop the command connection if its oldest command is overdue. */
static void
watch(void *arg, uint64_t now)
{
	struct call	*c;

	(void)arg;
	c = TAILQ_FIRST(&inflight);
	if (c == NULL || c->deadline > now || cmdconn.ac == NULL)
		return;
	log_warn("redis: command timed out, reconnecting", "{s:i}",
	    "timeout_ms", (int)cfg.redis_timeout_ms);
	redisAsyncFree(cmdconn.ac);	/* fails every call in flight */
	schedule_reconnect(&cmdconn);
}

int
aredis_init(void)
{
	subconn.on_up = subscribe;
	conn_start(&cmdconn);
	conn_start(&subconn);
	kore_timer_add(watch, WATCH_MS, NULL, 0);
	return (0);
}

/* Run fn each time the command connection (re)connects. */
void
aredis_on_connect(void (*fn)(void))
{
	connect_hook = fn;
}

int
aredis_up(void)
{
	return (cmdconn.up);
}

/* ----- commands ----- */

/* A new JSON value for a reply; NULL replies are mapped by the caller. */
static json_t *
reply_json(const redisReply *r)
{
	json_t	*a;
	size_t	 i;

	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		return (json_stringn_nocheck(r->str, r->len));
	case REDIS_REPLY_INTEGER:
		return (json_integer(r->integer));
	case REDIS_REPLY_ARRAY:
		a = json_array();
		for (i = 0; i < r->elements; i++)
			json_array_append_new(a, reply_json(r->element[i]));
		return (a);
	default:
		return (json_null());
	}
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct call	*c = privdata;
	redisReply	*r = reply;

	(void)ac;
	TAILQ_REMOVE(&inflight, c, list);
	if (r == NULL) {
		c->err = ERR_REDIS_DOWN;
	} else {
		c->out = reply_json(r);
		if (r->type == REDIS_REPLY_ERROR) {
			c->err = ERR_INTERNAL;
			log_error("redis: error reply", "{s:s}", "error",
			    r->str);
		}
	}
	call_finish(c);
}

static enum err
sent(struct call *c, int status)
{
	if (status != REDIS_OK)
		return (ERR_REDIS_DOWN);
	c->busy = 1;
	c->deadline = kore_time_ms() + (uint64_t)cfg.redis_timeout_ms;
	TAILQ_INSERT_TAIL(&inflight, c, list);
	return (ERR_NONE);
}

enum err
aredis_vcmd(struct call *c, const char *fmt, va_list ap)
{
	if (!cmdconn.up)
		return (ERR_REDIS_DOWN);
	return (sent(c, redisvAsyncCommand(cmdconn.ac, on_reply, c, fmt, ap)));
}

enum err
aredis_cmd(struct call *c, const char *fmt, ...)
{
	va_list		ap;
	enum err	e;

	va_start(ap, fmt);
	e = aredis_vcmd(c, fmt, ap);
	va_end(ap);
	return (e);
}

/* Send a command whose answer nobody waits for (a hint, a cleanup). */
void
aredis_fire(const char *fmt, ...)
{
	struct call	*c;
	va_list		 ap;

	c = call_new(NULL, NULL);
	va_start(ap, fmt);
	if (aredis_vcmd(c, fmt, ap) != ERR_NONE)
		call_release(c);
	va_end(ap);
}

/* The same for a command built as an argument list. */
void
aredis_fire_args(const struct rargs *a)
{
	struct call	*c;

	c = call_new(NULL, NULL);
	if (aredis_cmdv(c, a->n, a->v, a->len) != ERR_NONE)
		call_release(c);
}

enum err
aredis_cmdv(struct call *c, int argc, const char **argv, const size_t *lens)
{
	if (!cmdconn.up)
		return (ERR_REDIS_DOWN);
	return (sent(c, redisAsyncCommandArgv(cmdconn.ac, on_reply, c, argc,
	    argv, lens)));
}

/* ----- pub/sub ----- */

static void
on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply	*r = reply;

	(void)ac;
	(void)privdata;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return;
	if (r->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(r->element[0]->str, "subscribe") == 0) {
		if (sub_resubscribed != NULL)
			sub_resubscribed();
		return;
	}
	if (strcmp(r->element[0]->str, "message") == 0 &&
	    r->element[2]->type == REDIS_REPLY_STRING)
		sub_message(r->element[2]->str, r->element[2]->len);
}

static void
subscribe(struct rconn *rc)
{
	if (sub_channel != NULL)
		redisAsyncCommand(rc->ac, on_message, NULL, "SUBSCRIBE %s",
		    sub_channel);
}

/*
 * Deliver every message on channel to on_message; on_resubscribed runs
 * after each (re)subscription, so that waiters can catch up on what was
 * published while the subscription was down.
 */
void
aredis_subscribe(const char *channel, void (*on_msg)(const char *, size_t),
    void (*on_resubscribed)(void))
{
	sub_channel = channel;
	sub_message = on_msg;
	sub_resubscribed = on_resubscribed;
	if (subconn.up)
		subscribe(&subconn);
}
