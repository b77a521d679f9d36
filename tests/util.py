"""
util.py -- helpers for the black-box tests: users, tokens, JWT forgery.
"""
import base64
import hashlib
import hmac
import itertools
import json
import time

_seq = itertools.count()


def unique_email(prefix="user"):
    return f"{prefix}-{time.time_ns()}-{next(_seq)}@example.com"


def b64url(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(payload, secret, alg="HS256"):
    """A JWT signed by us, with any alg (for forgery tests); the API's
    issuer and audience unless payload names others."""
    payload = {"iss": "checkout", "aud": "checkout-api", **payload}
    head = b64url({"alg": alg, "typ": "JWT"})
    body = b64url(payload)
    signing = f"{head}.{body}".encode()
    if alg == "none":
        return f"{head}.{body}."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
              "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing, digest).digest()
    return f"{head}.{body}.{b64url(sig)}"


def register(stack, email=None, password="correct-horse-1"):
    email = email or unique_email()
    r = stack.post("/api/auth/register", {"email": email,
                                          "password": password})
    assert r.status_code == 201, r.text
    return r.json()


def login(stack, email, password="correct-horse-1"):
    r = stack.post("/api/auth/login", {"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def new_user(stack, prefix="user"):
    """Register and log in a customer: (user, token)."""
    email = unique_email(prefix)
    user = register(stack, email)
    return user, login(stack, email)


def admin_token(stack):
    return login(stack, stack.env["ADMIN_EMAIL"], stack.env["ADMIN_PASSWORD"])


def error(r):
    """The error object of a JSON error answer."""
    return r.json()["error"]


def product(stack, price=2.5, stock=10, title="test item"):
    """A new product, created by the admin: its id."""
    r = stack.post("/api/products", {"title": title, "price": price,
                                     "stock": stock},
                   token=admin_token(stack))
    assert r.status_code == 201, r.text
    return r.json()["id"]
