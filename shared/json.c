/*
 * json.c -- parsing request bodies and dumping responses.
 *
 * Responses are dumped with 15 significant digits: enough for any cent
 * amount below 10^13, and few enough that 19.99 prints as 19.99 rather
 * than as the nearest double's 17-digit expansion.
 */
#include <math.h>
#include <string.h>

#include <stdio.h>

#include "json.h"

enum err
json_parse_body(const void *data, size_t len, json_t **out, char *where,
    size_t wherelen)
{
	json_error_t	 jerr;
	json_t		*v;

	*out = NULL;
	if (where != NULL && wherelen > 0)
		where[0] = '\0';
	if (len == 0) {
		*out = json_object();
		return (ERR_NONE);
	}
	if ((v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		if (where != NULL)
			snprintf(where, wherelen, "line %d, column %d: %s",
			    jerr.line, jerr.column, jerr.text);
		switch (json_error_code(&jerr)) {
		case json_error_null_character:
			return (ERR_JSON_NUL);
		case json_error_duplicate_key:
			return (ERR_JSON_DUPLICATE_KEY);
		case json_error_numeric_overflow:
			return (ERR_JSON_NUMBER);
		default:
			return (ERR_BAD_JSON);
		}
	}
	if (!json_is_object(v)) {
		json_decref(v);
		return (ERR_NOT_OBJECT);
	}
	*out = v;
	return (ERR_NONE);
}

char *
json_dump_body(const json_t *v)
{
	return (json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY));
}

int
json_plain(const char *s)
{
	const unsigned char	*c;

	for (c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
			return (0);
	}
	return (1);
}

/*
 * Absent is "not given"; null is refused unless the field is required
 * (then it reads as missing): a body names what it sets, with a value.
 */
static enum err
field_absent(json_t *v, int required)
{
	if (v == NULL)
		return (required ? ERR_MISSING_FIELD : ERR_NONE);
	return (required ? ERR_MISSING_FIELD : ERR_WRONG_TYPE);
}

enum err
json_field_string(json_t *obj, const char *key, int required,
    const char **out)
{
	json_t	*v;

	*out = NULL;
	v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v))
		return (field_absent(v, required));
	if (!json_is_string(v))
		return (ERR_WRONG_TYPE);
	*out = json_string_value(v);
	return (ERR_NONE);
}

/* An integer, or a real with no fraction (JSON Schema: 2.0 is 2). */
static int
integral(json_t *v, json_int_t *out)
{
	double	d;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return (1);
	}
	if (!json_is_real(v))
		return (0);
	d = json_real_value(v);
	if (d != floor(d) || d < -9.0e15 || d > 9.0e15)
		return (0);
	*out = (json_int_t)d;
	return (1);
}

enum err
json_field_int(json_t *obj, const char *key, int required,
    json_int_t min, json_int_t max, json_int_t *out)
{
	json_t		*v;
	json_int_t	 n;

	v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v))
		return (field_absent(v, required));
	if (!integral(v, &n))
		return (ERR_WRONG_TYPE);
	if (n < min || n > max)
		return (ERR_OUT_OF_RANGE);
	*out = n;
	return (ERR_NONE);
}

enum err
json_only_fields(json_t *obj, const char *const *allowed,
    const char **bad)
{
	const char	*key;
	json_t		*v;
	size_t		 i;

	json_object_foreach(obj, key, v) {
		for (i = 0; allowed[i] != NULL; i++) {
			if (strcmp(allowed[i], key) == 0)
				break;
		}
		if (allowed[i] == NULL) {
			*bad = key;
			return (ERR_UNKNOWN_FIELD);
		}
	}
	return (ERR_NONE);
}
