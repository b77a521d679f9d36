"""
load.py -- a small HTTP/1.1 load generator for multi-step flows.

wrk measures one fixed request at full speed; a checkout needs a
different token (a different buyer) per request, and the flash sale
needs ten thousand of them sent at once.  This opens `concurrency`
keep-alive connections and sends every request of a list exactly once,
recording each one's status and latency.
"""
import asyncio
import time


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
