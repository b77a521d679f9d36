/*
 * unit.c -- runs every TEST() linked into it, in registration order.
 *
 * The configuration is loaded first with APP_ENV=test and no .env, so
 * the tests see the documented defaults.  The last line is the summary
 * that `make test` reports: "unit: N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>

#include "../shared/config.h"
#include "unit.h"

static struct unit_test	*head, **tail = &head;
static int		 current_failed;

void
unit_register(struct unit_test *t)
{
	*tail = t;
	tail = &t->next;
}

void
unit_fail(const char *file, int line, const char *what)
{
	printf("    %s:%d: CHECK(%s) failed\n", file, line, what);
	current_failed = 1;
}

int
main(void)
{
	struct unit_test	*t;
	char			 err[512];
	int			 passed, failed;

	setenv("APP_ENV", "test", 1);
	setenv("JWT_SECRET", "unit-test-secret-unit-test-secret-0123", 1);
	setenv("ENV_FILE", "/dev/null", 1);
	if (config_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "unit: %s\n", err);
		return (1);
	}
	passed = failed = 0;
	for (t = head; t != NULL; t = t->next) {
		current_failed = 0;
		t->fn();
		printf("%s %s (%s)\n", current_failed ? "FAIL" : "ok  ",
		    t->name, t->file);
		if (current_failed)
			failed++;
		else
			passed++;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}
