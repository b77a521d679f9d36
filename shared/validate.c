/*
 * validate.c -- shared input rules: emails, passwords, titles, ids.
 *
 * Emails are compared in their normalised form (trimmed, lower-cased),
 * which is also the form stored, so "A@x.io " and "a@x.io" are one user.
 */
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "validate.h"

long
validate_utf8_len(const char *s)
{
	const unsigned char	*p;
	long			 n;
	int			 follow;

	for (p = (const unsigned char *)s, n = 0; *p != '\0'; n++) {
		if (*p < 0x80)
			follow = 0;
		else if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			follow = 1;
		else if ((*p & 0xf0) == 0xe0)
			follow = 2;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			follow = 3;
		else
			return (-1);
		for (p++; follow > 0; follow--, p++) {
			if ((*p & 0xc0) != 0x80)
				return (-1);
		}
	}
	return (n);
}

/* Copy s without leading and trailing blanks into out; -1 if too long. */
static int
trim_copy(const char *s, char *out, size_t outlen)
{
	size_t	n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= outlen)
		return (-1);
	memcpy(out, s, n);
	out[n] = '\0';
	return (0);
}

static int
domain_ok(const char *d)
{
	const char	*p;
	size_t		 label;

	if (strchr(d, '.') == NULL || *d == '.' || d[strlen(d) - 1] == '.')
		return (0);
	for (p = d, label = 0; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return (0);
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return (0);
		if (label == 0 && *p == '-')
			return (0);
		if (++label > 63)
			return (0);
	}
	return (1);
}

static int
local_ok(const char *l, size_t len)
{
	size_t	i;

	if (len == 0 || len > 64 || l[0] == '.' || l[len - 1] == '.')
		return (0);
	for (i = 0; i < len; i++) {
		if (isalnum((unsigned char)l[i]))
			continue;
		if (strchr("!#$%&'*+/=?^_`{|}~.-", l[i]) == NULL)
			return (0);
		if (l[i] == '.' && l[i + 1] == '.')
			return (0);
	}
	return (1);
}

enum err
validate_email(const char *in, char *out, size_t outlen)
{
	char	*at, *p;

	if (outlen > EMAIL_MAX + 1)
		outlen = EMAIL_MAX + 1;
	if (trim_copy(in, out, outlen) == -1)
		return (ERR_BAD_EMAIL);
	for (p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((at = strchr(out, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return (ERR_BAD_EMAIL);
	if (!local_ok(out, (size_t)(at - out)) || !domain_ok(at + 1))
		return (ERR_BAD_EMAIL);
	return (ERR_NONE);
}

enum err
validate_password(const char *pw)
{
	long	n;

	n = validate_utf8_len(pw);
	if (n < cfg.password_min || n > cfg.password_max)
		return (ERR_PASSWORD_LENGTH);
	return (ERR_NONE);
}

enum err
validate_text(const char *in, long max, char *out, size_t outlen)
{
	const char	*p;
	long		 n;

	for (p = in; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return (ERR_INVALID);
	}
	if (trim_copy(in, out, outlen) == -1)
		return (ERR_OUT_OF_RANGE);
	if ((n = validate_utf8_len(out)) == -1)
		return (ERR_INVALID);
	if (n < 1 || n > max)
		return (ERR_OUT_OF_RANGE);
	return (ERR_NONE);
}

enum err
validate_title(const char *in, char *out, size_t outlen)
{
	return (validate_text(in, cfg.title_max, out, outlen));
}

/* n digits of s as a number, or -1. */
static int
digits(const char *s, int n)
{
	int	v, i;

	for (i = 0, v = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	return (v);
}

int
validate_iso_time(const char *s, int64_t *ms)
{
	struct tm	 tm;
	const char	*p;
	int		 frac, scale, off, sign;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' ||
	    (tm.tm_year = digits(s, 4)) < 1970 || tm.tm_year > 9999 ||
	    (tm.tm_mon = digits(s + 5, 2)) < 1 || tm.tm_mon > 12 ||
	    (tm.tm_mday = digits(s + 8, 2)) < 1 || tm.tm_mday > 31 ||
	    (tm.tm_hour = digits(s + 11, 2)) < 0 || tm.tm_hour > 23 ||
	    (tm.tm_min = digits(s + 14, 2)) < 0 || tm.tm_min > 59 ||
	    (tm.tm_sec = digits(s + 17, 2)) < 0 || tm.tm_sec > 59)
		return (-1);
	p = s + 19;
	frac = 0;
	if (*p == '.') {
		for (p++, scale = 100; isdigit((unsigned char)*p); p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
		if (p == s + 20)
			return (-1);
	}
	off = 0;
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (p[3] != ':' || digits(p + 1, 2) < 0 || digits(p + 1, 2) > 23 ||
		    digits(p + 4, 2) < 0 || digits(p + 4, 2) > 59 ||
		    p[6] != '\0')
			return (-1);
		off = sign * (digits(p + 1, 2) * 3600 + digits(p + 4, 2) * 60);
	} else if (p[0] != 'Z' || p[1] != '\0') {
		return (-1);
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return (-1);
	/* timegm() normalises 31 February: refuse what it moved. */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_mday != digits(s + 8, 2))
		return (-1);
	*ms = ((int64_t)t - off) * 1000 + frac;
	return (0);
}

int
validate_oid(const char *s)
{
	size_t	i;

	for (i = 0; i < 24; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return (0);
	}
	return (s[24] == '\0');
}

enum err
validate_idempotency_key(const char *key)
{
	size_t	i, n;

	n = strlen(key);
	if (n < 1 || n > 255)
		return (ERR_BAD_IDEMPOTENCY_KEY);
	for (i = 0; i < n; i++) {
		if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
			return (ERR_BAD_IDEMPOTENCY_KEY);
	}
	return (ERR_NONE);
}
