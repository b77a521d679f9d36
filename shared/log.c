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
static int		 pid;		/* set by log_init, after a fork */

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
	pid = (int)getpid();
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

/* Now as "2026-11-25T14:42:14.123Z"; the date part is kept per second. */
static void
timestamp(char *buf, size_t len)
{
	static __thread time_t	last = -1;
	static __thread char	date[80];
	struct timeval		tv;
	struct tm		tm;

	gettimeofday(&tv, NULL);
	if (tv.tv_sec != last) {
		gmtime_r(&tv.tv_sec, &tm);
		snprintf(date, sizeof(date), "%04d-%02d-%02dT%02d:%02d:%02d",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		last = tv.tv_sec;
	}
	snprintf(buf, len, "%.24s.%03ldZ", date, (long)(tv.tv_usec / 1000));
}

/* Append s to buf at *off as a JSON string (quoted, escaped). */
static void
put_string(char *buf, size_t len, size_t *off, const char *s)
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		c;

	if (*off + 2 >= len)
		return;
	buf[(*off)++] = '"';
	for (; *s != '\0' && *off + 8 < len; s++) {
		c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[(*off)++] = '\\';
			buf[(*off)++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(buf + *off, "\\u00", 4);
			buf[*off + 4] = hex[c >> 4];
			buf[*off + 5] = hex[c & 15];
			*off += 6;
		} else {
			buf[(*off)++] = (char)c;
		}
	}
	buf[(*off)++] = '"';
}

/* Append ,"name": and the JSON string s. */
static void
put_field(char *buf, size_t len, size_t *off, const char *name,
    const char *s)
{
	int	n;

	n = snprintf(buf + *off, len - *off, ",\"%s\":", name);
	if (n > 0 && (size_t)n < len - *off) {
		*off += (size_t)n;
		put_string(buf, len, off, s);
	}
}

/*
 * The line's own fields: {"ts":..,"level":..,"svc":..,"pid":..,"msg":..
 * without the closing brace.  Its length, or -1 if it does not fit.
 */
static int
head(char *buf, size_t len, enum log_level level, const char *msg)
{
	char	ts[64];
	size_t	off;
	int	n;

	timestamp(ts, sizeof(ts));
	n = snprintf(buf, len, "{\"ts\":\"%s\",\"level\":\"%s\","
	    "\"svc\":\"%s\",\"pid\":%d", ts, levels[level], service, pid);
	if (n < 0 || (size_t)n >= len)
		return (-1);
	off = (size_t)n;
	put_field(buf, len, &off, "msg", msg);
	return ((int)off);
}

/* Append ,"name": and f's value; -1 if it does not fit. */
static int
put_value(char *buf, size_t len, size_t *off, const struct log_field *f)
{
	int	n;

	switch (f->kind) {
	case LOG_STR:
		if (f->s != NULL)
			put_field(buf, len, off, f->name, f->s);
		return (0);
	case LOG_INT:
		n = snprintf(buf + *off, len - *off, ",\"%s\":%lld", f->name,
		    f->i);
		break;
	case LOG_BOOL:
		n = snprintf(buf + *off, len - *off, ",\"%s\":%s", f->name,
		    f->i ? "true" : "false");
		break;
	default:
		n = snprintf(buf + *off, len - *off, ",\"%s\":%.3f", f->name,
		    f->d);
		break;
	}
	if (n < 0 || (size_t)n >= len - *off)
		return (-1);
	*off += (size_t)n;
	return (0);
}

void
log_fields(enum log_level level, const char *msg, const struct log_field *f,
    size_t n)
{
	char	line[2048];
	size_t	i, off;
	int	h;

	if (!log_enabled(level))
		return;
	if ((h = head(line, sizeof(line), level, msg)) == -1)
		return;
	off = (size_t)h;
	for (i = 0; i < n; i++)
		if (put_value(line, sizeof(line), &off, &f[i]) == -1)
			return;
	if (off + 2 >= sizeof(line))
		return;
	line[off++] = '}';
	line[off++] = '\n';
	emit(line, off);
}

void
log_request(const char *rid, const char *method, const char *path,
    const char *route, int status, double ms, const char *checkout_id,
    const char *user)
{
	const struct log_field	f[] = {
		LOG_F_STR("rid", rid), LOG_F_STR("method", method),
		LOG_F_STR("path", path), LOG_F_STR("route", route),
		LOG_F_INT("status", status), LOG_F_REAL("ms", ms),
		LOG_F_STR("checkoutId", checkout_id), LOG_F_STR("userId", user)
	};

	log_fields(LOG_LVL_INFO, "request", f, sizeof(f) / sizeof(f[0]));
}

/*
 * The line's own fields are written by head(); only the extra fields go
 * through jansson, and their object is spliced in after them ({"a":1}
 * -> ,"a":1}).  Lines written per request or per checkout use
 * log_fields() instead.
 */
void
log_event(enum log_level level, const char *msg, const char *fmt, ...)
{
	va_list		 ap;
	json_t		*extra;
	char		 first[512], *text, *line;
	size_t		 hlen, tlen;
	int		 h;

	if (!log_enabled(level))
		return;
	if ((h = head(first, sizeof(first), level, msg)) == -1)
		return;
	hlen = (size_t)h;
	extra = NULL;
	if (fmt != NULL) {
		va_start(ap, fmt);
		extra = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
	}
	text = extra != NULL && json_object_size(extra) > 0 ? json_dumps(extra,
	    JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(extra);
	/* text: "{...}" -> ",...}"; none: "}". */
	tlen = text != NULL ? strlen(text) : 1;
	if ((line = malloc(hlen + tlen + 1)) == NULL) {
		free(text);
		return;
	}
	memcpy(line, first, hlen);
	if (text != NULL) {
		memcpy(line + hlen, text, tlen);
		line[hlen] = ',';
	} else {
		line[hlen] = '}';
	}
	line[hlen + tlen] = '\n';
	emit(line, hlen + tlen + 1);
	free(line);
	free(text);
}

void
log_url(const char *url, char *out, size_t len)
{
	const char	*host, *end, *at;

	if ((host = strstr(url, "://")) == NULL) {
		snprintf(out, len, "(not a URL)");
		return;
	}
	host += 3;
	end = host + strcspn(host, "/?#");
	if ((at = memchr(host, '@', (size_t)(end - host))) != NULL)
		host = at + 1;
	snprintf(out, len, "%.*s%.*s", (int)(strstr(url, "://") + 3 - url),
	    url, (int)(end - host), host);
}
