"""Live evaluation runs with the daily job: every scored date whose labels have arrived gets
its realized metrics, and they match a direct computation from the files."""

import dataclasses
import datetime as dt
import json

import numpy as np
import pyarrow.parquet as pq
from scoring import cli
from scoring.data.labels import read_labels
from scoring.monitoring import live
from scoring.settings import get_settings
from sklearn.metrics import roc_auc_score


def test_daily_run_evaluates_every_labelled_scored_date(data_root):
    settings = get_settings()
    assert cli.main(["daily", "--local-scheduler", "--days-back", "5"]) == 0
    history = live.read_history(settings)
    labelled = settings.latest_labelled_date(settings.today)
    scored = [settings.today - dt.timedelta(days=i) for i in range(5, -1, -1)]
    expected = [d.isoformat() for d in scored if d <= labelled]
    assert sorted(history["date"]) == expected
    assert len(expected) == 3

    for row in history.itertuples():
        date = dt.date.fromisoformat(row.date)
        scores = pq.read_table(
            settings.predictions_dir / f"{row.model_id}-{row.date}.parquet"
        ).to_pandas()
        labels = scores["id"].isin(read_labels(settings, date)).astype(int).to_numpy()
        assert row.rows == len(scores)
        assert row.positives == labels.sum()
        assert np.isclose(row.auc, roc_auc_score(labels, scores["target"]))
        order = np.argsort(-scores["target"].to_numpy(), kind="stable")[: row.k]
        assert np.isclose(row.precision_at_k, labels[order].mean())
        assert np.isclose(row.recall_at_k, labels[order].sum() / labels.sum())

    # A rerun keeps the history as it is.
    before = history.copy()
    assert cli.main(["daily", "--local-scheduler", "--days-back", "5"]) == 0
    assert live.read_history(settings).equals(before)


def test_live_evaluation_is_of_the_published_file_under_its_models_label_window(
    data_root, monkeypatch
):
    import luigi  # noqa: PLC0415
    from scoring.tasks import LiveEvaluation, Predict  # noqa: PLC0415

    scored = dt.date(2026, 1, 31)
    monkeypatch.setenv("SCORING_TODAY", scored.isoformat())
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0
    published = sorted(get_settings().predictions_dir.glob(f"*-{scored}.parquet"))
    assert len(published) == 1
    served = published[0].stem[: -len(scored.isoformat()) - 1]

    # A week later, with a 2-day label window: the date is scored again by another model
    # (a backfill of it), and its labels have arrived under both windows.
    monkeypatch.setenv("SCORING_TODAY", (scored + dt.timedelta(days=7)).isoformat())
    monkeypatch.setenv("SCORING_LEAD_WINDOW", "2")
    settings = get_settings()
    assert luigi.build([Predict(date=scored)], local_scheduler=True, log_level="WARNING")
    assert len(sorted(settings.predictions_dir.glob(f"*-{scored}.parquet"))) == 2
    task = LiveEvaluation(date=scored, after_scoring=True)
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")

    history = live.read_history(settings)
    assert list(history["model_id"]) == [served]
    row = history.iloc[0]
    scores = pq.read_table(published[0]).to_pandas()
    three_days = read_labels(dataclasses.replace(settings, lead_window=3), scored)
    labels = scores["id"].isin(three_days).astype(int).to_numpy()
    assert row.positives == labels.sum()
    assert np.isclose(row.auc, roc_auc_score(labels, scores["target"]))

    # A record computed under another label window is not reused: it is computed again.
    record = live.record_path(settings, published[0])
    record.write_text(json.dumps({**json.loads(record.read_text()), "lead_window": 2}))
    assert not LiveEvaluation(date=scored, after_scoring=True).complete()
    assert luigi.build(
        [LiveEvaluation(date=scored, after_scoring=True)], local_scheduler=True, log_level="WARNING"
    )
    assert json.loads(record.read_text())["lead_window"] == 3
