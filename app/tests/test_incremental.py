"""Daily partials + sliding window give the same features as a full recompute from raw."""

import datetime as dt

import pytest
from scoring import naming
from scoring.features import build
from scoring.features.spec import load_spec
from scoring.settings import get_settings

FIRST = dt.date(2026, 1, 20)


def test_sliding_window_equals_full_recompute(data_root, monkeypatch):
    settings = get_settings()
    spec = load_spec(settings)
    full_passes = []
    original = build.state_from_files

    def counting(*args, **kwargs):
        full_passes.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(build, "state_from_files", counting)
    for offset in range(8):
        date = FIRST + dt.timedelta(days=offset)
        incremental = build.window_state(settings, spec, date, "incremental", progress=False)
        assert naming.window_state_path(settings, date, spec.hash).exists()
        full = build.window_state(settings, spec, date, "raw", progress=False)
        assert incremental.num_rows > 0
        assert incremental.equals(full), date
    # Only the first date aggregated the whole window; the next seven slid by one day.
    assert full_passes.count(FIRST) == 2
    assert len(full_passes) == 8 + 1


def test_partials_are_computed_once_and_reused(data_root):
    settings = get_settings()
    spec = load_spec(settings)
    build.window_state(settings, spec, FIRST, "incremental", progress=False)
    partial = naming.daily_partial_path(settings, FIRST - dt.timedelta(days=1))
    stamp = partial.stat().st_mtime_ns
    build.window_state(settings, spec, FIRST + dt.timedelta(days=1), "partials", progress=False)
    assert partial.stat().st_mtime_ns == stamp


def test_features_from_partials_equal_features_from_raw(data_root):
    settings = get_settings()
    spec = load_spec(settings)
    date = FIRST + dt.timedelta(days=5)
    from_partials = build.build_features(settings, spec, date, "partials", progress=False)
    from_raw = build.build_features(settings, spec, date, "raw", progress=False)
    assert from_partials.column_names == ["id", "date", *spec.names]
    assert from_partials.equals(from_raw)


def test_a_slide_builds_missing_window_and_leaving_partials_once_in_one_batch(
    data_root, monkeypatch
):
    """The leaving days' partials are read while the window's are checked and built: one
    that is missing is built in the same Dask batch as the new day's, each day once."""
    settings = get_settings()
    spec = load_spec(settings)
    date = FIRST + dt.timedelta(days=1)
    build.window_state(settings, spec, FIRST, "incremental", progress=False)
    cutoff = settings.feature_cutoff(date)
    missing = sorted({cutoff, *(cutoff - dt.timedelta(days=w) for w in spec.windows)})
    for day in missing:
        naming.daily_partial_path(settings, day).unlink(missing_ok=True)
    batches = []
    original = build.run_tasks

    def counting(settings, tasks, description, progress=True):
        batches.append((description, len(tasks)))
        return original(settings, tasks, description, progress)

    monkeypatch.setattr(build, "run_tasks", counting)
    slid = build.window_state(settings, spec, date, "incremental", progress=False)
    assert batches == [("daily partials", len(missing))]
    assert all(naming.daily_partial_path(settings, day).exists() for day in missing)
    monkeypatch.setattr(build, "run_tasks", original)
    assert slid.equals(build.window_state(settings, spec, date, "raw", progress=False))


def test_a_day_with_only_the_new_partial_missing_builds_it_without_dask(data_root, monkeypatch):
    """The daily slide: one new day is reduced in this process, not sent to the cluster."""
    settings = get_settings()
    spec = load_spec(settings)
    build.window_state(settings, spec, FIRST, "incremental", progress=False)
    date = FIRST + dt.timedelta(days=1)
    monkeypatch.setattr(build, "run_tasks", lambda *a, **k: pytest.fail("sent to Dask"))
    slid = build.window_state(settings, spec, date, "incremental", progress=False)
    assert naming.daily_partial_path(settings, settings.feature_cutoff(date)).exists()
    monkeypatch.undo()
    assert slid.equals(build.window_state(settings, spec, date, "raw", progress=False))
