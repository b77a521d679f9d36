"""
test_failover.py -- the loss of the Redis primary (issue 13): a primary,
a replica and three Sentinels on free ports (Stack(ha=True), what
`make run-ha` starts).  The API, the workers and the tests find the
primary through the Sentinels; a submit is answered 202 only once WAIT
has seen it on the replica, so a checkout answered 202 survives the
primary's death.
"""
import concurrent.futures
import json
import os
import signal
import threading
import time

import bson
import requests

from stack import wait_until
from test_invariants import FINAL, buyers, check_invariants, statuses
from util import product

HA_ENV = {"RECLAIM_IDLE_MS": "1500", "LOCK_TTL_MS": "3000"}


def submit_until_accepted(stack, person, deadline):
    """A careful client: the same Idempotency-Key until 202 (or 200)."""
    key = f"k-{person[0]}"
    while time.time() < deadline:
        try:
            r = stack.post("/api/checkout", {}, token=person[1],
                           headers={"Idempotency-Key": key}, timeout=10)
        except requests.RequestException:
            time.sleep(0.1)
            continue
        if r.status_code in (200, 202):
            return r.json()["checkoutId"], r.status_code
        # Redis away (503), or the first attempt still being recorded
        # (409): both say when to come back; never a 500.
        assert r.status_code in (503, 409), r.text
        assert r.status_code == 409 or r.headers.get("Retry-After")
        time.sleep(0.1)
    raise AssertionError("a submit was not accepted within the deadline")


def kill_primary(stack):
    """SIGKILL the primary the Sentinels name now; its port."""
    port = stack.primary_port()
    stack._stop(stack.procs.pop(f"redis-{port}"), signal.SIGKILL)
    return port


def watch_ready(stack, stop, seen):
    while not stop.is_set():
        try:
            seen.append(requests.get(stack.url("/ready"),
                                     timeout=5).status_code)
        except requests.RequestException:
            seen.append(0)
        time.sleep(0.05)


def test_a_flash_sale_survives_the_loss_of_the_redis_primary(fresh_stack):
    s = fresh_stack(workers=2, ha=True, env=HA_ENV)
    assert requests.get(s.url("/ready"), timeout=5).status_code == 200
    stock, n = 20, 64
    pid = product(s, 1.5, stock)
    people = buyers(s, n, pid)
    answered = []
    deadline = time.time() + 90

    def one(person):
        cid, status = submit_until_accepted(s, person, deadline)
        answered.append(status)
        return cid

    seen, stop = [], threading.Event()
    watcher = threading.Thread(target=watch_ready, args=(s, stop, seen))
    watcher.start()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, p) for p in people]
        wait_until(lambda: len(answered) >= 12, 30, "some submits")
        old = kill_primary(s)
        # Sentinel promotes the replica; the supervisor (make run-ha,
        # systemd) restarts the dead node, which comes back as a replica.
        # Until a replica is back, submits wait (REDIS_MIN_REPLICAS=1).
        wait_until(lambda: s.primary_port() != old, 30, "a new primary")
        s.start_redis_node(old)
        ids = [f.result() for f in futures]
    wait_until(lambda: requests.get(s.url("/ready"), timeout=5).ok, 30,
               "ready after the failover")
    stop.set()
    watcher.join()
    # /ready said Redis was down during the failover, and ready after.
    assert 503 in seen and seen[-1] == 200, seen[-20:]
    # Every checkout answered 202 is final; exactly the stock is sold.
    assert len(set(ids)) == n
    check_invariants(s, pid, stock, people, ids)
    users = [o["userId"] for o in s.db.orders.find(
        {"items.productId": bson.ObjectId(pid)})]
    assert len(users) == len(set(users))           # one cart, one order
    # The API logged how long Redis was away.
    downs = [json.loads(line) for line in s.log("api").splitlines()
             if '"redis: connected"' in line and "down_ms" in line]
    assert downs and all(d["down_ms"] > 0 for d in downs)


def test_the_old_primary_returns_as_a_replica_and_serves_nothing_it_held(
        fresh_stack):
    s = fresh_stack(workers=1, ha=True, env=HA_ENV)
    old = s.primary_port()
    replica = s.procs[f"redis-{s.replica_port}"]
    # A write the replica never sees: with the replica paused, its link
    # is cut, the write made, and the primary dies with it.
    os.killpg(replica.pid, signal.SIGSTOP)
    try:
        s.redis_node(old).execute_command("CLIENT", "KILL", "TYPE", "replica")
        s.redis_node(old).set("ha:only-on-the-old-primary", "1")
        kill_primary(s)
    finally:
        os.killpg(replica.pid, signal.SIGCONT)
    wait_until(lambda: s.primary_port() != old, 30, "a new primary")
    new = s.primary_port()
    # The old primary comes back with its AOF, and is made a replica.
    s.start_redis_node(old)

    def is_synced_replica():
        info = s.redis_node(old).info("replication")
        return info["role"] == "slave" and \
            info["master_link_status"] == "up" and \
            info["master_port"] == new
    wait_until(is_synced_replica, 60, "the old primary as a replica")
    assert s.redis_node(new).get("ha:only-on-the-old-primary") is None
    assert s.redis_node(old).get("ha:only-on-the-old-primary") is None
    # The system works on the new primary; checkouts are still taken.
    pid = product(s, 2.0, 5)
    people = buyers(s, 3, pid)
    ids = [submit_until_accepted(s, p, time.time() + 30)[0]
           for p in people]
    wait_until(lambda: all(x in FINAL for x in statuses(s, ids)), 60,
               "checkouts final")
    assert s.redis_node(new).hget(f"checkout:{ids[0]}", "status") == \
        "completed"
    # And a write sent to the old primary, now a replica, is refused.
    try:
        s.redis_node(old).set("x", "1")
        raise AssertionError("a replica took a write")
    except Exception as e:  # noqa: BLE001 -- READONLY from redis-py
        assert "READONLY" in str(e) or "read only" in str(e).lower()


def test_a_planned_failover_moves_the_api_at_once(fresh_stack):
    """SENTINEL FAILOVER demotes a primary that stays up: the API leaves
    it when the Sentinels announce +switch-master, not on the first
    write it would refuse; checkouts go on once the old primary has
    caught up as a replica (WAIT needs one)."""
    s = fresh_stack(workers=1, ha=True, env=HA_ENV)
    old = s.primary_port()
    assert s.sentinel(0).execute_command(
        "SENTINEL", "FAILOVER", "checkout") in (b"OK", "OK", True)
    wait_until(lambda: s.primary_port() != old, 30, "a new primary")
    new = s.primary_port()

    def moved():
        lines = [json.loads(line) for line in s.log("api").splitlines()
                 if '"redis: connected"' in line]
        return {(d["pid"], d["conn"]) for d in lines if d["port"] == new
                and d["conn"] in ("cmd", "wait")}
    # Both API processes, both connections, on the new primary.
    wait_until(lambda: len(moved()) == 4, 15, "the API on the new primary")
    assert "the Sentinels switched the primary" in s.log("api")

    def synced():
        info = s.redis_node(old).info("replication")
        return info["role"] == "slave" and info["master_port"] == new \
            and info["master_link_status"] == "up"
    wait_until(synced, 30, "the old primary a synced replica")
    pid = product(s, 2.0, 5)
    (person,) = buyers(s, 1, pid)
    r = s.post("/api/checkout", {}, token=person[1])
    assert r.status_code == 202, r.text
    cid = r.json()["checkoutId"]
    wait_until(lambda: statuses(s, [cid])[0] == "completed", 30,
               "the checkout completed")
