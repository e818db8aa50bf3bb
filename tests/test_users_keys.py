"""The users role without a key server: extra_keys are a member's only keys.

The role's key tasks run on this machine through a local connection; with an empty
users_keys_url_template nothing is fetched, so no network is involved.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from testlib.playbooks import ansible_playbook

KEY_A = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfG7Q2mXoVwY0Jp3d4z8T2k1VhW9s0aRj5cN6uLqP7e demo@sandbox"
)
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc8wq0vY5xN1rT4mZ2pL7kQ9jF3dS6aB0eC8gU1iO2y other"


def fetch_keys(tmp_path: Path, team: list[dict]) -> tuple[subprocess.CompletedProcess[str], Path]:
    result_file = tmp_path / "keys.json"
    playbook = tmp_path / "keys.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Fetch keys without a key server",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {"users_keys_url_template": "", "users_team": team},
                    "tasks": [
                        {
                            "ansible.builtin.include_role": {
                                "name": "users",
                                "tasks_from": "fetch_keys",
                            }
                        },
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ users_keys | to_json }}",
                                "dest": str(result_file),
                                "mode": "0600",
                            }
                        },
                    ],
                }
            ]
        )
    )
    result = ansible_playbook(
        "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)
    )
    return result, result_file


def test_extra_keys_are_the_only_keys(tmp_path):
    team = [
        {"github": "Demo", "admin": True, "extra_keys": [KEY_A]},
        {"github": "other", "extra_keys": [KEY_A, KEY_B]},
        {"github": "gone", "state": "absent"},
    ]
    result, result_file = fetch_keys(tmp_path, team)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result_file.read_text()) == {"demo": [KEY_A], "other": [KEY_A, KEY_B]}


def test_a_member_without_extra_keys_stops_the_run(tmp_path):
    team = [
        {"github": "demo", "extra_keys": [KEY_A]},
        {"github": "nokeys"},
        {"github": "emptykeys", "extra_keys": []},
    ]
    result, result_file = fetch_keys(tmp_path, team)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "these present members have none: nokeys, emptykeys" in " ".join(output.split())
    assert not result_file.exists()
