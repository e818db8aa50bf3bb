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

from scoring import atomic, naming
from scoring.features import build
from scoring.features.spec import FeatureSpec
from scoring.models import predict_model, train_model
from scoring.settings import Settings


def train_dates(settings: Settings, train_end: dt.date) -> list[dt.date]:
    """The `train_days` consecutive scoring dates ending at `train_end`."""
    return [train_end - dt.timedelta(days=i) for i in range(settings.train_days - 1, -1, -1)]


def model_identifier(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date
) -> str:
    params = train_model.model_params(model_type)
    return naming.model_id(model_type, params, train_dates(settings, train_end), spec.hash)


def write_test_set(settings: Settings, spec: FeatureSpec, date: dt.date, progress=True) -> Path:
    target = naming.test_set_path(settings, date, spec.hash)
    features = build.build_features(settings, spec, date, "incremental", progress)
    atomic.write_parquet(features, target)
    return target


def read_test_set(settings: Settings, spec: FeatureSpec, date: dt.date) -> pa.Table:
    return pq.read_table(naming.test_set_path(settings, date, spec.hash))


def write_train_set(settings: Settings, spec: FeatureSpec, dates: list[dt.date]) -> Path:
    """Stack the test sets of `dates` and add their labels."""
    target = naming.train_set_path(settings, dates, spec.hash)
    labelled = [build.add_labels(settings, read_test_set(settings, spec, d), d) for d in dates]
    atomic.write_parquet(pa.concat_tables(labelled), target)
    return target


def write_model(settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date) -> Path:
    dates = train_dates(settings, train_end)
    train_set = pq.read_table(naming.train_set_path(settings, dates, spec.hash)).to_pandas()
    model = train_model.train(train_set, model_type, spec.names, spec.hash)
    target = naming.model_path(settings, model.identifier)
    train_model.save_model(model, target)
    return target


def write_predictions(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> Path:
    identifier = model_identifier(settings, spec, model_type, train_end)
    model = train_model.load_model(naming.model_path(settings, identifier))
    features = read_test_set(settings, spec, date).to_pandas()
    target = naming.predictions_path(settings, identifier, date)
    atomic.write_parquet(predict_model.predict(model, features), target)
    return target


def read_predictions(
    settings: Settings, spec: FeatureSpec, model_type: str, train_end: dt.date, date: dt.date
) -> pd.DataFrame:
    identifier = model_identifier(settings, spec, model_type, train_end)
    return pq.read_table(naming.predictions_path(settings, identifier, date)).to_pandas()
