/*
 * order_json.c -- orders documents to JSON (order_json.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "json.h"
#include "money.h"
#include "order_json.h"
#include "proc.h"

/*
 * The order is printed from its document, not built as a jansson tree
 * and dumped: the worker records one for every order it places, and the
 * tree cost it a fifth of its CPU (bench/NOTES.md, section 20).  Strings
 * that need escaping, and those jansson refuses (not UTF-8: the member
 * is left out, as jansson leaves it), still go through jansson.
 */

/* An object or array being printed: its members so far. */
struct pr {
	FILE	*f;
	int	 n;
};

/* s as JSON text: new, or NULL if jansson refuses it (not UTF-8). */
static char *
quoted(const char *s)
{
	json_t	*v;
	char	*t;

	if (json_plain(s)) {
		if (asprintf(&t, "\"%s\"", s) == -1)
			return (NULL);
		return (t);
	}
	if ((v = json_string(s)) == NULL)
		return (NULL);
	t = json_dump_body(v);
	json_decref(v);
	return (t);
}

/* Plain s (json_plain()) between quotes. */
static void
put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	fputs(s, f);
	fputc('"', f);
}

/*
 * The separator and "key": before a member (k NULL in an array).  A key
 * that is not UTF-8 is left out by put_string() before it comes here.
 */
static void
member(struct pr *p, const char *k)
{
	char	*q;

	if (p->n++ > 0)
		fputc(',', p->f);
	if (k == NULL)
		return;
	if (json_plain(k)) {
		put_quoted(p->f, k);
		fputc(':', p->f);
		return;
	}
	q = quoted(k);
	fputs(q != NULL ? q : "\"\"", p->f);
	fputc(':', p->f);
	free(q);
}

/* Member k with its value as text. */
static void
put_raw(struct pr *p, const char *k, const char *text)
{
	member(p, k);
	fputs(text, p->f);
}

/* Member k, a string; left out when k or s is not UTF-8. */
static void
put_string(struct pr *p, const char *k, const char *s)
{
	char	*q, *kq;

	if (json_plain(s) && json_plain(k)) {
		member(p, k);
		put_quoted(p->f, s);
		return;
	}
	kq = quoted(k);
	if ((q = quoted(s)) != NULL && kq != NULL)
		put_raw(p, k, q);
	free(q);
	free(kq);
}

static void
put_int(struct pr *p, const char *k, int64_t v)
{
	member(p, k);
	fprintf(p->f, "%" PRId64, v);
}

static void
put_money(struct pr *p, const char *k, int64_t cents)
{
	char	buf[32];

	money_text(cents, buf, sizeof(buf));
	put_raw(p, k, buf);
}

static void
put_time(struct pr *p, const char *k, int64_t ms)
{
	char	when[32];

	proc_iso_time(ms, when, sizeof(when));
	put_string(p, k, when);
}

/* An id as hex, or null when the field holds no ObjectId. */
static void
put_oid(struct pr *p, const char *k, bson_iter_t *it)
{
	char	hex[25];

	if (!BSON_ITER_HOLDS_OID(it)) {
		put_raw(p, k, "null");
		return;
	}
	db_oid_hex(bson_iter_oid(it), hex);
	put_string(p, k, hex);
}

char *
orders_id_text(const bson_t *order)
{
	bson_iter_t	 it;
	char		 hex[25], *text;

	if (order == NULL || !bson_iter_init_find(&it, order, "_id"))
		return (strdup(""));
	if (!BSON_ITER_HOLDS_OID(&it))
		return (strdup("null"));
	db_oid_hex(bson_iter_oid(&it), hex);
	if (asprintf(&text, "\"%s\"", hex) == -1)
		return (NULL);
	return (text);
}

/* Field of doc, when it holds a date, as ISO 8601. */
static void
put_doc_time(struct pr *p, const bson_t *doc, const char *field)
{
	bson_iter_t	it;

	if (bson_iter_init_find(&it, doc, field) &&
	    BSON_ITER_HOLDS_DATE_TIME(&it))
		put_time(p, field, bson_iter_date_time(&it));
}

/* Open an object or array as member k of p (k NULL in an array). */
static void
open_in(struct pr *p, const char *k, struct pr *in, char bracket)
{
	member(p, k);
	fputc(bracket, p->f);
	in->f = p->f;
	in->n = 0;
}

static void
line_text(struct pr *items, bson_iter_t *line)
{
	struct pr	l;

	open_in(items, NULL, &l, '{');
	while (bson_iter_next(line)) {
		if (BSON_ITER_IS_KEY(line, "productId"))
			put_oid(&l, "productId", line);
		else if (BSON_ITER_IS_KEY(line, "title") &&
		    BSON_ITER_HOLDS_UTF8(line))
			put_string(&l, "title", bson_iter_utf8(line, NULL));
		else if (BSON_ITER_IS_KEY(line, "quantity"))
			put_int(&l, "quantity", bson_iter_as_int64(line));
		else if (BSON_ITER_IS_KEY(line, "price"))
			put_money(&l, "price", bson_iter_as_int64(line));
	}
	fputc('}', l.f);
}

static void
items_text(struct pr *o, bson_iter_t *it)
{
	bson_iter_t	 arr, line;
	struct pr	 items;

	open_in(o, "items", &items, '[');
	if (BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &arr)) {
		while (bson_iter_next(&arr)) {
			if (BSON_ITER_HOLDS_DOCUMENT(&arr) &&
			    bson_iter_recurse(&arr, &line))
				line_text(&items, &line);
		}
	}
	fputc(']', o->f);
}

/*
 * A lifecycle subdocument (payment, fulfilment, cancellation, refund)
 * or a history entry: strings as they are, dates in ISO 8601, amounts
 * as decimals.
 */
static void
sub_text(struct pr *p, const char *k, bson_iter_t *it)
{
	bson_iter_t	 f;
	struct pr	 o;

	open_in(p, k, &o, '{');
	if (bson_iter_recurse(it, &f)) {
		while (bson_iter_next(&f)) {
			if (BSON_ITER_HOLDS_UTF8(&f))
				put_string(&o, bson_iter_key(&f),
				    bson_iter_utf8(&f, NULL));
			else if (BSON_ITER_HOLDS_DATE_TIME(&f))
				put_time(&o, bson_iter_key(&f),
				    bson_iter_date_time(&f));
			else if (BSON_ITER_IS_KEY(&f, "amount"))
				put_money(&o, "amount",
				    bson_iter_as_int64(&f));
		}
	}
	fputc('}', o.f);
}

static void
history_text(struct pr *o, const bson_t *doc)
{
	bson_iter_t	 it, arr;
	struct pr	 h;

	open_in(o, "history", &h, '[');
	if (bson_iter_init_find(&it, doc, "history") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
		while (bson_iter_next(&arr)) {
			if (BSON_ITER_HOLDS_DOCUMENT(&arr))
				sub_text(&h, NULL, &arr);
		}
	}
	fputc(']', o->f);
}

/* status, history, payBy and the lifecycle subdocuments of doc. */
static void
lifecycle_text(struct pr *o, const bson_t *doc)
{
	static const char *const subs[] = { "payment", "fulfilment",
	    "cancellation", "refund", NULL };
	bson_iter_t	 it;
	int		 i;

	put_string(o, "status", bson_iter_init_find(&it, doc, "status") &&
	    BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) :
	    "confirmed");
	history_text(o, doc);
	put_doc_time(o, doc, "payBy");
	for (i = 0; subs[i] != NULL; i++) {
		if (bson_iter_init_find(&it, doc, subs[i]) &&
		    BSON_ITER_HOLDS_DOCUMENT(&it))
			sub_text(o, subs[i], &it);
	}
	put_doc_time(o, doc, "updatedAt");
}

static void
order_text(FILE *f, const bson_t *doc)
{
	bson_iter_t	it;
	struct pr	o;

	o.f = f;
	o.n = 0;
	fputc('{', f);
	if (bson_iter_init_find(&it, doc, "_id")) {
		put_oid(&o, "id", &it);
		put_oid(&o, "_id", &it);
	}
	if (bson_iter_init_find(&it, doc, "checkoutId") &&
	    BSON_ITER_HOLDS_UTF8(&it))
		put_string(&o, "checkoutId", bson_iter_utf8(&it, NULL));
	if (bson_iter_init_find(&it, doc, "userId"))
		put_oid(&o, "userId", &it);
	if (bson_iter_init_find(&it, doc, "items"))
		items_text(&o, &it);
	if (bson_iter_init_find(&it, doc, "total"))
		put_money(&o, "total", bson_iter_as_int64(&it));
	put_doc_time(&o, doc, "createdAt");
	lifecycle_text(&o, doc);
	fputc('}', f);
}

char *
orders_text(const bson_t *doc)
{
	FILE	*f;
	char	*text;
	size_t	 len;

	text = NULL;
	if ((f = open_memstream(&text, &len)) == NULL)
		return (NULL);
	/* One thread writes it: no lock per character. */
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	order_text(f, doc);
	if (fclose(f) != 0) {
		free(text);
		return (NULL);
	}
	return (text);
}

json_t *
orders_json(const bson_t *doc)
{
	json_t	*o;
	char	*text;

	if ((text = orders_text(doc)) == NULL)
		return (NULL);
	o = json_loads(text, 0, NULL);
	free(text);
	return (o);
}

char *
orders_lines(const bson_t *doc)
{
	bson_iter_t	 it, arr, line;
	char		*buf, hex[25];
	size_t		 len, off;
	int64_t		 qty;

	len = 1;
	if (bson_iter_init_find(&it, doc, "items") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
		while (bson_iter_next(&arr))
			len += 48;
	if ((buf = calloc(1, len)) == NULL)
		return (NULL);
	off = 0;
	if (!bson_iter_init_find(&it, doc, "items") ||
	    !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
		return (buf);
	while (bson_iter_next(&arr) && off + 48 <= len) {
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) ||
		    !bson_iter_recurse(&arr, &line) ||
		    !bson_iter_find(&line, "productId") ||
		    !BSON_ITER_HOLDS_OID(&line))
			continue;
		db_oid_hex(bson_iter_oid(&line), hex);
		bson_iter_recurse(&arr, &line);
		qty = bson_iter_find(&line, "quantity") ?
		    bson_iter_as_int64(&line) : 0;
		off += (size_t)snprintf(buf + off, len - off, "%s%s:%lld",
		    off > 0 ? "," : "", hex, (long long)qty);
	}
	return (buf);
}

void
orders_filter(const struct orders_query *q, bson_t *filter)
{
	bson_oid_t	 user;
	bson_t		 range;

	bson_init(filter);
	if (q->user != NULL && db_oid_parse(q->user, &user) == 0)
		BSON_APPEND_OID(filter, "userId", &user);
	if (q->status != NULL)
		BSON_APPEND_UTF8(filter, "status", q->status);
	if (q->from < 0 && q->to < 0)
		return;
	BSON_APPEND_DOCUMENT_BEGIN(filter, "createdAt", &range);
	if (q->from >= 0)
		BSON_APPEND_DATE_TIME(&range, "$gte", q->from);
	if (q->to >= 0)
		BSON_APPEND_DATE_TIME(&range, "$lt", q->to);
	bson_append_document_end(filter, &range);
}
