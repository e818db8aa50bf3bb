"""A stand-in for a chat webhook (Slack, Mattermost, Teams): records every alert it gets.

POST /<anything>   a JSON body; recorded and answered with 200 "ok"
GET  /alerts       the JSON list of every body received, oldest first

python3 webhook_receiver.py --port 8091
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECEIVED: list[dict] = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            self._answer(400, b'{"error": "not JSON"}')
            return
        with LOCK:
            RECEIVED.append(body)
        self._answer(200, b"ok", "text/plain")

    def do_GET(self) -> None:
        if self.path != "/alerts":
            self._answer(404, b'{"error": "not found"}')
            return
        with LOCK:
            body = json.dumps(RECEIVED).encode()
        self._answer(200, body)

    def log_message(self, format: str, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8091)
    arguments = parser.parse_args()
    ThreadingHTTPServer(("0.0.0.0", arguments.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
