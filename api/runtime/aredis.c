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
 * a password, and a user if REDIS_URL names one), ROLE, SELECT and, on
 * the command connection, a check that Redis holds this build's checkout
 * library (shared/lua/protocol.lua; shopctl migrate loads it).  A setup command that
 * fails is logged with Redis' answer and the connection is dropped and
 * tried again: meanwhile requests get 503, never a 500 or the wrong
 * database.
 *
 * hiredis 0.14 has no timeouts for asynchronous commands, so a timer
 * watches the oldest command in flight: older than REDIS_TIMEOUT_MS and
 * the connection is dropped, which fails every command on it (hiredis
 * calls each callback once with a NULL reply) and reconnects.
 *
 * Failover (REDIS_SENTINELS): a connection first asks a Sentinel for the
 * primary (asynchronously, on the same loop: the Sentinel connection is
 * the rconn's until it answers, then the primary's), checks with ROLE
 * that it is one, and asks again after any disconnect.  A fourth
 * connection, "sentinel", subscribes to a Sentinel's +switch-master and
 * drops the others when the primary moves; a -READONLY reply (a demoted
 * server) drops the connection too.  Meanwhile calls
 * fail at once with ERR_REDIS_DOWN: a 503 with Retry-After.
 *
 * Durable calls (aredis_cmdv_durable, REDIS_MIN_REPLICAS > 0) go on a
 * third connection, "wait", and complete only once a WAIT sent after
 * them confirms the replicas: one WAIT covers every call sent before it
 * (group commit), and the next is sent when it answers.
 */
#include <sys/epoll.h>

#include <stdarg.h>
#include <string.h>

#include <hiredis/async.h>

#include "runtime.h"
#include "../../shared/config.h"
#include "../../shared/log.h"
#include "../../shared/protocol.h"
#include "../../shared/redis.h"

#define RECONNECT_MS	250
#define WATCH_MS	100

TAILQ_HEAD(callq, call);

struct aconn {
	struct kore_event	 evt;		/* first: kore's epoll data */
	const char		*name;		/* "cmd", "wait" or "sub" */
	redisAsyncContext	*ac;		/* NULL while disconnected */
	int			 fd;
	int			 mask;		/* EPOLLIN / EPOLLOUT wanted */
	int			 registered;	/* fd is in kore's epoll set */
	int			 up;		/* connected and usable */
	int			 reconnecting;	/* a reconnect timer is set */
	int			 setup_left;	/* setup replies still to come */
	void			(*on_up)(struct aconn *);
	int			 asking;	/* ac is a Sentinel's */
	uint64_t		 asked_at;	/* ms, when it was asked */
	int			 sentinel;	/* the next one to ask */
	struct sentinel_votes	 votes;		/* their answers this round */
	int			 located;	/* host, port: the primary */
	char			 host[256];
	int			 port;
	uint64_t		 down_since;	/* ms; 0 while up */
};

static struct aconn	cmdconn = { .name = "cmd" };
static struct aconn	waitconn = { .name = "wait" };
static struct aconn	subconn = { .name = "sub" };
static struct aconn	switchconn = { .name = "sentinel" };	/* +switch-master */
static struct callq	inflight = TAILQ_HEAD_INITIALIZER(inflight);
static struct callq	awaiting = TAILQ_HEAD_INITIALIZER(awaiting);
static uint64_t		waits_sent;	/* WAITs sent on waitconn */
static int		wait_pending;	/* one is in flight */
static int		wait_needed;	/* calls sent since it was */

static void		(*connect_hook)(void);
static const char	*sub_channel;
static void		(*sub_message)(const char *, size_t);
static void		(*sub_resubscribed)(void);

static void	conn_start(struct aconn *);
static void	watch_switches(struct aconn *);
static void	awaiting_fail(void);
static void	subscribe(struct aconn *);

/* ----- the kore adapter ----- */

/*
 * Set the events wanted on rc's socket.  hiredis asks for writes once
 * per command: only a change reaches epoll (kore's schedule is an ADD
 * and then a MOD, two system calls), as hiredis' own ae adapter does.
 */
static void
ev_update(struct aconn *rc, int mask)
{
	if (mask == rc->mask && (rc->registered || mask == 0))
		return;
	rc->mask = mask;
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
	struct aconn	*rc = arg;

	ev_update(rc, rc->mask | EPOLLIN);
}

static void
ev_del_read(void *arg)
{
	struct aconn	*rc = arg;

	ev_update(rc, rc->mask & ~EPOLLIN);
}

static void
ev_add_write(void *arg)
{
	struct aconn	*rc = arg;

	ev_update(rc, rc->mask | EPOLLOUT);
}

static void
ev_del_write(void *arg)
{
	struct aconn	*rc = arg;

	ev_update(rc, rc->mask & ~EPOLLOUT);
}

/* hiredis is freeing the context: forget the socket. */
static void
ev_cleanup(void *arg)
{
	struct aconn	*rc = arg;

	ev_update(rc, 0);
	rc->ac = NULL;
	rc->up = 0;
}

/* kore saw events on the socket. */
static void
ev_handle(void *arg, int error)
{
	struct aconn	*rc = arg;
	int		 flags;

	flags = rc->evt.flags;
	rc->evt.flags &= ~(KORE_EVENT_READ | KORE_EVENT_WRITE);
	if (rc->ac != NULL && (flags & KORE_EVENT_WRITE))
		redisAsyncHandleWrite(rc->ac);
	if (rc->ac != NULL && ((flags & KORE_EVENT_READ) || error))
		redisAsyncHandleRead(rc->ac);
}

static void
ev_attach(struct aconn *rc)
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
	struct aconn	*rc = arg;

	(void)now;
	rc->reconnecting = 0;
	conn_start(rc);
}

/* Ask (or listen to) the next Sentinel from now on. */
static void
next_sentinel(struct aconn *rc)
{
	rc->sentinel = (rc->sentinel + 1) % cfg.nsentinels;
}

static void
reconnect_in(struct aconn *rc, uint64_t ms)
{
	if (rc->reconnecting)
		return;
	rc->reconnecting = 1;
	kore_timer_add(reconnect_fire, ms, rc, KORE_TIMER_ONESHOT);
}

/*
 * A Sentinel named a primary (r), or gave no answer (NULL): count it and
 * ask the next, until a majority of them named one address.
 */
static void
sentinel_answered(struct aconn *rc, const redisReply *r)
{
	next_sentinel(rc);
	if (sentinel_vote(&rc->votes, r, rc->host, sizeof(rc->host),
	    &rc->port)) {
		rc->located = 1;
		memset(&rc->votes, 0, sizeof(rc->votes));
	} else if (rc->votes.asked >= cfg.nsentinels) {
		log_warn("redis: no majority of the Sentinels named a primary",
		    "{s:s, s:i}", "conn", rc->name, "sentinels",
		    cfg.nsentinels);
		memset(&rc->votes, 0, sizeof(rc->votes));
	}
}

/* Next attempt: at once while asking round the Sentinels, else later. */
static void
sentinel_next(struct aconn *rc)
{
	rc->asking = 0;
	reconnect_in(rc, rc->located || rc->votes.asked > 0 ? 1 :
	    RECONNECT_MS);
}

static void
schedule_reconnect(struct aconn *rc)
{
	if (rc->down_since == 0)
		rc->down_since = kore_time_ms();
	reconnect_in(rc, RECONNECT_MS);
}

/* The connection's setup has answered: it is usable. */
static void
ready(struct aconn *rc)
{
	if (rc->down_since != 0)
		log_info("redis: connected", "{s:s, s:s, s:i, s:I}", "conn",
		    rc->name, "host", rc->host, "port", rc->port, "down_ms",
		    (json_int_t)(kore_time_ms() - rc->down_since));
	else
		log_info("redis: connected", "{s:s, s:s, s:i}", "conn",
		    rc->name, "host", rc->host, "port", rc->port);
	rc->down_since = 0;
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
	struct aconn	*rc = ac->data;
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
	struct aconn	*rc = ac->data;

	if (status != REDIS_OK) {
		log_debug("redis: connect failed", "{s:s, s:s}", "conn",
		    rc->name, "error", ac->errstr);
		if (rc->asking) {
			sentinel_answered(rc, NULL);
			sentinel_next(rc);
			return;
		}
		if (rc == &switchconn)
			next_sentinel(rc);
		rc->located = 0;
		schedule_reconnect(rc);
		return;
	}
	if (!rc->asking && rc->setup_left == 0)
		ready(rc);
}

/* ROLE answered: a primary goes on; anything else is left. */
static void
on_role(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct aconn	*rc = ac->data;
	redisReply	*r = reply;

	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0) {
		on_setup(ac, reply, privdata);
		return;
	}
	log_warn("redis: not the primary; looking again", "{s:s, s:s, s:i}",
	    "conn", rc->name, "host", rc->host, "port", rc->port);
	rc->setup_left = -1;
	rc->located = 0;
	redisAsyncDisconnect(ac);
}

/* A Sentinel named the primary (or did not): connect there next. */
static void
on_sentinel(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct aconn	*rc = ac->data;

	(void)privdata;
	if (reply == NULL)
		return;
	sentinel_answered(rc, reply);
	redisAsyncDisconnect(ac);
}

/*
 * FUNCTION LIST answered: Redis holds this build's library (shopctl
 * migrate loads it; the API's Redis user may not), or the connection is
 * refused until it does.
 */
static void
on_library(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct aconn	*rc = ac->data;
	redisReply	*r = reply;

	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR || redis_library_matches(r)) {
		on_setup(ac, reply, privdata);
		return;
	}
	log_error("redis: connection setup failed", "{s:s, s:s, s:s}", "conn",
	    rc->name, "command", "FUNCTION LIST", "error", REDIS_NO_LIBRARY);
	rc->setup_left = -1;
	redisAsyncDisconnect(ac);
}

/* Queue the setup commands, sent first once the socket connects. */
static void
setup(struct aconn *rc, redisAsyncContext *ac)
{
	rc->setup_left = 0;
	if (cfg.redis_password[0] != '\0' && cfg.redis_user[0] != '\0') {
		redisAsyncCommand(ac, on_setup, "AUTH", "AUTH %s %s",
		    cfg.redis_user, cfg.redis_password);
		rc->setup_left++;
	} else if (cfg.redis_password[0] != '\0') {
		redisAsyncCommand(ac, on_setup, "AUTH", "AUTH %s",
		    cfg.redis_password);
		rc->setup_left++;
	}
	redisAsyncCommand(ac, on_role, "ROLE", "ROLE");
	rc->setup_left++;
	if (rc == &subconn)
		return;
	redisAsyncCommand(ac, on_setup, "SELECT", "SELECT %d", cfg.redis_db);
	redisAsyncCommand(ac, on_library, "FUNCTION LIST",
	    "FUNCTION LIST LIBRARYNAME %s WITHCODE", PROTOCOL_LIBRARY_NAME);
	rc->setup_left += 2;
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct aconn	*rc = ac->data;

	(void)status;
	if (rc->asking) {		/* the Sentinel's part is over */
		sentinel_next(rc);
		return;
	}
	log_warn("redis: disconnected", "{s:s, s:s}", "conn", rc->name,
	    "error", ac->errstr != NULL ? ac->errstr : "");
	rc->up = 0;
	if (rc == &switchconn)
		next_sentinel(rc);
	if (rc == &waitconn)
		awaiting_fail();
	if (cfg.nsentinels > 0)
		rc->located = 0;	/* it may have failed over */
	schedule_reconnect(rc);
}

static void
conn_start(struct aconn *rc)
{
	redisAsyncContext	*ac;
	int			 ask;

	if (cfg.nsentinels == 0) {
		snprintf(rc->host, sizeof(rc->host), "%s", cfg.redis_host);
		rc->port = cfg.redis_port;
		rc->located = 1;
	}
	if (rc == &switchconn) {	/* a Sentinel itself, subscribed */
		snprintf(rc->host, sizeof(rc->host), "%s",
		    cfg.sentinels[rc->sentinel].host);
		rc->port = cfg.sentinels[rc->sentinel].port;
		rc->located = 1;
	}
	ask = !rc->located;
	ac = ask ? redisAsyncConnect(cfg.sentinels[rc->sentinel].host,
	    cfg.sentinels[rc->sentinel].port) :
	    redisAsyncConnect(rc->host, rc->port);
	if (ac == NULL || ac->err) {
		if (ac != NULL)
			redisAsyncFree(ac);
		if (ask)
			next_sentinel(rc);
		schedule_reconnect(rc);
		return;
	}
	rc->ac = ac;
	rc->asking = ask;
	rc->asked_at = kore_time_ms();
	ev_attach(rc);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* Sent first on a Sentinel's connection (no reply is read: an
	 * AUTH it refuses makes the question that follows fail). */
	if ((ask || rc == &switchconn) && cfg.redis_sentinel_password[0])
		redisAsyncCommand(ac, NULL, NULL, "AUTH %s",
		    cfg.redis_sentinel_password);
	if (ask)
		redisAsyncCommand(ac, on_sentinel, NULL,
		    "SENTINEL get-master-addr-by-name %s",
		    cfg.redis_master_name);
	else if (rc == &switchconn)
		rc->setup_left = 0;	/* ready once connected */
	else
		setup(rc, ac);
}

/* The connection of the oldest overdue call of q, or NULL. */
static struct aconn *
overdue(struct callq *q, uint64_t now)
{
	struct call	*c;

	c = TAILQ_FIRST(q);
	if (c == NULL || c->deadline > now)
		return (NULL);
	return (c->conn);
}

/*
 * A Sentinel that does not answer in time: ask the next one.  A server
 * that takes the connection but not its setup (a frozen primary: the
 * kernel still accepts): look again.
 */
static void
connect_overdue(struct aconn *rc, uint64_t now)
{
	if (rc->ac == NULL || rc->up)
		return;
	if (rc->asking && now - rc->asked_at >= SENTINEL_TIMEOUT_MS) {
		log_warn("redis: a Sentinel did not answer", "{s:s, s:s, s:i}",
		    "conn", rc->name, "sentinel",
		    cfg.sentinels[rc->sentinel].host, "port",
		    cfg.sentinels[rc->sentinel].port);
		sentinel_answered(rc, NULL);
	} else if (rc->asking ||
	    now - rc->asked_at < (uint64_t)cfg.redis_timeout_ms) {
		return;
	} else {
		log_warn("redis: connection setup timed out", "{s:s, s:s, s:i}",
		    "conn", rc->name, "host", rc->host, "port", rc->port);
		rc->located = 0;
	}
	rc->asking = 0;
	redisAsyncFree(rc->ac);
	schedule_reconnect(rc);
}

/* Drop a connection whose oldest command is overdue. */
static void
watch(void *arg, uint64_t now)
{
	struct aconn	*rc;

	(void)arg;
	connect_overdue(&cmdconn, now);
	connect_overdue(&waitconn, now);
	connect_overdue(&subconn, now);
	connect_overdue(&switchconn, now);
	if ((rc = overdue(&inflight, now)) == NULL &&
	    (rc = overdue(&awaiting, now)) == NULL)
		return;
	if (rc->ac == NULL) {
		if (rc == &waitconn)
			awaiting_fail();
		return;
	}
	log_warn("redis: command timed out, reconnecting", "{s:s, s:i}",
	    "conn", rc->name, "timeout_ms", (int)cfg.redis_timeout_ms);
	redisAsyncFree(rc->ac);		/* fails every call in flight */
	rc->up = 0;
	if (rc == &waitconn)
		awaiting_fail();
	schedule_reconnect(rc);
}

/*
 * The Sentinels announced a new primary: leave the old one now, rather
 * than on the first write it refuses (-READONLY) as a replica.
 */
static void
leave_old_primary(struct aconn *rc, const char *host, int port)
{
	if (rc->ac == NULL || !rc->located || rc->asking ||
	    (strcmp(rc->host, host) == 0 && rc->port == port))
		return;
	log_warn("redis: the Sentinels switched the primary; reconnecting",
	    "{s:s, s:s, s:i}", "conn", rc->name, "host", host, "port", port);
	rc->up = 0;
	rc->located = 0;
	/* Not redisAsyncDisconnect(): that waits for the replies owed,
	 * which a frozen old primary never sends. */
	redisAsyncFree(rc->ac);
}

/* A message on +switch-master: "<name> <old ip> <old port> <ip> <port>". */
static void
on_switch(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply	*r = reply;
	char		 name[128], host[256];
	int		 port;

	(void)ac;
	(void)privdata;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return;
	if (sscanf(r->element[2]->str, "%127s %*s %*d %255s %d", name, host,
	    &port) != 3 || strcmp(name, cfg.redis_master_name) != 0)
		return;
	leave_old_primary(&cmdconn, host, port);
	leave_old_primary(&waitconn, host, port);
	leave_old_primary(&subconn, host, port);
}

static void
watch_switches(struct aconn *rc)
{
	redisAsyncCommand(rc->ac, on_switch, NULL, "SUBSCRIBE +switch-master");
}

int
aredis_init(void)
{
	subconn.on_up = subscribe;
	conn_start(&cmdconn);
	conn_start(&subconn);
	if (cfg.redis_min_replicas > 0)
		conn_start(&waitconn);
	if (cfg.nsentinels > 0) {
		switchconn.on_up = watch_switches;
		conn_start(&switchconn);
	}
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

/*
 * The server cannot take our calls: a failover demoted it, or it lost
 * our library.  Find the primary again; its setup checks the library
 * (refusing the connection, so that calls get 503, until shopctl
 * migrate loads it).
 */
static void
demoted(redisAsyncContext *ac, const redisReply *r)
{
	struct aconn	*rc = ac->data;

	if (!rc->up)
		return;
	log_warn(redis_no_library(r) ? "redis lost the checkout library; "
	    "run shopctl migrate" : "redis: no longer the primary; "
	    "reconnecting", "{s:s, s:s}", "conn", rc->name, "error", r->str);
	rc->up = 0;
	rc->located = 0;
	redisAsyncDisconnect(ac);
}

/* A reply (NULL: the connection went) into c's err and out. */
static enum err
take_reply(redisAsyncContext *ac, struct call *c, const redisReply *r)
{
	if (r == NULL) {
		c->err = ERR_REDIS_DOWN;
	} else if (redis_readonly(r) || redis_no_library(r)) {
		c->err = ERR_REDIS_DOWN;
		demoted(ac, r);
	} else {
		c->out = reply_json(r);
		if (r->type == REDIS_REPLY_ERROR) {
			c->err = ERR_INTERNAL;
			log_error("redis: error reply", "{s:s}", "error",
			    r->str);
		}
	}
	return (c->err);
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct call	*c = privdata;
	redisReply	*r = reply;

	TAILQ_REMOVE(&inflight, c, list);
	take_reply(ac, c, r);
	call_finish(c);
}

static enum err
sent(struct call *c, struct aconn *rc, int status)
{
	if (status != REDIS_OK)
		return (ERR_REDIS_DOWN);
	c->conn = rc;
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
	return (sent(c, &cmdconn, redisvAsyncCommand(cmdconn.ac, on_reply, c,
	    fmt, ap)));
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
	return (sent(c, &cmdconn, redisAsyncCommandArgv(cmdconn.ac, on_reply,
	    c, argc, argv, lens)));
}

/* ----- durable calls: WAIT for the replicas ----- */

static void	send_wait(void);

/* The WAIT numbered by privdata answered: settle what it covered. */
static void
on_wait(redisAsyncContext *ac, void *reply, void *privdata)
{
	redisReply	*r = reply;
	struct call	*c;
	uint64_t	 gen = (uint64_t)(uintptr_t)privdata;
	enum err	 e;

	(void)ac;
	e = ERR_NONE;
	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		e = ERR_REDIS_DOWN;
	else if (r->integer < cfg.redis_min_replicas)
		e = ERR_NOT_REPLICATED;
	if (e == ERR_NOT_REPLICATED)
		log_warn("redis: not confirmed by enough replicas", "{s:I, s:i}",
		    "replicas", (json_int_t)r->integer, "waited_ms",
		    (int)cfg.redis_wait_ms);
	while ((c = TAILQ_FIRST(&awaiting)) != NULL &&
	    (c->wait_gen <= gen || r == NULL)) {
		TAILQ_REMOVE(&awaiting, c, list);
		if (e != ERR_NONE) {
			c->err = e;
			json_decref(c->out);
			c->out = NULL;
		}
		call_finish(c);
	}
	wait_pending = 0;
	if (r != NULL && wait_needed)
		send_wait();
}

/* The wait connection is gone: its calls are not confirmed. */
static void
awaiting_fail(void)
{
	struct call	*c;

	wait_pending = wait_needed = 0;
	while ((c = TAILQ_FIRST(&awaiting)) != NULL) {
		TAILQ_REMOVE(&awaiting, c, list);
		c->err = ERR_REDIS_DOWN;
		json_decref(c->out);
		c->out = NULL;
		call_finish(c);
	}
}

static void
send_wait(void)
{
	if (redisAsyncCommand(waitconn.ac, on_wait,
	    (void *)(uintptr_t)(waits_sent + 1), "WAIT %ld %ld",
	    cfg.redis_min_replicas, cfg.redis_wait_ms) != REDIS_OK)
		return;		/* going down: its calls fail with it */
	waits_sent++;
	wait_pending = 1;
	wait_needed = 0;
}

/* A durable call's own reply: it waits for its WAIT, unless it failed. */
static void
on_durable(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct call	*c = privdata;
	redisReply	*r = reply;

	TAILQ_REMOVE(&inflight, c, list);
	if (take_reply(ac, c, r) != ERR_NONE) {
		call_finish(c);
		return;
	}
	c->deadline = kore_time_ms() + (uint64_t)cfg.redis_wait_ms +
	    (uint64_t)cfg.redis_timeout_ms;
	TAILQ_INSERT_TAIL(&awaiting, c, list);
}

/*
 * aredis_cmdv() for a write that must be on REDIS_MIN_REPLICAS replicas
 * before it is answered (a checkout submit): the call completes after
 * the WAIT that covers it, with ERR_NOT_REPLICATED if too few replicas
 * confirmed within REDIS_WAIT_MS.  Without replicas to wait for, it is
 * aredis_cmdv().
 */
enum err
aredis_cmdv_durable(struct call *c, int argc, const char **argv,
    const size_t *lens)
{
	enum err	e;

	if (cfg.redis_min_replicas == 0)
		return (aredis_cmdv(c, argc, argv, lens));
	if (!waitconn.up)
		return (ERR_REDIS_DOWN);
	e = sent(c, &waitconn, redisAsyncCommandArgv(waitconn.ac, on_durable,
	    c, argc, argv, lens));
	if (e != ERR_NONE)
		return (e);
	c->wait_gen = waits_sent + 1;
	if (wait_pending)
		wait_needed = 1;
	else
		send_wait();
	return (ERR_NONE);
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
subscribe(struct aconn *rc)
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
