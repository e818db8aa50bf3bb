"""Ranking and calibration metrics for a day's scores against its labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

TOP_FRACTION = 0.05
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Evaluation:
    rows: int
    positives: int
    base_rate: float
    auc: float
    precision_at_k: float
    lift_at_k: float
    k: int
    brier: float
    calibration_error: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def precision_at_k(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    # Stable sort on the negated score keeps ties in input order, so results are repeatable.
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean()) if k else float("nan")


def calibration_table(
    labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> pd.DataFrame:
    """Mean predicted vs. observed rate per score decile (equal-count bins)."""
    frame = pd.DataFrame({"label": labels, "score": scores})
    frame["bin"] = pd.qcut(frame["score"].rank(method="first"), bins, labels=False)
    table = frame.groupby("bin").agg(
        predicted=("score", "mean"), observed=("label", "mean"), rows=("label", "size")
    )
    return table.reset_index()


def evaluate(labels, scores, top_fraction: float = TOP_FRACTION) -> Evaluation:
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    base_rate = positives / len(labels) if len(labels) else float("nan")
    both_classes = 0 < positives < len(labels)
    k = max(1, round(len(labels) * top_fraction))
    precision = precision_at_k(labels, scores, k)
    table = calibration_table(labels, scores) if len(labels) >= CALIBRATION_BINS else None
    calibration_error = (
        float((table["rows"] * (table["predicted"] - table["observed"]).abs()).sum() / len(labels))
        if table is not None
        else float("nan")
    )
    return Evaluation(
        rows=len(labels),
        positives=positives,
        base_rate=base_rate,
        auc=float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        precision_at_k=precision,
        lift_at_k=precision / base_rate if base_rate else float("nan"),
        k=k,
        brier=float(brier_score_loss(labels, scores)) if len(labels) else float("nan"),
        calibration_error=calibration_error,
    )
