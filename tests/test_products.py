"""
test_products.py -- the catalogue: admin-only writes, validation of
every field, decimals in and out, search, sort, pagination, and a cache
that never serves a stale price after a write.
"""
import requests

from util import admin_token, error, new_user


def create(stack, token, **body):
    r = stack.post("/api/products", body, token=token)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_read_update_delete(stack):
    admin = admin_token(stack)
    p = create(stack, admin, title="  Blue Mug ", price=19.99, stock=5)
    assert p["title"] == "Blue Mug" and p["price"] == 19.99
    assert p["stock"] == 5 and p["_id"] == p["id"]
    assert stack.db.products.find_one({"title": "Blue Mug"})["price"] == 1999
    r = stack.get(f"/api/products/{p['id']}")
    assert r.status_code == 200 and r.json()["price"] == 19.99
    r = stack.request("PUT", f"/api/products/{p['id']}",
                      {"title": "Red Mug", "price": 20, "stock": 7},
                      token=admin)
    assert r.status_code == 200
    assert r.json()["title"] == "Red Mug" and r.json()["price"] == 20
    r = stack.request("PATCH", f"/api/products/{p['id']}", {"price": 0.5},
                      token=admin)
    assert r.status_code == 200
    assert r.json()["price"] == 0.5 and r.json()["stock"] == 7
    r = stack.request("DELETE", f"/api/products/{p['id']}", token=admin)
    assert r.status_code == 204 and r.text == ""
    assert stack.get(f"/api/products/{p['id']}").status_code == 404
    r = stack.request("DELETE", f"/api/products/{p['id']}", token=admin)
    assert r.status_code == 404


def test_create_answers_location(stack):
    p = stack.post("/api/products", {"title": "Loc", "price": 1, "stock": 1},
                   token=admin_token(stack))
    assert p.headers["Location"] == f"/api/products/{p.json()['id']}"


def test_writes_are_admin_only(stack):
    _, customer = new_user(stack)
    body = {"title": "x", "price": 1, "stock": 1}
    r = stack.post("/api/products", body)
    assert r.status_code == 401
    r = stack.post("/api/products", body, token=customer)
    assert r.status_code == 403 and error(r)["code"] == "admin_only"
    pid = create(stack, admin_token(stack), **body)["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        r = stack.request(method, f"/api/products/{pid}",
                          None if method == "DELETE" else body,
                          token=customer)
        assert r.status_code == 403, method


def test_every_field_is_validated(stack):
    admin = admin_token(stack)
    cases = [
        ({"title": "x", "price": 19.999, "stock": 1}, "invalid_price",
         "price"),
        ({"title": "x", "price": -1, "stock": 1}, "invalid_price", "price"),
        ({"title": "x", "price": 1000000.01, "stock": 1}, "invalid_price",
         "price"),
        ({"title": "x", "price": "19.99", "stock": 1}, "invalid_type",
         "price"),
        ({"title": "x", "price": 1, "stock": -1}, "out_of_range", "stock"),
        ({"title": "x", "price": 1, "stock": 1.5}, "invalid_type", "stock"),
        ({"title": "x", "price": 1, "stock": "7"}, "invalid_type", "stock"),
        ({"title": "", "price": 1, "stock": 1}, "invalid_value", "title"),
        ({"title": "t" * 201, "price": 1, "stock": 1}, "invalid_value",
         "title"),
        ({"title": {"$gt": ""}, "price": 1, "stock": 1}, "invalid_type",
         "title"),
        ({"price": 1, "stock": 1}, "missing_field", "title"),
        ({"title": "x", "stock": 1}, "missing_field", "price"),
        ({"title": "x", "price": 1}, "missing_field", "stock"),
        ({"title": "x", "price": 1, "stock": 1, "sku": "a"},
         "unknown_field", "sku"),
    ]
    for body, code, field in cases:
        r = stack.post("/api/products", body, token=admin)
        assert r.status_code == 400, (body, r.text)
        assert error(r)["code"] == code, (body, r.text)
        assert error(r)["field"] == field, (body, r.text)
    pid = create(stack, admin, title="v", price=1, stock=1)["id"]
    r = stack.request("PATCH", f"/api/products/{pid}", {}, token=admin)
    assert r.status_code == 400
    r = stack.request("PUT", f"/api/products/{pid}", {"price": 2},
                      token=admin)
    assert r.status_code == 400 and error(r)["field"] == "title"


def test_malformed_and_unknown_ids(stack):
    assert stack.get("/api/products/123").status_code == 400
    assert error(stack.get("/api/products/zzzz"))["code"] == "invalid_id"
    r = stack.get("/api/products/0123456789abcdef01234567")
    assert r.status_code == 404 and error(r)["code"] == "product_not_found"


def test_list_paginates_searches_and_sorts(stack):
    admin = admin_token(stack)
    tag = f"zeta{id(stack)}"
    for i, price in enumerate([5, 1.25, 3, 2, 4]):
        create(stack, admin, title=f"{tag} item {i}", price=price, stock=i)
    r = stack.get(f"/api/products?q={tag.upper()}&sort=price&limit=2")
    body = r.json()
    assert r.status_code == 200
    assert body["total"] == 5 and body["limit"] == 2 and body["offset"] == 0
    assert [p["price"] for p in body["items"]] == [1.25, 2]
    body = stack.get(f"/api/products?q={tag}&sort=price&limit=2&offset=4")\
        .json()
    assert [p["price"] for p in body["items"]] == [5]
    body = stack.get(f"/api/products?q={tag}&sort=-price").json()
    assert [p["price"] for p in body["items"]] == [5, 4, 3, 2, 1.25]
    body = stack.get(f"/api/products?q={tag}&sort=title").json()
    assert body["items"][0]["title"].endswith("item 0")
    body = stack.get(f"/api/products?q={tag}").json()   # newest first
    assert body["items"][0]["title"].endswith("item 4")
    assert stack.get("/api/products?q=.*").json()["total"] == 0


def test_list_rejects_bad_parameters(stack):
    for qs in ("limit=0", "limit=101", "limit=abc", "offset=-1",
               "sort=stock", "sort=", "q=" + "x" * 300, "limit=%zz",
               "sort=price&sort=title", "limit=5&limit=6"):
        r = stack.get(f"/api/products?{qs}")
        assert r.status_code == 400, qs
        assert error(r)["code"] == "invalid_query", qs
    assert stack.get("/api/products").json()["limit"] == 20


def test_search_lengths_count_characters_not_bytes(stack):
    """maxLength counts characters (as the spec and JSON Schema do): 200
    two-byte or combining characters are a valid search, 201 are not;
    bytes that are not UTF-8 are refused, never ignored."""
    admin = admin_token(stack)
    for path, most in (("/api/products", 200), ("/api/users", 254)):
        for text in ("\u00e9" * most, "o\u0336" * (most // 2)):
            r = stack.get(path, token=admin, params={"q": text})
            assert r.status_code == 200, (path, r.text)
        r = stack.get(path, token=admin, params={"q": "\u00e9" * (most + 1)})
        assert r.status_code == 400 and error(r)["field"] == "q", path
        r = stack.get(f"{path}?q=%C3%28", token=admin)
        assert r.status_code == 400 and error(r)["field"] == "q", path


def test_cache_never_serves_a_stale_price(stack):
    admin = admin_token(stack)
    tag = f"cache{id(stack)}"
    p = create(stack, admin, title=f"{tag} lamp", price=10, stock=3)
    url = f"/api/products?q={tag}"
    for _ in range(5):                       # warm every API process
        assert stack.get(url).json()["items"][0]["price"] == 10
        assert stack.get(f"/api/products/{p['id']}").json()["price"] == 10
    for price in (11.5, 12.25, 13):
        r = stack.request("PATCH", f"/api/products/{p['id']}",
                          {"price": price}, token=admin)
        assert r.status_code == 200
        for _ in range(6):
            assert stack.get(url).json()["items"][0]["price"] == price
            assert stack.get(f"/api/products/{p['id']}").json()["price"] \
                == price
    stack.request("DELETE", f"/api/products/{p['id']}", token=admin)
    assert stack.get(url).json()["total"] == 0
    assert stack.get(f"/api/products/{p['id']}").status_code == 404


def test_catalogue_reads_work_while_redis_is_down(fresh_stack):
    s = fresh_stack(workers=0)
    admin = admin_token(s)
    p = create(s, admin, title="offline", price=3, stock=1)
    s.stop_redis()
    r = s.get(f"/api/products/{p['id']}")
    assert r.status_code == 200 and r.json()["price"] == 3
    assert s.get("/api/products").json()["total"] == 1


def test_concurrent_reads_after_a_write_all_see_it(stack):
    import concurrent.futures
    admin = admin_token(stack)
    tag = f"herd{id(stack)}"
    p = create(stack, admin, title=f"{tag} chair", price=40, stock=2)
    url = f"/api/products?q={tag}"
    stack.get(url)
    stack.request("PATCH", f"/api/products/{p['id']}", {"price": 41.5},
                  token=admin)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        prices = list(pool.map(
            lambda _: stack.get(url).json()["items"][0]["price"],
            range(64)))
    assert prices == [41.5] * 64
