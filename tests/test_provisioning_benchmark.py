"""The provisioning benchmark reads profile_tasks' summary and the play recap correctly."""

from __future__ import annotations

from pathlib import Path

from testlib.plugins import load_file

ROOT = Path(__file__).resolve().parent.parent
provisioning = load_file(ROOT / "benchmarks" / "provisioning.py", "provisioning")

# profile_tasks pads short names with dashes to the terminal width; a long name keeps
# only the dashes of the right-aligned time, and a time of 100 s or more leaves one.
SUMMARY = """\
Friday 27 November 2026  21:41:50 +0000 (0:00:01.020)       0:07:37.200 *****
===============================================================================
jupyterhub : JupyterHub | Install the shared Python environment from the lock file - 131.42s
docker : Docker | Install the engine and Compose ------------------------ 25.02s
scoring_stack : Scoring stack | Deploy the services and wait until they are healthy -- 18.50s
base : Base | Install base packages ------------------------------------- 20.45s
"""
RECAP = """\
PLAY RECAP *********************************************************************
laptop                     : ok=3    changed=0    unreachable=0    failed=0    skipped=0
master                     : ok=120  changed=57   unreachable=0    failed=0    skipped=9
master                     : ok=2    changed=3    unreachable=0    failed=0    skipped=0
"""


def test_every_timed_task_is_read_slowest_first():
    tasks = provisioning.slowest_tasks(SUMMARY, count=3)
    assert [task["seconds"] for task in tasks] == [131.42, 25.02, 20.45]
    assert tasks[0]["task"] == (
        "jupyterhub : JupyterHub | Install the shared Python environment from the lock file"
    )


def test_changed_counts_add_up_per_host():
    assert provisioning.changed_count(RECAP, "master") == 60
    assert provisioning.changed_count(RECAP, "laptop") == 0
