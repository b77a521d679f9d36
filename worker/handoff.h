/*
 * handoff.h -- a product's lock handed between consumers of one process
 * (handoff.c).
 */
#ifndef WORKER_HANDOFF_H
#define WORKER_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

/* handoff_wait's answers. */
#define HANDOFF_NONE		0	/* not held here: take it in Redis */
#define HANDOFF_TAKEN		1	/* handed to us: token is its own */
#define HANDOFF_RELEASED	2	/* released in Redis while we waited:
					   let others try first */

/*
 * Wait, until deadline (proc_now_ms()) or stopping(), for the lock of
 * product pid while a consumer of this process holds it.
 */
int	handoff_wait(const char *pid, char *token, size_t len,
	    int64_t deadline, int (*stopping)(void));
/* The lock of pid was taken in Redis with token. */
void	handoff_taken(const char *pid, const char *token);
/*
 * Hand the lock of pid on to a waiter, if it was taken from Redis less
 * than max_age ms ago: 1, or 0: release it in Redis.
 */
int	handoff_give(const char *pid, const char *token, int64_t max_age);
/* Consumers waiting here for the lock of pid (for the tests). */
int	handoff_waiters(const char *pid);
/* Handoffs so far, for the heartbeat. */
long	handoff_count(void);

#endif
