"""
test_browser.py -- the consoles in a real browser (headless Chromium from
Debian, driven by Selenium): a shopper logs in, buys, sees the queue
position and the result, and cancels; an operator watches the queue rise
with a burst of 500 submits and fall, and replays a dead letter by
clicking; a product titled with markup shows those characters and runs
nothing.  Screenshots go to build/screenshots/ (each printed).
"""
import os
import shutil
import tempfile
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException,
                                        StaleElementReferenceException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from stack import ROOT
from test_checkout import buyer, checkout_waiting
from test_invariants import buyers, submit_all, wait_final
from util import product

CHROME = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROME) and os.path.exists(DRIVER)):
        pytest.fail("chromium and chromium-driver are missing: "
                    "scripts/deps.sh installs them")
    profile = tempfile.mkdtemp(prefix="checkout-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROME
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--window-size=1280,1000",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    os.environ["SE_OFFLINE"] = "true"      # never download a driver
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.implicitly_wait(0)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


SHOTS = ROOT / "build/screenshots"


def shot(d, stack, name):
    """A screenshot into build/screenshots/ (kept after the run)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    d.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def wait(d, cond, seconds=20):
    # The console redraws its tables every second: an element found may
    # be replaced before it is read; then look again.
    return WebDriverWait(d, seconds, poll_frequency=0.1, ignored_exceptions=(
        StaleElementReferenceException,)).until(cond)


def click(d, css):
    """Click what css finds, again if a redraw replaced it meanwhile."""
    def go(d):
        d.find_element(By.CSS_SELECTOR, css).click()
        return True
    wait(d, go)


def text_of(d, css):
    return d.find_element(By.CSS_SELECTOR, css).text


def admin_login(d, s):
    """The ops console, from a fresh session, logged in as s's admin."""
    d.get(s.url("/admin"))
    d.execute_script("sessionStorage.clear()")
    d.get(s.url("/admin"))
    d.find_element(By.ID, "email").send_keys(s.env["ADMIN_EMAIL"])
    d.find_element(By.ID, "password").send_keys(s.env["ADMIN_PASSWORD"])
    d.find_element(By.CSS_SELECTOR, "#login-form button").click()


def test_a_shopper_buys_sees_the_queue_and_cancels(fresh_stack, browser):
    s = fresh_stack(workers=1)
    product(s, 12.5, 5, title="Blue mug")
    d = browser
    d.get(s.url("/shop"))
    wait(d, ec.presence_of_element_located((By.CSS_SELECTOR,
                                            "#products button")))
    d.find_element(By.ID, "email").send_keys("ann@example.com")
    d.find_element(By.ID, "password").send_keys("correct-horse-1")
    d.find_element(By.ID, "register").click()
    wait(d, lambda d: text_of(d, "#who") == "ann@example.com")
    assert d.execute_script("return sessionStorage.getItem('token')")
    assert d.get_cookies() == []                  # no cookie holds it
    click(d, "#products button")
    wait(d, lambda d: "× 1" in text_of(d, "#cart"))
    for w in list(s.workers):                     # the checkout waits
        s.stop_worker(w)
    d.find_element(By.ID, "checkout").click()
    wait(d, lambda d: "position 0" in text_of(d, "#checkout-status"))
    shot(d, s, "shop-queued")
    s.start_worker()
    wait(d, lambda d: d.find_element(By.ID, "checkout-status")
         .get_attribute("data-status") == "completed")
    wait(d, lambda d: "confirmed" in text_of(d, "#orders"))
    shot(d, s, "shop")
    click(d, "#orders button[data-cancel]")
    wait(d, lambda d: "cancelled" in text_of(d, "#orders"))
    order = s.db.orders.find_one({})
    assert order["status"] == "cancelled"
    assert s.db.products.find_one({})["stock"] == 5     # back on sale


def test_markup_in_a_title_is_shown_as_text(stack, browser):
    title = "<img src=x onerror=alert(1)>"
    product(stack, 1, 1, title=title)
    d = browser
    d.get(stack.url("/shop"))
    d.execute_script("sessionStorage.clear()")
    d.get(stack.url("/shop"))
    wait(d, lambda d: title in text_of(d, "#products"))
    assert d.find_elements(By.CSS_SELECTOR, "#products img") == []
    try:
        d.switch_to.alert
        alerted = True
    except NoAlertPresentException:
        alerted = False
    assert not alerted
    # A phone-sized screen: nothing wider than it; the form by keyboard.
    d.set_window_size(390, 844)
    try:
        d.get(stack.url("/shop"))
        wait(d, lambda d: title in text_of(d, "#products"))
        assert d.execute_script("return document.documentElement."
                                "scrollWidth <= window.innerWidth")
        d.find_element(By.ID, "email").click()
        focused = d.switch_to.active_element.get_attribute("id")
        assert focused == "email"
    finally:
        d.set_window_size(1280, 1000)
    r = stack.get("/shop")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_an_operator_watches_a_burst_and_replays_a_dead_letter(
        fresh_stack, browser):
    s = fresh_stack(workers=1, env={"SUBMIT_LIMIT": "1000",
                                    "MAX_DELIVERIES": "1",
                                    "RECLAIM_IDLE_MS": "300"})
    d = browser
    admin_login(d, s)
    wait(d, lambda d: text_of(d, "#waiting") == "0")
    # A burst of 500 submits while no worker runs: the queue rises...
    a = product(s, 1, 1000)
    people = buyers(s, 500, a)
    for w in list(s.workers):
        s.stop_worker(w)
    ids = submit_all(s, people)
    wait(d, lambda d: text_of(d, "#waiting") == "500")
    shot(d, s, "admin-burst")
    # ... and falls once a worker drains it.
    s.env["MAX_DELIVERIES"] = "5"
    s.start_worker()
    wait(d, lambda d: text_of(d, "#waiting") == "0", 60)
    wait(d, lambda d: "worker" in text_of(d, "#workers"))
    assert set(wait_final(s, ids)) == {"completed"}
    # A dead letter: its job delivered once by a consumer that died.
    s.stop_worker(s.workers[-1])
    s.env["MAX_DELIVERIES"] = "1"
    cid = submit_all(s, buyers(s, 1, a))[0]
    s.redis.xreadgroup("checkout-workers", "dead-one",
                       {"checkout:jobs": ">"}, count=10)
    time.sleep(0.4)
    s.start_worker()
    wait(d, lambda d: cid in text_of(d, "#dead"), 30)
    shot(d, s, "admin")
    s.stop_worker(s.workers[-1])
    s.env["MAX_DELIVERIES"] = "5"
    s.start_worker()
    click(d, "#dead button[data-replay]")
    wait(d, lambda d: "queued again" in text_of(d, "#dead-msg"))
    deadline = time.time() + 30
    while s.redis.hget(f"checkout:{cid}", "status") != "completed":
        assert time.time() < deadline, "the replayed checkout never ended"
        time.sleep(0.1)
    wait(d, lambda d: cid not in text_of(d, "#dead"))


def test_the_api_docs_render_under_their_policy(stack, browser):
    """/docs runs only the bundled Redoc, under a Content-Security-Policy
    (its injected styles and search worker allowed, nothing else); JSON
    answers are never cached, sniffed or framed."""
    r = stack.get("/docs")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    d = browser
    d.get(stack.url("/docs"))
    wait(d, lambda d: "A checkout's status" in d.find_element(
        By.TAG_NAME, "body").text, 30)
    r = stack.get("/api/products")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_an_operator_records_a_payment_and_a_refund(fresh_stack, browser):
    """The console's order actions beyond fulfil and cancel: a payment
    recorded for an order awaiting it, then, once cancelled, its refund
    marked done; each asks for the provider's reference."""
    s = fresh_stack(workers=1, env={"PAYMENT_WINDOW_S": "600"})
    a = product(s, 3, 5)
    _, token = buyer(s, [(a, 1)])
    r = checkout_waiting(s, token)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    d = browser
    admin_login(d, s)
    wait(d, lambda d: oid in text_of(d, "#orders"))
    click(d, f'#orders button[data-pay="{oid}"]')
    prompt = WebDriverWait(d, 10).until(lambda d: d.switch_to.alert)
    prompt.send_keys("pay_console_1")
    prompt.accept()
    wait(d, lambda d: "confirmed" in text_of(d, "#orders"))
    order = s.get(f"/api/orders/{oid}", token=token).json()
    assert order["status"] == "confirmed"
    assert s.post(f"/api/orders/{oid}/cancel", {}, token=token).status_code \
        == 200
    d.find_element(By.CSS_SELECTOR, "#orders-form button").click()
    wait(d, lambda d: "refund due" in text_of(d, "#orders"))
    click(d, f'#orders button[data-refund="{oid}"]')
    prompt = WebDriverWait(d, 10).until(lambda d: d.switch_to.alert)
    prompt.send_keys("re_console_1")
    prompt.accept()
    wait(d, lambda d: "refund refunded" in text_of(d, "#orders"))
    order = s.get(f"/api/orders/{oid}", token=token).json()
    assert order["refund"]["status"] == "refunded"
    shot(d, s, "admin-orders")
