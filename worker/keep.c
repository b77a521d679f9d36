/*
 * keep.c -- claims and user locks kept alive while the database is slow.
 *
 * A batch transaction may wait on the database for longer than
 * RECLAIM_IDLE_MS or LOCK_TTL_MS: another transaction holds a product
 * (SecantusDB makes the writer wait), or the database is slow to answer.
 * Between the transaction's runs its consumer renews them itself
 * (batch.c); while one run waits, this thread does, every third of the
 * shorter of the two, for every consumer whose batch is in the database.
 * So no job is delivered to a second worker, and no user's lock lapses,
 * while its first worker still works on it.  The renewals go on its own
 * Redis connection, in the name of the consumer that holds the jobs.
 */
#include <pthread.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/protocol.h"
#include "../shared/redis.h"
#include "worker.h"

#define KEEP_SLOTS	64

/*
 * Renew the claims of the jobs (in owner's name) and their users' locks,
 * and the npids product locks held with token, on c's connection: they
 * are being worked on, however long the database takes, so no other
 * worker takes a job or a user meanwhile.
 */
void
keep_renew(struct consumer *c, const char *owner, struct job **jobs, int n,
    char (*pids)[25], int npids, const char *token)
{
	struct rargs	a;
	int		i;

	rargs_fcall(&a, FN_LOCKS_RENEW, 0);
	rargs_addf(&a, "%ld", cfg.lock_ttl_ms);
	for (i = 0; i < n; i++) {
		if (!jobs[i]->locked)
			continue;
		rargs_addf(&a, "%s%s", RK_LOCK, jobs[i]->user);
		rargs_add(&a, jobs[i]->token);
	}
	for (i = 0; token != NULL && i < npids; i++) {
		rargs_addf(&a, "%s%s", RK_LOCK_PRODUCT, pids[i]);
		rargs_add(&a, token);
	}
	freeReplyObject(rconn_argv(&c->rc, &a));
	rargs_free(&a);

	rargs_init(&a, "XCLAIM");
	rargs_add(&a, RK_STREAM);
	rargs_add(&a, RK_GROUP);
	rargs_add(&a, owner);
	rargs_add(&a, "0");
	for (i = 0; i < n; i++)
		rargs_add(&a, jobs[i]->msgid);
	rargs_add(&a, "JUSTID");
	freeReplyObject(rconn_argv(&c->rc, &a));
	rargs_free(&a);
}

static struct {
	pthread_mutex_t	 mu;
	struct consumer	*owner;		/* NULL: free */
	struct job	**jobs;		/* NULL: not in the database */
	int		 n;
} slots[KEEP_SLOTS];
static pthread_mutex_t	slots_mu = PTHREAD_MUTEX_INITIALIZER;

/* The slot of c, taken on first use; -1 if all are taken. */
static int
slot_of(struct consumer *c)
{
	int	i, free_slot;

	pthread_mutex_lock(&slots_mu);
	free_slot = -1;
	for (i = 0; i < KEEP_SLOTS; i++) {
		if (slots[i].owner == c)
			break;
		if (slots[i].owner == NULL && free_slot == -1)
			free_slot = i;
	}
	if (i == KEEP_SLOTS && (i = free_slot) != -1) {
		pthread_mutex_init(&slots[i].mu, NULL);
		slots[i].owner = c;
	}
	pthread_mutex_unlock(&slots_mu);
	return (i);
}

void
keep_begin(struct consumer *c, struct job **jobs, int n)
{
	int	i;

	if ((i = slot_of(c)) == -1)
		return;
	pthread_mutex_lock(&slots[i].mu);
	slots[i].jobs = jobs;
	slots[i].n = n;
	pthread_mutex_unlock(&slots[i].mu);
}

void
keep_end(struct consumer *c)
{
	int	i;

	if ((i = slot_of(c)) == -1)
		return;
	pthread_mutex_lock(&slots[i].mu);
	slots[i].jobs = NULL;
	slots[i].n = 0;
	pthread_mutex_unlock(&slots[i].mu);
}

void *
keep_main(void *arg)
{
	struct consumer	 conn;
	long		 every;
	int		 i;

	memset(&conn, 0, sizeof(conn));
	snprintf(conn.rc.name, sizeof(conn.rc.name), "%.70s-keep",
	    (const char *)arg);
	every = cfg.lock_ttl_ms < cfg.reclaim_idle_ms ? cfg.lock_ttl_ms :
	    cfg.reclaim_idle_ms;
	every = every / 3 > 20 ? every / 3 : 20;
	while (!stop_requested()) {
		stop_sleep_ms(every);
		for (i = 0; i < KEEP_SLOTS; i++) {
			if (slots[i].owner == NULL)
				continue;
			pthread_mutex_lock(&slots[i].mu);
			if (slots[i].jobs != NULL)
				keep_renew(&conn, slots[i].owner->rc.name,
				    slots[i].jobs, slots[i].n, NULL, 0, NULL);
			pthread_mutex_unlock(&slots[i].mu);
		}
	}
	rconn_drop(&conn.rc);
	return (NULL);
}
