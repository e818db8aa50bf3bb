"""The steps of the pipeline as plain functions: each reads its inputs, writes one output.

Luigi tasks (scoring.tasks) wrap these and decide what needs to run; tests and notebooks can
call them directly.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dask import delayed

from scoring import atomic, naming
from scoring.compute import run_tasks, worker_threads
from scoring.errors import ScoringError
from scoring.features import build
from scoring.features.spec import FeatureSpec
from scoring.modeling import predict, train
from scoring.modeling.published import PUBLISHED_KEY, published_record_path, read_published
from scoring.monitoring import drift, registry
from scoring.monitoring.evaluate import evaluate
from scoring.settings import Settings


def train_dates(settings: Settings, train_end: dt.date) -> list[dt.date]:
    """The `train_days` consecutive scoring dates ending at `train_end`."""
    return [train_end - dt.timedelta(days=i) for i in range(settings.train_days - 1, -1, -1)]


def train_set_hash(settings: Settings, dates: list[dt.date]) -> str:
    labels = naming.label_hash(settings.lead_window)
    return naming.train_hash(dates, labels, naming.training_skips(settings, dates))


def model_identifier(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date
) -> str:
    params = train.model_params(model_type)
    dates = train_dates(settings, train_end)
    return naming.model_id(model_type, params, train_set_hash(settings, dates), spec.hash)


# Rows per row group of a test set: each scoring task reads only the groups that hold its
# partition of users (and less than a group more at each end), not the whole file.
TEST_SET_ROW_GROUP = 1 << 16


def write_test_set(settings: Settings, spec: FeatureSpec, date: dt.date, progress=True) -> Path:
    target = naming.test_set_path(settings, date, spec.hash)
    features = build.build_features(settings, spec, date, "incremental", progress)
    atomic.write_parquet(features, target, row_group_size=TEST_SET_ROW_GROUP)
    return target


def read_rows(path: Path, offset: int, size: int) -> pa.Table:
    """Rows [offset, offset + size) of a parquet file, reading only the row groups that
    hold them."""
    file = pq.ParquetFile(path)
    groups, first, start = [], 0, 0
    for group in range(file.metadata.num_row_groups):
        rows = file.metadata.row_group(group).num_rows
        if max(start, offset) < min(start + rows, offset + size):  # they overlap
            if not groups:
                first = start
            groups.append(group)
        start += rows
    if not groups:
        return file.schema_arrow.empty_table()
    return file.read_row_groups(groups).slice(offset - first, size)


def read_test_set(settings: Settings, spec: FeatureSpec, date: dt.date) -> pa.Table:
    return pq.read_table(naming.test_set_path(settings, date, spec.hash))


def _labelled_test_set(settings: Settings, spec: FeatureSpec, date: dt.date) -> pa.Table:
    return build.add_labels(settings, read_test_set(settings, spec, date), date)


def write_train_set(
    settings: Settings, spec: FeatureSpec, dates: list[dt.date], progress: bool = True
) -> Path:
    """Stack the test sets of `dates` with their labels; each date is one Dask task."""
    target = naming.train_set_path(
        settings, dates, spec.hash, naming.label_hash(settings.lead_window)
    )
    tasks = [delayed(_labelled_test_set)(settings, spec, d) for d in dates]
    labelled = run_tasks(settings, tasks, "labelled dates", progress)
    atomic.write_parquet(pa.concat_tables(labelled), target)
    return target


def embargoed_dates(settings: Settings, dates: list[dt.date]) -> list[dt.date]:
    """The training dates of the probe model: those before the holdout (the latest date)
    whose label windows end before the holdout's begins. A date d is labelled by the
    conversions of [d, d + lead_window), so the lead_window - 1 dates just before the
    holdout share conversions with it and are left out."""
    holdout = max(dates)
    return [d for d in dates if d + dt.timedelta(days=settings.lead_window) <= holdout]


def is_todays_model(settings: Settings, train_end: dt.date) -> bool:
    """Whether `train_end` is that of the model the daily run trains for today: the only
    model the gate may make current."""
    return train_end == settings.train_end_for(settings.today)


def write_model(settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date) -> Path:
    """Train, evaluate on a time holdout, save with its metadata, and pass the quality gate.

    The holdout is the most recent labelled date of the training range: a probe model
    trained on the dates before it, less an embargo of the lead window (see embargoed_dates),
    scores it, and so does the production model if it can score that date without having
    seen its labels. The model saved is trained on all dates.
    """
    dates = train_dates(settings, train_end)
    labels = naming.label_hash(settings.lead_window)
    train_set = pq.read_table(naming.train_set_path(settings, dates, spec.hash, labels)).to_pandas()
    identifier = model_identifier(settings, spec, model_type, train_end)
    line = registry.line_of(settings, model_type, train.model_params(model_type), spec.hash)
    holdout_day = max(dates)
    day_of_row = pd.to_datetime(train_set["date"]).dt.date
    # Dates with rows only: a date whose labels were skipped has none in the train set.
    present = set(day_of_row)
    probe_dates = [d for d in embargoed_dates(settings, dates) if d in present]
    earlier = train_set[day_of_row.isin(probe_dates)]
    # Labels of the holdout come from the raw conversions, not from the train set, so both
    # models are judged against what really happened.
    holdout = _labelled_test_set(settings, spec, holdout_day).to_pandas()
    metrics = None
    if probe_dates:
        probe = train.train(earlier, model_type, spec.names, spec.hash, labels=labels)
        metrics = evaluate(holdout["target"], probe.predict_proba(holdout)).as_dict()
    # The score's drift reference: a model of every training date but the holdout scores the
    # holdout. The embargo keeps the gate's judgement fair, but a probe trained on fewer
    # dates scores differently from the model it stands in for, which reads as drift.
    reference_dates = [d for d in dates if d != holdout_day and d in present]
    if reference_dates:
        reference = (
            probe
            if reference_dates == probe_dates
            else train.train(
                train_set[day_of_row.isin(reference_dates)],
                model_type,
                spec.names,
                spec.hash,
                labels=labels,
            )
        )
        drift.write_score_reference(settings, identifier, reference.predict_proba(holdout))

    def champion_metrics(champion: dict) -> dict | None:
        """The production model on this holdout, or None when it cannot be a fair judge:
        another feature list (it cannot score this test set) or labels of the holdout seen
        in its training."""
        seen_until = dt.date.fromisoformat(champion["train_end"]) + dt.timedelta(
            days=champion["labels"]["lead_window"]
        )
        if champion["features"]["hash"] != spec.hash or seen_until > holdout_day:
            return None
        path = naming.model_path(settings, champion["model_id"])
        if not path.exists():
            raise registry.ChampionError(
                f"production model {champion['model_id']} has metadata but no model file {path}"
            )
        current = train.load_model(path)
        return evaluate(holdout["target"], current.predict_proba(holdout)).as_dict()

    model = train.train(train_set, model_type, spec.names, spec.hash, labels=labels)
    target = naming.model_path(settings, identifier)
    train.save_model(model, target)
    record = {
        "model_id": identifier,
        "model_type": model_type,
        "line": line,
        "params": model.params,
        "train_start": min(dates).isoformat(),
        "train_end": max(dates).isoformat(),
        "train_rows": model.train_rows,
        "train_positives": model.train_positives,
        "holdout_date": holdout_day.isoformat(),
        "probe_train_dates": [d.isoformat() for d in probe_dates],
        "score_reference_train_dates": [d.isoformat() for d in reference_dates],
        "holdout_metrics": metrics,
        "versions": registry.versions(),
        "features": {
            "hash": spec.hash,
            "names": spec.names,
            "aggregation_window": settings.aggregation_window,
            "data_delay": settings.data_delay,
        },
        "labels": {"hash": labels, "lead_window": settings.lead_window},
        "training": {"train_days": settings.train_days, "retrain_every": settings.retrain_every},
    }
    gate = registry.gate(
        settings,
        record,
        live=is_todays_model(settings, train_end),
        champion_metrics=champion_metrics,
    )
    record["champion_holdout_metrics"] = gate.pop("champion_holdout_metrics", None)
    record["gate"] = gate
    # Written last: the metadata with the gate's decision marks the model as complete.
    registry.write_metadata(settings, identifier, record)
    return target


def serving_model(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> str:
    """The model that scores `date`.

    Today: the production model (the result of the history of decisions), or, before there
    is any, the model of today's grid. A past date: the model whose scores were published
    for it if that model is of this line, else the model of its training grid (unless the
    gate refused it: then the one that stayed current).
    """
    trained = model_identifier(settings, spec, model_type, train_end)
    if date >= settings.today:
        current = registry.production(settings)
        if current is None:
            return trained
        record = registry.read_record(settings, current)
        if record["features"]["hash"] != spec.hash:
            line = registry.line_of(settings, model_type, train.model_params(model_type), spec.hash)
            raise NotServableError(
                f"production model {current} uses the feature list "
                f"{record['features']['hash']}, this configuration {spec.hash}; promote a "
                f"model of line {line} by hand (scoring models promote {trained}) or restore "
                "the configuration"
            )
        return current
    published = read_published(settings, date)
    line = registry.line_of(settings, model_type, train.model_params(model_type), spec.hash)
    if published and published.get("line") == line:
        return published["model_id"]
    record = registry.read_metadata(settings, trained)
    if (
        record
        and record.get("gate", {}).get("decision") == "refused"
        and record["gate"]["champion"]
    ):
        return record["gate"]["champion"]
    return trained


class NotServableError(ScoringError):
    """The production model cannot score the test sets of this configuration."""


def write_predictions(
    settings: Settings,
    spec: FeatureSpec,
    model_type: str,
    train_end: dt.date,
    date: dt.date,
    *,
    progress: bool = True,
) -> Path:
    identifier = serving_model(settings, spec, model_type, train_end, date)
    model = train.load_model(naming.model_path(settings, identifier))
    source = naming.test_set_path(settings, date, spec.hash)
    table = score_file(settings, model, source, f"scoring {date}", progress=progress)
    target = naming.predictions_path(settings, identifier, date)
    record = registry.read_record(settings, identifier)
    decision = (
        registry.current_decision(settings)
        if date >= settings.today
        else {"action": "past", **record["gate"]}
    )
    served = {
        "date": date.isoformat(),
        "file": target.name,
        "model_id": identifier,
        "line": record["line"],
        "labels": record["labels"],
        "decision": decision,
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    metadata = {**(table.schema.metadata or {}), PUBLISHED_KEY: json.dumps(served)}
    atomic.write_parquet(table.replace_schema_metadata(metadata), target)
    # Today's scores are always what is served; a past date keeps the scores first
    # published for it (a backfill of a missed day publishes them).
    if date >= settings.today or read_published(settings, date) is None:
        atomic.write_text(
            json.dumps(served, indent=2) + "\n", published_record_path(settings, date)
        )
    return target


def score_file(
    settings: Settings,
    model: train.TrainedModel,
    source: Path,
    label: str,
    *,
    progress: bool = True,
) -> pa.Table:
    """The predictions of a stored feature table, in its order.

    One partition of users per thread of the cluster's workers, each a Dask task that reads
    its rows of the file itself (the graph holds the model and a path, not the data) and
    scores them on one OpenMP thread.
    """
    rows = pq.read_metadata(source).num_rows
    size = max(1, -(-rows // worker_threads(settings)))
    tasks = [
        delayed(_score_partition)(model, source, offset, size)
        for offset in range(0, max(rows, 1), size)
    ]
    return pa.concat_tables(run_tasks(settings, tasks, label, progress))


def _score_partition(model: train.TrainedModel, source: Path, offset: int, size: int) -> pa.Table:
    features = read_rows(source, offset, size)
    return predict.predict_table(model, features, threads=1)


def read_predictions(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> pd.DataFrame:
    identifier = serving_model(settings, spec, model_type, train_end, date)
    return pq.read_table(naming.predictions_path(settings, identifier, date)).to_pandas()
