"""
run.py -- the benchmark runner (grown scenario by scenario).

Starts the system from the release build on free ports, measures each
scenario and writes bench/results.json and bench/REPORT.md.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("BUILD_DIR", "build")

from stack import Stack  # noqa: E402


def wrk(url, seconds=5, connections=64, threads=2):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}",
                          f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"requests_per_s": rps, "raw": out}


def main():
    s = Stack(workers=1, name="bench").start()
    try:
        results = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "health": wrk(s.url("/health"))}
    finally:
        s.cleanup()
    (ROOT / "bench/results.json").write_text(json.dumps(results, indent=2))
    print(f"/health: {results['health']['requests_per_s']:.0f} req/s")


if __name__ == "__main__":
    main()
