"""
test_foundation.py -- the skeleton: health, readiness, JSON errors,
configuration errors, worker start and stop, and `make run` itself.
"""
import os
import signal
import subprocess
import time

import requests

from stack import BUILD, ROOT, Stack, free_port, wait_until


def test_health_answers_ok(stack):
    r = stack.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["Content-Type"] == "application/json"
    assert len(r.headers["X-Request-Id"]) >= 16


def test_ready_when_both_dependencies_answer(stack):
    r = stack.get("/ready")
    assert r.status_code == 200
    assert r.json()["checks"] == {"redis": "ok", "mongo": "ok"}


def test_request_id_is_echoed(stack):
    r = stack.get("/health", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = stack.get("/health", headers={"X-Request-Id": "bad id{}"})
    assert r.headers["X-Request-Id"] != "bad id{}"
    assert len(r.headers["X-Request-Id"]) == 24


def test_unknown_route_is_json_404(stack):
    r = stack.get("/api/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "route_not_found"


def test_wrong_method_is_json_405_with_allow(stack):
    r = stack.post("/health", {})
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["Allow"] == "GET"


def test_body_over_limit_is_json_413(stack):
    big = b'{"a":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    r = requests.post(stack.url("/api/auth/login"), data=big,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_login_and_register_bodies_are_capped_small(stack):
    """Anyone may post to these, and a password hash follows: more than
    4 KiB is refused before any JSON is parsed."""
    body = {"email": "a@example.com", "password": "p" * 8,
            "pad": ["x"] * 1500}
    for path in ("/api/auth/login", "/api/auth/register"):
        r = requests.post(stack.url(path), json=body)
        assert r.status_code == 413, (path, r.text)
        assert "4096" in r.json()["error"]["message"]
    # Larger bodies elsewhere are as before (a product's description).
    r = stack.post("/api/cart/me", {"productId": "0" * 24, "quantity": 1,
                                    "pad": "x" * 5000})
    assert r.status_code != 413


def test_no_hsts_or_kore_pages(stack):
    r = stack.get("/health")
    assert "Strict-Transport-Security" not in r.headers
    assert r.headers.get("Server") == "checkout-api"


def test_ready_is_503_while_redis_is_down(fresh_stack):
    s = fresh_stack(workers=0)
    s.stop_redis()
    r = s.get("/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["code"] == "redis_unavailable"
    assert body["checks"] == {"redis": "down", "mongo": "ok"}
    assert r.headers["Retry-After"] == "1"
    s.start_redis()
    wait_until(lambda: s.get("/ready").status_code == 200, 10, "ready again")


def test_ready_is_503_while_mongo_is_down(fresh_stack):
    s = fresh_stack(workers=0)
    s.stop_mongo()
    t0 = time.time()
    r = s.get("/ready")
    assert time.time() - t0 < 10
    assert r.status_code == 503
    assert r.json()["checks"] == {"redis": "ok", "mongo": "down"}
    s.start_mongo()
    wait_until(lambda: s.get("/ready").status_code == 200, 20, "ready again")


def _run(binary, env_over, *args):
    env = dict(os.environ, ENV_FILE="/dev/null", APP_ENV="test",
               JWT_SECRET="test-secret-" + "x" * 40)
    env.update(env_over)
    return subprocess.run([str(BUILD / binary), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_bad_configuration_is_one_line_naming_the_variable():
    cases = [
        ("worker", {"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL"),
        ("worker", {"MONGO_URI": "mongodb://a:b:c"}, "MONGO_URI"),
        ("shopctl", {"APP_ENV": "production", "JWT_SECRET": ""},
         "JWT_SECRET"),
        ("shopctl", {"APP_ENV": "test", "JWT_SECRET": ""}, "JWT_SECRET"),
        ("worker", {"PORT": "http"}, "PORT"),
    ]
    for prog, env, var in cases:
        r = _run(prog, env, *(["check"] if prog == "shopctl" else []))
        assert r.returncode == 1, (env, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and var in lines[0], (env, r.stderr)
        assert "Sanitizer" not in r.stderr


def test_api_refuses_bad_configuration(tmp_path):
    conf = (ROOT / "conf/api.conf").read_text().replace(
        "load ./build/api.so", f"load {BUILD / 'api.so'}")
    (tmp_path / "api.conf").write_text(conf)
    env = dict(os.environ, ENV_FILE="/dev/null", APP_ENV="production",
               JWT_SECRET="")
    env.update({"ASAN_OPTIONS": "detect_leaks=0"})
    if BUILD.name == "asan":
        env["LD_PRELOAD"] = subprocess.run(
            ["gcc", "-print-file-name=libasan.so"], capture_output=True,
            text=True).stdout.strip()
    r = subprocess.run(["kore", "-f", "-n", "-r", "-c", "api.conf"],
                       cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert "api: config: JWT_SECRET is required" in r.stderr


def test_worker_joins_group_and_stops_on_sigterm(fresh_stack):
    s = fresh_stack(workers=1)
    wait_until(lambda: "worker: started" in s.log("worker0"), 10, "worker")
    groups = s.redis.xinfo_groups("checkout:jobs")
    assert [g["name"] for g in groups] == ["checkout-workers"]
    t0 = time.time()
    code = s.stop_worker(s.workers[0])
    assert code == 0
    assert time.time() - t0 < 10
    assert "worker: stopped" in s.log("worker0")


def test_migrations_are_idempotent(stack):
    r1 = stack.shopctl("migrate")
    r2 = stack.shopctl("migrate")
    assert r1.returncode == 0 and r2.returncode == 0
    idx = stack.db.users.index_information()
    assert idx["email_unique"]["unique"] is True
    assert stack.db.orders.index_information()["checkoutId_unique"]["unique"]
    assert stack.db.carts.index_information()["userId_unique"]["unique"]
    admins = list(stack.db.users.find({"email": "admin@example.com"}))
    assert len(admins) == 1 and admins[0]["role"] == "admin"
    assert admins[0]["password"].startswith("$argon2id$")


def test_products_validator_refuses_negative_stock(stack):
    import pymongo.errors
    try:
        stack.db.products.insert_one({"title": "x", "price": 1, "stock": -1})
        inserted = True
    except pymongo.errors.WriteError:
        inserted = False
    assert inserted is False


def test_make_run_starts_and_stops_everything(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(tmp_path),
               REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
               MONGO_URI=f"mongodb://127.0.0.1:{free_port()}/shop",
               WORKERS="1", ENV_FILE="/dev/null", BUILD_DIR=str(BUILD))
    env.pop("LD_PRELOAD", None)
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    log = tmp_path / "run.out"
    with open(log, "wb") as f:
        p = subprocess.Popen([str(ROOT / "scripts/run.sh")], env=env,
                             stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        try:
            wait_until(lambda: requests.get(
                f"http://127.0.0.1:{port}/ready", timeout=1).ok, 60,
                "make run")
        except TimeoutError:
            raise AssertionError(log.read_text()) from None
        assert requests.get(f"http://127.0.0.1:{port}/health").ok
        wait_until(lambda: "run: API at" in log.read_text(), 10, "banner")
    finally:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(60)
    out = log.read_text()
    assert "run: API at http://127.0.0.1:" in out, out
    assert "run: stopped" in out, out
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True,
                          text=True).stdout.split()
    assert left == []
    left = subprocess.run(["pgrep", "-f", f"--port {port}"],
                          capture_output=True, text=True).stdout.split()
    assert left == []


def test_readme_documents_every_variable():
    out = subprocess.run([str(BUILD / "shopctl"), "config-doc"],
                         capture_output=True, text=True,
                         env=dict(os.environ, ENV_FILE="/dev/null")).stdout
    readme = (ROOT / "README.md").read_text()
    names = [line.split("`")[1] for line in out.splitlines()
             if line.startswith("| `")]
    assert len(names) > 30
    missing = [n for n in names if f"`{n}`" not in readme]
    assert missing == []


def test_metrics_count_requests_and_show_the_queue(stack):
    before = stack.get("/metrics").text
    stack.get("/api/definitely-not-here")
    text = stack.get("/metrics").text

    def value(body, prefix):
        for line in body.splitlines():
            if line.startswith(prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    key = 'http_requests_total{route="none",status="404"}'
    assert value(text, key) >= value(before, key) + 1
    assert 'http_request_duration_seconds_bucket{route="health",le="+Inf"}' \
        in text
    assert "checkout_queue_length " in text
    assert "checkout_jobs_pending " in text
    assert "checkout_jobs_completed_total " in text
    r = stack.get("/metrics")
    assert r.headers["Content-Type"].startswith("text/plain")


def test_metrics_token_when_configured(fresh_stack):
    s = fresh_stack(workers=0, env={"METRICS_TOKEN": "scrape-me-0123456789"})
    assert s.get("/metrics").status_code == 401
    r = s.get("/metrics",
              headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert r.status_code == 200 and "http_requests_total" in r.text


def request_lines(stack):
    import json
    return [json.loads(line) for line in stack.log("api").splitlines()
            if '"msg":"request"' in line]


def test_request_logs_keep_errors_slow_and_checkouts_and_sample_the_rest(
        fresh_stack):
    from util import new_user, product
    s = fresh_stack(workers=0, env={"LOG_REQUESTS": "sample:50"})
    before = len([x for x in request_lines(s) if x["route"] == "health"])
    for _ in range(200):
        s.get("/health")
    for _ in range(5):
        s.get("/api/nope")
    a = product(s, 1, 5)
    _, token = new_user(s)
    s.post("/api/cart/me", {"productId": a, "quantity": 1}, token=token)
    wait_until(lambda: s.redis.get(f"cart:lines:{_['id']}") is not None,
               5, "the cart hint")
    cid = s.post("/api/checkout", {}, token=token).json()["checkoutId"]
    # The API flushes its log every 100 ms; the submit's line comes last.
    wait_until(lambda: any(x["route"] == "checkout_submit"
                           for x in request_lines(s)), 5, "the log lines")
    lines = request_lines(s)
    health = [x for x in lines if x["route"] == "health"]
    assert 1 <= len(health) - before <= 10            # about 200 / 50
    assert len([x for x in lines if x["status"] == 404]) == 5   # all errors
    (sub,) = [x for x in lines if x["route"] == "checkout_submit"]
    assert sub["checkoutId"] == cid and sub["status"] == 202


def test_request_logs_can_be_off_but_errors_stay(fresh_stack):
    s = fresh_stack(workers=0, env={"LOG_REQUESTS": "none",
                                    "LOG_SLOW_MS": "100000"})
    for _ in range(50):
        s.get("/health")
    s.get("/api/nope")
    wait_until(lambda: any(x["path"] == "/api/nope"
                           for x in request_lines(s)), 5, "the 404's line")
    lines = request_lines(s)
    assert [x for x in lines if x["route"] == "health"] == []
    assert [x["status"] for x in lines if x["path"] == "/api/nope"] == [404]
    assert all(x["status"] >= 400 for x in lines)
