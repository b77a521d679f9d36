"""
test_invariants.py -- the checkout invariants (docs/ARCHITECTURE.md,
"Invariants") under load and failure: no oversell with many buyers and workers, and none when a
worker is killed, Redis is restarted or the database is restarted in
the middle of a run; at most one order per checkout; every accepted
checkout ends completed or failed; a failed checkout changes no stock
and no cart; poison jobs are dead-lettered; SIGTERM drains.

Buyers are created directly in MongoDB with tokens signed by the test's
JWT_SECRET: argon2id for sixty users would only slow the setup down.
"""
import concurrent.futures
import json
import signal
import time

import bson
import pytest
import requests

from stack import wait_until
from util import make_jwt, product

FINAL = ("completed", "failed")


def buyers(stack, n, pid, qty=1):
    """n users, each with qty of pid in the cart: [(userId, token)]."""
    now = int(time.time())
    docs = [{"_id": bson.ObjectId(), "email": f"b{i}-{time.time_ns()}@x.io",
             "password": "-", "role": "customer"} for i in range(n)]
    stack.db.users.insert_many(docs)
    out = []
    for d in docs:
        token = make_jwt({"sub": str(d["_id"]), "role": "customer",
                          "iat": now, "exp": now + 3600},
                         stack.env["JWT_SECRET"])
        r = stack.post("/api/cart/me", {"productId": pid, "quantity": qty},
                       token=token)
        assert r.status_code == 200, r.text
        out.append((str(d["_id"]), token))
    return out


def submit_all(stack, people):
    def one(person):
        r = stack.post("/api/checkout", {}, token=person[1])
        assert r.status_code == 202, r.text
        return r.json()["checkoutId"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, people))


def statuses(stack, ids):
    pipe = stack.redis.pipeline()
    for cid in ids:
        pipe.hget(f"checkout:{cid}", "status")
    return pipe.execute()


def wait_final(stack, ids, timeout=120):
    end = time.time() + timeout
    while True:
        try:
            st = statuses(stack, ids)
            if all(s in FINAL for s in st):
                return st
        except Exception:  # noqa: BLE001 -- Redis may be restarting
            pass
        assert time.time() < end, "checkouts not final in time"
        time.sleep(0.2)


def check_invariants(stack, pid, stock, people, ids):
    st = wait_final(stack, ids)
    completed = [cid for cid, s in zip(ids, st) if s == "completed"]
    failed = [cid for cid, s in zip(ids, st) if s == "failed"]
    want = min(stock, len(ids))
    assert len(completed) == want
    assert len(failed) == len(ids) - want
    left = stack.db.products.find_one({"_id": bson.ObjectId(pid)})["stock"]
    assert left == stock - want and left >= 0
    orders = list(stack.db.orders.find(
        {"items.productId": bson.ObjectId(pid)}))
    assert len(orders) == want
    assert len({o["checkoutId"] for o in orders}) == want   # no duplicate
    assert {o["checkoutId"] for o in orders} == set(completed)
    # Units in orders not cancelled or expired: with the stock, constant.
    ordered = sum(i["quantity"] for o in orders for i in o["items"]
                  if o.get("status") not in ("cancelled", "expired"))
    assert left + ordered == stock                        # nothing lost
    for o in orders:
        assert o["total"] == sum(i["price"] * i["quantity"]
                                 for i in o["items"])
    for cid in failed:
        body = stack.redis.hget(f"checkout:{cid}", "body")
        assert '"code":"out_of_stock"' in body, body
    owner = dict(zip(ids, people))
    for cid in failed:                                  # carts untouched
        cart = stack.db.carts.find_one(
            {"userId": bson.ObjectId(owner[cid][0])})
        assert len(cart["items"]) == 1
    for cid in completed:                               # carts ordered
        cart = stack.db.carts.find_one(
            {"userId": bson.ObjectId(owner[cid][0])})
        assert cart is None or cart["items"] == []
    pend = stack.redis.xpending_range("checkout:jobs", "checkout-workers",
                                      "-", "+", 100)
    # On failure: which entries, for which checkouts, held by whom.
    assert not pend, (pend, [stack.redis.xrange("checkout:jobs", p[
        "message_id"], p["message_id"]) for p in pend])


def run(stack, stock, n, during=None):
    pid = product(stack, 1.5, stock)
    people = buyers(stack, n, pid)
    ids = submit_all(stack, people)
    if during is not None:
        during(stack, ids)
    check_invariants(stack, pid, stock, people, ids)


def after_some_final(stack, ids, k):
    end = time.time() + 60
    while sum(s in FINAL for s in statuses(stack, ids)) < k:
        assert time.time() < end
        time.sleep(0.05)


CHAOS = {"RECLAIM_IDLE_MS": "1500", "LOCK_TTL_MS": "3000"}


@pytest.fixture(params=["batched", "BATCH_MAX=1"])
def stack_of(request, fresh_stack):
    """fresh_stack, once with batches and once one checkout at a time."""
    extra = {} if request.param == "batched" else {"BATCH_MAX": "1"}

    def make(**kw):
        kw["env"] = dict(kw.get("env") or {}, **extra)
        return fresh_stack(**kw)

    return make


def test_no_oversell_with_many_buyers_and_workers(stack_of):
    s = stack_of(workers=2, env={"WORKER_CONSUMERS": "3"})
    run(s, stock=20, n=60)


def test_no_oversell_when_a_worker_is_killed(stack_of):
    s = stack_of(workers=2, env=CHAOS)

    def kill(stack, ids):
        after_some_final(stack, ids, 5)
        stack.stop_worker(stack.workers[0], signal.SIGKILL)
        stack.start_worker()

    run(s, stock=20, n=60, during=kill)


def test_no_oversell_when_redis_restarts(stack_of):
    s = stack_of(workers=2, env=CHAOS)

    def restart(stack, ids):
        after_some_final(stack, ids, 5)
        stack.stop_redis(signal.SIGKILL)        # AOF appendfsync always
        t0 = time.time()
        r = requests.post(stack.url("/api/checkout"), data="{}",
                          headers={"Authorization": "Bearer x"}, timeout=15)
        assert r.status_code == 401                 # auth needs no Redis
        r = requests.get(stack.url("/ready"), timeout=15)
        assert r.status_code == 503 and time.time() - t0 < 10
        time.sleep(1)
        stack.start_redis()

    run(s, stock=20, n=60, during=restart)


def test_api_answers_503_while_redis_is_down(fresh_stack):
    s = fresh_stack(workers=0)
    pid = product(s, 1.5, 5)
    person = buyers(s, 1, pid)[0]
    s.stop_redis()
    t0 = time.time()
    r = s.post("/api/checkout", {}, token=person[1])
    assert r.status_code == 503 and time.time() - t0 < 10
    assert r.json()["error"]["code"] == "redis_unavailable"
    assert r.headers["Retry-After"]


def test_no_oversell_when_the_database_restarts(stack_of):
    s = stack_of(workers=2, env=CHAOS)
    pid = product(s, 1.5, 20)
    people = buyers(s, 61, pid)
    late = people.pop()
    ids = submit_all(s, people)
    after_some_final(s, ids, 5)
    s.stop_mongo()
    # What needs the database answers 503, quickly ...
    t0 = time.time()
    r = s.get("/api/cart/me", token=late[1])
    assert r.status_code == 503 and time.time() - t0 < 10
    assert r.json()["error"]["code"] == "database_unavailable"
    # ... while checkouts are still taken: the queue is in Redis.
    r = s.post("/api/checkout", {}, token=late[1])
    assert r.status_code == 202
    time.sleep(1)
    s.start_mongo()
    check_invariants(s, pid, 20, people + [late],
                     ids + [r.json()["checkoutId"]])


def test_poison_jobs_are_dead_lettered(fresh_stack):
    s = fresh_stack(workers=0, env={"MAX_DELIVERIES": "2",
                                    "RECLAIM_IDLE_MS": "300"})
    pid = product(s, 1.5, 5)
    person = buyers(s, 1, pid)[0]
    cid = s.post("/api/checkout", {}, token=person[1]).json()["checkoutId"]
    # A ghost consumer takes the job and "dies" with it, three times.
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0")
    s.redis.xreadgroup("checkout-workers", "ghost", {"checkout:jobs": ">"})
    (mid,) = [e[0] for e in s.redis.xrange("checkout:jobs")]
    for _ in range(2):
        s.redis.xclaim("checkout:jobs", "checkout-workers", "ghost", 0,
                       [mid])
    s.redis.xadd("checkout:jobs", {"checkoutId": "bogus"})
    s.start_worker()
    wait_final(s, [cid], timeout=30)
    st = s.get(f"/api/checkout/{cid}", token=person[1]).json()
    assert st["status"] == "failed" and st["error"]["code"] == "internal"
    # Kept for the operator's replay as long as a live checkout, not
    # CHECKOUT_FINAL_TTL (300 s) as other final statuses.
    assert s.redis.ttl(f"checkout:{cid}") > 3600
    dead = s.redis.xrange("checkout:dead")
    assert len(dead) == 2
    reasons = sorted(d[1]["reason"] for d in dead)
    # ghost read + 2 claims + the reclaimer's claim = 4 > MAX_DELIVERIES
    assert reasons == ["delivered 4 times", "malformed job"]
    end = time.time() + 10
    while s.redis.xpending("checkout:jobs", "checkout-workers")["pending"]:
        assert time.time() < end
        time.sleep(0.1)
    assert s.db.products.find_one({"_id": bson.ObjectId(pid)})["stock"] == 5


def test_sigterm_finishes_the_job_in_hand_and_exits_0(stack_of):
    s = stack_of(workers=0, env={"WORKER_CONSUMERS": "1"})
    pid = product(s, 1.5, 100)
    people = buyers(s, 20, pid)
    ids = submit_all(s, people)
    w = s.start_worker()
    after_some_final(s, ids, 1)
    assert s.stop_worker(w, signal.SIGTERM) == 0
    assert "worker: stopped" in s.log("worker0")
    pending = s.redis.xpending("checkout:jobs", "checkout-workers")
    assert pending["pending"] == 0                  # nothing left half-done
    assert all(st in FINAL + ("queued",) for st in statuses(s, ids))
    s.start_worker()
    check_invariants(s, pid, 100, people, ids)


def test_a_transaction_that_keeps_conflicting_keeps_its_job(fresh_stack):
    """Another transaction holds the product (an admin's, a stuck one):
    the worker's batch transaction conflicts and runs again and again,
    for longer than RECLAIM_IDLE_MS and LOCK_TTL_MS.  It renews its
    job's claim and its user's lock on every run, so the job is never
    delivered to a second worker meanwhile; once the product is free,
    the checkout completes once."""
    s = fresh_stack(workers=2, env={"RECLAIM_IDLE_MS": "800",
                                    "LOCK_TTL_MS": "1500"})
    pid = product(s, 1.0, 5)
    (person,) = buyers(s, 1, pid)
    oid = bson.ObjectId(pid)
    with s.mongo.start_session() as held:
        held.start_transaction()
        s.db.products.update_one({"_id": oid}, {"$inc": {"held": 1}},
                                 session=held)
        cid = s.post("/api/checkout", {}, token=person[1]).json()[
            "checkoutId"]
        deliveries = []
        end = time.time() + 4
        while time.time() < end:
            p = s.redis.xpending_range("checkout:jobs", "checkout-workers",
                                       "-", "+", 10)
            deliveries += [e["times_delivered"] for e in p]
            assert s.redis.hget(f"checkout:{cid}", "status") not in FINAL
            time.sleep(0.1)
        held.abort_transaction()
    assert deliveries and max(deliveries) == 1, deliveries
    wait_until(lambda: statuses(s, [cid])[0] in FINAL, 60, "final")
    assert statuses(s, [cid]) == ["completed"]
    assert s.db.orders.count_documents({"checkoutId": cid}) == 1


def finish(s, consumer, msgid, cid, uid, status):
    """batch_finish (shared/lua/protocol.lua) for one job, as a worker
    named consumer calls it."""
    body = json.dumps({"checkoutId": cid, "status": status})
    return s.redis.execute_command(
        "FCALL", "batch_finish", 4, "checkout:jobs", "stats:worker",
        "catalog:stock", "checkout:dead", "checkout-workers", 60,
        "checkout:events", 1, "batch_le_1", 0, consumer, 3600,
        msgid, cid, uid, status, body, "", "", "", -1, "")


def test_a_result_from_a_consumer_that_lost_its_job_is_not_written(
        fresh_stack):
    """A consumer cut off from Redis (a partition) cannot renew its claim:
    the job is reclaimed and decided by another.  When the first comes
    back with its own result, it was the status race that left a buyer
    told "failed" with an order placed: now its result is not written
    ("moved"); the job's owner decides."""
    s = fresh_stack(workers=0)
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0",
                          mkstream=True)
    cid, uid = str(bson.ObjectId()), str(bson.ObjectId())
    msgid = s.redis.xadd("checkout:jobs", {"checkoutId": cid,
                                           "userId": uid, "lines": ""})
    s.redis.xreadgroup("checkout-workers", "cut-off", {"checkout:jobs": ">"})
    s.redis.xclaim("checkout:jobs", "checkout-workers", "reclaimer", 0,
                   [msgid], justid=True)
    assert finish(s, "cut-off", msgid, cid, uid, "failed") == ["moved"]
    assert s.redis.hget(f"checkout:{cid}", "status") is None
    pending = s.redis.xpending_range("checkout:jobs", "checkout-workers",
                                     "-", "+", 10)
    assert [p["consumer"] for p in pending] == ["reclaimer"]
    assert finish(s, "reclaimer", msgid, cid, uid, "completed") == [""]
    assert s.redis.hget(f"checkout:{cid}", "status") == "completed"
    assert s.redis.xpending("checkout:jobs", "checkout-workers")[
        "pending"] == 0


def test_a_repeated_batch_begin_finds_its_own_locks(fresh_stack):
    """A worker sends batch_begin again when its answer was lost (a
    dropped connection, a failover before WAIT), with the same lock
    tokens: its own locks are found taken by itself, not "busy" (which
    would leave every job of the batch waiting for a lock it holds)."""
    s = fresh_stack(workers=0)
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0",
                          mkstream=True)
    cid, uid = str(bson.ObjectId()), str(bson.ObjectId())
    s.redis.hset(f"checkout:{cid}", mapping={"userId": uid,
                                             "status": "queued"})
    msgid = s.redis.xadd("checkout:jobs", {"checkoutId": cid,
                                           "userId": uid, "lines": ""})
    s.redis.xreadgroup("checkout-workers", "w", {"checkout:jobs": ">"})

    def begin(token):
        body = json.dumps({"checkoutId": cid, "status": "processing"})
        return s.redis.execute_command(
            "FCALL", "batch_begin", 2, "checkout:jobs", "stats:worker",
            30000, "checkout:events", "checkout-workers", 60,
            cid, uid, token, body, msgid, 0, "", "")

    assert begin("token-1") == ["first"]
    assert begin("token-1") == ["again"]        # the same call, repeated
    assert begin("token-2") == ["busy"]         # anyone else's
    assert s.redis.get(f"lock:user:{uid}") == "token-1"


def test_a_sold_out_refusal_needs_no_user_lock(fresh_stack):
    """batch_begin refuses a queued one-line checkout the gate shows short
    of stock without its user's lock: another worker holding that lock
    (the user's other checkout) does not make it wait.  It neither takes
    nor frees the lock; a checkout already processing is never refused
    there."""
    s = fresh_stack(workers=0)
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0",
                          mkstream=True)
    pid, uid = str(bson.ObjectId()), str(bson.ObjectId())
    s.redis.set(f"gate:stock:{pid}", 0)
    s.redis.set(f"lock:user:{uid}", "another-worker")
    jobs = []
    for status in ("queued", "processing"):
        cid = str(bson.ObjectId())
        s.redis.hset(f"checkout:{cid}", mapping={"userId": uid,
                                                 "status": status})
        jobs.append((cid, s.redis.xadd("checkout:jobs", {
            "checkoutId": cid, "userId": uid, "lines": f"{pid}:1"})))
    s.redis.xreadgroup("checkout-workers", "w", {"checkout:jobs": ">"})
    args = []
    for cid, msgid in jobs:
        args += [cid, uid, "token-1", json.dumps({"status": "processing"}),
                 msgid, 0, f"{pid}:1", json.dumps({"status": "failed"})]
    got = s.redis.execute_command(
        "FCALL", "batch_begin", 2, "checkout:jobs", "stats:worker", 30000,
        "checkout:events", "checkout-workers", 60, *args)
    assert got == ["refused", "busy"]
    assert s.redis.get(f"lock:user:{uid}") == "another-worker"
    assert s.redis.hget(f"checkout:{jobs[0][0]}", "status") == "failed"
    assert s.redis.hget(f"checkout:{jobs[1][0]}", "status") == "processing"
    pending = s.redis.xpending_range("checkout:jobs", "checkout-workers",
                                     "-", "+", 10)
    assert [p["message_id"] for p in pending] == [jobs[1][1]]


def test_a_hot_products_lock_is_handed_on_and_released(fresh_stack):
    """One product's orders queue up behind its lock (worker/lock.c).  The
    consumers of one process hand it to each other without Redis
    (worker/handoff.c); the other process still gets its turn; every
    checkout completes once, and no product lock is left behind."""
    s = fresh_stack(workers=0, env={"WORKER_CONSUMERS": "2",
                                    "BATCH_MAX": "4"})
    pid = product(s, 1.5, 1000)
    people = buyers(s, 400, pid)
    ids = submit_all(s, people)        # queued first: every consumer waits
    s.start_worker()
    s.start_worker()
    check_invariants(s, pid, 1000, people, ids)
    assert s.redis.keys("lock:product:*") == []

    procs = []

    def counted():
        procs[:] = [p for p in (dict(zip(h[::2], h[1::2])) for h in
                                s.redis.execute_command("FCALL",
                                                        "procs_alive", 0))
                    if p["kind"] == "worker"]
        return sum(int(p["orders"]) for p in procs) == 400

    wait_until(counted, 10, "the heartbeats count every order")
    assert len(procs) == 2
    assert all(int(p["orders"]) > 0 for p in procs), procs
    assert sum(int(p["lockHandoffs"]) for p in procs) > 0, procs
