/*
 * retry.c -- the notifier's retry policy (notify.h): when a failed send
 * is tried again, and when it is given up (parked, for an operator:
 * shopctl outbox, the console).
 *
 * The delay doubles per failed attempt from NOTIFY_BACKOFF_MS up to
 * NOTIFY_BACKOFF_MAX_MS, half of it random, so that the retries of many
 * notices spread out instead of arriving at a recovering receiver
 * together.  A target is retried for NOTIFY_RETRY_FOR seconds from its
 * first attempt, then parked.
 */
#include <stdint.h>

#include <sodium.h>

#include "../shared/config.h"
#include "notify.h"

/* The delay, ms, before the next attempt after attempts failures. */
int64_t
retry_backoff_ms(int64_t attempts)
{
	int64_t	d;
	int	i;

	d = cfg.notify_backoff_ms;
	for (i = 1; i < attempts && d < cfg.notify_backoff_max_ms; i++)
		d *= 2;
	if (d > cfg.notify_backoff_max_ms)
		d = cfg.notify_backoff_max_ms;
	/* Half fixed, half random: retries of many spread out. */
	return (d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2 + 1)));
}

/* Is a target first tried at from_ms past its retry period at now_ms? */
int
retry_over(int64_t from_ms, int64_t now_ms)
{
	return (now_ms - from_ms >= cfg.notify_retry_for * 1000);
}
