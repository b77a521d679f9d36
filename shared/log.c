/*
 * log.c -- JSON lines on stderr, one write(2) per line.
 *
 * The service name and level are set once by log_init() before threads
 * start; the optional buffer is guarded by a mutex, so any thread may
 * log.  A line that cannot be built is dropped, never half-written.
 */
#include <sys/time.h>

#include <pthread.h>
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
#define BUF_MAX	(64 * 1024)

static const char	*service = "app";
static enum log_level	 threshold = LOG_LVL_INFO;

static pthread_mutex_t	 buf_lock = PTHREAD_MUTEX_INITIALIZER;
static int		 buffered;		/* set once, before threads */
static char		 lbuf[BUF_MAX];		/* guarded by buf_lock */
static size_t		 lbuf_len;

static void
out(const char *p, size_t len)
{
	if (write(STDERR_FILENO, p, len) == -1) {
		/* Nowhere left to report it. */
	}
}

void
log_buffered(int on)
{
	buffered = on;
}

void
log_flush(void)
{
	pthread_mutex_lock(&buf_lock);
	if (lbuf_len > 0)
		out(lbuf, lbuf_len);
	lbuf_len = 0;
	pthread_mutex_unlock(&buf_lock);
}

/* Write one line (len bytes, ending in a newline), now or buffered. */
static void
emit(const char *line, size_t len)
{
	if (!buffered) {
		out(line, len);
		return;
	}
	pthread_mutex_lock(&buf_lock);
	if (lbuf_len + len > sizeof(lbuf)) {
		out(lbuf, lbuf_len);
		lbuf_len = 0;
	}
	if (len > sizeof(lbuf)) {
		out(line, len);
	} else {
		memcpy(lbuf + lbuf_len, line, len);
		lbuf_len += len;
	}
	pthread_mutex_unlock(&buf_lock);
}

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
	emit(text, len + 1);
	free(text);
}
