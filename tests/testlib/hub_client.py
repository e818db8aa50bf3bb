#!/usr/bin/env python3
"""A team member's browser, reduced to what the checks need: log in to JupyterHub through
its login form, start the member's server, and run code in a kernel over the websocket.

Runs on the laptop (python3-requests, python3-websocket), against the hub as forwarded by
`ssh -L`. Every wait is bounded; any failure exits non-zero with what went wrong.

    hub_client.py --hub http://127.0.0.1:18000 login alice PASSWORD [--save-cookies FILE]
    hub_client.py --hub ... whoami --cookies FILE
    hub_client.py --hub ... run alice PASSWORD CODE [--stop]
    hub_client.py --hub ... get alice PASSWORD PATH... [--stop]   (JSON of each server path)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
import websocket

REQUEST_TIMEOUT = 30
WEBSOCKET_READ_TIMEOUT = 5


class HubError(Exception):
    pass


class Hub:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.token = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def _xsrf_headers(self) -> dict[str, str]:
        xsrf = self.session.cookies.get("_xsrf", path="/hub/") or self.session.cookies.get("_xsrf")
        return {"X-XSRFToken": xsrf} if xsrf else {}

    def _api_headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"token {self.token}"}
        return self._xsrf_headers()

    def login(self, username: str, password: str) -> requests.Response:
        """Submit the login form the way a browser does: GET it for the _xsrf cookie, POST."""
        form = self.session.get(self.url("/hub/login"), timeout=REQUEST_TIMEOUT)
        form.raise_for_status()
        xsrf = self.session.cookies.get("_xsrf")
        if not xsrf:
            raise HubError("the login page set no _xsrf cookie")
        return self.session.post(
            self.url("/hub/login"),
            data={"username": username, "password": password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT,
        )

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {}) | self._api_headers()
        return self.session.request(
            method, self.url(f"/hub/api{path}"), headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
        )

    def request_token(self, username: str) -> None:
        reply = self.api("POST", f"/users/{username}/tokens", json={"note": "hub_client check"})
        if reply.status_code != 201:
            raise HubError(f"token request answered {reply.status_code}: {reply.text[:300]}")
        self.token = reply.json()["token"]

    def start_server(self, username: str, within: float) -> str:
        """Start the member's default server and wait until the hub says it is ready."""
        reply = self.api("POST", f"/users/{username}/server")
        if reply.status_code not in (201, 202, 400):
            raise HubError(f"starting the server answered {reply.status_code}: {reply.text[:300]}")
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{username}").json()
            server = model.get("servers", {}).get("", {})
            if server.get("ready"):
                return server["url"]
            if not server.get("pending") and not server:
                raise HubError(f"the server stopped while starting: {json.dumps(model)[:500]}")
            time.sleep(1)
        raise HubError(f"the server was not ready within {within:.0f} s")

    def get_paths(self, server_url: str, paths: list[str]) -> dict[str, dict]:
        """GET each path of the member's server; its status and its JSON (or text) answer."""
        headers = {"Authorization": f"token {self.token}"}
        answers = {}
        for path in paths:
            reply = self.session.get(
                self.url(f"{server_url}{path.lstrip('/')}"),
                headers=headers,
                timeout=REQUEST_TIMEOUT,
            )
            try:
                body = reply.json()
            except ValueError:
                body = reply.text[:200_000]
            answers[path] = {"status": reply.status_code, "body": body}
        return answers

    def stop_server(self, username: str) -> None:
        self.api("DELETE", f"/users/{username}/server")

    def run_code(self, server_url: str, code: str, within: float) -> str:
        """Start a kernel on the server, run `code` in it and return what it printed."""
        headers = {"Authorization": f"token {self.token}"}
        kernels = self.url(f"{server_url}api/kernels")
        reply = self.session.post(kernels, json={}, headers=headers, timeout=REQUEST_TIMEOUT)
        if reply.status_code != 201:
            raise HubError(f"creating a kernel answered {reply.status_code}: {reply.text[:300]}")
        kernel_id = reply.json()["id"]
        try:
            return self._execute(f"{kernels}/{kernel_id}/channels", code, within)
        finally:
            self.session.delete(f"{kernels}/{kernel_id}", headers=headers, timeout=REQUEST_TIMEOUT)

    def _execute(self, channels_url: str, code: str, within: float) -> str:
        parts = urlsplit(channels_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        session_id = uuid.uuid4().hex
        # A short read timeout: recv() answers the server's pings itself and keeps
        # waiting, so with a timeout as long as the ping interval it may never return
        # and the deadline below would never be looked at.
        ws = websocket.create_connection(
            f"{scheme}://{parts.netloc}{parts.path}?session_id={session_id}",
            header=[f"Authorization: token {self.token}"],
            timeout=WEBSOCKET_READ_TIMEOUT,
        )
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "hub_client",
                        "session": session_id,
                        "date": datetime.now(UTC).isoformat(),
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        output: list[str] = []
        replied = idle = False
        status = "unknown"
        deadline = time.monotonic() + within
        try:
            while not (replied and idle):
                if time.monotonic() > deadline:
                    raise HubError(f"no result within {within:.0f} s; output so far: {output}")
                try:
                    message = json.loads(ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    output.append(content["text"])
                elif kind in ("execute_result", "display_data"):
                    output.append(content["data"].get("text/plain", "") + "\n")
                elif kind == "error":
                    output.append("\n".join(content["traceback"]) + "\n")
                elif kind == "execute_reply":
                    replied, status = True, content["status"]
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
        finally:
            ws.close()
        text = "".join(output)
        if status != "ok":
            raise HubError(f"the code failed in the kernel ({status}):\n{text}")
        return text


def _logged_in(reply: requests.Response) -> bool:
    location = reply.headers.get("Location", "")
    return reply.status_code == 302 and "/hub/login" not in location


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hub", default="http://127.0.0.1:8000", help="the hub's URL")
    commands = parser.add_subparsers(dest="command", required=True)
    login = commands.add_parser("login", help="log in; exit 0 only if the hub accepted")
    login.add_argument("username")
    login.add_argument("password")
    login.add_argument("--save-cookies", help="write the session's cookies to this file")
    whoami = commands.add_parser("whoami", help="who the saved cookies belong to (hub API)")
    whoami.add_argument("--cookies", required=True)
    run = commands.add_parser("run", help="log in, start the server, run code in a kernel")
    run.add_argument("username")
    run.add_argument("password")
    run.add_argument("code")
    run.add_argument("--spawn-timeout", type=float, default=180)
    run.add_argument("--run-timeout", type=float, default=120)
    run.add_argument("--stop", action="store_true", help="stop the server afterwards")
    get = commands.add_parser("get", help="log in, start the server, GET paths of it")
    get.add_argument("username")
    get.add_argument("password")
    get.add_argument("paths", nargs="+", help="paths relative to the server, e.g. api/status")
    get.add_argument("--spawn-timeout", type=float, default=180)
    get.add_argument("--stop", action="store_true", help="stop the server afterwards")
    return parser


def _on_server(hub: Hub, args: argparse.Namespace) -> None:
    """Start the member's server, then run the code or GET the paths."""
    hub.request_token(args.username)
    server_url = hub.start_server(args.username, args.spawn_timeout)
    print(f"server ready at {server_url}")
    try:
        if args.command == "get":
            print(json.dumps(hub.get_paths(server_url, args.paths)))
        else:
            print(hub.run_code(server_url, args.code, args.run_timeout), end="")
    finally:
        if args.stop:
            hub.stop_server(args.username)


def main() -> int:
    args = _parser().parse_args()
    hub = Hub(args.hub)

    try:
        if args.command == "whoami":
            for cookie in json.loads(Path(args.cookies).read_text()):
                hub.session.cookies.set(**cookie)
            reply = hub.api("GET", "/user")
            print(f"status {reply.status_code}")
            if reply.status_code != 200:
                return 1
            model = reply.json()
            print(json.dumps({"name": model["name"], "admin": model["admin"]}))
            return 0

        reply = hub.login(args.username, args.password)
        print(f"login status {reply.status_code} location {reply.headers.get('Location', '')}")
        if not _logged_in(reply):
            return 1
        if args.command == "login":
            if args.save_cookies:
                cookies = [
                    {"name": c.name, "value": c.value, "domain": c.domain, "path": c.path}
                    for c in hub.session.cookies
                ]
                Path(args.save_cookies).write_text(json.dumps(cookies))
            return 0

        _on_server(hub, args)
        return 0
    except (HubError, requests.RequestException, websocket.WebSocketException, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
