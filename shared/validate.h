/*
 * validate.h -- the rules for user input that more than one endpoint
 * shares.  Each returns ERR_NONE or the enum err the API answers with;
 * limits come from cfg.
 */
#ifndef SHARED_VALIDATE_H
#define SHARED_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define EMAIL_MAX	254

/*
 * Normalise (trim, lower-case) and check an email address into out,
 * which holds EMAIL_MAX + 1 bytes.  ERR_BAD_EMAIL when it is not one.
 */
enum err	validate_email(const char *in, char *out, size_t outlen);

/* Password length, in characters, within PASSWORD_MIN..PASSWORD_MAX. */
enum err	validate_password(const char *pw);

/*
 * Trim a product title into out and check it has 1..TITLE_MAX characters
 * and no control characters: ERR_INVALID or ERR_OUT_OF_RANGE.
 */
enum err	validate_title(const char *in, char *out, size_t outlen);

/* The same rule for any text of 1..max characters (reasons, references). */
enum err	validate_text(const char *in, long max, char *out, size_t outlen);

/*
 * An ISO 8601 time with seconds and a zone, "2026-12-03T10:00:00Z",
 * "...00.250Z" or "...00+01:00", into ms since the epoch; -1 if it is
 * not one (or not a real date).  Years 1970..9999.
 */
int		validate_iso_time(const char *s, int64_t *ms);

/* 1 if s is a 24-digit hexadecimal ObjectId, else 0. */
int		validate_oid(const char *s);

/* An Idempotency-Key: 1..255 visible ASCII characters. */
enum err	validate_idempotency_key(const char *key);

/* Characters (UTF-8 code points) in s; -1 if s is not valid UTF-8. */
long		validate_utf8_len(const char *s);

#endif
