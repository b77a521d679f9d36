/*
 * redis.h -- synchronous Redis connections (worker, shopctl) and the key
 * names every process shares.
 *
 * The API talks to Redis without blocking through api/runtime/aredis.c; both use
 * the names below, so a key is spelt in one place.
 */
#ifndef SHARED_REDIS_H
#define SHARED_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

/*
 * The keys, spelled here once (the Lua library gets them as its RK table
 * from these defines, at build time: scripts/lua_library.py):
 *   checkout:<id>        hash: status, body (the public JSON), userId, rid,
 *                        seq (its place among the stream's XADDs)
 *   checkout:seq         counts the XADDs to checkout:jobs (queue_state)
 *   checkout:jobs        the stream of jobs: checkoutId, userId, rid,
 *                        createdAt, lines ("<productId>:<qty>,...")
 *   checkout:dead        dead-lettered jobs: msgid, checkoutId, userId, reason
 *   checkout:events      pub/sub channel of status bodies
 *   idem:<digest>        an Idempotency-Key: "p|<hash>" or
 *                        "d|<hash>|<checkoutId>" (protocol_idem_key())
 *   cart:lines:<user>    the cart hint, "<rev>|<cartId>|<productId>:<qty>,..."
 *   catalog:version      bumped by every product write
 *   catalog:stock        bumped by every completed order
 *   stats:worker         hash of worker counters
 *   gate:stock:<pid>     units the stock gate may still admit, or "gone"
 *   gate:held:<pid>      hash checkoutId -> units reserved and not settled
 *   gate:resv:<id>       hash productId -> units checkout <id> reserved
 *   gate:rule:<pid>      the product's sale rules, "<startsMs>|<endsMs>|
 *                        <limit>", stored and dropped with its counter
 *   gate:user:<pid>      hash userId -> units of a limited product the
 *                        customer holds (reserved or in live orders)
 *   gate:back:<orderId>  the units of a cancelled or expired order are
 *                        back in the gate (two days)
 *   waitlist:<pid>       sorted set: waitlisted checkouts by the ms they
 *                        first joined (arrival order)
 *   waitlist:products    the products with a waitlist (the sweeper's round)
 *   proc:<name>, procs   a worker's or notifier's heartbeat (expiring), and
 *                        the names seen
 *   stats:history        a sample a second for the console, last 600
 *   auth:epoch:<user>    the user's token epoch (tokens carry it as "ver")
 *   auth:revoked:<sig>   a logged-out token, by its signature, until expiry
 *   rl:submit:<user>     the user's submit bucket: "<milli-tokens>:<ms>"
 *   rl:login:email:<e>, rl:login:ip:<ip>, rl:register:ip:<ip>   counters
 */
#define RK_STREAM	"checkout:jobs"		/* the checkout stream */
#define RK_GROUP	"checkout-workers"	/* its consumer group */
#define RK_DEAD		"checkout:dead"		/* dead-letter stream */
#define RK_EVENTS	"checkout:events"	/* pub/sub of status changes */
#define RK_CHECKOUT	"checkout:"		/* + id: status hash */
#define RK_SEQ		"checkout:seq"		/* counts the stream's XADDs */
#define RK_IDEM		"idem:"			/* + digest: idempotency */
#define RK_LOCK		"lock:user:"		/* + user id: per-user lock */
#define RK_LOCK_PRODUCT	"lock:product:"		/* + product id: contention */
#define RK_CATALOG	"catalog:version"	/* bumped by product writes */
#define RK_STOCK	"catalog:stock"		/* bumped by committed orders */
#define RK_RL_EMAIL	"rl:login:email:"	/* + email: failed logins */
#define RK_RL_IP	"rl:login:ip:"		/* + ip: failed logins */
#define RK_RL_REGISTER	"rl:register:ip:"	/* + ip: registrations */
#define RK_RL_PASSWORD	"rl:password:"		/* + user: password changes */
#define RK_RL_SUBMIT	"rl:submit:"		/* + user: submit bucket */
#define RK_EPOCH	"auth:epoch:"		/* + user: token epoch */
#define RK_REVOKED	"auth:revoked:"		/* + signature: logged out */
#define RK_STATS	"stats:worker"		/* hash of worker counters */
#define RK_HISTORY	"stats:history"		/* a sample a second, 10 min */
#define RK_CART_LINES	"cart:lines:"		/* + user id: lines, a hint */
#define RK_GATE_STOCK	"gate:stock:"		/* + product: units the gate admits */
#define RK_GATE_HELD	"gate:held:"		/* + product: reservations held */
#define RK_GATE_RESV	"gate:resv:"		/* + checkout: its reservation */
#define RK_GATE_RULE	"gate:rule:"		/* + product: its sale rules */
#define RK_GATE_USER	"gate:user:"		/* + product: units per customer */
#define RK_GATE_BACK	"gate:back:"		/* + order: units returned */
#define RK_WAITLIST	"waitlist:"		/* + product: waitlisted checkouts */
#define RK_WAITLISTS	"waitlist:products"	/* products with a waitlist */
#define RK_PROC		"proc:"			/* + name: a heartbeat (expiring) */
#define RK_PROCS	"procs"			/* the names of the heartbeats seen */
#define CART_HINT_TTL	86400			/* seconds */

/*
 * Connect to cfg's Redis with a timeout, AUTH and SELECT as configured,
 * and check for the checkout library (shared/lua/).  Returns a new
 * context (redisFree() it), or NULL with a message in err.
 */
redisContext	*redis_connect(char *err, size_t errlen);

/*
 * The checkout library is loaded by shopctl (migrate, and any command
 * that connects) only: it calls redis_load_library() first.  Every other
 * program checks on connecting that Redis holds exactly its own build of
 * the library (FUNCTION LIST ... WITHCODE), and refuses the connection
 * otherwise, so its Redis user needs no FUNCTION LOAD (ops/redis ACLs).
 */
void		 redis_load_library(void);
int		 redis_library_matches(const redisReply *);
#define REDIS_NO_LIBRARY "Redis does not hold this build's checkout library " \
		"(shared/lua/protocol.lua): run shopctl migrate"

/*
 * With REDIS_SENTINELS, the current primary: the Sentinels are asked in
 * turn (AUTH with REDIS_SENTINEL_PASSWORD, then SENTINEL
 * get-master-addr-by-name, SENTINEL_TIMEOUT_MS each) until a majority
 * of the configured ones name the same address, so one rogue or stale
 * Sentinel cannot send our password and writes elsewhere.
 * redis_connect() asks them itself and refuses a server that is not a
 * primary (ROLE), so nothing is ever written to a replica.
 */
#define SENTINEL_TIMEOUT_MS	500
int		 redis_primary(char *host, size_t hostlen, int *port,
		    char *err, size_t errlen);

/* The Sentinels' answers so far, for the API's asynchronous asking. */
struct sentinel_votes {
	int	asked;			/* Sentinels asked this round */
	int	nseen;
	struct {
		char	host[256];
		int	port;
		int	votes;
	}	seen[8];
};

/*
 * Count one Sentinel's answer (NULL or an error: none); 1 with the
 * address in host and port once a majority of the configured Sentinels
 * named it, else 0.  Reset votes (memset 0) for a new round.
 */
int		 sentinel_vote(struct sentinel_votes *votes,
		    const redisReply *r, char *host, size_t hostlen,
		    int *port);

/*
 * The server cannot take our writes now: it turned replica (a failover
 * demoted it, READONLY), lost its primary (MASTERDOWN), or is a primary
 * without the replicas min-replicas-to-write asks for (NOREPLICAS: cut
 * off from them, as an old primary is after a partition).  The
 * connection must be dropped and the primary found again.
 */
int		 redis_readonly(const redisReply *);

/* Redis has no such function: it lost our library (FUNCTION FLUSH or
 * DELETE, a new empty server); shopctl migrate loads it again. */
int		 redis_no_library(const redisReply *);

/*
 * A command's arguments, built one at a time: every added string is
 * copied, so the caller's buffers may go.  For redisAppendCommandArgv()
 * and aredis_cmdv(), which take v and len as they are.  The copies
 * share one buffer (a submit has 24 arguments, a worker's batch call
 * hundreds: one allocation each was a measurable part of a submit).
 */
struct rargs {
	int	 n;		/* arguments so far */
	int	 cap;		/* slots in v and len */
	const char **v;		/* the arguments, inside buf */
	size_t	*len;		/* their lengths */
	char	*buf;		/* the copies, each ending in NUL */
	size_t	 used;		/* bytes of buf in use */
	size_t	 size;		/* allocated */
};

/* Start args with its first word (the command, e.g. "FCALL"). */
void	rargs_init(struct rargs *, const char *first);

/* Start an FCALL of function fn with nkeys keys to follow. */
void	rargs_fcall(struct rargs *, const char *fn, int nkeys);

void	rargs_add(struct rargs *, const char *);
void	rargs_addf(struct rargs *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	rargs_free(struct rargs *);

#endif
