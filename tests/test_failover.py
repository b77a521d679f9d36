"""
test_failover.py -- the loss of the Redis primary: a primary, two
replicas and three Sentinels on free ports (Stack(ha=True), what `make
run-ha` starts).  The API, the workers and the tests find the primary
through the Sentinels; a submit is answered 202 only once WAIT has seen
it on a replica, so a checkout answered 202 survives the primary's
death, and with two replicas the promoted one still has one to WAIT on:
the sale goes on without the lost host.
"""
import concurrent.futures
import json
import os
import signal
import threading
import time

import bson
import redis
import requests

from stack import Stack, free_port, wait_until
from test_invariants import FINAL, buyers, check_invariants, statuses
from util import admin_token, new_user, product

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
        # Sentinel promotes a replica and points the other at it; the
        # lost host never comes back, as a real one would not.
        wait_until(lambda: s.primary_port() != old, 30, "a new primary")
        ids = [f.result() for f in futures]
    assert old not in [int(n.split("-")[1]) for n in s.procs
                       if n.startswith("redis-")]
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
    replicas = [s.procs[f"redis-{p}"] for p in s.replica_ports]
    # A write the replicas never see: with them paused, their links are
    # cut, the write made (an admin's, with min-replicas-to-write off for
    # it), and the primary dies with it.
    for r in replicas:
        os.killpg(r.pid, signal.SIGSTOP)
    try:
        node = s.redis_node(old)
        node.execute_command("CLIENT", "KILL", "TYPE", "replica")
        node.config_set("min-replicas-to-write", "0")
        node.set("ha:only-on-the-old-primary", "1")
        kill_primary(s)
    finally:
        for r in replicas:
            os.killpg(r.pid, signal.SIGCONT)
    wait_until(lambda: s.primary_port() != old, 30, "a new primary")
    wait_until(lambda: s.sentinels_agree(), 30, "the Sentinels agree")
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


def test_a_partitioned_old_primary_acknowledges_nothing(fresh_stack):
    """The primary frozen (SIGSTOP: as cut off by a partition) past the
    failover, then running again: until the Sentinels demote it (some
    seconds) it is still a primary with clients, but without replicas it
    takes no write (min-replicas-to-write), so nothing written to it is
    acknowledged to a buyer, and the sale goes on on the new primary."""
    s = fresh_stack(workers=2, ha=True, env=HA_ENV)
    stock, n = 10, 40
    pid = product(s, 1.5, stock)
    people = buyers(s, n, pid)
    answered, deadline = [], time.time() + 90

    def one(person):
        cid, status = submit_until_accepted(s, person, deadline)
        answered.append(status)
        return cid

    old = s.primary_port()
    frozen = s.procs[f"redis-{old}"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, p) for p in people]
        wait_until(lambda: len(answered) >= 5, 30, "some submits")
        os.killpg(frozen.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: s.sentinels_agree() and
                       s.primary_port() != old, 30, "a new primary")
        finally:
            os.killpg(frozen.pid, signal.SIGCONT)
        node = s.redis_node(old)

        def alone():
            info = node.info("replication")
            return info["role"] == "master" and \
                info["connected_slaves"] == 0 and \
                info.get("min_slaves_good_slaves", 0) == 0
        wait_until(alone, 5, "the old primary running, without replicas")
        try:
            node.set("ha:written-in-the-partition", "1")
            refused = ""
        except Exception as e:  # noqa: BLE001 -- redis-py's ResponseError
            refused = str(e)
        assert "NOREPLICAS" in refused, refused
        ids = [f.result() for f in futures]
    check_invariants(s, pid, stock, people, ids)
    assert s.redis.get("ha:written-in-the-partition") is None


def test_a_rogue_sentinel_gets_no_password_and_no_write():
    """REDIS_SENTINELS lists, first, a Sentinel that names another
    server (a rogue, or one reconfigured by whoever reached it): the
    system uses only the primary a majority of the Sentinels name, so
    that server never sees our password nor a command; and the real
    Sentinels take no command without their password."""
    s = Stack(name="rogue", workers=1, ha=True, env=HA_ENV)
    try:
        trap, rogue = free_port(), free_port()
        s.procs["sentinel-trap"] = s._spawn("trap", [
            "redis-server", "--bind", "127.0.0.1", "--port", str(trap),
            "--save", "", "--dir", str(s.dir)])
        wait_until(lambda: redis.Redis(port=trap).ping(), 10, "the trap")
        conf = s.dir / "rogue.conf"
        conf.write_text(f"port {rogue}\nbind 127.0.0.1\ndir {s.dir}\n"
                        f"sentinel monitor checkout 127.0.0.1 {trap} 1\n")
        s.procs["sentinel-rogue"] = s._spawn("rogue", [
            "redis-server", str(conf), "--sentinel"])
        wait_until(lambda: redis.Redis(port=rogue).execute_command(
            "SENTINEL", "get-master-addr-by-name", "checkout"), 10,
            "the rogue Sentinel")
        s.env["REDIS_SENTINELS"] = f"127.0.0.1:{rogue}," + \
            s.env["REDIS_SENTINELS"]
        s.start()
        pid = product(s, 2.0, 5)
        people = buyers(s, 2, pid)
        ids = [submit_until_accepted(s, p, time.time() + 30)[0]
               for p in people]
        wait_until(lambda: all(x == "completed" for x in statuses(s, ids)),
                   30, "checkouts completed")
        seen = redis.Redis(port=trap, decode_responses=True).info(
            "commandstats")
        for cmd in ("auth", "role", "select", "function", "fcall",
                    "xadd", "hset", "set"):
            assert f"cmdstat_{cmd}" not in seen, (cmd, sorted(seen))
        # Without the password a Sentinel takes no order.
        try:
            redis.Redis(port=s.sentinel_ports[0]).execute_command(
                "SENTINEL", "REMOVE", "checkout")
            refused = ""
        except redis.exceptions.ResponseError as e:
            refused = str(e)
        except redis.exceptions.AuthenticationError as e:
            refused = str(e)
        assert "NOAUTH" in refused or "Authentication" in refused, refused
        assert s.sentinel(0).sentinel_master("checkout")["port"] == \
            s.primary_port()
    finally:
        s.cleanup()


def test_revocations_wait_for_a_replica(fresh_stack):
    """A logout and a change of role are revocations: answered only once
    a replica has them (WAIT), as a submit is, or a failover could bring
    the old token back to life.  With both replicas frozen they answer
    503 and say to repeat; once one is back, they go through."""
    s = fresh_stack(workers=0, ha=True, env=HA_ENV)
    _, token = new_user(s, "revoke")
    user, other = new_user(s, "demoted")
    admin = admin_token(s)
    replicas = [s.procs[f"redis-{p}"] for p in s.replica_ports]
    for r in replicas:
        os.killpg(r.pid, signal.SIGSTOP)
    try:
        r = s.post("/api/auth/logout", token=token)
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After", "").isdigit()
        r = s.request("PATCH", f"/api/users/{user['id']}",
                      {"disabled": True}, token=admin)
        assert r.status_code == 503, r.text
    finally:
        for r in replicas:
            os.killpg(r.pid, signal.SIGCONT)
    wait_until(lambda: s.sentinels_ready(), 30, "the replicas back")
    # The primary kept the write the replicas had not confirmed; now
    # replicated, the token is refused (repeating the logout says so).
    assert s.get("/api/auth/me", token=token).status_code == 401
    assert s.post("/api/auth/logout", token=token).status_code == 401
    r = s.request("PATCH", f"/api/users/{user['id']}", {"disabled": True},
                  token=admin)
    assert r.status_code == 200, r.text
    assert s.get("/api/auth/me", token=other).status_code == 401
