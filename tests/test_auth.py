"""
test_auth.py -- register, login, JWT rules, roles and the login rate
limit (docs/ARCHITECTURE.md sections 1 and 2).
"""
import time

import requests

from util import (admin_token, b64url, error, login, make_jwt, new_user,
                  register, unique_email)


# ----- register -----

def test_register_returns_the_user_without_password(stack):
    email = unique_email()
    r = stack.post("/api/auth/register", {"email": email,
                                          "password": "correct-horse-1"})
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == email and body["role"] == "customer"
    assert len(body["id"]) == 24 and body["_id"] == body["id"]
    assert "password" not in body and "correct-horse-1" not in r.text
    stored = stack.db.users.find_one({"email": email})
    assert stored["password"].startswith("$argon2id$")


def test_register_normalises_email_and_refuses_duplicates(stack):
    local = unique_email().split("@")[0]
    r = stack.post("/api/auth/register", {
        "email": f"  {local.upper()}@Example.COM ",
        "password": "correct-horse-1"})
    assert r.status_code == 201
    assert r.json()["email"] == f"{local}@example.com"
    r = stack.post("/api/auth/register", {"email": f"{local}@example.com",
                                          "password": "another-pass-2"})
    assert r.status_code == 409
    assert error(r)["code"] == "email_taken"


def test_register_validates_every_field(stack):
    cases = [
        ({"email": "not-an-email", "password": "correct-horse-1"},
         "invalid_email", "email"),
        ({"email": unique_email(), "password": "short"},
         "invalid_password", "password"),
        ({"email": unique_email(), "password": "x" * 129},
         "invalid_password", "password"),
        ({"password": "correct-horse-1"}, "missing_field", "email"),
        ({"email": unique_email()}, "missing_field", "password"),
        ({"email": {"$gt": ""}, "password": "correct-horse-1"},
         "invalid_type", "email"),
        ({"email": unique_email(), "password": 12345678},
         "invalid_type", "password"),
        ({"email": unique_email(), "password": "correct-horse-1",
          "role": "admin"}, "unknown_field", "role"),
        ({"email": "a" * 250 + "@example.com", "password": "correct-horse-1"},
         "invalid_email", "email"),
    ]
    for body, code, field in cases:
        r = stack.post("/api/auth/register", body)
        assert r.status_code == 400, (body, r.text)
        assert error(r)["code"] == code, (body, r.text)
        assert error(r)["field"] == field, (body, r.text)


def test_register_refuses_bad_bodies(stack):
    url = stack.url("/api/auth/register")
    r = requests.post(url, data="{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "invalid_json"
    r = requests.post(url, data="[1,2]",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "invalid_body"
    r = requests.post(url, data="email=a&password=b",
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert error(r)["code"] == "unsupported_media_type"


# ----- login -----

def test_login_returns_a_working_token(stack):
    email = unique_email()
    user = register(stack, email)
    r = stack.post("/api/auth/login", {"email": email.upper(),
                                       "password": "correct-horse-1"})
    assert r.status_code == 200
    body = r.json()
    assert body["expiresIn"] == 3600
    assert body["user"]["id"] == user["id"]
    me = stack.get("/api/auth/me", token=body["token"])
    assert me.status_code == 200
    assert me.json()["email"] == email and me.json()["role"] == "customer"


def test_login_does_not_tell_unknown_email_from_wrong_password(stack):
    email = unique_email()
    register(stack, email)
    wrong = stack.post("/api/auth/login", {"email": email,
                                           "password": "wrong-password-9"})
    unknown = stack.post("/api/auth/login", {"email": unique_email(),
                                             "password": "wrong-password-9"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert error(wrong)["code"] == "invalid_credentials"


def test_login_refuses_operator_injection(stack):
    r = stack.post("/api/auth/login", {"email": {"$ne": None},
                                       "password": {"$ne": None}})
    assert r.status_code == 400
    assert error(r)["code"] == "invalid_type"


# ----- tokens -----

def claims(stack, sub, role="customer", exp_in=3600):
    now = int(time.time())
    return {"sub": sub, "role": role, "iat": now, "exp": now + exp_in}


def test_bad_tokens_are_refused(stack):
    user, token = new_user(stack)
    secret = stack.env["JWT_SECRET"]
    forged = {
        "none": make_jwt(claims(stack, user["id"], "admin"), secret, "none"),
        "other secret": make_jwt(claims(stack, user["id"]),
                                 "another-secret-" + "y" * 40),
        "HS512": make_jwt(claims(stack, user["id"]), secret, "HS512"),
        "expired": make_jwt(claims(stack, user["id"], exp_in=-10), secret),
        "garbage": "not.a.token",
        "truncated": token[:-5],
    }
    for what, t in forged.items():
        r = stack.get("/api/auth/me", token=t)
        assert r.status_code == 401, what
        want = "token_expired" if what == "expired" else "invalid_token"
        assert error(r)["code"] == want, what
    # The same claims, properly signed, are accepted.
    good = make_jwt(claims(stack, user["id"]), secret)
    assert stack.get("/api/auth/me", token=good).status_code == 200


def test_a_remembered_token_matches_only_itself_and_still_expires(stack):
    """Each API process keeps the tokens it verified, with their claims,
    so that a client's next requests skip the signature check: nothing
    but the very token may match one, and its expiry still counts."""
    user, _ = new_user(stack)
    secret = stack.env["JWT_SECRET"]
    mine = claims(stack, user["id"], exp_in=4)
    good = make_jwt(mine, secret)
    for _ in range(6):      # in every API process, whichever answers
        assert stack.get("/api/auth/me", token=good).status_code == 200
    head, body, sig = good.split(".")
    alphabet = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789-_")
    respelt = alphabet[alphabet.index(sig[-1]) ^ 1]
    forged = {
        # Its signature under other claims: an admin's.
        "other claims": ".".join([head, b64url(claims(
            stack, user["id"], "admin")), sig]),
        # The same signature spelt another way (the unused low bits of
        # its last character): one signature, one spelling.
        "respelt": f"{head}.{body}.{sig[:-1]}{respelt}",
        "longer": good + "A",
    }
    for what, t in forged.items():
        r = stack.get("/api/auth/me", token=t)
        assert r.status_code == 401, what
        assert error(r)["code"] == "invalid_token", what
    time.sleep(max(0.0, mine["exp"] + 1 - time.time()))
    r = stack.get("/api/auth/me", token=good)
    assert r.status_code == 401 and error(r)["code"] == "token_expired"


def test_missing_or_non_bearer_authorization_is_401(stack):
    r = stack.get("/api/auth/me")
    assert r.status_code == 401 and error(r)["code"] == "unauthenticated"
    r = stack.get("/api/auth/me", headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401


def test_token_of_deleted_user_is_401(stack):
    user, token = new_user(stack)
    stack.db.users.delete_one({"email": user["email"]})
    r = stack.get("/api/auth/me", token=token)
    assert r.status_code == 401


# ----- roles -----

def test_first_admin_comes_from_the_migration(stack):
    r = stack.post("/api/auth/login", {
        "email": stack.env["ADMIN_EMAIL"],
        "password": stack.env["ADMIN_PASSWORD"]})
    assert r.status_code == 200
    assert r.json()["user"]["role"] == "admin"


def test_shopctl_admin_promotes_and_creates(stack):
    email = unique_email("promote")
    register(stack, email)
    r = stack.shopctl("admin", email)          # another password: refused
    assert r.returncode != 0 and "already registered" in r.stderr
    r = stack.shopctl("admin", email, env={"ADMIN_PASSWORD":
                                           "correct-horse-1"})
    assert r.returncode == 0, r.stderr
    me = stack.get("/api/auth/me", token=login(stack, email)).json()
    assert me["role"] == "admin"
    email2 = unique_email("created")
    r = stack.shopctl("admin", email2, env={"ADMIN_EMAIL": "",
                                            "ADMIN_PASSWORD": ""},
                      input="brand-new-pass-3\n")
    assert r.returncode == 0, r.stderr
    assert stack.get("/api/auth/me", token=login(
        stack, email2, "brand-new-pass-3")).json()["role"] == "admin"
    assert admin_token(stack)


# ----- rate limit -----

def test_failed_logins_are_rate_limited_per_email(fresh_stack):
    s = fresh_stack(workers=0, env={"LOGIN_FAIL_EMAIL": "3",
                                    "LOGIN_FAIL_IP": "6"})
    email = unique_email()
    register(s, email)
    for _ in range(3):
        r = s.post("/api/auth/login", {"email": email,
                                       "password": "wrong-password-9"})
        assert r.status_code == 401
    r = s.post("/api/auth/login", {"email": email,
                                   "password": "correct-horse-1"})
    assert r.status_code == 429
    assert error(r)["code"] == "rate_limited"
    assert 800 < int(r.headers["Retry-After"]) <= 900
    # Another account from the same IP still logs in ...
    other = unique_email()
    register(s, other)
    for _ in range(5):
        login(s, other)          # successes are not counted
    # ... until the IP itself has failed LOGIN_FAIL_IP times.
    for _ in range(3):
        r = s.post("/api/auth/login", {"email": other,
                                       "password": "wrong-password-9"})
        assert r.status_code == 401
    r = s.post("/api/auth/login", {"email": unique_email(),
                                   "password": "whatever-pass-1"})
    assert r.status_code == 429
    keys = s.redis.keys("rl:login:*")
    assert keys and all(s.redis.ttl(k) > 0 for k in keys)


def test_login_answers_503_when_redis_is_down(fresh_stack):
    s = fresh_stack(workers=0)
    email = unique_email()
    register(s, email)
    s.stop_redis()
    r = s.post("/api/auth/login", {"email": email,
                                   "password": "correct-horse-1"})
    assert r.status_code == 503
    assert error(r)["code"] == "redis_unavailable"
    assert r.headers["Retry-After"]
