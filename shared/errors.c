/*
 * errors.c -- the one table of API errors: status, code, message.
 *
 * The order of rows follows enum err; errors_test.c checks that every
 * value has a row with a code, so a new enum value without a row fails
 * the unit tests rather than answering with a blank error.
 */
#include "errors.h"

static const struct err_info errtab[ERR__COUNT] = {
	[ERR_NONE] = { 200, "ok", "ok" },
	[ERR_BAD_JSON] = { 400, "invalid_json",
	    "the request body is not valid JSON" },
	[ERR_JSON_NUL] = { 400, "invalid_json", "the request body is not "
	    "accepted: a string contains \\u0000 (NUL)" },
	[ERR_JSON_DUPLICATE_KEY] = { 400, "invalid_json", "the request body "
	    "is not accepted: an object names the same key twice" },
	[ERR_JSON_NUMBER] = { 400, "out_of_range", "a number in the body is "
	    "beyond what any field accepts (integers up to 2^63 - 1)" },
	[ERR_NOT_OBJECT] = { 400, "invalid_body",
	    "the request body must be a JSON object" },
	[ERR_MISSING_FIELD] = { 400, "missing_field",
	    "a required field is missing", "%s is required" },
	[ERR_WRONG_TYPE] = { 400, "invalid_type",
	    "a field has the wrong type", "%s has the wrong type" },
	[ERR_INVALID] = { 400, "invalid_value", "a field has an invalid value",
	    "%s is invalid" },
	[ERR_OUT_OF_RANGE] = { 400, "out_of_range",
	    "a value is outside its allowed range",
	    "%s is outside its allowed range" },
	[ERR_BAD_ID] = { 400, "invalid_id",
	    "an id must be a 24-character hexadecimal ObjectId",
	    "%s must be a 24-character hexadecimal ObjectId" },
	[ERR_BAD_EMAIL] = { 400, "invalid_email",
	    "email must be a valid address of at most 254 characters" },
	[ERR_PASSWORD_LENGTH] = { 400, "invalid_password",
	    "password must have PASSWORD_MIN to PASSWORD_MAX characters" },
	[ERR_PRICE] = { 400, "invalid_price",
	    "price must be a number from 0 to the maximum, with at most 2 "
	    "decimal places" },
	[ERR_SALE_WINDOW] = { 400, "invalid_sale_window",
	    "saleEndsAt must be after saleStartsAt" },
	[ERR_UNKNOWN_FIELD] = { 400, "unknown_field",
	    "the body has a field this endpoint does not accept",
	    "%s is not a field this endpoint accepts" },
	[ERR_BAD_QUERY] = { 400, "invalid_query",
	    "a query parameter is invalid", "query parameter %s is invalid" },
	[ERR_CART_EMPTY] = { 400, "cart_empty", "the cart is empty" },
	[ERR_CART_CHANGED] = { 409, "cart_changed",
	    "the cart changed since this checkout was submitted (a replayed "
	    "dead letter orders only what was submitted): nothing was "
	    "ordered" },
	[ERR_BAD_IDEMPOTENCY_KEY] = { 400, "invalid_idempotency_key",
	    "Idempotency-Key must be 1 to 255 visible ASCII characters" },
	[ERR_WEBSOCKET_REQUIRED] = { 400, "websocket_required",
	    "this endpoint is a WebSocket: connect with Upgrade: websocket "
	    "and Sec-WebSocket-Version: 13" },
	[ERR_BODY_NOT_ALLOWED] = { 400, "body_not_allowed",
	    "a GET, HEAD, DELETE or OPTIONS request must not carry a body "
	    "(Content-Length or Transfer-Encoding); the connection is closed" },
	[ERR_UNAUTHENTICATED] = { 401, "unauthenticated",
	    "an Authorization: Bearer token is required" },
	[ERR_BAD_TOKEN] = { 401, "invalid_token",
	    "the token is malformed, has a bad signature or an unsupported "
	    "algorithm" },
	[ERR_TOKEN_EXPIRED] = { 401, "token_expired", "the token has expired" },
	[ERR_TOKEN_REVOKED] = { 401, "token_revoked",
	    "the token was revoked (logged out, or the account changed): log "
	    "in again" },
	[ERR_BAD_CREDENTIALS] = { 401, "invalid_credentials",
	    "email or password is incorrect" },
	[ERR_FORBIDDEN] = { 403, "forbidden",
	    "you may not access this resource" },
	[ERR_ADMIN_ONLY] = { 403, "admin_only",
	    "this action requires the admin role (an admin is created by "
	    "`shopctl migrate` from ADMIN_EMAIL and ADMIN_PASSWORD, or by "
	    "`shopctl admin EMAIL`)" },
	[ERR_DEVELOPMENT_ONLY] = { 403, "development_only",
	    "test payments are taken only with APP_ENV=development" },
	[ERR_PAYMENTS_ONLY] = { 403, "payments_only",
	    "recording a payment requires the admin or the payments role" },
	[ERR_WRONG_PASSWORD] = { 403, "wrong_password",
	    "currentPassword is not this account's password" },
	[ERR_ROUTE_NOT_FOUND] = { 404, "route_not_found",
	    "no such endpoint" },
	[ERR_NOT_FOUND] = { 404, "not_found", "not found" },
	[ERR_USER_NOT_FOUND] = { 404, "user_not_found", "no such user" },
	[ERR_PRODUCT_NOT_FOUND] = { 404, "product_not_found",
	    "no such product" },
	[ERR_CHECKOUT_NOT_FOUND] = { 404, "checkout_not_found",
	    "no such checkout" },
	[ERR_ORDER_NOT_FOUND] = { 404, "order_not_found", "no such order" },
	[ERR_DEAD_LETTER_NOT_FOUND] = { 404, "dead_letter_not_found",
	    "no such dead letter" },
	[ERR_NOTIFICATION_NOT_FOUND] = { 404, "notification_not_found",
	    "no such parked notification" },
	[ERR_METHOD_NOT_ALLOWED] = { 405, "method_not_allowed",
	    "this endpoint does not accept that method" },
	[ERR_EMAIL_TAKEN] = { 409, "email_taken",
	    "a user with this email already exists" },
	[ERR_IDEMPOTENCY_IN_PROGRESS] = { 409, "idempotency_in_progress",
	    "a request with this Idempotency-Key is still being processed" },
	[ERR_CHECKOUT_FAILED] = { 409, "checkout_failed",
	    "the checkout failed" },
	[ERR_LAST_ADMIN] = { 409, "last_admin",
	    "the last active admin cannot be demoted or disabled" },
	[ERR_OUT_OF_STOCK] = { 409, "out_of_stock",
	    "not enough stock of a product in the cart" },
	[ERR_INVALID_TRANSITION] = { 409, "invalid_transition",
	    "the order's current status does not allow this" },
	[ERR_AMOUNT_MISMATCH] = { 409, "amount_mismatch",
	    "amount is not the order's total" },
	[ERR_ALREADY_PAID] = { 409, "already_paid",
	    "the order was paid already, with another reference" },
	[ERR_SALE_NOT_STARTED] = { 409, "sale_not_started",
	    "the sale of a product in the cart has not started yet" },
	[ERR_SALE_ENDED] = { 409, "sale_ended",
	    "the sale of a product in the cart has ended" },
	[ERR_LIMIT_EXCEEDED] = { 409, "limit_exceeded",
	    "the cart holds more units of a product than one customer may "
	    "buy" },
	[ERR_WITHDRAWN] = { 409, "withdrawn",
	    "the buyer withdrew the checkout from the waitlist" },
	[ERR_NOT_WAITLISTED] = { 409, "not_waitlisted",
	    "only a waitlisted checkout can be withdrawn" },
	[ERR_ORDER_EXISTS] = { 409, "order_exists",
	    "the checkout has an order already: it is not run again (drop "
	    "the dead letter)" },
	[ERR_NOT_REPLAYABLE] = { 409, "not_replayable",
	    "the checkout's status is no longer the dead letter's failure "
	    "(or has expired): it is not run again (drop the dead letter)" },
	[ERR_BODY_TOO_LARGE] = { 413, "body_too_large",
	    "the request body is larger than the limit" },
	[ERR_CONTENT_TYPE] = { 415, "unsupported_media_type",
	    "the request body must be sent as Content-Type: application/json" },
	[ERR_IDEMPOTENCY_MISMATCH] = { 422, "idempotency_key_reused",
	    "this Idempotency-Key was used with a different request body" },
	[ERR_PRODUCT_UNAVAILABLE] = { 422, "product_unavailable",
	    "the product does not exist or is no longer available" },
	[ERR_CART_TOO_LARGE] = { 422, "cart_too_large",
	    "the cart has reached its maximum number of lines" },
	[ERR_RATE_LIMITED] = { 429, "rate_limited",
	    "too many attempts; retry later" },
	[ERR_INTERNAL] = { 500, "internal", "internal error" },
	[ERR_REDIS_DOWN] = { 503, "redis_unavailable",
	    "the queue and session store (Redis) is unavailable" },
	[ERR_MONGO_DOWN] = { 503, "database_unavailable",
	    "the database (MongoDB) is unavailable" },
	[ERR_OVERLOADED] = { 503, "overloaded",
	    "the server is overloaded; retry later" },
	[ERR_QUEUE_FULL] = { 503, "queue_full",
	    "too many checkouts are waiting; retry later" },
	[ERR_NOT_REPLICATED] = { 503, "not_replicated",
	    "the checkout could not be confirmed on a Redis replica; retry "
	    "with the same Idempotency-Key" },
};

const struct err_info *
err_info(enum err e)
{
	if ((int)e < 0 || e >= ERR__COUNT || errtab[e].code == 0)
		return (&errtab[ERR_INTERNAL]);
	return (&errtab[e]);
}
