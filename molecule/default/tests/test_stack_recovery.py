"""The stack in trouble: a release that cannot be had, a new release, a Dask worker killed
in the middle of a computation, and a reboot of the whole master."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.parse
import uuid

import pytest
from testlib.molecule import all_healthy, luigid_tasks, release_record, stack_containers, wait_for
from testlib.playbooks import run_playbook

SERVICES = {"luigid", "dask-scheduler", "dask-worker", "worker"}
IMAGE = "drtools/is24de-worker"
# 60 one-second tasks on the two worker threads: about half a minute of work.
COMPUTATION = """
import os
from distributed import Client, as_completed

def slow(number):
    import time
    time.sleep(1)
    return number

client = Client(os.environ["SCORING_DASK_ADDRESS"], timeout=30)
futures = client.map(slow, range(60), pure=False)
results = []
for done, future in enumerate(as_completed(futures), 1):
    results.append(future.result())
    print("running" if done == 1 else "done", done, flush=True)
print("total", sum(results), flush=True)
"""


def started(master) -> dict[str, tuple[str, str]]:
    return {
        service: (c["Id"], c["State"]["StartedAt"])
        for service, c in stack_containers(master).items()
    }


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("archive", "drtools/is24de-worker:no-such-release is not on master"),
        ("pull", "drtools/is24de-worker:no-such-release could not be pulled on master"),
    ],
)
def test_unknown_release_fails_before_the_stack_is_touched(master, source, complaint):
    before, record = started(master), release_record(master)
    result = run_playbook(
        "playbooks/scoring_stack.yml",
        {"scoring_stack_image_tag": "no-such-release", "scoring_stack_image_source": source},
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert complaint in output, output
    assert "The running services were not touched" in output
    assert "Scoring stack | Write the Compose project" not in output
    assert started(master) == before
    assert release_record(master) == record
    assert all_healthy(master)


def test_new_release_redeploys_the_stack_and_nothing_else(master):
    """A different tag recreates every service that runs the image; JupyterHub keeps running."""
    current = release_record(master)["current"]
    master.check_output(f"docker tag {IMAGE}:{current} {IMAGE}:retagged")
    hub = master.check_output("systemctl show --property MainPID --value jupyterhub")
    before = stack_containers(master)
    try:
        result = run_playbook(
            "playbooks/scoring_stack.yml", {"scoring_stack_image_tag": "retagged"}
        )
        assert result.returncode == 0, result.stdout + result.stderr
        after = stack_containers(master)
        assert set(after) == SERVICES
        for service in SERVICES:
            assert after[service]["Id"] != before[service]["Id"], service
            assert after[service]["Config"]["Image"] == f"{IMAGE}:retagged", service
        assert master.check_output("systemctl show --property MainPID --value jupyterhub") == hub
        assert release_record(master) == {"current": "retagged", "previous": current}
    finally:
        back = run_playbook("playbooks/scoring_stack.yml", {"scoring_stack_image_tag": current})
        assert back.returncode == 0, back.stdout + back.stderr
        master.run(f"docker rmi {IMAGE}:retagged")


def test_killed_dask_worker_is_restarted_and_the_computation_completes(master):
    restarts = stack_containers(master)["dask-worker"]["RestartCount"]
    script = base64.b64encode(COMPUTATION.encode()).decode()
    master.check_output(f"echo {script} | base64 -d > /root/computation.py")
    master.check_output(
        "setsid sh -c 'docker compose -p is24de exec -T worker python3 - "
        "< /root/computation.py > /root/computation.out 2>&1' < /dev/null > /dev/null 2>&1 &"
    )
    output = master.file("/root/computation.out")
    wait_for(lambda: "running" in output.content_string, 90, "the computation started")

    pid = master.check_output("docker inspect --format '{{.State.Pid}}' is24de-dask-worker-1")
    master.check_output(f"kill -KILL {pid}")
    # The kill landed in the middle of the job: part of it done, no total yet.
    at_kill = output.content_string
    finished = [int(n) for n in re.findall(r"^(?:running|done) (\d+)$", at_kill, re.MULTILINE)]
    assert finished, at_kill
    assert max(finished) < 60, f"the job had already finished when the worker died: {at_kill}"
    assert "total" not in at_kill, at_kill

    wait_for(lambda: "total" in output.content_string, 240, "the computation finished", interval=2)
    assert f"total {sum(range(60))}" in output.content_string, output.content_string
    assert stack_containers(master)["dask-worker"]["RestartCount"] > restarts
    wait_for(lambda: all_healthy(master), 120, "every service healthy again")


def test_reboot_brings_every_service_back_and_luigid_remembers(master):
    probe = f"RebootProbe__{uuid.uuid4().hex[:12]}"
    task = {"task_id": probe, "status": "DONE", "worker": "reboot-probe", "family": "RebootProbe"}
    query = urllib.parse.quote(json.dumps(task))
    master.check_output(f"curl -sf 'http://127.0.0.1:8082/api/add_task?data={query}'")
    assert probe in luigid_tasks(master, "DONE")

    # A container restart is the master's reboot: systemd stops every unit, then starts again.
    subprocess.run(["docker", "restart", "--time", "300", "master"], check=True, timeout=360)
    booted = time.monotonic()
    wait_for(lambda: all_healthy(master), 120, "every service healthy after the reboot", 2)
    print(f"services healthy {time.monotonic() - booted:.0f} s after the reboot")
    assert probe in luigid_tasks(master, "DONE"), "luigid lost its state over the reboot"
