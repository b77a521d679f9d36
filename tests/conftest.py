"""
conftest.py -- fixtures shared by the black-box tests.

`stack` is one running system for the whole session; tests that stop or
kill parts of the system build their own with `Stack(...)` instead.
"""
import os
import shutil

import pytest

from stack import LOG_DIRS, STACKS, Stack


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "session_end: checks what the other tests of the "
        "session did; runs after them, whatever the files are called")


def pytest_collection_modifyitems(session, config, items):
    """The session_end tests last, in the order they were collected."""
    items.sort(key=lambda item: item.get_closest_marker("session_end")
               is not None)


def pytest_sessionfinish(session, exitstatus):
    """Stop whatever a test left running (a test that stopped its stack
    itself costs nothing here); keep the stacks' logs only when
    something failed (or KEEP_STACK)."""
    for s in STACKS:
        s.stop()
    if exitstatus == 0 and os.environ.get("KEEP_STACK") is None:
        for d in LOG_DIRS:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def stack():
    s = Stack(workers=2, name="shared").start()
    yield s
    s.cleanup()


@pytest.fixture
def fresh_stack(request):
    """A private system, for tests that break things."""
    made = []

    def make(**kw):
        s = Stack(name=request.node.name[:20], **kw).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
