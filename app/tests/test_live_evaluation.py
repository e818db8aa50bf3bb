"""Live evaluation runs with the daily job: every scored date whose labels have arrived gets
its realized metrics, and they match a direct computation from the files."""

import datetime as dt

import numpy as np
import pyarrow.parquet as pq
from scoring import cli
from scoring.data.dataset import read_labels
from scoring.models import live
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
