"""The model in production on the master is the one a member chose: a daily run, a promote, a
rollback with its reason, a backfill of three past days and the next daily run, and at the
end the history of decisions, the scores served today and the live records agree, and the
journal says who rolled back.

The tests build on each other in file order. They reuse the raw data the scenario already
has (fresh synthetic data only if today's raw day is missing) and converge nothing."""

from __future__ import annotations

import json

import pytest
from test_stage_and_rollback import run_daily, today
from testlib.molecule import generate_recent_data, ssh

ROOT = "/srv/is24de"
MODELS = f"{ROOT}/models"
PREDICTIONS = f"{MODELS}/predictions"
# Decisions that make their model production (scoring.monitoring.registry).
MAKES_CURRENT = ("promoted", "promote", "rollback")


def read_json(master, path: str):
    file = master.file(path)
    assert file.exists, f"{path} is missing"
    return json.loads(file.content_string)


def history(master) -> list[dict]:
    return read_json(master, f"{MODELS}/current-decisions.json")


def production(master) -> str:
    made = [e for e in history(master) if e["action"] in MAKES_CURRENT]
    assert made, "no decision has made a model production"
    return made[-1]["model"]


def published(master, day: str) -> dict:
    """The record of what was served for `day`: file, model, label definition, decision."""
    return read_json(master, f"{MODELS}/published/{day}.json")


def models_cli(laptop, user: str, arguments: str):
    """`scoring models ...` as a member, through sudo and scoring-run, as members run it."""
    result = ssh(laptop, user, f"sudo scoring-run scoring models {arguments}")
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def day_before(master, day: str, days: int) -> str:
    return master.check_output(f"date -d '{day} -{days} days' +%F")


@pytest.fixture(scope="module")
def state(master):
    """What the steps below learn and later steps check."""
    if not master.file(f"{ROOT}/data/raw/events/{today(master)}.parquet").exists:
        generate_recent_data(master)
    return {}


def test_daily_run_serves_todays_scores_with_production(master, state):
    day = today(master)
    run, journal = run_daily(master)
    assert run.rc in (0, 3), journal  # 3: drift, reported after publishing
    daily = production(master)
    served = published(master, day)
    assert served["model_id"] == daily, served
    assert master.file(f"{PREDICTIONS}/{served['file']}").exists
    state.update(day=day, daily=daily)


def test_promote_republishes_today_with_the_promoted_model(master, laptop, state):
    daily = state["daily"]
    record = read_json(master, f"{MODELS}/{daily}.json")
    others = []
    for name in master.check_output(f"ls {MODELS}").split():
        if name.endswith(".json") and not name.startswith(("current-", daily)):
            other = read_json(master, f"{MODELS}/{name}")
            if other["features"]["hash"] == record["features"]["hash"]:
                others.append(other)
    assert others, "the daily run's backfill trained no other model of this feature list"
    chosen = max(others, key=lambda m: (m["train_end"], m["model_id"]))["model_id"]
    out = models_cli(laptop, "alice", f"promote {chosen} --reason 'lifecycle check: promote'")
    assert "re-published today's scores" in out, out
    assert production(master) == chosen
    served = published(master, state["day"])
    assert (served["model_id"], served["decision"]["action"]) == (chosen, "promote"), served
    assert served["decision"]["by"] == "alice", served
    state["promoted"] = chosen


def test_rollback_records_who_and_why_and_serves_the_chosen_model(master, laptop, state):
    out = models_cli(laptop, "bob", "rollback --reason 'lifecycle check: back to the daily model'")
    assert "re-published today's scores" in out, out
    latest = history(master)[-1]
    assert (latest["action"], latest["model"], latest["by"]) == ("rollback", state["daily"], "bob")
    assert latest["reason"] == "lifecycle check: back to the daily model"
    assert latest["previous"] == state["promoted"]
    assert production(master) == state["daily"]
    served = published(master, state["day"])
    assert (served["model_id"], served["decision"]["action"]) == (state["daily"], "rollback")
    journal = master.check_output("journalctl -t scoring-run --no-pager -o cat")
    assert "bob: scoring models rollback" in journal, journal


def test_a_backfill_of_three_past_days_changes_nothing_in_production(master, state):
    day = state["day"]
    days = [day_before(master, day, n) for n in (3, 2, 1)]
    decisions = len(history(master))
    # Scored by the first daily run: remove them so that the backfill scores them again.
    for past in days:
        master.check_output(f"rm -f {PREDICTIONS}/*-{past}.parquet {MODELS}/published/{past}.json")
    run = master.run(f"scoring-run scoring daily --until {days[-1]} --days-back 2")
    assert run.rc in (0, 3), run.stdout + run.stderr
    assert len(history(master)) == decisions, "a backfill changed the history of decisions"
    assert production(master) == state["daily"]
    for past in days:
        served = published(master, past)
        assert served["decision"]["action"] == "past", served
        assert master.file(f"{PREDICTIONS}/{served['file']}").exists
    # Today's served scores are still those of the rollback.
    assert published(master, day)["model_id"] == state["daily"]


def test_next_daily_run_keeps_the_chosen_model_and_evaluates_what_was_served(master, state):
    run, journal = run_daily(master)
    assert run.rc in (0, 3), journal
    assert production(master) == state["daily"]
    now = today(master)
    served = published(master, now)
    assert served["model_id"] == state["daily"], served
    # Each evaluated date is evaluated in the file served for it, under its model's label
    # window (a date may keep records of files served before a re-scoring).
    names = master.check_output(f"ls {ROOT}/reports/live").split()
    assert names, "no live record although labels have arrived"
    dates = sorted({name[-len("YYYY-MM-DD.json") :].removesuffix(".json") for name in names})
    checked = 0
    for date in dates:
        publication = master.file(f"{MODELS}/published/{date}.json")
        if not publication.exists:
            continue  # scored before score files named their model
        served = json.loads(publication.content_string)
        stem = served["file"].removesuffix(".parquet")
        record = read_json(master, f"{ROOT}/reports/live/{stem}.json")
        assert record["model_id"] == served["model_id"], (record, served)
        assert record["lead_window"] == served["labels"]["lead_window"], (record, served)
        checked += 1
    assert checked, dates
