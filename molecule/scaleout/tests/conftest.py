"""Fixtures for the cluster checks: the master, the extra worker host and the laptop."""

from __future__ import annotations

import os

import pytest
import testinfra


def _host(name: str) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


@pytest.fixture(scope="session")
def master() -> testinfra.host.Host:
    return _host("scaleout-master")


@pytest.fixture(scope="session")
def worker2() -> testinfra.host.Host:
    return _host("scaleout-worker2")


@pytest.fixture(scope="session")
def laptop() -> testinfra.host.Host:
    return _host("scaleout-laptop")
