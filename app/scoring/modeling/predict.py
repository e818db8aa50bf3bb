"""Score a feature table with a saved model: output columns id, date, target.

Gradient-boosted models (`hgb`) are scored on their own binned features, block by block:
the same trees compare a feature's bin with the split's bin instead of the value with the
split's threshold, which gives the same leaf, and therefore bit for bit the same
probabilities as `predict_proba` (test_predict_model checks it). The binned block is a
sixteenth of the float matrix and stays in the CPU cache while the trees run over it.
Integer columns of a small range (all of the feature table's) get their bins from one
lookup table per column, built by the model's own binning of every value of the range.
Other numbers are binned by the same binary search as the model's, column by column.
Rows that no split of any tree tells apart (such as the many users with the same
counts) reach the same leaves: each class of them is scored once, where a sample of the
rows shows that such classes are common (docs/benchmarks.md gives each test set's share).
Other models go through `TrainedModel.predict_proba`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from scoring.modeling.train import TrainedModel

PREDICTION_SCHEMA = pa.schema([("id", pa.int64()), ("date", pa.date32()), ("target", pa.float64())])
# Rows per block: 65,536 rows x 15 features of one byte stay inside a core's L2 cache.
BLOCK_ROWS = 1 << 16
# Columns of integers within this many values are binned through lookup tables.
LOOKUP_RANGE = 1 << 16
# Classes of alike rows are keyed by one int64 while their codes' product is below this.
KEY_LIMIT = 2.0**63
# Rows of the evenly spaced sample that decides whether classes of alike rows are worth
# finding, and the share of classes in it above which every row is scored instead: finding
# the classes costs about a tenth of what the trees cost per row.
SAMPLE_ROWS = 8_192
DISTINCT_SHARE = 0.9
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
    if not hasattr(booster._bin_mapper, "bin_thresholds_"):
        return None
    if getattr(booster, "n_trees_per_iteration_", None) != 1 or booster.is_categorical_ is not None:
        return None  # multi-class and categorical splits keep the general path
    return pipeline, booster


def _bins(
    pipeline: Pipeline, booster: HistGradientBoostingClassifier, features: pd.DataFrame
) -> np.ndarray:
    """The booster's binned matrix of the features, as its own `_bin_mapper` makes it."""
    matrix = pipeline[:-1].transform(features)
    # The booster's own input checks (feature count, finite values, dtype).
    matrix = booster._preprocess_X(matrix, reset=False)
    return np.ascontiguousarray(booster._bin_mapper.transform(matrix))


def _bins_by_column(
    pipeline: Pipeline,
    booster: HistGradientBoostingClassifier,
    features: pd.DataFrame | dict[str, np.ndarray],
) -> np.ndarray | None:
    """The same binned matrix, column by column, without the float matrix; None when a
    column is neither integers nor floats (the general path then names the problem).

    The preprocessing of the boosted model works value by value (a cast to float64), so
    each column is binned on its own. Integers within a range of at most LOOKUP_RANGE
    values (the counts, days and flags of the feature table) through one lookup table per
    column: the bins that the same preprocessing and `_bin_mapper` give for every integer of
    the range. Other numbers by the binary search that `_bin_mapper` itself runs: a value's
    bin is the number of the feature's thresholds below it, a missing value (NaN, or a null
    of an Arrow column) the missing-value bin. `features` is a frame or the numpy columns
    of one, by name.
    """
    names = list(features.columns if isinstance(features, pd.DataFrame) else features)
    columns = [np.asarray(features[name]) for name in names]
    if not columns or not all(c.dtype.kind in "iuf" for c in columns):
        return None
    mapper = booster._bin_mapper
    missing = mapper.missing_values_bin_idx_
    binned = np.empty((len(columns[0]), len(columns)), dtype=np.uint8)
    lookup = {}
    for index, column in enumerate(columns):
        if column.dtype.kind in "iu" and column.size:
            low, high = int(column.min()), int(column.max())
            if high - low < LOOKUP_RANGE:
                lookup[index] = (low, high)
                continue
        values = column.astype(np.float64, copy=False)
        bins = np.searchsorted(mapper.bin_thresholds_[index], values, side="left")
        bins[np.isnan(values)] = missing
        binned[:, index] = bins
    if lookup:
        size = max(high - low for low, high in lookup.values()) + 1
        steps = np.arange(size, dtype=np.int64)
        grid = pd.DataFrame(
            {
                name: (
                    lookup[index][0] + np.minimum(steps, lookup[index][1] - lookup[index][0])
                    if index in lookup
                    else np.zeros(size)
                ).astype(columns[index].dtype)
                for index, name in enumerate(names)
            }
        )
        tables = _bins(pipeline, booster, grid)
        for index, (low, _) in lookup.items():
            offsets = columns[index].astype(np.intp) - low  # no overflow of narrow types
            binned[:, index] = tables[offsets, index]
    return binned


def _split_bins(booster: HistGradientBoostingClassifier, n_features: int) -> list[np.ndarray]:
    """Per feature, the sorted bins at which any of the booster's trees splits on it."""
    nodes = np.concatenate([tree.nodes for (tree,) in booster._predictors])
    inner = nodes[nodes["is_leaf"] == 0]
    features, thresholds = inner["feature_idx"], inner["bin_threshold"]
    return [np.unique(thresholds[features == f]).astype(np.int64) for f in range(n_features)]


def _distinct_rows(
    booster: HistGradientBoostingClassifier, binned: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Classes of rows that reach the same leaf in every tree: a row of each class
    (`first`), and each row's class (`rows`).

    Two bins of a feature are alike when no split of any tree lies between them; the
    missing-value bin is a class of its own (its rows follow missing_go_to_left). Rows
    alike in every feature reach the same leaves, so a representative's sum is the same
    additions of the same leaf values as every other row's of its class. Each bin becomes
    the number of split bins below it, and the codes of a row one integer key (a
    fixed-size binary value when they need more than 63 bits).
    """
    missing = booster._bin_mapper.missing_values_bin_idx_
    splits = _split_bins(booster, binned.shape[1])
    cardinalities = [len(s) + 2 for s in splits]  # below, between, above all; missing
    codes = []
    for column, split in enumerate(splits):
        table = np.searchsorted(split, np.arange(missing + 1), side="left").astype(np.uint8)
        table[missing] = len(split) + 1
        codes.append(np.take(table, binned[:, column]))
    if float(np.prod(np.asarray(cardinalities, dtype=np.float64))) < KEY_LIMIT:
        key = np.zeros(binned.shape[0], dtype=np.int64)
        for code, cardinality in zip(codes, cardinalities, strict=True):
            key *= cardinality
            key += code
        rows, classes = pd.factorize(key)
        return _first_rows(rows, len(classes)), rows
    matrix = np.ascontiguousarray(np.stack(codes, axis=1))
    values = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(matrix.shape[1]), matrix.shape[0], [None, pa.py_buffer(matrix)]
    )
    encoded = pc.dictionary_encode(values)
    rows = encoded.indices.to_numpy().astype(np.intp)
    return _first_rows(rows, len(encoded.dictionary)), rows


def _first_rows(rows: np.ndarray, classes: int) -> np.ndarray:
    """A row of each class (which one does not matter: all rows of a class are alike)."""
    first = np.empty(classes, dtype=np.intp)
    first[rows] = np.arange(rows.size)
    return first


def _raw_predictions(
    booster: HistGradientBoostingClassifier, binned: np.ndarray, threads: int | None = None
) -> np.ndarray:
    """Baseline plus every tree's leaf value, per row, in predict_proba's order, on
    `threads` OpenMP threads (scikit-learn's default when None)."""
    missing_bin = booster._bin_mapper.missing_values_bin_idx_
    threads = threads or _openmp_effective_n_threads()
    raw = np.empty(binned.shape[0], dtype=booster._baseline_prediction.dtype)
    for start in range(0, binned.shape[0], BLOCK_ROWS):
        block = binned[start : start + BLOCK_ROWS]
        sums = np.zeros(block.shape[0], dtype=raw.dtype)
        sums += booster._baseline_prediction[0]
        for (tree,) in booster._predictors:  # same order of additions as predict_proba
            sums += tree.predict_binned(block, missing_bin, threads)
        raw[start : start + block.shape[0]] = sums
    return raw


def _binned_probabilities(
    pipeline: Pipeline,
    booster: HistGradientBoostingClassifier,
    features: pd.DataFrame | pa.Table,
    threads: int | None = None,
) -> np.ndarray:
    if isinstance(features, pa.Table):  # numpy views of the columns, no frame unless needed
        binned = _bins_by_column(pipeline, booster, _numpy_columns(features))
        if binned is None:
            binned = _bins(pipeline, booster, features.to_pandas())
    else:
        binned = _bins_by_column(pipeline, booster, features)
        if binned is None:
            binned = _bins(pipeline, booster, features)
    if not _alike_rows_abound(booster, binned):
        raw = _raw_predictions(booster, binned, threads)
        return booster._loss.predict_proba(raw.reshape(-1, 1))[:, 1]
    # Each class of rows that reach the same leaves is scored once.
    first, rows = _distinct_rows(booster, binned)
    raw = _raw_predictions(booster, np.ascontiguousarray(binned[first]), threads)
    return booster._loss.predict_proba(raw.reshape(-1, 1))[:, 1][rows]


def _alike_rows_abound(booster: HistGradientBoostingClassifier, binned: np.ndarray) -> bool:
    """Whether an evenly spaced sample of the rows has few enough classes of alike rows
    for scoring each class once to pay (a sample has at least its table's share)."""
    if binned.shape[0] <= 2 * SAMPLE_ROWS:
        return True
    sample = binned[:: binned.shape[0] // SAMPLE_ROWS][:SAMPLE_ROWS]
    first, _ = _distinct_rows(booster, sample)
    return len(first) <= DISTINCT_SHARE * len(sample)


def _numpy_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """The columns as numpy arrays: views of integer columns without nulls (one chunk),
    floats with NaN for the nulls of others, as a frame would convert them."""
    return {
        name: column.combine_chunks().to_numpy(zero_copy_only=False)
        for name, column in zip(table.column_names, table.columns, strict=True)
    }


def table_probabilities(
    model: TrainedModel, features: pa.Table, threads: int | None = None
) -> np.ndarray:
    """`probabilities` of an Arrow table, without converting it to a frame when the
    binned scoring applies (the test set's dates would become Python objects)."""
    binned = _binned_booster(model)
    names = model.feature_names
    if binned is None or features.num_rows == 0 or not set(names) <= set(features.column_names):
        return probabilities(model, features.to_pandas())
    return _binned_probabilities(*binned, features.select(names), threads)


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


def predict_table(model: TrainedModel, features: pa.Table, threads: int | None = None) -> pa.Table:
    """`predict` of an Arrow table (such as the stored test set); the trees of the boosted
    model run on `threads` OpenMP threads (scikit-learn's default when None)."""
    return pa.table(
        {
            "id": features["id"].cast(pa.int64()),
            "date": features["date"].cast(pa.date32()),
            "target": pa.array(table_probabilities(model, features, threads), pa.float64()),
        },
        schema=PREDICTION_SCHEMA,
    )
