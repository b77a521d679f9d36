/*
 * money.h -- prices in the API are decimals, everywhere else integer cents.
 *
 * A JSON price is accepted when it is a number from 0 to the maximum
 * with at most two decimal places; it is converted to cents once, here,
 * and all arithmetic after that is on int64_t cents.
 */
#ifndef SHARED_MONEY_H
#define SHARED_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "errors.h"

/* The most cents any single price may hold (PRICE_MAX units). */
int64_t		money_max_cents(void);

/*
 * Parse a JSON number (borrowed) into cents.  Returns ERR_NONE, or
 * ERR_WRONG_TYPE for a non-number, ERR_PRICE for a negative value, more
 * than two decimal places or a value above max_cents.
 */
enum err	money_from_json(const json_t *v, int64_t max_cents,
		    int64_t *cents);

/* A new JSON number for cents: an integer when whole, else a real. */
json_t		*money_to_json(int64_t cents);

/*
 * money_to_json(cents) as text into buf, printed from the cents: 19.99,
 * 19.9, 20 (the same text json_dump_body() gives below 10^15 cents, and
 * exact above).  Its length, or -1 if buf is too short.
 */
int		money_text(int64_t cents, char *buf, size_t len);

/* Format cents as "1234.50" into buf. */
void		money_format(int64_t cents, char *buf, size_t len);

#endif
