"""
test_sanitizers.py -- no process of any stack reported an
AddressSanitizer or UndefinedBehaviorSanitizer error, or a seccomp kill.

Marked session_end: it reads the logs of every stack the session ran,
after the other tests (conftest.py).  Run alone, it runs a system of its
own through a few requests first, so that it always reads something.
"""
import pytest

from stack import LOG_DIRS, Stack
from util import admin_token, new_user, product

pytestmark = pytest.mark.session_end

MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
           "ERROR: LeakSanitizer", "seccomp", "SIGSYS")


def exercise():
    """A system through a login, a product and a checkout, then stopped
    (LeakSanitizer reports at exit)."""
    s = Stack(name="sanitizers").start()
    try:
        product(s, 1, 5)
        token = new_user(s)[1]
        assert s.get("/api/auth/me", token=token).status_code == 200
        assert admin_token(s)
    finally:
        s.cleanup()


def reports():
    found = []
    for d in LOG_DIRS:
        for log in d.glob("*.log"):
            text = log.read_text(errors="replace")
            for m in MARKERS:
                for line in text.splitlines():
                    if m in line and "seccomp sandbox enabled" not in line \
                            and "seccomp tracing enabled" not in line:
                        found.append(f"{log}: {line[:300]}")
    return found


def test_no_sanitizer_reports_in_any_log():
    if not LOG_DIRS:
        exercise()
    assert any(next(d.glob("*.log"), None) for d in LOG_DIRS)
    assert reports() == []
