/*
 * protocol.c -- the checkout states, the status body, failures, the
 * lines a job carries and the Redis names of Idempotency-Keys
 * (protocol.h), and the Redis library they go with (the files of
 * shared/lua/, compiled in as protocol_library).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "db.h"
#include "json.h"
#include "order_json.h"
#include "proc.h"
#include "protocol.h"
#include "redis.h"

/* shared/lua/ as one C string, made by scripts/lua_library.py. */
#include "checkout_lua.h"

static const char *const names[] = {
	[CK_UNKNOWN] = "",
	[CK_QUEUED] = "queued",
	[CK_PROCESSING] = "processing",
	[CK_COMPLETED] = "completed",
	[CK_FAILED] = "failed",
	[CK_WAITLISTED] = "waitlisted",
};

const char *
protocol_state_name(enum checkout_state s)
{
	if ((int)s < 0 || s > CK_WAITLISTED)
		return ("");
	return (names[s]);
}

enum checkout_state
protocol_state(const char *text)
{
	int	s;

	if (text == NULL || *text == '\0')
		return (CK_UNKNOWN);
	for (s = CK_QUEUED; s <= CK_WAITLISTED; s++) {
		if (strcmp(names[s], text) == 0)
			return ((enum checkout_state)s);
	}
	return (CK_UNKNOWN);
}

int
protocol_rank(enum checkout_state s)
{
	switch (s) {
	case CK_QUEUED:
		return (RANK_QUEUED);
	case CK_PROCESSING:
		return (RANK_PROCESSING);
	case CK_WAITLISTED:
		return (RANK_WAITLISTED);
	case CK_COMPLETED:
	case CK_FAILED:
		return (RANK_FINAL);
	default:
		return (0);
	}
}

char *
protocol_body(const char *checkout_id, enum checkout_state s,
    const char *created_at, const bson_t *order, json_t *error)
{
	return (protocol_body_at(checkout_id, s, created_at, NULL, order,
	    error));
}

/* The status body built and dumped by jansson: any strings. */
static char *
body_packed(const char *checkout_id, const char *state, const char *created,
    const char *updated, const bson_t *order, json_t *error)
{
	json_t	*b, *o;
	char	*text;

	b = json_pack("{s:s, s:s, s:s, s:s}", "checkoutId", checkout_id,
	    "status", state, "createdAt", created, "updatedAt", updated);
	if (order != NULL && (o = orders_json(order)) != NULL) {
		json_object_set(b, "orderId", json_object_get(o, "id"));
		json_object_set_new(b, "order", o);
	}
	if (error != NULL)
		json_object_set(b, "error", error);
	text = json_dump_body(b);
	json_decref(b);
	return (text);
}

/* v dumped as in a body (new); "" for NULL; NULL if it cannot be. */
static char *
dump_any(json_t *v)
{
	return (v != NULL ? json_dump_body(v) : strdup(""));
}

/*
 * The same text, printed: the four strings of every body need no
 * escaping (ids are hex, times ISO); the order is printed by
 * orders_text() and only an error goes through jansson.  NULL if a
 * string needs escaping.
 */
static char *
body_printed(const char *checkout_id, const char *state, const char *created,
    const char *updated, const bson_t *order, json_t *error)
{
	char	*id, *ord, *err, *text;

	if (!json_plain(checkout_id) || !json_plain(created) ||
	    !json_plain(updated))
		return (NULL);
	id = orders_id_text(order);
	ord = order != NULL ? orders_text(order) : strdup("");
	err = dump_any(error);
	text = NULL;
	if (id != NULL && ord != NULL && err != NULL && asprintf(&text,
	    "{\"checkoutId\":\"%s\",\"status\":\"%s\",\"createdAt\":\"%s\","
	    "\"updatedAt\":\"%s\"%s%s%s%s%s%s}", checkout_id, state, created,
	    updated, *id ? ",\"orderId\":" : "", id, *ord ? ",\"order\":" : "",
	    ord, *err ? ",\"error\":" : "", err) == -1)
		text = NULL;
	free(id);
	free(ord);
	free(err);
	return (text);
}

char *
protocol_body_at(const char *checkout_id, enum checkout_state s,
    const char *created_at, const char *updated_at, const bson_t *order,
    json_t *error)
{
	const char	*state = protocol_state_name(s);
	char		 now[40], *text;

	proc_iso_time(db_now_ms(), now, sizeof(now));
	if (created_at == NULL || *created_at == '\0')
		created_at = now;
	if (updated_at == NULL)
		updated_at = now;
	text = body_printed(checkout_id, state, created_at, updated_at, order,
	    error);
	if (text == NULL)
		text = body_packed(checkout_id, state, created_at, updated_at,
		    order, error);
	return (text);
}

json_t *
protocol_failure(enum err e, const char *product)
{
	const struct err_info	*info;
	json_t			*o;

	info = err_info(e);
	o = json_pack("{s:s, s:s}", "code", info->code, "message",
	    info->message);
	if (product != NULL && *product != '\0')
		json_object_set_new(o, "productId", json_string(product));
	return (o);
}

int
protocol_lines_format(const struct cart *c, char *buf, size_t len)
{
	char	hex[25];
	size_t	off;
	int	i, n;

	buf[0] = '\0';
	for (i = 0, off = 0; i < c->n; i++) {
		db_oid_hex(&c->lines[i].product, hex);
		n = snprintf(buf + off, len - off, "%s%s:%lld", i > 0 ? "," :
		    "", hex, (long long)c->lines[i].quantity);
		if (n < 0 || (size_t)n >= len - off)
			return (-1);
		off += (size_t)n;
	}
	return (0);
}

/* One "<productId>:<qty>" of text at *p into c; -1 if malformed. */
static int
parse_line(const char **p, struct cart *c)
{
	char		 hex[25], *end;
	bson_oid_t	 pid;
	long long	 q;
	int		 i;

	if (strlen(*p) < 26 || (*p)[24] != ':')
		return (-1);
	memcpy(hex, *p, 24);
	hex[24] = '\0';
	if (db_oid_parse(hex, &pid) == -1)
		return (-1);
	q = strtoll(*p + 25, &end, 10);
	if (end == *p + 25 || q <= 0 || (*end != ',' && *end != '\0'))
		return (-1);
	*p = *end == ',' ? end + 1 : end;
	if ((i = carts_find(c, &pid)) >= 0) {
		c->lines[i].quantity += q;
		return (0);
	}
	return (carts_append(c, &pid, q));
}

int
protocol_lines_parse(const char *text, struct cart *c)
{
	const char	*p;

	memset(c, 0, sizeof(*c));
	for (p = text; p != NULL && *p != '\0';) {
		if (parse_line(&p, c) == -1) {
			carts_free(c);
			return (-1);
		}
	}
	return (0);
}

_Static_assert(sizeof(RK_IDEM) - 1 + sodium_base64_ENCODED_LEN(16,
    sodium_base64_VARIANT_URLSAFE_NO_PADDING) == IDEM_KEY_SIZE,
    "IDEM_KEY_SIZE is RK_IDEM and 128 bits in base64url");

void
protocol_idem_key(char out[IDEM_KEY_SIZE], const char *user, const char *key)
{
	crypto_hash_sha256_state	st;
	unsigned char			d[crypto_hash_sha256_BYTES];
	const size_t			prefix = sizeof(RK_IDEM) - 1;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)user,
	    strlen(user));
	crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)key,
	    strlen(key));
	crypto_hash_sha256_final(&st, d);
	memcpy(out, RK_IDEM, prefix);
	sodium_bin2base64(out + prefix, IDEM_KEY_SIZE - prefix, d, 16,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
