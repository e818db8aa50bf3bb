"""What a third-party audit of the master checks: ssh-audit, run from the controller against
the master's address on the test network, reports nothing as failed (the whole report is
printed to the run's output); a changed file of an installed package alerts."""

from __future__ import annotations

import pytest
from test_alerts import alerts, wait_for_alert
from testlib.molecule import (
    AUDIT_PASSED,
    audit_failures,
    network_address,
    run_unit,
    show_audit,
    ssh_audit,
)


@pytest.fixture(scope="module")
def master_audit(laptop):
    address = network_address(laptop, "master")
    code, output = ssh_audit(address)
    return address, code, output


def test_ssh_audit_of_the_master_has_no_failure(master_audit, capsys):
    address, code, output = master_audit
    show_audit(capsys, "master", address, output)
    assert "(gen) software: OpenSSH" in output, "ssh-audit did not get a banner from sshd"
    assert audit_failures(output) == [], output
    assert code in AUDIT_PASSED, output


def test_ssh_audit_sees_the_post_quantum_exchange_first(master_audit):
    _, _, output = master_audit
    kex = [line.split()[1] for line in output.splitlines() if line.startswith("(kex) ")]
    assert kex[:2] == ["mlkem768x25519-sha256", "sntrup761x25519-sha512"], kex
    host_keys = [line.split()[1] for line in output.splitlines() if line.startswith("(key) ")]
    assert host_keys and all(key.startswith("ssh-ed25519") for key in host_keys), host_keys


INTEGRITY = "scoring-integrity"
# A file of an installed package that nothing reads.
PACKAGED_FILE = "/usr/share/doc/debsums/copyright"


def test_a_changed_package_file_fails_the_integrity_check_and_alerts(master, laptop):
    clean, journal = run_unit(master, INTEGRITY)
    assert clean.rc == 0, f"the converged master already fails the check: {journal}"
    master.check_output(f"cp -a {PACKAGED_FILE} /root/integrity-original")
    marker = len(alerts(laptop))
    try:
        master.check_output(f"echo 'changed by hand' >> {PACKAGED_FILE}")
        changed, journal = run_unit(master, INTEGRITY)
        assert changed.rc != 0, journal
        assert PACKAGED_FILE in journal, journal
        text = wait_for_alert(laptop, marker, "PROBLEM", f"{INTEGRITY}.service")
        assert PACKAGED_FILE in text, text
        assert "host: master" in text, text
    finally:
        master.check_output(f"cp -a /root/integrity-original {PACKAGED_FILE}")
        master.run(f"rm -f /root/integrity-original; systemctl reset-failed {INTEGRITY}.service")
    restored, journal = run_unit(master, INTEGRITY)
    assert restored.rc == 0, journal
    assert master.service(f"{INTEGRITY}.timer").is_enabled
