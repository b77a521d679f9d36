/*
 * password.c -- argon2id with libsodium's interactive limits
 * (OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE = 64 MiB).
 *
 * password_burn() verifies against a fixed hash, so that a login for an
 * unknown email costs what a wrong password costs and the two cannot be
 * told apart by timing.
 */
#include <pthread.h>
#include <string.h>

#include "password.h"

static char		burn_hash[PASSWORD_HASH_MAX];
static pthread_once_t	burn_once = PTHREAD_ONCE_INIT;

int
password_hash(const char *pw, char *out)
{
	if (crypto_pwhash_str(out, pw, strlen(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return (-1);
	return (0);
}

int
password_verify(const char *hash, const char *pw)
{
	return (crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0);
}

static void
burn_init(void)
{
	(void)password_hash("not-a-real-password", burn_hash);
}

void
password_burn(const char *pw)
{
	pthread_once(&burn_once, burn_init);
	(void)password_verify(burn_hash, pw);
}
