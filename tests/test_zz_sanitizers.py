"""
test_zz_sanitizers.py -- runs last: no process of any stack reported an
AddressSanitizer or UndefinedBehaviorSanitizer error, or a seccomp kill.
"""
from stack import LOG_DIRS

MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
           "ERROR: LeakSanitizer", "seccomp", "SIGSYS")


def test_no_sanitizer_reports_in_any_log():
    found = []
    for d in LOG_DIRS:
        for log in d.glob("*.log"):
            text = log.read_text(errors="replace")
            for m in MARKERS:
                for line in text.splitlines():
                    if m in line and "seccomp sandbox enabled" not in line \
                            and "seccomp tracing enabled" not in line:
                        found.append(f"{log}: {line[:300]}")
    assert found == []
