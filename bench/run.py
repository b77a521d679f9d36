"""
run.py -- `make bench`: the system's speed, measured the way a
storefront on sale day would load it.

Starts the real stack from the release build (build/) on free ports and
runs each scenario against it:

  health       GET /health with wrk: the server's own ceiling
  products     GET /api/products?limit=20 with wrk
  cart         POST /api/cart/me (64 buyers) with wrk
  login        POST /api/auth/login with wrk, and /health's latency
               measured meanwhile (argon2id must not block the loop)
  submit       POST /api/checkout, one per buyer, no worker running
  orders       end-to-end orders/s (submit to completed), 1, 2, 4 workers
  flash        the flash sale: BENCH_BUYERS (10,000) buyers, one unit
               each, BENCH_STOCK (100) units, all submitting at once

Every timing is reported beside the /health ceiling of the same run,
because the machine is shared and absolute figures drift.  Writes
bench/results.json and bench/REPORT.md; exits 1 if the flash sale sold
anything but exactly BENCH_STOCK or answered any 5xx.  BENCH_SCALE
multiplies the sizes and durations; BENCH_DB=rs uses SecantusDB's Rust
server (scripts/deps.sh rs).
"""
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import bson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("BUILD_DIR", "build")
os.environ["SECANTUS_SERVER"] = os.environ.get("BENCH_DB", "py")

import load  # noqa: E402
from stack import Stack  # noqa: E402
from util import make_jwt  # noqa: E402

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SECONDS = max(3, int(5 * SCALE))
BUYERS = int(os.environ.get("BENCH_BUYERS", str(int(10000 * SCALE))))
STOCK = int(os.environ.get("BENCH_STOCK", "100"))


def progress(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
          flush=True)


def ms(x):
    return round(x * 1000, 2)


# ----- tools -----

def wrk(url, seconds=SECONDS, connections=64, script=None):
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run(args + [url], capture_output=True,
                         text=True).stdout
    lat = dict(re.findall(r"^\s+(\d+)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)",
                                              out).group(1)),
            "p50_ms": to_ms(lat.get("50")), "p99_ms": to_ms(lat.get("99")),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def to_ms(text):
    if text is None:
        return None
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 3)


def lua_post(path, bodies, tokens, name):
    """A wrk script posting bodies[i] with tokens[i], round robin."""
    script = ROOT / "bench/tmp" / name
    script.parent.mkdir(exist_ok=True)
    items = ",\n".join("{%s, %s}" % (json.dumps(b), json.dumps(t))
                       for b, t in zip(bodies, tokens))
    script.write_text(f"""
local items = {{ {items} }}
local i = 0
request = function()
  i = i % #items + 1
  local it = items[i]
  local h = {{ ["Content-Type"] = "application/json" }}
  if it[2] ~= "" then h["Authorization"] = "Bearer " .. it[2] end
  return wrk.format("POST", "{path}", h, it[1])
end
""")
    return script


def probe(url, stop, out):
    """Sequential GETs until stop is set: latencies into out."""
    s = requests.Session()
    while not stop.is_set():
        t0 = time.perf_counter()
        s.get(url, timeout=10)
        out.append(time.perf_counter() - t0)
        time.sleep(0.005)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else 0.0


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def kore_pids(stack):
    parent = stack.procs["api"].pid
    out = subprocess.run(["pgrep", "-g", str(parent)], capture_output=True,
                         text=True).stdout.split()
    return [int(p) for p in out]


# ----- data -----

class Shop:
    """Products, buyers and carts, written straight into MongoDB."""

    def __init__(self, stack):
        self.s = stack
        self.secret = stack.env["JWT_SECRET"]
        r = requests.post(stack.url("/api/auth/login"), json={
            "email": stack.env["ADMIN_EMAIL"],
            "password": stack.env["ADMIN_PASSWORD"]})
        self.admin = r.json()["token"]

    def product(self, stock, price=9.99, title="bench item"):
        r = requests.post(self.s.url("/api/products"), json={
            "title": title, "price": price, "stock": stock},
            headers={"Authorization": f"Bearer {self.admin}"})
        return r.json()["id"]

    def buyers(self, n, pid, qty=1):
        now = int(time.time())
        users = [{"_id": bson.ObjectId(), "email": "",
                  "password": "-", "role": "customer"} for _ in range(n)]
        for u in users:
            u["email"] = f"bench-{u['_id']}@example.com"
        pipe = self.s.redis.pipeline()
        for u in users:     # what the API's cart write leaves (cart.c)
            pipe.set(f"cart:lines:{u['_id']}", 1, ex=86400)
        pipe.execute()
        for i in range(0, n, 5000):
            self.s.db.users.insert_many(users[i:i + 5000])
            self.s.db.carts.insert_many([{
                "userId": u["_id"], "rev": 1,
                "items": [{"productId": bson.ObjectId(pid),
                           "quantity": qty}]} for u in users[i:i + 5000]])
        return [make_jwt({"sub": str(u["_id"]), "role": "customer",
                          "iat": now, "exp": now + 7200}, self.secret)
                for u in users]

    def reset_queue(self):
        r = self.s.redis
        r.delete("checkout:jobs")
        r.xgroup_create("checkout:jobs", "checkout-workers", id="0",
                        mkstream=True)


def submits(tokens, headers=None):
    return [load.build("POST", "/api/checkout", b"{}", dict(
        {"Authorization": f"Bearer {t}"}, **(headers or {})))
        for t in tokens]


def wait_final(stack, ids, timeout):
    end = time.time() + timeout
    pending = list(ids)
    while pending:
        pipe = stack.redis.pipeline()
        for cid in pending:
            pipe.hget(f"checkout:{cid}", "status")
        st = pipe.execute()
        pending = [c for c, s in zip(pending, st)
                   if s not in ("completed", "failed")]
        if time.time() > end:
            raise TimeoutError(f"{len(pending)} checkouts not final")
        if pending:
            time.sleep(0.05)
    return time.perf_counter()


def checkout_ids(res):
    return [json.loads(b)["checkoutId"] for b, st in
            zip(res.bodies, res.statuses) if st == 202]


# ----- scenarios -----

def sc_health(s, shop, out):
    out["health"] = wrk(s.url("/health"))


def sc_products(s, shop, out):
    for i in range(200):
        shop.product(100, price=1 + i / 100, title=f"catalogue item {i}")
    url = s.url("/api/products?limit=20")
    requests.get(url)
    out["products"] = wrk(url)


def sc_cart(s, shop, out):
    pids = [shop.product(1000) for _ in range(8)]
    tokens = shop.buyers(64, pids[0])
    bodies = [json.dumps({"productId": pids[i % 8], "quantity": 1 + i % 5})
              for i in range(len(tokens))]
    out["cart"] = wrk(s.url("/api/cart/me"),
                      script=lua_post("/api/cart/me", bodies, tokens,
                                      "cart.lua"))


def sc_login(s, shop, out):
    email, pw = "login-bench@example.com", "bench-password-1"
    requests.post(s.url("/api/auth/register"), json={"email": email,
                                                      "password": pw})
    idle = []
    stop = threading.Event()
    t = threading.Thread(target=probe, args=(s.url("/health"), stop, idle))
    t.start()
    time.sleep(2)
    stop.set()
    t.join()
    busy = []
    stop = threading.Event()
    t = threading.Thread(target=probe, args=(s.url("/health"), stop, busy))
    t.start()
    body = json.dumps({"email": email, "password": pw})
    res = wrk(s.url("/api/auth/login"), connections=16,
              script=lua_post("/api/auth/login", [body], [""], "login.lua"))
    stop.set()
    t.join()
    out["login"] = dict(res, health_while_idle_p50_ms=ms(pct(idle, 50)),
                        health_while_idle_p99_ms=ms(pct(idle, 99)),
                        health_during_logins_p50_ms=ms(pct(busy, 50)),
                        health_during_logins_p99_ms=ms(pct(busy, 99)),
                        health_probes=len(busy))


def sc_submit(s, shop, out):
    n = int(2000 * SCALE)
    pid = shop.product(n)
    tokens = shop.buyers(n, pid)
    res = load.run("127.0.0.1", s.port, submits(tokens), concurrency=64)
    took = res.finished - res.started
    out["submit"] = {"requests": n, "accepted": res.count(lambda x: x == 202),
                     "requests_per_s": round(n / took, 1),
                     "p50_ms": ms(res.percentile(50)),
                     "p99_ms": ms(res.percentile(99)),
                     "non_2xx": res.count(lambda x: x // 100 != 2)}
    shop.reset_queue()


def sc_orders(s, shop, out):
    rows = {}
    for workers in (1, 2, 4):
        n = int(300 * SCALE)
        pid = shop.product(n * 2)
        tokens = shop.buyers(n, pid)
        procs = [s.start_worker() for _ in range(workers)]
        time.sleep(0.5)
        res = load.run("127.0.0.1", s.port, submits(tokens),
                       concurrency=64, keep=True)
        done = wait_final(s, checkout_ids(res), 600)
        took = done - res.started
        rows[str(workers)] = {"orders": n, "seconds": round(took, 2),
                              "orders_per_s": round(n / took, 1)}
        for p in procs:
            s.stop_worker(p)
        progress(f"  {workers} worker(s): {n / took:.0f} orders/s")
    out["orders"] = rows


def sample(stack, stop, peaks, worker_pids):
    while not stop.is_set():
        try:
            peaks["queue"] = max(peaks["queue"],
                                 stack.redis.xlen("checkout:jobs"))
        except Exception:  # noqa: BLE001
            pass
        peaks["api_kb"] = max(peaks["api_kb"], rss_kb(kore_pids(stack)))
        peaks["workers_kb"] = max(peaks["workers_kb"], rss_kb(worker_pids))
        time.sleep(0.1)


def sc_flash(s, shop, out):
    pid = shop.product(STOCK, price=49.99, title="flash sale item")
    progress(f"  {BUYERS} buyers for {STOCK} units")
    tokens = shop.buyers(BUYERS, pid)
    procs = [s.start_worker() for _ in range(2)]
    time.sleep(0.5)
    peaks = {"queue": 0, "api_kb": 0, "workers_kb": 0}
    stop = threading.Event()
    t = threading.Thread(target=sample, args=(s, stop, peaks,
                                              [p.pid for p in procs]))
    t.start()
    res = load.run("127.0.0.1", s.port, submits(tokens),
                   concurrency=min(1000, BUYERS), keep=True)
    ids = checkout_ids(res)
    done = wait_final(s, ids, 900)
    stop.set()
    t.join()
    orders = s.db.orders.count_documents(
        {"items.productId": bson.ObjectId(pid)})
    stock = s.db.products.find_one({"_id": bson.ObjectId(pid)})["stock"]
    out["flash"] = {
        "buyers": BUYERS, "stock": STOCK,
        "accepted": len(ids), "rejected": BUYERS - len(ids),
        "http_5xx": res.count(lambda x: x >= 500 or x == 0),
        "submit_window_s": round(res.finished - res.started, 2),
        "submit_p50_ms": ms(res.percentile(50)),
        "submit_p99_ms": ms(res.percentile(99)),
        "submit_max_ms": ms(max(res.latencies)),
        "all_final_s": round(done - res.started, 2),
        "orders": orders, "final_stock": stock,
        "queue_peak": peaks["queue"],
        "api_rss_mb": round(peaks["api_kb"] / 1024, 1),
        "workers_rss_mb": round(peaks["workers_kb"] / 1024, 1),
        "ok": orders == STOCK and stock == 0 and
        res.count(lambda x: x >= 500 or x == 0) == 0,
    }
    for p in procs:
        s.stop_worker(p)


SCENARIOS = [("health", sc_health), ("products", sc_products),
             ("cart", sc_cart), ("login", sc_login), ("submit", sc_submit),
             ("orders", sc_orders), ("flash", sc_flash)]


def machine():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) // 1024
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_mb": mem,
            "kernel": platform.release(),
            "database": "SecantusDB " + ("Rust (secantusd-rs)"
                                         if os.environ["SECANTUS_SERVER"] ==
                                         "rs" else "Python (secantusd-py)")}


def main():
    only = set(sys.argv[1:])
    started = time.time()
    results = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "scale": SCALE, "scenarios": {}}
    progress(f"starting the stack ({results['machine']['database']})")
    s = Stack(workers=0, name="bench", env={
        "QUEUE_MAX": "1000000", "WORKER_CONSUMERS": "4",
        "DB_THREADS": "16"}).start()
    try:
        shop = Shop(s)
        for name, fn in SCENARIOS:
            if only and name not in only:
                continue
            progress(f"{name} ...")
            t0 = time.time()
            fn(s, shop, results["scenarios"])
            progress(f"{name}: {json.dumps(results['scenarios'][name])} "
                     f"({time.time() - t0:.0f} s)")
    finally:
        s.cleanup()
    results["seconds"] = round(time.time() - started)
    (ROOT / "bench/results.json").write_text(json.dumps(results, indent=2)
                                             + "\n")
    (ROOT / "bench/REPORT.md").write_text(report(results))
    progress(f"done in {results['seconds']} s: bench/results.json, "
             "bench/REPORT.md")
    flash = results["scenarios"].get("flash")
    sys.exit(0 if flash is None or flash["ok"] else 1)


def report(r):
    from report import render
    return render(r)


if __name__ == "__main__":
    main()
