/*
 * request.c -- what every handler reads from its request and writes to
 * it: JSON replies, the one error writer, bodies, query strings, path
 * parameters, client IPs, per-request state.
 *
 * error_reply() is the only place that writes {"error": {...}} (api_error
 * and its kin, and api_error_text for a WebSocket): it takes status, code
 * and message from shared/errors.c and adds Retry-After to 429 and 503
 * answers when the caller has not set one.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runtime.h"
#include "../../shared/validate.h"
#include "../../shared/config.h"
#include "../../shared/db.h"
#include "../../shared/json.h"

/* Answer with body (stolen), dumped as JSON. */
void
api_json(struct http_request *req, int status, json_t *body)
{
	char	*text;

	text = json_dump_body(body);
	json_decref(body);
	if (text == NULL) {
		api_json_text(req, 500, "{\"error\":{\"code\":\"internal\"}}",
		    28);
		return;
	}
	api_json_text(req, status, text, strlen(text));
	free(text);
}

/* A ctx->data_free for JSON kept between steps. */
void
api_json_free(void *v)
{
	json_decref(v);
}

/*
 * Answer with JSON already rendered (copied).  Never stored by a cache
 * (answers carry tokens, carts and orders), never sniffed, rendered or
 * framed as a page.
 */
void
api_json_text(struct http_request *req, int status, const char *text,
    size_t len)
{
	http_response_header(req, "content-type", "application/json");
	http_response_header(req, "cache-control", "no-store");
	http_response_header(req, "x-content-type-options", "nosniff");
	http_response_header(req, "content-security-policy",
	    "default-src 'none'; frame-ancestors 'none'");
	http_response(req, status, text, len);
}

static int
has_header(struct http_request *req, const char *name)
{
	struct http_header	*h;

	TAILQ_FOREACH(h, &req->resp_headers, list) {
		if (strcasecmp(h->header, name) == 0)
			return (1);
	}
	return (0);
}

/* Where the body did not parse, for a JSON error's message; or NULL. */
static const char *
body_where(struct http_request *req, enum err e)
{
	struct ctx	*ctx = req->hdlr_extra;

	if ((e != ERR_BAD_JSON && e != ERR_JSON_NUMBER) || ctx == NULL ||
	    ctx->body_where[0] == '\0')
		return (NULL);
	return (ctx->body_where);
}

/* {"code", "message"} of e. */
static json_t *
error_object(enum err e, const char *message)
{
	return (json_pack("{s:s, s:s}", "code", err_info(e)->code, "message",
	    message));
}

/* The one writer of error answers: {"error": {...}} with extra's fields
 * (stolen, may be NULL) in the error object and top's (the same) beside
 * it, and the headers e calls for. */
static void
error_reply(struct http_request *req, enum err e, const char *field,
    const char *message, json_t *extra, json_t *top)
{
	const struct err_info	*info;
	const char		*where;
	json_t			*err, *body;

	info = err_info(e);
	err = error_object(e, message);
	where = body_where(req, e);
	if (where != NULL)
		json_object_set_new(err, "message", json_sprintf("%s (%s)",
		    message, where));
	if (field != NULL)
		json_object_set_new(err, "field", json_string(field));
	if (extra != NULL)
		json_object_update(err, extra);
	json_decref(extra);
	/* RFC 6750: a 401 names the scheme (and why a token failed). */
	if (info->status == 401 && !has_header(req, "www-authenticate"))
		http_response_header(req, "www-authenticate", e ==
		    ERR_UNAUTHENTICATED || e == ERR_BAD_CREDENTIALS ?
		    "Bearer realm=\"checkout\"" :
		    "Bearer realm=\"checkout\", error=\"invalid_token\"");
	if ((info->status == 429 || info->status == 503) &&
	    !has_header(req, "retry-after"))
		http_response_header(req, "retry-after",
		    info->status == 429 ? "60" : "1");
	body = top != NULL ? top : json_object();
	json_object_set_new(body, "error", err);
	api_json(req, info->status, body);
}

/* e's error body as text (new), for a channel that is not an HTTP
 * answer (a WebSocket's last message). */
char *
api_error_text(enum err e)
{
	json_t	*body;
	char	*text;

	body = json_pack("{s:o}", "error", error_object(e,
	    err_info(e)->message));
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return (text);
}

/* Like api_error_msg(), with a message as is (NULL: e's own) and top's
 * fields (stolen) beside the error object (a 503 of /ready with its
 * checks). */
void
api_error_with(struct http_request *req, enum err e, const char *message,
    json_t *top)
{
	error_reply(req, e, NULL, message != NULL ? message :
	    err_info(e)->message, NULL, top);
}

/* Answer with e's status, code and message (naming field, if given). */
void
api_error(struct http_request *req, enum err e, const char *field)
{
	const struct err_info	*info;
	char			 msg[256];

	info = err_info(e);
	if (e == ERR_PASSWORD_LENGTH) {		/* the limits in force */
		snprintf(msg, sizeof(msg), "%s must have %ld to %ld "
		    "characters", field != NULL ? field : "password",
		    cfg.password_min, cfg.password_max);
		error_reply(req, e, field, msg, NULL, NULL);
		return;
	}
	if (field != NULL && info->with_field != NULL) {
		snprintf(msg, sizeof(msg), info->with_field, field);
		error_reply(req, e, field, msg, NULL, NULL);
		return;
	}
	error_reply(req, e, field, info->message, NULL, NULL);
}

/* Like api_error(), adding extra's fields (stolen) to the error. */
void
api_error_extra(struct http_request *req, enum err e, json_t *extra)
{
	error_reply(req, e, NULL, err_info(e)->message, extra, NULL);
}

/* Like api_error(), with a message of its own (for limits and the like). */
void
api_error_msg(struct http_request *req, enum err e, const char *field,
    const char *fmt, ...)
{
	va_list	ap;
	char	msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_reply(req, e, field, msg, NULL, NULL);
}

static int
json_content_type(struct http_request *req)
{
	const char	*ct;
	size_t		 n;

	if (!http_request_header(req, "content-type", &ct))
		return (0);
	n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return (0);
	return (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/*
 * Parse the request body into ctx->body: an empty body is {}, anything
 * else must be a JSON object sent as application/json.
 */
enum err
api_body(struct http_request *req, struct ctx *ctx)
{
	const void	*data;
	size_t		 len;

	data = NULL;
	len = 0;
	if (req->http_body != NULL) {
		data = req->http_body->data;
		len = req->http_body_length;
	}
	if (len > 0 && !json_content_type(req))
		return (ERR_CONTENT_TYPE);
	return (json_parse_body(data, len, &ctx->body, ctx->body_where,
	    sizeof(ctx->body_where)));
}

static int
hexval(int c)
{
	if (isdigit(c))
		return (c - '0');
	return (tolower(c) - 'a' + 10);
}

/* Percent-decode n bytes of s into out; -1 if bad or too long. */
static int
decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t	i, o;

	for (i = 0, o = 0; i < n; i++, o++) {
		if (o + 1 >= outlen)
			return (-1);
		if (s[i] == '+') {
			out[o] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2]))
				return (-1);
			out[o] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
			    hexval((unsigned char)s[i + 2]));
			if (out[o] == '\0')
				return (-1);
			i += 2;
		} else {
			out[o] = s[i];
		}
	}
	out[o] = '\0';
	return (0);
}

/*
 * Find query parameter name and decode it into out.  Returns 1 if found,
 * 0 if absent, -1 if malformed, longer than outlen or given twice (a
 * proxy and the API might each read another one).
 */
int
api_query(struct http_request *req, const char *name, char *out,
    size_t outlen)
{
	const char	*p, *end, *eq, *found;
	size_t		 nlen, flen = 0;

	if (req->query_string == NULL)
		return (0);
	nlen = strlen(name);
	found = NULL;
	for (p = req->query_string; *p != '\0'; p = *end ? end + 1 : end) {
		if ((end = strchr(p, '&')) == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || (size_t)(eq - p) != nlen ||
		    strncmp(p, name, nlen) != 0)
			continue;
		if (found != NULL)
			return (-1);	/* given twice: which one was meant? */
		found = eq + 1;
		flen = (size_t)(end - eq - 1);
	}
	if (found == NULL)
		return (0);
	return (decode(found, flen, out, outlen) == 0 ? 1 : -1);
}

/*
 * Query parameter name as text of at most maxchars characters (UTF-8
 * code points, as the spec's maxLength counts them) into out, which
 * holds 4 * maxchars + 1 bytes.  1 if found, 0 if absent, -1 if
 * malformed, not UTF-8 or too long.
 */
int
api_query_text(struct http_request *req, const char *name, char *out,
    size_t outlen, long maxchars)
{
	long	n;
	int	r;

	if ((r = api_query(req, name, out, outlen)) != 1)
		return (r);
	n = validate_utf8_len(out);
	return (n < 0 || n > maxchars ? -1 : 1);
}

/*
 * Query parameter name as an integer in [min, max], def when absent.
 * ERR_BAD_QUERY if it is not one.
 */
enum err
api_query_long(struct http_request *req, const char *name, long def,
    long min, long max, long *out)
{
	char	 buf[32], *end;
	long	 v;
	int	 r;

	if ((r = api_query(req, name, buf, sizeof(buf))) == 0) {
		*out = def;
		return (ERR_NONE);
	}
	if (r == -1 || buf[0] == '\0')
		return (ERR_BAD_QUERY);
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return (ERR_BAD_QUERY);
	*out = v;
	return (ERR_NONE);
}

/*
 * A list's ?limit= and ?offset=.  ERR_BAD_QUERY with *bad naming the
 * parameter if one is not an integer in its range.
 */
enum err
api_page_query(struct http_request *req, long *limit, long *offset,
    const char **bad)
{
	*bad = "limit";
	if (api_query_long(req, "limit", LIST_DEFAULT, 1, LIST_MAX, limit) !=
	    ERR_NONE)
		return (ERR_BAD_QUERY);
	*bad = "offset";
	return (api_query_long(req, "offset", 0, 0, OFFSET_MAX, offset));
}

/* The ":id" path segment as an ObjectId: ERR_BAD_ID if it is not one. */
enum err
api_param_oid(struct ctx *ctx, bson_oid_t *oid)
{
	if (db_oid_parse(ctx->param, oid) == -1)
		return (ERR_BAD_ID);
	return (ERR_NONE);
}

/*
 * The client's address: the peer, or behind a trusted proxy the last
 * X-Forwarded-For entry (the one the proxy itself appended).
 */
void
api_client_ip(struct http_request *req, char *out, size_t outlen)
{
	struct connection	*c = req->owner;
	const char		*xff, *last;

	if (cfg.trust_proxy && http_request_header(req, "x-forwarded-for",
	    &xff)) {
		last = strrchr(xff, ',');
		last = last != NULL ? last + 1 : xff;
		while (*last == ' ')
			last++;
		snprintf(out, outlen, "%.45s", last);
		return;
	}
	snprintf(out, outlen, "unknown");
	if (c == NULL)
		return;
	if (c->family == AF_INET)
		inet_ntop(AF_INET, &c->addr.ipv4.sin_addr, out, outlen);
	else if (c->family == AF_INET6)
		inet_ntop(AF_INET6, &c->addr.ipv6.sin6_addr, out, outlen);
}

/*
 * What a per-client limit counts: the client's IPv4 address, or the /64
 * network of an IPv6 one (one subscriber commonly holds a whole /64).
 */
void
api_client_net(struct http_request *req, char *out, size_t outlen)
{
	struct in6_addr	a6;
	char		ip[64];

	api_client_ip(req, ip, sizeof(ip));
	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, &a6) != 1) {
		snprintf(out, outlen, "%s", ip);
		return;
	}
	memset(&a6.s6_addr[8], 0, 8);
	if (inet_ntop(AF_INET6, &a6, ip, sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "unknown");
	snprintf(out, outlen, "%s/64", ip);
}

/* Set "id" and "_id" (which the original's clients read) on obj. */
json_t *
api_id_pair(json_t *obj, const char *hex)
{
	json_object_set_new(obj, "id", json_string(hex));
	json_object_set_new(obj, "_id", json_string(hex));
	return (obj);
}

/* FNV-1a of s: spreads ids and cache keys over hash tables. */
uint32_t
api_hash(const char *s)
{
	uint32_t	h = 2166136261u;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return (h);
}

/*
 * The handler's own state, ctx->data: allocated zeroed on first use and
 * freed with the request by data_free (free() if NULL).
 */
void *
api_data(struct ctx *ctx, size_t size, void (*data_free)(void *))
{
	if (ctx->data == NULL) {
		if ((ctx->data = calloc(1, size)) == NULL)
			fatal("api_data: out of memory");
		ctx->data_free = data_free != NULL ? data_free : free;
	}
	return (ctx->data);
}
