"""
test_gate.py -- the stock gate and batched order transactions
(docs/ARCHITECTURE.md section 3, "Worker"): refusals that cost no
MongoDB operation, mixed outcomes in stream order inside one batch,
reservations that come back when a checkout fails or its worker dies,
a restock seen at once, and a flash sale that survives the database
process being killed.
"""
import json
import signal
import time

import bson
import requests

from stack import wait_until
from test_invariants import (FINAL, buyers, check_invariants, statuses,
                             submit_all, wait_final)
from util import admin_token, product

FAST = {"RECLAIM_IDLE_MS": "1000", "LOCK_TTL_MS": "3000"}


def ops(stack):
    """MongoDB's own operation counters (serverStatus opcounters)."""
    c = stack.mongo.admin.command("serverStatus")["opcounters"]
    return sum(c[k] for k in ("insert", "query", "update", "delete",
                              "getmore"))


def worker_lines(stack, ids=()):
    """Every "checkout" log line of the stack's workers, parsed, once
    there is one for each checkout of ids (a worker logs just after it
    records the status)."""
    def read():
        out = []
        for i in range(len(stack.workers)):
            for line in stack.log(f"worker{i}").splitlines():
                if '"msg":"checkout"' in line:
                    out.append(json.loads(line))
        return out
    wait_until(lambda: set(ids) <= {x["checkoutId"] for x in read()}, 10,
               "the workers' log lines")
    return read()


def gate_settled(stack, pid):
    """No reservation is left, and the gate says what MongoDB says."""
    r = stack.redis
    assert r.hlen(f"gate:held:{pid}") == 0
    assert r.keys("gate:resv:*") == []
    stock = stack.db.products.find_one({"_id": bson.ObjectId(pid)})["stock"]
    gate = r.get(f"gate:stock:{pid}")
    assert gate is None or int(gate) == stock, (gate, stock)


def body(stack, cid):
    return json.loads(stack.redis.hget(f"checkout:{cid}", "body"))


def set_cart(stack, person, pid, qty):
    r = stack.post("/api/cart/me", {"items": [{"productId": pid,
                                               "quantity": qty}]},
                   token=person[1])
    assert r.status_code == 200, r.text


def test_refusals_of_a_sold_out_product_cost_no_database_operation(
        fresh_stack):
    s = fresh_stack(workers=0, env={"QUEUE_MAX": "100000",
                                    "WORKER_CONSUMERS": "2"})
    pid = product(s, 9.99, 100)
    n = 10000
    users = [{"_id": bson.ObjectId(), "email": f"g{i}@x.io", "password": "-",
              "role": "customer"} for i in range(n)]
    s.db.users.insert_many(users)
    s.db.carts.insert_many([{"userId": u["_id"], "rev": 1, "items": [
        {"productId": bson.ObjectId(pid), "quantity": 1}]} for u in users])
    pipe = s.redis.pipeline()
    for u in users:                 # what a cart write and a login leave
        pipe.set(f"cart:lines:{u['_id']}", f"1||{pid}:1")
        pipe.set(f"auth:epoch:{u['_id']}", 0)
    pipe.execute()
    tokens = [make_token(s, u["_id"]) for u in users]
    before = ops(s)
    ids = submit_tokens(s, tokens)
    s.start_worker()
    s.start_worker()
    st = wait_final(s, ids, timeout=300)
    spent = ops(s) - before
    assert st.count("completed") == 100 and st.count("failed") == n - 100
    stats = s.redis.hgetall("stats:worker")
    assert int(stats["gate_refused"]) == n - 100
    assert s.db.orders.count_documents({}) == 100
    # 100 orders in a few batches: a handful of operations each, and not
    # one for any of the 9,900 refusals.
    assert spent < 300, spent
    gate_settled(s, pid)


def make_token(stack, uid):
    from util import make_jwt
    now = int(time.time())
    return make_jwt({"sub": str(uid), "role": "customer", "iat": now,
                     "exp": now + 3600}, stack.env["JWT_SECRET"])


def submit_tokens(stack, tokens):
    import concurrent.futures
    sess = requests.Session()

    def one(t):
        r = sess.post(stack.url("/api/checkout"), data="{}", timeout=60,
                      headers={"Authorization": f"Bearer {t}",
                               "Content-Type": "application/json"})
        assert r.status_code == 202, r.text
        return r.json()["checkoutId"]

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        return list(pool.map(one, tokens))


def mixed_batch(stack, overstate):
    """Five buyers in one batch (a worker started after they submit)."""
    a = product(stack, 2, 3)
    b = product(stack, 1, 50)
    people = buyers(stack, 5, a)
    for person, qty in zip(people[:4], (2, 2, 1, 1)):
        set_cart(stack, person, a, qty)
    set_cart(stack, people[4], b, 1)
    wait_until(lambda: all(stack.redis.exists(f"cart:lines:{p[0]}")
                           for p in people), 5, "the cart hints")
    ids = []
    for person in people:               # stream order is submit order
        r = stack.post("/api/checkout", {}, token=person[1])
        assert r.status_code == 202
        ids.append(r.json()["checkoutId"])
    if overstate:                       # a gate that admits too many
        stack.redis.set(f"gate:stock:{a}", 100)
    stack.start_worker()
    st = wait_final(stack, ids)
    return a, people, ids, st


def test_a_batch_serves_buyers_in_stream_order_each_alone(fresh_stack):
    s = fresh_stack(workers=0, env={"WORKER_CONSUMERS": "1"})
    a, people, ids, st = mixed_batch(s, overstate=True)
    # Stock 3 of a: 2 (yes), 2 (not enough left), 1 (yes), 1 (none left).
    assert st == ["completed", "failed", "completed", "failed", "completed"]
    for i in (1, 3):
        err = body(s, ids[i])["error"]
        assert err["code"] == "out_of_stock" and err["productId"] == a
        cart = s.db.carts.find_one({"userId": bson.ObjectId(people[i][0])})
        assert cart["items"][0]["quantity"] in (1, 2)     # untouched
    assert s.db.products.find_one({"_id": bson.ObjectId(a)})["stock"] == 0
    lines = {x["checkoutId"]: x for x in worker_lines(s, ids)}
    assert {lines[c]["batch"] for c in ids} == {5}       # one batch
    assert not any(lines[c]["gate"] for c in ids)        # MongoDB refused
    # MongoDB refused what the gate admitted: its counter is seeded again.
    assert s.redis.get(f"gate:stock:{a}") is None
    gate_settled(s, a)


def test_the_gate_refuses_in_stream_order_without_a_transaction(
        fresh_stack):
    s = fresh_stack(workers=0, env={"WORKER_CONSUMERS": "1"})
    a, people, ids, st = mixed_batch(s, overstate=False)
    assert st == ["completed", "failed", "completed", "failed", "completed"]
    lines = {x["checkoutId"]: x for x in worker_lines(s, ids)}
    assert [lines[c]["gate"] for c in ids] == [False, True, False, True,
                                               False]
    assert [lines[c]["attempts"] for c in (ids[1], ids[3])] == [0, 0]
    assert s.redis.get(f"gate:stock:{a}") == "0"
    gate_settled(s, a)


def test_a_restock_admits_buyers_at_once(fresh_stack):
    s = fresh_stack(workers=2)
    a = product(s, 3, 2)
    people = buyers(s, 4, a)
    ids = submit_all(s, people)
    assert sorted(wait_final(s, ids)) == ["completed"] * 2 + ["failed"] * 2
    assert s.redis.get(f"gate:stock:{a}") == "0"
    late = buyers(s, 1, a)[0]
    r = s.request("PATCH", f"/api/products/{a}", {"stock": 5},
                  token=admin_token(s))
    assert r.status_code == 200
    # The counter is dropped before the write is answered, so the very
    # next checkout is judged on the new stock.
    assert s.redis.get(f"gate:stock:{a}") is None
    r = s.post("/api/checkout", {}, token=late[1],
               headers={"Prefer": "wait=10"})
    assert r.status_code == 201, r.text     # admitted, not refused
    assert s.redis.get(f"gate:stock:{a}") == "4"
    gate_settled(s, a)


def test_a_killed_workers_reservation_comes_back(fresh_stack):
    s = fresh_stack(workers=0, env=FAST)
    a = product(s, 3, 1)
    ghost_buyer, late = buyers(s, 2, a)
    cid = s.post("/api/checkout", {}, token=ghost_buyer[1]).json()[
        "checkoutId"]
    # A worker reads the job, marks it processing (its user's lock for
    # 1 s), reserves the last unit, then dies.
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0")
    (entry,) = s.redis.xreadgroup("checkout-workers", "ghost",
                                  {"checkout:jobs": ">"})[0][1]
    now = int(time.time() * 1000)
    assert s.redis.fcall(
        "batch_begin", 2, "checkout:jobs", "stats:worker", 1000,
        "checkout:events", "checkout-workers", 600, cid, ghost_buyer[0],
        "ghost-token", json.dumps(dict(body(s, cid), status="processing")),
        entry[0], now, "", "") == ["first"]
    s.redis.set(f"gate:stock:{a}", 1)
    s.redis.fcall("gate_reserve", 0, 1, now, cid, ghost_buyer[0], now, "1",
                  1, a, 1)
    assert s.redis.get(f"gate:stock:{a}") == "0"
    # Its buyer empties the cart meanwhile: the checkout will fail.
    s.post("/api/cart/me", {"productId": a, "quantity": 0},
           token=ghost_buyer[1])
    t0 = time.time()
    s.start_worker()
    st = wait_final(s, [cid], timeout=30)
    took = time.time() - t0
    assert st == ["failed"] and body(s, cid)["error"]["code"] == "cart_empty"
    # Reclaimed after RECLAIM_IDLE_MS (one pass is a quarter of it).
    assert took < 1.0 + 0.25 + 3, took
    assert s.redis.get(f"gate:stock:{a}") == "1"       # it came back
    r = s.post("/api/checkout", {}, token=late[1],
               headers={"Prefer": "wait=10"})
    assert r.status_code == 201
    gate_settled(s, a)


def test_a_worker_killed_in_the_middle_of_a_batch(fresh_stack):
    s = fresh_stack(workers=0, env=dict(FAST, WORKER_CONSUMERS="1"))
    pid = product(s, 1.5, 20)
    people = buyers(s, 60, pid)
    ids = submit_all(s, people)
    w = s.start_worker()
    end = time.time() + 60
    while "processing" not in statuses(s, ids):
        assert time.time() < end
    s.stop_worker(w, signal.SIGKILL)
    assert not all(x in FINAL for x in statuses(s, ids))
    s.start_worker()
    check_invariants(s, pid, 20, people, ids)
    gate_settled(s, pid)


def test_no_completed_order_is_lost_when_the_database_is_killed(
        fresh_stack):
    s = fresh_stack(workers=2, env=FAST)
    pid = product(s, 1.5, 100)
    people = buyers(s, 120, pid)
    ids = submit_all(s, people)
    end = time.time() + 60
    while sum(x == "completed" for x in statuses(s, ids)) < 10:
        assert time.time() < end
        time.sleep(0.01)
    s.stop_mongo(signal.SIGKILL)
    time.sleep(1)
    s.start_mongo()
    # Every checkout reported completed has its order, exactly once;
    # nobody is told "failed" while an order exists for them.
    check_invariants(s, pid, 100, people, ids)
    gate_settled(s, pid)
