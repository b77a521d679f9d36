"""
test_queue.py -- what a buyer waiting in line sees (docs/ARCHITECTURE.md,
"Queue position" and "Waitlist"): a queued checkout's position and
expected wait in its status and on its WebSocket.
"""
import datetime
import json
import time

import bson
import pytest
import websocket

from stack import Stack, wait_until
from test_checkout import buyer, checkout_waiting, final
from util import admin_token, error, product

WAIT = 5            # seconds, WAITLIST_TTL_S of this module's stack


def iso(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_queued_checkouts_know_their_place(fresh_stack):
    s = fresh_stack(workers=0)
    a = product(s, 1, 50)
    people = [buyer(s, [(a, 1)])[1] for _ in range(6)]
    ids = [s.post("/api/checkout", {}, token=t).json()["checkoutId"]
           for t in people]

    def status(i):
        return s.get(f"/api/checkout/{ids[i]}", token=people[i]).json()
    wait_until(lambda: "position" in status(5), 5, "a position")
    assert [status(i)["position"] for i in range(6)] == list(range(6))
    assert "etaMs" not in status(5)          # nothing drains: no estimate
    # What the API samples each second says nothing was read, with no
    # group yet and with one made at 0 that has not read (no entries-read).
    state = ("FCALL", "queue_state", 2, "checkout:jobs", "checkout:seq",
             "checkout-workers")
    assert s.redis.execute_command(*state) == [0, 6]
    # The console's queue view too, before any worker made the group.
    q = s.get("/api/admin/queue", token=admin_token(s))
    assert q.status_code == 200, q.text
    assert (q.json()["length"], q.json()["lag"], q.json()["waiting"],
            q.json()["pending"]) == (6, 6, 6, 0)
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0")
    assert s.redis.execute_command(*state) == [0, 6]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{s.port}/api/checkout/{ids[5]}/events"
        f"?access_token={people[5]}", timeout=20)
    first = json.loads(ws.recv())
    assert first["status"] == "queued"
    pushed = json.loads(ws.recv())           # within a second
    assert pushed["status"] == "queued" and pushed["position"] == 5
    s.start_worker()
    seen = [pushed]
    while seen[-1]["status"] not in ("completed", "failed"):
        seen.append(json.loads(ws.recv()))
    assert seen[-1]["status"] == "completed"
    positions = [m["position"] for m in seen if "position" in m]
    assert positions == sorted(positions, reverse=True)
    assert all(final(s, cid, t)["status"] == "completed"
               for cid, t in zip(ids, people))
    assert "position" not in status(0)       # final: no place in line


@pytest.fixture(scope="module")
def wl():
    """A system whose waitlisted checkouts wait at most WAIT seconds."""
    s = Stack(name="waitlist", env={"WAITLIST_TTL_S": str(WAIT),
                                    "SWEEP_INTERVAL_MS": "200"}).start()
    yield s
    s.cleanup()


def waitlisted(stack, token):
    """Submit token's cart asking to wait: its checkout id, once listed."""
    r = stack.post("/api/checkout", {"waitlist": True}, token=token,
                   headers={"Prefer": "wait=10"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "waitlisted", r.text
    return r.json()["checkoutId"]


def test_returned_units_go_to_the_waitlist_in_order_once(wl):
    a = product(wl, 1, 2)
    holders = [checkout_waiting(wl, buyer(wl, [(a, 1)])[1]).json()
               for _ in range(2)]
    tokens = [buyer(wl, [(a, 1)])[1] for _ in range(3)]
    ids = [waitlisted(wl, t) for t in tokens]
    places = [wl.get(f"/api/checkout/{i}", token=t).json()["position"]
              for i, t in zip(ids, tokens)]
    assert places == [0, 1, 2]
    # Only its owner (or an admin) may withdraw it.
    r = wl.request("DELETE", f"/api/checkout/{ids[1]}", token=tokens[0])
    assert r.status_code == 403
    # The second withdraws; then two units come back, one at a time.
    r = wl.request("DELETE", f"/api/checkout/{ids[1]}", token=tokens[1])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert r.json()["error"]["code"] == "withdrawn"
    r = wl.request("DELETE", f"/api/checkout/{ids[1]}", token=tokens[1])
    assert r.status_code == 409 and error(r)["status"] == "failed"
    for h in holders:
        r = wl.post(f"/api/orders/{h['id']}/cancel", {},
                    token=admin_token(wl))
        assert r.status_code == 200
    got = [final(wl, ids[k], tokens[k]) for k in (0, 2)]
    assert [g["status"] for g in got] == ["completed", "completed"]
    assert wl.get(f"/api/checkout/{ids[1]}", token=tokens[1]).json()[
        "status"] == "failed"
    live = list(wl.db.orders.find({"items.productId": bson.ObjectId(a),
                                   "status": "confirmed"}))
    assert len(live) == 2                            # no unit given twice
    assert wl.db.products.find_one({"_id": bson.ObjectId(a)})["stock"] == 0


def test_a_restock_serves_the_waitlist(wl):
    a = product(wl, 1, 1)
    checkout_waiting(wl, buyer(wl, [(a, 1)])[1])
    _, token = buyer(wl, [(a, 1)])
    cid = waitlisted(wl, token)
    r = wl.request("PATCH", f"/api/products/{a}", {"stock": 1},
                   token=admin_token(wl))
    assert r.status_code == 200
    assert final(wl, cid, token)["status"] == "completed"


def test_a_waitlist_ends_after_its_ttl_and_with_the_sale(wl):
    a = product(wl, 1, 1)
    checkout_waiting(wl, buyer(wl, [(a, 1)])[1])
    _, token = buyer(wl, [(a, 1)])
    cid = waitlisted(wl, token)
    got = final(wl, cid, token, wait=WAIT + 10)
    assert got["status"] == "failed"
    assert got["error"]["code"] == "out_of_stock"
    # A sale that ends takes its waitlist with it, before any TTL.
    b = wl.post("/api/products", {"title": "ends", "price": 1, "stock": 1,
                                  "saleEndsAt": iso(time.time() + 1.5)},
                token=admin_token(wl)).json()["id"]
    checkout_waiting(wl, buyer(wl, [(b, 1)])[1])
    _, token = buyer(wl, [(b, 1)])
    cid = waitlisted(wl, token)
    start = time.time()
    got = final(wl, cid, token, wait=10)
    assert got["status"] == "failed" and time.time() - start < WAIT
