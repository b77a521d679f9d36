"""
test_ops.py -- the production reverse proxy (ops/nginx/checkout.conf)
in front of the real API: TLS, the JSON 413, /metrics kept private, and
the WebSocket upgrade for checkout events.
"""
import json
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
            .replace("127.0.0.1:3000", f"127.0.0.1:{stack.port}"))
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
