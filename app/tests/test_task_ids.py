"""Every setting either reaches the task ids and output names of the tasks whose content it
shapes, or is declared (with the reason) as shaping no content: two configurations never
share a task id on one luigid while writing different files."""

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from scoring.settings import Settings
from scoring.tasks import Predict, TestSet, TrainModel, TrainSet, base

DATE = dt.date(2026, 2, 9)
# A changed value for every setting that shapes content, as its environment variable.
CHANGES = {
    "data_root": ("SCORING_DATA_ROOT", None),  # another directory, made by the test
    "aggregation_window": ("SCORING_AGGREGATION_WINDOW", "13"),
    "lead_window": ("SCORING_LEAD_WINDOW", "4"),
    "data_delay": ("SCORING_DATA_DELAY", "2"),
    "model_type": ("SCORING_MODEL_TYPE", "activity"),
    "train_days": ("SCORING_TRAIN_DAYS", "5"),
    "retrain_every": ("SCORING_RETRAIN_EVERY", "3"),
    "features_csv": ("SCORING_FEATURES_CSV", None),  # a shorter list, made by the test
}
# The tasks whose content each setting shapes (every setting shapes Predict).
SHAPED = {
    "data_root": (TestSet, TrainSet, TrainModel),
    "aggregation_window": (TestSet, TrainSet, TrainModel),
    "data_delay": (TestSet, TrainSet, TrainModel),
    "features_csv": (TestSet, TrainSet, TrainModel),
    "lead_window": (TrainSet, TrainModel),
    "train_days": (TrainSet, TrainModel),
    "retrain_every": (TrainModel,),
    "model_type": (TrainModel,),
}


def _tasks(settings) -> dict[type, object]:
    train_end = settings.train_end_for(DATE)
    return {
        TestSet: TestSet(date=DATE),
        TrainSet: TrainSet(train_end=train_end),
        TrainModel: TrainModel(train_end=train_end),
        Predict: Predict(date=DATE),
    }


def _identity(task) -> tuple[str, list[str]]:
    outputs = task.output()
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return task.task_id, [str(Path(o.path).relative_to(task.settings.data_root)) for o in outputs]


def _state():
    from scoring.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    return {kind: _identity(task) for kind, task in _tasks(settings).items()}


def test_every_setting_shapes_task_ids_or_is_declared_as_shaping_no_content():
    declared = set(getattr(base, "NOT_SHAPING_CONTENT", {}))
    fields = {f.name for f in dataclasses.fields(Settings)}
    undecided = fields - declared - set(CHANGES)
    assert not undecided, f"settings neither shaping task ids nor declared: {undecided}"
    assert not declared & set(CHANGES), "a setting cannot be both"
    assert all(reason.strip() for reason in getattr(base, "NOT_SHAPING_CONTENT", {}).values())


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_setting_that_shapes_content_changes_task_ids_and_output_names(
    name, data_root, tmp_path, monkeypatch
):
    before = _state()
    variable, value = CHANGES[name]
    if name == "data_root":
        value = str(tmp_path / "other")
    if name == "features_csv":
        from scoring.settings import DEFAULT_FEATURES_CSV  # noqa: PLC0415

        lines = DEFAULT_FEATURES_CSV.read_text().splitlines()
        shorter = tmp_path / "features.csv"
        shorter.write_text("\n".join(lines[:-1]) + "\n")
        value = str(shorter)
    monkeypatch.setenv(variable, value)
    after = _state()
    for kind in (Predict, *SHAPED[name]):
        task_id, outputs = before[kind]
        assert after[kind][0] != task_id, f"{name} does not change the id of {kind.__name__}"
        # A moved data root moves every output; compared below the root, names must differ.
        if name != "data_root":
            assert after[kind][1] != outputs, f"{name} does not change {kind.__name__}'s output"
