/*
 * stop.c -- the worker's one stop flag, and the only way its threads
 * sleep.
 *
 * SIGTERM and SIGINT are blocked in every thread; main() waits for them
 * with sigwait() and calls stop_request(), which wakes every sleeper at
 * once.  So no thread is ever more than one Redis or MongoDB call away
 * from noticing that the worker is stopping.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "worker.h"

static pthread_mutex_t	mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	cv;
static int		stopping;	/* guarded by mu; read atomically */
static pthread_once_t	once = PTHREAD_ONCE_INIT;

static void
init(void)
{
	pthread_condattr_t	a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &a);
	pthread_condattr_destroy(&a);
}

void
stop_request(void)
{
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

int
stop_requested(void)
{
	return (__atomic_load_n(&stopping, __ATOMIC_ACQUIRE));
}

/* Sleep ms milliseconds, or less if the worker is asked to stop. */
void
stop_sleep_ms(long ms)
{
	struct timespec	until;

	pthread_once(&once, init);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&mu);
	while (!stopping &&
	    pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&mu);
}
