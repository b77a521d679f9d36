/*
 * log_test.c -- a log line is one JSON object: its own fields, then the
 * extra ones, escaped as JSON needs.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../tests/unit.h"
#include "log.h"

/* The lines log_event() writes while fn runs, read back from stderr. */
static size_t
captured(void (*fn)(void), char *buf, size_t len)
{
	int	fds[2], saved;
	ssize_t	n;

	if (pipe(fds) == -1 || (saved = dup(STDERR_FILENO)) == -1)
		return (0);
	dup2(fds[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], buf, len - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return (n > 0 ? (size_t)n : 0);
}

/* The two lines fn writes, as JSON objects (new); -1 if they are not. */
static int
two_objects(void (*fn)(void), json_t **a, json_t **b)
{
	char	buf[4096], *nl;

	*a = *b = NULL;
	if (captured(fn, buf, sizeof(buf)) == 0 ||
	    (nl = strchr(buf, '\n')) == NULL ||
	    strchr(nl + 1, '\n') != buf + strlen(buf) - 1)
		return (-1);
	*a = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
	*b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
	if (*a != NULL && *b != NULL)
		return (0);
	json_decref(*a);
	json_decref(*b);
	return (-1);
}

static void
two_lines(void)
{
	log_init("unit");
	log_warn("a \"quoted\"\nmessage", "{s:s, s:i, s:b}", "rid", "r\\1",
	    "ms", 5, "gate", 1);
	log_info("bare", NULL);
}

TEST(a_log_line_is_one_json_object_with_its_fields)
{
	const char	*ts;
	json_t		*a, *b;

	CHECK(two_objects(two_lines, &a, &b) == 0);
	if (a == NULL || b == NULL)
		return;
	CHECK(strcmp(json_string_value(json_object_get(a, "msg")),
	    "a \"quoted\"\nmessage") == 0);
	CHECK(strcmp(json_string_value(json_object_get(a, "level")),
	    "warn") == 0);
	CHECK(strcmp(json_string_value(json_object_get(a, "svc")),
	    "unit") == 0);
	CHECK(json_integer_value(json_object_get(a, "pid")) == getpid());
	ts = json_string_value(json_object_get(a, "ts"));
	/* "2026-11-25T14:42:14.123Z" */
	CHECK(ts != NULL && strlen(ts) == 24 && ts[10] == 'T' &&
	    ts[19] == '.' && ts[23] == 'Z' &&
	    strspn(ts + 20, "0123456789") == 3);
	CHECK(strcmp(json_string_value(json_object_get(a, "rid")),
	    "r\\1") == 0);
	CHECK(json_integer_value(json_object_get(a, "ms")) == 5);
	CHECK(json_is_true(json_object_get(a, "gate")));
	CHECK(json_object_size(a) == 8);
	CHECK(strcmp(json_string_value(json_object_get(b, "msg")),
	    "bare") == 0);
	CHECK(json_object_size(b) == 5);
	json_decref(a);
	json_decref(b);
}

static void
printed_lines(void)
{
	const struct log_field	f[] = {
		LOG_F_STR("rid", "r\"1\n"), LOG_F_STR("left_out", NULL),
		LOG_F_INT("ms", -12345678901LL), LOG_F_BOOL("gate", 0),
		LOG_F_REAL("took", 1.5), LOG_F_STR("code", "")
	};

	log_init("unit");
	log_fields(LOG_LVL_INFO, "checkout", f, sizeof(f) / sizeof(f[0]));
	log_request("r2", "POST", "/api/checkout", "/api/checkout", 202, 0.25,
	    "0123456789abcdef01234567", NULL);
}

TEST(a_printed_line_is_the_same_json_object)
{
	json_t	*a, *b;

	CHECK(two_objects(printed_lines, &a, &b) == 0);
	if (a == NULL || b == NULL)
		return;
	CHECK(strcmp(json_string_value(json_object_get(a, "msg")),
	    "checkout") == 0);
	CHECK(strcmp(json_string_value(json_object_get(a, "rid")),
	    "r\"1\n") == 0);
	CHECK(json_object_get(a, "left_out") == NULL);
	CHECK(json_integer_value(json_object_get(a, "ms")) == -12345678901LL);
	CHECK(json_is_false(json_object_get(a, "gate")));
	CHECK(json_real_value(json_object_get(a, "took")) == 1.5);
	CHECK(strcmp(json_string_value(json_object_get(a, "code")), "") == 0);
	CHECK(json_object_size(a) == 10);
	CHECK(json_integer_value(json_object_get(b, "status")) == 202);
	CHECK(json_real_value(json_object_get(b, "ms")) == 0.25);
	CHECK(strcmp(json_string_value(json_object_get(b, "checkoutId")),
	    "0123456789abcdef01234567") == 0);
	CHECK(json_object_get(b, "userId") == NULL);
	CHECK(json_object_size(b) == 12);
	json_decref(a);
	json_decref(b);
}

static void
odd_bytes(void)
{
	const struct log_field	f[] = {
		LOG_F_STR("rid", "r\xff\xfe" "1"),
		LOG_F_STR("title", "caf\xc3\xa9")
	};

	log_init("unit");
	log_fields(LOG_LVL_INFO, "checkout", f, sizeof(f) / sizeof(f[0]));
}

TEST(a_field_that_is_not_utf8_keeps_the_line_json)
{
	char	 buf[4096];
	json_t	*a;

	CHECK(captured(odd_bytes, buf, sizeof(buf)) > 0);
	a = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	CHECK(a != NULL);
	if (a == NULL)
		return;
	CHECK(strcmp(json_string_value(json_object_get(a, "rid")),
	    "r??1") == 0);
	CHECK(strcmp(json_string_value(json_object_get(a, "title")),
	    "caf\xc3\xa9") == 0);
	json_decref(a);
}
