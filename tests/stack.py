"""
stack.py -- the real system on free ports in a temporary directory.

A Stack starts its own Redis (AOF on), SecantusDB, runs the migrations,
then the API (kore with the sanitizer build of api.so) and the workers,
all as separate processes the tests can stop, kill and restart.  Every
process logs into the stack's directory; sanitizer reports found there
fail the run (tests/test_sanitizers.py).
"""
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymongo
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / os.environ.get("BUILD_DIR", "build/asan")
VENV = ROOT / ".venv"
ASAN = BUILD.name == "asan"
LOG_DIRS = []
STACKS = []     # every Stack made: stopped at the session's end, whatever
  # every stack's directory, for the sanitizer check
# (operationId, status) -> count, over every stack of the session: what
# each API answered (its /metrics, read before it stops) plus what tests
# saw kore answer itself (record()).  test_openapi_coverage.py checks
# that every status the spec documents was reached.
OBSERVED = collections.Counter()


def record(operation, status):
    OBSERVED[(operation, int(status))] += 1


def metrics_counts(text):
    """(route, status) -> count from the API's Prometheus text."""
    counts = collections.Counter()
    for m in re.finditer(r'^http_requests_total\{route="([^"]+)",'
                         r'status="(\d+)"\} (\d+)$', text, re.M):
        counts[(m.group(1), int(m.group(2)))] += int(m.group(3))
    return counts


_given = set()


def free_port():
    """A port that is free now and outside the kernel's ephemeral range,
    so that no outgoing connection takes it before our server binds it;
    never the same one twice in a run."""
    while True:
        port = random.randint(20000, 32000)
        if port in _given:
            continue
        _given.add(port)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def secantus_binary():
    """SecantusDB's Rust server when it is built, unless
    SECANTUS_SERVER=py; else the Python one (as scripts/services.sh)."""
    rs = ROOT / ".tools/bin/secantusd-rs"
    if os.environ.get("SECANTUS_SERVER", "rs") != "py" and rs.exists():
        return rs
    return VENV / "bin/secantusd-py"


def wait_until(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return
        except Exception:  # noqa: BLE001 -- the thing may still be starting
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def sanitizer_env(preload):
    """ASan/UBSan settings.  Leak checks run in the worker and shopctl;
    not in kore, whose seccomp sandbox forbids LeakSanitizer's ptrace."""
    env = {
        "ASAN_OPTIONS": "detect_leaks=%d:halt_on_error=1:abort_on_error=0"
                        % (0 if preload else 1),
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    if ASAN and preload:
        lib = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                             capture_output=True, text=True).stdout.strip()
        env["LD_PRELOAD"] = lib
    return env


class Stack:
    """One running system.  env overrides the configuration."""

    def __init__(self, workers=2, env=None, name="stack", notify=False,
                 ha=False, acl=False):
        self.dir = Path(tempfile.mkdtemp(prefix=f"checkout-{name}-"))
        LOG_DIRS.append(self.dir)
        STACKS.append(self)
        self.port = free_port()
        self.redis_port = free_port()
        self.mongo_port = free_port()
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("ASAN_", "UBSAN_", "LD_PRELOAD")):
                del self.env[k]
        self.env.update({
            "APP_ENV": "test",
            "ENV_FILE": "/dev/null",
            "PORT": str(self.port),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "MONGO_URI": f"mongodb://127.0.0.1:{self.mongo_port}/shop"
                         "?retryWrites=false",
            "JWT_SECRET": "test-secret-" + "x" * 40,
            "DATA_DIR": str(self.dir),
            "ADMIN_EMAIL": "admin@example.com",
            "ADMIN_PASSWORD": "admin-password-1",
            "MONGO_TIMEOUT_MS": "1500",
            "REDIS_TIMEOUT_MS": "1000",
            "API_WORKERS": "2",
            "LOG_LEVEL": "info",
        })
        self.ha = ha
        self.redis_password = None
        # acl: each program its own Redis user (ops/redis/make-acl.sh),
        # given by program_env[api|worker|notifier|shopctl].
        self.acl = acl
        self.program_env = {}
        if ha:
            # A primary, two replicas and three Sentinels (make run-ha),
            # each with a password (ops/redis).
            self.replica_ports = [free_port(), free_port()]
            self.sentinel_ports = [free_port() for _ in range(3)]
            self.redis_password = "redis-test-password-0123456789"
            self.sentinel_password = "sentinel-test-password-0123456789"
            self.env.update({
                "REDIS_URL": f"redis://:{self.redis_password}@127.0.0.1:"
                             f"{self.redis_port}/0",
                "REDIS_SENTINELS": ",".join(
                    f"127.0.0.1:{p}" for p in self.sentinel_ports),
                "REDIS_SENTINEL_PASSWORD": self.sentinel_password,
                "REDIS_MASTER_NAME": "checkout"})
        self.notify = notify
        self.mail_dir = self.dir / "mail"
        if notify and "SMTP_URL" not in (env or {}):
            self.smtp_port = free_port()
            self.env.update({
                "SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}",
                "SMTP_TLS": "none", "MAIL_FROM": "orders@shop.test"})
        self.env.update(env or {})
        self.procs = {}
        self.workers = []
        self.nworkers = workers
        self._redis = None
        self._redis_port = None
        self._mongo = None

    # ----- process plumbing -----

    def _spawn(self, name, argv, preload=False, cwd=None):
        log = open(self.dir / f"{name}.log", "ab")
        env = dict(self.env)
        env.update(self.program_env.get(name.rstrip("0123456789"), {}))
        env.update(sanitizer_env(preload))
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd or ROOT,
                                start_new_session=True)

    @staticmethod
    def _stop(p, sig=signal.SIGTERM, timeout=15):
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            return p.wait(5)

    def log(self, name):
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ----- Redis -----

    def start_redis(self):
        if self.ha:
            self.start_redis_node(self.redis_port)
            for p in self.replica_ports:
                self.start_redis_node(p, self.redis_port)
            for p in self.sentinel_ports:
                self.start_sentinel(p)
            wait_until(self.sentinels_ready, 30, "sentinels")
            return
        (self.dir / "redis").mkdir(exist_ok=True)
        self.procs["redis"] = self._spawn("redis", [
            "redis-server", "--bind", "127.0.0.1",
            "--port", str(self.redis_port), "--dir", str(self.dir / "redis"),
            "--appendonly", "yes", "--appendfsync", "always",
            "--save", ""] + self.acl_users())
        wait_until(lambda: self.redis.ping(), 10, "redis")

    def acl_users(self):
        """With acl: the users of ops/redis/make-acl.sh, as redis-server
        arguments (made once); each program's REDIS_URL set to its own."""
        if not self.acl:
            return []
        users = self.dir / "users.conf"
        if not users.exists():
            r = subprocess.run(["sh", str(ROOT / "ops/redis/make-acl.sh")],
                               capture_output=True, text=True, check=True)
            users.write_text(r.stdout)
            for line in r.stderr.splitlines():
                who, url = line.split(": REDIS_URL=")
                role = {"checkout-api": "api", "checkout-worker": "worker",
                        "checkout-notifier": "notifier",
                        "checkout-admin": "shopctl"}[who]
                self.program_env[role] = {"REDIS_URL": url.replace(
                    "HOST:6379", f"127.0.0.1:{self.redis_port}")}
        return ["--include", str(users)]

    def stop_redis(self, sig=signal.SIGTERM):
        for name in [n for n in self.procs
                     if n.startswith(("sentinel", "redis"))]:
            self._stop(self.procs.pop(name, None), sig)

    @property
    def redis(self):
        """A client of the primary (in HA mode, of the one the Sentinels
        name now)."""
        port = self.primary_port() if self.ha else self.redis_port
        if self._redis is None or self._redis_port != port:
            self._redis = redis.Redis(port=port, decode_responses=True,
                                      socket_timeout=5,
                                      password=self.redis_password)
            self._redis_port = port
        return self._redis

    # ----- Redis replication and Sentinel (ha=True) -----

    def start_redis_node(self, port, replica_of=None):
        """A data node with AOF on; a replica of replica_of if given.  As
        in ops/redis: a primary cut off from every replica for 10 s takes
        no writes (min-replicas-to-write), so an old primary that a
        partition left behind cannot acknowledge anything."""
        d = self.dir / f"redis-{port}"
        d.mkdir(exist_ok=True)
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                "--dir", str(d), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "",
                "--repl-diskless-sync-delay", "0",
                "--min-replicas-to-write", "1",
                "--min-replicas-max-lag", "10",
                "--requirepass", self.redis_password,
                "--masterauth", self.redis_password]
        if replica_of:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.procs[f"redis-{port}"] = self._spawn(f"redis-{port}", argv)
        wait_until(lambda: self.redis_node(port).ping(), 10, "redis node")

    def start_sentinel(self, port):
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor checkout 127.0.0.1 {self.redis_port} 2\n"
            "sentinel down-after-milliseconds checkout 2000\n"
            "sentinel failover-timeout checkout 5000\n"
            f"sentinel auth-pass checkout {self.redis_password}\n"
            f"requirepass {self.sentinel_password}\n"
            f"sentinel sentinel-pass {self.sentinel_password}\n"
            "sentinel parallel-syncs checkout 1\n")
        self.procs[f"sentinel-{port}"] = self._spawn(
            f"sentinel-{port}", ["redis-server", str(conf), "--sentinel"])

    def sentinel(self, i=0):
        return redis.Redis(port=self.sentinel_ports[i],
                           decode_responses=True, socket_timeout=2,
                           password=self.sentinel_password)

    def sentinels_ready(self):
        """Both replicas are in sync; every Sentinel knows the primary,
        its replicas and the others."""
        for p in self.replica_ports:
            info = self.redis_node(p).info("replication")
            if info["master_link_status"] != "up":
                return False
        for i in range(len(self.sentinel_ports)):
            m = self.sentinel(i).sentinel_master("checkout")
            if m["num-slaves"] < len(self.replica_ports) or \
                    m["num-other-sentinels"] < 2:
                return False
        return True

    def sentinels_agree(self, port=None):
        """Every Sentinel names the same primary (port, if given)."""
        ports = set()
        for i in range(len(self.sentinel_ports)):
            try:
                ports.add(int(self.sentinel(i).sentinel_get_master_addr_by_name(
                    "checkout")[1]))
            except Exception:  # noqa: BLE001 -- not agreed yet
                return False
        return len(ports) == 1 and (port is None or ports == {port})

    def primary_port(self):
        """The primary's port as a Sentinel says it now."""
        for i in range(len(self.sentinel_ports)):
            try:
                return int(self.sentinel(i).sentinel_get_master_addr_by_name(
                    "checkout")[1])
            except Exception:  # noqa: BLE001 -- try the next one
                continue
        raise RuntimeError("no Sentinel answers")

    def redis_node(self, port):
        return redis.Redis(port=port, decode_responses=True,
                           socket_timeout=5, password=self.redis_password)

    # ----- SecantusDB -----

    def start_mongo(self):
        binary = secantus_binary()
        self.procs["mongo"] = self._spawn("mongo", [
            str(binary), "--config", str(ROOT / "conf/secantusd.toml"),
            "--host", "127.0.0.1",
            "--port", str(self.mongo_port),
            "--storage-path", str(self.dir / "mongo")])
        wait_until(lambda: self.mongo.admin.command("ping"), 30, "secantus")

    def stop_mongo(self, sig=signal.SIGTERM):
        self._stop(self.procs.pop("mongo", None), sig)

    @property
    def mongo(self):
        if self._mongo is None:
            self._mongo = pymongo.MongoClient(
                port=self.mongo_port, directConnection=True,
                serverSelectionTimeoutMS=2000)
        return self._mongo

    @property
    def db(self):
        return self.mongo["shop"]

    # ----- our processes -----

    def shopctl(self, *args, env=None, input=None):
        e = dict(self.env)
        e.update(self.program_env.get("shopctl", {}))
        e.update(sanitizer_env(False))
        e.update(env or {})
        return subprocess.run([str(BUILD / "shopctl"), *args], env=e,
                              capture_output=True, text=True, input=input,
                              timeout=120, cwd=ROOT)

    def start_api(self):
        conf = self.dir / "api.conf"
        text = (ROOT / "conf/api.conf").read_text()
        text = "\n".join(f"load {BUILD / 'api.so'}" if line.startswith("load ")
                         else line for line in text.splitlines())
        conf.write_text(text + "\n")
        self.procs["api"] = self._spawn(
            "api", ["kore", "-f", "-n", "-r", "-c", str(conf)], preload=True,
            cwd=self.dir)
        wait_until(lambda: requests.get(self.url("/health"), timeout=1).ok,
                   30, "api")

    def stop_api(self, sig=signal.SIGTERM):
        if sig == signal.SIGTERM:
            self.save_metrics()
        return self._stop(self.procs.pop("api", None), sig)

    def metrics(self):
        """(route, status) -> count answered by this API so far."""
        token = self.env.get("METRICS_TOKEN")
        r = requests.get(self.url("/metrics"), timeout=5, headers={
            "Authorization": f"Bearer {token}"} if token else {})
        r.raise_for_status()
        return metrics_counts(r.text)

    def save_metrics(self):
        """Add what this API answered to OBSERVED, once per API process."""
        p = self.procs.get("api")
        if p is None or p.poll() is not None or getattr(p, "saved", False):
            return
        try:
            OBSERVED.update(self.metrics())
            p.saved = True
        except Exception:  # noqa: BLE001 -- an API that cannot answer
            pass

    def start_worker(self):
        n = len(self.workers)
        p = self._spawn(f"worker{n}", [str(BUILD / "worker")])
        self.workers.append(p)
        return p

    def stop_worker(self, p, sig=signal.SIGTERM, timeout=30):
        return self._stop(p, sig, timeout)

    # ----- notifications -----

    def start_smtp(self, *args):
        """The SMTP sink (scripts/smtp_sink.py): mail lands in mail_dir."""
        self.procs["smtp"] = self._spawn("smtp", [
            "nice", "-n", "10", str(VENV / "bin/python"), str(ROOT / "scripts/smtp_sink.py"),
            "--port", str(self.smtp_port), "--dir", str(self.mail_dir),
            *args])

        def up():
            with socket.create_connection(("127.0.0.1", self.smtp_port)):
                return True
        wait_until(up, 15, "smtp sink")

    def stop_smtp(self):
        self._stop(self.procs.pop("smtp", None))

    def start_notifier(self):
        # Mail is less urgent than checkouts: lower CPU priority, as
        # ops/systemd and make run give it.
        self.procs["notifier"] = self._spawn("notifier", [
            "nice", "-n", "10", str(BUILD / "notifier")])
        return self.procs["notifier"]

    def stop_notifier(self, sig=signal.SIGTERM):
        return self._stop(self.procs.pop("notifier", None), sig)

    def mails(self):
        """The messages the sink kept, oldest first, as email.Message."""
        import email
        if not self.mail_dir.exists():
            return []
        return [email.message_from_bytes(p.read_bytes())
                for p in sorted(self.mail_dir.glob("*.eml"))]

    # ----- the whole -----

    def start(self):
        """Everything; if a part fails to start, what did start is stopped
        before the error goes on (a fixture that never got the stack
        could not clean it up)."""
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self):
        self.start_redis()
        self.start_mongo()
        r = self.shopctl("migrate")
        assert r.returncode == 0, r.stderr
        self.start_api()
        for _ in range(self.nworkers):
            self.start_worker()
        # Each worker checks Redis as it starts and exits if it cannot
        # reach it: a test that breaks Redis must not race that check.
        wait_until(lambda: all('"worker: started"' in self.log(f"worker{i}")
                               for i in range(self.nworkers)), 30,
                   "workers started")
        if self.notify:
            if "smtp" not in self.procs and hasattr(self, "smtp_port"):
                self.start_smtp()
            self.start_notifier()
        wait_until(lambda: requests.get(self.url("/ready"), timeout=2).ok,
                   30, "ready")
        return self

    def stop(self):
        self.stop_notifier()
        self.stop_smtp()
        for p in self.workers:
            self._stop(p)
        self.stop_api()
        self.stop_redis()
        self.stop_mongo()
        if self._mongo is not None:
            self._mongo.close()

    def cleanup(self):
        self.stop()
        if os.environ.get("KEEP_STACK") is None:
            shutil.rmtree(self.dir / "mongo", ignore_errors=True)
            shutil.rmtree(self.dir / "redis", ignore_errors=True)
            for d in self.dir.glob("redis-*"):
                shutil.rmtree(d, ignore_errors=True)

    # ----- HTTP -----

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, token=None, **kw):
        return requests.get(self.url(path), headers=_auth(token, kw),
                            timeout=kw.pop("timeout", 30), **kw)

    def post(self, path, body=None, token=None, **kw):
        return requests.post(self.url(path), headers=_auth(token, kw),
                             data=None if body is None else json.dumps(body),
                             timeout=kw.pop("timeout", 30), **kw)

    def request(self, method, path, body=None, token=None, **kw):
        return requests.request(method, self.url(path),
                                headers=_auth(token, kw),
                                data=None if body is None else json.dumps(body),
                                timeout=kw.pop("timeout", 30), **kw)


def _auth(token, kw):
    headers = {"Content-Type": "application/json"}
    headers.update(kw.pop("headers", {}) or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers
