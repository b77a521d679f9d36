"""
test_accounts.py -- accounts and abuse (docs/ARCHITECTURE.md section 2; "Users and
revocation" and "Limits"): logins counted before they are checked,
tokens that can be revoked, user administration, the first admin, the
submit, registration and hashing limits, secrets that must not ship,
WebSocket and waiter bounds.
"""
import concurrent.futures
import re
import socket
import subprocess
import time

import bson
import requests

from stack import BUILD, ROOT, wait_until
from util import (admin_token, error, login, new_user, product, register,
                  unique_email)

TWO_SECONDS = 2.0


def refused_within(stack, path, token, seconds=TWO_SECONDS):
    """Every API process refuses token within seconds (401), and keeps
    refusing it: the time it took."""
    t0 = time.time()
    while True:
        r = stack.get(path, token=token)
        if r.status_code == 401:
            break
        assert time.time() - t0 < seconds, r.text
        time.sleep(0.05)
    took = time.time() - t0
    time.sleep(1.1)                     # past any process's cache
    for _ in range(10):
        r = stack.get(path, token=token)
        assert r.status_code == 401, r.text
        assert error(r)["code"] == "token_revoked"
    return took


# ----- logins -----

def test_concurrent_wrong_passwords_are_counted_before_checked(fresh_stack):
    s = fresh_stack(workers=0, env={"LOGIN_FAIL_EMAIL": "10",
                                    "HASH_THREADS": "2"})
    email = unique_email()
    register(s, email)

    def attempt(_):
        return s.post("/api/auth/login", {"email": email,
                                          "password": "wrong-password-9"
                                          }).status_code

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(attempt, range(40)))
    # At most the limit is ever checked; the rest are refused unchecked.
    assert codes.count(401) <= 10, codes
    assert codes.count(429) >= 30, codes
    assert set(codes) <= {401, 429}


def test_successful_logins_are_forgiven(fresh_stack):
    s = fresh_stack(workers=0, env={"LOGIN_FAIL_EMAIL": "3"})
    email = unique_email()
    register(s, email)
    for _ in range(8):
        login(s, email)
    wait_until(lambda: int(s.redis.get(f"rl:login:email:{email}") or 0)
               == 0, 5, "the last attempt forgiven")


def test_ipv6_clients_are_limited_by_their_64(fresh_stack):
    s = fresh_stack(workers=0, env={"TRUST_PROXY": "1",
                                    "LOGIN_FAIL_IP": "3",
                                    "LOGIN_FAIL_EMAIL": "100"})
    for i in range(3):
        r = s.post("/api/auth/login", {"email": unique_email(),
                                       "password": "wrong-password-9"},
                   headers={"X-Forwarded-For": f"2001:db8:1:2::{i + 1}"})
        assert r.status_code == 401
    r = s.post("/api/auth/login", {"email": unique_email(),
                                   "password": "wrong-password-9"},
               headers={"X-Forwarded-For": "2001:db8:1:2:ffff::9"})
    assert r.status_code == 429                     # the same /64
    r = s.post("/api/auth/login", {"email": unique_email(),
                                   "password": "wrong-password-9"},
               headers={"X-Forwarded-For": "2001:db8:1:3::1"})
    assert r.status_code == 401                     # another /64


# ----- revocation -----

def test_logout_revokes_the_presented_token(stack):
    user, token = new_user(stack)
    other = login(stack, user["email"])
    assert stack.get("/api/auth/me", token=token).status_code == 200
    r = stack.post("/api/auth/logout", token=token)
    assert r.status_code == 204
    refused_within(stack, "/api/auth/me", token)
    assert stack.get("/api/auth/me", token=other).status_code == 200
    assert stack.post("/api/checkout", {}, token=token).status_code == 401


def test_a_demoted_admins_old_token_is_refused(stack):
    email = unique_email("admin2")
    user = register(stack, email)
    boss = admin_token(stack)
    r = stack.request("PATCH", f"/api/users/{user['id']}",
                      {"role": "admin"}, token=boss)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    token = login(stack, email)
    assert stack.get("/api/users", token=token).status_code == 200
    r = stack.request("PATCH", f"/api/users/{user['id']}",
                      {"role": "customer"}, token=boss)
    assert r.status_code == 200
    refused_within(stack, "/api/users", token)
    fresh = login(stack, email)
    assert stack.get("/api/users", token=fresh).status_code == 403


def test_a_disabled_user_is_refused_but_their_checkout_finishes(
        fresh_stack):
    s = fresh_stack(workers=0)
    pid = product(s, 2, 5)
    user, token = new_user(s)
    assert s.post("/api/cart/me", {"productId": pid, "quantity": 1},
                  token=token).status_code == 200
    wait_until(lambda: s.redis.get(f"cart:lines:{user['id']}"), 5, "hint")
    cid = s.post("/api/checkout", {}, token=token).json()["checkoutId"]
    r = s.request("PATCH", f"/api/users/{user['id']}", {"disabled": True},
                  token=admin_token(s))
    assert r.status_code == 200 and r.json()["disabled"] is True
    refused_within(s, "/api/auth/me", token)
    r = s.post("/api/auth/login", {"email": user["email"],
                                   "password": "correct-horse-1"})
    assert r.status_code == 401
    assert error(r)["code"] == "invalid_credentials"    # as a wrong one
    s.start_worker()
    wait_until(lambda: s.redis.hget(f"checkout:{cid}", "status") ==
               "completed", 30, "the queued checkout")
    assert s.db.orders.count_documents({"checkoutId": cid}) == 1


def test_changing_the_password_revokes_the_other_tokens(stack):
    user, token = new_user(stack)
    other = login(stack, user["email"])
    r = stack.post("/api/auth/password", {"currentPassword": "nope-nope-1",
                                          "newPassword": "new-horse-22"},
                   token=token)
    assert r.status_code == 403 and error(r)["code"] == "wrong_password"
    r = stack.post("/api/auth/password",
                   {"currentPassword": "correct-horse-1",
                    "newPassword": "new-horse-22"}, token=token)
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    refused_within(stack, "/api/auth/me", other)
    refused_within(stack, "/api/auth/me", token)
    assert stack.get("/api/auth/me", token=new).status_code == 200
    assert login(stack, user["email"], "new-horse-22")
    r = stack.post("/api/auth/login", {"email": user["email"],
                                       "password": "correct-horse-1"})
    assert r.status_code == 401


# ----- user administration -----

def test_users_are_listed_and_read_by_admins_only(stack):
    user, token = new_user(stack, "listed")
    boss = admin_token(stack)
    r = stack.get(f"/api/users?q={user['email'][:20]}&limit=5", token=boss)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] >= 1 and body["limit"] == 5
    assert user["id"] in [u["id"] for u in body["items"]]
    assert "password" not in r.text and "$argon2" not in r.text
    assert stack.get("/api/users", token=token).status_code == 403
    assert error(stack.get("/api/users", token=token))["code"] == \
        "admin_only"
    r = stack.get(f"/api/users/{user['id']}", token=token)    # self
    assert r.status_code == 200 and r.json()["email"] == user["email"]
    other, _ = new_user(stack)
    assert stack.get(f"/api/users/{other['id']}",
                     token=token).status_code == 403
    assert stack.get(f"/api/users/{other['id']}",
                     token=boss).status_code == 200
    assert stack.get("/api/users/" + "0" * 24,
                     token=boss).status_code == 404
    r = stack.request("PATCH", f"/api/users/{other['id']}",
                      {"role": "admin"}, token=token)
    assert r.status_code == 403
    for body, field in (({"role": "root"}, "role"),
                        ({"disabled": "yes"}, "disabled"),
                        ({"email": "x@y.z"}, "email"), ({}, None)):
        r = stack.request("PATCH", f"/api/users/{other['id']}", body,
                          token=boss)
        assert r.status_code == 400, (body, r.text)
        assert error(r).get("field") == field


def test_the_last_admin_cannot_demote_or_disable_themself(fresh_stack):
    s = fresh_stack(workers=0)
    boss = admin_token(s)
    me = s.get("/api/auth/me", token=boss).json()
    for body in ({"role": "customer"}, {"disabled": True}):
        r = s.request("PATCH", f"/api/users/{me['id']}", body, token=boss)
        assert r.status_code == 409 and error(r)["code"] == "last_admin"
    second = register(s, unique_email("second"))
    r = s.request("PATCH", f"/api/users/{second['id']}", {"role": "admin"},
                  token=boss)
    assert r.status_code == 200
    r = s.request("PATCH", f"/api/users/{me['id']}", {"role": "customer"},
                  token=boss)
    assert r.status_code == 200                 # another admin remains
    doc = s.db.users.find_one({"_id": bson.ObjectId(second["id"])})
    assert doc["role"] == "admin"


# ----- the first admin -----

def test_a_preregistered_admin_email_is_not_taken_over(fresh_stack):
    s = fresh_stack(workers=0)
    email = unique_email("takeover")
    register(s, email, "attacker-pass-1")
    r = s.shopctl("migrate", env={"ADMIN_EMAIL": "  " + email.upper(),
                                  "ADMIN_PASSWORD": "operator-pass-1"})
    assert r.returncode != 0
    assert "already registered" in r.stderr and "PATCH" in r.stderr
    assert s.db.users.find_one({"email": email})["role"] == "customer"
    r = s.shopctl("admin", email, env={"ADMIN_PASSWORD": "operator-pass-1"})
    assert r.returncode != 0
    assert s.db.users.find_one({"email": email})["role"] == "customer"
    # The account's own password proves it.
    r = s.shopctl("migrate", env={"ADMIN_EMAIL": email.upper(),
                                  "ADMIN_PASSWORD": "attacker-pass-1"})
    assert r.returncode == 0, r.stderr
    assert s.db.users.find_one({"email": email})["role"] == "admin"


# ----- floods -----

def test_checkout_submits_are_limited_per_user(fresh_stack):
    s = fresh_stack(workers=0, env={"SUBMIT_LIMIT": "3",
                                    "SUBMIT_WINDOW": "10"})
    pid = product(s, 1, 100)
    user, token = new_user(s)
    s.post("/api/cart/me", {"productId": pid, "quantity": 1}, token=token)
    wait_until(lambda: s.redis.get(f"cart:lines:{user['id']}"), 5, "hint")
    codes = [s.post("/api/checkout", {}, token=token,
                    headers={"Idempotency-Key": f"k{i}"}).status_code
             for i in range(3)]
    assert codes == [202, 202, 202]
    r = s.post("/api/checkout", {}, token=token)
    assert r.status_code == 429 and error(r)["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 4
    # A replay of a known key is answered, and not counted.
    for _ in range(5):
        r = s.post("/api/checkout", {}, token=token,
                   headers={"Idempotency-Key": "k0"})
        assert r.status_code == 200
    # Another user is not held up.
    user2, token2 = new_user(s)
    s.post("/api/cart/me", {"productId": pid, "quantity": 1}, token=token2)
    wait_until(lambda: s.redis.exists(f"cart:lines:{user2['id']}"), 5,
               "the cart hint")
    assert s.post("/api/checkout", {}, token=token2).status_code == 202


def test_registrations_are_limited_per_client_address(fresh_stack):
    s = fresh_stack(workers=0, env={"REGISTER_LIMIT_IP": "3"})
    for _ in range(3):
        register(s)
    r = s.post("/api/auth/register", {"email": unique_email(),
                                      "password": "correct-horse-1"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_a_full_hash_queue_answers_503(fresh_stack):
    s = fresh_stack(workers=0, env={"HASH_QUEUE_MAX": "2",
                                    "HASH_THREADS": "1",
                                    "API_WORKERS": "1",
                                    "LOGIN_FAIL_IP": "1000",
                                    "LOGIN_FAIL_EMAIL": "1000"})

    def attempt(i):
        return s.post("/api/auth/login", {"email": f"nobody{i}@x.io",
                                          "password": "wrong-password-9"})

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        rs = list(pool.map(attempt, range(24)))
    busy = [r for r in rs if r.status_code == 503]
    assert busy and all(r.headers.get("Retry-After") for r in busy)
    assert all(error(r)["code"] == "overloaded" for r in busy)
    assert {r.status_code for r in rs} <= {401, 503}


# ----- secrets -----

def shopctl_check(env):
    e = {"ENV_FILE": "/dev/null", "PATH": "/usr/bin:/bin"}
    e.update(env)
    return subprocess.run([str(BUILD / "shopctl"), "check"], env=e,
                          capture_output=True, text=True)


def test_production_refuses_the_example_placeholders():
    good = {"APP_ENV": "production", "JWT_SECRET": "s" * 40,
            "METRICS_TOKEN": "m" * 16}
    assert shopctl_check(good).returncode == 0
    for name, value in (("JWT_SECRET", "change-me-" + "x" * 40),
                        ("JWT_SECRET", "CHANGE_ME_" + "x" * 40),
                        ("JWT_SECRET",
                         "development-only-secret-do-not-deploy-xx"),
                        ("METRICS_TOKEN", "change-me-too-0123456"),
                        ("REDIS_URL", "redis://:change-me@10.0.0.1:6379/0"),
                        ("MONGO_URI", "mongodb://u:change-me@db1/shop")):
        r = shopctl_check(dict(good, **{name: value}))
        assert r.returncode != 0 and name in r.stderr, (name, r.stderr)
    example = (ROOT / "ops/checkout.env.example").read_text()
    assert "change-me" not in example
    for conf in (ROOT / "ops/redis").glob("*.conf"):
        text = conf.read_text().lower()
        assert not re.search(r"change.?me|requirepass|auth-pass", "\n".join(
            line for line in text.splitlines()
            if not line.startswith("#"))), conf


def test_every_environment_but_development_refuses_weak_secrets():
    """test as production: a short key, the public development key, an
    empty webhook key (whsec_ alone), a short metrics token or Sentinel
    password; production also wants the metrics token."""
    base = {"APP_ENV": "test", "JWT_SECRET": "t" * 40}
    assert shopctl_check(base).returncode == 0
    for name, value in (("JWT_SECRET", "t" * 31),
                        ("JWT_SECRET",
                         "development-only-secret-do-not-deploy"),
                        ("WEBHOOK_SECRET", "whsec_"),
                        ("WEBHOOK_SECRET", "whsec_" + "QUJD" * 5),
                        ("METRICS_TOKEN", "short"),
                        ("REDIS_SENTINEL_PASSWORD", "short")):
        r = shopctl_check(dict(base, **{name: value}))
        assert r.returncode != 0 and name in r.stderr, (name, r.stderr)
    assert shopctl_check(dict(base, WEBHOOK_SECRET="whsec_" + "QUJD" * 8)
                         ).returncode == 0
    r = shopctl_check(dict(base, APP_ENV="production"))
    assert r.returncode != 0 and "METRICS_TOKEN" in r.stderr


def test_a_bad_redis_url_is_named_without_its_password():
    r = shopctl_check({"REDIS_URL": "redis://:hunter2-secret@db:99999/0"})
    assert r.returncode != 0 and "REDIS_URL" in r.stderr
    assert "hunter2" not in r.stderr and "***" in r.stderr


def test_development_listens_on_loopback_only():
    r = shopctl_check({"APP_ENV": "development", "BIND_ADDRESS": "0.0.0.0"})
    assert r.returncode != 0 and "BIND_ADDRESS" in r.stderr
    assert shopctl_check({"APP_ENV": "development",
                          "BIND_ADDRESS": "127.0.0.1"}).returncode == 0


def test_order_totals_that_could_overflow_are_refused():
    r = shopctl_check({"PRICE_MAX": "90000000000", "CART_MAX_QTY": "1000000",
                       "CART_MAX_LINES": "10000"})
    assert r.returncode != 0 and "PRICE_MAX" in r.stderr


def test_shopctl_env_hides_passwords_in_urls():
    e = {"ENV_FILE": "/dev/null",
         "REDIS_URL": "redis://:s3cret-redis@127.0.0.1:6379/0",
         "MONGO_URI": "mongodb://app:s3cret-mongo@127.0.0.1:27017/shop"}
    out = subprocess.run([str(BUILD / "shopctl"), "env"], env=e,
                         capture_output=True, text=True).stdout
    assert "s3cret" not in out
    assert "redis://:***@127.0.0.1:6379/0" in out
    assert "mongodb://app:***@127.0.0.1:27017/shop" in out


# ----- WebSockets and waiters -----

def test_events_without_a_handshake_is_a_json_400_and_leaks_nothing(stack):
    user, token = new_user(stack)
    cid = "0" * 24
    with socket.create_connection(("127.0.0.1", stack.port)) as sock:
        f = sock.makefile("rb")
        for _ in range(20):             # one keep-alive connection
            sock.sendall((f"GET /api/checkout/{cid}/events HTTP/1.1\r\n"
                          f"Host: x\r\nAuthorization: Bearer {token}\r\n"
                          "\r\n").encode())
            status = f.readline()
            length = 0
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = f.read(length)
            assert b" 400 " in status and b"websocket_required" in body


def test_waiters_per_user_are_bounded(fresh_stack):
    s = fresh_stack(workers=0, env={"WAITERS_PER_USER": "2",
                                    "API_WORKERS": "1"})
    pid = product(s, 1, 10)
    user, token = new_user(s)
    s.post("/api/cart/me", {"productId": pid, "quantity": 1}, token=token)
    wait_until(lambda: s.redis.get(f"cart:lines:{user['id']}"), 5, "hint")
    cid = s.post("/api/checkout", {}, token=token).json()["checkoutId"]

    def poll(_):
        return s.get(f"/api/checkout/{cid}?wait=3", token=token).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(poll, range(4)))
    assert sorted(codes) == [200, 200, 429, 429]
    assert s.get(f"/api/checkout/{cid}?wait=1",
                 token=token).status_code == 200      # places come back


# ----- smaller -----

def test_deep_offsets_are_refused(stack):
    r = stack.get("/api/products?offset=20000")
    assert r.status_code == 400 and error(r)["field"] == "offset"
    assert stack.get("/api/products?offset=10000").status_code == 200


def test_a_failed_catalogue_bump_answers_503(fresh_stack):
    s = fresh_stack(workers=0)
    pid = product(s, 1, 10)
    boss = admin_token(s)
    s.redis.config_set("min-replicas-to-write", 1)   # writes now refused
    try:
        # Every answer is a 503 to come back to; the API also looks for
        # the primary again after -NOREPLICAS, so one may come before the
        # product is saved (Redis unavailable); then one saved and not
        # bumped says to repeat it.
        # (wait_until retries on exceptions: the answers are checked
        # after it, every one of them.)
        answers = []

        def bump_refused():
            r = s.request("PATCH", f"/api/products/{pid}", {"stock": 50},
                          token=boss)
            answers.append(r)
            return r.status_code == 503 and "repeat" in error(r)["message"]
        wait_until(bump_refused, 10, "the saved-but-not-bumped answer")
        for r in answers:
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"]
    finally:
        s.redis.config_set("min-replicas-to-write", 0)
    # -NOREPLICAS also sent the API to look for the primary again: once
    # reconnected, the repeat goes through.
    wait_until(lambda: s.request("PATCH", f"/api/products/{pid}",
                                 {"stock": 50}, token=boss).status_code ==
               200, 10, "the repeated change")


def test_a_wrong_redis_password_is_a_503_and_a_log_line(fresh_stack):
    s = fresh_stack(workers=0)
    s.stop_api()
    s.env["REDIS_URL"] = f"redis://:wrong-pass@127.0.0.1:{s.redis_port}/0"
    s.redis.config_set("requirepass", "right-pass")
    try:
        s.start_api()
        r = requests.get(s.url("/ready"), timeout=10)
        assert r.status_code == 503
        assert r.json()["checks"]["redis"] == "down"
        wait_until(lambda: "connection setup failed" in s.log("api"), 10,
                   "the log line")
        assert "AUTH" in s.log("api")
    finally:
        s.redis.config_set("requirepass", "")
