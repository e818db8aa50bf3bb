"""Which of the host's own networks the Docker engine's address ranges would cover.

The engine routes its bridge network and every network carved from its address pools to
its own bridges. A range that overlaps a network the host is on, or the address the
controller connects from, sends the host's replies to a bridge instead: the host drops
off that network, and an operator connected through it is locked out. The check runs on
the gathered network facts, before the engine is installed or its configuration changed.
"""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

# Interfaces the engine makes itself: its default bridge and one bridge per network.
DOCKER_INTERFACES = ("docker0", "br-", "veth")


def _network(text: str, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError as error:
        raise AnsibleFilterError(f"docker_network_conflicts: {what} {text!r}: {error}") from error


def _host_networks(interfaces: list[dict]) -> list[tuple[str, ipaddress.IPv4Network]]:
    found = []
    for interface in interfaces:
        device = str(interface.get("device", ""))
        if not device or device.startswith(DOCKER_INTERFACES):
            continue
        addresses = [interface.get("ipv4") or {}, *(interface.get("ipv4_secondaries") or [])]
        for address in addresses:
            if address.get("address") and address.get("netmask"):
                network = f"{address['address']}/{address['netmask']}"
                found.append((device, _network(network, f"address of {device}")))
    return found


def docker_network_conflicts(
    ranges: dict[str, str], interfaces: list[dict], client_address: str = ""
) -> list[str]:
    """One line per Docker range that overlaps a host network or the controller's address.

    `ranges` maps each range's name (the variable it comes from) to the range, `interfaces`
    are the host's interface facts (each with `device`, `ipv4`, `ipv4_secondaries`),
    `client_address` is the address the controller connects from, if known.
    """
    conflicts = []
    hosts = _host_networks(interfaces)
    client = ipaddress.ip_address(client_address) if client_address else None
    for name, text in ranges.items():
        docker_range = _network(text, name)
        for device, network in hosts:
            if docker_range.version == network.version and docker_range.overlaps(network):
                conflicts.append(f"{name} {docker_range} overlaps {network} on {device}")
        if client is not None and client.version == docker_range.version and client in docker_range:
            conflicts.append(f"{name} {docker_range} holds {client}, the controller's address")
    return conflicts


class FilterModule:
    def filters(self):
        return {"docker_network_conflicts": docker_network_conflicts}
