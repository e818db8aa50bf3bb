"""The one playbook runner of the tests: the venv's own Ansible, on this repository's roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# The venv this test runs in holds the controller's Ansible.
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
# The values every role shares, as the inventories set them; the tests' own inventories
# have no group_vars, so they come as extra vars (repository_dir: this checkout).
SHARED = yaml.safe_load(
    (ROOT / "inventory" / "production" / "group_vars" / "all" / "project.yml").read_text()
) | {"repository_dir": str(ROOT)}


def ansible_playbook(
    *arguments: str, timeout: int = 300, shared: bool = True
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook with `arguments`; `shared` adds the shared values as extra vars, for
    an inventory of the test's own (Molecule's inventories have the group_vars)."""
    env = os.environ | {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), *(("-e", json.dumps(SHARED)) if shared else ()), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_playbook(
    playbook: str,
    extra_vars: dict | None = None,
    timeout: int = 600,
    inventory: Path | None = None,
    tags: str = "",
) -> subprocess.CompletedProcess[str]:
    """One of the project's playbooks against the Molecule scenario's hosts (or `inventory`,
    which keeps the scenario's group_vars beside it)."""
    arguments = [
        "-i",
        str(inventory or os.environ["MOLECULE_INVENTORY_FILE"]),
        str(ROOT / playbook),
    ]
    if tags:
        arguments += ["--tags", tags]
    if extra_vars:
        arguments += ["-e", json.dumps(extra_vars)]
    return ansible_playbook(*arguments, timeout=timeout, shared=False)
