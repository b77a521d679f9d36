"""
test_openapi_coverage.py -- every status docs/openapi.yaml documents
for an operation was answered by that operation somewhere in this run
(what every API of the session counted in /metrics, plus what tests saw
kore answer itself: stack.OBSERVED).  A status nothing reaches is either
a missing test or a promise the spec should not make.

Marked session_end: it runs after every other test (conftest.py), and
is skipped when only part of the suite was selected.
"""
import collections

import pytest

from stack import OBSERVED
from test_openapi import operations

pytestmark = pytest.mark.session_end


def whole_suite(config):
    if config.option.keyword or config.option.markexpr:
        return False
    return not any(".py" in a for a in config.args)


def test_every_documented_status_is_reached(request, stack):
    if not whole_suite(request.config):
        pytest.skip("only part of the suite ran")
    seen = collections.Counter(OBSERVED)
    seen.update(stack.metrics())
    missing = sorted((op_id, int(code))
                     for op_id, (_, _, op) in operations().items()
                     for code in op["responses"]
                     if (op_id, int(code)) not in seen)
    assert not missing, f"documented but never answered: {missing}"
