"""
hooks.py -- what schemathesis must know about the server in front of
our code (loaded by the config tests/test_openapi.py writes).

kore (4.1) refuses some requests before the API's code runs, with a bare
status, no body and a closed connection: a method it does not know
(TRACE, QUERY: 400), a header with an empty value or with a byte
outside visible ASCII (400).  Those
answers cannot match the JSON the spec promises, and the API cannot
change them (kore has no hook there).  They are pinned by their own test
(test_openapi.py::test_kore_refusals), and only failures with exactly
that shape are dropped here: a bare 400 for a request kore refuses.
Everything else schemathesis finds fails the run.

CPython 3.11.7 has a bug in ast.parse under threads (gh-106905:
"AST constructor recursion depth mismatch") that hypothesis trips over
while it names a lambda for a repr; the repr is cosmetic, so that one
error falls back to a plain name.
"""
import schemathesis
from hypothesis.internal import lambda_sources

KORE_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

_describe = lambda_sources.lambda_description


def _lambda_description(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda"


lambda_sources.lambda_description = _lambda_description


def _header_refused(value):
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value == "" or any(not " " <= c <= "~" for c in value)


def _kore_refuses(request):
    if request.method.upper() not in KORE_METHODS:
        return True
    return any(_header_refused(v) for v in request.headers.values())


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    bare = not response.content and "content-type" not in response.headers
    return not (response.status_code == 400 and bare
                and _kore_refuses(response.request))
