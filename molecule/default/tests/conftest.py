"""Fixtures for the checks: the master as Ansible sees it, and the laptop a team member uses."""

from __future__ import annotations

import os

import pytest
import testinfra


def _host(name: str) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="session")
def master() -> testinfra.host.Host:
    return _host("master")


@pytest.fixture(scope="session")
def laptop() -> testinfra.host.Host:
    return _host("laptop")
