/*
 * jwt_test.c -- HS256 only: forged, re-signed and expired tokens fail.
 */
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "../tests/unit.h"
#include "jwt.h"

#define KEY	"unit-test-secret-unit-test-secret-0123"
#define SUB	"507f1f77bcf86cd799439011"

TEST(token_round_trip)
{
	struct principal	 who;
	char			*t;

	t = jwt_token_issue(SUB, ROLE_ADMIN, 7, KEY, 3600, 1000000);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK(jwt_token_verify(t, KEY, 1000001, &who) == ERR_NONE);
	CHECK(strcmp(who.sub, SUB) == 0 && who.admin == 1);
	CHECK(who.exp == 1003600 && who.ver == 7);
	/* The token is named by its signature, its third part. */
	CHECK(strcmp(who.sig, strrchr(t, '.') + 1) == 0 && strlen(who.sig) > 40);
	CHECK(jwt_token_verify(t, KEY, 1003600, &who) == ERR_TOKEN_EXPIRED);
	CHECK(jwt_token_verify(t, "another-secret-another-secret-01234", 1000001,
	    &who) == ERR_BAD_TOKEN);
	free(t);
}

TEST(token_alg_none_refused)
{
	struct principal	who;
	/* {"alg":"none","typ":"JWT"} . {"sub":SUB,"role":"admin","exp":9e9} */
	const char		*forged = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	    "eyJzdWIiOiI1MDdmMWY3N2JjZjg2Y2Q3OTk0MzkwMTEiLCJyb2xlIjoiYWRtaW4i"
	    "LCJleHAiOjk5OTk5OTk5OTl9.";

	CHECK(jwt_token_verify(forged, KEY, 1000, &who) == ERR_BAD_TOKEN);
}

TEST(token_garbage_refused)
{
	struct principal	who;

	CHECK(jwt_token_verify("", KEY, 1000, &who) == ERR_BAD_TOKEN);
	CHECK(jwt_token_verify("a.b.c", KEY, 1000, &who) == ERR_BAD_TOKEN);
	CHECK(jwt_token_verify("not a token", KEY, 1000, &who) ==
	    ERR_BAD_TOKEN);
}

/* A token signed with our key by alg, for issuer iss and audience aud
 * (none when NULL). */
static char *
minted_with(jwt_alg_t alg, const char *iss, const char *aud)
{
	jwt_t	*jwt;
	char	*t;

	jwt_new(&jwt);
	jwt_add_grant(jwt, "sub", SUB);
	jwt_add_grant(jwt, "role", ROLE_ADMIN);
	jwt_add_grant_int(jwt, "exp", 9000000);
	if (iss != NULL)
		jwt_add_grant(jwt, "iss", iss);
	if (aud != NULL)
		jwt_add_grant(jwt, "aud", aud);
	jwt_set_alg(jwt, alg, (const unsigned char *)KEY, (int)strlen(KEY));
	t = jwt_encode_str(jwt);
	jwt_free(jwt);
	return (t);
}

/* A token signed with our key but minted for another audience, or with
 * no issuer: someone else's use of a shared key is not ours. */
static char *
minted(const char *iss, const char *aud)
{
	return (minted_with(JWT_ALG_HS256, iss, aud));
}

TEST(token_of_another_issuer_or_audience_refused)
{
	struct principal	 who;
	char			*t;

	t = minted(JWT_ISSUER, JWT_AUDIENCE);
	CHECK(jwt_token_verify(t, KEY, 1000, &who) == ERR_NONE);
	free(t);
	t = minted(JWT_ISSUER, "billing");
	CHECK(jwt_token_verify(t, KEY, 1000, &who) == ERR_BAD_TOKEN);
	free(t);
	t = minted(NULL, JWT_AUDIENCE);
	CHECK(jwt_token_verify(t, KEY, 1000, &who) == ERR_BAD_TOKEN);
	free(t);
	t = minted(NULL, NULL);
	CHECK(jwt_token_verify(t, KEY, 1000, &who) == ERR_BAD_TOKEN);
	free(t);
}

/* The signature is checked over the first two parts exactly as sent,
 * and as text: a changed claim, or the same signature spelt another
 * way (the unused low bits of its last character set), is not ours. */
TEST(token_tampered_or_respelt_refused)
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	struct principal	 who;
	char			*t, *dot, *last;

	t = jwt_token_issue(SUB, ROLE_CUSTOMER, 0, KEY, 3600, 1000000);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	last = t + strlen(t) - 1;
	*last = b64[(strchr(b64, *last) - b64) ^ 1];
	CHECK(jwt_token_verify(t, KEY, 1000001, &who) == ERR_BAD_TOKEN);
	*last = b64[(strchr(b64, *last) - b64) ^ 1];
	CHECK(jwt_token_verify(t, KEY, 1000001, &who) == ERR_NONE);
	/* One character of the claims changed, the signature kept. */
	dot = strchr(t, '.');
	dot[2] = dot[2] == 'A' ? 'B' : 'A';
	CHECK(jwt_token_verify(t, KEY, 1000001, &who) == ERR_BAD_TOKEN);
	free(t);
}

/* Signed with our key, but HS512: only HS256 is ours. */
TEST(token_of_another_algorithm_refused)
{
	struct principal	 who;
	char			*t;

	t = minted_with(JWT_ALG_HS512, JWT_ISSUER, JWT_AUDIENCE);
	CHECK(t != NULL && jwt_token_verify(t, KEY, 1000, &who) ==
	    ERR_BAD_TOKEN);
	free(t);
}
