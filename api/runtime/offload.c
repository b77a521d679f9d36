/*
 * offload.c -- blocking work (MongoDB, argon2id) on threads, never on
 * kore's event loop.
 *
 * API: offload_init() starts the pools in each kore worker, after the
 * fork; offload_submit() queues a call whose run function executes on a
 * pool thread with that thread's own MongoDB client.  When run returns,
 * the call goes on the done list and an eventfd wakes the event loop,
 * which finishes the call there (call_finish), so the request is only
 * ever touched by the loop.
 *
 * Two pools keep slow password hashing from starving quick queries: DB
 * (DB_THREADS) and HASH (HASH_THREADS).  kore's own tasks were not used:
 * each costs a socketpair, and kore aborts the worker when a channel
 * write fails; ten thousand waiting checkouts would need twenty thousand
 * descriptors.  A queue longer than its limit answers 503 at once:
 * QUEUE_LIMIT calls for the DB pool, HASH_QUEUE_MAX for the HASH pool
 * (each waiting hash is tens of milliseconds of a thread: a few dozen
 * are seconds of work).
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "../../shared/config.h"
#include "../../shared/log.h"

#define QUEUE_LIMIT	20000

TAILQ_HEAD(callq, call);

struct pool {
	struct kore_event	 evt;		/* first: kore's epoll data */
	int			 efd;		/* eventfd: calls are done */
	const char		*name;
	pthread_t		*tids;		/* the pool's threads */
	long			 nthreads;
	int			 stopping;	/* threads exit when idle */
	pthread_mutex_t		 lock;		/* guards the fields below */
	pthread_cond_t		 cond;		/* signalled on a new call */
	struct callq		 todo;		/* queued, oldest first */
	struct callq		 done;		/* finished, not yet reaped */
	int			 queued;	/* length of todo */
	int			 limit;		/* then ERR_OVERLOADED */
	mongoc_client_pool_t	*mongo;		/* shared, thread-safe */
};

static struct pool	pools[OFFLOAD__COUNT];

static void	*thread_main(void *);
static void	reap(void *, int);

static int
pool_start(struct pool *p, const char *name, long nthreads,
    mongoc_client_pool_t *mongo, char *err, size_t errlen)
{
	long	i;

	p->name = name;
	p->mongo = mongo;
	p->limit = strcmp(name, "hash") == 0 ? (int)cfg.hash_queue_max :
	    QUEUE_LIMIT;
	TAILQ_INIT(&p->todo);
	TAILQ_INIT(&p->done);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return (-1);
	}
	p->evt.type = KORE_TYPE_TASK;
	p->evt.handle = reap;
	kore_platform_event_level_read(p->efd, p);
	if ((p->tids = calloc((size_t)nthreads, sizeof(*p->tids))) == NULL) {
		snprintf(err, errlen, "offload: out of memory");
		return (-1);
	}
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&p->tids[i], NULL, thread_main, p) != 0) {
			snprintf(err, errlen, "pthread_create: %s",
			    strerror(errno));
			return (-1);
		}
		p->nthreads++;
	}
	return (0);
}

int
offload_init(mongoc_client_pool_t *mongo, char *err, size_t errlen)
{
	if (pool_start(&pools[OFFLOAD_DB], "db", cfg.db_threads, mongo,
	    err, errlen) == -1)
		return (-1);
	return (pool_start(&pools[OFFLOAD_HASH], "hash", cfg.hash_threads,
	    mongo, err, errlen));
}

enum err
offload_submit(enum offload_pool which, struct call *c,
    void (*run)(struct call *, mongoc_client_t *))
{
	struct pool	*p;

	p = &pools[which];
	pthread_mutex_lock(&p->lock);
	if (p->queued >= p->limit) {
		pthread_mutex_unlock(&p->lock);
		return (ERR_OVERLOADED);
	}
	c->run = run;
	c->busy = 1;
	TAILQ_INSERT_TAIL(&p->todo, c, list);
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return (ERR_NONE);
}

static void *
thread_main(void *arg)
{
	struct pool	*p;
	struct call	*c;
	mongoc_client_t	*client;
	uint64_t	 one;

	p = arg;
	one = 1;
	client = mongoc_client_pool_pop(p->mongo);
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while ((c = TAILQ_FIRST(&p->todo)) == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (c == NULL) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		TAILQ_REMOVE(&p->todo, c, list);
		p->queued--;
		pthread_mutex_unlock(&p->lock);

		c->run(c, client);

		pthread_mutex_lock(&p->lock);
		TAILQ_INSERT_TAIL(&p->done, c, list);
		pthread_mutex_unlock(&p->lock);
		if (write(p->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_error("offload: eventfd write failed",
			    "{s:s, s:s}", "pool", p->name,
			    "error", strerror(errno));
	}
	mongoc_client_pool_push(p->mongo, client);
	return (NULL);
}

/*
 * Stop every pool's threads once they have finished what is queued,
 * and wait for them.  kore unloads the module after the worker's
 * teardown hook: no thread of ours may still be running then.
 */
void
offload_shutdown(void)
{
	struct pool	*p;
	long		 i;
	int		 n;

	for (n = 0; n < OFFLOAD__COUNT; n++) {
		p = &pools[n];
		pthread_mutex_lock(&p->lock);
		p->stopping = 1;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		for (i = 0; i < p->nthreads; i++)
			pthread_join(p->tids[i], NULL);
		p->nthreads = 0;
	}
}

/* On the event loop: finish every call the threads have completed. */
static void
reap(void *arg, int error)
{
	struct pool	*p;
	struct callq	 done;
	struct call	*c;
	uint64_t	 n;

	(void)error;
	p = arg;
	p->evt.flags &= ~KORE_EVENT_READ;
	if (read(p->efd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_error("offload: eventfd read failed", "{s:s}", "error",
		    strerror(errno));
	TAILQ_INIT(&done);
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&done, &p->done, list);
	pthread_mutex_unlock(&p->lock);
	while ((c = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, c, list);
		call_finish(c);
	}
}
