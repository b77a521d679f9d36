/*
 * validate_test.c -- emails, passwords, titles, ids, idempotency keys.
 */
#include <string.h>

#include "../tests/unit.h"
#include "validate.h"

TEST(email_is_normalised)
{
	char	out[EMAIL_MAX + 1];

	CHECK(validate_email("  Alice@Example.COM ", out, sizeof(out)) ==
	    ERR_NONE && strcmp(out, "alice@example.com") == 0);
	CHECK(validate_email("a.b+c@sub.example.io", out, sizeof(out)) ==
	    ERR_NONE);
}

TEST(email_bad_forms_refused)
{
	char	out[EMAIL_MAX + 1], big[400];

	CHECK(validate_email("", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("plain", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("a@b", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("a@@b.io", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("a b@c.io", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email(".a@c.io", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("a..b@c.io", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("a@-c.io", out, sizeof(out)) == ERR_BAD_EMAIL);
	CHECK(validate_email("a@c..io", out, sizeof(out)) == ERR_BAD_EMAIL);
	memset(big, 'a', sizeof(big));
	memcpy(big + 300, "@example.com", 13);
	CHECK(validate_email(big, out, sizeof(out)) == ERR_BAD_EMAIL);
}

TEST(password_length_in_characters)
{
	CHECK(validate_password("1234567") == ERR_PASSWORD_LENGTH);
	CHECK(validate_password("12345678") == ERR_NONE);
	/* Eight two-byte characters are eight characters. */
	CHECK(validate_password("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9") == ERR_NONE);
	CHECK(validate_password("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8") ==
	    ERR_PASSWORD_LENGTH);
}

TEST(title_trimmed_and_bounded)
{
	char	out[1024], big[300];

	CHECK(validate_title("  Mug  ", out, sizeof(out)) == ERR_NONE &&
	    strcmp(out, "Mug") == 0);
	CHECK(validate_title("   ", out, sizeof(out)) == ERR_OUT_OF_RANGE);
	CHECK(validate_title("a\tb", out, sizeof(out)) == ERR_INVALID);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(validate_title(big, out, sizeof(out)) == ERR_OUT_OF_RANGE);
	big[200] = '\0';
	CHECK(validate_title(big, out, sizeof(out)) == ERR_NONE);
}

TEST(oid_and_idempotency_key)
{
	CHECK(validate_oid("507f1f77bcf86cd799439011"));
	CHECK(!validate_oid("507f1f77bcf86cd79943901"));
	CHECK(!validate_oid("507f1f77bcf86cd7994390111"));
	CHECK(!validate_oid("507f1f77bcf86cd79943901g"));
	CHECK(!validate_oid(""));
	CHECK(validate_idempotency_key("order-42") == ERR_NONE);
	CHECK(validate_idempotency_key("") == ERR_BAD_IDEMPOTENCY_KEY);
	CHECK(validate_idempotency_key("has space") ==
	    ERR_BAD_IDEMPOTENCY_KEY);
}

TEST(iso_times_parsed_exactly)
{
	int64_t	ms;

	CHECK(validate_iso_time("1970-01-01T00:00:00Z", &ms) == 0 && ms == 0);
	CHECK(validate_iso_time("2026-12-03T10:00:00.250Z", &ms) == 0 &&
	    ms == 1796292000250LL);
	CHECK(validate_iso_time("2026-12-03T11:00:00+01:00", &ms) == 0 &&
	    ms == 1796292000000LL);
	CHECK(validate_iso_time("2026-12-03T09:30:00-00:30", &ms) == 0 &&
	    ms == 1796292000000LL);
	CHECK(validate_iso_time("2026-02-31T00:00:00Z", &ms) == -1);
	CHECK(validate_iso_time("2026-12-03 10:00:00Z", &ms) == -1);
	CHECK(validate_iso_time("2026-12-03T10:00:00", &ms) == -1);
	CHECK(validate_iso_time("2026-12-03T10:00:00.Z", &ms) == -1);
	CHECK(validate_iso_time("2026-12-03T24:00:00Z", &ms) == -1);
	CHECK(validate_iso_time("2026-12-03T10:00:00Zjunk", &ms) == -1);
	CHECK(validate_iso_time("1969-12-31T23:59:59Z", &ms) == -1);
	CHECK(validate_iso_time("", &ms) == -1);
}
