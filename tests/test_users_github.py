"""The users role's GitHub tasks against a stand-in GitHub API served from this test.

The role's read-only tasks (validation, the GitHub listing and its safety checks, the key
fetch and key pinning) run on this machine through a local connection. The host's current
members come from a `getent` placed first in PATH, which answers for the team groups from
the test's data and passes every other question to the real one: no account is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from testlib.playbooks import ROOT, ansible_playbook
from testlib.plugins import load_file, role_module

# The stand-in API the Molecule scenario serves from the laptop.
github_api = load_file(ROOT / "molecule" / "shared" / "files" / "github_api.py", "github_api")

ORG = "example"
TOKEN = "test-token-not-secret"
BOB_ADMIN = {"github": "bob", "admin": True}


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """A fresh ed25519 public key and its SHA256 fingerprint per name."""
    directory = tmp_path_factory.mktemp("keys")
    made = {}
    for name in ("alice", "bob", "dave", "erin", "frank", "gina", "alice-new"):
        path = directory / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(path)],
            check=True,
        )
        public = path.with_suffix(".pub").read_text().strip()
        listing = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path.with_suffix(".pub"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        made[name] = (public, listing.split()[1])
    return made


class Api:
    """The stand-in on an ephemeral loopback port, with its state and request log."""

    def __init__(self, directory: Path) -> None:
        self.state_file = directory / "state.json"
        self.log_file = directory / "requests.log"
        self.set({})
        self.server = github_api.serve(
            github_api.StandIn(self.state_file, self.log_file), "127.0.0.1", 0
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))
        self.log_file.write_text("")

    def requests(self, path: str) -> list[dict]:
        lines = self.log_file.read_text().splitlines()
        return [entry for entry in map(json.loads, lines) if entry["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(tmp_path):
    served = Api(tmp_path)
    yield served
    served.close()


@pytest.fixture
def host(tmp_path, monkeypatch):
    """The host's team groups, as `getent` reports them to the role."""
    real = shutil.which("getent")
    assert real, "getent is needed"
    groups_file = tmp_path / "groups"
    passwd_file = tmp_path / "passwd"
    fake = tmp_path / "bin" / "getent"
    fake.parent.mkdir()
    fake.write_text(
        f"""#!/bin/sh
case "$1" in
  group) file={groups_file} ;;
  passwd) file={passwd_file} ;;
  *) exec {real} "$@" ;;
esac
if [ $# -ge 2 ]; then
  grep "^$2:" "$file" && exit 0
  exec {real} "$@"
fi
cat "$file"
{real} "$1"
"""
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")

    def set_members(members: list[str], admins: list[str]) -> None:
        groups_file.write_text(
            f"team:x:2000:{','.join(members)}\nteam-admins:x:2001:{','.join(admins)}\n"
        )
        passwd_file.write_text(
            "".join(
                f"{name}:x:{3000 + i}:{3000 + i}:{name} (GitHub):/home/{name}:/bin/bash\n"
                for i, name in enumerate(sorted(set(members) | set(admins)))
                if name != "daemon"
            )
        )

    set_members([], [])
    return set_members


def run_role(tmp_path: Path, api: Api, variables: dict):
    """The role's checks, in main.yml's order; the merged team and keys, or the failure."""
    result_file = tmp_path / "result.json"
    playbook = tmp_path / "github.yml"
    settings = {
        "users_github_org": ORG,
        "users_github_api_url": api.url,
        "users_github_token": TOKEN,
        "users_keys_url_template": api.url + "/{user}.keys",
        "users_github_retry_delay": 0,
        "users_github_retry_max_delay": 1,
        "users_team": [],
    } | variables
    role = "ansible.builtin.include_role"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "The users role's GitHub checks",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": settings,
                    "tasks": [
                        {role: {"name": "users", "tasks_from": "validate"}},
                        {role: {"name": "users", "tasks_from": "github"}},
                        {role: {"name": "users", "tasks_from": "fetch_keys"}},
                        {
                            role: {"name": "users", "tasks_from": "keys_pin"},
                            "when": "users_keys_pin | default(false)",
                        },
                        {
                            "ansible.builtin.copy": {
                                "content": (
                                    "{{ {'present': users_present, 'absent': users_absent,"
                                    " 'admins': users_admins, 'keys': users_keys} | to_json }}"
                                ),
                                "dest": str(result_file),
                                "mode": "0600",
                            }
                        },
                    ],
                }
            ]
        )
    )
    run = ansible_playbook(
        "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)
    )
    output = " ".join((run.stdout + run.stderr).split())
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return run.returncode, output, result


def org_state(keys, members, teams=None, **extra) -> dict:
    return {
        "orgs": {ORG: {"members": members, "teams": teams or {}}},
        "keys": {name: [keys[name.lower()][0]] for name in members},
        "token": TOKEN,
    } | extra


def names(entries: list[dict]) -> list[str]:
    return sorted(entry["github"].lower() for entry in entries)


def test_org_members_over_several_pages_become_the_team(tmp_path, api, host, keys):
    members = ["alice", "Bob", "dave", "erin", "frank"]
    api.set(org_state(keys, members, page_size=2))
    code, output, result = run_role(tmp_path, api, {})
    assert code == 0, output
    assert names(result["present"]) == ["alice", "bob", "dave", "erin", "frank"]
    assert result["absent"] == [] and result["admins"] == []
    assert result["keys"]["bob"] == [keys["bob"][0]]
    pages = api.requests(f"/orgs/{ORG}/members")
    assert [parse_qs(entry["query"]).get("page", ["1"])[0] for entry in pages] == ["1", "2", "3"]
    assert all(entry["authorized"] for entry in pages), "the token was not sent"
    assert TOKEN not in output, "the token was printed"


def test_a_team_restricts_and_the_admins_team_grants_admin(tmp_path, api, host, keys):
    members = ["alice", "bob", "dave", "erin", "frank"]
    teams = {"data": ["alice", "dave"], "admins": ["bob"]}
    api.set(org_state(keys, members, teams, page_size=1))
    code, output, result = run_role(
        tmp_path, api, {"users_github_team": "data", "users_github_admins_team": "admins"}
    )
    assert code == 0, output
    assert names(result["present"]) == ["alice", "bob", "dave"]
    assert result["admins"] == ["bob"]
    assert not api.requests(f"/orgs/{ORG}/members"), "the whole org was listed"


def test_explicit_entries_win(tmp_path, api, host, keys):
    members = ["alice", "bob", "dave", "erin"]
    team = [
        {"github": "alice", "admin": False},
        {"github": "erin", "state": "absent"},
        {"github": "dave", "extra_keys": [keys["gina"][0]]},
        {"github": "frank", "extra_keys": [keys["frank"][0]]},
    ]
    api.set(
        org_state(keys, members, {"admins": ["alice", "bob"]})
        | {"keys": {name: [keys[name][0]] for name in [*members, "frank"]}}
    )
    code, output, result = run_role(
        tmp_path, api, {"users_team": team, "users_github_admins_team": "admins"}
    )
    assert code == 0, output
    assert names(result["present"]) == ["alice", "bob", "dave", "frank"]
    assert names(result["absent"]) == ["erin"]
    assert result["admins"] == ["bob"], "alice's explicit admin: false must win"
    assert result["keys"]["dave"] == [keys["dave"][0], keys["gina"][0]]


def test_an_org_leaver_is_removed_as_absent(tmp_path, api, host, keys):
    host(["alice", "bob", "dave", "erin", "frank"], ["bob"])
    api.set(org_state(keys, ["alice", "bob", "dave", "frank"]))
    code, output, result = run_role(tmp_path, api, {"users_team": [BOB_ADMIN]})
    assert code == 0, output
    assert result["absent"] == [{"github": "erin", "state": "absent"}], "home kept: no purge"


@pytest.mark.parametrize("status", [500, 502, 404])
def test_a_failing_api_stops_the_run(tmp_path, api, host, keys, status):
    api.set(org_state(keys, ["alice"], failure={"mode": "status", "status": status}))
    code, output, result = run_role(tmp_path, api, {})
    assert code != 0 and result is None, output
    assert "The GitHub API call failed" in output, output
    assert f"answered {status}" in output, output


def test_an_unreachable_api_stops_the_run(tmp_path, api, host, keys):
    api.set(org_state(keys, ["alice"]))
    code, output, result = run_role(
        tmp_path, api, {"users_github_api_url": "http://127.0.0.1:9", "users_github_timeout": 3}
    )
    assert code != 0 and result is None, output
    assert "The GitHub API call failed" in output and "answered nothing" in output, output


def test_a_wrong_token_stops_the_run(tmp_path, api, host, keys):
    api.set(org_state(keys, ["alice"]))
    code, output, result = run_role(tmp_path, api, {"users_github_token": "wrong-token"})
    assert code != 0 and result is None, output
    assert "answered 401" in output, output
    assert "wrong-token" not in output, "the token was printed"


def test_an_empty_member_list_stops_the_run(tmp_path, api, host, keys):
    host(["alice", "bob"], ["bob"])
    api.set(org_state(keys, ["alice", "bob"], failure={"mode": "empty"}))
    code, output, result = run_role(tmp_path, api, {})
    assert code != 0 and result is None, output
    assert "GitHub listed no members of example" in output, output


@pytest.mark.parametrize("status", [403, 429])
def test_a_rate_limit_is_retried_then_fails_clearly(tmp_path, api, host, keys, status):
    failure = {"mode": "rate_limit", "status": status, "retry_after": 1}
    api.set(org_state(keys, ["alice"], failure=failure))
    code, output, result = run_role(tmp_path, api, {"users_github_retries": 2})
    assert code != 0 and result is None, output
    assert "GitHub's API rate limit is exhausted" in output, output
    assert f"answered {status}" in output and "after 2 retries" in output, output
    calls = api.requests(f"/orgs/{ORG}/members")
    assert len(calls) == 3, calls
    assert calls[1]["time"] - calls[0]["time"] >= 0.9, "no wait between retries"


def test_a_passing_rate_limit_is_waited_out(tmp_path, api, host, keys):
    failure = {"mode": "rate_limit", "status": 403, "retry_after": 1, "times": 2}
    api.set(org_state(keys, ["alice", "bob"], failure=failure))
    code, output, result = run_role(tmp_path, api, {"users_github_retries": 3})
    assert code == 0, output
    assert names(result["present"]) == ["alice", "bob"]
    assert len(api.requests(f"/orgs/{ORG}/members")) == 3


def test_a_mass_removal_is_refused(tmp_path, api, host, keys):
    host(["alice", "bob", "dave", "erin", "frank"], ["bob"])
    api.set(org_state(keys, ["alice", "bob"]))
    code, output, result = run_role(tmp_path, api, {})
    assert code != 0 and result is None, output
    assert "would remove 3 of the 5 current members (dave, erin, frank)" in output, output
    assert "-e users_allow_mass_removal=true" in output


def test_a_removal_above_the_share_is_refused(tmp_path, api, host, keys):
    host(["alice", "bob", "dave", "erin"], ["bob"])
    api.set(org_state(keys, ["alice", "bob", "dave"]))
    code, output, result = run_role(tmp_path, api, {})
    assert code != 0 and result is None, output
    assert "would remove 1 of the 4 current members (erin)" in output, output


def test_the_flag_lets_a_mass_removal_through(tmp_path, api, host, keys):
    host(["alice", "bob", "dave", "erin", "frank"], ["bob"])
    api.set(org_state(keys, ["alice", "bob"]))
    code, output, result = run_role(
        tmp_path, api, {"users_team": [BOB_ADMIN], "users_allow_mass_removal": True}
    )
    assert code == 0, output
    assert names(result["absent"]) == ["dave", "erin", "frank"]


def test_removing_every_admin_is_refused(tmp_path, api, host, keys):
    host(["alice", "bob", "dave", "erin", "frank"], ["bob"])
    api.set(org_state(keys, ["alice", "bob", "dave", "erin", "frank"], {"admins": []}))
    code, output, result = run_role(tmp_path, api, {"users_github_admins_team": "admins"})
    assert code != 0 and result is None, output
    assert "would remove every admin (bob" in output, output
    code, output, result = run_role(
        tmp_path,
        api,
        {"users_github_admins_team": "admins", "users_allow_admin_removal": True},
    )
    assert code == 0, output
    assert result["admins"] == []


def test_a_name_that_cannot_be_an_account_stops_the_run(tmp_path, api, host, keys):
    api.set(org_state(keys, ["alice"]) | {"orgs": {ORG: {"members": ["alice", "root"]}}})
    code, output, result = run_role(tmp_path, api, {})
    assert code != 0 and result is None, output
    assert "GitHub lists root as a member of example" in output, output
    code, output, result = run_role(tmp_path, api, {"users_github_exclude": ["root"]})
    assert code == 0, output
    assert names(result["present"]) == ["alice"]


def test_pinning_refuses_a_new_key_and_prints_its_fingerprint(tmp_path, api, host, keys):
    state = org_state(keys, ["alice", "bob"])
    state["keys"]["alice"].append(keys["alice-new"][0])
    api.set(state)
    pinned = {"alice": [keys["alice"][1]], "bob": [keys["bob"][1]]}
    code, output, result = run_role(
        tmp_path, api, {"users_keys_pin": True, "users_keys_pinned_fingerprints": pinned}
    )
    assert code != 0 and result is None, output
    assert f"alice: {keys['alice-new'][1]}" in output, output
    assert keys["alice"][1] not in output and keys["bob"][1] not in output, (
        "pinned keys were refused"
    )
    pinned["alice"].append(keys["alice-new"][1])
    code, output, result = run_role(
        tmp_path, api, {"users_keys_pin": True, "users_keys_pinned_fingerprints": pinned}
    )
    assert code == 0, output
    assert result["keys"]["alice"] == [keys["alice"][0], keys["alice-new"][0]]


def test_checks_come_before_the_first_change():
    tasks = yaml.safe_load((ROOT / "roles" / "users" / "tasks" / "main.yml").read_text())
    order = [
        task.get("ansible.builtin.import_tasks") or task["ansible.builtin.include_tasks"]["file"]
        for task in tasks
    ]
    assert order.index("github.yml") < order.index("fetch_keys.yml")
    assert order.index("fetch_keys.yml") < order.index("keys_pin.yml") < order.index("present.yml")


def test_a_system_account_in_the_team_group_is_never_a_leaver(tmp_path, api, host, keys):
    host(["alice", "bob", "daemon"], ["bob"])
    api.set(org_state(keys, ["alice", "bob"]))
    code, output, result = run_role(tmp_path, api, {"users_team": [BOB_ADMIN]})
    assert code == 0, output
    assert result["absent"] == [], "a system account would be locked out"


def test_a_list_of_exactly_max_pages_is_read_and_a_longer_one_refused(tmp_path, api, host, keys):
    members = ["alice", "bob", "dave", "erin", "frank", "gina"]
    api.set(org_state(keys, members, page_size=2))
    (tmp_path / "three").mkdir()
    (tmp_path / "two").mkdir()
    code, output, result = run_role(tmp_path / "three", api, {"users_github_max_pages": 3})
    assert code == 0, output
    assert names(result["present"]) == members
    code, output, result = run_role(tmp_path / "two", api, {"users_github_max_pages": 2})
    assert code != 0 and result is None, output
    assert "goes on beyond 2 pages (users_github_max_pages)" in output, output


def test_a_next_page_outside_the_api_is_refused_before_the_token_goes_there():
    github_members = role_module("users", "github_members")
    params = {
        "api_url": "https://api.example.org/",
        "token": TOKEN,
        "timeout": 1,
        "max_pages": 5,
        "retries": 0,
        "retry_delay": 0,
        "retry_max_delay": 0,
    }
    lister = github_members.Lister(params)
    asked = []

    def answer(url):
        asked.append(url)
        link = '<https://elsewhere.example.net/orgs/x/members?page=2>; rel="next"'
        return 200, {"link": link}, [{"login": "alice"}], "OK"

    lister.request = answer
    with pytest.raises(github_members.ListingError, match="points its next page outside"):
        lister.members("/orgs/x/members")
    assert asked == ["https://api.example.org/orgs/x/members?per_page=100"]
