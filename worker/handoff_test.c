/*
 * handoff_test.c -- a product's lock handed between two threads, and
 * every way a wait for it ends (handoff.c).
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../shared/proc.h"
#include "../tests/unit.h"
#include "handoff.h"

#define AGE	200	/* ms a chain of handoffs lasts here */

struct waiter {
	pthread_t	 thread;
	const char	*pid;
	int64_t		 for_ms;
	int		 ret;
	char		 token[40];
};

static int
never(void)
{
	return (0);
}

static int
always(void)
{
	return (1);
}

static void *
wait_main(void *arg)
{
	struct waiter	*w = arg;

	strcpy(w->token, "mine");
	w->ret = handoff_wait(w->pid, w->token, sizeof(w->token),
	    proc_now_ms() + w->for_ms, never);
	return (NULL);
}

/* Start a waiter for pid and return once it waits. */
static void
start_waiter(struct waiter *w, const char *pid, int64_t for_ms)
{
	int	i;

	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->for_ms = for_ms;
	pthread_create(&w->thread, NULL, wait_main, w);
	for (i = 0; i < 2000 && handoff_waiters(pid) == 0; i++)
		usleep(1000);
}

TEST(handoff_a_lock_not_held_here_is_taken_in_redis)
{
	char	token[40] = "mine";

	CHECK(handoff_wait("p-none", token, sizeof(token),
	    proc_now_ms() + 1000, never) == HANDOFF_NONE);
	CHECK(strcmp(token, "mine") == 0);
	/* Nobody holds it here: the holder releases it in Redis. */
	CHECK(handoff_give("p-none", "mine", AGE) == 0);
}

TEST(handoff_a_waiter_gets_the_lock_with_its_token)
{
	struct waiter	w;

	handoff_taken("p-hand", "theirs");
	start_waiter(&w, "p-hand", 5000);
	CHECK(handoff_waiters("p-hand") == 1);
	CHECK(handoff_give("p-hand", "theirs", AGE) == 1);
	pthread_join(w.thread, NULL);
	CHECK(w.ret == HANDOFF_TAKEN);
	CHECK(strcmp(w.token, "theirs") == 0);
	/* The new holder, with no one waiting, releases it in Redis. */
	CHECK(handoff_give("p-hand", "theirs", AGE) == 0);
	CHECK(handoff_wait("p-hand", w.token, sizeof(w.token),
	    proc_now_ms() + 1000, never) == HANDOFF_NONE);
}

TEST(handoff_only_the_holders_token_hands_it_on)
{
	struct waiter	w;

	handoff_taken("p-token", "theirs");
	start_waiter(&w, "p-token", 5000);
	CHECK(handoff_give("p-token", "other", AGE) == 0);
	CHECK(handoff_give("p-token", "theirs", AGE) == 1);
	pthread_join(w.thread, NULL);
	CHECK(w.ret == HANDOFF_TAKEN);
	handoff_give("p-token", "theirs", AGE);
}

TEST(handoff_a_chain_ends_in_redis_after_its_max_age)
{
	struct waiter	w;

	handoff_taken("p-old", "theirs");
	usleep((AGE + 20) * 1000);
	start_waiter(&w, "p-old", 5000);
	CHECK(handoff_give("p-old", "theirs", AGE) == 0);
	pthread_join(w.thread, NULL);
	CHECK(w.ret == HANDOFF_RELEASED);
	CHECK(strcmp(w.token, "mine") == 0);
}

TEST(handoff_a_wait_ends_at_its_deadline_or_a_stop)
{
	char	token[40] = "mine";
	int64_t	t0;

	handoff_taken("p-slow", "theirs");
	t0 = proc_now_ms();
	CHECK(handoff_wait("p-slow", token, sizeof(token), t0 + 30,
	    never) == HANDOFF_NONE);
	CHECK(proc_now_ms() - t0 >= 30);
	t0 = proc_now_ms();
	CHECK(handoff_wait("p-slow", token, sizeof(token), t0 + 5000,
	    always) == HANDOFF_NONE);
	CHECK(proc_now_ms() - t0 < 1000);
	CHECK(strcmp(token, "mine") == 0);
	CHECK(handoff_waiters("p-slow") == 0);
	CHECK(handoff_give("p-slow", "theirs", AGE) == 0);
}
