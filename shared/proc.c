/*
 * proc.c -- a threaded program's one stop flag, the only way its threads
 * sleep, and its start and stop (proc.h).
 *
 * SIGTERM and SIGINT are blocked in every thread (they inherit the mask
 * proc_init() sets); proc_wait() takes them with sigwait(), and
 * proc_stop() sets the flag, which wakes every sleeper at once, and joins
 * the threads.  So no thread is
 * ever more than one Redis or MongoDB call away from noticing that the
 * program is stopping.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proc.h"

#define THREADS_MAX	300	/* 256 consumers and the worker's others */

static sigset_t		stop_signals;
static pthread_t	threads[THREADS_MAX];
static int		nthreads;

static pthread_mutex_t	mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	cv;
static int		stopping;	/* guarded by mu; read atomically */
static pthread_once_t	once = PTHREAD_ONCE_INIT;

void
proc_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t	a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int64_t
proc_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
proc_timespec(int64_t ms, struct timespec *ts)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (ms % 1000) * 1000000;
}

void
proc_iso_time(int64_t ms, char *buf, size_t len)
{
	static __thread int64_t	last = INT64_MIN;
	static __thread char	date[64];
	struct tm		tm;
	time_t			t;
	int64_t			sec;
	size_t			n;
	int			milli;

	sec = ms / 1000 - (ms % 1000 < 0);
	milli = (int)(ms - sec * 1000);
	if (sec != last) {
		t = (time_t)sec;
		gmtime_r(&t, &tm);
		snprintf(date, sizeof(date), "%04d-%02d-%02dT%02d:%02d:%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		last = sec;
	}
	n = strlen(date);
	if (n + 6 > len) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	memcpy(buf, date, n);
	buf[n] = '.';
	buf[n + 1] = (char)('0' + milli / 100);
	buf[n + 2] = (char)('0' + milli / 10 % 10);
	buf[n + 3] = (char)('0' + milli % 10);
	buf[n + 4] = 'Z';
	buf[n + 5] = '\0';
}

static void
init(void)
{
	proc_cond_init(&cv);
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

/* Sleep ms milliseconds, or less if the program is asked to stop. */
void
stop_sleep_ms(long ms)
{
	struct timespec	until;

	pthread_once(&once, init);
	proc_timespec(proc_now_ms() + ms, &until);
	pthread_mutex_lock(&mu);
	while (!stopping &&
	    pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&mu);
}

/* Block the stop signals in this thread and every thread it starts. */
void
proc_init(void)
{
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* A thread running fn(arg), joined by proc_stop(); a program that
 * cannot have all its threads does not run at all. */
void
proc_start(void *(*fn)(void *), void *arg)
{
	if (nthreads == THREADS_MAX ||
	    pthread_create(&threads[nthreads], NULL, fn, arg) != 0) {
		fprintf(stderr, "cannot start a thread\n");
		exit(1);
	}
	nthreads++;
}

/* Wait for SIGTERM or SIGINT; the signal. */
int
proc_wait(void)
{
	int	sig;

	while (sigwait(&stop_signals, &sig) != 0)
		;
	return (sig);
}

/* Stop every thread proc_start() started, and join it. */
void
proc_stop(void)
{
	int	i;

	stop_request();
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
}
