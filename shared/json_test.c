/*
 * json_test.c -- bodies, field types, unknown fields.
 */
#include <string.h>

#include "../tests/unit.h"
#include "json.h"

TEST(body_must_be_an_object)
{
	json_t	*v;
	char	 where[160];

	CHECK(json_parse_body("", 0, &v, NULL, 0) == ERR_NONE &&
	    json_is_object(v));
	json_decref(v);
	CHECK(json_parse_body("{\"a\":1}", 7, &v, NULL, 0) == ERR_NONE);
	json_decref(v);
	CHECK(json_parse_body("[1]", 3, &v, NULL, 0) == ERR_NOT_OBJECT &&
	    v == NULL);
	CHECK(json_parse_body("{\"a\":", 5, &v, where, sizeof(where)) ==
	    ERR_BAD_JSON && strncmp(where, "line 1, column 5", 16) == 0);
	CHECK(json_parse_body("{\"a\":1,\"a\":2}", 13, &v, NULL, 0) ==
	    ERR_JSON_DUPLICATE_KEY);
	CHECK(json_parse_body("{\"a\":\"\\u0000\"}", 14, &v, NULL, 0) ==
	    ERR_JSON_NUL);
	CHECK(json_parse_body("{\"q\":99999999999999999999999}", 30, &v,
	    NULL, 0) == ERR_JSON_NUMBER);
}

TEST(field_types_are_checked)
{
	json_t		*o;
	const char	*s;
	json_int_t	 n;

	o = json_loads("{\"email\":{\"$gt\":\"\"},\"q\":2.0,\"n\":5,"
	    "\"s\":\"x\",\"z\":null,\"f\":1.5}", 0, NULL);
	CHECK(json_field_string(o, "email", 1, &s) == ERR_WRONG_TYPE);
	CHECK(json_field_string(o, "missing", 1, &s) == ERR_MISSING_FIELD);
	CHECK(json_field_string(o, "missing", 0, &s) == ERR_NONE && s == NULL);
	CHECK(json_field_string(o, "s", 1, &s) == ERR_NONE &&
	    strcmp(s, "x") == 0);
	CHECK(json_field_string(o, "z", 1, &s) == ERR_MISSING_FIELD);
	CHECK(json_field_string(o, "z", 0, &s) == ERR_WRONG_TYPE);
	CHECK(json_field_int(o, "z", 0, 0, 10, &n) == ERR_WRONG_TYPE);
	CHECK(json_field_int(o, "q", 1, 0, 10, &n) == ERR_NONE && n == 2);
	CHECK(json_field_int(o, "f", 1, 0, 10, &n) == ERR_WRONG_TYPE);
	CHECK(json_field_int(o, "n", 1, 0, 10, &n) == ERR_NONE && n == 5);
	CHECK(json_field_int(o, "n", 1, 6, 10, &n) == ERR_OUT_OF_RANGE);
	json_decref(o);
}

TEST(unknown_fields_are_named)
{
	static const char *const	 allowed[] = { "a", "b", NULL };
	json_t				*o;
	const char			*bad;

	o = json_loads("{\"a\":1,\"c\":2}", 0, NULL);
	CHECK(json_only_fields(o, allowed, &bad) == ERR_UNKNOWN_FIELD &&
	    strcmp(bad, "c") == 0);
	json_decref(o);
	o = json_loads("{\"b\":1}", 0, NULL);
	CHECK(json_only_fields(o, allowed, &bad) == ERR_NONE);
	json_decref(o);
}

TEST(plain_strings_are_printable_ascii_without_quotes_or_backslashes)
{
	CHECK(json_plain("65f0c0ffee0123456789abcd"));
	CHECK(json_plain("2026-12-04T06:00:00.123Z"));
	CHECK(json_plain(""));
	CHECK(!json_plain("a\"b"));
	CHECK(!json_plain("a\\b"));
	CHECK(!json_plain("a\nb"));
	CHECK(!json_plain("caf\xc3\xa9"));
	CHECK(!json_plain("\x7f"));
}
