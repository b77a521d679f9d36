/*
 * handoff.c -- a product's lock handed from one consumer of this process
 * to the next without going through Redis.
 *
 * The orders of a hot product run one transaction at a time, each under
 * the product's lock (lock.c).  Between two transactions the lock went
 * through Redis: the holder's release, then a waiter's next poll and its
 * take, each queued behind other consumers' batch calls -- a millisecond
 * or more on the product's critical path, against 6-8 ms for a
 * transaction of 64 orders.  When a consumer of this process already
 * waits for the same product, the holder hands the lock on instead: it
 * stays taken in Redis with the same token, and the waiter goes on at
 * once.
 *
 * A chain of handoffs ends max_age ms after the lock was taken from
 * Redis (lock.c: HANDOFF_MS, at most a quarter of LOCK_TTL_MS, so that a
 * lock handed on keeps most of its time): then it is released there,
 * and this process's waiters let two poll periods pass before they try
 * Redis, so that consumers of other processes, polling it, get their
 * turn.  Only single-product locks are handed on: a batch of one hot
 * product is what queues up.
 *
 * A waiter sleeps in slices of SLICE_MS, so that a stop is noticed
 * within one slice (proc.c's sleep only wakes its own sleepers).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../shared/proc.h"
#include "handoff.h"

#define SLOTS		16
#define SLICE_MS	5

struct slot {
	char	pid[25];	/* "": free */
	char	token[40];	/* the Redis lock's, while held here */
	int	held;		/* by a consumer of this process */
	int	waiting;	/* consumers waiting here for it */
	int	handed;		/* handed on, not picked up yet */
	int64_t	since;		/* when it was taken from Redis */
};

static struct slot	slots[SLOTS];
static pthread_mutex_t	mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	cv;
static pthread_once_t	once = PTHREAD_ONCE_INIT;
static long		handed_total;	/* guarded by mu */

static void
init(void)
{
	proc_cond_init(&cv);
}

/* pid's slot, or a free one when add; NULL if none.  Under mu. */
static struct slot *
slot_of(const char *pid, int add)
{
	struct slot	*free_slot = NULL;
	int		 i;

	for (i = 0; i < SLOTS; i++) {
		if (strcmp(slots[i].pid, pid) == 0)
			return (&slots[i]);
		if (slots[i].pid[0] == '\0' && free_slot == NULL)
			free_slot = &slots[i];
	}
	if (!add || free_slot == NULL)
		return (NULL);
	memset(free_slot, 0, sizeof(*free_slot));
	snprintf(free_slot->pid, sizeof(free_slot->pid), "%s", pid);
	return (free_slot);
}

/* Free s once nobody holds, waits for or is handed its lock.  Under mu. */
static void
slot_tidy(struct slot *s)
{
	if (!s->held && s->waiting == 0 && !s->handed)
		s->pid[0] = '\0';
}

static void
wait_slice(int64_t deadline)
{
	struct timespec	ts;
	int64_t		until;

	until = proc_now_ms() + SLICE_MS;
	if (until > deadline)
		until = deadline;
	proc_timespec(until, &ts);
	pthread_cond_timedwait(&cv, &mu, &ts);
}

int
handoff_wait(const char *pid, char *token, size_t len, int64_t deadline,
    int (*stopping)(void))
{
	struct slot	*s;
	int		 ret;

	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	if ((s = slot_of(pid, 0)) == NULL || !s->held) {
		pthread_mutex_unlock(&mu);
		return (HANDOFF_NONE);
	}
	s->waiting++;
	while (s->held && !s->handed && !stopping() &&
	    proc_now_ms() < deadline)
		wait_slice(deadline);
	s->waiting--;
	if (s->handed) {
		s->handed = 0;
		snprintf(token, len, "%s", s->token);
		ret = HANDOFF_TAKEN;
	} else
		ret = s->held ? HANDOFF_NONE : HANDOFF_RELEASED;
	slot_tidy(s);
	pthread_mutex_unlock(&mu);
	return (ret);
}

void
handoff_taken(const char *pid, const char *token)
{
	struct slot	*s;

	pthread_mutex_lock(&mu);
	if ((s = slot_of(pid, 1)) != NULL) {
		snprintf(s->token, sizeof(s->token), "%s", token);
		s->held = 1;
		s->handed = 0;
		s->since = proc_now_ms();
	}
	pthread_mutex_unlock(&mu);
}

int
handoff_give(const char *pid, const char *token, int64_t max_age)
{
	struct slot	*s;
	int		 given;

	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	given = 0;
	if ((s = slot_of(pid, 0)) != NULL && s->held &&
	    strcmp(s->token, token) == 0) {
		if (s->waiting > 0 &&
		    proc_now_ms() - s->since < max_age) {
			s->handed = 1;
			given = 1;
			handed_total++;
		} else
			s->held = 0;
		pthread_cond_broadcast(&cv);
		slot_tidy(s);
	}
	pthread_mutex_unlock(&mu);
	return (given);
}

int
handoff_waiters(const char *pid)
{
	struct slot	*s;
	int		 n;

	pthread_mutex_lock(&mu);
	n = (s = slot_of(pid, 0)) != NULL ? s->waiting : 0;
	pthread_mutex_unlock(&mu);
	return (n);
}

long
handoff_count(void)
{
	long	n;

	pthread_mutex_lock(&mu);
	n = handed_total;
	pthread_mutex_unlock(&mu);
	return (n);
}
