/*
 * worker.h -- what the worker's files share.
 *
 * A worker process runs WORKER_CONSUMERS consumer threads, one
 * reclaimer thread, one sweeper thread and one keeper thread.  Each
 * thread owns its Redis connection (shared/rconn.c) and its MongoDB
 * client; nothing else is shared but cfg and the stop flag
 * (shared/proc.c, which also starts and joins the threads).  The files,
 * from the bottom up:
 *   batch_txn.c the MongoDB side (batch_txn.h): the batch transaction,
 *               lookups
 *   lock.c      lock tokens, and product locks before a transaction
 *   gate.c      the stock gate: reservations and seeding
 *   keep.c      claims and user locks renewed while the database waits
 *   batch.c     a batch of jobs from delivery to XACK
 *   reclaim.c   jobs of dead consumers, dead letters, stream trimming
 *   sweep.c     unpaid orders expired, returned units repaired
 *   main.c      the process: start, signals, threads, stop
 */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <mongoc/mongoc.h>

#include "../shared/carts.h"
#include "../shared/errors.h"
#include "../shared/proc.h"
#include "../shared/protocol.h"
#include "../shared/rconn.h"

struct rargs;

struct consumer {
	int			 id;
	struct rconn		 rc;		/* rc.name: the consumer's name
						   in the group */
	mongoc_client_t		*mongo;		/* from the process's pool */
};

/* One checkout job, from its stream entry to its XACK. */
struct job {
	char			 msgid[48];	/* the stream entry's id */
	char			 id[32];	/* checkoutId */
	char			 user[32];	/* userId */
	char			 rid[64];	/* request id, for the logs */
	char			 created[40];	/* createdAt of the checkout */
	int64_t			 at;		/* the same, ms: the time sale
						   windows judge */
	char			*lines;		/* new; the lines as submitted */
	int			 replay;	/* a replayed dead letter: order
						   only its lines */
	int			 waitlist;	/* waitlisted, not failed, when
						   out of stock */
	struct cart		 want;		/* lines, parsed */
	long			 deliveries;	/* -1: not known (a first read) */
	int64_t			 start;		/* ms, when this worker took it */
	char			 token[40];	/* of its user's lock */
	int			 locked;	/* the user's lock is ours */
	int			 first;		/* no delivery reached the order */
	int			 gated;		/* asked the gate: it may hold a
						   reservation now */
	const char		*dead;		/* dead-letter reason, or NULL */
	/* The outcome. */
	enum checkout_state	 state;		/* COMPLETED/FAILED once decided */
	int			 ack_only;	/* already final: only XACK */
	bson_t			*order;		/* new; when completed */
	enum err		 code;		/* when failed */
	char			 product[25];	/* what the failure is about */
	long long		 limit;		/* limit_exceeded: the limit */
	long long		 held;		/* ... and the units held */
	long long		 starts;	/* sale_not_started: ms */
	int			 by_gate;	/* refused by the stock gate */
	int			 finished;	/* ... and finished by batch_begin:
						   recorded, acknowledged */
	int			 attempts;	/* transaction runs */
};

/* lock.c */
void		lock_token(char *token, size_t len);
int		lock_products(struct consumer *, char (*ids)[25], int n,
		    char *token, size_t len);
void		unlock_products(struct consumer *, char (*ids)[25], int n,
		    const char *token);

/* gate.c */
int		gate_reserve(struct consumer *, struct job **, int n);
int		gate_seed(struct consumer *, char (*pids)[25], int n);
void		gate_forget(struct consumer *, const char *product);
void		gate_user_set(struct consumer *, const struct job *);

/* batch.c */
int		job_parse(const redisReply *entry, struct job *);
void		batch_run(struct consumer *, struct job *, int n);
void		job_clear(struct job *);
const char	*job_field(const redisReply *entry, const char *name);
void		batch_counts(long *batches, long *orders, int64_t *last);

/* keep.c: between keep_begin and keep_end, c's jobs are kept claimed */
void		keep_begin(struct consumer *c, struct job **, int n);
void		keep_end(struct consumer *c);
void		*keep_main(void *);
void		keep_renew(struct consumer *, const char *owner,
		    struct job **, int n, char (*pids)[25], int npids,
		    const char *token);

/* reclaim.c */
void		*reclaim_main(void *);

/* sweep.c */
void		*sweep_main(void *);

/* main.c */
extern mongoc_client_pool_t	*worker_mongo;

#endif
