"""
test_lifecycle.py -- an order after the sale (docs/ARCHITECTURE.md,
"Order lifecycle"): statuses and history, payment, fulfilment,
cancellation and refund, each refusal, the payment window and the
sweeper's expiry, units back on sale exactly once (also when the
sweeper or the database is killed), the admin's listing, and the events
each transition announces.

The stack of this module runs with a short PAYMENT_WINDOW_S; the
default (0: orders start confirmed) is the shared stack's.
"""
import concurrent.futures
import datetime
import signal
import time

import bson
import pytest

from stack import Stack, wait_until
from test_checkout import buyer, checkout_waiting
from test_invariants import buyers, submit_all, wait_final
from util import admin_token, error, new_user, product

WINDOW = 3          # seconds, PAYMENT_WINDOW_S of this module's stack
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def paid():
    """A system whose orders await payment for WINDOW seconds."""
    s = Stack(name="lifecycle", notify=True,
              env={"PAYMENT_WINDOW_S": str(WINDOW),
                   "SUBMIT_LIMIT": "1000",
                   "SWEEP_INTERVAL_MS": "200"}).start()
    yield s
    s.cleanup()


def ordered(stack, lines):
    """A new buyer's order of lines: (order, token)."""
    _, token = buyer(stack, lines)
    r = checkout_waiting(stack, token)
    assert r.status_code == 201, r.text
    return r.json(), token


def stock(stack, pid):
    return stack.db.products.find_one({"_id": bson.ObjectId(pid)})["stock"]


def gate(stack, pid):
    v = stack.redis.get(f"gate:stock:{pid}")
    return None if v is None else int(v)


def post(stack, oid, what, body, token):
    return stack.post(f"/api/orders/{oid}/{what}", body, token=token)


def test_orders_start_confirmed_with_their_history(stack):
    a = product(stack, 2.5, 5)
    order, _ = ordered(stack, [(a, 2)])
    assert order["status"] == "confirmed"
    assert "payBy" not in order
    assert [h["status"] for h in order["history"]] == ["confirmed"]
    assert order["history"][0]["by"] == order["userId"]


def test_cancel_returns_the_units_once(stack):
    a = product(stack, 2.5, 5)
    order, token = ordered(stack, [(a, 2)])
    assert stock(stack, a) == 3
    r = post(stack, order["id"], "cancel", {"reason": "wrong size"}, token)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "cancelled"
    assert got["cancellation"]["reason"] == "wrong size"
    assert [h["status"] for h in got["history"]] == ["confirmed",
                                                     "cancelled"]
    assert "refund" not in got                      # never paid
    assert stock(stack, a) == 5
    r = post(stack, order["id"], "fulfil", {}, admin_token(stack))
    assert r.status_code == 409 and error(r)["status"] == "cancelled"
    again = post(stack, order["id"], "cancel", {}, token)
    assert again.status_code == 200
    assert again.json()["history"] == got["history"]
    assert stock(stack, a) == 5                     # not twice
    # The units are on sale again at once: a new buyer gets all five.
    second, _ = ordered(stack, [(a, 5)])
    assert second["status"] == "confirmed"
    assert stock(stack, a) == 0


def test_transitions_that_do_not_apply_are_409(stack):
    a = product(stack, 1, 10)
    order, token = ordered(stack, [(a, 1)])
    admin = admin_token(stack)
    oid = order["id"]
    r = post(stack, oid, "refund", {"reference": "re_1"}, admin)
    assert r.status_code == 409 and error(r)["code"] == "invalid_transition"
    assert error(r)["status"] == "confirmed"
    r = post(stack, oid, "fulfil", {"carrier": "DHL", "tracking": "JD1"},
             admin)
    assert r.status_code == 200 and r.json()["status"] == "fulfilled"
    assert r.json()["fulfilment"]["tracking"] == "JD1"
    assert post(stack, oid, "fulfil", {}, admin).status_code == 200
    r = post(stack, oid, "cancel", {}, token)
    assert r.status_code == 409 and error(r)["status"] == "fulfilled"
    r = post(stack, oid, "cancel", {}, admin)       # not even an admin
    assert r.status_code == 409
    # Paying an order that never awaited payment.
    r = post(stack, oid, "payment", {"reference": "p", "amount": 1}, admin)
    assert r.status_code == 409 and error(r)["code"] == "invalid_transition"


def test_who_may_do_what(stack):
    a = product(stack, 1, 10)
    order, token = ordered(stack, [(a, 1)])
    _, other = new_user(stack, "other")
    oid = order["id"]
    r = post(stack, oid, "cancel", {}, other)
    assert r.status_code == 403
    r = post(stack, oid, "fulfil", {}, token)
    assert r.status_code == 403 and error(r)["code"] == "admin_only"
    r = post(stack, oid, "payment", {"reference": "p", "amount": 1}, token)
    assert r.status_code == 403 and error(r)["code"] == "payments_only"
    r = post(stack, "0123456789abcdef01234567", "cancel", {}, token)
    assert r.status_code == 404
    r = post(stack, oid, "cancel", {"reason": 7}, token)
    assert r.status_code == 400 and error(r)["field"] == "reason"
    r = post(stack, oid, "cancel", {"why": "x"}, token)
    assert r.status_code == 400 and error(r)["code"] == "unknown_field"
    r = post(stack, oid, "payment", {"reference": "p"}, admin_token(stack))
    assert r.status_code == 400 and error(r)["field"] == "amount"
    r = post(stack, oid, "payment", {"reference": "p", "amount": 1.001},
             admin_token(stack))
    assert r.status_code == 400 and error(r)["field"] == "amount"
    assert stock(stack, a) == 9                     # nothing changed


def test_admin_lists_every_order_with_filters(stack):
    a = product(stack, 3, 10)
    first, t1 = ordered(stack, [(a, 1)])
    second, _ = ordered(stack, [(a, 3)])
    post(stack, first["id"], "cancel", {}, t1)
    admin = admin_token(stack)
    r = stack.get("/api/orders?status=cancelled&limit=100", token=admin)
    assert r.status_code == 200
    ids = [o["id"] for o in r.json()["items"]]
    assert first["id"] in ids and second["id"] not in ids
    assert all(o["status"] == "cancelled" for o in r.json()["items"])
    r = stack.get(f"/api/orders?userId={second['userId']}", token=admin)
    assert [o["id"] for o in r.json()["items"]] == [second["id"]]
    since = second["createdAt"]
    r = stack.get(f"/api/orders?from={since}&sort=-total&limit=100",
                  token=admin)
    totals = [o["total"] for o in r.json()["items"]]
    assert totals == sorted(totals, reverse=True) and 9 in totals
    assert first["id"] not in [o["id"] for o in r.json()["items"]] or \
        first["createdAt"] >= since
    r = stack.get("/api/orders?to=2000-01-01T00:00:00Z", token=admin)
    assert r.json()["total"] == 0
    # A customer's listing stays theirs, filters and all.
    r = stack.get("/api/orders?status=cancelled", token=t1)
    assert [o["id"] for o in r.json()["items"]] == [first["id"]]
    for bad in ("status=lost", "from=yesterday", "sort=price",
                "to=2026-02-31T00:00:00Z"):
        r = stack.get(f"/api/orders?{bad}", token=admin)
        assert r.status_code == 400, bad
        assert error(r)["field"] == bad.split("=")[0]


def test_a_long_listing_pages_exactly_newest_first(stack):
    """More than 2,000 orders are read in time windows (shared/db.c,
    page_newest): pages neither skip nor repeat, across windows, ties and
    times in the future or decades ago."""
    a = product(stack, 1, 10)
    order, _ = ordered(stack, [(a, 1)])
    doc = stack.db.orders.find_one({"_id": bson.ObjectId(order["id"])})
    user = bson.ObjectId()
    now = datetime.datetime.now(UTC)
    offsets = [datetime.timedelta(days=1), datetime.timedelta(seconds=5)]
    offsets += [-datetime.timedelta(milliseconds=i * 7) for i in range(600)]
    offsets += [-datetime.timedelta(seconds=i) for i in range(1, 900)]
    offsets += [-datetime.timedelta(hours=i) for i in range(1, 600)]
    offsets += [-datetime.timedelta(days=365 * 25)] * 50     # ties
    offsets += [-datetime.timedelta(minutes=3)] * 30
    docs = []
    for off in offsets:
        d = dict(doc, _id=bson.ObjectId(), userId=user,
                 checkoutId=str(bson.ObjectId()))
        d["createdAt"] = now + off
        docs.append(d)
    stack.db.orders.insert_many(docs)
    expected = [str(d["_id"]) for d in sorted(
        docs, key=lambda d: (d["createdAt"], d["_id"]), reverse=True)]
    admin = admin_token(stack)
    got, offset = [], 0
    while True:
        r = stack.get(f"/api/orders?userId={user}&limit=100&offset={offset}",
                      token=admin)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(docs)
        page = [o["id"] for o in r.json()["items"]]
        if not page:
            break
        got += page
        offset += 100
    assert got == expected
    r = stack.get(f"/api/orders?userId={user}&limit=3&offset=2075",
                  token=admin)
    assert [o["id"] for o in r.json()["items"]] == expected[2075:2078]


def test_payment_window(paid):
    a = product(paid, 4.25, 10)
    order, token = ordered(paid, [(a, 2)])
    admin = admin_token(paid)
    oid = order["id"]
    assert order["status"] == "awaiting_payment" and "payBy" in order
    r = post(paid, oid, "payment", {"reference": "pi_1", "amount": 8.49},
             admin)
    assert r.status_code == 409 and error(r)["code"] == "amount_mismatch"
    r = post(paid, oid, "payment", {"reference": "pi_1", "amount": 8.5},
             admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    assert r.json()["payment"] == {**r.json()["payment"],
                                   "reference": "pi_1", "amount": 8.5}
    again = post(paid, oid, "payment", {"reference": "pi_1", "amount": 8.5},
                 admin)
    assert again.status_code == 200 and again.json() == r.json()
    r = post(paid, oid, "payment", {"reference": "pi_2", "amount": 8.5},
             admin)
    assert r.status_code == 409 and error(r)["code"] == "already_paid"
    # A paid order cancelled owes a refund; the admin records it.
    r = post(paid, oid, "cancel", {}, token)
    assert r.json()["refund"] == {"amount": 8.5, "status": "due"}
    assert stock(paid, a) == 10
    r = post(paid, oid, "refund", {"reference": "re_1"}, admin)
    assert r.status_code == 200 and r.json()["refund"]["status"] == "refunded"
    assert post(paid, oid, "refund", {"reference": "re_1"},
                admin).status_code == 200
    r = post(paid, oid, "refund", {"reference": "re_2"}, admin)
    assert r.status_code == 409


def test_a_payments_role_may_pay_and_nothing_else(paid):
    a = product(paid, 1, 10)
    order, _ = ordered(paid, [(a, 1)])
    clerk, ptoken = new_user(paid, "payments")
    admin = admin_token(paid)
    r = paid.request("PATCH", f"/api/users/{clerk['id']}",
                     {"role": "payments"}, token=admin)
    assert r.status_code == 200, r.text
    wait_until(lambda: paid.get("/api/auth/me", token=ptoken)
               .status_code == 401, 5, "the old token refused")
    from util import login
    ptoken = login(paid, clerk["email"])
    r = post(paid, order["id"], "payment", {"reference": "x", "amount": 1},
             ptoken)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = post(paid, order["id"], "fulfil", {}, ptoken)
    assert r.status_code == 403
    assert paid.get("/api/users", token=ptoken).status_code == 403
    r = paid.post("/api/products", {"title": "t", "price": 1, "stock": 1},
                  token=ptoken)
    assert r.status_code == 403


def test_unpaid_orders_expire_and_their_units_return(paid):
    a = product(paid, 1, 6)
    order, token = ordered(paid, [(a, 4)])
    assert stock(paid, a) == 2
    due = time.time() + WINDOW
    wait_until(lambda: paid.get(f"/api/orders/{order['id']}", token=token)
               .json()["status"] == "expired", WINDOW + 5, "the expiry")
    assert time.time() - due < 5                    # at most 5 s late
    got = paid.get(f"/api/orders/{order['id']}", token=token).json()
    assert got["history"][-1] == {**got["history"][-1], "status": "expired",
                                  "by": "system"}
    assert stock(paid, a) == 6
    r = post(paid, order["id"], "payment", {"reference": "late",
                                            "amount": 4}, admin_token(paid))
    assert r.status_code == 409 and error(r)["status"] == "expired"
    r = post(paid, order["id"], "cancel", {}, token)
    assert r.status_code == 409
    # All six are for sale again.
    again, _ = ordered(paid, [(a, 6)])
    assert again["status"] == "awaiting_payment"


def test_cancel_racing_payment_never_loses_an_update(paid):
    """Racing a cancel against a payment: the loser of a conflict is
    refused (409), and the order always shows what the 200s said.  (Two
    requests that reach one API process run one after the other in its
    transition groups: then a payment and a cancel may both apply, and
    the order is cancelled with its refund due.)"""
    a = product(paid, 2, 40)
    admin = admin_token(paid)
    for _ in range(8):
        order, token = ordered(paid, [(a, 1)])
        oid = order["id"]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pay = pool.submit(post, paid, oid, "payment",
                              {"reference": "race", "amount": 2}, admin)
            can = pool.submit(post, paid, oid, "cancel", {}, token)
            p, c = pay.result(), can.result()
        assert {p.status_code, c.status_code} <= {200, 409}
        assert 200 in (p.status_code, c.status_code)
        final = paid.get(f"/api/orders/{oid}", token=token).json()
        if c.status_code == 409:
            assert final["status"] == "confirmed" and "refund" not in final
        elif p.status_code == 409:
            assert final["status"] == "cancelled" and "payment" not in final
        else:                                       # paid, then cancelled
            assert final["status"] == "cancelled"
            assert final["refund"]["status"] == "due"
    cancelled = paid.db.orders.count_documents(
        {"items.productId": bson.ObjectId(a), "status": "cancelled"})
    assert stock(paid, a) == 40 - 8 + cancelled


def unpaid_orders(stack, pid, n, qty, due):
    """n unpaid orders of pid written straight into MongoDB, their units
    taken from the product's stock, payBy at due (ms)."""
    user = bson.ObjectId()
    docs = [{"_id": bson.ObjectId(), "checkoutId": str(bson.ObjectId()),
             "userId": user, "items": [{"productId": bson.ObjectId(pid),
                                        "title": "t", "quantity": qty,
                                        "price": 100}],
             "total": 100 * qty, "createdAt": datetime.datetime.now(UTC),
             "status": "awaiting_payment", "history": [],
             "payBy": datetime.datetime.fromtimestamp(due / 1000, UTC)}
            for _ in range(n)]
    stack.db.orders.insert_many(docs)
    stack.db.products.update_one({"_id": bson.ObjectId(pid)},
                                 {"$inc": {"stock": -n * qty}})
    stack.redis.delete(f"gate:stock:{pid}")
    return [d["_id"] for d in docs]


def test_a_thousand_expiries_return_exactly_their_units(paid):
    a = product(paid, 1, 5000)
    ids = unpaid_orders(paid, a, 1000, 2, int(time.time() * 1000) - 1)
    assert stock(paid, a) == 3000
    # (Seconds on the Rust server; the Python one needs far longer.)
    wait_until(lambda: paid.db.orders.count_documents(
        {"_id": {"$in": ids}, "status": "expired"}) == 1000, 240,
        "every order expired")
    assert stock(paid, a) == 5000
    wait_until(lambda: paid.db.orders.count_documents(
        {"_id": {"$in": ids}, "unitsBack": "done"}) == 1000, 60,
        "every return repaired or done")
    assert paid.db.outbox.count_documents(
        {"orderId": {"$in": ids}, "event": "order.expired"}) == 1000


def test_killed_sweepers_redis_and_database_return_nothing_twice(
        fresh_stack):
    """SIGKILL the workers (and so their sweepers), Redis and the
    database while 1,000 orders expire and buyers cancel: stock + units
    in live orders stays what it was, and the gate agrees once all is
    settled."""
    s = fresh_stack(workers=2, env={"PAYMENT_WINDOW_S": "600",
                                    "SWEEP_INTERVAL_MS": "100",
                                    "SUBMIT_LIMIT": "1000"})
    a = product(s, 1, 3000)
    unpaid_orders(s, a, 1000, 1, int(time.time() * 1000) + 1500)
    people = buyers(s, 40, a, qty=2)
    ids = submit_all(s, people)
    wait_final(s, ids)
    orders = list(s.db.orders.find({"checkoutId": {"$in": ids}}))
    tokens = dict(people)

    def cancel(o):
        for _ in range(50):
            try:
                r = post(s, o["_id"], "cancel", {}, tokens[str(o["userId"])])
                if r.status_code == 200:
                    return
            except Exception:  # noqa: BLE001 -- the API may be busy
                pass
            time.sleep(0.2)
        raise AssertionError("cancel never went through")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        done = pool.map(cancel, orders)
        time.sleep(1.6)                             # the expiry starts
        for w in list(s.workers):
            s.stop_worker(w, signal.SIGKILL)
        s.stop_mongo(signal.SIGKILL)
        time.sleep(0.5)
        s.start_mongo()
        s.start_worker()
        time.sleep(0.5)
        s.stop_redis(signal.SIGKILL)
        time.sleep(0.3)
        s.start_redis()
        s.start_worker()
        list(done)

    def settled():
        return s.db.orders.count_documents({"$or": [
            {"status": "awaiting_payment"},
            {"unitsBack": "pending"}]}) == 0
    wait_until(settled, 60, "every expiry and return settled")
    live = sum(i["quantity"] for o in s.db.orders.find(
        {"status": {"$nin": ["cancelled", "expired"]}}) for i in o["items"])
    assert stock(s, a) + live == 3000
    assert stock(s, a) == 3000                      # all came back
    assert gate(s, a) in (None, 3000)               # the gate agrees


def test_every_transition_is_announced(paid):
    a = product(paid, 5, 10)
    order, token = ordered(paid, [(a, 1)])
    admin = admin_token(paid)
    post(paid, order["id"], "payment", {"reference": "m1", "amount": 5},
         admin)
    post(paid, order["id"], "fulfil", {}, admin)
    other, t2 = ordered(paid, [(a, 1)])
    post(paid, other["id"], "cancel", {}, t2)
    events = {(d["event"], str(d.get("orderId", d["_id"])))
              for d in paid.db.outbox.find({"$or": [
                  {"orderId": {"$in": [bson.ObjectId(order["id"]),
                                       bson.ObjectId(other["id"])]}},
                  {"_id": {"$in": [bson.ObjectId(order["id"]),
                                   bson.ObjectId(other["id"])]}}]})}
    assert events == {("order.completed", order["id"]),
                      ("order.confirmed", order["id"]),
                      ("order.fulfilled", order["id"]),
                      ("order.completed", other["id"]),
                      ("order.cancelled", other["id"])}

    def subjects():
        return [m["Subject"] for m in paid.mails()]
    want = [f"Order {order['id']} confirmed", f"Order {order['id']} shipped",
            f"Order {other['id']} cancelled"]
    wait_until(lambda: all(w in subjects() for w in want), 20,
               "the buyer's emails")


def test_shopctl_lists_orders_as_the_admin_does(stack):
    a = product(stack, 7, 10)
    first, t1 = ordered(stack, [(a, 2)])
    second, _ = ordered(stack, [(a, 1)])
    post(stack, first["id"], "cancel", {}, t1)
    r = stack.shopctl("orders", "--status", "cancelled", "--limit", "500")
    assert r.returncode == 0, r.stderr
    assert first["id"] in r.stdout and second["id"] not in r.stdout
    line = [x for x in r.stdout.splitlines() if first["id"] in x][0]
    assert "cancelled" in line and "14.00" in line
    r = stack.shopctl("orders", "--user", second["userId"])
    assert second["id"] in r.stdout and "1 shown of 1 matching" in r.stdout
    r = stack.shopctl("orders", "--sort", "total", "--limit", "1",
                      "--from", second["createdAt"])
    assert r.returncode == 0 and "1 shown" in r.stdout
    r = stack.shopctl("orders", "--status", "lost")
    assert r.returncode == 2 and "--status lost is invalid" in r.stderr


def test_a_test_payment_only_in_development(stack, fresh_stack):
    """The demo's "Pay (test)" button: what is due, by its owner, with
    APP_ENV=development only."""
    a = product(stack, 1, 5)
    order, token = ordered(stack, [(a, 1)])
    r = post(stack, order["id"], "test-payment", {}, token)
    assert r.status_code == 403 and error(r)["code"] == "development_only"
    dev = fresh_stack(env={"APP_ENV": "development",
                           "PAYMENT_WINDOW_S": "60"})
    a = product(dev, 7.25, 5)
    order, token = ordered(dev, [(a, 2)])
    _, other = new_user(dev, "other")
    assert post(dev, order["id"], "test-payment", {}, other).status_code \
        == 403
    r = post(dev, order["id"], "test-payment", {"amount": 1}, token)
    assert r.status_code == 400 and error(r)["code"] == "unknown_field"
    r = post(dev, order["id"], "test-payment", {}, token)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    assert r.json()["payment"]["amount"] == 14.5
    assert r.json()["payment"]["reference"] == f"test-{order['id']}"
    assert post(dev, order["id"], "test-payment", {}, token).status_code \
        == 200                                       # the same, again
    other_order, t2 = ordered(dev, [(a, 1)])
    post(dev, other_order["id"], "cancel", {}, t2)
    r = post(dev, other_order["id"], "test-payment", {}, t2)
    assert r.status_code == 409
    r = post(dev, "0123456789abcdef01234567", "test-payment", {}, t2)
    assert r.status_code == 404
    dev.stop_mongo(signal.SIGKILL)
    r = post(dev, order["id"], "test-payment", {}, token)
    assert r.status_code == 503
