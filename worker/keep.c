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
#include "worker.h"

#define KEEP_SLOTS	64

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
	snprintf(conn.rc.name, sizeof(conn.rc.name), "%.70s-keep", (const char *)arg);
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
				batch_renew(&conn, slots[i].owner->rc.name,
				    slots[i].jobs, slots[i].n);
			pthread_mutex_unlock(&slots[i].mu);
		}
	}
	rconn_drop(&conn.rc);
	return (NULL);
}
