"""
test_fuzz_findings.py -- every case schemathesis (tests/test_openapi.py,
a random seed each run) has ever found, kept as a fixed example, so that
none can come back unnoticed when the fuzzer's luck changes.  Each test
names the finding; the fix lives where its docstring says.
"""
import requests

from test_checkout import buyer
from util import admin_token, error, new_user, product


def post_raw(stack, path, text, token=None):
    head = {"Content-Type": "application/json"}
    if token:
        head["Authorization"] = f"Bearer {token}"
    return requests.post(stack.url(path), data=text.encode(), headers=head,
                         timeout=10)


def test_a_price_below_a_cent_is_refused(stack):
    """PATCH {"price": 4.878795380330904e-25} was stored as 0.00 (201):
    money is parsed from the number's text (shared/money.c)."""
    pid = product(stack, 1, 1)
    admin = admin_token(stack)
    for text in ('{"price": 4.878795380330904e-25}', '{"price": 1e-9}',
                 '{"price": 19.990000001}', '{"price": -0.0}'):
        r = requests.patch(stack.url(f"/api/products/{pid}"),
                           data=text.encode(), timeout=10, headers={
                               "Content-Type": "application/json",
                               "Authorization": f"Bearer {admin}"})
        assert r.status_code == 400, (text, r.text)
        assert error(r)["field"] == "price"
    assert stack.get(f"/api/products/{pid}").json()["price"] == 1


def test_a_dead_letter_id_beyond_64_bits_is_not_found(stack):
    """A 20-digit stream id fits the spec's pattern but not Redis' 64
    bits: it answered 500 (api/admin.c), now 404."""
    admin = admin_token(stack)
    huge = "51146449471162783541-1630"
    r = stack.post(f"/api/admin/deadletters/{huge}/replay", {}, token=admin)
    assert r.status_code == 404, r.text
    r = stack.request("DELETE", f"/api/admin/deadletters/{huge}",
                      token=admin)
    assert r.status_code == 404, r.text


def test_null_for_an_optional_field_is_a_type_error(stack):
    """{"role": null} was taken as "absent" and accepted (200)."""
    user, _ = new_user(stack, "nullrole")
    r = stack.request("PATCH", f"/api/users/{user['id']}", {"role": None},
                      token=admin_token(stack))
    assert r.status_code == 400 and error(r)["field"] == "role", r.text


def test_a_whole_number_written_2_0_is_an_integer(stack):
    """JSON Schema's integer includes 2.0: it was refused."""
    a = product(stack, 1, 5)
    _, token = new_user(stack, "twopointoh")
    r = post_raw(stack, "/api/cart/me",
                 '{"productId": "%s", "quantity": 2.0}' % a, token)
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["quantity"] == 2


def test_a_duplicate_key_is_named(stack):
    r = post_raw(stack, "/api/auth/login",
                 '{"email": "a@x.io", "email": "b@x.io", "password": "x"}')
    assert r.status_code == 400
    assert "same key twice" in error(r)["message"]


def test_a_title_of_control_characters_is_refused(stack):
    r = stack.post("/api/products", {"title": "\u0001\u0002\u0003",
                                     "price": 1, "stock": 1},
                   token=admin_token(stack))
    assert r.status_code == 400 and error(r)["field"] == "title", r.text


def test_a_search_counts_characters_not_bytes(stack):
    """A 100-character ?q= in another script was refused (bytes counted);
    non-UTF-8 ?q= on /api/users listed everyone."""
    r = stack.get("/api/products?q=" + "é" * 100)
    assert r.status_code == 200, r.text
    r = requests.get(stack.url("/api/users?q=%ff%fe"), timeout=10,
                     headers={"Authorization":
                              f"Bearer {admin_token(stack)}"})
    assert r.status_code == 400 and error(r)["field"] == "q", r.text


def test_a_query_parameter_given_twice_is_refused(stack):
    r = stack.get("/api/products?limit=5&limit=500")
    assert r.status_code == 400 and error(r)["field"] == "limit", r.text
    r = stack.get("/api/products?sort=price&sort=nonsense")
    assert r.status_code == 400, r.text


def test_large_headers_are_read(stack):
    """kore dropped connections with more than 4 KiB of headers (a 502
    behind nginx): 16 KiB are read."""
    r = requests.get(stack.url("/health"), timeout=10,
                     headers={"X-Large": "x" * 12000})
    assert r.status_code == 200


def test_a_cart_write_then_checkout_still_completes(stack):
    """The examples above leave the shared stack as they found it."""
    a = product(stack, 1, 5)
    _, token = buyer(stack, [(a, 1)])
    r = stack.post("/api/checkout", {}, token=token,
                   headers={"Prefer": "wait=10"})
    assert r.status_code == 201, r.text


def test_a_wait_of_any_size_is_shortened(stack):
    """?wait=24485969620787634634752 fits the spec (no maximum: longer
    waits are shortened to CHECKOUT_WAIT_MAX, as Prefer: wait is) but
    overflowed the parser: 400.  A final checkout answers at once."""
    a = product(stack, 1, 5)
    _, token = buyer(stack, [(a, 1)])
    r = stack.post("/api/checkout", {}, token=token,
                   headers={"Prefer": "wait=10"})
    cid = r.json()["checkoutId"]
    for wait in ("24485969620787634634752", "9" * 400, "31", "0"):
        r = stack.get(f"/api/checkout/{cid}?wait={wait}", token=token)
        assert r.status_code == 200, (wait, r.text)
    for wait in ("-1", "1.5", "", "abc"):
        r = stack.get(f"/api/checkout/{cid}?wait={wait}", token=token)
        assert r.status_code == 400, (wait, r.text)
