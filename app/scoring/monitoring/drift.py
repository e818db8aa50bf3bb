"""Drift: how far each feature and the score of a date moved from the current model's
reference, by two measures.

PSI (population stability index) = sum over bins of (actual - expected) * ln(actual /
expected). The bins follow the shape of the reference (`bins_of`): zero gets a bin of its
own; so, for whole-number features (counts, flags, days), does every value of a feature
with at most DISCRETE_VALUES distinct values and any value that holds a tenth of the
reference; the other values are cut at their deciles; missing values are a bin of their
own. PSI
sees mass moving between bins: a share of zeros that changes, a new value, a quantile
shift, values going missing.

PSI cannot see values that move within a bin or far out in the last one, and it is small
when a rare part of the distribution changes (the 5 % non-zero users of a 95 %-zero
feature). The second measure sees how far values moved: scipy's Wasserstein (earth
mover's) distance between the reference and the current values, divided by the
reference's mean absolute deviation from its median, so that it reads "values moved, on
average, this many typical deviations" on any scale. A constant reference has no scale;
there PSI alone decides.

A feature drifts when either is above its threshold: SCORING_DRIFT_PSI (0.25, the usual
"significant shift") or SCORING_DRIFT_WASSERSTEIN (1.0). The score drifts on the
Wasserstein distance alone (its PSI is reported): its reference comes from another model,
the probe below, and tree scores are tied at values of their own model, so bins cut at
the probe's ties read the served model's ties as a shift, while the distance only sees how
far the scores moved. Then `scoring drift` exits with
EXIT_DRIFT, a status of its own that an alert can catch; the table is written to
reports/drift-<date>.csv either way.

The features' reference is the current model's training set. The score's reference is
out of sample: the scores a model trained on every training date but the last gave the last
date, which it had not seen (`write_score_reference`); a model's scores on its own training
data are more confident than on any new date.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import wasserstein_distance

from scoring import atomic, naming
from scoring.errors import ConfigError, MissingInputError
from scoring.features.spec import FeatureSpec
from scoring.modeling import train
from scoring.monitoring import registry
from scoring.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.25
DEFAULT_WASSERSTEIN = 1.0
BINS = 10
# A reference with at most this many distinct values is discrete: each value is a bin.
DISCRETE_VALUES = 10
FLOOR = 1e-4  # share given to an empty bin, so that the logarithm stays finite


def _env_threshold(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise ConfigError(f"{name}={raw!r} must be above 0")
    return value


def threshold() -> float:
    """The PSI above which a column drifts (SCORING_DRIFT_PSI)."""
    return _env_threshold("SCORING_DRIFT_PSI", DEFAULT_THRESHOLD)


def wasserstein_threshold() -> float:
    """The scaled Wasserstein distance above which a column drifts."""
    return _env_threshold("SCORING_DRIFT_WASSERSTEIN", DEFAULT_WASSERSTEIN)


@dataclass(frozen=True)
class Bins:
    """Bins of a reference: `points` are values with a bin each, `cuts` the sorted
    boundaries of the intervals between them (points included); missing values last."""

    points: np.ndarray
    cuts: np.ndarray

    @property
    def size(self) -> int:
        return self.cuts.size + 1 + self.points.size + 1

    def assign(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value: an interval, a point, or the missing bin."""
        index = np.searchsorted(self.cuts, values, side="left")
        at = np.searchsorted(self.points, values, side="left")
        inside = at < self.points.size
        is_point = np.zeros(values.size, dtype=bool)
        is_point[inside] = self.points[at[inside]] == values[inside]
        index[is_point] = self.cuts.size + 1 + at[is_point]
        index[np.isnan(values)] = self.size - 1
        return index


def _floats(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)


def bins_of(reference) -> Bins:
    values = _floats(reference)
    values = values[~np.isnan(values)]
    distinct, counts = np.unique(values, return_counts=True)
    if not np.array_equal(distinct, np.round(distinct)):
        # Continuous values (the score): equal values are no category, and another model's
        # scores never hit the reference's exactly.
        points = np.array([0.0])
    elif distinct.size <= DISCRETE_VALUES:
        points = distinct
    else:
        heavy = distinct[counts >= values.size / BINS]
        points = np.union1d(heavy, [0.0])
    rest = values[~np.isin(values, points)]
    quantiles = np.quantile(rest, np.linspace(0, 1, BINS + 1)[1:-1]) if rest.size else np.array([])
    points = np.union1d(points, [0.0])
    return Bins(points=points, cuts=np.union1d(points, quantiles))


def shares(bins: Bins, values) -> np.ndarray:
    values = _floats(values)
    counts = np.bincount(bins.assign(values), minlength=bins.size)
    return np.maximum(counts / max(values.size, 1), FLOOR)


def psi(expected, actual, bins: Bins | None = None) -> float:
    bins = bins or bins_of(expected)
    expected_share, actual_share = shares(bins, expected), shares(bins, actual)
    return float(np.sum((actual_share - expected_share) * np.log(actual_share / expected_share)))


def wasserstein(expected, actual) -> float:
    """Wasserstein distance of the non-missing values over the reference's mean absolute
    deviation from its median; 0 for a constant reference or no values on a side."""
    expected, actual = _floats(expected), _floats(actual)
    expected, actual = expected[~np.isnan(expected)], actual[~np.isnan(actual)]
    if not expected.size or not actual.size:
        return 0.0
    scale = float(np.mean(np.abs(expected - np.median(expected))))
    if scale == 0:
        return 0.0
    return float(wasserstein_distance(expected, actual) / scale)


SCORE = "score"


def drifted(table: pd.DataFrame, psi_limit: float, wasserstein_limit: float) -> pd.Series:
    """Which rows of a drift table drift: a feature with either measure above its
    threshold, the score with its Wasserstein distance above it (see above)."""
    if "wasserstein" not in table:  # a record from before the second measure
        return table["psi"] > psi_limit
    over = (table["psi"] > psi_limit) & (table["column"] != SCORE)
    return over | (table["wasserstein"] > wasserstein_limit)


def drift_table(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """PSI and scaled Wasserstein distance of every column of `current` against
    `reference`, highest PSI first."""
    rows = [
        {
            "column": c,
            "psi": psi(reference[c], current[c]),
            "wasserstein": wasserstein(reference[c], current[c]),
        }
        for c in columns
    ]
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)


def write_score_reference(settings: Settings, model_id: str, scores) -> Path:
    """Keep out-of-sample scores of a model as the reference of its score's drift."""
    target = naming.score_reference_path(settings, model_id)
    table = pa.table({"score": pa.array(np.asarray(scores, dtype=np.float64))})
    atomic.write_parquet(table, target)
    return target


def _probe_scores(
    settings: Settings, spec: FeatureSpec, record: dict, train_set: pd.DataFrame
) -> np.ndarray | None:
    """What pipeline.write_model keeps: the scores that a model trained on the training
    dates before the holdout (those with rows) gives the holdout date; None when there
    were none."""
    holdout_day = dt.date.fromisoformat(record["holdout_date"])
    day_of_row = pd.to_datetime(train_set["date"]).dt.date
    earlier = train_set[day_of_row != holdout_day]
    if earlier.empty:
        return None
    probe = train.train(
        earlier, record["model_type"], spec.names, spec.hash, labels=record["labels"]["hash"]
    )
    path = naming.test_set_path(settings, holdout_day, spec.hash)
    if not path.exists():
        raise MissingInputError(f"{path} is needed for the score reference of {record['model_id']}")
    holdout = pq.read_table(path).to_pandas()
    return probe.predict_proba(holdout)


def score_reference(
    settings: Settings, spec: FeatureSpec, model_id: str, record: dict, train_set: pd.DataFrame
) -> np.ndarray:
    """The out-of-sample scores of `model_id`, computed and kept once when a model from
    before they were kept has none; a model of a single training date has no holdout, and
    its scores on its own training data stand in (logged)."""
    path = naming.score_reference_path(settings, model_id)
    if not path.exists():
        scores = _probe_scores(settings, spec, record, train_set)
        if scores is None:
            log.warning(
                "%s has no holdout date; its score drift is measured against its scores on "
                "its own training data",
                model_id,
            )
            model = train.load_model(naming.model_path(settings, model_id))
            return model.predict_proba(train_set)
        write_score_reference(settings, model_id, scores)
    return pq.read_table(path)["score"].to_numpy()


def drift_of_date(
    settings: Settings, spec: FeatureSpec, model_type: str, date: dt.date
) -> tuple[str, pd.DataFrame]:
    """The current model's id and the drift table of `date` (features and `score`)."""
    line = registry.line_of(settings, model_type, train.model_params(model_type), spec.hash)
    model_id = registry.current_model(settings, line)
    if not model_id:
        raise MissingInputError(f"no current {model_type} model; run scoring daily first")
    record = registry.read_metadata(settings, model_id)
    start, end = (
        dt.date.fromisoformat(record["train_start"]),
        dt.date.fromisoformat(record["train_end"]),
    )
    train_file = naming.train_set_of_model(settings, model_id, start, end)
    test_file = naming.test_set_path(settings, date, spec.hash)
    for path in (train_file, test_file):
        if not path.exists():
            raise MissingInputError(f"{path} is needed for the drift of {date} but is missing")
    model = train.load_model(naming.model_path(settings, model_id))
    reference = pq.read_table(train_file).to_pandas()
    current = pq.read_table(test_file).to_pandas()
    reference_scores = pd.DataFrame(
        {SCORE: score_reference(settings, spec, model_id, record, reference)}
    )
    current[SCORE] = model.predict_proba(current)
    table = pd.concat(
        [
            drift_table(reference, current, spec.names),
            drift_table(reference_scores, current, [SCORE]),
        ],
        ignore_index=True,
    ).sort_values("psi", ascending=False, ignore_index=True)
    atomic.write_text(table.to_csv(index=False), naming.drift_table_path(settings, date))
    return model_id, table
