/*
 * json.c -- parsing request bodies and dumping responses.
 *
 * Responses are dumped with 15 significant digits: enough for any cent
 * amount below 10^13, and few enough that 19.99 prints as 19.99 rather
 * than as the nearest double's 17-digit expansion.
 */
#include <string.h>

#include "json.h"

enum err
json_parse_body(const void *data, size_t len, json_t **out)
{
	json_error_t	 jerr;
	json_t		*v;

	*out = NULL;
	if (len == 0) {
		*out = json_object();
		return (ERR_NONE);
	}
	if ((v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return (ERR_BAD_JSON);
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
	    JSON_REAL_PRECISION(15)));
}

enum err
json_field_string(json_t *obj, const char *key, int required,
    const char **out)
{
	json_t	*v;

	*out = NULL;
	v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v))
		return (required ? ERR_MISSING_FIELD : ERR_NONE);
	if (!json_is_string(v))
		return (ERR_WRONG_TYPE);
	*out = json_string_value(v);
	return (ERR_NONE);
}

enum err
json_field_int(json_t *obj, const char *key, int required,
    json_int_t min, json_int_t max, json_int_t *out)
{
	json_t	*v;

	v = json_object_get(obj, key);
	if (v == NULL || json_is_null(v))
		return (required ? ERR_MISSING_FIELD : ERR_NONE);
	if (!json_is_integer(v))
		return (ERR_WRONG_TYPE);
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return (ERR_OUT_OF_RANGE);
	*out = json_integer_value(v);
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
