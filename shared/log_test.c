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
	char		 buf[4096], *nl;
	json_t		*a, *b;

	CHECK(captured(two_lines, buf, sizeof(buf)) > 0);
	if ((nl = strchr(buf, '\n')) == NULL) {
		CHECK(nl != NULL);
		return;
	}
	CHECK(strchr(nl + 1, '\n') == buf + strlen(buf) - 1);
	a = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
	b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
	CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL)
		return;
	CHECK(strcmp(json_string_value(json_object_get(a, "msg")),
	    "a \"quoted\"\nmessage") == 0);
	CHECK(strcmp(json_string_value(json_object_get(a, "level")),
	    "warn") == 0);
	CHECK(strcmp(json_string_value(json_object_get(a, "svc")),
	    "unit") == 0);
	CHECK(json_integer_value(json_object_get(a, "pid")) == getpid());
	CHECK(json_string_value(json_object_get(a, "ts")) != NULL);
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
