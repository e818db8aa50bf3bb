#!/usr/bin/python
"""List the members of a GitHub organization (or team) and of its admins team.

Reads only. Every page of GitHub's REST API is followed through its `Link: rel="next"`
header, a rate-limited answer is retried after `Retry-After` (or a doubling delay),
and any other answer that is not a list of members fails the module with the URL and
what GitHub said, so the users role stops before its first change.
"""

from __future__ import annotations

import contextlib
import json
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

DOCUMENTATION = r"""
module: github_members
short_description: List a GitHub organization's (or team's) members and its admins team
description:
  - Pages through C(/orgs/<org>/members) or C(/orgs/<org>/teams/<team>/members), and through
    the admins team's members when one is named, retrying rate-limited answers.
  - The token is sent only to O(api_url); a next page elsewhere fails the module.
options:
  api_url: {type: str, required: true, description: Base URL of the REST API.}
  org: {type: str, required: true, description: The organization.}
  team: {type: str, default: "", description: Only this team's members; empty for the whole org.}
  admins_team: {type: str, default: "", description: The team whose members are admins.}
  token: {type: str, default: "", description: A token with read:org.}
  timeout: {type: int, default: 15, description: Seconds per request.}
  max_pages: {type: int, default: 50, description: Pages one list may have.}
  retries: {type: int, default: 3, description: Retries of a rate-limited request.}
  retry_delay: {type: int, default: 5, description: First wait without Retry-After; it doubles.}
  retry_max_delay: {type: int, default: 60, description: The longest wait.}
"""

RETURN = r"""
members: {description: Logins of the members, in GitHub's order, each once., type: list}
admins: {description: Logins of the admins team's members (empty without one)., type: list}
"""

NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
UNCHANGED = "no account, group or key was changed"


class ListingError(Exception):
    """A listing that must stop the run; the message says why."""


class Lister:
    def __init__(self, params: dict) -> None:
        self.params = params
        self.base = params["api_url"].rstrip("/")
        self.headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        if params["token"]:
            self.headers["Authorization"] = f"Bearer {params['token']}"

    def request(self, url: str) -> tuple[int, dict, object, str]:
        """Status (-1 for no answer), headers, decoded JSON (None if not JSON), message."""
        try:
            answer = open_url(
                url,
                headers=self.headers,
                timeout=self.params["timeout"],
                follow_redirects="safe",
            )
            status, headers, body, message = answer.getcode(), answer.headers, answer.read(), "OK"
        # Every failure is reported with what the server or the network said.
        except Exception as error:
            status = getattr(error, "code", -1) or -1
            headers = getattr(error, "headers", None) or {}
            try:
                body = error.read() if hasattr(error, "read") else b""
            except Exception:
                body = b""
            message = str(getattr(error, "reason", "") or error)
        try:
            content = json.loads(body) if body else None
        except ValueError:
            content = None
        if isinstance(content, dict) and content.get("message"):
            message = str(content["message"])
        return status, {k.lower(): v for k, v in dict(headers).items()}, content, message

    def wait(self, headers: dict, attempt: int) -> None:
        delay = self.params["retry_delay"] * 2**attempt
        with contextlib.suppress(KeyError, ValueError):
            delay = int(headers["retry-after"])
        time.sleep(max(0, min(delay, self.params["retry_max_delay"])))

    def members(self, path: str) -> list[str]:
        url = f"{self.base}{path}?per_page=100"
        found: list[str] = []
        pages = 0
        while url:
            attempt = 0
            while True:
                status, headers, content, message = self.request(url)
                limited = status in (403, 429) and (
                    headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
                )
                if not limited:
                    break
                if attempt >= self.params["retries"]:
                    raise ListingError(
                        f"GitHub's API rate limit is exhausted: {url} still answered {status} "
                        f"({message}) after {self.params['retries']} retries, so {UNCHANGED}. Run "
                        f"again later (the limit resets at "
                        f"{headers.get('x-ratelimit-reset', 'an unknown time')}, Unix time), or "
                        f"set users_github_token: authenticated calls get a far higher limit."
                    )
                self.wait(headers, attempt)
                attempt += 1
            if status != 200 or not isinstance(content, list):
                raise ListingError(
                    f"The GitHub API call failed, so {UNCHANGED}: {url} answered "
                    f"{status if status > 0 else 'nothing'} ({message.strip()}). Check "
                    f"users_github_api_url, users_github_org, users_github_team, "
                    f"users_github_admins_team and the token's read:org scope."
                )
            found += [str(member["login"]) for member in content if isinstance(member, dict)]
            pages += 1
            link = NEXT_LINK.findall(headers.get("link", ""))
            url = link[0] if link else ""
            # The token goes only to the configured API.
            if url and not url.startswith(self.base + "/"):
                raise ListingError(
                    f"GitHub's member list for {path} points its next page outside "
                    f"{self.base}: {url}; {UNCHANGED}."
                )
            if url and pages >= self.params["max_pages"]:
                raise ListingError(
                    f"GitHub's member list for {path} goes on beyond "
                    f"{self.params['max_pages']} pages (users_github_max_pages); {UNCHANGED}."
                )
        return list(dict.fromkeys(found))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "api_url": {"type": "str", "required": True},
            "org": {"type": "str", "required": True},
            "team": {"type": "str", "default": ""},
            "admins_team": {"type": "str", "default": ""},
            "token": {"type": "str", "default": "", "no_log": True},
            "timeout": {"type": "int", "default": 15},
            "max_pages": {"type": "int", "default": 50},
            "retries": {"type": "int", "default": 3},
            "retry_delay": {"type": "int", "default": 5},
            "retry_max_delay": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    params = module.params
    lister = Lister(params)
    org = f"/orgs/{params['org']}"
    try:
        members = lister.members(
            f"{org}/teams/{params['team']}/members" if params["team"] else f"{org}/members"
        )
        admins = (
            lister.members(f"{org}/teams/{params['admins_team']}/members")
            if params["admins_team"] and members
            else []
        )
    except ListingError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, members=members, admins=admins)


if __name__ == "__main__":
    main()
