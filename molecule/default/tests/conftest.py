"""Fixtures for the checks: the master as Ansible sees it, and the laptop a team member uses."""

from __future__ import annotations

import os
import shlex

import pytest
import testinfra
from testlib.molecule import (
    HUB,
    LOCAL_PORT,
    TUNNEL_SOCKET,
    close_forwards,
    open_hub_forward,
    wait_for_hub,
)


def _host(name: str) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="session")
def master() -> testinfra.host.Host:
    return _host("master")


@pytest.fixture(scope="session")
def laptop() -> testinfra.host.Host:
    return _host("laptop")


@pytest.fixture(scope="module")
def hub(laptop):
    """A forward of the hub's port to the laptop, made with alice's key, and the client."""
    open_hub_forward(laptop, "alice", LOCAL_PORT, TUNNEL_SOCKET)
    ready = wait_for_hub(laptop)
    assert ready.rc == 0, f"the hub never answered through the forward: {ready.stderr}"
    yield HUB
    close_forwards(laptop, "alice", TUNNEL_SOCKET)


@pytest.fixture
def passwords(master):
    """Set members' passwords for one test; every touched account gets its old hash back."""
    saved: dict[str, str] = {}

    def set_password(user: str, password: str | None) -> None:
        if user not in saved:
            saved[user] = master.check_output(f"getent shadow {user} | cut -d: -f2")
        # Each test starts with a clean slate of failed logins (the hub throttles names).
        master.check_output(f"faillock --user {user} --reset")
        if password is None:
            # What a fresh account has: no usable password.
            master.check_output(f"usermod -p '!' {user}")
        else:
            # What `sudo passwd <me>` does.
            master.check_output(f"echo {shlex.quote(f'{user}:{password}')} | chpasswd")

    yield set_password
    for user, hashed in saved.items():
        master.check_output(f"usermod -p {shlex.quote(hashed)} {user}")
        master.check_output(f"faillock --user {user} --reset")
