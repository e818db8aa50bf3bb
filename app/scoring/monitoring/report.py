"""What the daily run reports about its model: the recorded drift and the HTML report.

Drift: `reports/drift/<date>-<line>.csv` holds the PSI of each feature and of the score on a
scored date, against the training data of the model of that line that was current when it
was computed (named in the rows), and `reports/drift.csv` the history of every date and line,
rebuilt from the records.

The report, `reports/monitoring-<date>-<line>.html`, is one self-contained file (figures as
embedded PNG, no scripts, no links), so it opens in a browser or in JupyterLab's HTML viewer
straight from the data root: the live-evaluation metrics over time, the calibration of the
published scores, the drift of the date, and the current model against its challenger on
their holdout.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring import atomic, naming
from scoring.data.labels import read_labels
from scoring.features.spec import FeatureSpec
from scoring.modeling import train
from scoring.monitoring import drift, live, plots, registry
from scoring.settings import Settings

DRIFT_COLUMNS = [
    "date",
    "model_id",
    "column",
    "psi",
    "threshold",
    "wasserstein",
    "wasserstein_threshold",
]
# Published scores of this many of the latest evaluated dates make the calibration curve.
CALIBRATION_DATES = 7


# --- drift record -----------------------------------------------------------------------


def drift_dir(settings: Settings) -> Path:
    return settings.reports_dir / "drift"


def drift_record_path(settings: Settings, date: dt.date, line: str) -> Path:
    return drift_dir(settings) / f"{date.isoformat()}-{line}.csv"


def drift_history_path(settings: Settings) -> Path:
    return settings.reports_dir / "drift.csv"


def record_drift(
    settings: Settings, date: dt.date, model_id: str, table: pd.DataFrame, line: str = ""
) -> Path:
    """Write the drift record of `date` for `line` (by default the model's own; production
    may serve a line of the same feature list that is not its own) and rebuild the history;
    returns the record."""
    record = table.assign(
        date=date.isoformat(),
        model_id=model_id,
        threshold=drift.threshold(),
        wasserstein_threshold=drift.wasserstein_threshold(),
    )
    target = drift_record_path(settings, date, line or registry.line_of_model(settings, model_id))
    atomic.write_text(record[DRIFT_COLUMNS].to_csv(index=False), target)
    frames = [pd.read_csv(path) for path in sorted(drift_dir(settings).glob("*.csv"))]
    history = (
        pd.concat(frames, ignore_index=True)
        .reindex(columns=DRIFT_COLUMNS)
        .sort_values(["date", "psi"], ascending=[True, False])
    )
    atomic.write_text(history[DRIFT_COLUMNS].to_csv(index=False), drift_history_path(settings))
    return target


def read_drift_record(settings: Settings, date: dt.date, line: str) -> pd.DataFrame | None:
    path = drift_record_path(settings, date, line)
    return pd.read_csv(path) if path.exists() else None


def drifted(record: pd.DataFrame, threshold: float) -> list[str]:
    """The columns of a drift record above `threshold` (PSI) or the Wasserstein threshold,
    highest PSI first."""
    over = drift.drifted(record, threshold, drift.wasserstein_threshold())
    above = record[over].sort_values("psi", ascending=False)
    return above["column"].tolist()


# --- the HTML report --------------------------------------------------------------------


def line_for(settings: Settings, spec: FeatureSpec, model_type: str) -> str:
    return registry.line_of(settings, model_type, train.model_params(model_type), spec.hash)


def line_history(settings: Settings, line: str) -> pd.DataFrame:
    """Live-evaluation rows of the models of `line`, oldest date first."""
    models = {m["model_id"] for m in registry.list_models(settings) if m["line"] == line}
    history = live.read_history(settings)
    return history[history["model_id"].isin(models)].sort_values("date", ignore_index=True)


def published_calibration(
    settings: Settings, history: pd.DataFrame, dates: int = CALIBRATION_DATES
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels and published scores of the latest `dates` evaluated dates, pooled."""
    latest = history.drop_duplicates("date", keep="last").tail(dates)
    labels, scores = [], []
    for row in latest.itertuples():
        day = dt.date.fromisoformat(str(row.date))
        path = naming.predictions_path(settings, row.model_id, day)
        frame = pq.read_table(path).to_pandas()
        converted = read_labels(live.labelled_by(settings, path), day)
        labels.append(frame["id"].isin(converted).astype(int).to_numpy())
        scores.append(frame["target"].to_numpy())
    if not labels:
        return np.array([], dtype=int), np.array([]), []
    return np.concatenate(labels), np.concatenate(scores), [str(d) for d in latest["date"]]


def champion_and_challenger(settings: Settings, line: str) -> tuple[dict | None, dict | None]:
    """The current model and the latest other model of its line (refused, past or
    replaced), as metadata records."""
    models = [m for m in registry.list_models(settings) if m["line"] == line]
    champion = next((m for m in models if m["current"]), None)
    others = sorted(
        (m for m in models if not m["current"]), key=lambda m: (m["train_end"], m["model_id"])
    )
    return champion, (others[-1] if others else None)


def compared_metrics(champion: dict, challenger: dict) -> tuple[dict, dict, str]:
    """Holdout metrics of both models, on the same date where the gate measured both."""
    for judged, other, judged_is_challenger in (
        (challenger, champion, True),
        (champion, challenger, False),
    ):
        gate = judged.get("gate") or {}
        if (
            gate.get("champion") == other["model_id"]
            and judged.get("holdout_metrics")
            and judged.get("champion_holdout_metrics")
        ):
            mine, theirs = judged["holdout_metrics"], judged["champion_holdout_metrics"]
            pair = (theirs, mine) if judged_is_challenger else (mine, theirs)
            return pair[0], pair[1], f"both on the holdout date {judged['holdout_date']}"
    return (
        champion.get("holdout_metrics") or {},
        challenger.get("holdout_metrics") or {},
        f"each on its own holdout date ({champion['holdout_date']}, {challenger['holdout_date']})",
    )


def _image(figure) -> str:
    encoded = base64.b64encode(plots.figure_png(figure)).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, na_rep="n/a")


def _section_metrics(settings: Settings, history: pd.DataFrame) -> list[str]:
    parts = ["<h2>Metrics over time</h2>"]
    if history.empty:
        return [*parts, _note("No scored date has its labels yet.")]
    shown = history[
        [
            "date",
            "model_id",
            "rows",
            "positives",
            *plots.LIVE_RANKING,
            *plots.LIVE_CALIBRATION,
        ]
    ].tail(14)
    return [*parts, _image(plots.live_metrics_figure(history)), _table(shown)]


def _section_calibration(settings: Settings, history: pd.DataFrame) -> list[str]:
    parts = ["<h2>Calibration of the published scores</h2>"]
    labels, scores, dates = published_calibration(settings, history)
    if len(labels) < 10:
        return [*parts, _note("Not enough labelled published scores yet.")]
    title = f"Calibration, {dates[0]} to {dates[-1]}"
    return [
        *parts,
        _image(plots.calibration_figure(labels, scores, title)),
        _note(f"Published scores of {len(dates)} dates, {len(labels)} users."),
    ]


def _section_drift(settings: Settings, date: dt.date, line: str) -> list[str]:
    parts = ["<h2>Drift per feature</h2>"]
    record = read_drift_record(settings, date, line)
    if record is None:
        return [*parts, _note(f"No drift record for {date}; run scoring drift --record.")]
    limit = drift.threshold()
    above = drifted(record, limit)
    verdict = (
        f"Drift above PSI {limit} or Wasserstein {drift.wasserstein_threshold()}: "
        f"{', '.join(above)}."
        if above
        else f"No feature above PSI {limit} or Wasserstein {drift.wasserstein_threshold()}."
    )
    return [
        *parts,
        _note(f"{date} against the training data of {record['model_id'].iloc[0]}. {verdict}"),
        _image(plots.drift_figure(record, limit)),
    ]


def _section_models(settings: Settings, line: str) -> list[str]:
    parts = ["<h2>Champion and challenger</h2>"]
    champion, challenger = champion_and_challenger(settings, line)
    if champion is None:
        return [*parts, _note("No current model.")]
    rows = [champion] + ([challenger] if challenger else [])
    summary = pd.DataFrame(
        [
            {
                "role": "champion (current)" if m is champion else "challenger",
                "model": m["model_id"],
                "trained on": f"{m['train_start']} to {m['train_end']}",
                "gate": (m.get("gate") or {}).get("decision", ""),
                "reason": (m.get("gate") or {}).get("reason", ""),
            }
            for m in rows
        ]
    )
    if challenger is None:
        bars = {"champion": champion.get("holdout_metrics") or {}}
        where = f"holdout date {champion['holdout_date']}; no other model of this line yet"
    else:
        mine, theirs, where = compared_metrics(champion, challenger)
        bars = {"champion": mine, "challenger": theirs}
    return [
        *parts,
        _table(summary),
        _image(plots.champion_challenger_figure(bars, f"Holdout metrics, {where}")),
    ]


STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }
img { max-width: 100%; display: block; margin: 1em 0; }
.note { color: #555; }
"""


def state(settings: Settings, spec: FeatureSpec, model_type: str, date: dt.date) -> str:
    """Hash of what the report of `date` shows: the decision that made the production model
    current, the live evaluations of the line and the drift record of the date. A report
    that carries another state is out of date (a promote, a rollback, new labels)."""
    line = line_for(settings, spec, model_type)
    drift_path = drift_record_path(settings, date, line)
    return naming.short_hash(
        {
            "decision": registry.current_decision(settings),
            "live": line_history(settings, line).to_dict(orient="records"),
            "drift": drift_path.read_text() if drift_path.exists() else None,
        }
    )


STATE = re.compile(r'<meta name="scoring-state" content="([0-9a-f]+)">')


def is_current(settings: Settings, spec: FeatureSpec, model_type: str, date: dt.date) -> bool:
    path = naming.report_path(settings, line_for(settings, spec, model_type), date)
    if not path.exists():
        return False
    found = STATE.search(path.read_text())
    return bool(found) and found.group(1) == state(settings, spec, model_type, date)


def write_report(settings: Settings, spec: FeatureSpec, model_type: str, date: dt.date) -> Path:
    line = line_for(settings, spec, model_type)
    history = line_history(settings, line)
    decision = registry.current_decision(settings)
    production = (
        f"Production model {decision['model']}: {decision['action']} by {decision['by']} at "
        f"{decision['at']} ({decision.get('reason', '')})."
        if decision
        else "No production model yet."
    )
    title = f"Scoring model report {date} ({settings.env})"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _note(
            f"Model line {line}: {model_type} models on feature list {spec.hash}, "
            f"{settings.lead_window}-day label window, {settings.train_days} training dates, "
            f"retrained every {settings.retrain_every} days."
        ),
        _note(production),
        *_section_metrics(settings, history),
        *_section_calibration(settings, history),
        *_section_drift(settings, date, line),
        *_section_models(settings, line),
    ]
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="scoring-state" content="{state(settings, spec, model_type, date)}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    target = naming.report_path(settings, line, date)
    atomic.write_text(document, target)
    return target
