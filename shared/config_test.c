/*
 * config_test.c -- defaults, bounds and the one-line messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit.h"
#include "config.h"

/* config_load() with name=value, then the variable as it was. */
static int
load_with(const char *name, const char *value, char *err, size_t len)
{
	const char	*was;
	char		 saved[512];
	int		 ret, had;

	had = (was = getenv(name)) != NULL;
	if (had)
		snprintf(saved, sizeof(saved), "%s", was);
	setenv(name, value, 1);
	ret = config_load(err, len);
	if (had)
		setenv(name, saved, 1);
	else
		unsetenv(name);
	return (ret);
}

TEST(config_defaults)
{
	char	err[512];

	CHECK(config_load(err, sizeof(err)) == 0);
	CHECK(cfg.port == 3000 && cfg.body_max == 1048576);
	CHECK(strcmp(cfg.redis_host, "127.0.0.1") == 0 &&
	    cfg.redis_port == 6379);
	CHECK(strcmp(cfg.mongo_db, "shop") == 0 && cfg.mongo_port == 27017);
	CHECK(cfg.cart_max_qty == 1000 && cfg.cart_max_lines == 100);
}

TEST(config_errors_name_the_variable)
{
	char	err[512];

	CHECK(load_with("PORT", "70000", err, sizeof(err)) == -1 &&
	    strstr(err, "PORT") != NULL);
	CHECK(load_with("MONGO_URI", "mongodb://x:y:z", err, sizeof(err)) ==
	    -1 && strstr(err, "MONGO_URI") != NULL);
	CHECK(load_with("REDIS_URL", "http://x", err, sizeof(err)) == -1 &&
	    strstr(err, "REDIS_URL") != NULL);
	CHECK(load_with("JWT_SECRET", "", err, sizeof(err)) == -1 &&
	    strstr(err, "JWT_SECRET") != NULL);
	setenv("APP_ENV", "development", 1);
	CHECK(load_with("JWT_SECRET", "", err, sizeof(err)) == 0);
	setenv("APP_ENV", "production", 1);
	CHECK(load_with("JWT_SECRET", "too-short", err, sizeof(err)) == -1 &&
	    strstr(err, "JWT_SECRET") != NULL);
	setenv("APP_ENV", "test", 1);
	CHECK(strchr(err, '\n') == NULL);
	CHECK(config_load(err, sizeof(err)) == 0);
}

TEST(config_redis_url_parts)
{
	char	err[512];

	CHECK(load_with("REDIS_URL", "redis://:s3cret@cache.local:6380/2",
	    err, sizeof(err)) == 0);
	CHECK(strcmp(cfg.redis_host, "cache.local") == 0);
	CHECK(cfg.redis_port == 6380 && cfg.redis_db == 2);
	CHECK(strcmp(cfg.redis_password, "s3cret") == 0);
	CHECK(cfg.redis_user[0] == '\0');
	CHECK(load_with("REDIS_URL", "redis://checkout-api:p4ss@cache:6380/0",
	    err, sizeof(err)) == 0);
	CHECK(strcmp(cfg.redis_user, "checkout-api") == 0);
	CHECK(strcmp(cfg.redis_password, "p4ss") == 0);
	CHECK(config_load(err, sizeof(err)) == 0);
}

TEST(config_sentinels_and_replicas)
{
	char	err[512];

	CHECK(config_load(err, sizeof(err)) == 0);
	CHECK(cfg.nsentinels == 0 && cfg.redis_min_replicas == 0);
	CHECK(load_with("REDIS_SENTINELS", "10.0.0.1:26379,s2:26380", err,
	    sizeof(err)) == 0);
	CHECK(cfg.nsentinels == 2 && cfg.sentinels[1].port == 26380 &&
	    strcmp(cfg.sentinels[1].host, "s2") == 0);
	CHECK(cfg.redis_min_replicas == 1);	/* WAIT by default */
	CHECK(load_with("REDIS_SENTINELS", "s1", err, sizeof(err)) == -1 &&
	    strstr(err, "REDIS_SENTINELS") != NULL);
	CHECK(load_with("REDIS_SENTINELS", "s1:0", err, sizeof(err)) == -1);
	CHECK(load_with("REDIS_SENTINELS", ",", err, sizeof(err)) == -1);
}
