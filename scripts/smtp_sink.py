"""
smtp_sink.py -- a local SMTP server that keeps every message it is sent,
for `make run` (when SMTP_URL is not set) and the tests.

    smtp_sink.py --port 2525 --dir DIR [--fail-first N] [--delay S]

Each message becomes DIR/<n>.eml (the envelope's sender and recipients
in X-Envelope-From/X-Envelope-To headers, then the message as sent).
--fail-first answers the first N messages with a temporary failure
(451); --delay holds every answer S seconds (a slow mail server).
Runs until SIGTERM.  aiosmtpd (PyPI, pinned in requirements.txt).
"""
import argparse
import asyncio
import itertools
import os
import signal
import time

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory, fail_first, delay):
        self.dir = directory
        self.fail_left = fail_first
        self.delay = delay
        self.seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later (smtp_sink --fail-first)"
        n = next(self.seq)
        path = os.path.join(self.dir, f"{time.time_ns()}-{n}.eml")
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n")
        with open(path + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    c = Controller(Keep(a.dir, a.fail_first, a.delay), hostname=a.host,
                   port=a.port)
    c.start()
    print(f"smtp_sink: listening on {a.host}:{a.port}, mail in {a.dir}",
          flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    c.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
