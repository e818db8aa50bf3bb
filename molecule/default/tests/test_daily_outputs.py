"""The daily run on the master keeps the promise of its output names (a second run on the
same day finds every output complete and recomputes nothing), records the metadata of the
model it trained, and evaluates the scores of the dates whose labels have arrived."""

from __future__ import annotations

import csv
import io
import json

import pytest
from test_stage_and_rollback import run_daily, today
from testlib.molecule import generate_recent_data, luigid_tasks

ROOT = "/srv/is24de"
OUTPUTS = f"{ROOT}/data/interim {ROOT}/data/processed {ROOT}/models"
# The raw-fingerprint cache is no output: a run rewrites it whenever it learns a fingerprint.
CACHE = "raw-fingerprints.json"


def outputs(master) -> dict[str, str]:
    """Every output file with its modification time, in nanoseconds."""
    listing = master.check_output(
        f"find {OUTPUTS} -type f -not -name {CACHE} -printf '%p %T@\\n' | sort"
    )
    return dict(line.rsplit(" ", 1) for line in listing.splitlines())


@pytest.fixture(scope="module")
def first_run(master):
    generate_recent_data(master)
    day = today(master)
    run, journal = run_daily(master)
    assert run.rc == 0, journal
    return day, outputs(master)


def test_second_daily_run_on_the_same_day_recomputes_nothing(master, first_run):
    day, before = first_run
    assert any(path.endswith(f"-{day}.parquet") for path in before), sorted(before)
    if today(master) != day:
        pytest.skip("the day changed between the two runs")
    run, journal = run_daily(master)
    assert run.rc == 0, journal
    assert outputs(master) == before
    assert not [p for p in before if ".tmp-" in p]
    backfills = [t for t in luigid_tasks(master, "DONE") if t.startswith("DailyBackfill")]
    assert any(day.replace("-", "_") in t for t in backfills), backfills


def test_daily_run_records_model_metadata_and_live_evaluation(master, first_run):
    day, _ = first_run
    listing = master.check_output(f"ls {ROOT}/models").split()
    records = [name for name in listing if name.endswith(".json") and "-" in name]
    metadata = [
        json.loads(master.file(f"{ROOT}/models/{name}").content_string)
        for name in records
        if not name.startswith("current-")
    ]
    assert metadata, listing
    assert all(m["model_id"] in listing for m in metadata), listing
    # The gate's decisions (scoring.monitoring.registry.decide).
    decisions = ("promoted", "refused", "past", "held", "current")
    assert all(m["gate"]["decision"] in decisions for m in metadata), metadata
    assert any(m["holdout_metrics"] and 0 <= m["holdout_metrics"]["auc"] <= 1 for m in metadata)
    pointers = [name for name in listing if name.startswith("current-")]
    assert pointers, listing

    history = master.file(f"{ROOT}/reports/live-evaluation.csv")
    assert history.exists
    rows = list(csv.DictReader(io.StringIO(history.content_string)))
    assert rows, "no live-evaluation row although labels exist"
    labelled = master.check_output(f"date -d '{day} -3 days' +%F")
    assert any(row["date"] <= labelled for row in rows), rows
    assert all(0 <= float(row["auc"]) <= 1 for row in rows if row["auc"] != "nan"), rows
