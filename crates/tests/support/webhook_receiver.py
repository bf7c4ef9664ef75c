"""A webhook receiver on loopback for notify-svc's tests. Every request is checked with the
Standard Webhooks reference library (PyPI: standardwebhooks) and recorded as one JSON line.

    python3 webhook_receiver.py PORT DIR

DIR/secrets.json maps a path to its endpoint's secret; DIR/statuses.json maps a path to the
statuses to answer, in order (then 200); a 3xx points to /trap. Each request is appended to DIR/received.jsonl:
path, verified, error, the webhook-id, and the body. Prints "ready" once listening.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        directory = self.server.directory
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        secret = load(os.path.join(directory, "secrets.json")).get(self.path)
        verified, error = False, ""
        try:
            if secret is None:
                raise ValueError("no secret for " + self.path)
            Webhook(secret).verify(body, headers)
            verified = True
        except Exception as e:  # noqa: BLE001 - recorded for the test to read
            error = f"{type(e).__name__}: {e}"
        with LOCK:
            statuses_path = os.path.join(directory, "statuses.json")
            statuses = load(statuses_path)
            queue = statuses.get(self.path, [])
            status = queue.pop(0) if queue else 200
            statuses[self.path] = queue
            with open(statuses_path, "w", encoding="utf-8") as f:
                json.dump(statuses, f)
            record = {
                "path": self.path,
                "verified": verified,
                "error": error,
                "id": headers.get("webhook-id"),
                "status": status,
                "body": json.loads(body or b"null"),
            }
            with open(os.path.join(directory, "received.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        self.send_response(status)
        if 300 <= status < 400:
            # Somewhere a delivery must never be taken to.
            self.send_header("location", "/trap")
        self.send_header("content-length", "0")
        self.end_headers()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.directory = sys.argv[2]
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
