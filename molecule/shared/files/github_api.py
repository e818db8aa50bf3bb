"""A stand-in for the parts of GitHub's REST API the users role reads.

Serves, from a JSON state file that is read again on every request (so a test switches
answers by rewriting the file):

    GET /orgs/{org}/members                 the org's members, paginated
    GET /orgs/{org}/teams/{team}/members    a team's members, paginated
    GET /{user}.keys                        a user's public keys, one a line

State file:

    {
      "orgs": {"example": {"members": ["alice", "Bob"], "teams": {"admins": ["Bob"]}}},
      "keys": {"alice": ["ssh-ed25519 AAAA... alice"]},
      "keys_dir": "/srv/keys",       # <user>.keys files for users missing from "keys"
      "page_size": 100,              # the most members one page holds (per_page is capped by it)
      "token": "secret",             # if set, a call without "Bearer secret" is answered 401
      "failure": null                # or {"mode": "status", "status": 500}
                                     # or {"mode": "empty"}: every member list is []
                                     # or {"mode": "rate_limit", "status": 403 or 429,
                                     #     "times": N (default: always), "retry_after": seconds}
    }

Failures apply to the API paths only, never to the key files. Every request is appended
to the log (a JSON line with method, path, whether it carried the right token), which
the checks read to count retries.

    python3 github_api.py --port 8081 --state /srv/github/state.json --log /srv/github/requests.log
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ORG_MEMBERS = re.compile(r"^/orgs/([^/]+)/members$")
TEAM_MEMBERS = re.compile(r"^/orgs/([^/]+)/teams/([^/]+)/members$")
USER_KEYS = re.compile(r"^/([A-Za-z0-9-]+)\.keys$")


class StandIn:
    """The state file, the request log and the count of failures already served."""

    def __init__(self, state_file: Path, log_file: Path | None = None) -> None:
        self.state_file = Path(state_file)
        self.log_file = Path(log_file) if log_file else None
        self._lock = threading.Lock()
        self._state_digest = ""
        self._failures_served = 0

    def state(self) -> dict:
        raw = self.state_file.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            if digest != self._state_digest:
                # A new state starts a new count of failures.
                self._state_digest = digest
                self._failures_served = 0
        return json.loads(raw or b"{}")

    def take_failure(self, failure: dict) -> bool:
        """Whether this request gets the failure, counting it if so."""
        with self._lock:
            times = failure.get("times")
            if times is not None and self._failures_served >= int(times):
                return False
            self._failures_served += 1
            return True

    def log(self, entry: dict) -> None:
        if self.log_file is None:
            return
        with self._lock, self.log_file.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


def make_handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "GitHubStandIn/1"

        def log_message(self, format: str, *args) -> None:
            return

        def send(self, status: int, body: bytes, content_type: str, headers: dict) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: int, payload, headers: dict | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send(status, body, "application/json; charset=utf-8", headers or {})

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            state = stand_in.state()
            token = state.get("token")
            authorized = not token or self.headers.get("Authorization") == f"Bearer {token}"
            stand_in.log(
                {
                    "method": "GET",
                    "path": url.path,
                    "query": url.query,
                    "authorized": authorized,
                    "time": time.time(),
                }
            )
            keys = USER_KEYS.match(url.path)
            if keys:
                self.serve_keys(state, keys.group(1))
                return
            org = ORG_MEMBERS.match(url.path)
            team = TEAM_MEMBERS.match(url.path)
            if not org and not team:
                self.send_json(404, {"message": "Not Found"})
                return
            if not authorized:
                self.send_json(401, {"message": "Bad credentials"})
                return
            failure = state.get("failure") or {}
            mode = failure.get("mode")
            if mode in ("status", "rate_limit") and stand_in.take_failure(failure):
                self.serve_failure(failure)
                return
            organisation = state.get("orgs", {}).get((org or team).group(1))
            if organisation is None:
                self.send_json(404, {"message": "Not Found"})
                return
            if org:
                members = organisation.get("members", [])
            else:
                members = organisation.get("teams", {}).get(team.group(2))
                if members is None:
                    self.send_json(404, {"message": "Not Found"})
                    return
            if mode == "empty":
                members = []
            self.serve_page(url.path, query, members, int(state.get("page_size", 100)))

        def serve_keys(self, state: dict, user: str) -> None:
            # GitHub's names are case-insensitive.
            listed = {name.lower(): keys for name, keys in state.get("keys", {}).items()}
            if user.lower() in listed:
                text = "".join(key + "\n" for key in listed[user.lower()])
            else:
                keys_dir = state.get("keys_dir")
                path = Path(keys_dir, f"{user}.keys") if keys_dir else None
                if path is None or not path.is_file():
                    self.send(404, b"Not Found", "text/plain; charset=utf-8", {})
                    return
                text = path.read_text(encoding="utf-8")
            self.send(200, text.encode(), "text/plain; charset=utf-8", {})

        def serve_failure(self, failure: dict) -> None:
            if failure["mode"] == "status":
                status = int(failure.get("status", 500))
                self.send_json(status, {"message": f"Stand-in failure {status}"})
                return
            retry_after = int(failure.get("retry_after", 1))
            self.send_json(
                int(failure.get("status", 403)),
                {"message": "API rate limit exceeded for installation."},
                {
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + retry_after),
                    "Retry-After": str(retry_after),
                },
            )

        def serve_page(self, path: str, query: dict, members: list, page_size: int) -> None:
            per_page = min(int(query.get("per_page", ["30"])[0]), page_size, 100)
            page = max(int(query.get("page", ["1"])[0]), 1)
            last = max((len(members) + per_page - 1) // per_page, 1)
            chunk = members[(page - 1) * per_page : page * per_page]
            body = [
                {"login": login, "id": 1000 + i, "type": "User"} for i, login in enumerate(chunk)
            ]
            base = f"http://{self.headers.get('Host')}{path}"
            links = []
            if page < last:
                links.append(f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"')
                links.append(f'<{base}?per_page={per_page}&page={last}>; rel="last"')
            if page > 1:
                links.append(f'<{base}?per_page={per_page}&page=1>; rel="first"')
                links.append(f'<{base}?per_page={per_page}&page={page - 1}>; rel="prev"')
            self.send_json(200, body, {"Link": ", ".join(links)} if links else {})

    return Handler


def serve(stand_in: StandIn, host: str, port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(stand_in))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--log", type=Path)
    arguments = parser.parse_args()
    serve(StandIn(arguments.state, arguments.log), arguments.host, arguments.port).serve_forever()


if __name__ == "__main__":
    main()
