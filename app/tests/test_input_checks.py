"""Conversion files (the labels) and user snapshots are checked like event days: a broken
one stops the run with the file named, or under `skip` is left out and recorded, and a
date whose labels were skipped is not used."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, naming
from scoring.data import checks
from scoring.data.gaps import recorded_gaps
from scoring.errors import RawDayError
from scoring.settings import get_settings

DATE = dt.date(2026, 1, 28)
# Conversions a day: the small dump has one or two, too few to tell an emptied file from a
# quiet day; a portal has thousands.
CONVERSIONS = 40


@pytest.fixture
def busy_labels(data_root):
    """Every conversions file with CONVERSIONS users of that day's snapshot."""
    settings = get_settings()
    rng = np.random.default_rng(7)
    for path in sorted(settings.raw_conversions_dir.glob("*.parquet")):
        day = dt.date.fromisoformat(path.stem)
        users = pq.read_table(naming.raw_users_path(settings, day))["user_id"].to_numpy()
        chosen = rng.choice(users, CONVERSIONS, replace=False)
        start = dt.datetime.combine(day, dt.time())
        stamps = [
            start + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 86_399, CONVERSIONS)
        ]
        table = pa.table(
            {
                "user_id": pa.array(chosen, pa.int64()),
                "timestamp": pa.array(stamps, pa.timestamp("us")),
            }
        )
        pq.write_table(table, path)
    return settings


def _train_end(settings):
    return settings.train_end_for(DATE)


def _emptied(path):
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 0), path)


def _truncated(path):
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows // 10), path)


def _predict(capsys):
    code = cli.main(["predict", "--local-scheduler", "--date", DATE.isoformat()])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("damage", [_emptied, _truncated], ids=["emptied", "truncated"])
def test_a_broken_conversions_file_stops_the_run_naming_it(busy_labels, capsys, damage):
    settings = busy_labels
    day = _train_end(settings)  # a label day of the training set's last date
    path = naming.raw_conversions_path(settings, day)
    damage(path)
    code, err = _predict(capsys)
    assert code != 0
    assert f"raw conversions of {day} failed the 'volume' check: {path}" in err, err
    assert "Traceback" not in err
    assert not list(settings.train_dir.glob("*.parquet"))
    assert not list(settings.models_dir.glob("*.json"))


def test_under_skip_a_date_whose_labels_were_skipped_is_not_used(busy_labels, capsys, monkeypatch):
    settings = busy_labels
    train_end = _train_end(settings)
    # The first day of the label window of the set's first date only: the holdout keeps
    # its labels.
    first = train_end - dt.timedelta(days=settings.train_days - 1)
    path = naming.raw_conversions_path(settings, first)
    _emptied(path)
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "skip")
    code, err = _predict(capsys)
    assert code == 0, err
    gaps = [(g["input"], g["day"], g["check"]) for g in recorded_gaps(settings)]
    assert gaps == [("conversions", first.isoformat(), "volume")]
    (train_file,) = settings.train_dir.glob("*.parquet")
    dates = set(pq.read_table(train_file)["date"].to_pylist())
    assert first not in dates
    assert dates == {first + dt.timedelta(days=i) for i in range(1, settings.train_days)}
    # A clean build of the same dates has another name.
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "fail")
    feature_hash = train_file.stem.rsplit("-", 1)[1]
    clean = naming.train_set_path(
        get_settings(),
        [first + dt.timedelta(days=i) for i in range(settings.train_days)],
        feature_hash,
        naming.label_hash(settings.lead_window),
    )
    assert clean != train_file


def _users_missing(settings, day):
    path = naming.raw_users_path(settings, day)
    users = pq.read_table(path)
    keep = np.ones(users.num_rows, dtype=bool)
    keep[::10] = False  # every tenth user
    pq.write_table(users.filter(pa.array(keep)), path)
    return path


def test_a_user_snapshot_with_missing_users_stops_the_run_naming_it(data_root, capsys):
    settings = get_settings()
    cutoff = settings.feature_cutoff(DATE)
    path = _users_missing(settings, cutoff)
    code, err = _predict(capsys)
    assert code != 0
    assert f"raw users of {cutoff} failed the 'missing_users' check: {path}" in err, err
    assert not list(settings.test_dir.glob(f"{DATE}-*"))
    assert not list(settings.predictions_dir.glob(f"*-{DATE}*"))


def test_under_skip_a_broken_snapshot_is_recorded_and_named(data_root, capsys, monkeypatch):
    settings = get_settings()
    cutoff = settings.feature_cutoff(DATE)
    _users_missing(settings, cutoff)
    monkeypatch.setenv("SCORING_RAW_DAY_POLICY", "skip")
    code, err = _predict(capsys)
    assert code == 0, err
    recorded = {(g["input"], g["day"], g["check"]) for g in recorded_gaps(settings)}
    assert ("users", cutoff.isoformat(), "missing_users") in recorded
    assert list(settings.test_dir.glob(f"{DATE}-*-skip*.parquet"))
    assert list(settings.predictions_dir.glob(f"*-{DATE}-skip*.parquet"))
    assert not list(settings.predictions_dir.glob(f"*-{DATE}.parquet"))


def test_a_conversions_file_changed_after_use_is_detected(busy_labels, capsys):
    settings = busy_labels
    code, err = _predict(capsys)
    assert code == 0, err
    day = _train_end(settings)
    path = naming.raw_conversions_path(settings, day)
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)  # one conversion less: no volume problem
    with pytest.raises(RawDayError, match=f"raw conversions of {day} failed the 'changed'"):
        checks.checked_conversions(settings, day)
