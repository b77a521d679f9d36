/*
 * protocol_test.c -- the Redis names of Idempotency-Keys.
 */
#include <string.h>

#include "../tests/unit.h"
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
