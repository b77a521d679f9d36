#!/usr/bin/env bash
#
# test.sh -- `make test`: the unit tests of shared/, then the black-box
# tests against the real API, workers, Redis and SecantusDB, all built
# with ASan and UBSan (build/asan).  The last line is the total:
# "N passed, N failed".  PYTEST_ARGS passes options through (-k, -x).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
B=${1:-build/asan}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== unit tests ($B/unit)"
ASAN_OPTIONS=detect_leaks=1 "$B/unit" | tee "$tmp/unit.out"
unit_line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed' "$tmp/unit.out")
up=$(echo "$unit_line" | sed -E 's/unit: ([0-9]+) passed.*/\1/')
uf=$(echo "$unit_line" | sed -E 's/.* ([0-9]+) failed/\1/')
[ -n "$unit_line" ] || { up=0; uf=1; }

echo "== black-box tests (tests/)"
# shellcheck disable=SC2086
BUILD_DIR="$B" .venv/bin/python -m pytest tests -v --junitxml="$tmp/junit.xml" \
    ${PYTEST_ARGS:-}
counts=$(.venv/bin/python - "$tmp/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1)
    sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
pp=${counts% *}
pf=${counts#* }

passed=$((up + pp))
failed=$((uf + pf))
echo "unit: $up passed, $uf failed; black-box: $pp passed, $pf failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
