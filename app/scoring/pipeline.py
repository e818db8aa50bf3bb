"""The steps of the pipeline as plain functions: each reads its inputs, writes one output.

Luigi tasks (scoring.tasks) wrap these and decide what needs to run; tests and notebooks can
call them directly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dask import delayed

from scoring import atomic, naming
from scoring.compute import run_tasks, worker_threads
from scoring.features import build
from scoring.features.spec import FeatureSpec
from scoring.models import predict_model, registry, train_model
from scoring.models.evaluate import evaluate
from scoring.settings import Settings


def train_dates(settings: Settings, train_end: dt.date) -> list[dt.date]:
    """The `train_days` consecutive scoring dates ending at `train_end`."""
    return [train_end - dt.timedelta(days=i) for i in range(settings.train_days - 1, -1, -1)]


def train_set_hash(settings: Settings, dates: list[dt.date]) -> str:
    labels = naming.label_hash(settings.lead_window)
    return naming.train_hash(dates, labels, naming.training_skips(settings, dates))


def train_set_path(settings: Settings, spec: FeatureSpec, dates: list[dt.date]) -> Path:
    return naming.train_set_path(
        settings, dates, spec.hash, naming.label_hash(settings.lead_window)
    )


def model_identifier(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date
) -> str:
    params = train_model.model_params(model_type)
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
    target = train_set_path(settings, spec, dates)
    tasks = [delayed(_labelled_test_set)(settings, spec, d) for d in dates]
    labelled = run_tasks(settings, tasks, "labelled dates", progress)
    atomic.write_parquet(pa.concat_tables(labelled), target)
    return target


def write_model(settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date) -> Path:
    """Train, evaluate on a time holdout, save with its metadata, and pass the quality gate.

    The holdout is the most recent labelled date of the training range: a model trained on
    the dates before it scores it, and so does the current model (trained on earlier dates,
    so the date is new to both). The model saved is trained on all dates.
    """
    from scoring.models import drift  # noqa: PLC0415  (drift reads this module's paths)

    dates = train_dates(settings, train_end)
    train_set = pq.read_table(train_set_path(settings, spec, dates)).to_pandas()
    labels = naming.label_hash(settings.lead_window)
    identifier = model_identifier(settings, spec, model_type, train_end)
    line = registry.line_of(settings, model_type, train_model.model_params(model_type), spec.hash)
    holdout_day = max(dates)
    day_of_row = pd.to_datetime(train_set["date"]).dt.date
    earlier = train_set[day_of_row != holdout_day]
    # Labels of the holdout come from the raw conversions, not from the train set, so both
    # models are judged against what really happened.
    holdout = _labelled_test_set(settings, spec, holdout_day).to_pandas()
    metrics = None
    champion_metrics = None
    if len(dates) > 1:
        probe = train_model.train(earlier, model_type, spec.names, spec.hash, labels=labels)
        holdout_scores = probe.predict_proba(holdout)
        metrics = evaluate(holdout["target"], holdout_scores).as_dict()
        drift.write_score_reference(settings, identifier, holdout_scores)
        champion = registry.current_model(settings, line)
        if champion and champion != identifier and naming.model_path(settings, champion).exists():
            current = train_model.load_model(naming.model_path(settings, champion))
            champion_metrics = evaluate(holdout["target"], current.predict_proba(holdout)).as_dict()
    model = train_model.train(train_set, model_type, spec.names, spec.hash, labels=labels)
    target = naming.model_path(settings, identifier)
    train_model.save_model(model, target)
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
        "holdout_metrics": metrics,
        "champion_holdout_metrics": champion_metrics,
        "versions": registry.versions(),
        "features": {
            "hash": spec.hash,
            "names": spec.names,
            "aggregation_window": settings.aggregation_window,
            "data_delay": settings.data_delay,
        },
        "labels": {"hash": labels, "lead_window": settings.lead_window},
    }
    record["gate"] = registry.decide(
        settings,
        line,
        identifier,
        train_end=max(dates).isoformat(),
        auc=metrics["auc"] if metrics else float("nan"),
        champion_auc=champion_metrics["auc"] if champion_metrics else None,
    )
    # Written last: the metadata with the gate's decision marks the model as complete.
    registry.write_metadata(settings, identifier, record)
    return target


def serving_model(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> str:
    """The model that scores `date`: the current one for today, else the model of its
    training grid unless the gate refused it (then the one that stayed current)."""
    trained = model_identifier(settings, spec, model_type, train_end)
    if date >= settings.today:
        params = train_model.model_params(model_type)
        line = registry.line_of(settings, model_type, params, spec.hash)
        current = registry.current_model(settings, line)
        if current:
            return current
    record = registry.read_metadata(settings, trained)
    if (
        record
        and record.get("gate", {}).get("decision") == "refused"
        and record["gate"]["champion"]
    ):
        return record["gate"]["champion"]
    return trained


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
    model = train_model.load_model(naming.model_path(settings, identifier))
    source = naming.test_set_path(settings, date, spec.hash)
    # One partition of users per thread of the cluster's workers, each a Dask task that
    # reads its rows of the test set itself (the graph holds the model and a path, not the
    # data) and scores them on one OpenMP thread; order is kept.
    rows = pq.read_metadata(source).num_rows
    size = max(1, -(-rows // worker_threads(settings)))
    tasks = [
        delayed(_score_partition)(model, source, offset, size)
        for offset in range(0, max(rows, 1), size)
    ]
    scores = run_tasks(settings, tasks, f"scoring {date}", progress)
    target = naming.predictions_path(settings, identifier, date)
    atomic.write_parquet(pa.concat_tables(scores), target)
    return target


def _score_partition(
    model: train_model.TrainedModel, source: Path, offset: int, size: int
) -> pa.Table:
    features = read_rows(source, offset, size)
    return predict_model.predict_table(model, features, threads=1)


def read_predictions(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> pd.DataFrame:
    identifier = serving_model(settings, spec, model_type, train_end, date)
    return pq.read_table(naming.predictions_path(settings, identifier, date)).to_pandas()
