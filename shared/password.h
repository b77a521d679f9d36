/*
 * password.h -- argon2id password hashes (libsodium crypto_pwhash_str).
 *
 * Both calls take tens of milliseconds and 64 MiB by design: call them
 * from a thread, never from kore's event loop.
 */
#ifndef SHARED_PASSWORD_H
#define SHARED_PASSWORD_H

#include <sodium.h>

#define PASSWORD_HASH_MAX	crypto_pwhash_STRBYTES

/* Hash pw into out (PASSWORD_HASH_MAX bytes): 0, or -1 out of memory. */
int	password_hash(const char *pw, char *out);

/* 1 if pw matches hash, else 0. */
int	password_verify(const char *hash, const char *pw);

/* Spend the time a verification takes, for unknown users. */
void	password_burn(const char *pw);

#endif
