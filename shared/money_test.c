/*
 * money_test.c -- decimal prices in, exact cents out.
 */
#include <stdlib.h>
#include <string.h>

#include "../tests/unit.h"
#include "json.h"
#include "money.h"

static enum err
parse(const char *text, int64_t *cents)
{
	json_t		*v;
	enum err	 e;

	v = json_loads(text, JSON_DECODE_ANY, NULL);
	e = money_from_json(v, money_max_cents(), cents);
	json_decref(v);
	return (e);
}

TEST(money_accepts_two_places)
{
	int64_t	c;

	CHECK(parse("19.99", &c) == ERR_NONE && c == 1999);
	CHECK(parse("0.1", &c) == ERR_NONE && c == 10);
	CHECK(parse("0.29", &c) == ERR_NONE && c == 29);
	CHECK(parse("20", &c) == ERR_NONE && c == 2000);
	CHECK(parse("20.50", &c) == ERR_NONE && c == 2050);
	CHECK(parse("0", &c) == ERR_NONE && c == 0);
	CHECK(parse("999999.99", &c) == ERR_NONE && c == 99999999);
	CHECK(parse("1000000", &c) == ERR_NONE && c == 100000000);
	CHECK(parse("1e2", &c) == ERR_NONE && c == 10000);
}

TEST(money_refuses_bad_prices)
{
	int64_t	c;

	CHECK(parse("19.999", &c) == ERR_PRICE);
	/* Once stored as 19.99 or 0: the text's places count, not the
	 * double's distance from a cent. */
	CHECK(parse("19.990000001", &c) == ERR_PRICE);
	CHECK(parse("1e-9", &c) == ERR_PRICE);
	CHECK(parse("-0.0", &c) == ERR_PRICE);
	CHECK(parse("4.878795380330904e-25", &c) == ERR_PRICE);
	CHECK(parse("0.000", &c) == ERR_NONE && c == 0);
	CHECK(parse("1.10", &c) == ERR_NONE && c == 110);
	CHECK(parse("0.07", &c) == ERR_NONE && c == 7);
	CHECK(parse("123456.78", &c) == ERR_NONE && c == 12345678);
	CHECK(parse("0.001", &c) == ERR_PRICE);
	CHECK(parse("-1", &c) == ERR_PRICE);
	CHECK(parse("-0.01", &c) == ERR_PRICE);
	CHECK(parse("1000000.01", &c) == ERR_PRICE);
	CHECK(parse("1e300", &c) == ERR_PRICE);
	CHECK(parse("\"19.99\"", &c) == ERR_WRONG_TYPE);
	CHECK(parse("true", &c) == ERR_WRONG_TYPE);
	CHECK(parse("null", &c) == ERR_WRONG_TYPE);
}

TEST(money_prints_exact_cents)
{
	json_t	*o;
	char	*s, buf[32];

	o = json_pack("{s:o, s:o, s:o, s:o}", "a", money_to_json(1999),
	    "b", money_to_json(2000), "c", money_to_json(10),
	    "d", money_to_json(99999999));
	s = json_dump_body(o);
	CHECK(strcmp(s, "{\"a\":19.99,\"b\":20,\"c\":0.1,\"d\":999999.99}")
	    == 0);
	free(s);
	json_decref(o);
	money_format(1999, buf, sizeof(buf));
	CHECK(strcmp(buf, "19.99") == 0);
	money_format(5, buf, sizeof(buf));
	CHECK(strcmp(buf, "0.05") == 0);
}

TEST(money_accepts_every_cent)
{
	int64_t	c, want;
	char	text[32];
	int	bad;

	for (want = 0, bad = 0; want <= 100000000; want += want < 300000 ?
	    1 : 997) {
		snprintf(text, sizeof(text), "%lld.%02lld",
		    (long long)(want / 100), (long long)(want % 100));
		if (parse(text, &c) != ERR_NONE || c != want)
			bad++;
	}
	CHECK(bad == 0);
}
