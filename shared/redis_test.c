/*
 * redis_test.c -- command arguments (rargs) in their one buffer.
 */
#include <stdio.h>
#include <string.h>

#include "../tests/unit.h"
#include "redis.h"

TEST(arguments_survive_their_buffer_growing)
{
	struct rargs	a;
	char		want[64], big[2000];
	int		i, ok;

	rargs_fcall(&a, "checkout_submit", 7);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 300; i++) {
		if (i == 150)
			rargs_add(&a, big);
		else if (i % 2 == 0)
			rargs_addf(&a, "%s%d", "checkout:", i);
		else
			rargs_add(&a, i == 1 ? "" : "arg");
	}
	CHECK(a.n == 303);
	CHECK(strcmp(a.v[0], "FCALL") == 0 && a.len[0] == 5);
	CHECK(strcmp(a.v[2], "7") == 0 && a.len[2] == 1);
	CHECK(a.len[4] == 0 && a.v[4][0] == '\0');
	CHECK(a.len[153] == sizeof(big) - 1 && a.v[153][1998] == 'x');
	for (i = 0, ok = 1; i < 300; i++) {
		if (i == 150)
			continue;
		if (i % 2 == 0)
			snprintf(want, sizeof(want), "checkout:%d", i);
		else
			snprintf(want, sizeof(want), "%s", i == 1 ? "" : "arg");
		ok &= strcmp(a.v[i + 3], want) == 0 &&
		    a.len[i + 3] == strlen(want);
	}
	CHECK(ok);
	/* A formatted argument longer than the room left. */
	rargs_addf(&a, "%s-%s", big, big);
	CHECK(a.len[303] == 2 * (sizeof(big) - 1) + 1 &&
	    a.v[303][1999] == '-' && a.v[303][3998] == 'x');
	rargs_free(&a);
	CHECK(a.n == 0 && a.v == NULL);
}
