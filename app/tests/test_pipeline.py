"""End-to-end luigi runs on small data: local scheduler, reruns, failures, a Dask cluster."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, compute, naming, pipeline
from scoring.features.spec import load_spec
from scoring.modeling import predict, train
from scoring.settings import get_settings


def _prediction_path(settings, date):
    spec = load_spec(settings)
    identifier = pipeline.model_identifier(
        settings, spec, settings.model_type, settings.train_end_for(date)
    )
    return naming.predictions_path(settings, identifier, date), identifier


def test_daily_run_backfills_and_reruns_as_a_no_op(data_root):
    settings = get_settings()
    assert cli.main(["daily", "--local-scheduler"]) == 0
    today, yesterday = settings.today, settings.today - dt.timedelta(days=1)
    for date in (today, yesterday):
        path, identifier = _prediction_path(settings, date)
        scores = pq.read_table(path)
        assert scores.column_names == ["id", "date", "target"]
        assert scores.num_rows > 0
        assert set(scores["date"].to_pylist()) == {date}
    model = naming.model_path(settings, identifier)
    stamp = model.stat().st_mtime_ns

    # Same inputs: every output is reused, nothing is recomputed.
    assert cli.main(["daily", "--local-scheduler"]) == 0
    assert model.stat().st_mtime_ns == stamp
    assert not [p for p in data_root.rglob("*") if ".tmp-" in p.name]


def test_daily_run_fails_when_raw_data_is_late(data_root, capsys):
    settings = get_settings()
    late = settings.today + dt.timedelta(days=5)
    code = cli.main(["daily", "--local-scheduler", "--until", late.isoformat(), "--days-back", "0"])
    assert code != 0
    err = capsys.readouterr().err
    assert f"raw day {late - dt.timedelta(days=5)} failed the 'late' check" in err


def test_backtest_writes_report_and_figures(data_root, capsys):
    assert cli.main(["backtest", "--local-scheduler", "--count", "2", "--step", "2"]) == 0
    report = capsys.readouterr().out.strip().splitlines()[-1]
    text = Path(report).read_text(encoding="utf-8")
    assert "| hgb |" in text
    assert "| activity |" in text
    settings = get_settings()
    figures = sorted(settings.figures_dir.glob("*.png"))
    assert len(figures) == 5
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)


def test_user_error_exits_without_traceback(data_root, capsys, monkeypatch):
    monkeypatch.setenv("SCORING_ENV", "production")
    assert cli.main(["generate", "--users", "10", "--days", "2"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to write synthetic raw data in production")


@pytest.fixture
def dask_cluster(monkeypatch):
    cluster = compute.local_cluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    )
    monkeypatch.setenv("SCORING_DASK_ADDRESS", cluster.scheduler_address)
    yield cluster
    compute.close_clients()
    cluster.close()


def test_prediction_runs_on_a_dask_cluster(data_root, dask_cluster):
    settings = get_settings()
    assert cli.main(["predict", "--local-scheduler", "--date", settings.today.isoformat()]) == 0
    path, _ = _prediction_path(settings, settings.today)
    assert pq.read_table(path).num_rows > 0
    # The feature work really went through that scheduler.
    assert dask_cluster.scheduler.transition_counter > 0


def test_smoke_command_passes(monkeypatch):
    monkeypatch.delenv("SCORING_DATA_ROOT", raising=False)
    assert cli.main(["smoke"]) == 0


def test_rows_of_a_parquet_file_are_read_from_their_row_groups_only(tmp_path, monkeypatch):
    table = pa.table({"id": list(range(10)), "x": [float(i) / 3 for i in range(10)]})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=3)  # groups of rows 0-2, 3-5, 6-8, 9
    read = []
    original = pq.ParquetFile.read_row_groups

    def recording(self, groups, *args, **kwargs):
        read.append(list(groups))
        return original(self, groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", recording)
    cases = {(0, 3): [0], (4, 3): [1, 2], (5, 5): [1, 2, 3], (9, 4): [3], (2, 0): []}
    for (offset, size), groups in cases.items():
        read.clear()
        assert pipeline.read_rows(path, offset, size).equals(table.slice(offset, size))
        assert read == ([groups] if groups else []), (offset, size)
    assert pipeline.read_rows(path, 12, 3).schema == table.schema


def test_predictions_keep_the_order_of_a_test_set_in_many_row_groups(data_root, monkeypatch):
    """Three scoring tasks, each reading its rows from row groups of 7 rows, give the
    scores of the whole test set in its order."""
    settings = get_settings()
    monkeypatch.setattr(pipeline, "TEST_SET_ROW_GROUP", 7)
    monkeypatch.setattr(pipeline, "worker_threads", lambda _settings: 3)
    assert cli.main(["predict", "--local-scheduler", "--date", settings.today.isoformat()]) == 0
    spec = load_spec(settings)
    test_set = naming.test_set_path(settings, settings.today, spec.hash)
    assert pq.ParquetFile(test_set).metadata.num_row_groups > 3
    path, identifier = _prediction_path(settings, settings.today)
    model = train.load_model(naming.model_path(settings, identifier))
    expected = predict.predict_table(model, pq.read_table(test_set))
    assert pq.read_table(path).equals(expected)
