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
from scoring.compute import run_tasks
from scoring.features import build
from scoring.features.spec import FeatureSpec
from scoring.models import predict_model, train_model
from scoring.settings import Settings

SCORING_PARTITIONS = 4


def train_dates(settings: Settings, train_end: dt.date) -> list[dt.date]:
    """The `train_days` consecutive scoring dates ending at `train_end`."""
    return [train_end - dt.timedelta(days=i) for i in range(settings.train_days - 1, -1, -1)]


def train_set_hash(settings: Settings, dates: list[dt.date]) -> str:
    return naming.train_hash(dates, naming.label_hash(settings.lead_window))


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


def write_test_set(settings: Settings, spec: FeatureSpec, date: dt.date, progress=True) -> Path:
    target = naming.test_set_path(settings, date, spec.hash)
    features = build.build_features(settings, spec, date, "incremental", progress)
    atomic.write_parquet(features, target)
    return target


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
    dates = train_dates(settings, train_end)
    train_set = pq.read_table(train_set_path(settings, spec, dates)).to_pandas()
    labels = naming.label_hash(settings.lead_window)
    model = train_model.train(train_set, model_type, spec.names, spec.hash, labels=labels)
    target = naming.model_path(settings, model_identifier(settings, spec, model_type, train_end))
    train_model.save_model(model, target)
    return target


def write_predictions(
    settings: Settings,
    spec: FeatureSpec,
    model_type: str,
    train_end: dt.date,
    date: dt.date,
    *,
    progress: bool = True,
) -> Path:
    identifier = model_identifier(settings, spec, model_type, train_end)
    model = train_model.load_model(naming.model_path(settings, identifier))
    test_set = read_test_set(settings, spec, date)
    # Partitions of users are scored in parallel Dask tasks; order is kept.
    size = max(1, -(-test_set.num_rows // SCORING_PARTITIONS))
    tasks = [
        delayed(_score_partition)(model, test_set.slice(offset, size))
        for offset in range(0, max(test_set.num_rows, 1), size)
    ]
    scores = run_tasks(settings, tasks, f"scoring {date}", progress)
    target = naming.predictions_path(settings, identifier, date)
    atomic.write_parquet(pa.concat_tables(scores), target)
    return target


def _score_partition(model: train_model.TrainedModel, features: pa.Table) -> pa.Table:
    return predict_model.predict(model, features.to_pandas())


def read_predictions(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> pd.DataFrame:
    identifier = model_identifier(settings, spec, model_type, train_end)
    return pq.read_table(naming.predictions_path(settings, identifier, date)).to_pandas()
