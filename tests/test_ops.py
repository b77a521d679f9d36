"""
test_ops.py -- the production reverse proxy (ops/nginx/checkout.conf)
in front of the real API: TLS, the JSON 413, /metrics kept private, and
the WebSocket upgrade for checkout events.
"""
import json
import re
import shutil
import ssl
import subprocess
import time

import pytest
import requests
import websocket

from stack import ROOT, free_port, wait_until


@pytest.fixture
def proxy(stack, tmp_path):
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (scripts/deps.sh installs it)")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", tmp_path / "key.pem", "-out",
                    tmp_path / "cert.pem", "-days", "1", "-subj",
                    "/CN=localhost"], check=True, capture_output=True)
    https, http = free_port(), free_port()
    site = (ROOT / "ops/nginx/checkout.conf").read_text()
    site = (site.replace("/etc/letsencrypt/live/shop.example.com/fullchain"
                         ".pem", str(tmp_path / "cert.pem"))
            .replace("/etc/letsencrypt/live/shop.example.com/privkey.pem",
                     str(tmp_path / "key.pem"))
            .replace("listen 443 ssl http2;",
                     f"listen 127.0.0.1:{https} ssl http2;")
            .replace("listen [::]:443 ssl http2;", "")
            .replace("listen 80;", f"listen 127.0.0.1:{http};")
            .replace("listen [::]:80;", "")
            .replace("127.0.0.1:3000", f"127.0.0.1:{stack.port}")
            .replace("/var/log/nginx/checkout.access.log",
                     str(tmp_path / "access.log")))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\naccess_log off;\n"
        f"client_body_temp_path {tmp_path};\n"
        f"include {tmp_path}/site.conf;\n}}\n")
    subprocess.run(["nginx", "-c", str(tmp_path / "nginx.conf")],
                   check=True)
    base = f"https://127.0.0.1:{https}"
    wait_until(lambda: requests.get(base + "/health", verify=False).ok, 10,
               "nginx")
    yield base
    subprocess.run(["nginx", "-c", str(tmp_path / "nginx.conf"), "-s",
                    "stop"])


@pytest.fixture
def proxy_log(proxy, tmp_path):
    return tmp_path / "access.log"


def test_proxy_hides_metrics_and_its_version(proxy):
    for path in ("/metrics", "/metrics/", "/metrics/x", "/metrics?x=1"):
        assert requests.get(proxy + path, verify=False).status_code == 404
    r = requests.get(proxy + "/health", verify=False)
    assert r.headers["Server"] == "nginx"           # server_tokens off


def test_proxy_limits_login_bursts(proxy):
    import concurrent.futures

    def attempt(i):       # other emails: the API's own limits stay clear
        return requests.post(proxy + "/api/auth/login", verify=False,
                             json={"email": f"burst{i}@x.io",
                                   "password": "wrong-password-9"})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        rs = list(pool.map(attempt, range(60)))
    codes = [r.status_code for r in rs]
    assert codes.count(401) >= 20, codes
    # nginx's own 429 (limit_req), not the API's JSON one.
    assert [r for r in rs if r.status_code == 429 and
            "rate_limited" not in r.text], codes


def test_proxy_limits_submits_with_or_without_a_trailing_slash(proxy):
    """The API routes POST /api/checkout/ as /api/checkout: nginx's
    submit limit covers both spellings."""
    import concurrent.futures
    for path in ("/api/checkout", "/api/checkout/"):
        def attempt(i, path=path):        # no token: the API says 401
            return requests.post(proxy + path, verify=False, json={})
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            codes = [r.status_code for r in pool.map(attempt, range(300))]
        assert codes.count(401) >= 20, (path, codes)
        assert 429 in codes, (path, codes)
        time.sleep(3)                     # the bucket refills for the next


def test_proxy_does_not_log_access_tokens(proxy, proxy_log):
    requests.get(proxy + "/api/checkout/" + "0" * 24 +
                 "/events?access_token=secret-token-value", verify=False)
    wait_until(lambda: "/events" in proxy_log.read_text(), 5,
               "the proxy's access log line")
    assert "secret-token-value" not in proxy_log.read_text()


def test_tls_proxy_reaches_the_api(proxy):
    import urllib3
    urllib3.disable_warnings()
    r = requests.get(proxy + "/health", verify=False)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert "Strict-Transport-Security" in r.headers
    assert len(r.headers["X-Request-Id"]) == 32       # nginx's $request_id


def test_proxy_keeps_errors_json(proxy):
    r = requests.post(proxy + "/api/auth/login", data="x" * (2 << 20),
                      headers={"Content-Type": "application/json"},
                      verify=False)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"
    assert requests.get(proxy + "/metrics", verify=False).status_code == 404


def test_websocket_through_the_proxy(proxy, stack):
    from test_checkout import buyer
    from util import product
    a = product(stack, 1, 5)
    _, token = buyer(stack, [(a, 1)])
    cid = stack.post("/api/checkout", {}, token=token).json()["checkoutId"]
    url = proxy.replace("https", "wss") + \
        f"/api/checkout/{cid}/events?access_token={token}"
    ws = websocket.create_connection(url, timeout=20,
                                     sslopt={"cert_reqs": ssl.CERT_NONE})
    deadline = time.time() + 20
    status = json.loads(ws.recv())["status"]
    while status not in ("completed", "failed") and time.time() < deadline:
        status = json.loads(ws.recv())["status"]
    assert status == "completed"


def test_units_are_hardened_and_workers_get_no_token_secrets():
    units = sorted((ROOT / "ops/systemd").glob("*.service"))
    assert len(units) == 4
    for unit in units:
        text = unit.read_text()
        for directive in ("CapabilityBoundingSet=\n", "PrivateDevices=yes",
                          "ProtectKernelTunables=yes",
                          "ProtectKernelModules=yes",
                          "RestrictAddressFamilies=", "SystemCallFilter=",
                          "NoNewPrivileges=yes"):
            assert directive in text, (unit.name, directive)
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", str(unit)],
                               capture_output=True, text=True)
            assert "Unknown key" not in r.stderr, r.stderr
            assert "Unknown lvalue" not in r.stderr, r.stderr
    # One Unix user per program, none able to see the others in /proc.
    users = {}
    for unit in units:
        text = unit.read_text()
        assert "ProtectProc=invisible" in text, unit.name
        users[unit.name] = re.search(r"^User=(\S+)$", text, re.M).group(1)
    assert users["checkout-migrate.service"] == \
        users["checkout-api.service"]
    assert len({users["checkout-api.service"],
                users["checkout-worker@.service"],
                users["checkout-notifier@.service"]}) == 3
    worker = (ROOT / "ops/systemd/checkout-worker@.service").read_text()
    assert "EnvironmentFile=/etc/checkout/worker.env" in worker
    env = (ROOT / "ops/checkout-worker.env.example").read_text()
    assert "JWT_SECRET" not in env and "ADMIN_PASSWORD" not in env
    notifier = (ROOT / "ops/systemd/checkout-notifier@.service").read_text()
    assert "EnvironmentFile=/etc/checkout/notifier.env" in notifier
    assert "ExecStart=/opt/checkout/bin/notifier" in notifier
    env = (ROOT / "ops/checkout-notifier.env.example").read_text()
    assert "JWT_SECRET" not in env and "ADMIN_PASSWORD" not in env
    mongod = (ROOT / "ops/mongodb/mongod.conf").read_text()
    assert "0.0.0.0" not in mongod
