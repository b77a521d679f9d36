"""
test_cart.py -- carts: owner or admin only, both update forms, quantity
and line limits, unknown products, current titles and prices.
"""
import concurrent.futures

from util import admin_token, error, new_user, product


def test_empty_cart_then_lines(stack):
    user, token = new_user(stack)
    r = stack.get("/api/cart/me", token=token)
    assert r.status_code == 200
    assert r.json()["items"] == [] and r.json()["subtotal"] == 0
    a, b = product(stack, 2.5), product(stack, 0.1)
    r = stack.post(f"/api/cart/{user['id']}", {"productId": a,
                                               "quantity": 3}, token=token)
    assert r.status_code == 200, r.text
    r = stack.post("/api/cart/me", {"productId": b, "quantity": 3},
                   token=token)
    cart = r.json()
    assert cart["userId"] == user["id"]
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == \
        [(a, 3), (b, 3)]
    assert cart["items"][0]["title"] == "test item"
    assert cart["items"][0]["price"] == 2.5
    assert cart["items"][0]["lineTotal"] == 7.5
    assert cart["subtotal"] == 7.8                # exact, not 7.800000001
    r = stack.post("/api/cart/me", {"productId": a, "quantity": 1},
                   token=token)
    assert r.json()["items"][0]["quantity"] == 1  # set, not added
    r = stack.post("/api/cart/me", {"productId": a, "quantity": 0},
                   token=token)
    assert [i["productId"] for i in r.json()["items"]] == [b]
    assert stack.get("/api/cart/me", token=token).json() == r.json()


def test_replace_form(stack):
    _, token = new_user(stack)
    a, b = product(stack), product(stack)
    r = stack.post("/api/cart/me", {"items": [
        {"productId": a, "quantity": 2}, {"productId": b, "quantity": 1}]},
        token=token)
    assert r.status_code == 200
    assert len(r.json()["items"]) == 2
    r = stack.post("/api/cart/me", {"items": []}, token=token)
    assert r.status_code == 200 and r.json()["items"] == []


def test_only_owner_or_admin(stack):
    owner, owner_token = new_user(stack)
    _, other = new_user(stack)
    a = product(stack)
    stack.post("/api/cart/me", {"productId": a, "quantity": 1},
               token=owner_token)
    r = stack.get(f"/api/cart/{owner['id']}", token=other)
    assert r.status_code == 403 and error(r)["code"] == "forbidden"
    r = stack.post(f"/api/cart/{owner['id']}", {"productId": a,
                                                "quantity": 5}, token=other)
    assert r.status_code == 403
    assert stack.get(f"/api/cart/{owner['id']}").status_code == 401
    admin = admin_token(stack)
    r = stack.get(f"/api/cart/{owner['id']}", token=admin)
    assert r.status_code == 200 and r.json()["items"][0]["quantity"] == 1
    r = stack.get("/api/cart/0123456789abcdef01234567", token=admin)
    assert r.status_code == 404 and error(r)["code"] == "user_not_found"


def test_inputs_are_validated(stack):
    user, token = new_user(stack)
    a = product(stack)
    cases = [
        ({"productId": a, "quantity": 1001}, 400, "out_of_range",
         "quantity"),
        ({"productId": a, "quantity": -1}, 400, "out_of_range", "quantity"),
        ({"productId": a, "quantity": 1.5}, 400, "invalid_type",
         "quantity"),
        ({"productId": a, "quantity": "2"}, 400, "invalid_type",
         "quantity"),
        ({"productId": a, "quantity": 10 ** 30}, 400, "out_of_range", None),
        ({"productId": "nope", "quantity": 1}, 400, "invalid_id",
         "productId"),
        ({"productId": {"$ne": None}, "quantity": 1}, 400, "invalid_type",
         "productId"),
        ({"quantity": 1}, 400, "missing_field", "productId"),
        ({"productId": a}, 400, "missing_field", "quantity"),
        ({"productId": a, "quantity": 1, "price": 0}, 400, "unknown_field",
         "price"),
        ({"productId": "0123456789abcdef01234567", "quantity": 1}, 404,
         "product_not_found", "productId"),
        ({"items": [{"productId": a, "quantity": 0}]}, 400, "out_of_range",
         "items[0].quantity"),
        ({"items": [{"productId": a, "quantity": 1},
                    {"productId": a, "quantity": 2}]}, 400, "invalid_value",
         "items[1].productId"),
        ({"items": [{"productId": a, "quantity": 1},
                    {"productId": "0123456789abcdef01234567",
                     "quantity": 1}]}, 404, "product_not_found",
         "items[1].productId"),
        ({"items": "all"}, 400, "invalid_type", "items"),
        ({"items": [{"productId": a, "quantity": 1}] * 101}, 422,
         "cart_too_large", "items"),
    ]
    for body, status, code, field in cases:
        r = stack.post("/api/cart/me", body, token=token)
        assert r.status_code == status, (body, r.text)
        assert error(r)["code"] == code, (body, r.text)
        assert error(r).get("field") == field, (body, r.text)
    assert stack.get("/api/cart/me", token=token).json()["items"] == []
    r = stack.get("/api/cart/not-an-id", token=token)
    assert r.status_code == 400 and error(r)["code"] == "invalid_id"


def test_line_limit(fresh_stack):
    s = fresh_stack(workers=0, env={"CART_MAX_LINES": "3"})
    _, token = new_user(s)
    ids = [product(s) for _ in range(4)]
    for pid in ids[:3]:
        assert s.post("/api/cart/me", {"productId": pid, "quantity": 1},
                      token=token).status_code == 200
    r = s.post("/api/cart/me", {"productId": ids[3], "quantity": 1},
               token=token)
    assert r.status_code == 422 and error(r)["code"] == "cart_too_large"
    # Changing an existing line is still fine.
    r = s.post("/api/cart/me", {"productId": ids[0], "quantity": 9},
               token=token)
    assert r.status_code == 200


def test_deleted_product_is_marked_unavailable(stack):
    _, token = new_user(stack)
    a, b = product(stack, 1), product(stack, 2)
    stack.post("/api/cart/me", {"items": [{"productId": a, "quantity": 1},
                                          {"productId": b, "quantity": 1}]},
               token=token)
    stack.request("DELETE", f"/api/products/{a}", token=admin_token(stack))
    cart = stack.get("/api/cart/me", token=token).json()
    assert cart["items"][0]["available"] is False
    assert cart["items"][1]["available"] is True
    assert cart["subtotal"] == 2
    # It can still be removed.
    r = stack.post("/api/cart/me", {"productId": a, "quantity": 0},
                   token=token)
    assert [i["productId"] for i in r.json()["items"]] == [b]


def test_concurrent_updates_lose_nothing(stack):
    _, token = new_user(stack)
    ids = [product(stack) for _ in range(8)]

    def add(pid):
        return stack.post("/api/cart/me", {"productId": pid, "quantity": 2},
                          token=token).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(add, ids))
    assert codes == [200] * 8
    cart = stack.get("/api/cart/me", token=token).json()
    assert sorted(i["productId"] for i in cart["items"]) == sorted(ids)


def db_ops(stack):
    c = stack.mongo.admin.command("serverStatus")["opcounters"]
    return {k: c[k] for k in ("insert", "query", "update", "delete",
                              "getmore")}


def test_a_write_from_a_fresh_hint_is_one_database_operation(fresh_stack):
    from stack import wait_until
    s = fresh_stack(workers=0, env={"API_WORKERS": "1"})
    user, token = new_user(s)
    a, b = product(s, 1), product(s, 2)
    cart = s.post("/api/cart/me", {"items": [
        {"productId": a, "quantity": 1}, {"productId": b, "quantity": 1}]},
        token=token).json()                     # a and b now cached
    key = f"cart:lines:{user['id']}"
    wait_until(lambda: s.redis.get(key) == f"1|{cart['id']}|{a}:1,{b}:1",
               5, "the hint")
    before = db_ops(s)
    r = s.post("/api/cart/me", {"productId": b, "quantity": 4}, token=token)
    after = db_ops(s)
    assert r.status_code == 200
    assert [(i["productId"], i["quantity"]) for i in r.json()["items"]] == \
        [(a, 1), (b, 4)]
    assert r.json()["id"] == cart["id"]
    spent = {k: after[k] - before[k] for k in after if after[k] > before[k]}
    assert spent == {"update": 1}, spent


def test_a_stale_hint_never_writes_a_wrong_cart(stack):
    from stack import wait_until
    user, token = new_user(stack)
    a, b = product(stack, 1), product(stack, 2)
    cart = stack.post("/api/cart/me", {"productId": a, "quantity": 1},
                      token=token).json()
    key = f"cart:lines:{user['id']}"
    wait_until(lambda: stack.redis.get(key) is not None, 5, "the hint")
    # Same revision, other lines: the conditional write must not match.
    stack.redis.set(key, f"1|{cart['id']}|{b}:5")
    r = stack.post("/api/cart/me", {"productId": a, "quantity": 3},
                   token=token)
    assert r.status_code == 200
    assert [(i["productId"], i["quantity"]) for i in r.json()["items"]] == \
        [(a, 3)]
    import bson
    doc = stack.db.carts.find_one({"userId": bson.ObjectId(user["id"])})
    assert [(str(i["productId"]), i["quantity"]) for i in doc["items"]] == \
        [(a, 3)] and doc["rev"] == 2
