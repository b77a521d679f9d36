/*
 * log.c -- JSON lines on stderr, one write(2) per line.
 *
 * The service name and level are set once by log_init() before threads
 * start; after that the module keeps no mutable state, so any thread may
 * log.  A line that cannot be built is dropped, never half-written.
 */
#include <sys/time.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "log.h"

static const char	*levels[] = { "debug", "info", "warn", "error" };
static const char	*service = "app";
static enum log_level	 threshold = LOG_LVL_INFO;

void
log_init(const char *svc)
{
	size_t	i;

	service = svc;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(cfg.log_level, levels[i]) == 0)
			threshold = (enum log_level)i;
	}
}

int
log_enabled(enum log_level level)
{
	return (level >= threshold);
}

static void
timestamp(char *buf, size_t len)
{
	struct timeval	tv;
	struct tm	tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
}

void
log_event(enum log_level level, const char *msg, const char *fmt, ...)
{
	va_list		 ap;
	json_t		*line, *extra;
	char		 ts[64], *text;
	size_t		 len;

	if (!log_enabled(level))
		return;
	timestamp(ts, sizeof(ts));
	line = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts,
	    "level", levels[level], "svc", service, "pid", (int)getpid(),
	    "msg", msg);
	if (line == NULL)
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		extra = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
		if (extra != NULL)
			json_object_update(line, extra);
		json_decref(extra);
	}
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(6));
	json_decref(line);
	if (text == NULL)
		return;
	len = strlen(text);
	text[len] = '\n';	/* overwrites the NUL; len + 1 bytes sent */
	if (write(STDERR_FILENO, text, len + 1) == -1) {
		/* Nowhere left to report it. */
	}
	free(text);
}
