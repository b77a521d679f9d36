/*
 * json.h -- request bodies in, response bodies out, with jansson.
 *
 * Field getters distinguish a missing field from one of the wrong type,
 * so that `{"email": {"$gt": ""}}` is a 400 naming "email", never a
 * query.  Ownership uses jansson's words: the getters' outputs are
 * borrowed from the object they were read from.
 */
#ifndef SHARED_JSON_H
#define SHARED_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "errors.h"

/*
 * Parse a body that must be one JSON object.  An empty body parses as {}.
 * On ERR_NONE *out is new; otherwise ERR_BAD_JSON (or, more precisely,
 * ERR_JSON_NUL, ERR_JSON_DUPLICATE_KEY or ERR_JSON_NUMBER) or
 * ERR_NOT_OBJECT.  where (may be NULL) gets the place and jansson's
 * words for a parse error: "line 1, column 9: ..."; else "".
 */
enum err	json_parse_body(const void *data, size_t len, json_t **out,
		    char *where, size_t wherelen);

/* Dump compactly, with reals precise to the cent; new, free() it.  Any
 * value: an object, or a string or number alone. */
char		*json_dump_body(const json_t *v);

/*
 * Whether s can stand between quotes in JSON as it is: printable ASCII
 * but '"' and '\\'.  The hot path's bodies of a fixed shape (a submit's
 * answer, a checkout's status) are printed directly when their strings
 * pass, rather than built and dumped by jansson, which cost a worker a
 * third of its CPU (bench/NOTES.md, section 18).
 */
int		json_plain(const char *s);

/*
 * The string at key (borrowed).  ERR_MISSING_FIELD when absent (or null
 * and required), ERR_WRONG_TYPE when not a string (null included, when
 * optional).  When optional and absent, *out is NULL and ERR_NONE is
 * returned.
 */
enum err	json_field_string(json_t *obj, const char *key,
		    int required, const char **out);

/*
 * The integer at key, which must lie in [min, max]: ERR_MISSING_FIELD,
 * ERR_WRONG_TYPE (also for 1.5; 2.0 is 2, as in JSON Schema) or
 * ERR_OUT_OF_RANGE.  Null as for json_field_string().
 */
enum err	json_field_int(json_t *obj, const char *key, int required,
		    json_int_t min, json_int_t max, json_int_t *out);

/*
 * ERR_UNKNOWN_FIELD if obj has a key not in the NULL-terminated allowed
 * list; *bad is then that key (borrowed from obj).
 */
enum err	json_only_fields(json_t *obj, const char *const *allowed,
		    const char **bad);

#endif
