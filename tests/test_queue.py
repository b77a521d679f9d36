"""
test_queue.py -- what a buyer waiting in line sees (docs/ARCHITECTURE.md,
"Queue position" and "Waitlist"): a queued checkout's position and
expected wait in its status and on its WebSocket.
"""
import json

import websocket

from stack import wait_until
from test_checkout import buyer, final
from util import product


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
