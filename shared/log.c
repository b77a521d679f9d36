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
#include "proc.h"

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

/* Now as "2026-11-25T14:42:14.123Z". */
static void
timestamp(char *buf, size_t len)
{
	struct timeval	tv;

	gettimeofday(&tv, NULL);
	proc_iso_time((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, buf,
	    len);
}

/* Append the n bytes at p, if they fit with room for the line's end. */
static int
put_raw(char *buf, size_t len, size_t *off, const char *p, size_t n)
{
	if (*off + n + 2 >= len)
		return (-1);
	memcpy(buf + *off, p, n);
	*off += n;
	return (0);
}

/* Append v in decimal (printf's %lld, which is slow for a line a call). */
static int
put_int(char *buf, size_t len, size_t *off, long long v)
{
	char			 t[24];
	size_t			 i = sizeof(t);
	unsigned long long	 u;

	u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		t[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		t[--i] = '-';
	return (put_raw(buf, len, off, t + i, sizeof(t) - i));
}

/* Append ,"name": (names are ours: not escaped). */
static int
put_key(char *buf, size_t len, size_t *off, const char *name)
{
	if (put_raw(buf, len, off, ",\"", 2) == -1 ||
	    put_raw(buf, len, off, name, strlen(name)) == -1)
		return (-1);
	return (put_raw(buf, len, off, "\":", 2));
}

/* Whether s is ASCII or valid UTF-8 (jansson checks the rare rest). */
static int
utf8_valid(const char *s)
{
	const char	*p;
	json_t		*v;

	for (p = s; *p != '\0' && ((unsigned char)*p & 0x80) == 0; p++)
		;
	if (*p == '\0')
		return (1);
	v = json_string(s);
	json_decref(v);
	return (v != NULL);
}

/*
 * Append s to buf at *off as a JSON string (quoted, escaped).  Bytes of
 * a string that is not UTF-8 (a corrupt job's field) are written as
 * '?', so that the line stays JSON.
 */
static void
put_string(char *buf, size_t len, size_t *off, const char *s)
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		c;
	int			utf8;

	if (*off + 2 >= len)
		return;
	utf8 = utf8_valid(s);
	buf[(*off)++] = '"';
	for (; *s != '\0' && *off + 8 < len; s++) {
		c = (unsigned char)*s;
		if (c >= 0x80 && !utf8) {
			buf[(*off)++] = '?';
		} else if (c == '"' || c == '\\') {
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
	if (put_key(buf, len, off, name) == 0)
		put_string(buf, len, off, s);
}

/*
 * The line's own fields: {"ts":..,"level":..,"svc":..,"pid":..,"msg":..
 * without the closing brace.  Its length, or -1 if it does not fit.
 */
static int
head(char *buf, size_t len, enum log_level level, const char *msg)
{
	const char	*lvl = levels[level];
	char		 ts[64];
	size_t		 off = 0;

	timestamp(ts, sizeof(ts));
	if (put_raw(buf, len, &off, "{\"ts\":\"", 7) == -1 ||
	    put_raw(buf, len, &off, ts, strlen(ts)) == -1 ||
	    put_raw(buf, len, &off, "\",\"level\":\"", 11) == -1 ||
	    put_raw(buf, len, &off, lvl, strlen(lvl)) == -1 ||
	    put_raw(buf, len, &off, "\",\"svc\":\"", 9) == -1 ||
	    put_raw(buf, len, &off, service, strlen(service)) == -1 ||
	    put_raw(buf, len, &off, "\",\"pid\":", 8) == -1 ||
	    put_int(buf, len, &off, pid) == -1)
		return (-1);
	put_field(buf, len, &off, "msg", msg);
	return ((int)off);
}

/* Append ,"name": and f's value; -1 if it does not fit. */
static int
put_value(char *buf, size_t len, size_t *off, const struct log_field *f)
{
	char	d[48];
	int	n;

	if (f->kind == LOG_STR) {
		if (f->s != NULL)
			put_field(buf, len, off, f->name, f->s);
		return (0);
	}
	if (put_key(buf, len, off, f->name) == -1)
		return (-1);
	switch (f->kind) {
	case LOG_INT:
		return (put_int(buf, len, off, f->i));
	case LOG_BOOL:
		return (f->i ? put_raw(buf, len, off, "true", 4) :
		    put_raw(buf, len, off, "false", 5));
	default:
		n = snprintf(d, sizeof(d), "%.3f", f->d);
		if (n < 0 || (size_t)n >= sizeof(d))
			return (-1);
		return (put_raw(buf, len, off, d, (size_t)n));
	}
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
