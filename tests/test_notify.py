"""
test_notify.py -- order emails and webhooks from the outbox, delivered
by the notifier process (notifier/) to a real SMTP sink
(scripts/smtp_sink.py) and a webhook receiver run here; and shopctl's
tools for parked notifications and dead-lettered checkouts.
"""
import base64
import hashlib
import hmac
import http.server
import json
import re
import signal
import threading
import time

import bson
import pytest

from stack import Stack, wait_until
from test_checkout import buyer, checkout_waiting
from util import product

SECRET_BYTES = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()


class Receiver:
    """A webhook receiver: checks each signature, answers 500 to the
    first `fail` deliveries, can hold one answer `hold` seconds."""

    def __init__(self, fail=0, hold=0):
        self.fail, self.hold = fail, hold
        self.calls, self.bad = [], []
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                me.record(self.headers, body)
                if me.hold:
                    hold, me.hold = me.hold, 0
                    time.sleep(hold)
                code = 500 if me.fail > 0 else 204
                me.fail -= 1
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def record(self, headers, body):
        msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
        want = base64.b64encode(hmac.new(
            SECRET_BYTES, f"{msg_id}.{ts}.".encode() + body,
            hashlib.sha256).digest()).decode()
        ok = headers["webhook-signature"] == f"v1,{want}"
        (self.calls if ok else self.bad).append(
            (msg_id, json.loads(body)))

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def notify_stack(fresh, receiver_url=None, **env):
    base = {"NOTIFY_BACKOFF_MS": "200", "NOTIFY_BACKOFF_MAX_MS": "1000",
            "NOTIFY_TIMEOUT_MS": "2000"}
    if receiver_url:
        base.update({"WEBHOOK_URLS": receiver_url, "WEBHOOK_SECRET": SECRET})
    base.update(env)
    s = Stack(workers=1, name="notify", env=base, notify=True)
    fresh.append(s)
    return s.start()


@pytest.fixture
def stacks():
    made = []
    yield made
    for s in made:
        s.cleanup()


def sale(stack, stock, people):
    """people buyers of one product with stock units, each waiting for
    the result: {email: (status code, body)}."""
    pid = product(stack, price=12.5, stock=stock, title="Blue mug")
    out = {}
    for _ in range(people):
        user, token = buyer(stack, [(pid, 2)])
        r = checkout_waiting(stack, token)
        out[user["email"]] = (r.status_code, r.json())
    return pid, out


def outbox_done(stack, n):
    return stack.db.outbox.count_documents({"state": "done"}) >= n


def test_one_email_per_completed_order_and_none_for_failures(stacks):
    s = notify_stack(stacks)
    _, results = sale(s, stock=6, people=5)
    completed = {e: b for e, (c, b) in results.items() if c == 201}
    failed = [e for e, (c, _) in results.items() if c == 409]
    assert len(completed) == 3 and len(failed) == 2
    wait_until(lambda: len(s.mails()) >= 3, 30, "three emails")
    time.sleep(1)   # none more come
    mails = s.mails()
    assert sorted(m["To"] for m in mails) == sorted(completed)
    for m in mails:
        order = completed[m["To"]]
        text = m.get_payload(decode=True).decode().replace("\r\n", "\n")
        assert order["id"] in m["Subject"] and order["id"] in text
        assert "2 x Blue mug at 12.50" in text
        assert re.search(r"^Total: 25\.00$", text, re.M), text
        assert m["From"] == "orders@shop.test"
        assert m["Message-ID"] == f"<evt_{order['id']}@checkout>"
    wait_until(lambda: outbox_done(s, 3), 10, "outbox done")


def test_delivered_notifications_are_removed_after_notify_keep_done(stacks):
    s = notify_stack(stacks, NOTIFY_KEEP_DONE="1")
    _, results = sale(s, stock=2, people=1)
    (code, order), = results.values()
    assert code == 201
    wait_until(lambda: len(s.mails()) == 1, 30, "the email")
    wait_until(lambda: s.db.outbox.count_documents({}) == 0, 20,
               "the delivered document removed")
    assert s.db.orders.find_one({"_id": bson.ObjectId(order["id"])})
    assert "removed delivered notifications" in s.log("notifier")


def test_webhooks_are_signed_retried_and_keep_their_id(stacks, receiver):
    hook = receiver(fail=2)
    s = notify_stack(stacks, hook.url)
    _, results = sale(s, stock=2, people=1)
    (code, order), = results.values()
    assert code == 201
    wait_until(lambda: len(hook.calls) >= 3, 30, "three deliveries")
    assert hook.bad == []
    ids = {c[0] for c in hook.calls}
    assert ids == {f"evt_{order['id']}"}     # one event, retried
    event = hook.calls[-1][1]
    assert event["type"] == "order.completed"
    assert event["id"] == f"evt_{order['id']}"
    assert event["data"]["order"]["total"] == 25
    wait_until(lambda: outbox_done(s, 1), 10, "delivered")
    doc = s.db.outbox.find_one({"_id": bson.ObjectId(order["id"])})
    hook_target = [t for t in doc["targets"] if t["kind"] == "webhook"][0]
    assert hook_target["state"] == "sent" and hook_target["attempts"] == 2
    assert hook_target["lastError"] == ""
    # The log names the receiver by its origin: a path may hold a token.
    log = s.log("notifier")
    assert hook.url.rsplit("/", 1)[0] in log and "/hook" not in log


def test_a_failing_mail_server_never_delays_a_checkout(stacks):
    s = notify_stack(stacks, SMTP_URL="smtp://127.0.0.1:9",
                     SMTP_TLS="none")
    start = time.time()
    _, results = sale(s, stock=10, people=3)
    assert time.time() - start < 15
    assert [c for c, _ in results.values()] == [201, 201, 201]
    wait_until(lambda: s.db.outbox.count_documents(
        {"targets.attempts": {"$gte": 2}}) == 3, 30, "retries")
    assert s.db.orders.count_documents({}) == 3


def test_a_notifier_killed_mid_send_resumes(stacks, receiver):
    hook = receiver(hold=4)
    s = notify_stack(stacks, hook.url, SMTP_URL="", NOTIFY_TIMEOUT_MS="6000")
    _, results = sale(s, stock=2, people=1)
    (_, order), = results.values()
    wait_until(lambda: len(hook.calls) == 1, 20, "the first send")
    s.stop_notifier(signal.SIGKILL)     # while the receiver holds it
    s.start_notifier()
    # The claim expires (lease: timeout x targets + 5 s) and it is resent.
    wait_until(lambda: len(hook.calls) >= 2, 40, "the send again")
    assert {c[0] for c in hook.calls} == {f"evt_{order['id']}"}
    wait_until(lambda: outbox_done(s, 1), 20, "recorded")


def test_parked_notifications_are_shown_replayed_and_dropped(stacks,
                                                             receiver):
    hook = receiver(fail=10 ** 6)
    s = notify_stack(stacks, hook.url, SMTP_URL="", NOTIFY_RETRY_FOR="2")
    _, results = sale(s, stock=4, people=2)
    orders = [b["id"] for _, b in results.values()]
    wait_until(lambda: s.db.outbox.count_documents(
        {"state": "parked"}) == 2, 30, "parked")
    listing = s.shopctl("outbox", "list")
    assert listing.returncode == 0, listing.stderr
    for oid in orders:
        assert oid in listing.stdout
    assert "HTTP 500" in listing.stdout and "2 parked" in listing.stdout
    wait_until(lambda: 'notify_parked 2' in s.get("/metrics").text, 15,
               "the parked gauge")
    hook.fail = 0
    r = s.shopctl("outbox", "replay", orders[0])
    assert r.returncode == 0 and "1 notification" in r.stdout, r.stdout
    wait_until(lambda: s.db.outbox.find_one(
        {"_id": bson.ObjectId(orders[0])})["state"] == "done", 20, "resent")
    r = s.shopctl("outbox", "drop", orders[1])
    assert r.returncode == 0, r.stderr
    doc = s.db.outbox.find_one({"_id": bson.ObjectId(orders[1])})
    assert doc["state"] == "done"
    assert [t["state"] for t in doc["targets"]] == ["dropped"]
    assert s.shopctl("outbox", "drop", orders[1]).returncode == 1
    assert "0 parked" in s.shopctl("outbox", "list").stdout


def dead_letter(stack, pid):
    """A checkout that is dead-lettered: its job delivered too often.
    Returns (checkoutId, token)."""
    user, token = buyer(stack, [(pid, 1)])
    r = stack.post("/api/checkout", {}, token=token)
    assert r.status_code == 202, r.text
    return r.json()["checkoutId"], token


def test_dlq_list_replay_and_drop(fresh_stack):
    # Workers that dead-letter every job at once: MAX_DELIVERIES=1 and a
    # first delivery that never ends (no worker), then one that reclaims.
    s = fresh_stack(workers=0, env={"MAX_DELIVERIES": "1",
                                    "RECLAIM_IDLE_MS": "300"})
    s.redis.xgroup_create("checkout:jobs", "checkout-workers", id="0",
                          mkstream=True)
    pid = product(s, stock=5)
    cids = [dead_letter(s, pid)[0] for _ in range(3)]
    # Deliver each once without finishing it, as a worker that died.
    s.redis.xreadgroup("checkout-workers", "dead-one",
                       {"checkout:jobs": ">"}, count=10)
    time.sleep(0.4)
    s.redis.xautoclaim("checkout:jobs", "checkout-workers", "dead-two",
                       100, "0-0", count=10)
    time.sleep(0.4)
    s.start_worker()
    wait_until(lambda: s.redis.xlen("checkout:dead") == 3, 30, "dead")
    assert all(s.redis.hget(f"checkout:{c}", "status") == "failed"
               for c in cids)
    listing = s.shopctl("dlq", "list")
    assert listing.returncode == 0, listing.stderr
    for c in cids:
        assert c in listing.stdout
    assert "delivered" in listing.stdout and "3 dead-lettered" in \
        listing.stdout
    entries = s.redis.xrange("checkout:dead")
    first = entries[0][0]
    # An order made meanwhile for the second: reported, not re-run.
    s.db.orders.insert_one({"checkoutId": entries[1][1]["checkoutId"],
                            "userId": bson.ObjectId(), "items": [],
                            "total": 0})
    r = s.shopctl("dlq", "replay", entries[1][0])
    assert r.returncode == 1 and "has order" in r.stdout, r.stdout
    # The first is re-run, as submitted, and completes.
    s.stop_worker(s.workers[0])
    s.env["MAX_DELIVERIES"] = "5"
    s.start_worker()
    r = s.shopctl("dlq", "replay", first)
    assert r.returncode == 0 and "re-queued" in r.stdout, r.stdout
    cid = entries[0][1]["checkoutId"]
    wait_until(lambda: s.redis.hget(f"checkout:{cid}", "status") ==
               "completed", 30, "the replayed checkout")
    assert s.db.orders.count_documents({"checkoutId": cid}) == 1
    r = s.shopctl("dlq", "drop", entries[2][0])
    assert r.returncode == 0 and "dropped" in r.stdout
    left = [e[0] for e in s.redis.xrange("checkout:dead")]
    assert left == [entries[1][0]]
    assert s.shopctl("dlq", "drop", "1-1").returncode == 1
