"""Score a feature table with a saved model: output columns id, date, target.

Gradient-boosted models (`hgb`) are scored on their own binned features, block by block:
the same trees compare a feature's bin with the split's bin instead of the value with the
split's threshold, which gives the same leaf, and therefore bit for bit the same
probabilities as `predict_proba` (test_predict_model checks it). The binned block is a
sixteenth of the float matrix and stays in the CPU cache while the trees run over it.
Other models go through `TrainedModel.predict_proba`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from scoring.models.train_model import TrainedModel

PREDICTION_SCHEMA = pa.schema([("id", pa.int64()), ("date", pa.date32()), ("target", pa.float64())])
# Rows per block: 65,536 rows x 15 features of one byte stay inside a core's L2 cache.
BLOCK_ROWS = 1 << 16
# Private scikit-learn attributes the binned scoring uses; without any of them (another
# scikit-learn version) the model is scored through predict_proba.
_BINNED_ATTRIBUTES = ("_bin_mapper", "_predictors", "_baseline_prediction", "_loss")


def _binned_booster(model: TrainedModel) -> tuple[Pipeline, HistGradientBoostingClassifier] | None:
    """The pipeline and its booster when the binned scoring applies to them."""
    pipeline = model.estimator
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
        return None
    booster = pipeline.steps[-1][1]
    if not isinstance(booster, HistGradientBoostingClassifier):
        return None
    if not all(hasattr(booster, name) for name in _BINNED_ATTRIBUTES):
        return None
    if getattr(booster, "n_trees_per_iteration_", None) != 1 or booster.is_categorical_ is not None:
        return None  # multi-class and categorical splits keep the general path
    return pipeline, booster


def _binned_probabilities(
    pipeline: Pipeline, booster: HistGradientBoostingClassifier, features: pd.DataFrame
) -> np.ndarray:
    matrix = pipeline[:-1].transform(features)
    # The booster's own input checks (feature count, finite values, dtype).
    matrix = booster._preprocess_X(matrix, reset=False)
    binned = np.ascontiguousarray(booster._bin_mapper.transform(matrix))
    missing_bin = booster._bin_mapper.missing_values_bin_idx_
    threads = _openmp_effective_n_threads()
    raw = np.empty(binned.shape[0], dtype=booster._baseline_prediction.dtype)
    for start in range(0, binned.shape[0], BLOCK_ROWS):
        block = binned[start : start + BLOCK_ROWS]
        sums = np.zeros(block.shape[0], dtype=raw.dtype)
        sums += booster._baseline_prediction[0]
        for (tree,) in booster._predictors:  # same order of additions as predict_proba
            sums += tree.predict_binned(block, missing_bin, threads)
        raw[start : start + block.shape[0]] = sums
    return booster._loss.predict_proba(raw.reshape(-1, 1))[:, 1]


def probabilities(model: TrainedModel, features: pd.DataFrame) -> np.ndarray:
    """The predicted probability of converting within the lead window, per row."""
    binned = _binned_booster(model)
    if binned is None or len(features) == 0:
        return model.predict_proba(features)
    missing = [name for name in model.feature_names if name not in features.columns]
    if missing:
        return model.predict_proba(features)  # names the missing columns
    return _binned_probabilities(*binned, features[model.feature_names])


def predict(model: TrainedModel, features: pd.DataFrame) -> pa.Table:
    """`target` is the predicted probability of converting within the lead window."""
    return pa.table(
        {
            "id": pa.array(features["id"].to_numpy(), pa.int64()),
            "date": pa.array(features["date"], pa.date32(), from_pandas=True),
            "target": pa.array(probabilities(model, features), pa.float64()),
        },
        schema=PREDICTION_SCHEMA,
    )
