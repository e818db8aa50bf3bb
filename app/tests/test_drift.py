"""Drift: a shifted feature distribution fails loudly (its own exit status), a stable one
does not."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scoring import cli, naming
from scoring.features.spec import load_spec
from scoring.models import drift
from scoring.settings import get_settings


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
    assert drift.report_path(settings, settings.today).exists()
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
