"""A broken raw file fails with the file and column named, and nothing is written."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, naming
from scoring.errors import RawDataError
from scoring.features import build
from scoring.settings import get_settings

DAY = dt.date(2026, 1, 20)


def _rewrite(path, transform):
    pq.write_table(transform(pq.read_table(path)), path)


@pytest.mark.parametrize(
    ("transform", "column", "message"),
    [
        (lambda t: t.drop_columns(["event_type"]), "event_type", "is missing"),
        (
            lambda t: t.set_column(0, "user_id", t["user_id"].cast(pa.string())),
            "user_id",
            "expected integer",
        ),
        (
            lambda t: t.set_column(2, "event_type", pa.array(["purchase"] * t.num_rows)),
            "event_type",
            "unknown values",
        ),
        (
            lambda t: t.set_column(
                1, "timestamp", pa.compute.add(t["timestamp"], pa.scalar(dt.timedelta(days=1)))
            ),
            "timestamp",
            "outside the file's day",
        ),
    ],
)
def test_schema_problem_names_file_and_column(data_root, transform, column, message):
    settings = get_settings()
    path = naming.raw_events_path(settings, DAY)
    _rewrite(path, transform)
    with pytest.raises(RawDataError) as caught:
        build.ensure_daily_partials(settings, [DAY], progress=False)
    assert str(path) in str(caught.value)
    assert f"'{column}'" in str(caught.value)
    assert message in str(caught.value)
    assert not naming.daily_partial_path(settings, DAY).exists()


def test_unreadable_file_is_reported(data_root):
    settings = get_settings()
    path = naming.raw_events_path(settings, DAY)
    path.write_bytes(b"this is not parquet")
    with pytest.raises(RawDataError, match="cannot be read as parquet") as caught:
        build.ensure_daily_partials(settings, [DAY], progress=False)
    assert str(path) in str(caught.value)


def test_cli_reports_a_bad_file_without_traceback_and_writes_nothing(data_root, capsys):
    settings = get_settings()
    path = naming.raw_events_path(settings, DAY)
    _rewrite(path, lambda t: t.drop_columns(["user_id"]))
    code = cli.main(["predict", "--date", "2026-01-25", "--local-scheduler"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{path}: column 'user_id' is missing" in err
    assert "Traceback" not in err
    # Luigi still finishes branches that do not touch the bad day; nothing built from it
    # exists: no partial, no window or test set whose window contains it, no predictions.
    assert not naming.daily_partial_path(settings, DAY).exists()
    touched = [DAY + dt.timedelta(days=settings.data_delay + i) for i in range(14)]
    assert not any(list(settings.test_dir.glob(f"{d}-*")) for d in touched)
    assert not any(list(settings.window_state_dir.glob(f"{d}-*")) for d in touched)
    assert not list(settings.predictions_dir.glob("*"))
    assert not [p for p in settings.data_root.rglob("*") if ".tmp-" in p.name]


def test_missing_users_snapshot_is_a_clear_error(data_root):
    settings = get_settings()
    cutoff = dt.date(2026, 1, 24)
    naming.raw_users_path(settings, cutoff).unlink()
    with pytest.raises(RawDataError, match=r"users/2026-01-24\.parquet: the user snapshot"):
        build.build_features(settings, _spec(settings), dt.date(2026, 1, 25), progress=False)


def _spec(settings):
    from scoring.features.spec import load_spec  # noqa: PLC0415

    return load_spec(settings)
