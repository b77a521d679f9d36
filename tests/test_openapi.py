"""
test_openapi.py -- docs/openapi.yaml is the API's contract, checked
against the real thing:

- the router's table (api/main.c) and the spec name the same operations;
- the API serves the spec and its documentation page, offline;
- schemathesis runs every operation against a live stack, as a customer
  and as an admin, with valid and invalid inputs: no 5xx, every status,
  header, content type and body as documented (tests/schemathesis/);
- kore's own refusals (before the API's code) are pinned here, since the
  fuzzer is told not to count them (tests/schemathesis/hooks.py);
- sweeps send every operation what makes it answer 401, 411, 413, 414,
  415 and 503, so that test_openapi_coverage.py can check that every
  status the spec documents is reached by some test.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import websocket
import yaml

from stack import ROOT, Stack, record, wait_until
from util import admin_token, new_user, product

SPEC = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
METHODS = ("get", "post", "put", "patch", "delete")
ST_DIR = ROOT / "tests/schemathesis"
# Examples per operation and phase; more find more (ST_MAX_EXAMPLES=500
# takes about ten minutes), this keeps `make test` near a minute.
MAX_EXAMPLES = os.environ.get("ST_MAX_EXAMPLES", "25")


def operations():
    """operationId -> (METHOD, path, operation) from the spec."""
    ops = {}
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                ops[op["operationId"]] = (method.upper(), path, op)
    return ops


def concrete(path, ids):
    """The spec's path with its {params} filled from ids (or a fake id)."""
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1),
                                                  "5f8d0d55b54764421b7156c9"),
                  path)


def route_table():
    """(METHOD, path template, name) for every route in api/main.c."""
    text = (ROOT / "api/main.c").read_text()
    table = text[text.index("routes[] = {"):text.index("#define NROUTES")]
    out = []
    for m in re.finditer(r'\{\s*([A-Z| ]+),\s*"([^"]+)",\s*"(\w+)"', table):
        for method in m.group(1).split("|"):
            path = re.sub(r":\w+", "{}", m.group(2))
            out.append((method.strip(), path, m.group(3)))
    return out


def test_every_route_is_documented_and_nothing_else():
    routes = {(m, p): name for m, p, name in route_table()}
    spec = {(m, re.sub(r"\{\w+\}", "{}", p)): op_id
            for op_id, (m, p, _) in operations().items()}
    assert len(routes) >= 25
    assert set(routes) - set(spec) == set(), "routes the spec omits"
    assert set(spec) - set(routes) == set(), "spec operations with no route"
    # The route's name is the operationId (and the metrics' route label).
    assert {k: routes[k] for k in routes} == spec


@pytest.fixture(scope="module")
def api():
    """A stack whose limits do not get in the fuzzer's way."""
    s = Stack(workers=1, name="openapi", env={
        "LOGIN_FAIL_IP": "100000",
        "REGISTER_LIMIT_IP": "0", "SUBMIT_LIMIT": "100000"}).start()
    yield s
    s.cleanup()


def test_the_spec_and_its_page_are_served(api):
    r = api.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == json.loads(json.dumps(SPEC))
    page = api.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers[
        "content-type"]
    assert 'spec-url="/openapi.json"' in page.text
    script = re.search(r'<script src="([^"]+)"', page.text).group(1)
    js = api.get(script)
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert len(js.content) > 500_000 and b"redoc" in js.content.lower()
    # Nothing on the page comes from elsewhere.
    assert "http://" not in page.text and "https://" not in page.text


def raw(stack, data, timeout=3):
    """Send bytes on a new connection: (answer bytes, closed by server)."""
    with socket.create_connection(("127.0.0.1", stack.port)) as s:
        s.settimeout(timeout)
        s.sendall(data)
        out, closed = b"", False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                out += chunk
        except socket.timeout:
            pass
        return out, closed


def test_kore_refusals(api):
    """What kore answers before the API runs: bare, no JSON, documented
    in the spec (411, 414) or dropped from the fuzzer's findings by
    hooks.py (unknown methods and header values kore refuses)."""
    for request in (b"TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: x\r\nPrefer:\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: \xc3\xa9\r\n\r\n"):
        out, closed = raw(api, request)
        assert out.startswith(b"HTTP/1.1 400 "), out
        assert closed and b"content-type" not in out.lower()
    r = api.get("/health?q=" + "a" * 3000)
    assert r.status_code == 414 and r.content == b""
    record("health", 414)
    out, _ = raw(api, b"POST /api/auth/logout HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411 "), out
    record("auth_logout", 411)


def test_a_body_where_kore_reads_none_is_refused_not_smuggled(api):
    """kore reads no body for GET, HEAD, DELETE or OPTIONS: it would parse
    it as the next request on the connection (request smuggling behind a
    keep-alive proxy).  The API refuses it and closes the connection."""
    inner = b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"
    for method in (b"GET", b"DELETE", b"HEAD"):
        path = b"/api/products/5f8d0d55b54764421b7156c9" \
            if method == b"DELETE" else b"/health"
        out, closed = raw(api, b"%s %s HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: %d\r\n\r\n%s"
                          % (method, path, len(inner), inner))
        assert out.count(b"HTTP/1.1 ") == 1, out
        assert out.startswith(b"HTTP/1.1 400 ") and closed, out
        assert b'"ready"' not in out
        if method != b"HEAD":
            assert b"body_not_allowed" in out


def test_nul_in_a_json_string_is_named(api):
    r = requests.post(api.url("/api/auth/login"), timeout=10,
                      headers={"Content-Type": "application/json"},
                      data='{"email":"a\\u0000@x.io","password":"12345678"}')
    assert r.status_code == 400
    assert "\\u0000" in r.json()["error"]["message"]


def schemathesis(api, token, user_id, name, *args):
    """Run schemathesis on api's spec; its exit code and its report."""
    report = api.dir / f"st-{name}"
    env = dict(os.environ, ST_BASE_URL=api.url(""), ST_TOKEN=token,
               ST_USER_ID=user_id, PYTHONPATH=str(ST_DIR))
    r = subprocess.run([
        str(ROOT / ".venv/bin/schemathesis"), "--config-file",
        str(ST_DIR / "schemathesis.toml"), "run", api.url("/openapi.json"),
        # --checks all holds every answer to 10 s unless told otherwise;
        # a login and a register under ASan took 14 s in one CI run.  The
        # limit is the request timeout (15 s, schemathesis.toml): a hang
        # still fails, and speed is the benchmarks' business.
        "--checks", "all", "--max-response-time", "15",
        "--max-examples", MAX_EXAMPLES,
        "--report", "ndjson", "--report-dir", str(report),
        "--no-color", *args], env=env, capture_output=True, text=True,
        timeout=900, cwd=api.dir)
    (api.dir / f"st-{name}.log").write_text(r.stdout + r.stderr)
    return r, answered(report)


def answered(report_dir):
    """(operationId, status) of every answer in schemathesis' reports."""
    by_label = {f"{m} {p}": op_id for op_id, (m, p, _) in operations().items()}
    seen = []
    for f in Path(report_dir).glob("*.ndjson"):
        for line in f.read_text().splitlines():
            event = json.loads(line).get("ScenarioFinished")
            if not event:
                continue
            rec = event["recorder"]
            for cid, it in rec.get("interactions", {}).items():
                resp, case = it.get("response"), rec["cases"].get(cid)
                if not resp or not case:
                    continue
                c = case["value"]
                label = f"{c['method']} {c['path']}"
                if label in by_label:
                    seen.append((by_label[label], resp["status_code"]))
    return seen


# logout and password change end the token they are sent with: they get
# a run of their own.  The WebSocket is not HTTP request/response: its
# statuses are reached by test_checkout's WebSocket tests and the sweeps.
SHARED_TOKEN = ["--exclude-operation-id", "auth_logout",
                "--exclude-operation-id", "auth_password",
                "--exclude-operation-id", "checkout_events"]


def check_run(r, seen, minimum):
    assert r.returncode == 0, r.stdout[-6000:]
    assert "Server error" not in r.stdout
    assert not [s for _, s in seen if s >= 500]
    assert len(seen) >= minimum, f"only {len(seen)} requests"
    for op, status in seen:
        record(op, status)


def test_schemathesis_as_a_customer(api):
    product(api)
    user, token = new_user(api, "fuzz")
    r, seen = schemathesis(api, token, user["id"], "customer", *SHARED_TOKEN)
    check_run(r, seen, 500)


def test_schemathesis_as_an_admin(api):
    me = api.get("/api/auth/me", token=admin_token(api)).json()
    r, seen = schemathesis(api, admin_token(api), me["id"], "admin",
                           *SHARED_TOKEN)
    check_run(r, seen, 500)
    # The fuzzer may promote others and disable this admin, never the last.
    users = api.db.users
    assert users.count_documents({"role": "admin",
                                  "disabled": {"$ne": True}}) >= 1
    users.update_one({"email": api.env["ADMIN_EMAIL"]},
                     {"$set": {"role": "admin", "disabled": False}})


def test_schemathesis_on_the_token_ending_operations(api):
    user, token = new_user(api, "fuzz")
    r, seen = schemathesis(api, token, user["id"], "token",
                           "--include-operation-id", "auth_logout",
                           "--include-operation-id", "auth_password")
    check_run(r, seen, 20)


def secured(op):
    return op.get("security", SPEC.get("security")) not in ([], None)


# Bodies the operations accept, so that they get as far as their stores.
VALID = {
    "auth_register": {"email": "down@example.com",
                      "password": "correct-horse-1"},
    "auth_password": {"currentPassword": "correct-horse-1",
                      "newPassword": "correct-horse-2"},
    "users_update": {"disabled": False},
    "products_create": {"title": "t", "price": 1, "stock": 1},
    "products_replace": {"title": "t", "price": 1, "stock": 1},
    "products_patch": {"stock": 2},
    "orders_pay": {"reference": "pay-1", "amount": 1},
    "orders_refund": {"reference": "refund-1"},
}
HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def caller(op_id, token, admin):
    """The token an operation accepts: the admin's for admin work."""
    return admin if op_id.startswith(("users_", "products_", "admin_")) or \
        op_id in (
        "orders_pay", "orders_fulfil", "orders_refund") else token


def test_sweep_401_411_413_414_415(api):
    """Each operation, sent what it must refuse, refuses it as documented."""
    user, token = new_user(api, "sweep")
    ids = {"userId": user["id"], "id": product(api), "entryId": "1-0"}
    admin = admin_token(api)
    big = json.dumps({"title": "x" * (1 << 20)})
    for op_id, (method, path, op) in operations().items():
        url = api.url(concrete(path, ids))
        codes = op["responses"]
        if "401" in codes and secured(op):
            r = requests.request(method, url, timeout=10, headers=HANDSHAKE)
            assert r.status_code == 401, (op_id, r.text)
            assert r.json()["error"]["code"] == "unauthenticated"
        if "414" in codes:
            r = requests.request(method, url + "?q=" + "a" * 3000,
                                 timeout=10)
            assert r.status_code == 414, op_id
            record(op_id, 414)
        if method not in ("POST", "PUT", "PATCH"):
            continue
        head = {"Authorization": f"Bearer {caller(op_id, token, admin)}"}
        if "413" in codes:
            r = requests.request(method, url, data=big, timeout=10, headers={
                **head, "Content-Type": "application/json"})
            assert r.status_code == 413, (op_id, r.status_code)
            assert r.json()["error"]["code"] == "body_too_large"
        if "415" in codes:
            r = requests.request(method, url, data="{}", timeout=10, headers={
                **head, "Content-Type": "text/plain"})
            assert r.status_code == 415, (op_id, r.status_code, r.text)
        host, port = "127.0.0.1", api.port
        out, _ = raw(api, b"%s %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (
            method.encode(), concrete(path, ids).encode(), host.encode(),
            port))
        assert out.startswith(b"HTTP/1.1 411 "), (op_id, out[:60])
        record(op_id, 411)


def documented(status):
    return [op_id for op_id, (_, _, op) in operations().items()
            if str(status) in op["responses"]]


def ws_status(stack, path, token):
    """The status of a WebSocket handshake (101 when it opens)."""
    try:
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{stack.port}{path}",
            header=[f"Authorization: Bearer {token}"], timeout=10)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code, None
    return 101, ws


def test_websocket_handshakes_answer_as_documented(api):
    """checkout_events is a WebSocket, which the fuzzer leaves out: its
    statuses are reached here (503 in the sweep below)."""
    a = product(api, 1, 5)
    _, token = new_user(api, "ws")
    assert api.post("/api/cart/me", {"productId": a, "quantity": 1},
                    token=token).status_code == 200
    for w in list(api.workers):             # the checkout stays queued
        api.stop_worker(w)
    cid = api.post("/api/checkout", {}, token=token).json()["checkoutId"]
    status, ws = ws_status(api, f"/api/checkout/{cid}/events", token)
    assert status == 101
    assert json.loads(ws.recv())["checkoutId"] == cid
    record("checkout_events", 101)
    ws.close()
    status, _ = ws_status(api, "/api/checkout/5f8d0d55b54764421b7156c9"
                          "/events", token)
    assert status == 404
    record("checkout_events", 404)
    # More sockets than WAITERS_PER_USER (per API process): then 429.
    held, refused = [], None
    for _ in range(4 * int(api.env.get("WAITERS_PER_USER", "16"))):
        status, ws = ws_status(api, f"/api/checkout/{cid}/events", token)
        if ws is None:
            refused = status
            break
        held.append(ws)
    for ws in held:
        ws.close()
    api.start_worker()
    assert refused == 429
    record("checkout_events", 429)


def test_password_changes_are_limited(api):
    """Wrong current passwords count like failed logins, per user."""
    _, token = new_user(api, "pwlimit")
    limit = int(api.env.get("LOGIN_FAIL_EMAIL", "10"))
    codes = [api.post("/api/auth/password", {
        "currentPassword": "not-the-password", "newPassword":
        "another-horse-2"}, token=token).status_code
        for _ in range(limit + 1)]
    assert codes[:limit] == [403] * limit
    assert codes[-1] == 429


def test_sweep_503_with_redis_and_then_the_database_down(api):
    """Last in this module: it stops Redis, then the database."""
    user, token = new_user(api, "down")
    ids = {"userId": user["id"], "id": product(api), "entryId": "1-0"}
    VALID["cart_update"] = {"productId": ids["id"], "quantity": 1}
    VALID["auth_login"] = {"email": user["email"],
                           "password": "correct-horse-1"}
    admin = admin_token(api)
    answers = {}
    for down in ("redis", "mongo"):
        if down == "redis":
            api.stop_redis(signal.SIGKILL)
        else:
            api.stop_mongo(signal.SIGKILL)
        # Last: they end the token.
        ops = sorted(operations().items(), key=lambda kv: kv[0] in (
            "auth_logout", "auth_password"))
        for op_id, (method, path, op) in ops:
            if op_id == "checkout_events":
                continue
            tok = caller(op_id, token, admin)
            body = None if method in ("GET", "DELETE") else \
                VALID.get(op_id, {})
            r = api.request(method, concrete(path, ids), body, token=tok,
                            timeout=15)
            assert r.status_code < 500 or r.status_code == 503, \
                (op_id, down, r.status_code, r.text)
            if r.status_code == 503:
                assert r.headers.get("Retry-After", "").isdigit(), op_id
                answers.setdefault(op_id, set()).add(down)
        if down == "redis":
            status, _ = ws_status(api, f"/api/checkout/{ids['id']}/events",
                                  token)
            assert status == 503
            record("checkout_events", 503)
            api.start_redis()
            wait_until(lambda: api.get("/ready").json()["checks"][
                "redis"] == "ok", 10, "the API back on Redis")
    # What must need its dependencies does answer 503 without them.
    assert "ready" in answers and "checkout_submit" in answers
    assert answers["auth_login"] == {"redis", "mongo"}
    assert answers["orders_list"] == {"redis", "mongo"}
    for op_id in ("health", "openapi", "docs", "docs_asset"):
        assert op_id not in answers
