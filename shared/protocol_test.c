/*
 * protocol_test.c -- the Redis names of Idempotency-Keys, and status
 * bodies.
 */
#include <stdlib.h>
#include <string.h>

#include "../tests/unit.h"
#include "json.h"
#include "order_json.h"
#include "protocol.h"

TEST(idempotency_key_names_are_short_and_per_user)
{
	char	a[IDEM_KEY_SIZE], b[IDEM_KEY_SIZE], longer[300];

	/* base64url(SHA-256("<user>:<key>")[0..16]), as Python has it. */
	protocol_idem_key(a, "65f0c0ffee0123456789abcd", "order-42");
	CHECK(strcmp(a, "idem:nUcD1lxHm4lhvNa6ZG6R5g") == 0);
	/* Another user's same key is another name. */
	protocol_idem_key(b, "65f0c0ffee0123456789abce", "order-42");
	CHECK(strcmp(a, b) != 0);
	/* Any key, up to the 255 characters allowed, gives 27. */
	memset(longer, '~', 255);
	longer[255] = '\0';
	protocol_idem_key(b, "65f0c0ffee0123456789abcd", longer);
	CHECK(strlen(b) == IDEM_KEY_SIZE - 1 && strchr(b + 5, ':') == NULL);
}

/* protocol_body_at()'s text against jansson's dump of the same object,
 * in the same order: byte for byte. */
static int
body_is(const char *id, enum checkout_state st, const char *created,
    const bson_t *order, json_t *error)
{
	json_t	*want, *o;
	char	*got, *text;
	int	 same;

	want = json_pack("{s:s, s:s, s:s, s:s}", "checkoutId", id, "status",
	    protocol_state_name(st), "createdAt", created, "updatedAt",
	    "2026-12-04T06:00:01.000Z");
	if (order != NULL) {
		o = orders_json(order);
		json_object_set(want, "orderId", json_object_get(o, "id"));
		json_object_set_new(want, "order", o);
	}
	if (error != NULL)
		json_object_set(want, "error", error);
	text = json_dump_body(want);
	got = protocol_body_at(id, st, created, "2026-12-04T06:00:01.000Z",
	    order, error);
	same = got != NULL && text != NULL && strcmp(got, text) == 0;
	free(got);
	free(text);
	json_decref(want);
	return (same);
}

TEST(status_bodies_are_what_jansson_would_dump)
{
	json_t		*error;
	bson_t		*order, *no_id;
	bson_oid_t	 oid;
	char		*text;

	bson_oid_init_from_string(&oid, "65f0c0ffee0123456789abcd");
	order = BCON_NEW("_id", BCON_OID(&oid), "total", BCON_INT64(1999),
	    "items", "[", "{", "title", BCON_UTF8("Caf\xc3\xa9 \"au lait\"\n"),
	    "quantity", BCON_INT64(2), "}", "]");
	no_id = BCON_NEW("total", BCON_INT64(1999));
	error = protocol_failure(ERR_OUT_OF_STOCK, "65f0c0ffee0123456789abce");
	CHECK(body_is("65f0c0ffee0123456789abcf", CK_QUEUED,
	    "2026-12-04T06:00:00.000Z", NULL, NULL));
	CHECK(body_is("65f0c0ffee0123456789abcf", CK_COMPLETED,
	    "2026-12-04T06:00:00.000Z", order, NULL));
	CHECK(body_is("65f0c0ffee0123456789abcf", CK_FAILED,
	    "2026-12-04T06:00:00.000Z", NULL, error));
	/* Strings that need escaping go through jansson. */
	CHECK(body_is("a\"b\\c", CK_PROCESSING, "caf\xc3\xa9", NULL, NULL));
	/* An order without an id has no orderId. */
	CHECK(body_is("65f0c0ffee0123456789abcf", CK_COMPLETED,
	    "2026-12-04T06:00:00.000Z", no_id, NULL));
	/* No createdAt: now, as updatedAt when that is not given. */
	text = protocol_body("65f0c0ffee0123456789abcf", CK_QUEUED, NULL,
	    NULL, NULL);
	CHECK(text != NULL && strstr(text, "\"createdAt\":\"20") != NULL);
	free(text);
	bson_destroy(order);
	bson_destroy(no_id);
	json_decref(error);
}
