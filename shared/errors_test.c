/*
 * errors_test.c -- every enum err has a row: a status and a code.
 */
#include <string.h>

#include "../tests/unit.h"
#include "errors.h"

TEST(every_error_has_a_row)
{
	int	e;

	for (e = ERR_NONE + 1; e < ERR__COUNT; e++) {
		CHECK(err_info((enum err)e)->code != NULL);
		CHECK(err_info((enum err)e)->status >= 400);
		CHECK(err_info((enum err)e)->message != NULL);
		if (e != ERR_INTERNAL)
			CHECK(err_info((enum err)e) != err_info(ERR_INTERNAL));
	}
	CHECK(strcmp(err_info(ERR__COUNT)->code, "internal") == 0);
}
