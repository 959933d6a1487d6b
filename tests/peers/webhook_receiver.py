#!/usr/bin/env python3
"""
A webhook receiver that checks ztpd's signatures the way README.md ("Webhooks")
documents them, written independently of ztpd's Rust code (Python's hmac module):

    X-Ztpd-Signature: sha256=HEX(HMAC-SHA256(secret, X-Ztpd-Timestamp + "." + raw body))

Usage: webhook_receiver.py --port N --secret S --record FILE [--fail-first N]

Binds 127.0.0.1 only, prints "READY <port>" when listening. Every POST is appended to
FILE as one JSON line: {"valid": bool, "event", "delivery", "timestamp", "body"}.
A valid signature gets 204, an invalid one 401; --fail-first N answers 503 to the
first N requests (a receiver that is having trouble). Python standard library only.
"""

import argparse
import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    lock = threading.Lock()
    state = {"failures_left": args.fail_first}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with lock:
                if state["failures_left"] > 0:
                    state["failures_left"] -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
            timestamp = self.headers.get("X-Ztpd-Timestamp", "")
            given = self.headers.get("X-Ztpd-Signature", "")
            expected = "sha256=" + hmac.new(
                args.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
            ).hexdigest()
            valid = hmac.compare_digest(given, expected)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            entry = {
                "valid": valid,
                "event": self.headers.get("X-Ztpd-Event"),
                "delivery": self.headers.get("X-Ztpd-Delivery"),
                "timestamp": timestamp,
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            }
            with lock, open(args.record, "a") as f:
                f.write(json.dumps(entry) + "\n")
            self.send_response(204 if valid else 401)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
