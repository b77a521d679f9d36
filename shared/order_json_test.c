/*
 * order_json_test.c -- an order document as the API shows it, printed.
 */
#include <stdlib.h>
#include <string.h>

#include "../tests/unit.h"
#include "json.h"
#include "money.h"
#include "order_json.h"

#define T0	1764892800123LL		/* 2025-12-05T00:00:00.123Z */

/* An order of two lines (the first's title given), placed at T0. */
static bson_t *
order_doc(const char *title)
{
	bson_t		*doc, items, line, hist, entry, pay;
	bson_oid_t	 id, user, product;

	bson_oid_init_from_string(&id, "65f0c0ffee0123456789abcd");
	bson_oid_init_from_string(&user, "65f0c0ffee0123456789abce");
	bson_oid_init_from_string(&product, "65f0c0ffee0123456789abcf");
	doc = bson_new();
	BSON_APPEND_OID(doc, "_id", &id);
	BSON_APPEND_UTF8(doc, "checkoutId", "0123456789abcdef01234567");
	BSON_APPEND_OID(doc, "userId", &user);
	BSON_APPEND_ARRAY_BEGIN(doc, "items", &items);
	BSON_APPEND_DOCUMENT_BEGIN(&items, "0", &line);
	BSON_APPEND_OID(&line, "productId", &product);
	BSON_APPEND_UTF8(&line, "title", title);
	BSON_APPEND_INT64(&line, "quantity", 2);
	BSON_APPEND_INT64(&line, "price", 1999);
	bson_append_document_end(&items, &line);
	BSON_APPEND_DOCUMENT_BEGIN(&items, "1", &line);
	BSON_APPEND_UTF8(&line, "productId", "not an id");
	BSON_APPEND_INT64(&line, "quantity", 1);
	BSON_APPEND_INT64(&line, "price", 500);
	bson_append_document_end(&items, &line);
	bson_append_array_end(doc, &items);
	BSON_APPEND_INT64(doc, "total", 4498);
	BSON_APPEND_DATE_TIME(doc, "createdAt", T0);
	BSON_APPEND_DATE_TIME(doc, "submittedAt", T0);
	BSON_APPEND_UTF8(doc, "status", "paid");
	BSON_APPEND_ARRAY_BEGIN(doc, "history", &hist);
	BSON_APPEND_DOCUMENT_BEGIN(&hist, "0", &entry);
	BSON_APPEND_UTF8(&entry, "status", "awaiting_payment");
	BSON_APPEND_DATE_TIME(&entry, "at", T0);
	bson_append_document_end(&hist, &entry);
	BSON_APPEND_INT32(&hist, "1", 7);	/* not a document: skipped */
	bson_append_array_end(doc, &hist);
	BSON_APPEND_DATE_TIME(doc, "payBy", T0 + 900000);
	BSON_APPEND_DOCUMENT_BEGIN(doc, "payment", &pay);
	BSON_APPEND_UTF8(&pay, "reference", "pay-\"1\"");
	BSON_APPEND_INT64(&pay, "amount", 4490);
	BSON_APPEND_DATE_TIME(&pay, "at", T0 + 1000);
	BSON_APPEND_BOOL(&pay, "ignored", true);
	bson_append_document_end(doc, &pay);
	BSON_APPEND_DATE_TIME(doc, "updatedAt", T0 + 1000);
	return (doc);
}

#define ORDER_HEAD							\
	"{\"id\":\"65f0c0ffee0123456789abcd\","				\
	"\"_id\":\"65f0c0ffee0123456789abcd\","				\
	"\"checkoutId\":\"0123456789abcdef01234567\","			\
	"\"userId\":\"65f0c0ffee0123456789abce\",\"items\":["		\
	"{\"productId\":\"65f0c0ffee0123456789abcf\","
#define ORDER_TAIL							\
	"\"quantity\":2,\"price\":19.99},{\"productId\":null,"		\
	"\"quantity\":1,\"price\":5}],\"total\":44.98,"			\
	"\"createdAt\":\"2025-12-05T00:00:00.123Z\",\"status\":\"paid\","\
	"\"history\":[{\"status\":\"awaiting_payment\","		\
	"\"at\":\"2025-12-05T00:00:00.123Z\"}],"			\
	"\"payBy\":\"2025-12-05T00:15:00.123Z\",\"payment\":{"		\
	"\"reference\":\"pay-\\\"1\\\"\",\"amount\":44.9,"		\
	"\"at\":\"2025-12-05T00:00:01.123Z\"},"				\
	"\"updatedAt\":\"2025-12-05T00:00:01.123Z\"}"

/* orders_text(doc) is want, and orders_json(doc) dumps to it too. */
static int
prints(const char *title, const char *want)
{
	bson_t	*doc;
	json_t	*o;
	char	*text, *dumped;
	int	 ok;

	doc = order_doc(title);
	text = orders_text(doc);
	o = orders_json(doc);
	dumped = o != NULL ? json_dump_body(o) : NULL;
	ok = text != NULL && dumped != NULL && strcmp(text, want) == 0 &&
	    strcmp(dumped, want) == 0;
	free(text);
	free(dumped);
	json_decref(o);
	bson_destroy(doc);
	return (ok);
}

TEST(order_prints_every_field)
{
	CHECK(prints("Mug", ORDER_HEAD "\"title\":\"Mug\"," ORDER_TAIL));
}

TEST(order_escapes_what_needs_it)
{
	CHECK(prints("Caf\xc3\xa9 \"big\"\n\\",
	    ORDER_HEAD "\"title\":\"Caf\xc3\xa9 \\\"big\\\"\\n\\\\\","
	    ORDER_TAIL));
	/* Not UTF-8: left out, as jansson leaves such a member out. */
	CHECK(prints("bad \xff", ORDER_HEAD ORDER_TAIL));
}

TEST(order_lines_and_id_as_jobs_and_bodies_carry_them)
{
	bson_t	*doc;
	char	*lines;

	/* The second line's productId is not an id: left out. */
	doc = order_doc("Mug");
	lines = orders_lines(doc);
	CHECK(lines != NULL && strcmp(lines, "65f0c0ffee0123456789abcf:2")
	    == 0);
	free(lines);
	lines = orders_id_text(doc);
	CHECK(lines != NULL && strcmp(lines,
	    "\"65f0c0ffee0123456789abcd\"") == 0);
	free(lines);
	bson_destroy(doc);
}

TEST(order_without_fields)
{
	bson_t	*doc;
	char	*text;

	doc = bson_new();
	text = orders_text(doc);
	CHECK(text != NULL && strcmp(text,
	    "{\"status\":\"confirmed\",\"history\":[]}") == 0);
	free(text);
	text = orders_lines(doc);
	CHECK(text != NULL && *text == '\0');
	free(text);
	text = orders_id_text(doc);
	CHECK(text != NULL && *text == '\0');
	free(text);
	bson_destroy(doc);
}

/* money_text against jansson's dump of money_to_json, cent by cent. */
TEST(money_text_as_jansson_prints)
{
	static const int64_t	 big[] = { 99999999999999LL,
	    123456789012345LL, -123456789012345LL, 100000000000001LL };
	json_t			*v;
	char			*dumped, buf[32];
	int64_t			 c;
	size_t			 i;
	int			 bad;

	for (c = -20000, bad = 0; c <= 100000000; c += c < 300000 ? 1 :
	    9973) {
		v = money_to_json(c);
		dumped = json_dump_body(v);
		if (money_text(c, buf, sizeof(buf)) < 0 ||
		    strcmp(buf, dumped) != 0)
			bad++;
		free(dumped);
		json_decref(v);
	}
	for (i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		v = money_to_json(big[i]);
		dumped = json_dump_body(v);
		money_text(big[i], buf, sizeof(buf));
		bad += strcmp(buf, dumped) != 0;
		free(dumped);
		json_decref(v);
	}
	CHECK(bad == 0);
	CHECK(money_text(-5, buf, sizeof(buf)) == 5 &&
	    strcmp(buf, "-0.05") == 0);
	CHECK(money_text(1999, buf, 5) == -1);
}
