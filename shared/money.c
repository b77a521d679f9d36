/*
 * money.c -- decimal prices in, integer cents inside, decimals out.
 *
 * JSON numbers arrive as doubles (jansson), so "19.99" is 19.989999...;
 * a value is accepted when value * 100 lies within 1e-6 of an integer,
 * which admits every decimal with two places up to PRICE_MAX and refuses
 * any third place (the nearest double of x.xx1 is 1e-3 away).  Output
 * goes through json.c's dump, whose precision prints cents exactly.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "config.h"
#include "money.h"

int64_t
money_max_cents(void)
{
	return ((int64_t)cfg.price_max * 100);
}

enum err
money_from_json(const json_t *v, int64_t max_cents, int64_t *cents)
{
	double	d, scaled, rounded;

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
	if (!isfinite(d) || d < 0)
		return (ERR_PRICE);
	scaled = d * 100.0;
	rounded = nearbyint(scaled);
	if (fabs(scaled - rounded) > 1e-6 || rounded > (double)max_cents)
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

void
money_format(int64_t cents, char *buf, size_t len)
{
	snprintf(buf, len, "%s%" PRId64 ".%02" PRId64, cents < 0 ? "-" : "",
	    (cents < 0 ? -cents : cents) / 100,
	    (cents < 0 ? -cents : cents) % 100);
}
