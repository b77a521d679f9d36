/*
 * money.c -- decimal prices in, integer cents inside, decimals out.
 *
 * JSON numbers arrive as doubles (jansson keeps no text), so "19.99" is
 * 19.989999...  The decimal a client wrote is recovered as the shortest
 * text that reads back as the same double (what "%.17g" trimmed to its
 * fewest digits gives: 19.99, 1e-09, 19.990000001); a value is accepted
 * only when that text has at most two decimal places and no minus sign
 * (-0.0 too).  A tolerance on value * 100 would let 1e-9 and
 * 4.878795380330904e-25 through as 0.  Output goes through json.c's
 * dump, whose precision prints cents exactly.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "money.h"

int64_t
money_max_cents(void)
{
	return ((int64_t)cfg.price_max * 100);
}

/* Decimal places of the shortest text that reads back as d (d >= 0). */
static int
places(double d)
{
	char	buf[40], *e;
	int	p, exp;

	for (p = 1; p <= 17; p++) {
		snprintf(buf, sizeof(buf), "%.*e", p - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if ((e = strchr(buf, 'e')) == NULL)
		return (99);
	exp = atoi(e + 1);
	return (p - 1 - exp > 0 ? p - 1 - exp : 0);
}

enum err
money_from_json(const json_t *v, int64_t max_cents, int64_t *cents)
{
	double	d, rounded;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) > max_cents / 100)
			return (ERR_PRICE);
		*cents = (int64_t)json_integer_value(v) * 100;
		return (ERR_NONE);
	}
	if (!json_is_real(v))
		return (ERR_WRONG_TYPE);
	d = json_real_value(v);
	if (!isfinite(d) || signbit(d) || places(d) > 2)
		return (ERR_PRICE);
	rounded = nearbyint(d * 100.0);
	if (rounded > (double)max_cents)
		return (ERR_PRICE);
	*cents = (int64_t)rounded;
	return (ERR_NONE);
}

json_t *
money_to_json(int64_t cents)
{
	if (cents % 100 == 0)
		return (json_integer(cents / 100));
	return (json_real((double)cents / 100.0));
}

int
money_text(int64_t cents, char *buf, size_t len)
{
	uint64_t	abs;
	int		n;

	abs = cents < 0 ? -(uint64_t)cents : (uint64_t)cents;
	if (abs % 100 == 0)
		n = snprintf(buf, len, "%s%" PRIu64, cents < 0 ? "-" : "",
		    abs / 100);
	else if (abs % 10 == 0)
		n = snprintf(buf, len, "%s%" PRIu64 ".%" PRIu64,
		    cents < 0 ? "-" : "", abs / 100, abs % 100 / 10);
	else
		n = snprintf(buf, len, "%s%" PRIu64 ".%02" PRIu64,
		    cents < 0 ? "-" : "", abs / 100, abs % 100);
	return (n >= 0 && (size_t)n < len ? n : -1);
}

void
money_format(int64_t cents, char *buf, size_t len)
{
	snprintf(buf, len, "%s%" PRId64 ".%02" PRId64, cents < 0 ? "-" : "",
	    (cents < 0 ? -cents : cents) / 100,
	    (cents < 0 ? -cents : cents) % 100);
}
