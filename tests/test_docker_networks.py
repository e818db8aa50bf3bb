"""The preflight's check that Docker's address ranges leave the host's networks alone."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from testlib.plugins import filter_plugin

networks = filter_plugin("docker", "networks")
conflicts = networks.docker_network_conflicts

RANGES = {"docker_bridge_ip": "172.28.0.1/24", "docker_address_pools[0]": "172.29.0.0/16"}


def interface(device: str, address: str, netmask: str, *secondaries: tuple[str, str]) -> dict:
    return {
        "device": device,
        "ipv4": {"address": address, "netmask": netmask},
        "ipv4_secondaries": [{"address": a, "netmask": m} for a, m in secondaries],
    }


def test_ranges_away_from_the_hosts_networks_pass():
    host = [
        interface("lo", "127.0.0.1", "255.0.0.0"),
        interface("eth0", "10.0.3.7", "255.255.255.0"),
    ]
    assert conflicts(RANGES, host, "10.0.3.1") == []


def test_every_overlap_is_named_with_its_variable_and_device():
    host = [
        interface("eth0", "172.28.0.9", "255.255.255.0"),  # the office LAN is the bridge's
        interface("wg0", "10.8.0.2", "255.255.255.0", ("172.16.0.2", "255.240.0.0")),
    ]
    assert conflicts(RANGES, host) == [
        "docker_bridge_ip 172.28.0.0/24 overlaps 172.28.0.0/24 on eth0",
        "docker_bridge_ip 172.28.0.0/24 overlaps 172.16.0.0/12 on wg0",
        "docker_address_pools[0] 172.29.0.0/16 overlaps 172.16.0.0/12 on wg0",
    ]


def test_the_controllers_address_inside_a_range_is_named():
    host = [interface("eth0", "10.0.3.7", "255.255.255.0")]
    assert conflicts(RANGES, host, "172.29.4.20") == [
        "docker_address_pools[0] 172.29.0.0/16 holds 172.29.4.20, the controller's address"
    ]


def test_the_engines_own_bridges_do_not_count():
    host = [
        interface("docker0", "172.28.0.1", "255.255.255.0"),
        interface("br-4f2a9c1d0e3b", "172.29.0.1", "255.255.255.0"),
        interface("eth0", "10.0.3.7", "255.255.255.0"),
        {"device": "veth1a2b3c", "ipv4": {}},
        {"device": "eth1"},  # no IPv4 address
    ]
    assert conflicts(RANGES, host) == []


def test_a_range_that_is_no_network_is_named():
    with pytest.raises(AnsibleFilterError, match="docker_bridge_ip 'bridge'"):
        conflicts({"docker_bridge_ip": "bridge"}, [])
