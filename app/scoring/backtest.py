"""Backtests: score past dates with the models that were current then, compare to labels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from scoring import atomic, naming, pipeline
from scoring.data.labels import read_labels
from scoring.features.spec import FeatureSpec
from scoring.monitoring import plots
from scoring.monitoring.evaluate import TOP_FRACTION, evaluate
from scoring.settings import Settings


def backtest_dates(settings: Settings, end: dt.date, count: int, step: int) -> list[dt.date]:
    return [end - dt.timedelta(days=step * i) for i in range(count - 1, -1, -1)]


def _scored_rows(settings, spec, model_types, dates) -> pd.DataFrame:
    frames = []
    for date in dates:
        converted = set(read_labels(settings, date).tolist())
        for model_type in model_types:
            train_end = settings.train_end_for(date)
            scores = pipeline.read_predictions(settings, spec, model_type, train_end, date)
            frames.append(
                pd.DataFrame(
                    {
                        "date": date,
                        "model_type": model_type,
                        "score": scores["target"].to_numpy(),
                        "label": scores["id"].isin(converted).astype(int).to_numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def write_backtest(
    settings: Settings, spec: FeatureSpec, dates: list[dt.date], model_types: list[str]
) -> Path:
    """Evaluate every (date, model) pair, draw the figures, then write the report last."""
    scored = _scored_rows(settings, spec, model_types, dates)
    metrics = pd.DataFrame(
        [
            {
                "date": date,
                "model_type": model_type,
                **evaluate(rows["label"], rows["score"]).as_dict(),
            }
            for (date, model_type), rows in scored.groupby(["date", "model_type"], sort=True)
        ]
    )
    target = naming.backtest_report_path(settings, dates, model_types, spec.hash)
    stem = target.stem
    figures = {
        "AUC by date": plots.plot_metric_by_date(
            metrics, "auc", settings.figures_dir / f"{stem}-auc.png"
        ),
        "Lift in the top 5% by date": plots.plot_metric_by_date(
            metrics, "lift_at_k", settings.figures_dir / f"{stem}-lift.png"
        ),
        "ROC": plots.plot_roc(scored, settings.figures_dir / f"{stem}-roc.png"),
        "Cumulative gain": plots.plot_cumulative_gain(
            scored, settings.figures_dir / f"{stem}-gain.png"
        ),
        "Calibration": plots.plot_calibration(
            scored, settings.figures_dir / f"{stem}-calibration.png"
        ),
    }
    atomic.write_text(_markdown(settings, spec, dates, metrics, figures), target)
    return target


def _markdown(settings, spec, dates, metrics: pd.DataFrame, figures: dict[str, Path]) -> str:
    lines = [
        f"# Backtest {min(dates)} to {max(dates)}",
        "",
        f"Environment `{settings.env}`, feature list `{spec.hash}`, "
        f"{settings.aggregation_window}-day window, {settings.lead_window}-day label window, "
        f"data delay {settings.data_delay} day(s). Each date is scored by the model that was "
        f"current on it (trained on {settings.train_days} dates whose labels were complete).",
        "",
        f"| date | model | users | conversions | AUC | precision@{TOP_FRACTION:.0%} "
        "| lift@5% | Brier | calibration error |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in metrics.itertuples():
        lines.append(
            f"| {row.date} | {row.model_type} | {row.rows} | {row.positives} | {row.auc:.3f} "
            f"| {row.precision_at_k:.3f} | {row.lift_at_k:.2f} | {row.brier:.4f} "
            f"| {row.calibration_error:.4f} |"
        )
    means = metrics.groupby("model_type")[["auc", "lift_at_k"]].mean()
    lines += [
        "",
        "Mean over dates: "
        + "; ".join(
            f"{model} AUC {row.auc:.3f}, lift@5% {row.lift_at_k:.2f}"
            for model, row in means.iterrows()
        ),
        "",
    ]
    for title, path in figures.items():
        lines += [f"## {title}", "", f"![{title}](figures/{path.name})", ""]
    return "\n".join(lines)
