/*
 * send.c -- an order email over SMTP and an order webhook over
 * HTTP, through libcurl (notify.h).
 *
 * Email: SMTP_URL (smtp:// with STARTTLS as SMTP_TLS says, or smtps://;
 * credentials in the URL), from MAIL_FROM to the buyer, plain text: the
 * order id, each line with its title, quantity and price, the total.
 * Its Message-ID is built from the event id, so a repeated send is
 * recognisably the same message.
 *
 * Webhook: a POST of {"id", "type", "createdAt", "data": {"order"}}
 * signed as Standard Webhooks does (Stripe's scheme, with a stable id):
 *   webhook-id: <event id>
 *   webhook-timestamp: <unix seconds>
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>
 * The key is WEBHOOK_SECRET: the bytes after "whsec_" base64-decoded,
 * else the text itself.  Any 2xx is delivered; anything else is retried
 * by the notifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "../shared/config.h"
#include "../shared/money.h"
#include "../shared/outbox.h"
#include "notify.h"

static unsigned char	key[512];
static size_t		keylen;

int
notify_init(char *err, size_t errlen)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return (-1);
	}
	if (config_webhook_key(key, sizeof(key), &keylen) == -1) {
		snprintf(err, errlen, "WEBHOOK_SECRET: the part after whsec_ "
		    "is not base64");
		return (-1);
	}
	return (0);
}

void
notify_cleanup(void)
{
	curl_global_cleanup();
}

/* A money amount of the order JSON (a number) as "12.50". */
static void
amount(json_t *v, char *buf, size_t len)
{
	int64_t	cents;

	if (money_from_json(v, INT64_MAX / 100, &cents) != ERR_NONE)
		cents = 0;
	money_format(cents, buf, len);
}

/* What the buyer is told of event: the subject and the first line. */
static void
wording(const struct notice *n, const char **subject, const char **opening)
{
	static const struct {
		const char	*event;
		const char	*subject;
		const char	*opening;
	} words[] = {
		{ OUTBOX_ORDER_CONFIRMED, "Order %s confirmed",
		    "Your payment was received: your order is confirmed." },
		{ OUTBOX_ORDER_FULFILLED, "Order %s shipped",
		    "Your order is on its way." },
		{ OUTBOX_ORDER_CANCELLED, "Order %s cancelled",
		    "Your order was cancelled." },
		{ OUTBOX_ORDER_EXPIRED, "Order %s expired",
		    "Your order was not paid in time and has expired; its "
		    "items went back on sale." },
		{ OUTBOX_ORDER_REFUNDED, "Order %s refunded",
		    "Your payment for this order was refunded." },
	};
	size_t	i;

	*subject = "Your order %s";
	*opening = "Thank you for your order.";
	if (strcmp(json_string_value(json_object_get(n->order, "status")) ?
	    json_string_value(json_object_get(n->order, "status")) : "",
	    "awaiting_payment") == 0)
		*opening = "Thank you for your order.  Please pay before the "
		    "time below, or it expires.";
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(words[i].event, n->event) == 0) {
			*subject = words[i].subject;
			*opening = words[i].opening;
		}
	}
}

/* The message, headers and body, CRLF line ends (new; free() it). */
static char *
email_text(const struct notice *n, const char *to)
{
	json_t		*item;
	const char	*id, *subject, *opening, *pay_by;
	char		*out, date[64], price[32], total[32], subj[128];
	size_t		 len, i;
	FILE		*fp;
	time_t		 now;

	fp = open_memstream(&out, &len);
	now = time(NULL);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
	    gmtime(&now));
	id = json_string_value(json_object_get(n->order, "id"));
	wording(n, &subject, &opening);
	snprintf(subj, sizeof(subj), subject, id);
	fprintf(fp, "From: %s\r\nTo: %s\r\nSubject: %s\r\n"
	    "Date: %s\r\nMessage-ID: <%s@checkout>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", cfg.mail_from, to,
	    subj, date, n->event_id);
	fprintf(fp, "%s\r\n\r\nOrder: %s\r\nStatus: %s\r\n\r\n", opening,
	    id, json_string_value(json_object_get(n->order, "status")));
	json_array_foreach(json_object_get(n->order, "items"), i, item) {
		amount(json_object_get(item, "price"), price, sizeof(price));
		fprintf(fp, "  %lld x %s at %s\r\n", (long long)
		    json_integer_value(json_object_get(item, "quantity")),
		    json_string_value(json_object_get(item, "title")), price);
	}
	amount(json_object_get(n->order, "total"), total, sizeof(total));
	fprintf(fp, "\r\nTotal: %s\r\n", total);
	if ((pay_by = json_string_value(json_object_get(n->order,
	    "payBy"))) != NULL && strcmp(n->event, OUTBOX_ORDER_COMPLETED) == 0)
		fprintf(fp, "Pay by: %s\r\n", pay_by);
	fclose(fp);
	return (out);
}

struct upload {
	const char	*data;
	size_t		 left;
};

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload	*u = arg;
	size_t		 n;

	n = size * nitems < u->left ? size * nitems : u->left;
	memcpy(buf, u->data, n);
	u->data += n;
	u->left -= n;
	return (n);
}

static size_t
discard_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	(void)buf;
	(void)arg;
	return (size * nitems);
}

/* Timeouts and no signals (threads), for every transfer. */
static CURL *
easy_new(const char *url)
{
	CURL	*c;

	if ((c = curl_easy_init()) == NULL)
		return (NULL);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg.notify_timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cfg.notify_timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
	return (c);
}

int
notify_email(const struct notice *n, const char *to, char *err,
    size_t errlen)
{
	struct curl_slist	*rcpt;
	struct upload		 up;
	CURLcode		 rc;
	CURL			*c;
	char			*text, addr[300];

	if ((c = easy_new(cfg.smtp_url)) == NULL) {
		snprintf(err, errlen, "libcurl: out of memory");
		return (-1);
	}
	text = email_text(n, to);
	up.data = text;
	up.left = strlen(text);
	snprintf(addr, sizeof(addr), "<%s>", cfg.mail_from);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, addr);
	snprintf(addr, sizeof(addr), "<%s>", to);
	rcpt = curl_slist_append(NULL, addr);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_USE_SSL,
	    strcmp(cfg.smtp_tls, "required") == 0 ? (long)CURLUSESSL_ALL :
	    strcmp(cfg.smtp_tls, "optional") == 0 ? (long)CURLUSESSL_TRY :
	    (long)CURLUSESSL_NONE);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		snprintf(err, errlen, "smtp: %s", curl_easy_strerror(rc));
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	free(text);
	return (rc == CURLE_OK ? 0 : -1);
}

/* The webhook's body (new; free() it). */
static char *
webhook_body(const struct notice *n)
{
	json_t	*o;
	char	*s;

	o = json_pack("{s:s, s:s, s:O, s:{s:O}}", "id", n->event_id, "type",
	    n->event, "createdAt", json_object_get(n->order, "createdAt"),
	    "data", "order", n->order);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(15));
	json_decref(o);
	return (s);
}

/* "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into out. */
static void
signature(const char *id, const char *ts, const char *body, char *out,
    size_t len)
{
	crypto_auth_hmacsha256_state	 st;
	unsigned char			 mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)id,
	    strlen(id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts,
	    strlen(ts));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body,
	    strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	memcpy(out, "v1,", 4);
	sodium_bin2base64(out + 3, len - 3, mac, sizeof(mac),
	    sodium_base64_VARIANT_ORIGINAL);
}

int
notify_webhook(const struct notice *n, const char *url, char *err,
    size_t errlen)
{
	struct curl_slist	*h;
	CURLcode		 rc;
	CURL			*c;
	long			 status;
	char			*body, ts[24], line[160], sig[80];

	if ((c = easy_new(url)) == NULL) {
		snprintf(err, errlen, "libcurl: out of memory");
		return (-1);
	}
	body = webhook_body(n);
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	signature(n->event_id, ts, body, sig, sizeof(sig));
	h = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(line, sizeof(line), "webhook-id: %s", n->event_id);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %s", ts);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "webhook-signature: %s", sig);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "User-Agent: checkout-notifier");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	status = 0;
	if ((rc = curl_easy_perform(c)) != CURLE_OK)
		snprintf(err, errlen, "webhook: %s", curl_easy_strerror(rc));
	else if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status),
	    status < 200 || status > 299)
		snprintf(err, errlen, "webhook: HTTP %ld", status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(body);
	return (rc == CURLE_OK && status >= 200 && status <= 299 ? 0 : -1);
}
