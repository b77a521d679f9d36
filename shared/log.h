/*
 * log.h -- structured logs: one JSON object per line on stderr.
 *
 * Every line has ts, level, svc, pid and msg, plus the fields the caller
 * packs.  A request or job carries "rid", its request id, so that one
 * checkout can be followed from the API to the worker with grep.
 */
#ifndef SHARED_LOG_H
#define SHARED_LOG_H

enum log_level {
	LOG_LVL_DEBUG,
	LOG_LVL_INFO,
	LOG_LVL_WARN,
	LOG_LVL_ERROR
};

/* Name the service ("api", "worker", ...) and take the level from cfg. */
void	log_init(const char *service);

/* Whether lines of this level are written at all. */
int	log_enabled(enum log_level);

/*
 * Write one line.  fmt is a jansson json_pack() format for an object
 * with the extra fields ("{s:s, s:i}"), or NULL for none.  Safe from any
 * thread: the line is built first and written with a single write(2).
 */
void	log_event(enum log_level, const char *msg, const char *fmt, ...);

/*
 * One extra field of log_fields(): a string (NULL: the field is left
 * out), an integer, a boolean, or a real printed with three decimals.
 */
enum log_kind { LOG_STR, LOG_INT, LOG_BOOL, LOG_REAL };
struct log_field {
	const char	*name;
	enum log_kind	 kind;
	const char	*s;
	long long	 i;
	double		 d;
};
#define LOG_F_STR(n, v)		{ (n), LOG_STR, (v), 0, 0 }
#define LOG_F_INT(n, v)		{ (n), LOG_INT, NULL, (long long)(v), 0 }
#define LOG_F_BOOL(n, v)	{ (n), LOG_BOOL, NULL, (v) != 0, 0 }
#define LOG_F_REAL(n, v)	{ (n), LOG_REAL, NULL, 0, (v) }

/*
 * log_event() with the extra fields f[0..n), printed without building a
 * JSON tree: for the lines written per request (the API) and per
 * checkout (the worker).  Strings are escaped as JSON needs.
 */
void	log_fields(enum log_level, const char *msg,
	    const struct log_field *f, size_t n);

/*
 * One request line (msg "request") at info: the API writes one per
 * request it logs.  checkout_id and user may be NULL.
 */
void	log_request(const char *rid, const char *method, const char *path,
	    const char *route, int status, double ms, const char *checkout_id,
	    const char *user);

/*
 * Buffer lines in memory until log_flush() or 64 KiB, instead of one
 * write(2) per line: the API flushes from a 100 ms timer, so a busy
 * server does not pay a system call per request.  A crash loses at most
 * that much of the log.
 */
void	log_buffered(int on);

/*
 * What a log may say of a URL: its scheme, host and port.  A webhook's
 * path and query often carry the receiver's token, and a URL's userinfo
 * a password: neither is written.
 */
void	log_url(const char *url, char *out, size_t len);
void	log_flush(void);

#define log_debug(...)	log_event(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_event(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)	log_event(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...)	log_event(LOG_LVL_ERROR, __VA_ARGS__)

#endif
