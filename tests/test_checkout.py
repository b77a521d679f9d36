"""
test_checkout.py -- the checkout protocol (docs/ARCHITECTURE.md 3): submit,
status, long-poll, Prefer: wait, idempotency, backpressure, orders and
the WebSocket push.  The invariants under load and failure are in
test_invariants.py.
"""
import base64
import concurrent.futures
import hashlib
import itertools
import json
import time

import websocket

from stack import wait_until
from util import admin_token, error, login, new_user, product


def buyer(stack, lines):
    """A new user with lines [(productId, quantity)] in the cart."""
    user, token = new_user(stack, "buyer")
    r = stack.post("/api/cart/me", {"items": [
        {"productId": p, "quantity": q} for p, q in lines]}, token=token)
    assert r.status_code == 200, r.text
    return user, token


def checkout_waiting(stack, token):
    """Submit the cart with Prefer: wait=10: 201, 409 or 202."""
    return stack.post("/api/checkout", {}, token=token,
                      headers={"Prefer": "wait=10"})


def final(stack, cid, token, wait=20):
    r = stack.get(f"/api/checkout/{cid}?wait=1", token=token)
    end = time.time() + wait
    while r.json()["status"] not in ("completed", "failed"):
        assert time.time() < end, r.text
        r = stack.get(f"/api/checkout/{cid}?wait=2", token=token)
    return r.json()


def test_submit_runs_the_order_through_the_queue(stack):
    a, b = product(stack, 19.99, 5), product(stack, 0.1, 5)
    user, token = buyer(stack, [(a, 2), (b, 3)])
    r = stack.post("/api/checkout", {}, token=token)
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued"
    assert body["statusUrl"] == f"/api/checkout/{body['checkoutId']}"
    assert r.headers["Location"] == body["statusUrl"]
    st = final(stack, body["checkoutId"], token)
    assert st["status"] == "completed"
    order = st["order"]
    assert st["orderId"] == order["id"]
    assert order["userId"] == user["id"]
    assert order["total"] == 40.28                  # 2 x 19.99 + 3 x 0.10
    assert [(i["productId"], i["quantity"], i["price"])
            for i in order["items"]] == [(a, 2, 19.99), (b, 3, 0.1)]
    assert stack.db.orders.find_one({"checkoutId": body["checkoutId"]})[
        "total"] == 4028
    assert stack.get(f"/api/products/{a}").json()["stock"] == 3
    assert stack.get("/api/cart/me", token=token).json()["items"] == []
    r = stack.get(f"/api/orders/{order['id']}", token=token)
    assert r.status_code == 200 and r.json() == order


def test_order_keeps_the_price_at_the_time_of_the_order(stack):
    a = product(stack, 10, 5)
    _, token = buyer(stack, [(a, 1)])
    r = checkout_waiting(stack, token)
    assert r.status_code == 201
    stack.request("PATCH", f"/api/products/{a}", {"price": 99},
                  token=admin_token(stack))
    order = stack.get(f"/api/orders/{r.json()['id']}", token=token).json()
    assert order["items"][0]["price"] == 10 and order["total"] == 10


def test_submit_checks_its_input(stack):
    a = product(stack)
    user, token = buyer(stack, [(a, 1)])
    assert stack.post("/api/checkout", {}).status_code == 401
    _, other = new_user(stack)
    r = stack.post("/api/checkout", {"userId": user["id"]}, token=other)
    assert r.status_code == 403
    r = stack.post("/api/checkout", {"coupon": "x"}, token=token)
    assert r.status_code == 400 and error(r)["field"] == "coupon"
    r = stack.post("/api/checkout", {"userId": 5}, token=token)
    assert r.status_code == 400
    r = stack.post("/api/checkout", {}, token=other)
    assert r.status_code == 400 and error(r)["code"] == "cart_empty"
    r = stack.post("/api/checkout", {}, token=token,
                   headers={"Idempotency-Key": "has space"})
    assert r.status_code == 400
    r = stack.post("/api/checkout", {"userId": user["id"]}, token=token)
    assert r.status_code == 202                     # the seed's body


def test_status_is_for_its_owner_or_an_admin(stack):
    a = product(stack)
    _, token = buyer(stack, [(a, 1)])
    cid = stack.post("/api/checkout", {}, token=token).json()["checkoutId"]
    _, other = new_user(stack)
    assert stack.get(f"/api/checkout/{cid}", token=other).status_code == 403
    assert stack.get(f"/api/checkout/{cid}").status_code == 401
    r = stack.get(f"/api/checkout/{cid}", token=admin_token(stack))
    assert r.status_code == 200 and r.json()["checkoutId"] == cid
    r = stack.get("/api/checkout/0123456789abcdef01234567", token=token)
    assert r.status_code == 404
    assert stack.get("/api/checkout/nope", token=token).status_code == 400
    r = stack.get(f"/api/checkout/{cid}?wait=-1", token=token)
    assert r.status_code == 400 and error(r)["field"] == "wait"


def test_a_long_wait_is_shortened_as_prefer_wait_is(stack):
    """?wait= and Prefer: wait= follow one rule: more than the maximum
    (CHECKOUT_WAIT_MAX, 30 s by default) is shortened to it, not refused."""
    a = product(stack)
    _, token = buyer(stack, [(a, 1)])
    r = stack.post("/api/checkout", {}, token=token,
                   headers={"Prefer": "wait=500"})
    assert r.status_code in (201, 202, 409), r.text
    cid = r.json()["checkoutId"]
    r = stack.get(f"/api/checkout/{cid}?wait=500", token=token)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("completed", "failed")


def test_out_of_stock_changes_no_stock_and_no_cart(stack):
    a, b = product(stack, 1, 5), product(stack, 2, 1)
    _, token = buyer(stack, [(a, 2), (b, 2)])
    r = checkout_waiting(stack, token)
    assert r.status_code == 409
    assert error(r)["code"] == "out_of_stock"
    assert error(r)["productId"] == b
    st = stack.get(f"/api/checkout/{r.json()['checkoutId']}",
                   token=token).json()
    assert st["status"] == "failed" and st["error"]["code"] == "out_of_stock"
    assert "orderId" not in st
    assert stack.get(f"/api/products/{a}").json()["stock"] == 5
    assert stack.get(f"/api/products/{b}").json()["stock"] == 1
    assert len(stack.get("/api/cart/me", token=token).json()["items"]) == 2


def test_deleted_product_fails_as_unavailable(stack):
    a, b = product(stack, 1, 5), product(stack, 2, 5)
    _, token = buyer(stack, [(a, 1), (b, 1)])
    stack.request("DELETE", f"/api/products/{b}", token=admin_token(stack))
    r = checkout_waiting(stack, token)
    assert r.status_code == 409
    assert error(r)["code"] == "product_unavailable"
    assert error(r)["productId"] == b
    assert stack.get(f"/api/products/{a}").json()["stock"] == 5


def test_idempotent_replay_and_reuse(stack):
    a = product(stack, 3, 5)
    _, token = buyer(stack, [(a, 1)])
    key = {"Idempotency-Key": f"order-{time.time_ns()}"}
    first = stack.post("/api/checkout", {}, token=token, headers=key)
    assert first.status_code == 202
    final(stack, first.json()["checkoutId"], token)
    again = stack.post("/api/checkout", {}, token=token, headers=key)
    assert again.status_code == 200                 # the cart is empty now
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    r = stack.post("/api/checkout", {"userId": "x" * 24}, token=token,
                   headers=key)
    assert r.status_code in (403, 422)
    r = stack.post("/api/checkout", {"userId": stack.get(
        "/api/auth/me", token=token).json()["id"]}, token=token, headers=key)
    assert r.status_code == 422
    assert error(r)["code"] == "idempotency_key_reused"
    # Keys are per user: another user's same key is a new checkout.
    _, other = buyer(stack, [(a, 1)])
    r = stack.post("/api/checkout", {}, token=other, headers=key)
    assert r.status_code == 202
    assert r.json()["checkoutId"] != first.json()["checkoutId"]


def idem_name(user_id, key):
    """Where Redis keeps a user's Idempotency-Key (protocol_idem_key())."""
    d = hashlib.sha256(f"{user_id}:{key}".encode()).digest()[:16]
    return "idem:" + base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def test_an_idempotency_key_is_kept_compact_for_its_ttl(stack):
    """Redis keeps a key under a short name of its digest, with 64 bits of
    the body's hash: not the key in clear, not the whole hash."""
    a = product(stack, 3, 5)
    user, token = buyer(stack, [(a, 1)])
    key = f"order-{time.time_ns()}-" + "x" * 200
    r = stack.post("/api/checkout", {}, token=token,
                   headers={"Idempotency-Key": key})
    assert r.status_code == 202
    name = idem_name(user["id"], key)
    body = hashlib.sha256(b"{}").hexdigest()[:16]
    assert stack.redis.get(name) == f"d|{body}|{r.json()['checkoutId']}"
    assert 86400 - 60 < stack.redis.ttl(name) <= 86400
    assert not list(stack.redis.scan_iter(f"idem:{user['id']}*"))
    assert stack.redis.memory_usage(name) <= 150   # 216+ in clear


def test_migrate_moves_an_older_builds_idempotency_keys(stack):
    """An upgrade keeps every key's replay: shopctl migrate moves keys kept
    as "idem:<user>:<key>" with the whole hash to their compact names,
    with the time they had left."""
    a = product(stack, 3, 5)
    user, token = buyer(stack, [(a, 1)])
    done, pending = f"old-{time.time_ns()}", f"older-{time.time_ns()}"
    first = stack.post("/api/checkout", {}, token=token,
                       headers={"Idempotency-Key": done})
    cid = first.json()["checkoutId"]
    final(stack, cid, token)
    body = hashlib.sha256(b"{}").hexdigest()
    stack.redis.delete(idem_name(user["id"], done))
    stack.redis.set(f"idem:{user['id']}:{done}", f"done|{body}|{cid}",
                    px=3_600_000)
    stack.redis.set(f"idem:{user['id']}:{pending}", f"pending|{body}",
                    px=60_000)
    r = stack.shopctl("migrate")
    assert r.returncode == 0, r.stderr
    assert not list(stack.redis.scan_iter(f"idem:{user['id']}:*"))
    assert stack.redis.get(idem_name(user["id"], done)) == \
        f"d|{body[:16]}|{cid}"
    assert 3_500_000 < stack.redis.pttl(idem_name(user["id"], done)) \
        <= 3_600_000
    again = stack.post("/api/checkout", {}, token=token,
                       headers={"Idempotency-Key": done})
    assert again.status_code == 200 and again.json() == first.json()
    r = stack.post("/api/checkout", {"waitlist": True}, token=token,
                   headers={"Idempotency-Key": done})
    assert r.status_code == 422
    r = stack.post("/api/checkout", {}, token=token,
                   headers={"Idempotency-Key": pending})
    assert r.status_code == 409
    assert error(r)["code"] == "idempotency_in_progress"


def test_concurrent_submits_with_one_key_make_one_checkout(stack):
    a = product(stack, 1, 50)
    user, token = buyer(stack, [(a, 1)])
    key = {"Idempotency-Key": f"race-{time.time_ns()}"}

    def submit(_):
        r = stack.post("/api/checkout", {}, token=token, headers=key)
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(submit, range(10)))
    ids = {body["checkoutId"] for code, body in results
           if code in (200, 202)}
    assert len(ids) == 1, results
    assert all(code in (200, 202, 409) for code, _ in results)
    assert [code for code, _ in results].count(202) == 1
    final(stack, ids.pop(), token)
    assert stack.db.orders.count_documents({"userId": __import__(
        "bson").ObjectId(user["id"])}) == 1


def test_long_poll_returns_when_the_status_changes(fresh_stack):
    s = fresh_stack(workers=0)
    a = product(s, 1, 5)
    _, token = buyer(s, [(a, 1)])
    cid = s.post("/api/checkout", {}, token=token).json()["checkoutId"]
    t0 = time.time()
    r = s.get(f"/api/checkout/{cid}?wait=1", token=token)
    assert r.json()["status"] == "queued"
    assert time.time() - t0 >= 0.9                   # it did wait

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        t0 = time.time()
        pending = pool.submit(s.get, f"/api/checkout/{cid}?wait=25",
                              token=token)
        time.sleep(0.5)
        s.start_worker()
        r = pending.result()
    assert r.json()["status"] in ("processing", "completed")
    assert time.time() - t0 < 20                     # woken, not timed out


def test_prefer_wait_times_out_with_202(fresh_stack):
    s = fresh_stack(workers=0)
    a = product(s, 1, 5)
    _, token = buyer(s, [(a, 1)])
    t0 = time.time()
    r = s.post("/api/checkout", {}, token=token, headers={"Prefer": "wait=1"})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert time.time() - t0 >= 0.9


def test_wait_default_serves_old_synchronous_clients(fresh_stack):
    s = fresh_stack(workers=1, env={"CHECKOUT_WAIT_DEFAULT": "10"})
    a = product(s, 4, 5)
    _, token = buyer(s, [(a, 2)])
    r = s.post("/api/checkout", {}, token=token)
    assert r.status_code == 201
    assert r.json()["total"] == 8
    assert r.headers["Location"] == f"/api/orders/{r.json()['id']}"


def test_queue_bound_answers_503(fresh_stack):
    s = fresh_stack(workers=0, env={"QUEUE_MAX": "2"})
    a = product(s, 1, 50)
    codes = []
    for _ in range(3):
        _, token = buyer(s, [(a, 1)])
        r = s.post("/api/checkout", {}, token=token)
        codes.append(r.status_code)
    assert codes == [202, 202, 503]
    assert error(r)["code"] == "queue_full"
    assert r.headers["Retry-After"]
    assert s.redis.xlen("checkout:jobs") == 2


def test_orders_list_is_paginated_and_private(stack):
    a = product(stack, 1, 50)
    user, token = buyer(stack, [(a, 1)])
    ids = []
    for _ in range(3):
        stack.post("/api/cart/me", {"productId": a, "quantity": 1},
                   token=token)
        r = checkout_waiting(stack, token)
        assert r.status_code == 201
        ids.append(r.json()["id"])
    page = stack.get("/api/orders?limit=2", token=token).json()
    assert page["total"] == 3 and page["limit"] == 2
    assert [o["id"] for o in page["items"]] == ids[::-1][:2]   # newest first
    page = stack.get("/api/orders?limit=2&offset=2", token=token).json()
    assert [o["id"] for o in page["items"]] == [ids[0]]
    _, other = new_user(stack)
    assert stack.get("/api/orders", token=other).json()["total"] == 0
    assert stack.get(f"/api/orders/{ids[0]}", token=other).status_code == 403
    r = stack.get(f"/api/orders?userId={user['id']}", token=other)
    assert r.status_code == 403
    r = stack.get(f"/api/orders?userId={user['id']}",
                  token=admin_token(stack))
    assert r.json()["total"] == 3
    r = stack.get("/api/orders/0123456789abcdef01234567", token=token)
    assert r.status_code == 404
    assert stack.get("/api/orders?limit=0", token=token).status_code == 400


def test_websocket_pushes_every_change(fresh_stack):
    s = fresh_stack(workers=0)
    a = product(s, 1, 5)
    _, token = buyer(s, [(a, 1)])
    cid = s.post("/api/checkout", {}, token=token).json()["checkoutId"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{s.port}/api/checkout/{cid}/events"
        f"?access_token={token}", timeout=20)
    seen = [json.loads(ws.recv())["status"]]
    s.start_worker()
    while seen[-1] not in ("completed", "failed"):
        seen.append(json.loads(ws.recv())["status"])
    assert seen[0] == "queued" and seen[-1] == "completed"
    try:
        ws.recv()                                   # the server closes
        closed = False
    except websocket.WebSocketConnectionClosedException:
        closed = True
    assert closed or ws.connected is False
    _, other = new_user(s)
    try:
        websocket.create_connection(
            f"ws://127.0.0.1:{s.port}/api/checkout/{cid}/events",
            header=[f"Authorization: Bearer {other}"], timeout=5)
        refused = False
    except websocket.WebSocketBadStatusException as e:
        refused = e.status_code == 403
    assert refused


def published(sub):
    """What a subscription to checkout:events received (it is closed
    then): per message, its status bodies (one a line)."""
    messages = []
    while (m := sub.get_message(timeout=1)) is not None:
        if m["type"] == "message":
            messages.append([json.loads(x) for x in m["data"].split("\n")])
    sub.close()
    return messages


def test_one_batch_wakes_each_waiter_with_its_own_status(fresh_stack):
    """A worker publishes a batch's status bodies in one message, a line
    each: every WebSocket and long-poll still gets its own."""
    s = fresh_stack(workers=0)
    a = product(s, 1, 2)
    people = [buyer(s, [(a, 1)]) for _ in range(3)]
    cids = [s.post("/api/checkout", {}, token=t).json()["checkoutId"]
            for _, t in people]
    sockets = [websocket.create_connection(
        f"ws://127.0.0.1:{s.port}/api/checkout/{cid}/events"
        f"?access_token={t}", timeout=20)
        for cid, (_, t) in zip(cids[:2], people[:2])]
    seen = [[json.loads(ws.recv())] for ws in sockets]
    sub = s.redis.pubsub()
    sub.subscribe("checkout:events")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        polled = pool.submit(s.get, f"/api/checkout/{cids[2]}?wait=25",
                             token=people[2][1])
        time.sleep(0.5)
        s.start_worker()
        for ws, got in zip(sockets, seen):
            while got[-1]["status"] not in ("completed", "failed"):
                got.append(json.loads(ws.recv()))
        last = polled.result().json()
    stats = s.redis.hgetall("stats:worker")
    assert stats["batches"] == "1" and stats["batched"] == "3"
    messages = published(sub)
    # processing, then the results: a message each, three lines each
    assert [[b["checkoutId"] for b in m] for m in messages] == [cids, cids]
    assert [b["status"] for b in messages[0]] == ["processing"] * 3
    for cid, got in zip(cids, seen):
        assert {b["checkoutId"] for b in got} == {cid}
        assert [b["status"] for b in got][0] == "queued"
    assert last["checkoutId"] == cids[2] and last["status"] != "queued"
    results = [got[-1]["status"] for got in seen]
    assert sorted(results) == ["completed", "completed"]
    assert final(s, cids[2], people[2][1])["error"]["code"] == "out_of_stock"


def test_a_sold_out_refusal_is_finished_as_the_batch_begins(fresh_stack):
    """Once the gate's counter exists, a first delivery it refuses is
    recorded, published, unlocked and acknowledged by batch_begin itself:
    no transaction batch, no second call, the same answer to its buyer."""
    s = fresh_stack(workers=1)
    a = product(s, 1, 1)
    _, first = buyer(s, [(a, 1)])
    assert checkout_waiting(s, first).status_code == 201   # seeds, sells
    before = s.redis.hgetall("stats:worker")
    s.stop_worker(s.workers[0])
    late = [buyer(s, [(a, 1)]) for _ in range(2)]
    cids = [s.post("/api/checkout", {}, token=t).json()["checkoutId"]
            for _, t in late]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{s.port}/api/checkout/{cids[0]}/events"
        f"?access_token={late[0][1]}", timeout=20)
    seen = [json.loads(ws.recv())["status"]]
    sub = s.redis.pubsub()
    sub.subscribe("checkout:events")
    s.start_worker()
    while seen[-1] not in ("completed", "failed"):
        seen.append(json.loads(ws.recv())["status"])
    # (a queued checkout's socket is also sent its new place in line)
    assert [k for k, _ in itertools.groupby(seen)] == [
        "queued", "processing", "failed"]
    for cid, (_, token) in zip(cids, late):
        err = final(s, cid, token)["error"]
        assert err["code"] == "out_of_stock" and err["productId"] == a
    after = s.redis.hgetall("stats:worker")
    assert after["batches"] == before["batches"]             # no batch
    assert int(after["gate_refused"]) == int(
        before.get("gate_refused", 0)) + 2
    assert int(after["failed"]) == int(before.get("failed", 0)) + 2
    messages = published(sub)
    assert [[(b["checkoutId"], b["status"]) for b in m]
            for m in messages] == [[(cids[0], "processing"),
                                    (cids[0], "failed"),
                                    (cids[1], "processing"),
                                    (cids[1], "failed")]]
    assert s.redis.xpending("checkout:jobs", "checkout-workers")[
        "pending"] == 0
    assert not s.redis.exists(*[f"lock:user:{u}" for u, _ in late])
    assert s.redis.get(f"gate:stock:{a}") == "0"


def test_a_stale_cart_hint_ends_as_cart_empty(stack):
    a = product(stack, 1, 5)
    user, token = new_user(stack)
    r = stack.post("/api/checkout", {}, token=token)
    assert r.status_code == 400                     # no hint: the database
    stack.redis.set(f"cart:lines:{user['id']}", f"9||{a}:1")  # gone stale
    r = stack.post("/api/checkout", {}, token=token)
    assert r.status_code == 202
    st = final(stack, r.json()["checkoutId"], token)
    assert st["status"] == "failed"
    assert st["error"]["code"] == "cart_empty"


def test_cart_writes_keep_the_hint_and_orders_drop_it(stack):
    a = product(stack, 1, 5)
    user, token = buyer(stack, [(a, 2)])
    # The hint is written after the answer (it is only a hint).
    cart = stack.get("/api/cart/me", token=token).json()
    wait_until(lambda: stack.redis.get(f"cart:lines:{user['id']}") ==
               f"1|{cart['id']}|{a}:2", 5, "the cart hint")
    r = checkout_waiting(stack, token)
    assert r.status_code == 201
    assert stack.redis.get(f"cart:lines:{user['id']}") is None


def worker_lines(stack, cid):
    """The workers' "checkout" log lines for checkout cid, once there is
    one (a worker logs just after it records the status)."""
    def read():
        return [json.loads(line) for i in range(len(stack.workers))
                for line in stack.log(f"worker{i}").splitlines()
                if cid in line and '"msg":"checkout"' in line]
    wait_until(read, 10, "the worker's log line")
    return read()


def test_sold_out_is_refused_by_the_gate_until_restocked(stack):
    a = product(stack, 5, 1)
    _, first = buyer(stack, [(a, 1)])
    r = checkout_waiting(stack, first)
    assert r.status_code == 201
    assert stack.redis.get(f"gate:stock:{a}") == "0"
    _, second = buyer(stack, [(a, 1)])
    r = checkout_waiting(stack, second)
    assert r.status_code == 409                   # the gate said so ...
    assert error(r)["code"] == "out_of_stock"
    assert error(r)["productId"] == a
    lines = worker_lines(stack, r.json()["checkoutId"])
    assert [(x["attempts"], x["gate"]) for x in lines] == [(0, True)]
    # An admin's restock drops the gate's counter: seeded again at once.
    stack.request("PATCH", f"/api/products/{a}", {"stock": 3},
                  token=admin_token(stack))
    assert stack.redis.get(f"gate:stock:{a}") is None
    r = checkout_waiting(stack, second)
    assert r.status_code == 201
    assert stack.get(f"/api/products/{a}").json()["stock"] == 2
    assert stack.redis.get(f"gate:stock:{a}") == "2"


def test_a_revoked_token_ends_its_long_poll_and_its_websocket(fresh_stack):
    """A long-poll and a WebSocket live as long as their token: a logout
    ends the long-poll with 401 token_revoked and closes the socket after
    saying so, at once, not at their deadline; so does a new token epoch
    (an admin disabling the account)."""
    s = fresh_stack(workers=0)           # checkouts stay queued
    a = product(s, 1, 5)
    user, token = buyer(s, [(a, 1)])
    cid = s.post("/api/checkout", {}, token=token).json()["checkoutId"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{s.port}/api/checkout/{cid}/events"
        f"?access_token={token}", timeout=20)
    assert json.loads(ws.recv())["status"] == "queued"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        poll = pool.submit(s.get, f"/api/checkout/{cid}?wait=25",
                           token=token, timeout=30)
        time.sleep(0.5)                  # the poll is waiting
        start = time.time()
        assert s.post("/api/auth/logout", token=token).status_code == 204
        r = poll.result(timeout=10)
    assert r.status_code == 401 and error(r)["code"] == "token_revoked"
    assert time.time() - start < 5
    assert json.loads(ws.recv())["error"]["code"] == "token_revoked"
    try:
        ws.recv()
        closed = False
    except websocket.WebSocketConnectionClosedException:
        closed = True
    assert closed or ws.connected is False
    # A new epoch: the admin disables the user; another token's socket.
    token2 = login(s, user["email"])
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{s.port}/api/checkout/{cid}/events"
        f"?access_token={token2}", timeout=20)
    assert json.loads(ws.recv())["status"] == "queued"
    r = s.request("PATCH", f"/api/users/{user['id']}", {"disabled": True},
                  token=admin_token(s))
    assert r.status_code == 200, r.text
    assert json.loads(ws.recv())["error"]["code"] == "token_revoked"


def test_a_final_status_leaves_redis_and_a_completed_one_stays_readable(
        stack):
    """Redis keeps a final status CHECKOUT_FINAL_TTL (300 s), not the
    week a live one may wait; then a completed checkout is answered from
    its order (the key deleted here stands for its expiry): the same
    body, to the same people, by GET, long-poll and WebSocket.  A failed
    one is forgotten: 404."""
    a = product(stack, 2.5, 1)
    user, token = buyer(stack, [(a, 1)])
    cid = stack.post("/api/checkout", {}, token=token).json()["checkoutId"]
    st = final(stack, cid, token)
    assert st["status"] == "completed"
    assert 0 < stack.redis.ttl(f"checkout:{cid}") <= 300
    stack.redis.delete(f"checkout:{cid}")
    for path in (f"/api/checkout/{cid}", f"/api/checkout/{cid}?wait=5"):
        r = stack.get(path, token=token)
        assert r.status_code == 200, r.text
        got = r.json()
        assert {k: got[k] for k in ("checkoutId", "status", "createdAt",
                                    "orderId", "order")} == \
            {k: st[k] for k in ("checkoutId", "status", "createdAt",
                                "orderId", "order")}
        assert got["updatedAt"] == st["order"]["createdAt"]
    _, other = new_user(stack)
    assert stack.get(f"/api/checkout/{cid}", token=other).status_code == 403
    admin = admin_token(stack)
    assert stack.get(f"/api/checkout/{cid}", token=admin).json()[
        "orderId"] == st["orderId"]
    r = stack.request("DELETE", f"/api/checkout/{cid}", token=token)
    assert r.status_code == 409
    assert error(r)["code"] == "not_waitlisted"
    assert error(r)["status"] == "completed"
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{stack.port}/api/checkout/{cid}/events"
        f"?access_token={token}", timeout=10)
    assert json.loads(ws.recv())["orderId"] == st["orderId"]
    ws.close()
    # Sold out: failed, kept as briefly, then not found.
    _, late = buyer(stack, [(a, 1)])
    lost = stack.post("/api/checkout", {}, token=late).json()["checkoutId"]
    assert final(stack, lost, late)["status"] == "failed"
    assert 0 < stack.redis.ttl(f"checkout:{lost}") <= 300
    stack.redis.delete(f"checkout:{lost}")
    r = stack.get(f"/api/checkout/{lost}", token=late)
    assert r.status_code == 404
    assert error(r)["code"] == "checkout_not_found"
