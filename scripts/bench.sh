#!/usr/bin/env bash
#
# bench.sh -- `make bench`: start the real stack (release build) and run
# the benchmark scenarios in bench/run.py; results go to
# bench/results.json and bench/REPORT.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/run.py "$@"
