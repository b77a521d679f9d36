/*
 * migrate.h -- the database's shape: indexes, validators, the first admin.
 */
#ifndef MIGRATIONS_MIGRATE_H
#define MIGRATIONS_MIGRATE_H

#include <mongoc/mongoc.h>

/* Apply every migration; 0, or -1 after logging what failed. */
int	migrate_run(mongoc_client_t *);

/* Make an existing user an admin: 1 if found, 0 if not, -1 on error. */
int	migrate_promote(mongoc_client_t *, const char *email);

/* Insert a new admin with an argon2id hash of password: 0 or -1. */
int	migrate_create_admin(mongoc_client_t *, const char *email,
	    const char *password);

#endif
