"""Backtest figures as PNG files, and the figures of the daily monitoring report.

Figures are built with matplotlib's object API and rendered by the Agg canvas, never through
pyplot: no display is needed and no global figure state is shared between threads.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_curve

from scoring import atomic
from scoring.monitoring.evaluate import calibration_table


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


# --- monitoring figures (the daily HTML report and the notebooks) ------------------------
# These return the figure; figure_png renders it, so the report can embed it and a
# notebook can display it without a file.


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


LIVE_RANKING = ("auc", "precision_at_k", "recall_at_k")
LIVE_CALIBRATION = ("brier", "calibration_error")


def live_metrics_figure(history: pd.DataFrame) -> Figure:
    """Realized metrics of the published scores by scored date: ranking on the left,
    calibration on the right."""
    figure = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(figure)
    ranking, calibration = figure.subplots(1, 2)
    dates = pd.to_datetime(history["date"])
    for axis, metrics, title in (
        (ranking, LIVE_RANKING, "ranking (top 5% for precision and recall)"),
        (calibration, LIVE_CALIBRATION, "calibration (lower is better)"),
    ):
        for metric in metrics:
            axis.plot(dates, history[metric], marker="o", label=metric)
        axis.set_title(title)
        axis.set_xlabel("scored date")
        axis.grid(alpha=0.3)
        axis.legend()
        # Whole days only: a few days of history would otherwise get hourly ticks.
        axis.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        axis.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    figure.suptitle("Live evaluation: published scores against the labels that arrived", y=1.02)
    return figure


def calibration_figure(labels: np.ndarray, scores: np.ndarray, title: str) -> Figure:
    """Mean predicted probability against the observed rate, per score decile."""
    figure, axis = _new(4.5, 4.5)
    table = calibration_table(np.asarray(labels), np.asarray(scores))
    axis.plot(table["predicted"], table["observed"], marker="o", label="score deciles")
    top = max(float(table["predicted"].max()), float(table["observed"].max()), 1e-3)
    axis.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1, label="perfect")
    axis.set_xlabel("mean predicted probability")
    axis.set_ylabel("observed conversion rate")
    axis.set_title(title)
    axis.legend()
    return figure


def drift_figure(table: pd.DataFrame, threshold: float) -> Figure:
    """PSI per feature and of the score as horizontal bars; bars above `threshold` in red."""
    ordered = table.sort_values("psi")
    figure, axis = _new(7, max(2.5, 0.32 * len(ordered) + 1))
    colours = ["tab:red" if value > threshold else "tab:blue" for value in ordered["psi"]]
    axis.barh(ordered["column"], ordered["psi"], color=colours)
    axis.axvline(threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
    axis.set_xlabel("PSI against the current model's training data")
    axis.set_title("Drift per feature")
    axis.legend(loc="lower right")
    return figure


CHAMPION_METRICS = ("auc", "precision_at_k", "brier", "calibration_error")


def champion_challenger_figure(models: dict[str, dict], title: str) -> Figure:
    """Grouped bars: one group per metric, one bar per model (label -> holdout metrics)."""
    figure, axis = _new(7, 3.5)
    width = 0.8 / max(len(models), 1)
    positions = np.arange(len(CHAMPION_METRICS))
    for index, (label, metrics) in enumerate(models.items()):
        values = [float(metrics.get(m, np.nan)) for m in CHAMPION_METRICS]
        axis.bar(positions + index * width, values, width, label=label)
    axis.set_xticks(positions + width * (len(models) - 1) / 2, CHAMPION_METRICS)
    axis.set_ylabel("holdout value")
    axis.set_title(title)
    axis.grid(alpha=0.3, axis="y")
    axis.legend()
    return figure
