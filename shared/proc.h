/*
 * proc.h -- the skeleton of a program made of threads (the worker, the
 * notifier): one stop flag, the stop signals, threads started and
 * joined.
 *
 * main() calls proc_init() before it starts any thread, proc_start() for
 * each thread, then proc_wait(), which returns the signal once SIGTERM or
 * SIGINT has arrived, and proc_stop(), which returns once every thread
 * has seen the stop flag and has been joined.  Threads loop while
 * !stop_requested() and sleep only with stop_sleep_ms(), so a stop wakes
 * them at once; the one exception, a worker's consumer waiting for a
 * lock another consumer hands on (worker/handoff.c), looks every 5 ms.
 * Below everything else in shared/, it also keeps the clocks every
 * program reads: monotonic milliseconds for waits, and the one ISO 8601
 * printer for log lines, bodies and stored dates.
 */
#ifndef SHARED_PROC_H
#define SHARED_PROC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

void	proc_init(void);
void	proc_start(void *(*fn)(void *), void *arg);
int	proc_wait(void);
void	proc_stop(void);

/* A condition variable whose timed waits are on CLOCK_MONOTONIC. */
void	proc_cond_init(pthread_cond_t *);
/* Milliseconds on that clock, and such a time for a timed wait. */
int64_t	proc_now_ms(void);
void	proc_timespec(int64_t ms, struct timespec *);

/*
 * ms since the epoch as ISO 8601 UTC ("2026-11-25T14:42:14.123Z") into
 * buf; "" if len is too short (32 is enough).  Each thread keeps the
 * date of the last second it printed: log lines and status bodies ask
 * for the same second over and over.
 */
void	proc_iso_time(int64_t ms, char *buf, size_t len);

void	stop_request(void);
int	stop_requested(void);
void	stop_sleep_ms(long ms);

#endif
