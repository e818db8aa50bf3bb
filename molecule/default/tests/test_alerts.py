"""Someone is told, the daily run is protected, logs are bounded: alerts reach the stand-in
webhook on the laptop once per incident (failed and hung daily runs, a full disk, the test
command), a runaway notebook dies inside its own limit while a daily run completes, and
the Docker, journald and retention limits are in effect.

Every change made here is undone at the end of its test: later modules expect the master
as the converge left it."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from testlib.molecule import PASSWORDS, all_healthy, generate_recent_data, hub_client, wait_for

PROJECT = "is24de"
DAILY = f"scoring-daily-{PROJECT}.service"
CHECK = "scoring-alert-check.service"
COMPOSE = (
    f"/usr/bin/docker compose --project-name {PROJECT} --file /etc/scoring/{PROJECT}/compose.yml"
)
DROP_IN_DIR = f"/run/systemd/system/{DAILY}.d"
DROP_IN = f"{DROP_IN_DIR}/50-alert-check.conf"
RECEIVER = "http://127.0.0.1:8091/alerts"
FILL_MOUNT = "/mnt/alert-check"
# Kept in step with molecule/shared/group_vars/all/alerts.yml.
NOTEBOOK_LIMIT = 768 * 2**20
NOTEBOOK_UNIT = "jupyter-alice-singleuser"


def alerts(laptop) -> list[str]:
    """The text of every alert the laptop's webhook receiver got, oldest first."""
    return [
        alert.get("text", "") for alert in json.loads(laptop.check_output(f"curl -sf {RECEIVER}"))
    ]


def alerts_since(laptop, marker: int, *words: str) -> list[str]:
    return [text for text in alerts(laptop)[marker:] if all(word in text for word in words)]


def wait_for_alert(laptop, marker: int, *words: str, within: int = 90) -> str:
    found = wait_for(
        lambda: alerts_since(laptop, marker, *words), within, f"an alert with {words}", 2
    )
    return found[0]


def run_checker(master) -> None:
    """One run of the checker, as its timer would start it; returns when it is done."""
    result = master.run(f"systemctl start {CHECK}")
    assert result.rc == 0, master.run(f"journalctl -u {CHECK} -n 30 --no-pager").stdout


def unit_property(master, unit: str, name: str) -> str:
    return master.check_output(f"systemctl show --property {name} --value {unit}").strip()


@pytest.fixture
def daily_drop_in(master):
    """A runtime drop-in for the daily service, removed (and the unit reset) afterwards."""

    def install(text: str) -> None:
        master.check_output(f"mkdir -p {DROP_IN_DIR}")
        master.check_output(f"cat > {DROP_IN} <<'EOF'\n{text}\nEOF")
        master.check_output("systemctl daemon-reload")

    yield install
    master.run(f"rm -f {DROP_IN}; systemctl daemon-reload; systemctl reset-failed {DAILY}")


def test_test_alert_reaches_the_receiver(master, laptop):
    marker = len(alerts(laptop))
    sent = master.run("/usr/local/sbin/scoring-alert-test")
    assert sent.rc == 0, sent.stdout + sent.stderr
    text = wait_for_alert(laptop, marker, "TEST on master")
    assert "host: master" in text, text
    # The webhook URL is the secret that lets anyone post as the master.
    assert master.file("/etc/scoring-alerts").mode == 0o700
    assert master.file("/etc/scoring-alerts/config.json").mode == 0o600


def test_docker_and_journald_limits_are_in_effect(master):
    assert master.check_output("docker info --format '{{.LoggingDriver}}'").strip() == "local"
    daemon = json.loads(master.file("/etc/docker/daemon.json").content_string)
    luigid = json.loads(master.check_output(f"docker inspect {PROJECT}-luigid-1"))[0]
    log_config = luigid["HostConfig"]["LogConfig"]
    assert log_config["Type"] == "local", log_config
    assert log_config["Config"].get("max-size") == daemon["log-opts"]["max-size"], log_config

    journald = master.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=256M" in journald, journald
    # journald runs with the drop-in: it was (re)started after the file was written.
    dropped = int(
        master.check_output("stat -c %Y /etc/systemd/journald.conf.d/50-scoring-size.conf")
    )
    started = master.check_output(
        "systemctl show --timestamp=unix --property ActiveEnterTimestamp --value systemd-journald"
    )
    assert float(started.strip().lstrip("@")) >= dropped, (started, dropped)


def test_scoring_and_notebooks_have_their_slices(master):
    assert unit_property(master, DAILY, "Slice") == "scoring.slice"
    assert unit_property(master, "scoring.slice", "MemoryMin") == str(2**30)
    assert unit_property(master, "scoring.slice", "CPUWeight") == "1000"
    assert unit_property(master, "notebooks.slice", "MemoryMax") == str(2 * 2**30)
    # The containers join the slice where the engine's cgroup driver allows it (systemd,
    # on cgroup v2 hosts); the test master's cgroup v1 engine runs cgroupfs.
    driver = master.check_output("docker info --format '{{.CgroupDriver}}'").strip()
    worker = json.loads(master.check_output(f"docker inspect {PROJECT}-worker-1"))[0]
    expected = "scoring.slice" if driver == "systemd" else ""
    assert worker["HostConfig"]["CgroupParent"] == expected, (driver, worker["HostConfig"])


def test_failed_daily_run_alerts_once_with_unit_host_and_error(master, laptop, daily_drop_in):
    error = "error: the daily run stopped: no raw events for today"
    daily_drop_in(
        "[Service]\nExecStart=\n"
        f"ExecStart={COMPOSE} exec -T worker python3 -c \"import sys; sys.exit('{error}')\""
    )
    marker = len(alerts(laptop))
    run = master.run(f"systemctl start {DAILY}")
    assert run.rc != 0, "the provoked failure did not fail the run"

    text = wait_for_alert(laptop, marker, "PROBLEM", DAILY)
    assert "host: master" in text, text
    assert f"unit: {DAILY}" in text, text
    assert error in text, text
    assert f"journalctl -u {DAILY}" in text, text
    # The checker knows the incident: it does not raise it again.
    run_checker(master)
    assert len(alerts_since(laptop, marker, "PROBLEM", DAILY)) == 1, alerts(laptop)[marker:]


def test_hung_daily_run_is_ended_at_the_timeout_and_alerts(master, laptop, daily_drop_in):
    # The run hangs inside the worker container, where the real one runs.
    daily_drop_in(
        "[Service]\nTimeoutStartSec=15s\nExecStart=\n"
        f'ExecStart=/bin/sh -c \'exec {COMPOSE} exec -T -e SCORING_DAILY_RUN="$$INVOCATION_ID" '
        "worker sleep 600'"
    )
    marker = len(alerts(laptop))
    run = master.run(f"timeout 120 systemctl start {DAILY}")
    assert run.rc != 0, "the hung run was not ended"
    assert unit_property(master, DAILY, "Result") == "timeout"

    text = wait_for_alert(laptop, marker, "PROBLEM", DAILY, "timed out")
    assert "host: master" in text, text
    # What the run started in the container is gone too, not only the docker client.
    processes = master.check_output(f"docker top {PROJECT}-worker-1 -eo pid,args")
    assert "sleep 600" not in processes, processes


def test_full_disk_alerts_once_and_recovers_once(master, laptop):
    master.check_output(f"mkdir -p {FILL_MOUNT}")
    master.check_output(f"mount -t tmpfs -o size=32m alert-check {FILL_MOUNT}")
    try:
        marker = len(alerts(laptop))
        master.check_output(f"dd if=/dev/zero of={FILL_MOUNT}/fill bs=1M count=30 status=none")
        run_checker(master)
        text = wait_for_alert(laptop, marker, "PROBLEM", f"{FILL_MOUNT} is")
        assert "host: master" in text, text
        run_checker(master)

        master.check_output(f"rm {FILL_MOUNT}/fill")
        run_checker(master)
        wait_for_alert(laptop, marker, "RECOVERED", f"{FILL_MOUNT} is")
        run_checker(master)

        about_the_disk = alerts_since(laptop, marker, f"{FILL_MOUNT} is")
        assert [text.split(" ", 1)[0] for text in about_the_disk] == ["PROBLEM", "RECOVERED"], (
            about_the_disk
        )
    finally:
        master.run(f"umount {FILL_MOUNT}; rmdir {FILL_MOUNT}")
        run_checker(master)


def test_members_server_shows_its_limit_and_the_dask_dashboard(master, laptop, hub, passwords):
    passwords("alice", PASSWORDS["alice"])
    dashboard = urllib.parse.quote("http://localhost:8787", safe="")
    paths = [
        "api/metrics/v1",
        "lab/api/settings/dask-labextension:plugin",
        "dask/clusters",
        f"dask/dashboard-check/{dashboard}",
        "lab",
    ]
    got = hub_client(laptop, "get", "alice", PASSWORDS["alice"], *paths)
    assert got.rc == 0, got.stdout + got.stderr
    answers = json.loads(got.stdout.strip().splitlines()[-1])
    assert all(answer["status"] == 200 for answer in answers.values()), {
        path: answer["status"] for path, answer in answers.items()
    }

    # jupyter-resource-usage reports the limit the server runs under.
    assert answers["api/metrics/v1"]["body"]["limits"]["memory"]["rss"] == NOTEBOOK_LIMIT
    assert unit_property(master, NOTEBOOK_UNIT, "MemoryMax") == str(NOTEBOOK_LIMIT)
    assert unit_property(master, NOTEBOOK_UNIT, "Slice") == "notebooks.slice"

    # Both extensions are in JupyterLab; the Dask panes open the scheduler's dashboard,
    # which the server finds live.
    page = answers["lab"]["body"]
    assert "dask-labextension" in page
    assert "@jupyter-server/resource-usage" in page
    settings = answers["lab/api/settings/dask-labextension:plugin"]["body"]
    # overrides.json in the notebook environment sets the setting's default for everyone.
    default_url = settings["schema"]["properties"]["defaultURL"]["default"]
    assert default_url == "http://localhost:8787", settings["schema"]["properties"]
    check = answers[f"dask/dashboard-check/{dashboard}"]["body"]
    assert check["isActive"] is True, check


RUNAWAY = """
chunks = []
for _ in range(48):
    chunks.append(bytearray(64 * 2**20))
print("allocated", 64 * len(chunks), "MiB")
"""


def test_runaway_notebook_dies_while_the_daily_run_completes(master, laptop, hub, passwords):
    passwords("alice", PASSWORDS["alice"])
    generate_recent_data(master)
    since = master.check_output("date +%s").strip()
    master.check_output(f"systemctl start --no-block {DAILY}")
    try:
        # A kernel killed for its memory never answers: the client gives up after its
        # run timeout (a bound on the whole call keeps a stuck close from costing minutes).
        runaway = hub_client(
            laptop,
            "run",
            "alice",
            PASSWORDS["alice"],
            RUNAWAY,
            "--run-timeout",
            "60",
            "--stop",
            within_seconds=240,
        )
        assert runaway.rc != 0, runaway.stdout
        assert "allocated" not in runaway.stdout, "3 GiB fitted into a 768 MiB limit"
        journal = master.check_output(
            f"journalctl --no-pager -u {NOTEBOOK_UNIT} --since @{since} -o cat"
        )
        assert "restarting kernel" in journal.lower() or "died" in journal.lower(), journal

        # The hub never noticed: it answers, and the scoring services stay healthy.
        assert master.run("curl -sf --max-time 10 http://127.0.0.1:8000/hub/health").rc == 0
        assert all_healthy(master)

        wait_for(
            lambda: unit_property(master, DAILY, "ActiveState") in ("inactive", "failed"),
            1500,
            "the daily run to finish",
            5,
        )
        journal = master.check_output(
            f"journalctl --no-pager -u {DAILY} --since @{since} -o cat | tail -n 40"
        )
        assert unit_property(master, DAILY, "Result") == "success", journal
        today = master.check_output("date +%F").strip()
        predictions = master.check_output(f"ls /srv/{PROJECT}/models/predictions").split()
        assert any(name.endswith(f"-{today}.parquet") for name in predictions), predictions
    finally:
        master.run(f"systemctl stop {DAILY}; systemctl stop {NOTEBOOK_UNIT}")


def test_retention_removes_only_old_files_and_follows_no_link(master):
    window = f"/srv/{PROJECT}/data/interim/window"
    canary = "/root/alert-retention-canary.arrow"
    names = ["old.arrow", "new.arrow", "old.txt", "sub/old.arrow", "link.arrow"]
    created_dir = master.run(f"test -d {window}").rc != 0
    master.check_output(f"install -d -m 2775 -g team {window} {window}/sub")
    try:
        master.check_output(f"echo canary > {canary}")
        for name in ("old.arrow", "old.txt", "sub/old.arrow"):
            master.check_output(f"touch -d '-30 days' {window}/{name}")
        master.check_output(f"touch {window}/new.arrow")
        master.check_output(
            f"ln -s {canary} {window}/link.arrow && touch -h -d '-30 days' {window}/link.arrow"
        )

        run = master.run(f"systemctl start scoring-retention-{PROJECT}.service")
        journal = master.run(f"journalctl -u scoring-retention-{PROJECT} -n 20 --no-pager").stdout
        assert run.rc == 0, journal

        remaining = {
            name
            for name in names
            if master.run(f"test -L {window}/{name} -o -e {window}/{name}").rc == 0
        }
        assert remaining == {"new.arrow", "old.txt", "sub/old.arrow", "link.arrow"}, remaining
        assert master.file(canary).content_string == "canary\n"
    finally:
        master.run(f"rm -rf {window}/sub; rm -f " + " ".join(f"{window}/{n}" for n in names))
        master.run(f"rm -f {canary}")
        if created_dir:
            master.run(f"rmdir {window}")
