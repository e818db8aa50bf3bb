"""Bad inventory input stops site.yml in the preflight play, before any host is touched.

The plays run against this machine through a local connection, in check mode,
so that even a preflight that wrongly passed could not change anything.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from testlib.playbooks import ROOT, ansible_playbook


def run_site(tmp_path: Path, extra_vars: dict) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    master_servers:\n      hosts:\n"
        "        preflight-check:\n          ansible_connection: local\n"
        # The facts the preflight gathers come from this machine's own Python.
        "          ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
    )
    return ansible_playbook(
        "--check", "-i", str(inventory), "-e", json.dumps(extra_vars), str(ROOT / "site.yml")
    )


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("base_apt_cache_valid_time", "an hour", "base_apt_cache_valid_time"),
        ("base_extra_packages", {"not": "a list"}, "base_extra_packages"),
        ("base_unattended_upgrades_enabled", "maybe", "base_unattended_upgrades_enabled"),
    ],
)
def test_wrong_type_fails_in_preflight(tmp_path, variable, value, complaint):
    result = run_site(tmp_path, {variable: value})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert complaint in output, output
    assert "Preflight | validate the inputs of each role" in output
    # The failure ended the run: no task of a later play was reached.
    assert "Base |" not in output, output


def test_missing_release_is_named(tmp_path):
    """No tag in the inventory and no release recorded on the host: nothing to deploy."""
    result = run_site(tmp_path, {})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "scoring_stack_image_tag is not set and preflight-check has no recorded release" in (
        " ".join(output.split())
    ), output
    assert "Base |" not in output, output


def test_invalid_release_tag_is_named(tmp_path):
    result = run_site(tmp_path, {"scoring_stack_image_tag": "v1.2.0; rm -rf /"})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "is not a valid image tag" in output, output
    assert "Base |" not in output, output


def test_missing_backup_repository_is_named_before_any_change(tmp_path):
    """A master without a backup repository stops in the preflight, not after the other plays."""
    result = run_site(tmp_path, {"scoring_stack_image_tag": "v1.2.0"})
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "backup_repository is not set for preflight-check" in output, output
    assert "Base |" not in output, output


def test_short_backup_password_is_named(tmp_path):
    settings = {
        "scoring_stack_image_tag": "v1.2.0",
        "backup_repository": str(tmp_path / "repository"),
        "backup_password": "short",
    }
    result = run_site(tmp_path, settings)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "backup_password for preflight-check is empty or shorter than 8 characters" in output
    assert "Base |" not in output, output


def test_docker_ranges_over_a_host_network_are_named_before_any_change(tmp_path):
    """A bridge range over a network the host is on would cut it off (here: loopback's)."""
    settings = {
        "scoring_stack_image_tag": "v1.2.0",
        "backup_repository": str(tmp_path / "repository"),
        "backup_password": "a long enough password",
        "docker_bridge_ip": "127.0.0.1/8",
        "docker_address_pools": [{"base": "127.42.0.0/16", "size": 24}],
    }
    result = run_site(tmp_path, settings)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "docker_bridge_ip 127.0.0.0/8 overlaps 127.0.0.0/8 on lo" in output, output
    assert "docker_address_pools[0] 127.42.0.0/16 overlaps 127.0.0.0/8 on lo" in output, output
    assert "Nothing was changed" in output, output
    assert "Base |" not in output, output
