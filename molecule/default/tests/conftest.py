"""Fixtures for the checks: the master as Ansible sees it, and the laptop a team member uses."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import testinfra
from helpers import CLIENT, HUB, HUB_PORT, LOCAL_PORT, SSH_OPTIONS, TUNNEL_SOCKET, wait_for_hub


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
    laptop.ansible(
        "copy",
        f"src={Path(__file__).with_name('hub_client.py')} dest={CLIENT} mode=0755",
        check=False,
    )
    laptop.run(f"ssh -S {TUNNEL_SOCKET} -O exit alice@master")
    tunnel = laptop.run(
        f"ssh {SSH_OPTIONS} -i /root/keys/alice -M -S {TUNNEL_SOCKET} -f -N "
        f"-o ExitOnForwardFailure=yes -L {LOCAL_PORT}:127.0.0.1:{HUB_PORT} alice@master"
    )
    assert tunnel.rc == 0, tunnel.stderr
    ready = wait_for_hub(laptop)
    assert ready.rc == 0, f"the hub never answered through the forward: {ready.stderr}"
    yield HUB
    laptop.run(f"ssh -S {TUNNEL_SOCKET} -O exit alice@master")


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
