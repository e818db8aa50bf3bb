"""A model must earn production: metadata beside each model, a quality gate against the
production model, a history of decisions, promote and roll back by command; past dates never
change production."""

import dataclasses
import datetime as dt
import json
import math
import multiprocessing
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scoring import cli, naming, pipeline
from scoring.errors import ScoringError
from scoring.features.spec import load_spec
from scoring.modeling import train as modeling_train
from scoring.modeling.published import published_file, served_by
from scoring.monitoring import registry
from scoring.settings import get_settings

FIRST, WORSE, BETTER = dt.date(2026, 1, 23), dt.date(2026, 1, 30), dt.date(2026, 2, 6)


def _today_for(train_end):
    """The day whose daily run trains the model of `train_end` (lead window 3, delay 1)."""
    return train_end + dt.timedelta(days=3)


def _train(train_end, shuffle=False):
    """On the day whose daily model ends at `train_end`: build its train set (through
    luigi), optionally shuffle its labels, then train the model with the gate."""
    import luigi  # noqa: PLC0415
    from scoring.tasks import TrainSet  # noqa: PLC0415

    # Retrained every day, so that any date ends the training of its day's model.
    os.environ["SCORING_RETRAIN_EVERY"] = "1"
    os.environ["SCORING_TODAY"] = _today_for(train_end).isoformat()
    settings = get_settings()
    assert settings.train_end_for(settings.today) == train_end
    spec = load_spec(settings)
    assert luigi.build([TrainSet(train_end=train_end)], local_scheduler=True, log_level="WARNING")
    if shuffle:
        labels = naming.label_hash(settings.lead_window)
        dates = pipeline.train_dates(settings, train_end)
        path = naming.train_set_path(settings, dates, spec.hash, labels)
        table = pq.read_table(path)
        shuffled = np.random.default_rng(0).permutation(table["target"].to_numpy())
        index = table.schema.get_field_index("target")
        pq.write_table(table.set_column(index, "target", pa.array(shuffled)), path)
    pipeline.write_model(settings, spec, "hgb", train_end)
    return pipeline.model_identifier(settings, spec, "hgb", train_end)


def _line():
    settings = get_settings()
    spec = load_spec(settings)
    return registry.line_of(settings, "hgb", modeling_train.model_params("hgb"), spec.hash)


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
        naming.train_set_path(
            settings,
            pipeline.train_dates(settings, FIRST),
            load_spec(settings).hash,
            naming.label_hash(settings.lead_window),
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
    history = registry.read_history(settings)
    assert [(e["action"], e["model"]) for e in history] == [
        ("promoted", first),
        ("refused", worse),
    ]
    # Today's scores come from the current model, not from the refused one.
    today = get_settings().today
    assert pipeline.serving_model(get_settings(), load_spec(settings), "hgb", WORSE, today) == first

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
    models = [line for line in listing[:3]]
    marked = [line for line in models if line.startswith("*")]
    assert len(marked) == 1
    assert worse in marked[0]
    # The history follows the models: one line per decision, the current one marked.
    decisions = listing[4:]
    assert [line[1:].split()[2] for line in decisions] == [
        "promoted",
        "refused",
        "promote",
        "promoted",
        "rollback",
    ]
    assert decisions[-1].startswith("*") and worse in decisions[-1]


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


def _always_promote(monkeypatch):
    # The decisions of these tests are promotions; how the gate judges is tested above.
    monkeypatch.setenv("SCORING_GATE_TOLERANCE", "1")


def test_rollback_then_backtest_leaves_the_rolled_back_model_current(data_root, monkeypatch):
    _always_promote(monkeypatch)
    first = _train(FIRST)
    better = _train(BETTER)
    assert cli.main(["models", "rollback", better]) == 0
    assert registry.current_model(get_settings(), _line()) == first
    # A backtest of a date between the two trains the model of that date's grid: newer than
    # the rolled-back-to model, but of a past date, so it changes nothing.
    assert cli.main(["backtest", "--local-scheduler", "--end", "2026-02-02", "--count", "1"]) == 0
    settings = get_settings()
    spec = load_spec(settings)
    past = pipeline.model_identifier(settings, spec, "hgb", WORSE)
    assert naming.model_path(settings, past).exists()
    assert registry.current_model(settings, _line()) == first
    assert pipeline.serving_model(settings, spec, "hgb", BETTER, settings.today) == first


def test_a_second_rollback_goes_further_back(data_root, monkeypatch):
    _always_promote(monkeypatch)
    first, worse, better = _train(FIRST), _train(WORSE), _train(BETTER)
    settings = get_settings()
    assert registry.current_model(settings, _line()) == better
    assert cli.main(["models", "rollback", better]) == 0
    assert registry.current_model(settings, _line()) == worse
    assert cli.main(["models", "rollback", worse]) == 0
    assert registry.current_model(settings, _line()) == first


def test_a_rollback_naming_a_model_other_than_production_is_refused(data_root, monkeypatch, capsys):
    _always_promote(monkeypatch)
    first, worse = _train(FIRST), _train(WORSE)
    settings = get_settings()
    before = registry.read_history(settings)
    assert cli.main(["models", "rollback", first, "--no-republish"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"{first} is not production ({worse})" in err
    assert f"scoring models promote {first}" in err
    assert registry.read_history(settings) == before


def test_decisions_record_who_when_and_why(data_root, monkeypatch, capsys):
    _always_promote(monkeypatch)
    first, worse = _train(FIRST), _train(WORSE)
    monkeypatch.setenv("SCORING_RUN_BY", "alice")
    assert cli.main(["models", "rollback", "--reason", "worse calibration"]) == 0
    assert cli.main(["models", "rollback"]) == cli.EXIT_USER_ERROR
    assert "no earlier decision" in capsys.readouterr().err
    entry = registry.read_history(get_settings())[-1]
    assert (entry["action"], entry["model"], entry["previous"]) == ("rollback", first, worse)
    assert (entry["by"], entry["reason"]) == ("alice", "worse calibration")
    assert dt.datetime.fromisoformat(entry["at"]).tzinfo is not None


def test_a_rollback_republishes_todays_scores_with_the_chosen_model(data_root, monkeypatch):
    _always_promote(monkeypatch)
    first = _train(FIRST)
    monkeypatch.setenv("SCORING_TODAY", _today_for(BETTER).isoformat())
    assert cli.main(["daily", "--local-scheduler", "--days-back", "0"]) == 0
    settings = get_settings()
    spec = load_spec(settings)
    better = pipeline.model_identifier(settings, spec, "hgb", BETTER)
    assert registry.current_model(settings, _line()) == better

    assert cli.main(["models", "rollback", better]) == 0
    republished = naming.predictions_path(settings, first, settings.today)
    scores = pq.read_table(republished).to_pandas()
    model = modeling_train.load_model(naming.model_path(settings, first))
    features = pq.read_table(naming.test_set_path(settings, settings.today, spec.hash))
    assert np.allclose(scores["target"], model.predict_proba(features.to_pandas()))
    served = served_by(republished)
    assert served["model_id"] == first
    assert served["decision"]["action"] == "rollback"
    assert served["labels"]["lead_window"] == 3
    assert published_file(settings, settings.today) == republished


def test_a_new_line_worse_than_production_is_not_promoted(data_root, monkeypatch):
    first = _train(FIRST)
    # Another training length starts a new line: its first model has no current model of
    # its own line, and is still judged against production.
    monkeypatch.setenv("SCORING_TRAIN_DAYS", "5")
    worse = _train(WORSE, shuffle=True)
    settings = get_settings()
    first_line = registry.read_metadata(settings, first)["line"]
    assert registry.read_metadata(settings, worse)["line"] != first_line
    assert registry.read_metadata(settings, worse)["gate"]["decision"] == "refused"
    spec = load_spec(settings)
    assert pipeline.serving_model(settings, spec, "hgb", WORSE, settings.today) == first


def test_a_missing_champion_record_is_a_named_error(data_root):
    first = _train(FIRST)
    settings = get_settings()
    registry.metadata_path(settings, first).unlink()
    with pytest.raises(ScoringError, match=f"{first}.json") as raised:
        _train(WORSE)
    assert type(raised.value).__name__ == "ChampionError"
    # Nothing was decided on the way.
    assert [e["model"] for e in registry.read_history(settings)] == [first]


def test_a_nan_champion_auc_is_a_named_error(data_root, monkeypatch):
    first = _train(FIRST)
    real = pipeline.evaluate
    calls = []

    def champion_nan(labels, scores, *args):
        calls.append(1)
        result = real(labels, scores, *args)
        # The second evaluation of a training is the production model's on the holdout.
        return dataclasses.replace(result, auc=math.nan) if len(calls) == 2 else result

    monkeypatch.setattr(pipeline, "evaluate", champion_nan)
    with pytest.raises(ScoringError, match=f"production model {first}.*NaN") as raised:
        _train(WORSE)
    assert type(raised.value).__name__ == "ChampionError"


def test_the_probe_model_leaves_out_the_dates_whose_labels_overlap_the_holdout(
    data_root, monkeypatch
):
    monkeypatch.setenv("SCORING_TRAIN_DAYS", "6")
    trained_on = []
    real = modeling_train.train

    def recording(frame, *args, **kwargs):
        trained_on.append(sorted(set(pd.to_datetime(frame["date"]).dt.date)))
        return real(frame, *args, **kwargs)

    monkeypatch.setattr(modeling_train, "train", recording)
    model_id = _train(FIRST)
    probe, reference, final = trained_on
    # Labels of date d come from [d, d + 3): the two dates before the holdout share
    # conversions with it.
    assert probe == [FIRST - dt.timedelta(days=i) for i in (5, 4, 3)]
    # The score's drift reference is not the gate's judge: every date but the holdout.
    assert reference == [FIRST - dt.timedelta(days=i) for i in (5, 4, 3, 2, 1)]
    assert len(final) == 6
    record = registry.read_metadata(get_settings(), model_id)
    assert record["holdout_date"] == FIRST.isoformat()


def _promote_many(root: str, models: list[str], times: int, start) -> None:
    os.environ["SCORING_DATA_ROOT"] = root
    start.wait()
    for _ in range(times):
        for model_id in models:
            assert cli.main(["models", "promote", model_id]) == 0


def test_concurrent_promotions_are_all_recorded(data_root):
    settings = get_settings()
    models = []
    for number in range(2):
        model_id = f"hgb-fake{number}-00000000-00000000"
        naming.model_path(settings, model_id).write_bytes(b"")
        registry.write_metadata(
            settings,
            model_id,
            {"model_id": model_id, "line": "hgb-line-00000000", "train_end": "2026-01-01"},
        )
        models.append(model_id)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    times = 25
    workers = [
        context.Process(target=_promote_many, args=(str(data_root), [m], times, start))
        for m in models
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    recorded = [
        entry["model"]
        for path in settings.models_dir.glob("current-*.json")
        for entry in _entries(json.loads(path.read_text()))
    ]
    assert sorted(recorded) == sorted(models * times)


def _entries(document) -> list[dict]:
    """The decisions of a history file: a list of them, or an object with a "history"."""
    return document["history"] if isinstance(document, dict) else document
