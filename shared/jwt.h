/*
 * jwt.h -- access tokens: HS256 JWTs with jti (random), sub, role, iat,
 * exp and ver (the user's token epoch when it was issued: api/runtime/tokens.c
 * refuses a token issued under an older one).  A token is named by its signature
 * (the third part), which logging out revokes.
 *
 * Only HS256 is accepted.  libjwt's jwt_decode() skips verification for
 * alg "none", so jwt_token_verify() checks the algorithm itself after
 * decoding; the unit tests hold a forged "none" token against it.
 */
#ifndef SHARED_JWT_H
#define SHARED_JWT_H

#include <time.h>

#include "errors.h"

#define ROLE_CUSTOMER	"customer"
#define ROLE_ADMIN	"admin"
#define ROLE_PAYMENTS	"payments"	/* may only record payments */

/* Every token's "iss" and "aud": tokens without them are refused. */
#define JWT_ISSUER	"checkout"
#define JWT_AUDIENCE	"checkout-api"

struct principal {
	char	sub[25];	/* user id, ObjectId hex */
	char	role[16];	/* ROLE_CUSTOMER, ROLE_ADMIN or ROLE_PAYMENTS */
	int	admin;		/* role is ROLE_ADMIN */
	int	payments;	/* role is ROLE_PAYMENTS */
	long	exp;		/* expiry, seconds since the epoch */
	long	ver;		/* token epoch it was issued under (0: none) */
	char	sig[96];	/* its signature, base64url: names the token */
};

/*
 * Sign a token for sub and role under token epoch ver with key, valid
 * ttl seconds from now.  Returns a new string (free() it), or NULL.
 */
char		*jwt_token_issue(const char *sub, const char *role, long ver,
		    const char *key, long ttl, time_t now);

/*
 * Verify token with key at time now and fill who.  ERR_BAD_TOKEN for
 * anything malformed, another algorithm or a bad signature, and
 * ERR_TOKEN_EXPIRED for a past exp.
 */
enum err	jwt_token_verify(const char *token, const char *key, time_t now,
		    struct principal *who);

#endif
