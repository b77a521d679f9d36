"""
test_first_minutes.py -- what a newcomer meets first: the server's root
points somewhere, errors say what is wrong and what to do, and shopctl
says where it looked and what it wants.
"""
import requests

from util import error, new_user, product


def test_the_root_points_to_the_docs(stack):
    r = stack.get("/")
    assert r.status_code == 200
    assert r.json()["docs"] == "/docs"
    assert stack.get(r.json()["openapi"]).status_code == 200


def test_json_errors_say_where(stack):
    _, token = new_user(stack)
    r = requests.post(stack.url("/api/cart/me"), data='{"productId": 1,',
                      timeout=10, headers={
                          "Authorization": f"Bearer {token}",
                          "Content-Type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "invalid_json"
    assert "line 1, column" in error(r)["message"]
    r = requests.post(stack.url("/api/cart/me"), timeout=10,
                      data='{"productId": "x", "quantity": '
                      '99999999999999999999999}',
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "out_of_range"


def test_messages_name_the_rule(stack):
    _, token = new_user(stack)
    r = stack.post("/api/cart/me", {"productId": 7, "quantity": 1},
                   token=token)
    assert "24 hexadecimal" in error(r)["message"]
    r = stack.post("/api/auth/register", {"email": "short@example.com",
                                          "password": "short"})
    assert error(r)["code"] == "invalid_password"
    assert "8 to 128 characters" in error(r)["message"]
    r = stack.post("/api/products", {"title": "t", "price": 1, "stock": 1},
                   token=token)
    assert r.status_code == 403 and "shopctl admin" in error(r)["message"]


def test_a_401_names_the_scheme(stack):
    r = stack.get("/api/orders")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="checkout"'
    r = stack.get("/api/orders", token="not.a.token")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_shopctl_says_what_it_wants_and_where_it_looked(stack):
    env = {"ADMIN_PASSWORD": "", "ADMIN_EMAIL": ""}
    r = stack.shopctl("admin", "new-admin@example.com", env=env, input="")
    assert r.returncode == 1 and "no password was given" in r.stderr
    r = stack.shopctl("dlq", "replay", "nosuch")
    assert r.returncode == 1 and "not a dead letter's id" in r.stderr
    r = stack.shopctl("dlq", "list")
    assert f"Redis 127.0.0.1:{stack.redis_port}" in r.stdout
    product(stack)                      # (the stack has its admin)
    r = stack.shopctl("migrate", env=env)
    assert r.returncode == 0 and "no admin yet" not in r.stderr
    stack.db.users.update_many({"role": "admin"},
                               {"$set": {"role": "was-admin"}})
    try:
        r = stack.shopctl("migrate", env=env)
        assert "there is no admin yet" in r.stderr
    finally:
        stack.db.users.update_many({"role": "was-admin"},
                                   {"$set": {"role": "admin"}})
