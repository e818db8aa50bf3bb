"""Binned scoring of the boosted model gives exactly predict_proba's probabilities."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scoring.modeling import predict
from scoring.modeling import train as modeling_train

NAMES = ["searches", "saves", "account_age_days", "is_premium"]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "date": [dt.date(2026, 3, 1)] * rows,
            "searches": rng.poisson(3, rows).astype(np.int32),
            "saves": rng.poisson(0.5, rows).astype(np.int32),
            "account_age_days": rng.integers(0, 900, rows).astype(np.int32),
            "is_premium": rng.integers(0, 2, rows).astype(np.int8),
        }
    )
    signal = 0.4 * frame["saves"] + 0.002 * frame["account_age_days"] - 2.5
    frame["target"] = (rng.random(rows) < 1 / (1 + np.exp(-signal))).astype(np.int8)
    return frame


@pytest.mark.parametrize("model_type", ["hgb", "activity"])
def test_scores_equal_predict_proba_bit_for_bit(model_type, monkeypatch):
    names = NAMES + (["events_7d"] if model_type == "activity" else [])
    train = _frame(3_000, seed=1).assign(events_7d=lambda f: f["searches"] + f["saves"])
    model = modeling_train.train(train, model_type, names, "f" * 8)
    features = _frame(1_000, seed=2).assign(events_7d=lambda f: f["searches"])
    # Small blocks, so that scoring crosses block boundaries; a value beyond any seen in
    # training lands in the last bin, like beyond the last threshold.
    monkeypatch.setattr(predict, "BLOCK_ROWS", 128)
    features.loc[5, "account_age_days"] = 10**6
    expected = model.predict_proba(features)
    assert np.array_equal(predict.probabilities(model, features), expected)
    table = predict.predict(model, features)
    assert table.schema == predict.PREDICTION_SCHEMA
    assert table["id"].to_pylist() == features["id"].tolist()
    assert np.array_equal(table["target"].to_numpy(), expected)
    assert expected.std() > 0
    # The same from an Arrow table (the stored test set), columns in another order.
    arrow = pa.Table.from_pandas(features[features.columns[::-1]], preserve_index=False)
    assert predict.predict_table(model, arrow).equals(table)


def test_binned_scoring_is_used_for_the_boosted_model():
    """Fails loudly on a scikit-learn whose private attributes the binned scoring reads
    have changed (the lock pins the one they were read from)."""
    model = modeling_train.train(_frame(2_000, seed=3), "hgb", NAMES, "f" * 8)
    assert predict._binned_booster(model) is not None
    _, booster = predict._binned_booster(model)
    (tree,) = booster._predictors[0]
    fields = {"is_leaf", "feature_idx", "bin_threshold", "missing_go_to_left", "value"}
    assert fields <= set(tree.nodes.dtype.names)
    assert len(booster._bin_mapper.bin_thresholds_) == len(NAMES)
    assert booster._bin_mapper.missing_values_bin_idx_ == booster._bin_mapper.n_bins - 1


def test_a_missing_feature_is_named():
    model = modeling_train.train(_frame(2_000, seed=3), "hgb", NAMES, "f" * 8)
    with pytest.raises(Exception, match="saves"):
        predict.predict(model, _frame(10, seed=4).drop(columns=["saves"]))


def _lookup_calls(monkeypatch) -> list[bool]:
    """Whether each binning went column by column (True) or through the float matrix."""
    calls = []
    real = predict._bins_by_column

    def spy(*args):
        binned = real(*args)
        calls.append(binned is not None)
        return binned

    monkeypatch.setattr(predict, "_bins_by_column", spy)
    return calls


def _assert_binned_by_column_exactly(monkeypatch, model, features: pd.DataFrame) -> None:
    """Scoring bins column by column, into the model's own bins and scores."""
    calls = _lookup_calls(monkeypatch)
    scores = predict.probabilities(model, features)
    assert calls == [True]
    assert np.array_equal(scores, model.predict_proba(features))
    pipeline, booster = predict._binned_booster(model)
    assert np.array_equal(
        predict._bins_by_column(pipeline, booster, features[NAMES]),
        predict._bins(pipeline, booster, features[NAMES]),
    )


def test_integer_columns_are_binned_by_lookup_exactly(monkeypatch):
    model = modeling_train.train(_frame(3_000, seed=1), "hgb", NAMES, "f" * 8)
    features = _frame(1_000, seed=2)
    # Beyond the training range (last bin), and narrow types whose offsets must not wrap.
    features.loc[3, "account_age_days"] = 5_000
    features["is_premium"] = features["is_premium"].astype(np.int8)
    features.loc[7, "is_premium"] = np.int8(-128)
    features.loc[8, "is_premium"] = np.int8(127)
    features["saves"] = features["saves"].astype(np.uint16)
    _assert_binned_by_column_exactly(monkeypatch, model, features)


@pytest.mark.parametrize("change", ["float", "wide", "continuous"])
def test_other_columns_are_binned_by_search(monkeypatch, change):
    train = _frame(3_000, seed=1)
    features = _frame(1_000, seed=2)
    if change == "float":
        features["saves"] = features["saves"].astype(np.float64)
        features.loc[4, "saves"] = np.nan  # the missing-value bin
        features.loc[5, "saves"] = np.inf
        features.loc[6, "saves"] = -np.inf
    elif change == "wide":
        features.loc[4, "account_age_days"] = 2 * predict.LOOKUP_RANGE
    else:  # a continuous column in training too, values on and beside its thresholds
        rng = np.random.default_rng(5)
        train["saves"] = rng.lognormal(1, 1, len(train))
        features["saves"] = rng.lognormal(1, 1, len(features))
        features.loc[4, "saves"] = np.nan
    model = modeling_train.train(train, "hgb", NAMES, "f" * 8)
    if change == "continuous":
        _, booster = predict._binned_booster(model)
        thresholds = booster._bin_mapper.bin_thresholds_[NAMES.index("saves")]
        features.loc[10 : 10 + len(thresholds) - 1, "saves"] = thresholds
    _assert_binned_by_column_exactly(monkeypatch, model, features)


@pytest.mark.parametrize("alike", [True, False])
def test_classes_of_alike_rows_are_found_only_where_a_sample_shows_many(monkeypatch, alike):
    model = modeling_train.train(_frame(3_000, seed=1), "hgb", NAMES, "f" * 8)
    monkeypatch.setattr(predict, "SAMPLE_ROWS", 64)
    features = _frame(2_000, seed=2)
    if alike:  # a few users, each many times over
        features = features.iloc[np.arange(2_000) % 20].reset_index(drop=True)
    else:  # nearly every row its own class: ages spread over the trained range, and
        # search counts beyond the common ones, that the trees split finely
        rng = np.random.default_rng(3)
        ages = np.linspace(0, 899, 2_000).astype(np.int32)
        features["account_age_days"] = rng.permutation(ages)
        features["searches"] = rng.integers(0, 12, 2_000).astype(np.int32)
    sizes = []
    real = predict._distinct_rows

    def spy(booster, binned):
        sizes.append(len(binned))
        return real(booster, binned)

    monkeypatch.setattr(predict, "_distinct_rows", spy)
    scores = predict.probabilities(model, features)
    assert sizes == ([64, 2_000] if alike else [64])
    assert np.array_equal(scores, model.predict_proba(features))


def _undeduplicated(model, features: pd.DataFrame) -> np.ndarray:
    """Every row scored by the trees, without classes of alike rows."""
    pipeline, booster = predict._binned_booster(model)
    binned = predict._bins(pipeline, booster, features[model.feature_names])
    raw = predict._raw_predictions(booster, binned)
    return booster._loss.predict_proba(raw.reshape(-1, 1))[:, 1]


@pytest.mark.parametrize("key", ["int64", "fixed-size binary"])
def test_alike_rows_scored_once_give_every_row_its_own_score(monkeypatch, key):
    model = modeling_train.train(_frame(3_000, seed=1), "hgb", NAMES, "f" * 8)
    if key != "int64":
        monkeypatch.setattr(predict, "KEY_LIMIT", 1.0)
    monkeypatch.setattr(predict, "BLOCK_ROWS", 64)
    features = _frame(1_000, seed=2)
    # Ties: repeated rows, spread over the table, and rows that differ only between two
    # splits; a value far beyond the training range; a missing value (float column).
    features = pd.concat([features, features.iloc[::7], features.iloc[:3]], ignore_index=True)
    features.loc[10, "account_age_days"] = 10**6
    features["saves"] = features["saves"].astype(np.float64)
    features.loc[[12, 13], NAMES] = features.loc[11, NAMES].to_numpy()
    features.loc[[11, 12], "saves"] = np.nan
    features.loc[13, "saves"] = 10**6
    pipeline, booster = predict._binned_booster(model)
    binned = predict._bins(pipeline, booster, features[NAMES])
    first, rows = predict._distinct_rows(booster, binned)
    assert len(first) < len(features)  # there are alike rows
    assert rows[11] == rows[12] != rows[13]  # missing is a class of its own
    assert np.array_equal(rows[first], np.arange(len(first)))
    scores = predict.probabilities(model, features)
    assert np.array_equal(scores, _undeduplicated(model, features))
    assert np.array_equal(scores, model.predict_proba(features))
    single = features.iloc[[13]]
    assert np.array_equal(predict.probabilities(model, single), model.predict_proba(single))
    alike = features.iloc[[0] * 5]
    assert np.array_equal(predict.probabilities(model, alike), model.predict_proba(alike))


@pytest.mark.parametrize("change", ["none", "float", "nulls"])
def test_an_arrow_table_is_scored_like_its_frame(change):
    model = modeling_train.train(_frame(3_000, seed=1), "hgb", NAMES, "f" * 8)
    features = pa.Table.from_pandas(_frame(500, seed=2), preserve_index=False)
    if change != "none":  # binned by search, through a frame
        saves = features["saves"].to_pylist()
        saves[3] = None
        kind = pa.float64() if change == "float" else pa.int32()
        index = features.column_names.index("saves")
        features = features.set_column(index, "saves", pa.array(saves, kind))
    frame = features.to_pandas()
    expected = model.predict_proba(frame)
    assert np.array_equal(predict.table_probabilities(model, features), expected)
    assert predict.predict_table(model, features).equals(predict.predict(model, frame))
    with pytest.raises(Exception, match="saves"):
        predict.predict_table(model, features.drop_columns(["saves"]))
