"""
test_database.py -- what checkout correctness needs from the embedded
database, measured through mongo-c-driver by build/dbcheck: exact
conditional decrements under concurrency, transactions that abort
without a trace, retried write conflicts, a unique index that holds.
docs/DATABASE.md records the figures.
"""
import json
import subprocess

from stack import BUILD


def test_database_meets_checkout_needs(stack):
    env = dict(stack.env, ASAN_OPTIONS="detect_leaks=1")
    r = subprocess.run([str(BUILD / "dbcheck"), "8", "150"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["decrement"]["succeeded"] == 150
    assert out["decrement"]["final_stock"] == 0
    assert out["txn_abort"] == {"returned_ok": False, "stock_after": 10,
                                "orders_after": 0}
    assert out["txn_commit"]["stock_after"] == 9
    assert out["txn_race"]["committed"] == 150
    assert out["txn_race"]["orders"] == 150
    assert out["txn_race"]["errors"] == 0
    assert out["unique"]["rounds_exactly_one"] == out["unique"]["rounds"]
    assert out["failures"] == 0
