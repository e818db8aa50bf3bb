"""The README's first command, end to end: `make sandbox` brings up a local master,
its ssh config opens every forward on this machine's localhost, the pipeline has
written predictions, and `make sandbox-down` leaves nothing behind.

Run through `make sandbox-test` (part of `make test`), with the browser checks of
test_browser.py on the same sandbox; the fixtures are in conftest.py. This module's
last test removes the sandbox, so it runs after test_browser.py.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest
from conftest import CONTAINER, PROJECT, REUSE, ROOT, docker_objects, run, ssh, tail
from distributed import Client

PREDICTION = re.compile(r"^.+-\d{4}-\d{2}-\d{2}\.parquet$")


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode(errors="replace")


def test_demo_member_logs_in_with_the_generated_config(sandbox):
    result = ssh("id", "-un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "demo"


@pytest.mark.parametrize(
    ("port", "path", "expected"),
    [
        (8000, "/hub/login", "JupyterHub"),
        (8082, "/static/visualiser/index.html", "Luigi"),
        (8787, "/status", "Dask"),
        (8789, "/status", "Dask"),
    ],
    ids=["jupyterhub", "luigid", "dask-dashboard", "worker-dashboard"],
)
def test_service_answers_through_its_forward(tunnel, port, path, expected):
    status, body = http_get(f"http://127.0.0.1:{port}{path}")
    assert status == 200
    assert expected in body


# The client's packages come from the lock the image is built from; only the Python
# interpreter of this machine may differ from the image's, and Dask warns about that.
@pytest.mark.filterwarnings("ignore::distributed.versions.VersionMismatchWarning")
def test_scheduler_is_reached_through_8786(tunnel):
    """A Dask client on this machine talks to the master's scheduler through the tunnel."""
    with Client("tcp://127.0.0.1:8786", timeout=30) as client:
        workers = client.scheduler_info()["workers"]
    assert len(workers) == 1, workers


def test_luigid_knows_the_pipeline_run(tunnel):
    query = urllib.parse.quote(json.dumps({"status": "DONE"}))
    status, body = http_get(f"http://127.0.0.1:8082/api/task_list?data={query}")
    assert status == 200
    assert any(name.startswith("DailyBackfill") for name in json.loads(body)["response"])


def test_pipeline_wrote_predictions(sandbox):
    result = ssh("ls", f"/srv/{PROJECT}/models/predictions")
    assert result.returncode == 0, result.stderr
    assert [name for name in result.stdout.split() if PREDICTION.match(name)], result.stdout


def test_first_backup_left_a_snapshot(sandbox):
    """`make sandbox` backs up once into the local repository; the status file names it."""
    status = run(["docker", "exec", CONTAINER, "cat", f"/var/lib/backup/{PROJECT}/status.json"], 60)
    assert status.returncode == 0, status.stderr
    recorded = json.loads(status.stdout)
    assert recorded["snapshot_id"], recorded
    assert recorded["last_error"] is None, recorded
    listing = run(
        ["docker", "exec", CONTAINER, f"backup-{PROJECT}", "restic", "snapshots", "--json"], 120
    )
    assert listing.returncode == 0, listing.stderr
    snapshots = json.loads(listing.stdout)
    # restic's summary names a snapshot by its short or its full id, depending on the version.
    assert any(s["id"].startswith(recorded["snapshot_id"]) for s in snapshots), snapshots
    assert f"/srv/{PROJECT}" in snapshots[-1]["paths"], snapshots[-1]


@pytest.mark.skipif(REUSE, reason="SANDBOX_REUSE=1 leaves the sandbox up")
def test_sandbox_down_leaves_nothing_behind(ours):
    result = run(["make", "sandbox-down"], timeout=600)
    assert result.returncode == 0, f"make sandbox-down failed:\n{tail(result)}"
    leftovers = {kind: docker_objects(kind) for kind in ("container", "volume", "network")}
    assert leftovers == {"container": [], "volume": [], "network": []}
    assert not (ROOT / ".sandbox").exists()
