/*
 * queue.c -- a queued checkout's place in line and its expected wait,
 * for GET /api/checkout/:id and the WebSocket (docs/ARCHITECTURE.md,
 * "Queue position").
 *
 * Each checkout's status record keeps its seq: its place among all the
 * stream's XADDs (shared/lua/protocol.lua counts them in checkout:seq).  Once a
 * second each API process asks Redis where the workers have read to, in
 * the same terms (queue_state: XINFO, O(1)), and keeps the drain rate
 * from the last reads.  A queued checkout's position is then its seq
 * minus that, and etaMs the position over the rate: nothing is asked
 * per checkout, and the submit path only counts its XADD.  The figure is
 * as old as the last sample (at most a second): approximate, as the
 * contract allows.
 *
 * API: queue_init() starts the sampling; queue_position() answers for a
 * seq; queue_body() adds position and etaMs to a queued status body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "../../shared/protocol.h"
#include "../../shared/redis.h"

#define SAMPLE_MS	1000

static struct {
	int		 known;		/* a sample has arrived */
	long long	 read;		/* seq the workers have read to */
	uint64_t	 at;		/* kore_time_ms() of that sample */
	double		 rate;		/* jobs read per second, smoothed */
	int		 asking;	/* a sample is on its way */
} q;

static void
sampled(struct call *c)
{
	json_t		*r = c->out;
	long long	 read;
	uint64_t	 now;
	double		 inst;

	q.asking = 0;
	if (c->err != ERR_NONE || !json_is_array(r) ||
	    !json_is_integer(json_array_get(r, 0)))
		return;
	read = json_integer_value(json_array_get(r, 0));
	now = kore_time_ms();
	if (q.known && now > q.at && read >= q.read) {
		inst = (double)(read - q.read) * 1000.0 / (double)(now - q.at);
		/* A second with nothing read is no drain at all: the rate
		 * (the console's drained/s, the ETA) says 0 at once rather
		 * than decaying for seconds after the queue emptied. */
		q.rate = q.rate == 0 || inst == 0 ? inst :
		    0.5 * q.rate + 0.5 * inst;
	}
	q.read = read;
	q.at = now;
	q.known = 1;
}

static void
sample(void *arg, uint64_t now)
{
	struct call	*c;

	(void)arg;
	(void)now;
	if (q.asking || !aredis_up())
		return;
	c = call_new(NULL, NULL);
	c->on_done = sampled;
	q.asking = 1;
	if (aredis_cmd(c, "FCALL %s 2 %s %s %s", FN_QUEUE_STATE, RK_STREAM,
	    RK_SEQ, RK_GROUP) != ERR_NONE) {
		q.asking = 0;
		call_release(c);
	}
}

void
queue_init(void)
{
	kore_timer_add(sample, SAMPLE_MS, NULL, 0);
}

/* Jobs the workers take per second, smoothed over the last seconds. */
double
queue_rate(void)
{
	return (q.rate);
}

int
queue_position(long long seq, long long *position, long long *eta_ms)
{
	if (!q.known || seq <= 0)
		return (-1);
	*position = seq - q.read - 1;
	if (*position < 0)
		*position = 0;
	*eta_ms = q.rate > 0.5 ? (long long)((double)(*position + 1) *
	    1000.0 / q.rate) : -1;
	return (0);
}

char *
queue_body(const char *body, long long position, long long eta_ms)
{
	size_t	 len;
	char	*out;

	len = strlen(body);
	if (len == 0 || body[len - 1] != '}' ||
	    (out = malloc(len + 64)) == NULL)
		return (NULL);
	memcpy(out, body, len - 1);
	if (eta_ms >= 0)
		snprintf(out + len - 1, 64, ",\"position\":%lld,\"etaMs\":%lld}",
		    position, eta_ms);
	else
		snprintf(out + len - 1, 64, ",\"position\":%lld}", position);
	return (out);
}
