"""Releases on the master: a broken release fails staging and changes nothing, a good one
is promoted and runs the daily timer, and a rollback brings the previous one back.

The tests build on each other in file order, as a release manager's day would."""

from __future__ import annotations

import pytest
from testlib.molecule import (
    all_healthy,
    generate_recent_data,
    http_get,
    luigid_tasks,
    release_record,
    run_unit,
    ssh_forwards,
    stack_containers,
)
from testlib.playbooks import run_playbook

IMAGE = "drtools/is24de-worker"
DAILY = "scoring-daily-is24de"
# A release whose command line fails the way a bad build would; its services stay healthy.
BROKEN = f"""FROM {IMAGE}:molecule
USER root
RUN printf '#!/bin/sh\\necho "this release is broken" >&2\\nexit 3\\n' > /opt/scoring/bin/scoring
USER 10001:10001
"""


def production_state(master) -> dict:
    """Everything a failed staging must leave as it was."""
    return {
        "record": release_record(master),
        "containers": {s: c["Id"] for s, c in stack_containers(master).items()},
        "timer": master.check_output(f"sha256sum /etc/systemd/system/{DAILY}.*"),
        "timer active": master.service(f"{DAILY}.timer").is_running,
    }


def run_daily(master):
    """Start the daily service as the timer would; its result and the journal of this run."""
    return run_unit(master, DAILY)


def today(master) -> str:
    """The master's date, read right before a run so that a run after midnight is
    checked against its own day."""
    return master.check_output("date +%F")


@pytest.fixture(scope="module")
def candidates(master):
    """Two releases made on the master from the one under test: `next` (a new image with
    the same code) and `broken`."""
    master.check_output(
        f"printf 'FROM {IMAGE}:molecule\\nLABEL org.scoring.release=next\\n' "
        f"| docker build --quiet --tag {IMAGE}:next -"
    )
    master.check_output(f"docker build --quiet --tag {IMAGE}:broken - <<'EOF'\n{BROKEN}EOF")
    yield
    master.run(f"docker compose -p is24de-staging down --volumes; docker rmi {IMAGE}:broken")


def test_broken_release_fails_staging_and_leaves_production_alone(master, candidates):
    before = production_state(master)
    result = run_playbook("playbooks/stage.yml", {"scoring_release": "broken"}, timeout=900)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "Release broken failed staging" in output, output
    assert "this release is broken" in output, output
    assert production_state(master) == before


def test_good_release_is_staged_and_promoted(master, laptop, candidates):
    before = release_record(master)
    # Staging the running release again keeps the one before it as `previous`.
    previous = before["previous"] if before["current"] == "next" else before["current"]
    staged_on = today(master)
    result = run_playbook("playbooks/stage.yml", {"scoring_release": "next"}, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr

    staged = master.check_output("ls /srv/is24de-staging/models/predictions").split()
    assert any(name.endswith(f"-{staged_on}.parquet") for name in staged), staged
    assert release_record(master) == {"current": "next", "previous": previous}
    images = {s: c["Config"]["Image"] for s, c in stack_containers(master).items()}
    assert set(images.values()) == {f"{IMAGE}:next"}, images
    assert all_healthy(master)
    assert all_healthy(master, "is24de-staging")
    assert master.service(f"{DAILY}.timer").is_running


def test_staging_dashboard_is_forwarded_on_8788(laptop, candidates):
    with ssh_forwards(laptop, "alice", "-L 18788:127.0.0.1:8788", "/tmp/staging-tunnel.sock"):
        page = http_get(laptop, "http://127.0.0.1:18788/status")
        assert page.rc == 0, page.stderr
        assert "Dask" in page.stdout
    assert laptop.run("curl -s --max-time 3 http://master:8788/").rc != 0


def test_daily_timer_scores_today_with_the_promoted_release(master):
    timer = master.check_output(
        f"systemctl show --property Persistent,OnCalendar,UnitFileState {DAILY}.timer"
    )
    assert "Persistent=yes" in timer, timer
    assert "UnitFileState=enabled" in timer, timer

    generate_recent_data(master)
    day = today(master)
    run, journal = run_daily(master)
    assert run.rc == 0, journal
    assert f"release {IMAGE}:next" in journal, journal

    predictions = master.check_output("ls /srv/is24de/models/predictions").split()
    assert any(name.endswith(f"-{day}.parquet") for name in predictions), predictions
    assert any(name.startswith("DailyBackfill") for name in luigid_tasks(master, "DONE"))


def test_failed_daily_run_shows_in_systemd(master):
    # luigid's view of the failure is not checked here: luigid ignores a PENDING claim
    # for a task it marked DONE less than stable_done_cooldown_secs (10 s) ago, so
    # right after the previous test's run the Predict may never be handed out again.
    directory = "/srv/is24de/models/predictions"
    master.check_output(f"rm -f {directory}/*-{today(master)}.parquet && chmod 2555 {directory}")
    try:
        run, journal = run_daily(master)
        assert run.rc != 0, journal
        failed = master.check_output("systemctl --failed --plain --no-legend")
        assert f"{DAILY}.service" in failed, failed
    finally:
        master.run(f"chmod 3775 {directory}; systemctl reset-failed {DAILY}.service")


def test_rollback_restores_the_previous_release_for_the_next_run(master):
    record = release_record(master)
    result = run_playbook("playbooks/rollback.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert release_record(master) == {"current": record["previous"], "previous": record["current"]}
    images = {c["Config"]["Image"] for c in stack_containers(master).values()}
    assert images == {f"{IMAGE}:{record['previous']}"}
    assert all_healthy(master)

    day = today(master)
    run, journal = run_daily(master)
    assert run.rc == 0, journal
    assert f"release {IMAGE}:{record['previous']}" in journal, journal
    predictions = master.check_output("ls /srv/is24de/models/predictions").split()
    assert any(name.endswith(f"-{day}.parquet") for name in predictions), predictions
