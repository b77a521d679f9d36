/*
 * errors.h -- every failure the API can report, in one table.
 *
 * Functions return ERR_NONE or an enum err; only the API's reply code
 * turns one into HTTP.  Each entry maps to a status, a snake_case code
 * and a default message (docs/ARCHITECTURE.md section 2).  To add an error, add it
 * here and to the table in errors.c, in the same order.
 */
#ifndef SHARED_ERRORS_H
#define SHARED_ERRORS_H

enum err {
	ERR_NONE = 0,
	/* 400: the request itself is wrong. */
	ERR_BAD_JSON,
	ERR_JSON_NUL,
	ERR_JSON_DUPLICATE_KEY,
	ERR_JSON_NUMBER,
	ERR_NOT_OBJECT,
	ERR_MISSING_FIELD,
	ERR_WRONG_TYPE,
	ERR_INVALID,
	ERR_OUT_OF_RANGE,
	ERR_BAD_ID,
	ERR_BAD_EMAIL,
	ERR_PASSWORD_LENGTH,
	ERR_PRICE,
	ERR_SALE_WINDOW,
	ERR_UNKNOWN_FIELD,
	ERR_BAD_QUERY,
	ERR_CART_EMPTY,
	ERR_CART_CHANGED,
	ERR_BAD_IDEMPOTENCY_KEY,
	ERR_WEBSOCKET_REQUIRED,
	ERR_BODY_NOT_ALLOWED,
	/* 401 */
	ERR_UNAUTHENTICATED,
	ERR_BAD_TOKEN,
	ERR_TOKEN_EXPIRED,
	ERR_TOKEN_REVOKED,
	ERR_BAD_CREDENTIALS,
	/* 403 */
	ERR_FORBIDDEN,
	ERR_ADMIN_ONLY,
	ERR_PAYMENTS_ONLY,
	ERR_DEVELOPMENT_ONLY,
	ERR_WRONG_PASSWORD,
	/* 404, 405 */
	ERR_ROUTE_NOT_FOUND,
	ERR_NOT_FOUND,
	ERR_USER_NOT_FOUND,
	ERR_PRODUCT_NOT_FOUND,
	ERR_CHECKOUT_NOT_FOUND,
	ERR_ORDER_NOT_FOUND,
	ERR_DEAD_LETTER_NOT_FOUND,
	ERR_NOTIFICATION_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	/* 409 */
	ERR_EMAIL_TAKEN,
	ERR_IDEMPOTENCY_IN_PROGRESS,
	ERR_CHECKOUT_FAILED,
	ERR_LAST_ADMIN,
	ERR_OUT_OF_STOCK,
	ERR_INVALID_TRANSITION,
	ERR_AMOUNT_MISMATCH,
	ERR_ALREADY_PAID,
	ERR_SALE_NOT_STARTED,
	ERR_SALE_ENDED,
	ERR_LIMIT_EXCEEDED,
	ERR_WITHDRAWN,
	ERR_NOT_WAITLISTED,
	ERR_ORDER_EXISTS,
	ERR_NOT_REPLAYABLE,
	/* 413, 415, 422, 429 */
	ERR_BODY_TOO_LARGE,
	ERR_CONTENT_TYPE,
	ERR_IDEMPOTENCY_MISMATCH,
	ERR_PRODUCT_UNAVAILABLE,
	ERR_CART_TOO_LARGE,
	ERR_RATE_LIMITED,
	/* 500, 503 */
	ERR_INTERNAL,
	ERR_REDIS_DOWN,
	ERR_MONGO_DOWN,
	ERR_OVERLOADED,
	ERR_QUEUE_FULL,
	ERR_NOT_REPLICATED,
	ERR__COUNT
};

struct err_info {
	int		 status;	/* HTTP status */
	const char	*code;		/* snake_case, stable for clients */
	const char	*message;	/* default human text */
	const char	*with_field;	/* text with one %s for the field */
};

/* The table row for err (borrowed, static); ERR_INTERNAL's if unknown. */
const struct err_info	*err_info(enum err);

#endif
