"""The base role: packages, time, locale, upgrades policy, extra CAs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from testlib.molecule import ssh
from testlib.playbooks import run_playbook

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


def _pending_security_updates(simulation: str) -> list[str]:
    return [line for line in simulation.splitlines() if re.match(r"^Inst .*-security", line)]


def test_no_security_update_is_pending_after_the_converge(master):
    master.check_output("apt-get -qq update")
    simulation = master.check_output("apt-get -s upgrade")
    assert _pending_security_updates(simulation) == [], simulation


def test_the_preflight_says_when_a_reboot_is_pending(master):
    master.check_output(
        "touch /run/reboot-required && echo linux-image-amd64 > /run/reboot-required.pkgs"
    )
    try:
        pending = run_playbook("playbooks/preflight.yml", tags="preflight_reboot")
    finally:
        master.check_output("rm -f /run/reboot-required /run/reboot-required.pkgs")
    assert pending.returncode == 0, pending.stdout + pending.stderr
    assert "REBOOT PENDING on master" in pending.stdout, pending.stdout
    assert "(for linux-image-amd64)" in pending.stdout, pending.stdout
    clear = run_playbook("playbooks/preflight.yml", tags="preflight_reboot")
    assert clear.returncode == 0, clear.stdout + clear.stderr
    assert "REBOOT PENDING" not in clear.stdout, clear.stdout


def test_new_homes_and_session_files_are_closed_to_other_users(master, laptop):
    master.run("userdel -r umaskprobe")
    try:
        master.check_output("useradd --create-home --shell /bin/bash umaskprobe")
        assert master.file("/home/umaskprobe").mode == 0o750
        ageing = master.check_output("chage -l umaskprobe")
        assert re.search(r"Password expires\s*: never", ageing), ageing
    finally:
        master.run("userdel -r umaskprobe")
    # A member's login session: what they create is not readable by other users.
    created = ssh(
        laptop,
        "alice",
        "umask; f=~/umask-probe; rm -f $f; touch $f; stat -c %a $f; rm $f",
    )
    assert created.rc == 0, created.stderr
    umask, mode = created.stdout.split()
    assert int(umask, 8) & 0o007 == 0o007, created.stdout
    assert int(mode, 8) & 0o007 == 0, created.stdout


def test_login_defs_ask_no_expiry(master):
    defs = master.file("/etc/login.defs")
    for line in ("UMASK\t\t027", "PASS_MAX_DAYS\t\t99999", "PASS_MIN_DAYS\t\t0"):
        assert defs.contains(f"^{line}$"), line


def test_network_hardening_is_set_and_host_settings_are_left_to_the_host(master):
    values = {
        "net.ipv4.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.send_redirects": "0",
        "net.ipv6.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.log_martians": "1",
        "net.ipv4.tcp_syncookies": "1",
    }
    for key, value in values.items():
        assert master.check_output(f"sysctl -n {key}") == value, key
    written = master.file("/etc/sysctl.d/60-scoring-hardening.conf").content_string
    settings = [line.split(" = ")[0] for line in written.splitlines() if " = " in line]
    assert settings and all(re.match(r"net\.ipv[46]\.", key) for key in settings), settings
    # The test master is a container: the host's kernel settings are named, not written.
    assert "kernel.kptr_restrict" in written and "kernel.kptr_restrict =" not in written
