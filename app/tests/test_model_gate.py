"""A model must earn production: metadata beside each model, a quality gate against the
current model, a recorded pointer with history, promote and roll back by command."""

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, naming, pipeline
from scoring.features.spec import load_spec
from scoring.models import registry, train_model
from scoring.settings import get_settings

FIRST, WORSE, BETTER = dt.date(2026, 1, 23), dt.date(2026, 1, 30), dt.date(2026, 2, 6)


def _train(train_end, shuffle=False):
    """Build the train set of `train_end` (through luigi), optionally shuffle its labels,
    then train the model with the gate."""
    import luigi  # noqa: PLC0415
    from scoring.tasks import TrainSet  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    assert luigi.build([TrainSet(train_end=train_end)], local_scheduler=True, log_level="WARNING")
    if shuffle:
        path = pipeline.train_set_path(settings, spec, pipeline.train_dates(settings, train_end))
        table = pq.read_table(path)
        shuffled = np.random.default_rng(0).permutation(table["target"].to_numpy())
        index = table.schema.get_field_index("target")
        pq.write_table(table.set_column(index, "target", pa.array(shuffled)), path)
    pipeline.write_model(settings, spec, "hgb", train_end)
    return pipeline.model_identifier(settings, spec, "hgb", train_end)


def _line():
    settings = get_settings()
    spec = load_spec(settings)
    return registry.line_of(settings, "hgb", train_model.model_params("hgb"), spec.hash)


def test_metadata_beside_each_model(data_root):
    settings = get_settings()
    model_id = _train(FIRST)
    record = json.loads(registry.metadata_path(settings, model_id).read_text())
    assert (
        registry.metadata_path(settings, model_id).parent
        == naming.model_path(settings, model_id).parent
    )
    assert record["train_end"] == FIRST.isoformat()
    assert record["train_start"] == (FIRST - dt.timedelta(days=3)).isoformat()
    train = pq.read_table(
        pipeline.train_set_path(
            settings, load_spec(settings), pipeline.train_dates(settings, FIRST)
        )
    )
    assert record["train_rows"] == train.num_rows
    assert record["train_positives"] == int(np.sum(train["target"].to_numpy()))
    assert 0.0 <= record["holdout_metrics"]["auc"] <= 1.0
    assert record["versions"]["scikit-learn"] != "unknown"
    assert record["features"]["aggregation_window"] == 14
    assert record["labels"]["lead_window"] == 3
    assert record["gate"]["decision"] == "promoted"


def test_worse_model_is_refused_and_better_one_promoted_then_rolled_back(data_root, capsys):
    settings = get_settings()
    first = _train(FIRST)
    worse = _train(WORSE, shuffle=True)
    # The refused model is kept for inspection; the previous one stays current.
    assert naming.model_path(settings, worse).exists()
    assert registry.read_metadata(settings, worse)["gate"]["decision"] == "refused"
    assert registry.current_model(settings, _line()) == first
    history = registry.read_pointer(settings, _line())["history"]
    assert [(e["action"], e["model"]) for e in history] == [
        ("promoted", first),
        ("refused", worse),
    ]
    # Today's scores come from the current model, not from the refused one.
    assert pipeline.serving_model(settings, load_spec(settings), "hgb", WORSE, WORSE) == first

    # Promote the worse one by hand; a better one then replaces it through the gate...
    assert cli.main(["models", "promote", worse]) == 0
    assert registry.current_model(settings, _line()) == worse
    better = _train(BETTER)
    assert registry.read_metadata(settings, better)["gate"]["decision"] == "promoted"
    assert registry.current_model(settings, _line()) == better
    # ...and rollback returns to the previous one.
    assert cli.main(["models", "rollback", better]) == 0
    assert registry.current_model(settings, _line()) == worse

    capsys.readouterr()
    assert cli.main(["models"]) == 0
    listing = capsys.readouterr().out.splitlines()
    marked = [line for line in listing if line.startswith("*")]
    assert len(marked) == 1
    assert worse in marked[0]
    assert len(listing) == 3


def test_promoting_an_unknown_model_is_a_clear_error(data_root, capsys):
    assert cli.main(["models", "promote", "hgb-nothing-here"]) == cli.EXIT_USER_ERROR
    assert "no metadata for model hgb-nothing-here" in capsys.readouterr().err


@pytest.mark.parametrize("tolerance", ["0.02"])
def test_gate_tolerance_is_a_setting(monkeypatch, tolerance):
    monkeypatch.setenv("SCORING_GATE_TOLERANCE", tolerance)
    assert registry.tolerance() == float(tolerance)
    monkeypatch.setenv("SCORING_GATE_TOLERANCE", "lots")
    with pytest.raises(Exception, match="SCORING_GATE_TOLERANCE"):
        registry.tolerance()
