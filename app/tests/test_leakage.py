"""Features never see events after date - data_delay; labels only see the lead window."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import naming
from scoring.data import checks
from scoring.data.labels import read_labels
from scoring.features import build
from scoring.features.spec import load_spec
from scoring.settings import get_settings

DATE = dt.date(2026, 1, 25)


def _features(mode="raw"):
    settings = get_settings()
    return build.build_features(settings, load_spec(settings), DATE, mode, progress=False)


def _flood_day(day: dt.date, user_ids) -> None:
    """Add many contact requests for some users on `day` (in that day's own raw file)."""
    settings = get_settings()
    path = naming.raw_events_path(settings, day)
    events = pq.read_table(path)
    start = dt.datetime.combine(day, dt.time(12))
    extra = pa.table(
        {
            "user_id": pa.array(np.repeat(user_ids, 50), pa.int64()),
            "timestamp": pa.array([start] * 50 * len(user_ids), pa.timestamp("us")),
            "event_type": pa.array(["contact_request"] * 50 * len(user_ids)).dictionary_encode(),
        }
    )
    pq.write_table(pa.concat_tables([events, extra.cast(events.schema)]), path)


@pytest.mark.parametrize("delay", [1, 2])
def test_events_after_the_cutoff_do_not_change_features(data_root, monkeypatch, delay):
    monkeypatch.setenv("SCORING_DATA_DELAY", str(delay))
    cutoff = DATE - dt.timedelta(days=delay)
    before = _features()
    users = before["id"].to_numpy()[:20]
    for offset in range(1, delay + 4):  # every day after the cutoff, up to and past DATE
        _flood_day(cutoff + dt.timedelta(days=offset), users)
    assert _features().equals(before)


def test_events_on_the_cutoff_day_do_change_features(data_root):
    """The guard above can fail: the same injection one day earlier is visible."""
    before = _features()
    _flood_day(DATE - dt.timedelta(days=1), before["id"].to_numpy()[:20])
    after = _features()
    assert not after.equals(before)
    assert after["contact_requests_3d"].to_numpy()[:20].min() >= 50


def test_incremental_path_ignores_later_days_too(data_root):
    """Partials for days after the cutoff exist in production; they must not be read."""
    settings = get_settings()
    later = [DATE + dt.timedelta(days=i) for i in range(-1, 3)]
    build.ensure_daily_partials(settings, later, progress=False)
    assert _features("incremental").equals(_features("raw"))


def _write_conversion(day: dt.date, user_id: int) -> None:
    path = naming.raw_conversions_path(get_settings(), day)
    table = pq.read_table(path)
    extra = pa.table(
        {
            "user_id": pa.array([user_id], pa.int64()),
            "timestamp": pa.array([dt.datetime.combine(day, dt.time(9))], pa.timestamp("us")),
        }
    )
    pq.write_table(pa.concat_tables([table, extra.cast(table.schema)]), path)


def test_labels_use_exactly_the_lead_window(data_root):
    settings = get_settings()
    before = read_labels(settings, DATE)
    outsider = int(max(before.max(initial=0), 1) + 100_000)
    _write_conversion(DATE - dt.timedelta(days=1), outsider)
    _write_conversion(DATE + dt.timedelta(days=settings.lead_window), outsider)
    assert np.array_equal(read_labels(settings, DATE), before)
    last = DATE + dt.timedelta(days=settings.lead_window - 1)
    _write_conversion(last, outsider)
    # That day was read above: its kept fingerprint goes, as the 'changed' check asks.
    checks.checked_record_path(settings, "conversions", last).unlink()
    assert outsider in read_labels(settings, DATE)
