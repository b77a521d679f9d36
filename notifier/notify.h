/*
 * notify.h -- the notifier's files: main.c (the process: claims, sends,
 * write-back), send.c (its two ways out: order emails over SMTP and
 * signed webhooks, both through libcurl) and retry.c (when a failed send
 * is tried again, and when it is parked).
 */
#ifndef NOTIFIER_NOTIFY_H
#define NOTIFIER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* One announcement: an order that committed, or its next transition. */
struct notice {
	char		 event_id[29];	/* "evt_<outbox id>": stable */
	const char	*event;		/* "order.completed", "order.cancelled"... */
	json_t		*order;		/* the order as the API shows it */
};

/* Once, before any thread: libcurl and the webhook key. */
int	notify_init(char *err, size_t errlen);
void	notify_cleanup(void);

/*
 * Send n to one destination; 0, or -1 with why in err (a refused
 * recipient, a timeout, a non-2xx answer...).  Each call stands alone:
 * threads may send at once.
 */
int	notify_email(const struct notice *n, const char *to, char *err,
	    size_t errlen);
int	notify_webhook(const struct notice *n, const char *url, char *err,
	    size_t errlen);

/* retry.c: the retry policy */
int64_t	retry_backoff_ms(int64_t attempts);
int	retry_over(int64_t from_ms, int64_t now_ms);

#endif
