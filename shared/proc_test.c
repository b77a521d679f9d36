/*
 * proc_test.c -- times printed as ISO 8601 UTC.
 */
#include <string.h>

#include "../tests/unit.h"
#include "proc.h"

/* proc_iso_time(ms) is want. */
static int
iso_is(int64_t ms, const char *want)
{
	char	buf[32];

	proc_iso_time(ms, buf, sizeof(buf));
	return (strcmp(buf, want) == 0);
}

TEST(iso_time_prints_utc_with_milliseconds)
{
	char	small[8];

	CHECK(iso_is(0, "1970-01-01T00:00:00.000Z"));
	CHECK(iso_is(1764892800123LL, "2025-12-05T00:00:00.123Z"));
	/* The same second again (its date kept), then another and back. */
	CHECK(iso_is(1764892800999LL, "2025-12-05T00:00:00.999Z"));
	CHECK(iso_is(1764893700005LL, "2025-12-05T00:15:00.005Z"));
	CHECK(iso_is(1764892800050LL, "2025-12-05T00:00:00.050Z"));
	CHECK(iso_is(-1, "1969-12-31T23:59:59.999Z"));
	proc_iso_time(0, small, sizeof(small));
	CHECK(small[0] == '\0');
}
