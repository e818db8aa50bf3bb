"""The team from a GitHub organization, against the stand-in API on the laptop (port 8081).

The checks run in order, each on the state the one before left: org members become
accounts, a team restricts, a leaver is locked out, every unsafe answer changes nothing,
pinning refuses a new key, and the override lets a mass removal through. At the end the
users role runs once more with the scenario's own inventory, and the laptop's keys and
the stand-in are as prepare left them.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess

import pytest
from testlib.molecule import SSH_OPTIONS, authorized_keys_checksums, ssh
from testlib.playbooks import run_playbook

ORG = "example"
GITHUB = {
    "users_github_org": ORG,
    "users_github_api_url": "http://laptop:8081",
    "users_github_token": "molecule-token",
    # Rate limits are answered with Retry-After: 1; one retry keeps the run short.
    "users_github_retries": 1,
    "users_github_retry_max_delay": 1,
}
ORG_MEMBERS = ["alice", "Bob", "dave", "erin", "frank"]
# The org once frank has left.
CURRENT = ["alice", "Bob", "dave", "erin"]


def run_users(extra_vars: dict | None = None) -> subprocess.CompletedProcess:
    """The users role's tasks alone (`--tags users`), from the one play of site.yml that
    holds them, against the Molecule hosts."""
    return run_playbook("playbooks/access.yml", extra_vars, timeout=900, tags="users")


def output_of(run: subprocess.CompletedProcess) -> str:
    return " ".join((run.stdout + run.stderr).split())


def set_github(laptop, members: list[str], teams: dict | None = None, **extra) -> None:
    """What the stand-in answers from now on; its request log starts empty."""
    state = {
        "orgs": {ORG: {"members": members, "teams": teams or {}}},
        "token": GITHUB["users_github_token"],
    } | extra
    encoded = base64.b64encode(json.dumps(state).encode()).decode()
    laptop.check_output(
        f"echo {encoded} | base64 -d > /srv/github/state.json && : > /srv/github/requests.log"
    )


def api_calls(laptop) -> list[dict]:
    log = laptop.file("/srv/github/requests.log").content_string
    return [json.loads(line) for line in log.splitlines() if "/orgs/" in line]


def host_state(master) -> dict:
    """Checksums of every authorized_keys file and of the account databases."""
    databases = master.check_output("sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow")
    return {"authorized_keys": authorized_keys_checksums(master), "databases": databases}


def fingerprint(laptop, public_key_file: str) -> str:
    return laptop.check_output(f"ssh-keygen -l -E sha256 -f {public_key_file}").split()[1]


def master_changes(run: subprocess.CompletedProcess) -> int:
    recap = re.search(r"^master\s*:.*?changed=(\d+)", run.stdout, re.MULTILINE)
    assert recap, run.stdout
    return int(recap.group(1))


@pytest.fixture(scope="module", autouse=True)
def scenario_restored(laptop, master):
    """Whatever happens here, later modules see the scenario's own team and keys again."""
    yield
    laptop.run("cp /root/keys/dave.pub /srv/keys/dave.keys")
    set_github(laptop, [])
    for name in ("dave", "erin", "frank"):
        # 6: no such account (a check failed before it was made); --force: even if still logged in.
        assert master.run(f"userdel --force --remove {name}").rc in (0, 6)
    restore = run_users()
    assert restore.returncode == 0, output_of(restore)


def test_org_members_become_accounts_with_their_keys(laptop, master):
    set_github(laptop, ORG_MEMBERS, page_size=2)
    run = run_users(GITHUB)
    assert run.returncode == 0, output_of(run)
    member_pages = [call for call in api_calls(laptop) if call["path"] == f"/orgs/{ORG}/members"]
    assert len(member_pages) == 3, member_pages
    assert all(call["authorized"] for call in member_pages), "the token was not sent"
    assert GITHUB["users_github_token"] not in run.stdout + run.stderr
    for name in ("dave", "erin", "frank"):
        assert "team" in master.user(name).groups
        listed = master.file(f"/home/{name}/.ssh/authorized_keys").content_string.split("\n")
        own_key = laptop.file(f"/root/keys/{name}.pub").content_string.strip()
        assert own_key in listed, f"{name}'s key from the key server is missing"
    login = ssh(laptop, "dave", "id -un")
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == "dave"
    assert "team-admins" in master.user("bob").groups, "the inventory's admin flag must stay"
    assert master.run("getent passwd carol").rc == 0
    assert "team" not in master.user("carol").groups, "state: absent in users_team must win"


def test_a_second_run_changes_nothing(laptop):
    set_github(laptop, ORG_MEMBERS, page_size=2)
    run = run_users(GITHUB)
    assert run.returncode == 0, output_of(run)
    assert master_changes(run) == 0, run.stdout


def test_a_team_restricts_and_an_org_leaver_is_locked_out(laptop, master):
    # frank left the org; gina joined it, but not the team.
    set_github(
        laptop,
        ["alice", "Bob", "dave", "erin", "gina"],
        {"data": ["alice", "dave", "erin"]},
    )
    run = run_users(GITHUB | {"users_github_team": "data"})
    assert run.returncode == 0, output_of(run)
    assert master.run("getent passwd gina").rc != 0, "an org member outside the team got an account"
    assert ssh(laptop, "frank", "true").rc != 0, "the leaver still gets in"
    assert ssh(laptop, "erin", "true").rc == 0, "a team member with the same setup must get in"
    assert master.file("/home/frank").is_directory, "a leaver's home is kept"
    assert not master.file("/home/frank/.ssh/authorized_keys").exists
    assert "team" not in master.user("frank").groups
    assert master.user("frank").shell == "/usr/sbin/nologin", "the leaver's account is not locked"


@pytest.mark.parametrize(
    ("members", "failure", "reason"),
    [
        (CURRENT, {"mode": "status", "status": 500}, "answered 500"),
        (CURRENT, {"mode": "empty"}, "GitHub listed no members of example"),
        (
            CURRENT,
            {"mode": "rate_limit", "status": 429, "retry_after": 1},
            "API rate limit is exhausted",
        ),
        (["alice", "Bob"], None, "would remove 2 of the 4 current members (dave, erin)"),
    ],
    ids=["http-500", "empty-list", "rate-limit", "mass-removal"],
)
def test_an_unsafe_answer_changes_nothing(laptop, master, members, failure, reason):
    before = host_state(master)
    set_github(laptop, members, failure=failure)
    run = run_users(GITHUB)
    output = output_of(run)
    assert run.returncode != 0, output
    assert reason in output, output
    assert host_state(master) == before
    if failure and failure["mode"] == "rate_limit":
        assert len(api_calls(laptop)) == 2, "the rate-limited call was not retried once"


def test_an_answer_that_removes_every_admin_changes_nothing(laptop, master):
    before = host_state(master)
    set_github(laptop, CURRENT, {"admins": ["Bob"], "nobody": []})
    # Bob is an admin through the admins team only; the team now answered is empty.
    team = [{"github": "alice"}, {"github": "Bob"}, {"github": "carol", "state": "absent"}]
    run = run_users(GITHUB | {"users_team": team, "users_github_admins_team": "nobody"})
    output = output_of(run)
    assert run.returncode != 0, output
    assert "would remove every admin (bob" in output, output
    assert host_state(master) == before
    assert "team-admins" in master.user("bob").groups


def test_pinning_refuses_a_new_key_and_prints_its_fingerprint(laptop, master):
    pinned = {
        name: [fingerprint(laptop, f"/root/keys/{name}.pub")]
        for name in ("alice", "bob", "dave", "erin")
    }
    laptop.check_output(
        "rm -f /root/keys/dave-new /root/keys/dave-new.pub && "
        "ssh-keygen -q -t ed25519 -N '' -C dave-new@laptop -f /root/keys/dave-new && "
        "cat /root/keys/dave.pub /root/keys/dave-new.pub > /srv/keys/dave.keys"
    )
    new_key = fingerprint(laptop, "/root/keys/dave-new.pub")
    before = host_state(master)
    set_github(laptop, CURRENT)
    run = run_users(GITHUB | {"users_keys_pin": True, "users_keys_pinned_fingerprints": pinned})
    output = output_of(run)
    assert run.returncode != 0, output
    assert f"dave: {new_key}" in output, output
    assert host_state(master) == before
    refused = laptop.run(f"ssh {SSH_OPTIONS} -i /root/keys/dave-new dave@master true")
    assert refused.rc != 0, "the refused key logs in"


def test_the_override_lets_a_mass_removal_through(laptop, master):
    laptop.check_output("cp /root/keys/dave.pub /srv/keys/dave.keys")
    set_github(laptop, ["alice", "Bob"])
    run = run_users(GITHUB | {"users_allow_mass_removal": True})
    assert run.returncode == 0, output_of(run)
    for name in ("dave", "erin"):
        assert "team" not in master.user(name).groups
        assert not master.file(f"/home/{name}/.ssh/authorized_keys").exists
        assert master.file(f"/home/{name}").is_directory
    assert ssh(laptop, "alice", "true").rc == 0
