"""What the daily run reports after the scoring: the drift of the day, recorded, with its own
exit status once the scores are published; and the self-contained HTML report with its
figures."""

import base64
import datetime as dt
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scoring import cli, naming, pipeline
from scoring.features.spec import load_spec
from scoring.monitoring import report
from scoring.settings import get_settings

PNG = b"\x89PNG\r\n\x1a\n"
SECTIONS = (
    "Metrics over time",
    "Calibration of the published scores",
    "Drift per feature",
    "Champion and challenger",
)


def _daily() -> int:
    return cli.main(["daily", "--local-scheduler", "--days-back", "5"])


def _todays_predictions(settings, spec):
    return naming.predictions_path(
        settings,
        pipeline.serving_model(
            settings, spec, "hgb", settings.train_end_for(settings.today), settings.today
        ),
        settings.today,
    )


def _figures(document: str) -> list[bytes]:
    encoded = re.findall(
        r'<img alt="figure" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', document
    )
    return [base64.b64decode(e) for e in encoded]


def test_daily_run_records_drift_writes_the_report_and_exits_3_on_drift(data_root, capsys):
    settings = get_settings()
    spec = load_spec(settings)

    # A stable day: exit 0, drift recorded against the current model, report written.
    assert _daily() == 0
    line = report.line_for(settings, spec, "hgb")
    record = report.read_drift_record(settings, settings.today, line)
    assert set(record["column"]) == {*spec.names, "score"}
    assert (record["psi"] <= record["threshold"]).all()
    history = pd.read_csv(report.drift_history_path(settings))
    assert set(history["date"]) == {settings.today.isoformat()}

    path = naming.report_path(settings, line, settings.today)
    document = path.read_text()
    assert all(f"<h2>{title}</h2>" in document for title in SECTIONS)
    assert 'src="http' not in document and "<script" not in document  # self-contained
    figures = _figures(document)
    assert len(figures) == 4
    assert all(f.startswith(PNG) and len(f) > 5000 for f in figures)
    capsys.readouterr()

    # A synthetic drift: today's users suddenly search ten times as much. The day is scored
    # again from the shifted features; the scores are published and the run exits 3.
    path.unlink()
    _todays_predictions(settings, spec).unlink()
    test_set = naming.test_set_path(settings, settings.today, spec.hash)
    table = pq.read_table(test_set)
    index = table.schema.get_field_index("searches")
    shifted = (table["searches"].to_numpy() * 10 + 20).astype(np.int32)
    pq.write_table(table.set_column(index, "searches", pa.array(shifted)), test_set)
    report.drift_record_path(settings, settings.today, line).unlink()

    assert _daily() == cli.EXIT_DRIFT
    err = capsys.readouterr().err
    assert "searches" in err and "above PSI" in err and "scores are published" in err
    scores = pq.read_table(_todays_predictions(settings, spec))
    assert scores.num_rows == table.num_rows
    record = report.read_drift_record(settings, settings.today, line)
    assert report.drifted(record, record["threshold"].iloc[0])[0] == "searches"
    assert "Drift above PSI" in path.read_text() and "searches" in path.read_text()

    # Nothing changed since: the next run finds the drift recorded and reports it again.
    assert _daily() == cli.EXIT_DRIFT


def test_drift_command_records_on_request(data_root):
    settings = get_settings()
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0
    line = report.line_for(settings, load_spec(settings), "hgb")
    record = report.drift_record_path(settings, settings.today, line)
    record.unlink()
    report.drift_history_path(settings).unlink()
    assert cli.main(["drift"]) == 0
    assert not record.exists()
    assert cli.main(["drift", "--record"]) == 0
    assert record.exists()
    assert report.drift_history_path(settings).exists()
    # The report command regenerates the report on demand.
    target = naming.report_path(settings, line, settings.today)
    target.unlink()
    assert cli.main(["report"]) == 0
    document = target.read_text()
    # Only today is scored, and its labels have not arrived: no live evaluation yet.
    assert "No scored date has its labels yet." in document
    assert len(_figures(document)) == 2  # drift, champion


def _champion(document: str) -> str:
    found = re.search(r"<td>champion \(current\)</td>\s*<td>([^<]+)</td>", document)
    assert found, "no champion row in the report"
    return found.group(1)


def test_after_a_rollback_the_rerun_report_names_the_chosen_model(data_root, monkeypatch):
    monkeypatch.setenv("SCORING_GATE_TOLERANCE", "1")  # both daily models are promoted
    settings = get_settings()
    spec = load_spec(settings)
    week_before = settings.today - dt.timedelta(days=7)
    monkeypatch.setenv("SCORING_TODAY", week_before.isoformat())
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0
    earlier = pipeline.model_identifier(settings, spec, "hgb", settings.train_end_for(week_before))
    monkeypatch.setenv("SCORING_TODAY", settings.today.isoformat())
    assert _daily() == 0
    latest = pipeline.model_identifier(
        settings, spec, "hgb", settings.train_end_for(settings.today)
    )
    path = naming.report_path(settings, report.line_for(settings, spec, "hgb"), settings.today)
    assert _champion(path.read_text()) == latest

    assert cli.main(["models", "rollback", latest]) == 0
    assert _daily() == 0
    assert _champion(path.read_text()) == earlier
