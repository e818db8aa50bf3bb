"""Saved model files stay loadable when the module that defines the model moves."""

from __future__ import annotations

import pickle
import pickletools
import sys
import types

import numpy as np
from scoring.modeling import train
from test_predict_model import NAMES, _frame

FORMER = "scoring.models.train_model"


def _pickled_under_former_name(model: train.TrainedModel, monkeypatch) -> bytes:
    """The bytes `save_model` wrote while the model's module was `FORMER`."""
    former = types.ModuleType(FORMER)
    former.TrainedModel = train.TrainedModel
    former._to_float = train._to_float
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, FORMER, former)
        patch.setattr(train.TrainedModel, "__module__", FORMER)
        patch.setattr(train._to_float, "__module__", FORMER)
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def _modules(data: bytes) -> set[str]:
    return {
        arg
        for opcode, arg, _ in pickletools.genops(data)
        if isinstance(arg, str) and arg.startswith("scoring.")
    }


def test_a_model_saved_under_the_former_module_name_loads(tmp_path, monkeypatch):
    frame = _frame(2_000, seed=3).assign(events_7d=lambda f: f["searches"])
    for model_type, names in (("hgb", NAMES), ("activity", [*NAMES, "events_7d"])):
        model = train.train(frame, model_type, names, "f" * 8)
        data = _pickled_under_former_name(model, monkeypatch)
        assert _modules(data) == {FORMER}
        path = tmp_path / model_type
        path.write_bytes(data)
        loaded = train.load_model(path)
        assert type(loaded) is train.TrainedModel
        assert loaded.identifier == model.identifier
        assert np.array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
