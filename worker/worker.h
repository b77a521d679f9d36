/*
 * worker.h -- what the worker's files share.
 *
 * A worker process runs WORKER_CONSUMERS consumer threads and one
 * reclaimer thread.  Each thread owns its Redis context and its MongoDB
 * client; nothing else is shared but the stop flag and cfg.
 */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <signal.h>
#include <stdarg.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <mongoc/mongoc.h>

struct consumer {
	int			 id;
	char			 name[96];	/* consumer name in the group */
	redisContext		*redis;		/* NULL while disconnected */
	mongoc_client_t		*mongo;		/* from the process's pool */
	pthread_t		 tid;
};

/* main.c */
extern volatile sig_atomic_t	worker_stopping;
extern mongoc_client_pool_t	*worker_mongo;
int		worker_redis(struct consumer *);
void		worker_redis_drop(struct consumer *);
void		worker_sleep_ms(long);
redisReply	*worker_cmd(struct consumer *, const char *fmt, ...);
redisReply	*worker_vcmd(struct consumer *, const char *fmt, va_list);

/* lock.c: the per-user lock */
void		lock_token(char *token, size_t len);
int		lock_take(struct consumer *, const char *user, const char *token);
int		lock_release(struct consumer *, const char *user,
		    const char *token);
int		lock_products(struct consumer *, char (*ids)[25], int n,
		    const char *token);
void		unlock_products(struct consumer *, char (*ids)[25], int n,
		    const char *token);

/* order.c: the order transaction */
enum order_outcome {
	ORDER_COMPLETED,	/* committed now, or by an earlier delivery */
	ORDER_FAILED,		/* refused: nothing was changed */
	ORDER_RETRY		/* the database failed: try again later */
};

struct order_result {
	enum order_outcome	 outcome;
	json_t			*order;		/* new; when completed */
	const char		*code;		/* when failed */
	char			 product[25];	/* the product it is about */
	char			 detail[512];	/* the error, for the log */
	int			 attempts;	/* transaction runs */
	int			 locked;	/* product locks it needed */
};

void		order_place(struct consumer *, const char *checkout_id,
		    const char *user_id, int first, struct order_result *);

/* checkout.c: one job, from delivery to XACK */
void		checkout_job(struct consumer *, const redisReply *entry,
		    long deliveries);
const char	*checkout_field(const redisReply *entry, const char *name);

/* soldout.c: refusals without a transaction */
struct cart;
long long	soldout_version(struct consumer *);
void		soldout_note(struct consumer *, long long version,
		    const bson_oid_t *product, int64_t stock);
int		soldout_check(struct consumer *, const struct cart *);

/* reclaim.c */
void		*reclaim_main(void *);
void		reclaim_dead_letter(struct consumer *, const char *msgid,
		    const char *checkout_id, const char *user_id,
		    const char *reason);

#endif
