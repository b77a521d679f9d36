/*
 * migrate.h -- the database's shape: indexes, validators, the first admin.
 */
#ifndef SHOPCTL_MIGRATE_H
#define SHOPCTL_MIGRATE_H

#include <mongoc/mongoc.h>

/* Apply every migration; 0, or -1 after logging what failed. */
int	migrate_run(mongoc_client_t *);

/* Load the checkout library into Redis (waiting for Redis) and move
 * older Idempotency-Keys to their compact names: 0 or -1. */
int	migrate_redis(void);

/*
 * Make email (normalised as registration does) an admin: create it with
 * password, or promote the existing account only if password is that
 * account's password (else anyone who registered the address first
 * would become admin).  Returns 0, or -1 with a line on stderr that
 * says what to do.
 */
int	migrate_admin(mongoc_client_t *, const char *email,
	    const char *password);

/* shopctl dlq ... and shopctl outbox ... (queues.c): an exit status. */
int	queues_dlq(mongoc_client_t *, int argc, char **argv);
int	queues_outbox(mongoc_client_t *, int argc, char **argv);

/* shopctl orders [options] (orders.c; argv as main's): an exit status. */
int	orders_command(mongoc_client_t *, int argc, char **argv);

#endif
