/*
 * shopctl.c -- the operator's command: configuration, migrations, admins.
 *
 *   shopctl check            validate the configuration (one line if bad)
 *   shopctl env [--secrets]  print the resolved settings as shell lines
 *                            (passwords in URLs as *** unless --secrets,
 *                            which scripts/run.sh uses to eval them)
 *   shopctl config-doc       print the variables as a Markdown table
 *   shopctl migrate          wait for MongoDB, create indexes and
 *                            validators, create the first admin; load
 *                            the checkout library into Redis (only
 *                            shopctl loads it: the other programs
 *                            check that it is there) and move the
 *                            Idempotency-Keys an older build kept
 *   shopctl admin EMAIL      create EMAIL as an admin (password from
 *                            ADMIN_PASSWORD or stdin), or promote that
 *                            account if the password is its own
 *   shopctl dlq list|replay ID|drop ID       dead-lettered checkouts
 *   shopctl outbox list|replay ID|drop ID    parked notifications
 *                            (queues.c; ID may be --all)
 *   shopctl orders [--status S] [--user ID] [--from T] [--to T]
 *                  [--sort F] [--limit N]   the shop's orders (orders.c)
 *
 * Every step is idempotent: migrate runs at each `make run`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "../shared/config.h"
#include "../shared/db.h"
#include "../shared/log.h"
#include "../shared/redis.h"
#include "../shared/validate.h"
#include "migrate.h"

static void
usage(void)
{
	fprintf(stderr, "usage: shopctl check | env | config-doc | migrate | "
	    "admin EMAIL\n       shopctl dlq list | dlq replay ID|--all | "
	    "dlq drop ID|--all\n       shopctl outbox list | outbox replay "
	    "ID|--all | outbox drop ID|--all\n       shopctl orders [--status "
	    "S] [--user ID] [--from T] [--to T] [--sort F] [--limit N]\n");
	exit(2);
}

static mongoc_client_t *
connect_db(void)
{
	mongoc_client_t	*client;
	char		 err[512];
	int		 i;

	if ((client = db_client_new("shopctl", err, sizeof(err))) == NULL) {
		fprintf(stderr, "shopctl: %s\n", err);
		exit(1);
	}
	/* The database may still be starting: try for about 30 s. */
	for (i = 0; db_check_server(client, err, sizeof(err)) == -1; i++) {
		if (i == 5 || strstr(err, "standalone") != NULL) {
			fprintf(stderr, "shopctl: %s\n", err);
			exit(1);
		}
		sleep(1);
	}
	return (client);
}

/* The admin's password: ADMIN_PASSWORD, else the first line of stdin. */
static const char *
admin_password(char *buf, size_t len)
{
	size_t	n;

	if (cfg.admin_password[0] != '\0')
		return (cfg.admin_password);
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password for the new admin: ");
	if (fgets(buf, (int)len, stdin) == NULL)
		return (NULL);
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return (buf);
}

/*
 * Create EMAIL as an admin, or promote the account only if the password
 * given is its own (ADMIN_PASSWORD, else the first line of stdin).
 */
static int
cmd_admin(mongoc_client_t *client, const char *email)
{
	char		 pwbuf[1100];
	const char	*pw;

	if ((pw = admin_password(pwbuf, sizeof(pwbuf))) == NULL ||
	    *pw == '\0') {
		fprintf(stderr, "shopctl: no password was given: set "
		    "ADMIN_PASSWORD, or type it on the first line of the "
		    "input\n");
		return (1);
	}
	if (validate_password(pw) != ERR_NONE) {
		fprintf(stderr, "shopctl: the password must have %ld to %ld "
		    "characters\n", cfg.password_min, cfg.password_max);
		return (1);
	}
	return (migrate_admin(client, email, pw) == 0 ? 0 : 1);
}

int
main(int argc, char **argv)
{
	mongoc_client_t	*client;
	char		 err[512];
	int		 ret;

	if (argc < 2)
		usage();
	if (config_load(err, sizeof(err)) == -1) {
		fprintf(stderr, "shopctl: %s\n", err);
		return (1);
	}
	log_init("shopctl");
	redis_load_library();		/* the one program that loads it */
	if (strcmp(argv[1], "check") == 0)
		return (0);
	if (strcmp(argv[1], "env") == 0) {
		config_print_env(argc == 3 && strcmp(argv[2], "--secrets") == 0);
		return (0);
	}
	if (strcmp(argv[1], "config-doc") == 0) {
		config_print_table();
		return (0);
	}
	if (sodium_init() < 0)
		return (1);
	if (strcmp(argv[1], "migrate") == 0) {
		client = connect_db();
		ret = migrate_run(client) == 0 && migrate_redis() == 0 ? 0 : 1;
	} else if (strcmp(argv[1], "admin") == 0 && argc == 3) {
		client = connect_db();
		ret = cmd_admin(client, argv[2]);
	} else if (strcmp(argv[1], "dlq") == 0 && argc >= 3) {
		client = connect_db();
		ret = queues_dlq(client, argc - 2, argv + 2);
	} else if (strcmp(argv[1], "outbox") == 0 && argc >= 3) {
		client = connect_db();
		ret = queues_outbox(client, argc - 2, argv + 2);
	} else if (strcmp(argv[1], "orders") == 0) {
		client = connect_db();
		ret = orders_command(client, argc, argv);
	} else {
		usage();
		return (2);
	}
	mongoc_client_destroy(client);
	mongoc_cleanup();
	if (ret == 2)
		usage();
	return (ret);
}
