/*
 * docs.c -- GET /openapi.json (docs/openapi.yaml, the API's contract),
 * GET /docs (a page that renders it with Redoc) and GET
 * /docs/redoc.standalone.js (Redoc 2.5.4 from the npm registry, pinned
 * by scripts/deps.sh).  All three are compiled into the module (the
 * Makefile): nothing is read from disk and nothing comes from a CDN,
 * so the documentation works where the deployment has no internet.
 * The spec is tested: schemathesis runs it against the live stack
 * (tests/test_openapi.py), and a route the spec does not document fails
 * the tests.
 */
#include <string.h>

#include "api.h"

/* docs/openapi.yaml as compact JSON (made by scripts/openapi_json.py). */
#include "openapi_json.h"

/* The script, linked in from .tools/redoc (ld -r -b binary). */
extern const char	_binary_redoc_standalone_js_start[];
extern const char	_binary_redoc_standalone_js_end[];

static const char page[] =
    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>Checkout backend: API</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width, "
    "initial-scale=1\">\n</head>\n<body>\n"
    "<redoc spec-url=\"/openapi.json\"></redoc>\n"
    "<script src=\"/docs/redoc.standalone.js\"></script>\n"
    "</body>\n</html>\n";

/*
 * The page runs only the bundled script; Redoc injects its styles and
 * runs its search in a blob: worker, so those two are allowed.
 */
#define DOCS_CSP	"default-src 'self'; script-src 'self'; " \
			"style-src 'self' 'unsafe-inline'; img-src 'self' data:; " \
			"worker-src 'self' blob:; frame-ancestors 'none'; " \
			"base-uri 'none'; form-action 'none'"

static int
answer(struct http_request *req, const char *type, const void *data,
    size_t len)
{
	http_response_header(req, "content-type", type);
	http_response_header(req, "cache-control", "public, max-age=3600");
	http_response_header(req, "content-security-policy", DOCS_CSP);
	http_response_header(req, "x-content-type-options", "nosniff");
	http_response_header(req, "referrer-policy", "no-referrer");
	http_response(req, 200, data, len);
	return (KORE_RESULT_OK);
}

/* GET /openapi.json -> 200 the OpenAPI 3.1 document */
int
docs_openapi_get(struct http_request *req, struct ctx *ctx)
{
	(void)ctx;
	return (answer(req, "application/json", docs_openapi,
	    strlen(docs_openapi)));
}

/* GET /docs -> 200 text/html: the document, readable */
int
docs_page(struct http_request *req, struct ctx *ctx)
{
	(void)ctx;
	return (answer(req, "text/html; charset=utf-8", page,
	    sizeof(page) - 1));
}

/* GET /docs/redoc.standalone.js -> 200 the page's script */
int
docs_script(struct http_request *req, struct ctx *ctx)
{
	(void)ctx;
	/* The linker's start and end symbols of one object (ld -b binary). */
	return (answer(req, "application/javascript",
	    _binary_redoc_standalone_js_start,
	    (size_t)(_binary_redoc_standalone_js_end -
	    _binary_redoc_standalone_js_start)));
}

/*
 * GET / -> 200 {service, docs, openapi, health}: where a newcomer who
 * opens the server's address goes next, instead of a bare 404.
 */
int
docs_root(struct http_request *req, struct ctx *ctx)
{
	static const char	index[] = "{\"service\":\"checkout backend\","
	    "\"docs\":\"/docs\",\"openapi\":\"/openapi.json\","
	    "\"shop\":\"/shop\",\"admin\":\"/admin\","
	    "\"health\":\"/health\",\"ready\":\"/ready\"}";

	(void)ctx;
	return (answer(req, "application/json", index, sizeof(index) - 1));
}
