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

#include <hiredis/hiredis.h>
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

/* checkout.c: one job, from delivery to XACK */
void		checkout_job(struct consumer *, const redisReply *entry,
		    long deliveries);

/* reclaim.c */
void		*reclaim_main(void *);

#endif
