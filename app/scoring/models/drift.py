"""Drift: the population stability index (PSI) of each feature and of the score on a date,
against the training data of the current model.

PSI = sum over bins of (actual - expected) * ln(actual / expected), with bins at the deciles
of the training data. Above SCORING_DRIFT_PSI (0.25 by default, the usual "significant
shift") the `scoring drift` command exits with EXIT_DRIFT, a status of its own that an alert
can catch; the table of values is written to reports/drift-<date>.csv either way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring import atomic, naming, pipeline
from scoring.errors import ConfigError, MissingInputError
from scoring.features.spec import FeatureSpec
from scoring.models import registry, train_model
from scoring.settings import Settings

DEFAULT_THRESHOLD = 0.25
BINS = 10
FLOOR = 1e-4  # share given to an empty bin, so that the logarithm stays finite


def threshold() -> float:
    raw = os.environ.get("SCORING_DRIFT_PSI", "").strip()
    try:
        return float(raw) if raw else DEFAULT_THRESHOLD
    except ValueError:
        raise ConfigError(f"SCORING_DRIFT_PSI={raw!r} is not a number") from None


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = BINS) -> float:
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    expected_share = np.bincount(
        np.searchsorted(edges, expected, side="right"), minlength=edges.size + 1
    ) / max(expected.size, 1)
    actual_share = np.bincount(
        np.searchsorted(edges, actual, side="right"), minlength=edges.size + 1
    ) / max(actual.size, 1)
    expected_share = np.maximum(expected_share, FLOOR)
    actual_share = np.maximum(actual_share, FLOOR)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def drift_table(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """PSI of every column of `current` against `reference`, highest first."""
    rows = [{"column": c, "psi": psi(reference[c], current[c])} for c in columns]
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)


def report_path(settings: Settings, date: dt.date) -> Path:
    return settings.reports_dir / f"drift-{date.isoformat()}.csv"


def drift_of_date(
    settings: Settings, spec: FeatureSpec, model_type: str, date: dt.date
) -> tuple[str, pd.DataFrame]:
    """The current model's id and the PSI table of `date` (features and `score`)."""
    line = registry.line_of(settings, model_type, train_model.model_params(model_type), spec.hash)
    model_id = registry.current_model(settings, line)
    if not model_id:
        raise MissingInputError(f"no current {model_type} model; run scoring daily first")
    record = registry.read_metadata(settings, model_id)
    start, end = (
        dt.date.fromisoformat(record["train_start"]),
        dt.date.fromisoformat(record["train_end"]),
    )
    dates = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    # The training data under the model's own label window (production may predate a change).
    labelled = dataclasses.replace(settings, lead_window=record["labels"]["lead_window"])
    train_file = pipeline.train_set_path(labelled, spec, dates)
    test_file = naming.test_set_path(settings, date, spec.hash)
    for path in (train_file, test_file):
        if not path.exists():
            raise MissingInputError(f"{path} is needed for the drift of {date} but is missing")
    model = train_model.load_model(naming.model_path(settings, model_id))
    reference = pq.read_table(train_file).to_pandas()
    current = pq.read_table(test_file).to_pandas()
    reference["score"] = model.predict_proba(reference)
    current["score"] = model.predict_proba(current)
    table = drift_table(reference, current, [*spec.names, "score"])
    atomic.write_text(table.to_csv(index=False), report_path(settings, date))
    return model_id, table
