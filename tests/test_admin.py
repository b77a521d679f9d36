"""
test_admin.py -- the ops console's views (docs/ARCHITECTURE.md,
"Consoles"): the queue, the processes alive, the last ten minutes and
the products with their gate, admin only, each answering from what
Redis keeps (no scan of the stream).
"""
from stack import wait_until
from test_checkout import buyer, checkout_waiting
from test_invariants import buyers, submit_all, wait_final
from util import admin_token, new_user, product


def test_the_views_are_the_admins(stack):
    _, token = new_user(stack, "nosy")
    for view in ("queue", "workers", "history", "products"):
        r = stack.get(f"/api/admin/{view}", token=token)
        assert r.status_code == 403, view
        assert stack.get(f"/api/admin/{view}").status_code == 401


def test_the_queue_rises_and_falls_with_a_burst(fresh_stack):
    s = fresh_stack(workers=1, env={"SUBMIT_LIMIT": "1000"})
    admin = admin_token(s)
    a = product(s, 1, 1000)
    people = buyers(s, 200, a)
    for w in list(s.workers):                 # the burst waits
        s.stop_worker(w)
    ids = submit_all(s, people)
    q = s.get("/api/admin/queue", token=admin).json()
    assert q["waiting"] == 200 and q["lag"] == 200 and q["pending"] == 0
    s.start_worker()
    wait_final(s, ids)
    wait_until(lambda: s.get("/api/admin/queue", token=admin).json()[
        "waiting"] == 0, 10, "the queue drained")
    q = s.get("/api/admin/queue", token=admin).json()
    assert q["consumers"] and q["oldestPendingAgeMs"] == 0

    def drained():
        h = s.get("/api/admin/history", token=admin).json()["items"]
        return h if any(x["ordersPerSec"] > 0 for x in h) and \
            h[-1]["queue"] == 0 else None
    wait_until(drained, 10, "the history shows the drain")
    h = drained()
    assert max(x["queue"] for x in h) > 0      # it rose, then fell to 0
    assert sum(x["submitsPerSec"] for x in h) >= 1


def test_workers_are_seen_alive_and_then_gone(fresh_stack):
    s = fresh_stack(workers=1, notify=True)
    admin = admin_token(s)
    a = product(s, 2, 10)
    checkout_waiting(s, buyer(s, [(a, 1)])[1])

    def procs():
        return s.get("/api/admin/workers", token=admin).json()["items"]
    wait_until(lambda: {p["kind"] for p in procs()} == {"worker",
                                                       "notifier"}, 15,
               "a worker and a notifier")
    def worker():
        return [p for p in procs() if p["kind"] == "worker"][0]
    wait_until(lambda: worker()["orders"] >= 1, 5, "its order counted")
    assert "lastBatchAt" in worker()
    assert worker()["lastSeenMsAgo"] < 5000
    s.stop_worker(s.workers[0])
    wait_until(lambda: not [p for p in procs() if p["kind"] == "worker"],
               20, "the stopped worker gone")


def test_products_show_their_gate(stack):
    admin = admin_token(stack)
    a = product(stack, 3, 7, title="gated")
    r = stack.get("/api/admin/products?limit=100", token=admin)
    mine = [p for p in r.json()["items"] if p["id"] == a][0]
    assert mine["gate"] is None and mine["stock"] == 7   # not seeded yet
    checkout_waiting(stack, buyer(stack, [(a, 2)])[1])
    r = stack.get("/api/admin/products?limit=100", token=admin)
    mine = [p for p in r.json()["items"] if p["id"] == a][0]
    assert mine["gate"] == 5
    assert stack.get("/api/admin/products?limit=0",
                     token=admin).status_code == 400
