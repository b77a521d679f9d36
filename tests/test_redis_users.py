"""
test_redis_users.py -- least privilege in Redis (ops/redis/make-acl.sh):
the API, the workers, the notifier and shopctl each log in as their own
Redis user.  The programs work as before; none but shopctl can load the
checkout library, and none can flush, reconfigure or script Redis.
"""
import redis

from stack import wait_until
from test_checkout import buyer, checkout_waiting
from util import product


def as_user(s, program):
    url = s.program_env[program]["REDIS_URL"]
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def refused(client, *command):
    try:
        client.execute_command(*command)
    except redis.exceptions.NoPermissionError as e:
        return "NOPERM" in str(e) or "permission" in str(e)
    except redis.exceptions.ResponseError as e:
        return "NOPERM" in str(e)
    return False


def test_each_program_runs_as_its_own_redis_user(fresh_stack):
    s = fresh_stack(workers=1, notify=True, acl=True)
    a = product(s, 2, 5)
    _, token = buyer(s, [(a, 1)])
    r = checkout_waiting(s, token)
    assert r.status_code == 201, r.text                 # API and worker
    wait_until(lambda: len(s.mails()) == 1, 30, "the order email")
    r = s.shopctl("dlq", "list")                        # shopctl
    assert r.returncode == 0, r.stderr
    for program in ("api", "worker", "notifier"):
        c = as_user(s, program)
        assert c.execute_command("ROLE")[0] == "master"
        for command in (("FLUSHALL",), ("CONFIG", "GET", "maxmemory"),
                        ("FUNCTION", "LOAD", "REPLACE",
                         "#!lua name=evil\nredis.register_function("
                         "'x', function() return 1 end)"),
                        ("FUNCTION", "FLUSH"), ("EVAL", "return 1", "0"),
                        ("REPLICAOF", "NO", "ONE"), ("KEYS", "*")):
            assert refused(c, *command), (program, command)
    # shopctl's user loads the library; it cannot flush it either.
    assert refused(as_user(s, "shopctl"), "FUNCTION", "FLUSH")
    assert s.redis.dbsize() > 0                         # nothing flushed


def test_a_redis_without_this_builds_library_is_refused(fresh_stack):
    """The API and workers no longer load the library: they check for
    exactly their own build of it and refuse the connection otherwise
    (saying to run shopctl migrate), which loads it."""
    s = fresh_stack(workers=0)
    s.redis.execute_command("FUNCTION", "DELETE", "checkout")
    s.stop_api()
    s.start_api()
    wait_until(lambda: "run shopctl migrate" in s.log("api"), 15,
               "the API's complaint")
    assert s.get("/ready").status_code == 503
    assert s.shopctl("migrate").returncode == 0
    wait_until(lambda: s.get("/ready").status_code == 200, 15,
               "ready once migrated")


def test_a_library_lost_under_a_running_api_is_a_503(fresh_stack):
    """FUNCTION DELETE while the API runs: a submit is answered 503 with
    Retry-After (Redis is not ready for us), never a 500; the API says
    to run shopctl migrate, and checkouts go on once it has."""
    s = fresh_stack(workers=0)
    _, token = buyer(s, [(product(s, 2.0, 5), 1)])
    s.redis.execute_command("FUNCTION", "DELETE", "checkout")
    r = s.post("/api/checkout", {}, token=token)
    assert r.status_code == 503, r.text
    assert "retry-after" in {k.lower() for k in r.headers}
    wait_until(lambda: "redis lost the checkout library" in s.log("api"),
               15, "the API's complaint")
    assert s.get("/ready").status_code == 503
    assert s.shopctl("migrate").returncode == 0
    wait_until(lambda: s.get("/ready").status_code == 200, 15,
               "ready once migrated")
    r = s.post("/api/checkout", {}, token=token)
    assert r.status_code == 202, r.text
