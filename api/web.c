/*
 * web.c -- the consoles: GET /shop (the storefront demo), GET /admin (the
 * ops console) and GET /static/:name (their scripts and styles), from
 * web/, compiled in (scripts/web_assets.py): no files at run time, no
 * CDN, no library.  Every answer carries a Content-Security-Policy with
 * no inline script and no framing, nosniff and no referrer; the scripts
 * render every user-supplied string as text (textContent), and keep the
 * token in sessionStorage.
 */
#include <string.h>

#include "api.h"

struct web_asset {
	const char		*name;
	const char		*type;
	const unsigned char	*data;
	size_t			 len;
};

#include "web_assets.h"

#define CSP	"default-src 'none'; script-src 'self'; style-src 'self'; " \
		"img-src 'self' data:; connect-src 'self'; " \
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

static int
send_asset(struct http_request *req, const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(web_assets) / sizeof(web_assets[0]); i++) {
		if (strcmp(web_assets[i].name, name) != 0)
			continue;
		http_response_header(req, "content-type", web_assets[i].type);
		http_response_header(req, "content-security-policy", CSP);
		http_response_header(req, "x-content-type-options", "nosniff");
		http_response_header(req, "referrer-policy", "no-referrer");
		http_response_header(req, "cache-control", "no-cache");
		http_response(req, 200, web_assets[i].data, web_assets[i].len);
		return (KORE_RESULT_OK);
	}
	api_error(req, ERR_ROUTE_NOT_FOUND, NULL);
	return (KORE_RESULT_OK);
}

/* GET /shop -> 200 text/html: the storefront demo */
int
web_shop(struct http_request *req, struct ctx *ctx)
{
	(void)ctx;
	return (send_asset(req, "shop.html"));
}

/* GET /admin -> 200 text/html: the ops console */
int
web_admin(struct http_request *req, struct ctx *ctx)
{
	(void)ctx;
	return (send_asset(req, "admin.html"));
}

/* GET /static/:name -> 200 a script or style of the consoles; 404 */
int
web_static(struct http_request *req, struct ctx *ctx)
{
	if (strstr(ctx->param, ".html") != NULL) {
		api_error(req, ERR_ROUTE_NOT_FOUND, NULL);
		return (KORE_RESULT_OK);
	}
	return (send_asset(req, ctx->param));
}
