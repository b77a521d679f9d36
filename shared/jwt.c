/*
 * jwt.c -- issue and verify HS256 tokens with libjwt.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jwt.h>
#include <sodium.h>

#include "jwt.h"
#include "validate.h"

#define TOKEN_MAX	4096

char *
jwt_token_issue(const char *sub, const char *role, long ver, const char *key,
    long ttl, time_t now)
{
	jwt_t		*jwt;
	unsigned char	 raw[12];
	char		*out, jti[25];

	out = NULL;
	/* Two tokens of one user issued in one second differ by jti, so
	 * that logging one out (by its signature) spares the other. */
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(jti, sizeof(jti), raw, sizeof(raw));
	if (jwt_new(&jwt) != 0)
		return (NULL);
	if (jwt_add_grant(jwt, "jti", jti) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    jwt_add_grant(jwt, "role", role) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)now + ttl) != 0 ||
	    jwt_add_grant_int(jwt, "ver", ver) != 0 ||
	    jwt_add_grant(jwt, "iss", JWT_ISSUER) != 0 ||
	    jwt_add_grant(jwt, "aud", JWT_AUDIENCE) != 0)
		goto cleanup;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key,
	    (int)strlen(key)) != 0)
		goto cleanup;
	out = jwt_encode_str(jwt);
cleanup:
	jwt_free(jwt);
	return (out);
}

/* Copy the claims into who; ERR_BAD_TOKEN if one is missing or odd. */
static enum err
claims(jwt_t *jwt, time_t now, struct principal *who)
{
	const char	*sub, *role, *iss, *aud;
	long		 exp, ver;

	/* Ours and for this API: not a token another service made with a
	 * shared key, nor one of ours meant for something else. */
	iss = jwt_get_grant(jwt, "iss");
	aud = jwt_get_grant(jwt, "aud");
	if (iss == NULL || strcmp(iss, JWT_ISSUER) != 0 || aud == NULL ||
	    strcmp(aud, JWT_AUDIENCE) != 0)
		return (ERR_BAD_TOKEN);
	sub = jwt_get_grant(jwt, "sub");
	role = jwt_get_grant(jwt, "role");
	errno = 0;
	exp = jwt_get_grant_int(jwt, "exp");
	if (sub == NULL || role == NULL || errno == ENOENT || exp <= 0)
		return (ERR_BAD_TOKEN);
	errno = 0;
	ver = jwt_get_grant_int(jwt, "ver");
	if (errno == ENOENT)
		ver = 0;		/* tokens from before epochs */
	if (ver < 0)
		return (ERR_BAD_TOKEN);
	if (!validate_oid(sub))
		return (ERR_BAD_TOKEN);
	if (strcmp(role, ROLE_CUSTOMER) != 0 && strcmp(role, ROLE_ADMIN) != 0 &&
	    strcmp(role, ROLE_PAYMENTS) != 0)
		return (ERR_BAD_TOKEN);
	if (exp <= (long)now)
		return (ERR_TOKEN_EXPIRED);
	snprintf(who->sub, sizeof(who->sub), "%s", sub);
	snprintf(who->role, sizeof(who->role), "%s", role);
	who->admin = strcmp(role, ROLE_ADMIN) == 0;
	who->payments = strcmp(role, ROLE_PAYMENTS) == 0;
	who->exp = exp;
	who->ver = ver;
	return (ERR_NONE);
}

enum err
jwt_token_verify(const char *token, const char *key, time_t now,
    struct principal *who)
{
	jwt_t		*jwt;
	const char	*sig;
	enum err	 e;

	if (strlen(token) > TOKEN_MAX)
		return (ERR_BAD_TOKEN);
	if (jwt_decode(&jwt, token, (const unsigned char *)key,
	    (int)strlen(key)) != 0)
		return (ERR_BAD_TOKEN);
	e = ERR_BAD_TOKEN;
	if (jwt_get_alg(jwt) == JWT_ALG_HS256)
		e = claims(jwt, now, who);
	jwt_free(jwt);
	sig = strrchr(token, '.');
	if (e == ERR_NONE && (sig == NULL || strlen(sig + 1) == 0 ||
	    strlen(sig + 1) >= sizeof(who->sig)))
		e = ERR_BAD_TOKEN;
	if (e == ERR_NONE)
		memcpy(who->sig, sig + 1, strlen(sig + 1) + 1);
	return (e);
}
