"""A name is a promise: every setting that shapes an output is in its name and in the task
id, so a changed configuration recomputes and an unchanged one reuses everything."""

import datetime as dt
from pathlib import Path

import pytest
from scoring import cli, naming, pipeline
from scoring.features.spec import load_spec
from scoring.settings import get_settings
from scoring.tasks import DailyBackfill, LivePredict, Predict, TestSet

OUTPUT_DIRS = ("data/interim", "data/processed", "models")


def _outputs(root: Path) -> dict[str, int]:
    # The cache of raw fingerprints is no output: it is rewritten whenever it learns one.
    cache = naming.raw_fingerprints_path(get_settings())
    found = {}
    for directory in OUTPUT_DIRS:
        for path in (root / directory).rglob("*"):
            if path.is_file() and path != cache and not _record_of_production(path):
                found[str(path.relative_to(root))] = path.stat().st_mtime_ns
    return found


def _record_of_production(path: Path) -> bool:
    """The history of decisions and what was served: records of production, shared by
    every configuration, not outputs named by one."""
    return path.name.startswith("current-decisions.") or path.parent.name == "published"


def _daily() -> None:
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0


@pytest.fixture
def first_run(data_root):
    _daily()
    return _outputs(data_root)


def test_unchanged_settings_recompute_nothing(data_root, first_run):
    _daily()
    assert _outputs(data_root) == first_run


FEATURES_SUBSET = (
    "name,kind,event_type,window_days,description\n"
    "events_7d,event_count,all,7,All events in the last 7 days\n"
    "saves,event_count,save,,Saves\n"
    "is_premium,is_premium,,,Premium\n"
)


@pytest.mark.usefixtures("data_root")
@pytest.mark.parametrize(
    ("variable", "value", "renamed"),
    [
        # setting, new value, which kinds of output get new names
        ("SCORING_AGGREGATION_WINDOW", "10", {"window", "test", "train", "models", "predictions"}),
        ("SCORING_DATA_DELAY", "2", {"window", "test", "train", "models", "predictions"}),
        ("SCORING_FEATURES_CSV", "subset", {"window", "test", "train", "models", "predictions"}),
        ("SCORING_LEAD_WINDOW", "2", {"train", "models", "predictions"}),
        ("SCORING_TRAIN_DAYS", "3", {"train", "models", "predictions"}),
    ],
)
def test_each_setting_that_shapes_an_output_renames_it(
    first_run, monkeypatch, variable, value, renamed
):
    data_root = get_settings().data_root
    if value == "subset":
        csv = data_root / "features.csv"
        csv.write_text(FEATURES_SUBSET)
        value = str(csv)
    monkeypatch.setenv(variable, value)
    # A new line is not production by itself (scoring.monitoring.registry): the new
    # configuration's model for today is promoted by hand, then its scores are published.
    cli.main(["daily", "--local-scheduler", "--days-back", "0"])
    settings = get_settings()
    today = settings.train_end_for(settings.today)
    new = pipeline.model_identifier(settings, load_spec(settings), "hgb", today)
    assert cli.main(["models", "promote", new, "--no-republish"]) == 0
    _daily()
    after = _outputs(data_root)
    # Nothing built under the old configuration was rewritten or reused in its place...
    assert {name: after[name] for name in first_run} == first_run
    new = set(after) - set(first_run)
    kinds = {
        "window": "data/interim/window/",
        "test": "data/processed/test/",
        "train": "data/processed/train/",
        "models": "models/",
        "predictions": "models/predictions/",
    }
    # ...and every kind of output the setting shapes was computed anew, under a new name.
    for kind in renamed:
        assert any(name.startswith(kinds[kind]) for name in new), (kind, sorted(new))


def test_configuration_is_part_of_the_task_id(data_root, monkeypatch):
    date = dt.date(2026, 1, 30)
    production = Predict(date=date)
    assert production.env == "dev"
    assert production.features == TestSet(date=date).features
    monkeypatch.setenv("SCORING_ENV", "staging")
    staging = Predict(date=date)
    assert staging.task_id != production.task_id
    monkeypatch.setenv("SCORING_DATA_ROOT", str(data_root / "elsewhere"))
    assert Predict(date=date).task_id != staging.task_id
    monkeypatch.setenv("SCORING_LEAD_WINDOW", "2")
    assert Predict(date=date).labels != staging.labels


def test_a_task_refuses_to_run_under_another_configuration(data_root, monkeypatch):
    task = TestSet(date=dt.date(2026, 1, 30))
    monkeypatch.setenv("SCORING_AGGREGATION_WINDOW", "10")
    with pytest.raises(Exception, match="was scheduled for features"):
        task.spec  # noqa: B018


def test_entry_points_name_their_date(data_root, monkeypatch):
    today = LivePredict()
    backfill = DailyBackfill()
    assert today.date == get_settings().today
    assert backfill.days_back == get_settings().backfill_days
    monkeypatch.setenv("SCORING_TODAY", "2026-02-11")
    assert LivePredict().task_id != today.task_id
    assert DailyBackfill().task_id != backfill.task_id
