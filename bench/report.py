"""
report.py -- bench/results.json as bench/REPORT.md.

`python bench/report.py` re-renders the report from the last results;
the narrative (what the numbers mean, the bottleneck found) lives in
bench/NOTES.md and is included as it is.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _row(name, x, ceiling):
    share = (f"{100 * x['requests_per_s'] / ceiling:.0f}%"
             if ceiling else "-")
    return (f"| {name} | {x['requests_per_s']:,.0f} | {share} | "
            f"{x.get('p50_ms')} | {x.get('p99_ms')} | "
            f"{x.get('non_2xx', 0)} |")


def render(r):
    sc = r["scenarios"]
    m = r["machine"]
    ceiling = sc.get("health", {}).get("requests_per_s")
    out = ["# Benchmark report", "",
           f"Run {r['when']} on {m['cpus']} CPUs ({m['cpu']}), "
           f"{m['memory_mb']:,} MiB, kernel {m['kernel']}; "
           f"{m['database']}; scale {r['scale']}; "
           f"{r.get('seconds', '?')} s in all.  Produced by `make bench` "
           "(bench/run.py); raw figures in bench/results.json.", "",
           "The load generators (wrk, bench/load.py) run on the same "
           "machine as the server, Redis and the database, so every rate "
           "is shown beside `/health` measured in the same run: the "
           "server's own ceiling on this machine today.", ""]
    http = [(k, v) for k, v in (("GET /health", sc.get("health")),
                                ("GET /api/products?limit=20",
                                 sc.get("products")),
                                ("POST /api/cart/me", sc.get("cart")),
                                ("POST /api/auth/login", sc.get("login")),
                                ("POST /api/checkout (submit only)",
                                 sc.get("submit"))) if v]
    if http:
        out += ["## Request rates", "",
                "| Scenario | requests/s | of /health | p50 ms | p99 ms | "
                "non-2xx |", "|---|---|---|---|---|---|"]
        out += [_row(k, v, ceiling) for k, v in http]
        out.append("")
    if "login" in sc:
        lg = sc["login"]
        out += ["## Logins and the event loop", "",
                "argon2id runs on its own thread pool; `/health` answered "
                "one request at a time while the logins ran:", "",
                "| /health | p50 ms | p99 ms |", "|---|---|---|",
                f"| idle | {lg['health_while_idle_p50_ms']} | "
                f"{lg['health_while_idle_p99_ms']} |",
                f"| during {lg['requests_per_s']:.0f} logins/s | "
                f"{lg['health_during_logins_p50_ms']} | "
                f"{lg['health_during_logins_p99_ms']} |", ""]
    if "orders" in sc:
        out += ["## End to end: submit to completed", "",
                "| workers | orders | seconds | orders/s |",
                "|---|---|---|---|"]
        for w, v in sc["orders"].items():
            out.append(f"| {w} | {v['orders']} | {v['seconds']} | "
                       f"{v['orders_per_s']} |")
        out.append("")
    if "flash" in sc:
        f = sc["flash"]
        out += ["## The flash sale", "",
                f"{f['buyers']:,} buyers, each with one unit in the cart, "
                f"{f['stock']} units in stock, every buyer submitting at "
                "once (1,000 connections).", "",
                "| | |", "|---|---|",
                f"| accepted (202) / rejected | {f['accepted']:,} / "
                f"{f['rejected']:,} |",
                f"| 5xx answers | {f['http_5xx']} |",
                f"| all submits sent and answered in | "
                f"{f['submit_window_s']} s |",
                f"| submit latency p50 / p99 / max | {f['submit_p50_ms']} / "
                f"{f['submit_p99_ms']} / {f['submit_max_ms']} ms |",
                f"| every buyer has a final status after | "
                f"{f['all_final_s']} s |",
                f"| orders created (must be {f['stock']}) | {f['orders']} |",
                f"| final stock (must be 0) | {f['final_stock']} |",
                f"| queue length peak | {f['queue_peak']:,} |",
                f"| API RSS peak (all kore processes) | {f['api_rss_mb']} "
                "MiB |",
                f"| worker RSS peak (2 processes) | {f['workers_rss_mb']} "
                "MiB |",
                f"| verdict | {'exactly right' if f['ok'] else 'WRONG'} |",
                ""]
    notes = ROOT / "bench/NOTES.md"
    if notes.exists():
        out += [notes.read_text().rstrip(), ""]
    return "\n".join(out)


if __name__ == "__main__":
    res = json.loads((ROOT / "bench/results.json").read_text())
    sys.stdout.write(render(res))
