"""Backtest figures as PNG files.

Figures are built with matplotlib's object API and rendered by the Agg canvas, never through
pyplot: no display is needed and no global figure state is shared between threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from scoring import atomic
from scoring.models.evaluate import calibration_table


def _new(width: float, height: float):
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _save(figure: Figure, target: Path) -> Path:
    with atomic.atomic_output(target) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    return target


def plot_metric_by_date(metrics: pd.DataFrame, metric: str, target: Path) -> Path:
    """One line per model: `metric` for each backtested date."""
    figure, axis = _new(7, 3.5)
    for model_type, rows in metrics.groupby("model_type"):
        axis.plot(rows["date"].astype(str), rows[metric], marker="o", label=model_type)
    axis.set_xlabel("scoring date")
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} by scoring date")
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(figure, target)


def plot_roc(scored: pd.DataFrame, target: Path) -> Path:
    """ROC curves of all backtested dates pooled, one per model."""
    figure, axis = _new(4.5, 4.5)
    for model_type, rows in scored.groupby("model_type"):
        false_positive, true_positive, _ = roc_curve(rows["label"], rows["score"])
        axis.plot(false_positive, true_positive, label=model_type)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title("ROC, all backtest dates")
    axis.legend()
    return _save(figure, target)


def plot_calibration(scored: pd.DataFrame, target: Path) -> Path:
    figure, axis = _new(4.5, 4.5)
    top = 0.0
    for model_type, rows in scored.groupby("model_type"):
        table = calibration_table(rows["label"].to_numpy(), rows["score"].to_numpy())
        axis.plot(table["predicted"], table["observed"], marker="o", label=model_type)
        top = max(top, float(table["predicted"].max()), float(table["observed"].max()))
    axis.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1)
    axis.set_xlabel("mean predicted probability (decile)")
    axis.set_ylabel("observed conversion rate")
    axis.set_title("Calibration")
    axis.legend()
    return _save(figure, target)


def plot_cumulative_gain(scored: pd.DataFrame, target: Path) -> Path:
    """Share of all conversions found in the top x% of users, per model."""
    figure, axis = _new(4.5, 4.5)
    for model_type, rows in scored.groupby("model_type"):
        order = np.argsort(-rows["score"].to_numpy(), kind="stable")
        labels = rows["label"].to_numpy()[order]
        found = np.cumsum(labels) / max(labels.sum(), 1)
        share = np.arange(1, len(labels) + 1) / len(labels)
        axis.plot(share, found, label=model_type)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axis.set_xlabel("share of users contacted (by score)")
    axis.set_ylabel("share of conversions found")
    axis.set_title("Cumulative gain")
    axis.legend()
    return _save(figure, target)
