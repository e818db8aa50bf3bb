"""The benchmark's DuckDB peers compute the same tables as the scoring code, value for value.

A peer that differed (a NULL where the project has 0, a missing user, an off-by-one
window) would make every ratio in docs/benchmarks.md meaningless; so would a comparison
that cannot see such a difference, which the last tests check.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from scoring import naming
from scoring.features import build
from scoring.features.spec import active_column, load_spec
from scoring.settings import get_settings

duckdb = pytest.importorskip("duckdb")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import peers  # noqa: E402

DATE = dt.date(2026, 1, 25)


def _raw_files(settings, date):
    return [naming.raw_events_path(settings, d) for d in build.window_days(settings, date)]


def test_single_pass_query_equals_the_full_recompute(data_root):
    settings, spec = get_settings(), load_spec(get_settings())
    ours = build.state_from_files(settings, spec, DATE, "raw", progress=False)
    theirs = peers.full_state(
        peers.connect(1), spec, _raw_files(settings, DATE), settings.feature_cutoff(DATE)
    )
    assert ours.num_rows > 100
    # Some users have empty short windows: the peer must say 0 there, as the state does.
    assert 0 in ours[active_column(7)].to_pylist()
    peers.compare_tables(ours, theirs, "full recompute")


def test_sql_slide_equals_the_slide(data_root):
    settings, spec = get_settings(), load_spec(get_settings())
    previous = build.window_state(
        settings, spec, DATE - dt.timedelta(days=1), "incremental", progress=False
    )
    ours = build.window_state(settings, spec, DATE, "incremental", progress=False)
    cutoff = settings.feature_cutoff(DATE)
    leaving = {
        w: naming.daily_partial_path(settings, cutoff - dt.timedelta(days=w)) for w in spec.windows
    }
    theirs = peers.slide_state(
        peers.connect(1),
        spec,
        previous,
        cutoff=cutoff,
        new_partial=naming.daily_partial_path(settings, cutoff),
        leaving=leaving,
    )
    assert ours.num_rows != previous.num_rows or not ours.equals(previous)
    peers.compare_tables(ours, theirs, "slide")


def test_sql_test_set_equals_the_feature_table(data_root):
    settings, spec = get_settings(), load_spec(get_settings())
    features = build.build_features(settings, spec, DATE, "incremental", progress=False)
    connection = peers.connect(1)
    connection.register("state", build.window_state(settings, spec, DATE, "incremental", False))
    query = peers.test_set_sql(
        spec,
        "state",
        f"read_parquet('{peers.users_file(settings, settings.feature_cutoff(DATE))}')",
        DATE,
        settings.feature_cutoff(DATE),
    )
    peers.compare_tables(features, connection.sql(query).to_arrow_table(), "test set")


def _small_state():
    return pa.table({"user_id": [3, 1, 2], "n": pa.array([0, 5, 7], pa.int32())})


def test_comparison_sees_a_null_where_a_zero_belongs():
    with_null = pa.table({"user_id": [1, 2, 3], "n": pa.array([5, 7, None], pa.int64())})
    with pytest.raises(AssertionError, match="column n has 0 and 1 nulls"):
        peers.compare_tables(_small_state(), with_null, "nulls")


def test_comparison_sees_one_changed_value_and_ignores_row_order_and_int_width():
    peers.compare_tables(
        _small_state(), pa.table({"user_id": [1, 2, 3], "n": [5, 7, 0]}), "same values"
    )
    with pytest.raises(AssertionError, match="differs in 1 rows; first at user_id=2"):
        peers.compare_tables(_small_state(), pa.table({"user_id": [1, 2, 3], "n": [5, 8, 0]}), "x")


def test_the_benchmark_measures_the_scoring_package_of_its_own_tree(tmp_path):
    """A copy of the tree imports its own `scoring`, not the venv's editable install."""
    app = Path(__file__).resolve().parents[1]
    copy = tmp_path / "app"
    shutil.copytree(app / "benchmarks", copy / "benchmarks")
    shutil.copytree(app / "scoring", copy / "scoring", ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('features', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "import scoring\n"
        "print(scoring.__file__)\n"
    )
    script = copy / "benchmarks" / "features.py"
    found = subprocess.run(
        [sys.executable, "-c", probe, str(script)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(found).resolve() == (copy / "scoring" / "__init__.py").resolve()
