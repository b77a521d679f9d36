"""
report.py -- bench/results-rs.json and bench/results-py.json (from
BENCH_DB=py) as bench/REPORT.md, the two database servers side by side.

`python bench/report.py` re-renders the report from the last results;
the narrative (what the numbers mean, the bottlenecks found) lives in
bench/NOTES.md and is included as it is.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = (("rs", "results-rs.json", "Rust server (default)"),
        ("py", "results-py.json", "Python server"))


def load_runs():
    out = []
    for key, name, label in RUNS:
        path = ROOT / "bench" / name
        if path.exists():
            out.append((key, label, json.loads(path.read_text())))
    return out


def get(r, *path):
    cur = r["scenarios"]
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def table(runs, rows, first="Measure"):
    out = ["| " + first + " | " + " | ".join(lbl for _, lbl, _ in runs) +
           " |", "|---" * (len(runs) + 1) + "|"]
    for name, fn in rows:
        out.append(f"| {name} | " + " | ".join(fn(r) for _, _, r in runs) +
                   " |")
    return out + [""]


def kept_from_earlier(r):
    """ " Kept from earlier runs: <scenarios> (<day>); ..." for the
    scenarios the last run did not measure (bench/run.py NAME... runs
    some and keeps the others' figures), else ""."""
    days = {}
    for name, when in sorted((r.get("measured") or {}).items()):
        if when and when < r["when"]:
            days.setdefault(when[:10], []).append(name)
    if not days:
        return ""
    return " Kept from earlier runs: " + "; ".join(
        f"{', '.join(names)} ({day})" for day, names in sorted(days.items())
    ) + "."


def spread(r, path, key, unit="", more=()):
    """ "; N runs: least-most" for a figure taken more than once (the
    median run is the one shown), else "".  more: (label, key, unit) of
    other figures of the same runs, after a comma each."""
    runs = get(r, *path, "runs")
    parts = []
    for label, k, u in (("", key, unit),) + tuple(more):
        rng = get(r, *path, "range", k)
        if rng:
            parts.append(f"{label}{fmt(rng[0])}-{fmt(rng[1], u)}")
    if not runs or runs < 2 or not parts:
        return ""
    return f"; {runs} runs: " + ", ".join(parts)


def ratio(a, b):
    """a / b, or None when either is missing."""
    return a / b if a is not None and b else None


def share(r, part, whole):
    v = ratio(get(r, *part), get(r, *whole))
    return "-" if v is None else f"{100 * v:.0f}%"


def goal_rows():
    def e2e(r):
        return (fmt(get(r, "orders", "hot_product_2_workers", "orders_per_s"))
                + f" ({share(r, ('orders', 'hot_product_2_workers', 'orders_per_s'), ('ceiling', 'hot_product', 'orders_per_s'))}"
                " of the ceiling)")

    def e2e_bound(r):
        bound = ("orders", "hot_product_2_workers", "cpu_bound_orders_per_s")
        if get(r, *bound) is None:
            return "-"
        return (fmt(get(r, *bound)) + " (" +
                share(r, bound, ("ceiling", "hot_product", "orders_per_s")) +
                ")")

    def drain(r):
        d = ("orders", "hot_product_2_workers", "drain")
        c = ("ceiling", "hot_product", "orders_per_s")
        if get(r, *d, "after_submits_orders_per_s") is None:
            return "-"
        return " / ".join(
            fmt(get(r, *d, k)) + " (" + share(r, d + (k,), c) + ")"
            for k in ("during_submits_orders_per_s",
                      "after_submits_orders_per_s"))

    return [
        ("orders/s end to end, one hot product, 2 workers (goal: 70% of "
         "the database's ceiling)", e2e),
        ("the ceiling: the batch transaction alone, 64 per transaction",
         lambda r: fmt(get(r, "ceiling", "hot_product", "orders_per_s"))),
        ("orders/s end to end the machine's CPUs allow at that run's CPU "
         "per order (hot product, 2 workers), over the ceiling", e2e_bound),
        ("the same run's drain while the submits ran / after the last "
         "was answered, over the ceiling", drain),
        ("flash sale: every buyer final after the last submit answered "
         "(goal: 3 s)",
         lambda r: fmt(get(r, "flash", "final_after_last_answer_s"), " s")),
        ("submits/s (goal: 20,000, p99 under 10 ms)",
         lambda r: fmt(get(r, "submit", "requests_per_s")) + ", p99 " +
         fmt(get(r, "submit", "p99_ms"), " ms")),
        ("cart updates/s (goal: 500)",
         lambda r: fmt(get(r, "cart", "requests_per_s"))),
    ] + front_door_rows()


def judged(v, goal, unit="", at_most=True):
    """v against its goal: "v (at most g: met)", or "at least", or
    "not met"."""
    if v is None:
        return "-"
    ok = v <= goal if at_most else v >= goal
    return (f"{fmt(v, unit)} ({'at most' if at_most else 'at least'} "
            f"{fmt(goal, unit)}: {'met' if ok else 'not met'})")


def front_door_rows():
    """Issue 21's goals, each as a ratio or a cost per buyer, so that a
    noisy machine moves them less than absolute rates."""
    def cpu(part):
        return lambda r: judged(get(r, "flash", "cpu_us_per_buyer", part),
                                50.0, " µs")

    def wait_share(r):
        return judged(ratio(
            get(r, "replicated", "wait_1", "submit", "requests_per_s"),
            get(r, "replicated", "wait_0", "submit", "requests_per_s")),
            0.8, at_most=False)

    return [
        ("flash sale: API CPU per buyer", cpu("api")),
        ("flash sale: Redis CPU per buyer", cpu("redis")),
        ("submits/s over /health's in the same run", lambda r: judged(
            ratio(get(r, "submit", "requests_per_s"),
                  get(r, "health", "requests_per_s")), 0.35,
            at_most=False)),
        ("submits/s over /health's that their CPU allows here (/health's "
         "CPU per request, every process and wrk, over a submit's)",
         cpu_allowed_share),
        ("submit p99", lambda r: judged(get(r, "submit", "p99_ms"), 10.0,
                                        " ms")),
        ("submits/s with WAIT for a replica over without", wait_share),
        ("flash sale: every submit answered within", lambda r: judged(
            get(r, "flash", "submit_window_s"), 1.0, " s")),
        ("flash sale: submit p99", lambda r: judged(
            get(r, "flash", "submit_p99_ms"), 250.0, " ms")),
        ("flash sale: every buyer final after the last answer",
         lambda r: judged(get(r, "flash", "final_after_last_answer_s"),
                          0.5, " s")),
        ("orders end to end over the ceiling (hot product, 2 workers)",
         lambda r: judged(ratio(
             get(r, "orders", "hot_product_2_workers", "orders_per_s"),
             get(r, "ceiling", "hot_product", "orders_per_s")), 0.7,
             at_most=False)),
        ("soak: p99 of the last minute over the second's",
         lambda r: judged(get(r, "soak", "p99_last_over_second"), 1.5)),
        ("soak: p99 of the last three minutes over minutes 2-4's",
         lambda r: judged(get(r, "soak", "p99_last3_over_2to4"), 1.5)),
        ("soak: Redis bytes kept per checkout once final", lambda r: judged(
            get(r, "soak", "redis_bytes_kept_per_checkout"), 200)),
    ]


def request_cpu(r, name):
    """A wrk scenario's CPU per request, every part and wrk."""
    return get(r, name, "cpu_us_per_request") or {}


def cpu_parts(r, name):
    cpu = request_cpu(r, name)
    if not cpu:
        return "-"
    return (" / ".join(fmt(cpu.get(p)) for p in ("api", "redis", "wrk")) +
            f" µs; all {fmt(round(sum(cpu.values()), 1))} µs")


def cpu_allowed_share(r):
    """The submit rate over /health's that their CPU per request allows
    if both use the whole machine: /health's CPU over a submit's."""
    h, c = request_cpu(r, "health"), request_cpu(r, "submit")
    if not h or not c:
        return "-"
    return fmt(round(sum(h.values()) / sum(c.values()), 2))


def rate_rows():
    def rate(name):
        return lambda r: (fmt(get(r, name, "requests_per_s")) + " (" +
                          share(r, (name, "requests_per_s"),
                                ("health", "requests_per_s")) + ", p99 " +
                          fmt(get(r, name, "p99_ms"), " ms") +
                          spread(r, (name,), "requests_per_s", "/s") + ")")

    return [("GET /health (the ceiling)", rate("health")),
            ("  CPU per request: API / Redis / wrk",
             lambda r: cpu_parts(r, "health")),
            ("GET /api/products?limit=20", rate("products")),
            ("POST /api/cart/me", rate("cart")),
            ("  MongoDB operations per cart update",
             lambda r: fmt(get(r, "cart", "db_ops_per_update"))),
            ("POST /api/auth/login (argon2id)", rate("login")),
            ("  /health p99 during logins",
             lambda r: fmt(get(r, "login", "health_during_logins_p99_ms"),
                           " ms")),
            ("POST /api/checkout, submit only", rate("submit")),
            ("  CPU per submit: API / Redis / wrk",
             lambda r: cpu_parts(r, "submit"))]


def cpu_bound(r, k):
    """An end-to-end run's CPU per order and the rate it allows here."""
    cpu = get(r, "orders", k, "cpu_us_per_order")
    if not cpu:
        return ""
    return ("; CPU per order " + " / ".join(
        fmt(cpu.get(p)) for p in ("api", "redis", "workers", "database")) +
        " µs (API / Redis / workers / database): at most " +
        fmt(get(r, "orders", k, "cpu_bound_orders_per_s")) +
        " orders/s on these CPUs")


def order_rows(runs):
    keys = []
    for _, _, r in runs:
        for k in (get(r, "orders") or {}):
            if k not in keys:
                keys.append(k)
    rows = []
    for k in keys:
        rows.append((k.replace("_", " "), lambda r, k=k: fmt(
            get(r, "orders", k, "orders_per_s")) + " orders/s, " +
            fmt(get(r, "orders", k, "db_ops_per_order")) + " ops/order, "
            "mean batch " + fmt(get(r, "orders", k, "batches", "mean")) +
            cpu_bound(r, k)))
    for k in ("hot_product", "hot_product_1_per_txn", "100_products",
              "3_line_carts"):
        rows.append(("ceiling: " + k.replace("_", " "), lambda r, k=k: fmt(
            get(r, "ceiling", k, "orders_per_s")) + " orders/s"))
    return rows


def flash_rows(sale="flash"):
    def f(key, unit=""):
        return lambda r: fmt(get(r, sale, key), unit)

    rows = [("buyers / units", lambda r: f("buyers")(r) + " / " +
             f("stock")(r)),
            ("accepted (202) / 5xx", lambda r: f("accepted")(r) + " / " +
             f("http_5xx")(r)),
            ("all submits answered in", lambda r: f("submit_window_s", " s")(
                r) + spread(r, (sale,), "submit_window_s", " s")),
            ("submit p50 / p99 / max", lambda r: f("submit_p50_ms")(r) +
             " / " + f("submit_p99_ms")(r) + " / " +
             f("submit_max_ms", " ms")(r) + spread(r, (sale,),
                                                   "submit_p99_ms", " ms")),
            ("every buyer final after the first submit",
             f("all_final_s", " s")),
            ("... after the last submit was answered",
             f("final_after_last_answer_s", " s")),
            ("orders (must be the stock) / final stock (must be 0)",
             lambda r: f("orders")(r) + " / " + f("final_stock")(r)),
            ("refused by the stock gate", f("refused_by_gate")),
            ("MongoDB operations in the sale / per order",
             lambda r: f("db_ops")(r) + " / " + f("db_ops_per_order")(r)),
            ("batches / mean size", lambda r: fmt(get(r, sale, "batches",
             "batches")) + " / " + fmt(get(r, sale, "batches", "mean"))),
            ("queue peak", f("queue_peak")),
            ("RSS peak: API / workers", lambda r: f("api_rss_mb")(r) +
             " / " + f("workers_rss_mb", " MiB")(r)),
            ("CPU per buyer: API / Redis / workers / database (goal: API "
             "and Redis 50 µs each)", lambda r: " / ".join(
                 fmt(get(r, sale, "cpu_us_per_buyer", k)) for k in
                 ("api", "redis", "workers", "database")) + " µs" +
             spread(r, (sale,), "cpu_us_per_buyer.api", " µs (API)",
                    [("", "cpu_us_per_buyer.redis", " µs (Redis)")])),
            ("AOF rewrites in the sale (Redis forks: the fork and copy-"
             "on-write are in its CPU, the child's work is not)",
             lambda r: f("aof_rewrites")(r) + spread(r, (sale,),
                                                     "aof_rewrites")),
            ("the load generator's own CPU per buyer (wrk; not the "
             "system's)", f("client_cpu_us_per_buyer", " µs")),
            ("the sale's CPU (every process and wrk) over the machine's "
             "CPUs: the least the sale could take here",
             f("cpu_floor_s", " s")),
            ("verdict", lambda r: "-" if get(r, sale) is None else
             "exactly right" if get(r, sale, "ok") else "WRONG")]
    if sale == "flash":
        rows.insert(-7, ("MongoDB operations per refusal (1,000 more buyers "
                         "after it)", f("db_ops_per_refusal")))
    else:
        rows.insert(-1, ("order emails delivered / last one after the "
                         "first submit", lambda r: f("emails")(r) + " / " +
                         f("last_email_after_first_submit_s", " s")(r)))
    return rows


def replicated_rows():
    rows = []
    for w, name in (("wait_0", "no WAIT"), ("wait_1", "WAIT 1 replica")):
        def sub(r, w=w):
            v = get(r, "replicated", w, "submit")
            if not v:
                return "-"
            return (f"{fmt(v.get('requests_per_s'))}/s, p99 "
                    f"{fmt(v.get('p99_ms'))} ms, {fmt(v.get('non_2xx'))} non-2xx")

        def sale(r, w=w):
            f = get(r, "replicated", w, "flash")
            if not f:
                return "-"
            return (f"{fmt(f['accepted'])} accepted, {fmt(f['http_5xx'])} "
                    f"5xx, answered in {fmt(f['submit_window_s'])} s, "
                    f"final {fmt(f['final_after_last_answer_s'])} s "
                    f"after, {fmt(f['orders'])} orders")
        rows += [(f"submits ({name})", sub),
                 (f"flash sale ({name})", sale)]
    return rows


def failover_rows():
    rows = []
    for mode, name in (("freeze_8s", "primary frozen 8 s"),
                       ("freeze_20s", "primary frozen 20 s"),
                       ("kill", "primary SIGKILLed, never back")):
        def one(r, mode=mode):
            f = get(r, "failover", mode)
            if not f:
                return "-"
            return (f"{fmt(f['longest_no_accept_s'])} s without an "
                    f"accepted checkout; {fmt(f['accepted'])}/"
                    f"{fmt(f['buyers'])} accepted, {fmt(f['final'])} "
                    f"final, {fmt(f['orders'])} orders")
        rows.append((name + " (goal: at most 5 s, exact)", one))
    return rows


def after_sale_rows():
    def pos(key):
        return lambda r: fmt(get(r, "positions", key))

    return [
        ("cancels/s, an admin cancelling 1,000 orders (goal: 500)",
         lambda r: fmt(get(r, "cancel", "cancels_per_s")) + ", p99 " +
         fmt(get(r, "cancel", "p99_ms"), " ms")),
        ("queue positions on: submits/s as a share of /health",
         lambda r: fmt(get(r, "positions", "on",
                           "submits_share_of_health"))),
        ("queue positions off: the same", lambda r: fmt(get(
            r, "positions", "off", "submits_share_of_health"))),
        ("on / off: submits (goal: no measurable cost, ~1.0)",
         pos("submit_share_on_over_off")),
        ("on / off: API and Redis CPU per submit",
         pos("submit_cpu_on_over_off")),
        ("on / off: orders/s draining one hot product, 2 workers",
         pos("drain_on_over_off")),
        ("payment-window sale: expired unpaid orders / resold from the "
         "waitlist", lambda r: fmt(get(r, "payment_sale", "expired")) +
         " / " + fmt(get(r, "payment_sale", "resold_from_waitlist"))),
        ("from an expiry to the next buyer's order, median / max (goal: "
         "1 s)", lambda r: fmt(get(r, "payment_sale",
                                    "expiry_to_next_order_p50_s"), " s") +
         " / " + fmt(get(r, "payment_sale", "expiry_to_next_order_max_s"),
                     " s")),
        ("confirmed orders at the end (goal: the stock, 100)",
         lambda r: fmt(get(r, "payment_sale", "confirmed"))),
        ("sale ended: every waitlisted buyer final after",
         lambda r: fmt(get(r, "payment_sale", "waitlist_ended_all_final_s"),
                       " s")),
    ]


def console_rows():
    def view(v):
        return lambda r: (fmt(get(r, "console", "views", v, "p99_ms"), " ms")
                          + ", " + fmt(get(r, "console", "views", v,
                                           "requests_per_s")) + "/s")

    rows = [
        ("flash sale submits/s, console open / closed (goal: within 5%)",
         lambda r: fmt(get(r, "console", "submits_open_over_closed"))),
        ("flash sale drain, console open / closed (goal: within 5%)",
         lambda r: fmt(get(r, "console", "drain_open_over_closed"))),
    ]
    for v in ("/api/admin/queue", "/api/admin/workers", "/api/admin/history",
              "/api/admin/deadletters", "/api/admin/products?limit=50",
              "/api/orders?limit=50", "/api/orders?limit=50&status=cancelled"):
        rows.append((f"`{v}` p99, rate (goal: p99 under 50 ms)", view(v)))
    return rows


def profile_section(label, prof):
    """Where the API's and Redis's CPU went in the profiled sale."""
    suffix = "-rs" if "Rust" in label else "-py"
    out = [f"## Where the CPU goes ({label})", "",
           f"The flash sale of {prof['buyers']:,} buyers under `perf "
           "record` (499 Hz, DWARF stacks), the API's processes and Redis "
           "each: the functions that spent the most of their own CPU, and "
           f"flame graphs (bench/flame-api{suffix}.svg, "
           f"bench/flame-redis{suffix}.svg).  {prof['note']}.", "",
           f"CPU per buyer in this run: API {prof['api_cpu_us_per_buyer']} "
           f"µs, Redis {prof['redis_cpu_us_per_buyer']} µs.", ""]
    out += buyer_parts(prof)
    out += ["Where the time goes (the share of samples that pass through "
            "a function, its callees included):", "",
            "| API: function | % | Redis: function | % |",
            "|---|---|---|---|"]
    out += pairs(prof.get("api_inclusive", []),
                 prof.get("redis_inclusive", []))
    out += ["", "Where it is spent (own time):", "",
            "| API: function | % | Redis: function | % |",
            "|---|---|---|---|"]
    out += pairs(prof.get("api_top", []), prof.get("redis_top", []))
    cmds = prof.get("redis_commands_per_buyer")
    if cmds:
        out += ["", "Redis commands per buyer (INFO commandstats over the "
                "sale; a command a function calls is counted on its own "
                "line and inside the FCALL's time as well):", "",
                "| command | calls per buyer | µs per buyer |",
                "|---|---|---|"]
        out += [f"| {c} | {n} | {us} |" for c, n, us in cmds]
    return out + [""]


def buyer_parts(prof):
    """Where one buyer's CPU goes, by part (bench/run.py API_PARTS,
    redis_part): its share of the samples and the µs per buyer that
    share is."""
    out = []
    for name, who in (("api", "the API"), ("redis", "Redis")):
        rows, us = prof.get(f"{name}_parts"), prof.get(
            f"{name}_cpu_us_per_buyer")
        if not rows or not us:
            continue
        out += [f"Where one buyer's CPU goes in {who} (the sale's samples "
                "by part; µs: that share of the CPU per buyer):", "",
                "| part | % | µs per buyer |", "|---|---|---|"]
        out += [f"| {k} | {pc} | {fmt(pc * us / 100)} |" for pc, k in rows]
        out += [""]
    return out


def pairs(api, red):
    out = []
    for i in range(max(len(api), len(red))):
        a = api[i] if i < len(api) else ("", "")
        b = red[i] if i < len(red) else ("", "")
        out.append(f"| `{a[1]}` | {a[0]} | `{b[1]}` | {b[0]} |")
    return out


def soak_section(label, soak):
    """BENCH_SOAK: a long sale minute by minute, and what Redis keeps."""
    out = [f"## Soak ({label}, {soak['minutes']} minutes)", "",
           f"{soak['buyers']} buyers, each in a closed loop: cart, "
           "checkout (paced by the default per-user submit limit), "
           "long-poll to the final status.  Latency is submit to final "
           "status, of the checkouts that ended in that minute.", "",
           "| minute | checkouts | errors | p50 ms | p99 ms | "
           "Redis MiB | database RSS MiB |",
           "|---|---|---|---|---|---|---|"]
    out += [f"| {m['minute']} | {m['checkouts']:,} | {m['errors']} | "
            f"{m['p50_ms']} | {m['p99_ms']} | {m['redis_mib']} | "
            f"{m['db_rss_mib']} |" for m in soak["per_minute"]]
    out += ["", f"{soak['checkouts']:,} checkouts, {soak['completed']:,} "
            f"completed, {soak['orders']:,} orders in MongoDB, "
            f"{soak['errors']} errors.  p99 in the last minute / in the "
            f"second: {soak['p99_last_over_second']} (goal: at most 1.5).  "
            "Redis bytes still kept per checkout once every status is "
            "final + CHECKOUT_FINAL_TTL + 30 s: "
            f"{soak['redis_bytes_kept_per_checkout']} (goal: at most "
            "200).  The buyers send no Idempotency-Key: a client that "
            "does keeps ~180 bytes more per checkout for IDEMPOTENCY_TTL "
            "(24 h; docs/SCALING.md).", ""]
    return out


def render_all():
    runs = load_runs()
    if not runs:
        return "# Benchmark report\n\nNo results yet: run `make bench`.\n"
    out = ["# Benchmark report", ""]
    for _, label, r in runs:
        m = r["machine"]
        out.append(f"- {label}: run {r['when']} on {m['cpus']} CPUs "
                   f"({m['cpu']}), {m['memory_mb']:,} MiB, {m['database']}, "
                   f"scale {r['scale']}, {r.get('seconds', '?')} s."
                   + kept_from_earlier(r))
    out += ["", "Produced by `make bench` (bench/run.py; `BENCH_DB=rs make "
            "bench` for the Rust server's column); raw figures in "
            "bench/results*.json.  The load generators run on the same "
            "machine as the server, Redis and the database, so rates are "
            "shown beside `/health` of the same run.", "",
            "## The goals", ""]
    out += table(runs, goal_rows())
    out += ["## Request rates", ""]
    out += table(runs, rate_rows())
    out += ["## Orders, end to end and the database's ceiling", "",
            "End to end: every buyer's checkout submitted at once, timed "
            "until every one is final.  The ceiling: `build/ceiling`, the "
            "worker's own batch transaction run alone by one client.  "
            "\"At most\": the run's CPU (every process and the load "
            "generator) spread over every CPU of the machine, the rate "
            "that cost would allow if nothing ever waited.", ""]
    out += table(runs, order_rows(runs))
    out += ["## The flash sale", "", "The sale is run `BENCH_RUNS` times "
            "(3), each with a product and 10,000 buyers of its own; the "
            "run with the median submit window is shown, with the range of "
            "all runs where it says so.  The same for `/health` and the "
            "submit rate above.", ""]
    out += table(runs, flash_rows())
    for key, label, r in runs:
        pic = get(r, "flash", "picture")
        if pic:
            out += [f"![Flash sale, {label}]({pic})", ""]
    if any(get(r, "flash_notify") for _, _, r in runs):
        out += ["## The flash sale with the notifier mailing every order",
                "", "The same sale again, with a notifier process sending "
                "each order's email (to the SMTP sink of `make run`) while "
                "the sale runs; compare with the table above.", ""]
        out += table(runs, flash_rows("flash_notify"))
    if any(get(r, "replicated") for _, _, r in runs):
        out += ["## Redis replicated: without and with WAIT", "",
                "A primary, two replicas and three Sentinels (`make "
                "run-ha`)."
                "  With `REDIS_MIN_REPLICAS=1` a submit is answered only "
                "once WAIT has seen it on the replica (one WAIT covers "
                "every submit sent before it), so a checkout answered "
                "202 survives the primary's death.", ""]
        out += table(runs, replicated_rows())
    if any(get(r, "failover") for _, _, r in runs):
        out += ["## Losing the Redis primary in the middle of a sale", "",
                "The same Redis, a paced sale (400 buyers at 20/s, 200 "
                "units, each retrying a 503 with its Idempotency-Key); 5 s "
                "in, the primary is frozen (SIGSTOP, then let run again) or "
                "killed for good.  Two replicas: the promoted one still "
                "has one to WAIT on (with one, no checkout was accepted "
                "for 18 s after an 8 s freeze).", ""]
        out += table(runs, failover_rows())
    if any(get(r, "cancel") or get(r, "payment_sale") or
           get(r, "positions") for _, _, r in runs):
        out += ["## After the sale: cancels, queue positions, the "
                "payment window and the waitlist", "",
                "Cancels: 1,000 orders, one `POST /api/orders/:id/cancel` "
                "each, 32 at a time.  Positions: the submit scenario and "
                "the hot-product drain on a stack with `QUEUE_POSITIONS` "
                "1 and one with 0, twice each.  The payment-window sale: "
                "10,000 buyers with `waitlist: true` at 100 units, "
                "`PAYMENT_WINDOW_S=3`, 30% of the first winners never pay.",
                ""]
        out += table(runs, after_sale_rows())
    if any(get(r, "console") for _, _, r in runs):
        out += ["## The consoles", "",
                "The 10,000-buyer flash sale six times with the ops "
                "console open (its four views polled every second, as "
                "admin.js does) and six times without, in the order "
                "closed, open, open, closed, on a stack of its own; the "
                "medians compared.  Then each view under wrk (8 "
                "connections) with 100,000 orders in the database and "
                "100,000 jobs waiting in the stream.", ""]
        out += table(runs, console_rows())
    for _, label, r in runs:
        prof = get(r, "profile")
        if prof:
            out += profile_section(label, prof)
    for _, label, r in runs:
        soak = get(r, "soak")
        if soak and "buyers" in soak:     # not the older soak's figures
            out += soak_section(label, soak)
    notes = ROOT / "bench/NOTES.md"
    if notes.exists():
        out += [notes.read_text().rstrip(), ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render_all())
