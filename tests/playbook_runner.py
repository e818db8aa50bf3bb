"""Run one of the project's playbooks on this machine with the venv's own Ansible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The venv this test runs in holds the controller's Ansible.
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
# The values every role shares, as the inventories set them; the tests' own inventories
# have no group_vars, so they come as extra vars (repository_dir: this checkout).
SHARED = yaml.safe_load(
    (ROOT / "inventory" / "production" / "group_vars" / "all" / "project.yml").read_text()
) | {"repository_dir": str(ROOT)}


def ansible_playbook(*arguments: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-e", json.dumps(SHARED), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
