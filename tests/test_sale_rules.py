"""
test_sale_rules.py -- a product's sale rules (docs/ARCHITECTURE.md,
"Sale rules"): saleStartsAt and saleEndsAt refuse checkouts outside the
window, perCustomerLimit caps what one customer holds across orders that
are not cancelled or expired, exact when one user submits from many
devices at once.  Refusals come from the Redis gate with no MongoDB
operation (the worker's gate_refused counter); MongoDB checks again.
"""
import concurrent.futures
import datetime
import time

import bson
import pytest

from test_checkout import buyer, checkout_waiting, final
from util import admin_token, error, new_user

UTC = datetime.timezone.utc


def iso(t):
    return datetime.datetime.fromtimestamp(t, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def create(stack, **fields):
    body = {"title": "sale item", "price": 5, "stock": 50, **fields}
    r = stack.post("/api/products", body, token=admin_token(stack))
    assert r.status_code == 201, r.text
    return r.json()


def patch(stack, pid, body):
    return stack.request("PATCH", f"/api/products/{pid}", body,
                         token=admin_token(stack))


def gate_refused(stack):
    return int(stack.redis.hget("stats:worker", "gate_refused") or 0)


@pytest.fixture(scope="module")
def sale(request):
    from stack import Stack
    # One user's twenty devices all wait for their answers at once.
    s = Stack(name="sale-rules", env={"SUBMIT_LIMIT": "1000",
                                      "WAITERS_PER_USER": "64"}).start()
    yield s
    s.cleanup()


def test_rules_are_validated_and_shown(stack):
    p = create(stack, saleStartsAt="2030-01-01T10:00:00+02:00",
               perCustomerLimit=2)
    assert p["saleStartsAt"] == "2030-01-01T08:00:00.000Z"
    assert p["perCustomerLimit"] == 2
    assert stack.get(f"/api/products/{p['id']}").json()["perCustomerLimit"] \
        == 2
    for body, field in (({"saleStartsAt": "tomorrow"}, "saleStartsAt"),
                        ({"saleEndsAt": 5}, "saleEndsAt"),
                        ({"saleEndsAt": "2030-02-30T00:00:00Z"},
                         "saleEndsAt"),
                        ({"perCustomerLimit": 0}, "perCustomerLimit"),
                        ({"perCustomerLimit": "2"}, "perCustomerLimit")):
        r = patch(stack, p["id"], body)
        assert r.status_code == 400 and error(r)["field"] == field, body
    # An end not after the start: given together, or against the stored.
    r = patch(stack, p["id"], {"saleEndsAt": "2030-01-01T08:00:00Z"})
    assert r.status_code == 400
    assert error(r)["code"] == "invalid_sale_window"
    r = stack.post("/api/products", {"title": "t", "price": 1, "stock": 1,
                                     "saleStartsAt": "2030-01-02T00:00:00Z",
                                     "saleEndsAt": "2030-01-01T00:00:00Z"},
                   token=admin_token(stack))
    assert r.status_code == 400
    assert error(r)["code"] == "invalid_sale_window"
    r = patch(stack, p["id"], {"saleEndsAt": "2030-01-02T00:00:00Z",
                               "perCustomerLimit": None})
    assert r.status_code == 200 and "perCustomerLimit" not in r.json()
    r = patch(stack, p["id"], {"saleStartsAt": None})
    assert "saleStartsAt" not in r.json() and "saleEndsAt" in r.json()
    # A PUT replaces: the rules it leaves out are gone.
    r = stack.request("PUT", f"/api/products/{p['id']}",
                      {"title": "t", "price": 1, "stock": 1},
                      token=admin_token(stack))
    assert r.status_code == 200 and "saleEndsAt" not in r.json()


def test_a_sale_opens_on_the_millisecond(sale):
    """Submitted at T - 1 s: refused; at T + 0.1 s: sold.  Both wait in
    the queue past T (no worker runs): the submit's time is what counts."""
    opens = time.time() + 3
    p = create(sale, saleStartsAt=iso(opens))
    _, early = buyer(sale, [(p["id"], 1)])
    _, late = buyer(sale, [(p["id"], 1)])
    for w in list(sale.workers):
        sale.stop_worker(w)
    refused = gate_refused(sale)
    try:
        time.sleep(max(0, opens - 1 - time.time()))
        first = sale.post("/api/checkout", {}, token=early).json()
        time.sleep(max(0, opens + 0.1 - time.time()))
        second = sale.post("/api/checkout", {}, token=late).json()
    finally:
        sale.start_worker()
        sale.start_worker()
    got = final(sale, first["checkoutId"], early)
    assert got["status"] == "failed", got
    assert got["error"]["code"] == "sale_not_started"
    assert got["error"]["startsAt"] == iso(opens)
    assert got["error"]["productId"] == p["id"]
    assert final(sale, second["checkoutId"], late)["status"] == "completed"
    assert gate_refused(sale) == refused + 1            # no transaction
    # A submit before the start, answered at once with Prefer: wait.
    q = create(sale, saleStartsAt=iso(time.time() + 60))
    _, token = buyer(sale, [(q["id"], 1)])
    r = checkout_waiting(sale, token)
    assert r.status_code == 409 and error(r)["code"] == "sale_not_started"


def test_a_sale_that_ended_refuses(sale):
    p = create(sale, saleStartsAt=iso(time.time() - 60),
               saleEndsAt=iso(time.time() + 2))
    _, token = buyer(sale, [(p["id"], 1)])
    time.sleep(2.2)
    r = checkout_waiting(sale, token)
    assert r.status_code == 409 and error(r)["code"] == "sale_ended"
    cart = sale.db.carts.find_one({"items.productId": bson.ObjectId(p["id"])})
    assert cart is not None                             # cart untouched


def test_limit_holds_for_twenty_devices_at_once(sale):
    p = create(sale, perCustomerLimit=2)
    pid = p["id"]
    user, token = new_user(sale, "devices")

    def device(_):
        """Fill the cart and check out until the limit says no (another
        device's order may empty the cart first: then again)."""
        got = []
        for _ in range(10):
            sale.post("/api/cart/me", {"productId": pid, "quantity": 1},
                      token=token)
            r = checkout_waiting(sale, token)
            if r.status_code == 202:            # slow: follow it
                st = final(sale, r.json()["checkoutId"], token, wait=120)
                got.append(201 if st["status"] == "completed" else
                           st["error"]["code"])
            else:
                got.append(r.status_code if r.status_code not in (400, 409)
                           else error(r)["code"])
            if got[-1] == "limit_exceeded":
                break
        return got

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = [a for got in pool.map(device, range(20)) for a in got]
    assert answers.count(201) == 2, answers
    assert answers.count("limit_exceeded") == 20, answers
    assert set(answers) <= {201, "limit_exceeded", "cart_empty"}
    held = sum(i["quantity"] for o in sale.db.orders.find(
        {"userId": bson.ObjectId(user["id"])}) for i in o["items"])
    assert held == 2
    # Over the limit in one cart: named, with the limit and what is held.
    sale.post("/api/cart/me", {"productId": pid, "quantity": 1}, token=token)
    r = checkout_waiting(sale, token)
    assert r.status_code == 409 and error(r)["code"] == "limit_exceeded"
    assert (error(r)["limit"], error(r)["held"]) == (2, 2)


def test_limit_counts_across_cancellations_and_is_checked_twice(sale):
    p = create(sale, perCustomerLimit=2)
    pid = p["id"]
    user, token = new_user(sale, "canceller")
    orders = []
    for _ in range(2):
        sale.post("/api/cart/me", {"productId": pid, "quantity": 1},
                  token=token)
        r = checkout_waiting(sale, token)
        assert r.status_code == 201, r.text
        orders.append(r.json())
    r = sale.post(f"/api/orders/{orders[0]['id']}/cancel", {}, token=token)
    assert r.status_code == 200
    sale.post("/api/cart/me", {"productId": pid, "quantity": 1}, token=token)
    assert checkout_waiting(sale, token).status_code == 201   # room again
    # The gate forgets its count (as after a restart without AOF):
    # MongoDB, the authority, still refuses, and tells the gate.
    sale.redis.delete(f"gate:user:{pid}")
    sale.post("/api/cart/me", {"productId": pid, "quantity": 1}, token=token)
    refused = gate_refused(sale)
    r = checkout_waiting(sale, token)
    assert r.status_code == 409 and error(r)["code"] == "limit_exceeded"
    assert error(r)["held"] == 2
    assert gate_refused(sale) == refused                # MongoDB's refusal
    r = checkout_waiting(sale, token)
    assert r.status_code == 409 and error(r)["code"] == "limit_exceeded"
    assert gate_refused(sale) == refused + 1            # the gate's own
