"""Every host's sshd as a third-party audit sees it: ssh-audit, run from the controller
against the master's and worker2's addresses on the test network, reports nothing as
failed. The whole reports are printed to the run's output."""

from __future__ import annotations

import pytest
from testlib.molecule import (
    AUDIT_PASSED,
    MODERN_ALGORITHMS,
    audit_failures,
    network_address,
    show_audit,
    ssh_audit,
)


@pytest.mark.parametrize("name", ["worker2", "master"])
def test_ssh_audit_has_no_failure(laptop, name, capsys):
    address = network_address(laptop, name)
    code, output = ssh_audit(address)
    show_audit(capsys, name, address, output)
    assert "(gen) software: OpenSSH" in output, "ssh-audit did not get a banner from sshd"
    assert audit_failures(output) == [], output
    assert code in AUDIT_PASSED, output
    kex = [line.split()[1] for line in output.splitlines() if line.startswith("(kex) ")]
    assert kex[:2] == ["mlkem768x25519-sha256", "sntrup761x25519-sha512"], kex


def test_worker2_has_the_ed25519_host_key_only(worker2, laptop):
    assert [
        line for line in worker2.check_output("sshd -T").splitlines() if line.startswith("hostkey ")
    ] == ["hostkey /etc/ssh/ssh_host_ed25519_key"]
    offered = laptop.run("ssh-keyscan -T 10 -t rsa,ecdsa,ed25519 worker2 2>/dev/null").stdout
    keys = [line.split()[1] for line in offered.splitlines() if not line.startswith("#")]
    assert keys == ["ssh-ed25519"], offered
    assert "maxauthtries 3" in worker2.check_output("sshd -T").splitlines()
    # A client restricted to the modern algorithms reaches worker2's sshd (the refusal
    # comes after the key exchange: the laptop's key is no member's on worker2).
    attempt = laptop.run(
        f"ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"{MODERN_ALGORITHMS} nobody@worker2 true"
    )
    assert "Permission denied (publickey)" in attempt.stderr, attempt.stderr
