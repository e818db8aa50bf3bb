"""Model types, training and the saved model file.

- `hgb`: scikit-learn HistGradientBoostingClassifier on all features (the production model).
- `activity`: the baseline a product team would start with: "recently active users convert";
  a one-feature logistic regression on log(1 + recent events), so it still outputs a
  probability.

A saved model is one pickle file named by `naming.model_id` that carries everything needed
to score: the estimator, the feature names it expects and where it came from.
"""

from __future__ import annotations

import datetime as dt
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from scoring import atomic
from scoring.errors import ConfigError, MissingInputError
from scoring.naming import model_id

MODEL_PARAMS: dict[str, dict[str, object]] = {
    "hgb": {"it": 200, "lr": 0.05, "leaf": 15, "l2": 1.0},
    "activity": {"feature": "events7d"},
}
BASELINE_FEATURE = {"events7d": "events_7d"}


@dataclass
class TrainedModel:
    model_type: str
    params: dict[str, object]
    feature_names: list[str]
    feature_hash: str
    train_dates: list[dt.date]
    estimator: Any
    train_rows: int
    train_positives: int
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def identifier(self) -> str:
        return model_id(self.model_type, self.params, self.train_dates, self.feature_hash)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise MissingInputError(f"feature table lacks columns the model needs: {missing}")
        matrix = features[self.feature_names].to_numpy(dtype=np.float64)
        if self.model_type == "activity":
            matrix = np.log1p(matrix)
        return self.estimator.predict_proba(matrix)[:, 1]


def model_params(model_type: str) -> dict[str, object]:
    if model_type not in MODEL_PARAMS:
        raise ConfigError(
            f"unknown model type {model_type!r}; choose one of {', '.join(MODEL_PARAMS)}"
        )
    return dict(MODEL_PARAMS[model_type])


def _estimator(model_type: str, params: dict[str, object]):
    if model_type == "hgb":
        return HistGradientBoostingClassifier(
            max_iter=int(params["it"]),
            learning_rate=float(params["lr"]),
            max_leaf_nodes=int(params["leaf"]),
            l2_regularization=float(params["l2"]),
            early_stopping=False,
            random_state=0,
        )
    return LogisticRegression()


def train(
    train_set: pd.DataFrame,
    model_type: str,
    feature_names: list[str],
    feature_hash: str,
) -> TrainedModel:
    params = model_params(model_type)
    if model_type == "activity":
        column = BASELINE_FEATURE[str(params["feature"])]
        if column not in feature_names:
            raise ConfigError(f"the activity baseline needs the feature {column!r}")
        used = [column]
    else:
        used = list(feature_names)
    target = train_set["target"].to_numpy()
    if target.min() == target.max():
        raise MissingInputError(
            "the training set has only one class; train on more dates or more users"
        )
    matrix = train_set[used].to_numpy(dtype=np.float64)
    if model_type == "activity":
        matrix = np.log1p(matrix)
    estimator = _estimator(model_type, params).fit(matrix, target)
    dates = sorted({d.date() if hasattr(d, "date") else d for d in train_set["date"]})
    return TrainedModel(
        model_type=model_type,
        params=params,
        feature_names=used,
        feature_hash=feature_hash,
        train_dates=dates,
        estimator=estimator,
        train_rows=len(train_set),
        train_positives=int(target.sum()),
    )


def save_model(model: TrainedModel, target: Path) -> None:
    with atomic.atomic_output(target) as temporary, temporary.open("wb") as handle:
        pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load_model(path: Path) -> TrainedModel:
    if not path.exists():
        raise MissingInputError(f"{path}: model not found; train it first (scoring train)")
    with path.open("rb") as handle:
        return pickle.load(handle)
