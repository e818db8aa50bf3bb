"""Live evaluation: once the labels of a scored date have arrived (date + lead window, plus
the data delay), the published scores of that date are compared with what happened.

What is evaluated is the file published for the date (modeling.published.published_file),
under the label window of the model that scored it (recorded in the file), so a lead window
changed since then does not change the labels. One record per (model, date) under
reports/live/<model-id>-<date>.json, naming the label definition it used (a record of
another definition is computed again), and the whole history
as reports/live-evaluation.csv (rebuilt from the records, newest date last): AUC, precision
and recall in the top k (the top TOP_FRACTION of users, the share the business contacts),
Brier score and calibration error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring import atomic, naming
from scoring.data.labels import read_labels
from scoring.errors import LabelsSkipped
from scoring.modeling.published import published_file, served_by
from scoring.monitoring.evaluate import TOP_FRACTION, evaluate
from scoring.settings import Settings

COLUMNS = [
    "date",
    "model_id",
    "rows",
    "positives",
    "auc",
    "k",
    "precision_at_k",
    "recall_at_k",
    "brier",
    "calibration_error",
    "lead_window",
]


def live_dir(settings: Settings) -> Path:
    return settings.reports_dir / "live"


def history_path(settings: Settings) -> Path:
    return settings.reports_dir / "live-evaluation.csv"


def published(settings: Settings, date: dt.date) -> list[Path]:
    """The score file published for `date`, if any."""
    path = published_file(settings, date)
    return [path] if path is not None else []


def labelled_by(settings: Settings, prediction: Path) -> Settings:
    """`settings` with the label window of the model that wrote `prediction`."""
    labels = served_by(prediction)["labels"]
    return dataclasses.replace(settings, lead_window=int(labels["lead_window"]))


def labels_arrived(settings: Settings, prediction: Path, date: dt.date, as_of: dt.date) -> bool:
    return labelled_by(settings, prediction).latest_labelled_date(as_of) >= date


def record_path(settings: Settings, prediction: Path) -> Path:
    return live_dir(settings) / f"{prediction.stem}.json"


def record_is_current(settings: Settings, prediction: Path) -> bool:
    """A record exists for `prediction` and was computed under its model's label window."""
    path = record_path(settings, prediction)
    if not path.exists():
        return False
    recorded = json.loads(path.read_text()).get("lead_window")
    return recorded == labelled_by(settings, prediction).lead_window


def evaluate_file(settings: Settings, prediction: Path, date: dt.date) -> dict:
    scores = pq.read_table(prediction).to_pandas()
    settings = labelled_by(settings, prediction)
    converted = read_labels(settings, date)
    labels = scores["id"].isin(converted).astype(int).to_numpy()
    values = scores["target"].to_numpy()
    result = evaluate(labels, values, TOP_FRACTION)
    top = np.argsort(-values, kind="stable")[: result.k]
    recall = float(labels[top].sum() / result.positives) if result.positives else float("nan")
    model_id = naming.model_of_predictions(prediction, date)
    return {
        "date": date.isoformat(),
        "model_id": model_id,
        "rows": result.rows,
        "positives": result.positives,
        "auc": result.auc,
        "k": result.k,
        "precision_at_k": result.precision_at_k,
        "recall_at_k": recall,
        "brier": result.brier,
        "calibration_error": result.calibration_error,
        "lead_window": settings.lead_window,
    }


def write_records(settings: Settings, date: dt.date, predictions: list[Path]) -> None:
    for prediction in predictions:
        try:
            record = evaluate_file(settings, prediction, date)
        except LabelsSkipped:  # under the skip policy; the gap is recorded
            continue
        atomic.write_text(json.dumps(record) + "\n", record_path(settings, prediction))
    rebuild_history(settings)


def rebuild_history(settings: Settings) -> Path:
    records = [json.loads(p.read_text()) for p in sorted(live_dir(settings).glob("*.json"))]
    frame = pd.DataFrame(records, columns=COLUMNS).sort_values(["date", "model_id"])
    target = history_path(settings)
    atomic.write_text(frame.to_csv(index=False), target)
    return target


def read_history(settings: Settings) -> pd.DataFrame:
    path = history_path(settings)
    return pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)
