"""Drift: a shifted feature distribution fails loudly (its own exit status), a stable one
does not, on every shape features have: continuous, integer counts, mostly zeros, with
missing values."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, naming
from scoring.features.spec import load_spec
from scoring.modeling import train
from scoring.monitoring import drift, registry
from scoring.settings import get_settings

ROWS = 5000


def _continuous(rng, shift):
    return rng.normal(shift, 1.0, ROWS)  # shift in standard deviations


def _counts(rng, shift):
    return rng.poisson(3 * (1 + shift), ROWS)  # shift: relative change of the mean


def _mostly_zeros(rng, shift):
    """95 % zeros (contact requests over 3 days); shift: more users with any."""
    values = np.zeros(ROWS)
    active = rng.random(ROWS) < 0.05 * (1 + shift)
    values[active] = 1 + rng.poisson(1, active.sum())
    return values


def _with_missing(rng, shift):
    """5 % missing values (a user attribute not delivered for some users)."""
    values = rng.normal(shift, 1.0, ROWS)
    values[rng.random(ROWS) < 0.05] = np.nan
    return values


# shape, the real shift: a mean 1 standard deviation higher; counts doubled; three times
# as many users with any contact request (95 % -> 85 % zeros); shifted values with missing.
SHAPES = [(_continuous, 1.0), (_counts, 1.0), (_mostly_zeros, 2.0), (_with_missing, 1.0)]


def _drifts(reference, current) -> bool:
    table = drift.drift_table(pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), ["x"])
    return bool(drift.drifted(table, drift.DEFAULT_THRESHOLD, drift.DEFAULT_WASSERSTEIN)[0])


@pytest.mark.parametrize(("shape", "shift"), SHAPES, ids=[s[0].__name__[1:] for s in SHAPES])
def test_a_real_shift_drifts_and_none_does_not(shape, shift):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        reference = shape(rng, 0.0)
        assert not _drifts(reference, shape(rng, 0.0)), seed
        assert _drifts(reference, shape(rng, shift)), seed


def test_mostly_zeros_get_bins_beside_the_zero_bin():
    """Deciles of a 95 %-zero reference are all 0: one bin, and PSI 0 whatever happens."""
    rng = np.random.default_rng(4)
    reference = _mostly_zeros(rng, 0.0)
    bins = drift.bins_of(reference)
    assert np.unique(bins.assign(reference)).size > 2
    assert drift.psi(reference, reference + 3) > 1.0


def test_missing_values_are_a_bin_of_their_own():
    rng = np.random.default_rng(5)
    reference = _with_missing(rng, 0.0)
    assert np.isfinite(drift.psi(reference, _with_missing(rng, 3.0)))
    more_missing = _continuous(rng, 0.0)
    more_missing[: ROWS // 3] = np.nan
    assert drift.psi(reference, more_missing) > drift.DEFAULT_THRESHOLD


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.poisson(5, 5000)
    assert drift.psi(reference, rng.poisson(5, 5000)) < 0.05
    assert drift.psi(reference, rng.poisson(12, 5000)) > 1.0


def test_drift_table_names_the_shifted_feature():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    current = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(2, 1, size=3000)})
    table = drift.drift_table(reference, current, ["a", "b"])
    assert table["column"].iloc[0] == "b"
    assert table["psi"].iloc[0] > drift.DEFAULT_THRESHOLD > table["psi"].iloc[1]


def test_drift_command_exit_status(data_root, capsys):
    settings = get_settings()
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0
    assert cli.main(["drift"]) == 0  # the scored day looks like the training data
    assert naming.drift_table_path(settings, settings.today).exists()
    capsys.readouterr()

    # A synthetic drift: the day's users suddenly search ten times as much.
    path = naming.test_set_path(settings, settings.today, load_spec(settings).hash)
    table = pq.read_table(path)
    index = table.schema.get_field_index("searches")
    shifted = (table["searches"].to_numpy() * 10 + 20).astype(np.int32)
    pq.write_table(table.set_column(index, "searches", pa.array(shifted)), path)
    assert cli.main(["drift"]) == cli.EXIT_DRIFT
    err = capsys.readouterr().err
    assert "searches" in err
    assert "above PSI" in err


def test_the_score_reference_is_out_of_sample(data_root):
    """The score's reference is what the probe gave the holdout date, a date it had not
    seen, not the model's scores on its own training data."""
    settings = get_settings()
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0
    spec = load_spec(settings)
    line = registry.line_of(settings, "hgb", train.model_params("hgb"), spec.hash)
    model_id = registry.current_model(settings, line)
    record = registry.read_metadata(settings, model_id)
    kept = pq.read_table(naming.score_reference_path(settings, model_id))["score"].to_numpy()
    holdout = pq.read_table(
        naming.test_set_path(settings, pd.Timestamp(record["holdout_date"]).date(), spec.hash)
    )
    assert kept.size == holdout.num_rows
    model = train.load_model(naming.model_path(settings, model_id))
    in_sample = model.predict_proba(holdout.to_pandas())
    assert not np.allclose(kept, in_sample)
    # Without the kept file (a model from before), the same scores are computed again.
    naming.score_reference_path(settings, model_id).unlink()
    assert cli.main(["drift"]) in (0, cli.EXIT_DRIFT)
    again = pq.read_table(naming.score_reference_path(settings, model_id))["score"].to_numpy()
    np.testing.assert_allclose(again, kept)


def test_the_score_drifts_on_its_distance_and_features_on_either_measure():
    table = pd.DataFrame(
        {
            "column": ["score", "score", "feature", "feature"],
            "psi": [5.0, 0.0, 5.0, 0.0],
            "wasserstein": [0.1, 3.0, 0.1, 3.0],
        }
    )
    over = drift.drifted(table, drift.DEFAULT_THRESHOLD, drift.DEFAULT_WASSERSTEIN)
    assert over.tolist() == [False, True, True, True]
