"""The scoring services: healthy, on the loopback only, reached through the SSH forwards,
and running a luigi task on the Dask cluster the way a team member would start one."""

from __future__ import annotations

import json
import re

import pytest
from testlib.molecule import http_get, ssh, ssh_forwards

SERVICES = ("luigid", "dask-scheduler", "dask-worker", "worker")
FORWARDS = "-L 18082:127.0.0.1:8082 -L 18787:127.0.0.1:8787 -L 18789:127.0.0.1:8789"
COUNT_DASK_PREFIXES = (
    'python3 -c "import os; from distributed import Client; '
    "c = Client(os.environ['SCORING_DASK_ADDRESS'], timeout=30); "
    'print(c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_prefixes)))"'
)


def compose_states(master) -> dict[str, str]:
    listing = master.check_output("docker compose --project-name is24de ps --all --format json")
    rows = [json.loads(line) for line in listing.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = rows[0]
    return {row["Service"]: row.get("Health") or row["State"] for row in rows}


def test_every_service_is_healthy(master):
    states = compose_states(master)
    assert set(states) == set(SERVICES), states
    assert all(state == "healthy" for state in states.values()), states


def test_only_sshd_listens_beyond_the_loopback(master):
    listening = master.check_output("ss -Hltnp")
    exposed = []
    for line in listening.splitlines():
        local = line.split()[3]
        address, port = local.rsplit(":", 1)
        if address.strip("[]") not in ("127.0.0.1", "::1") and not address.startswith("127."):
            exposed.append((address, port, line))
    assert {port for _, port, _ in exposed} <= {"22"}, exposed
    assert all("sshd" in line for _, _, line in exposed), exposed


@pytest.fixture(scope="module")
def tunnel(laptop):
    """alice's SSH session with forwards to luigid and both Dask dashboards."""
    with ssh_forwards(laptop, "alice", FORWARDS, "/tmp/stack-tunnel.sock"):
        yield


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:18082/static/visualiser/index.html", "Luigi"),
        ("http://127.0.0.1:18787/health", "ok"),
        ("http://127.0.0.1:18787/status", "Dask"),
        ("http://127.0.0.1:18789/health", "ok"),
    ],
)
def test_web_interfaces_answer_through_the_forwards(laptop, tunnel, url, expected):
    page = http_get(laptop, url)
    assert page.rc == 0, page.stderr
    assert expected in page.stdout


@pytest.mark.parametrize("port", [8082, 8786, 8787, 8789])
def test_services_are_not_reachable_directly(laptop, port):
    assert laptop.run(f"curl -s --max-time 3 http://master:{port}/").rc != 0


def test_member_runs_a_luigi_task_on_the_dask_cluster(laptop, master, tunnel):
    before = int(
        master.check_output(f"docker compose -p is24de exec -T worker {COUNT_DASK_PREFIXES}")
    )
    generate = ssh(
        laptop,
        "alice",
        "sudo scoring-run scoring generate --users 300 --days 130 --start 2026-05-01 "
        "--quiet --force",
    )
    assert generate.rc == 0, generate.stdout + generate.stderr
    predict = ssh(laptop, "alice", "sudo scoring-run scoring predict --date 2026-09-01")
    assert predict.rc == 0, predict.stdout + predict.stderr

    predictions = master.check_output("ls /srv/is24de/models/predictions/").split()
    assert any(name.endswith("-2026-09-01.parquet") for name in predictions), predictions
    # Outputs belong to the pipeline's own user (the image's, as in the daily run) and the
    # team, whoever started the run; the journal says who did.
    image_user = master.check_output("docker inspect --format '{{.Config.User}}' is24de-worker-1")
    owner = master.check_output(
        "stat -c '%u:%G' /srv/is24de/models/predictions/" + predictions[0]
    ).strip()
    assert owner == f"{image_user.split(':')[0]}:team", owner
    journal = master.check_output("journalctl -t scoring-run --no-pager -o cat")
    assert "alice: scoring predict --date 2026-09-01" in journal, journal

    after = int(
        master.check_output(f"docker compose -p is24de exec -T worker {COUNT_DASK_PREFIXES}")
    )
    assert after > before, "the task never reached the Dask scheduler"

    done = http_get(
        laptop, "http://127.0.0.1:18082/api/task_list?data=%7B%22status%22%3A%22DONE%22%7D"
    )
    assert done.rc == 0, done.stderr
    tasks = json.loads(done.stdout)["response"]
    assert any(re.search(r"Predict", name) for name in tasks), sorted(tasks)


def test_members_are_not_in_the_docker_group(master):
    assert "docker" not in master.user("alice").groups
    assert "docker" not in master.user("bob").groups
