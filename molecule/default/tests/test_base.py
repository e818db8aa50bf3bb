"""The base role: packages, time, locale, upgrades policy, extra CAs."""

from __future__ import annotations

from pathlib import Path

import pytest

CONTROLLER_CAS = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))


@pytest.mark.parametrize("package", ["acl", "sudo", "unattended-upgrades", "systemd-timesyncd"])
def test_base_packages_installed(master, package):
    assert master.package(package).is_installed


def test_locale_is_generated_and_default(master):
    assert "en_US.utf8" in master.check_output("locale -a")
    assert master.file("/etc/default/locale").contains("^LANG=en_US.UTF-8$")


def test_timezone_is_set(master):
    assert master.check_output("readlink -f /etc/localtime").endswith("/Etc/UTC")


def test_unattended_upgrades_only_take_security_updates(master):
    periodic = master.file("/etc/apt/apt.conf.d/20auto-upgrades")
    assert periodic.contains('APT::Periodic::Unattended-Upgrade "1"')
    origins = master.run("apt-config dump Unattended-Upgrade::Origins-Pattern").stdout
    patterns = [
        line
        for line in origins.splitlines()
        if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")
    ]
    assert patterns, origins
    assert all("-security" in line for line in patterns), patterns


def test_clock_sync_is_enabled(master):
    assert master.service("systemd-timesyncd").is_enabled


@pytest.mark.skipif(not CONTROLLER_CAS, reason="the controller has no locally added CA")
@pytest.mark.parametrize("ca", CONTROLLER_CAS, ids=lambda path: path.name)
def test_controller_cas_are_trusted(master, ca):
    installed = master.file(f"/usr/local/share/ca-certificates/{ca.name}")
    assert installed.exists
    assert installed.content_string.strip() == ca.read_text().strip()
    # update-ca-certificates has linked it into the bundle OpenSSL reads.
    bundle = master.file("/etc/ssl/certs/ca-certificates.crt").content_string
    body = "".join(ca.read_text().split("-----")[2].split())
    assert body[:64] in "".join(bundle.split())
