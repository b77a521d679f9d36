"""
load.py -- load generators for requests that differ one from the next.

run(): a small asyncio HTTP/1.1 client for multi-step flows.  It opens
`concurrency` keep-alive connections and sends every request of a list
exactly once, recording each one's status and latency.  It is Python:
~70 µs of CPU a request, on the same CPUs as the server.

burst(): the same list sent once each through wrk (C, two threads), for
bursts where the client must not be what is measured: ten thousand
/health requests over 1,000 connections take the asyncio client 0.7 s
(p99 ~260 ms) of its own.  wrk reports percentiles, not each request.
"""
import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path


class Result:
    def __init__(self):
        self.latencies = []   # seconds, one per request
        self.started_at = []  # perf_counter() when each was sent
        self.statuses = []    # HTTP status, or 0 for a failed connection
        self.bodies = []      # response bodies (bytes), if kept
        self.started = 0.0
        self.finished = 0.0

    def count(self, pred):
        return sum(1 for s in self.statuses if pred(s))

    def percentile(self, p):
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def build(method, path, body=b"", headers=None):
    lines = [f"{method} {path} HTTP/1.1", "Host: bench"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_body(reader, head):
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length) if length else b""
    return status, body


class Conn:
    """One keep-alive connection for a flow of requests, one at a time
    (a buyer's cart, submit and status polls), reopened when it drops."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def send(self, raw):
        """(status, head bytes, body bytes); status 0 if it failed."""
        for attempt in range(2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(
                        self.host, self.port)
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
                status, body = await _read_body(self.reader, head)
                return status, head, body
            except (OSError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, ValueError):
                self.close()
        return 0, b"", b""

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _worker(host, port, queue, res, keep):
    conn = Conn(host, port)
    while True:
        try:
            i, raw = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        t0 = time.perf_counter()
        res.started_at[i] = t0
        status, _, body = await conn.send(raw)
        res.latencies[i] = time.perf_counter() - t0
        res.statuses[i] = status
        if keep:
            res.bodies[i] = body
    conn.close()


async def _run(host, port, requests, concurrency, keep):
    res = Result()
    res.latencies = [0.0] * len(requests)
    res.started_at = [0.0] * len(requests)
    res.statuses = [0] * len(requests)
    res.bodies = [b""] * len(requests)
    queue = asyncio.Queue()
    for i, raw in enumerate(requests):
        queue.put_nowait((i, raw))
    res.started = time.perf_counter()
    await asyncio.gather(*[_worker(host, port, queue, res, keep)
                           for _ in range(min(concurrency, len(requests)))])
    res.finished = time.perf_counter()
    return res


def run(host, port, requests, concurrency=64, keep=False):
    """Send every raw request once over `concurrency` connections."""
    return asyncio.run(_run(host, port, requests, concurrency, keep))


class Burst:
    """What burst() measured: the window from the first request sent
    until every one was answered (perf_counter() times), wrk's latency
    percentiles (s), the answers' status counts, the checkoutIds of the
    202s and wrk's CPU seconds."""

    def __init__(self):
        self.started = self.finished = 0.0
        self.codes = {}
        self.ids = []
        self.p50 = self.p99 = self.max = 0.0
        self.cpu_s = 0.0

    def count(self, pred):
        return sum(n for code, n in self.codes.items() if pred(code))


# Shared by both scripts: each wrk thread reads its share of the
# requests file (the lines n with n % threads == its id) and formats
# every request of it before the first is sent.
SHARE_LUA = """
local nthreads, threads = %(threads)d, 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
-- A line of the requests file, split at its tabs.
local function fields(line)
  local f, at = {}, 1
  while true do
    local tab = string.find(line, "\\t", at, true)
    if not tab then
      f[#f + 1] = string.sub(line, at)
      return f
    end
    f[#f + 1] = string.sub(line, at, tab - 1)
    at = tab + 1
  end
end

-- This thread's share of the requests file (a line each: method, path,
-- body, then header names and values, tab-separated).
local function share()
  local reqs, n = {}, 0
  for line in io.lines("%(requests)s") do
    if n %% nthreads == id then
      local f, h = fields(line), {}
      for k = 4, #f - 1, 2 do h[f[k]] = f[k + 1] end
      reqs[#reqs + 1] = wrk.format(f[1], f[2], h, f[3])
    end
    n = n + 1
  end
  return reqs
end
"""

BURST_LUA = SHARE_LUA + """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } burst_ts;
int clock_gettime(int, burst_ts *);
]]
local ts = ffi.new("burst_ts")
-- CLOCK_MONOTONIC: the clock of Python's time.perf_counter().
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

function init(args)
  reqs, sent, got, codes, ids = share(), 0, 0, {}, {}
  -- wrk calls the first thread's request() once before sending, to
  -- see how many requests it returns: that call must not use one up.
  trial = id == 0
end
-- Each request of the share is sent once; then connections stay idle.
request = function()
  if trial then
    trial = false
    return reqs[1]
  end
  sent = sent + 1
  if sent == 1 then first = now() end
  return reqs[sent] or ""
end
response = function(status, headers, body)
  if status == 408 then return end  -- kore closing an idle connection
  got = got + 1
  codes[status] = (codes[status] or 0) + 1
  if status == 202 then
    ids[#ids + 1] = string.match(body, '"checkoutId":"(%%x+)"')
  end
  if got == #reqs then
    local f = io.open("%(out)s." .. id .. ".tmp", "w")
    f:write(string.format("first %%.6f\\nlast %%.6f\\n", first, now()))
    for c, n in pairs(codes) do f:write("code ", c, " ", n, "\\n") end
    for _, x in ipairs(ids) do f:write("id ", x, "\\n") end
    f:close()
    os.rename("%(out)s." .. id .. ".tmp", "%(out)s." .. id)
    wrk.thread:stop()  -- its idle connections close with it
  end
end
function done(summary, latency, requests)
  local f = io.open("%(out)s.summary", "w")
  f:write(latency:percentile(50), " ", latency:percentile(99), " ",
    latency.max, "\\n")
  f:close()
end
"""


def write_requests(path, items):
    """The requests file the wrk scripts read: one line per item --
    (method, path, headers dict, body) -- its fields tab-separated."""
    lines = []
    for m, p, h, b in items:
        fields = [m, p, b] + [x for kv in h.items() for x in kv]
        if any("\t" in x or "\n" in x for x in fields):
            raise ValueError("a request field holds a tab or a newline")
        lines.append("\t".join(fields))
    path.write_text("\n".join(lines) + "\n")


CYCLE_LUA = SHARE_LUA + """
function init(args)
  reqs, i = share(), 0
end
-- The share over and over, in turn, for as long as wrk runs.
request = function()
  i = i %% #reqs + 1
  return reqs[i]
end
"""


def cycle(items, name, threads=2, tmp="bench/tmp"):
    """A wrk script (its path) sending items -- (method, path, headers
    dict, body) -- in turn for as long as wrk runs; each of wrk's
    `threads` threads (wrk -t) takes its own share of the list, so that
    no two requests of one item's buyer race each other.  Each request
    is formatted once, before the first is sent, not on every send."""
    folder = Path(tmp)
    folder.mkdir(exist_ok=True)
    requests = folder / f"{name}.requests"
    write_requests(requests, items)
    script = folder / f"{name}.lua"
    script.write_text(CYCLE_LUA % {"threads": threads,
                                   "requests": str(requests.resolve())})
    return script


def burst(url, items, connections=1000, threads=2, tmp="bench/tmp",
          timeout=300):
    """Send each of items -- (method, path, headers dict, body) -- once
    through wrk over `connections` connections; a Burst.  wrk runs until
    stopped: every thread writes its answers when its share is in, and
    then it is stopped (SIGINT) for its percentiles.  A share not in
    within timeout seconds (a request lost with its connection) counts
    as unanswered: status 0."""
    folder = Path(tmp)
    folder.mkdir(exist_ok=True)
    out = folder / f"burst-{os.getpid()}"
    for f in folder.glob(out.name + ".*"):
        f.unlink()
    write_requests(Path(f"{out}.requests"), items)
    threads = min(threads, len(items))
    script = folder / (out.name + ".lua")
    script.write_text(BURST_LUA % {
        "threads": threads, "out": str(out.resolve()),
        "requests": f"{out.resolve()}.requests"})
    res = Burst()
    res.started = time.perf_counter()
    proc = subprocess.Popen(["wrk", f"-t{threads}",
                             f"-c{max(threads, connections)}",
                             "-d600s", "--timeout", "30s", "-s", str(script),
                             url], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parts = [Path(f"{out}.{t}") for t in range(threads)]
    try:
        while (not all(p.exists() for p in parts) and proc.poll() is None
               and time.perf_counter() - res.started < timeout):
            time.sleep(0.002)
        res.finished = time.perf_counter()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            # wait4, not wait(): wrk's own CPU time, for the report.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            res.cpu_s = usage.ru_utime + usage.ru_stime
    first, last = [], []
    for t, p in enumerate(parts):
        if not p.exists():
            share = len(range(t, len(items), threads))
            res.codes[0] = res.codes.get(0, 0) + share
            continue
        for line in p.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "first":
                first.append(float(rest))
            elif kind == "last":
                last.append(float(rest))
            elif kind == "code":
                code, n = rest.split()
                res.codes[int(code)] = res.codes.get(int(code), 0) + int(n)
            elif rest:
                res.ids.append(rest)
    if first and len(last) == threads:
        # From the first request sent to the last answer, by wrk's clock
        # (the same): wrk's own start (the script, formatting each
        # request) is not in it.
        res.started, res.finished = min(first), max(last)
    summary = Path(f"{out}.summary")
    p50, p99, mx = (summary.read_text().split() if summary.exists()
                    else ("0", "0", "0"))
    for f in folder.glob(out.name + ".*"):
        f.unlink()   # a 10,000-buyer requests file is 4 MB
    res.p50, res.p99, res.max = (float(p50) / 1e6, float(p99) / 1e6,
                                 float(mx) / 1e6)
    return res
