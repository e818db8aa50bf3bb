"""Model metadata, the quality gate and the recorded "current" model with its history.

Beside each model file `models/<id>` lies `models/<id>.json`: training range, rows and
positives, metrics on a time holdout (the last training date, scored by a model trained
without it), library and code versions, the feature and label settings, and the gate's
decision. `models/current-<model-type>-<shape-hash>-<feature-hash>.json` is the pointer of
one line of models (same type, parameters, labels, training length and features: they differ
only by their dates): the current model id and every change to it (promoted, refused,
promote, rollback), newest last.

The gate: a retrained model becomes current only if its holdout AUC is not below the current
model's AUC on the same holdout date by more than SCORING_GATE_TOLERANCE. A refused model
stays on disk for inspection and is named in the log and in the history.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from importlib import metadata as importlib_metadata
from pathlib import Path

from scoring import atomic, naming
from scoring.errors import ConfigError, MissingInputError
from scoring.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_TOLERANCE = 0.02
LIBRARIES = ("scikit-learn", "numpy", "pandas", "pyarrow", "dask", "luigi")


def tolerance() -> float:
    raw = os.environ.get("SCORING_GATE_TOLERANCE", "").strip()
    try:
        return float(raw) if raw else DEFAULT_TOLERANCE
    except ValueError:
        raise ConfigError(f"SCORING_GATE_TOLERANCE={raw!r} is not a number") from None


def versions() -> dict[str, str]:
    found = {}
    for name in ("is24de-scoring", *LIBRARIES):
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def metadata_path(settings: Settings, model_id: str) -> Path:
    return naming.model_path(settings, model_id).with_name(f"{model_id}.json")


def read_metadata(settings: Settings, model_id: str) -> dict | None:
    path = metadata_path(settings, model_id)
    return json.loads(path.read_text()) if path.exists() else None


def write_metadata(settings: Settings, model_id: str, record: dict) -> None:
    atomic.write_text(
        json.dumps(record, indent=2, default=str) + "\n", metadata_path(settings, model_id)
    )


def line_of(settings: Settings, model_type: str, params: dict, feature_hash: str) -> str:
    """A line of models: everything that shapes a model except its dates, so models of one
    line differ only by when they were trained, and any of them can score its test sets."""
    shape = {
        "params": params,
        "labels": naming.label_hash(settings.lead_window),
        "train_days": settings.train_days,
        "retrain_every": settings.retrain_every,
    }
    return f"{model_type}-{naming.short_hash(shape)}-{feature_hash}"


def line_of_model(settings: Settings, model_id: str) -> str:
    record = read_metadata(settings, model_id)
    if record is None:
        raise MissingInputError(f"no metadata for model {model_id} under {settings.models_dir}")
    return record["line"]


def pointer_path(settings: Settings, line: str) -> Path:
    return settings.models_dir / f"current-{line}.json"


def read_pointer(settings: Settings, line: str) -> dict:
    path = pointer_path(settings, line)
    if path.exists():
        return json.loads(path.read_text())
    return {"line": line, "current": None, "history": []}


def _record(settings: Settings, pointer: dict, action: str, model_id: str, **details) -> dict:
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "action": action,
        "model": model_id,
        **details,
    }
    pointer["history"].append(entry)
    atomic.write_text(json.dumps(pointer, indent=2) + "\n", pointer_path(settings, pointer["line"]))
    return entry


def current_model(settings: Settings, line: str) -> str | None:
    return read_pointer(settings, line)["current"]


def decide(
    settings: Settings,
    line: str,
    model_id: str,
    *,
    train_end: str,
    auc: float,
    champion_auc: float | None,
) -> dict:
    """Apply the gate to a newly trained model and record the decision in the history.

    Only a model trained on later dates than the current one is a challenger; models that
    backfills and backtests train for past dates are recorded as `past` and change nothing.
    """
    pointer = read_pointer(settings, line)
    champion = pointer["current"]
    allowed = tolerance()
    champion_end = pointer.get("current_train_end") or ""
    if champion is None or champion == model_id:
        decision = {"decision": "promoted", "reason": "no current model", "champion": champion}
    elif train_end <= champion_end:
        decision = {
            "decision": "past",
            "reason": f"trained up to {train_end}, not after the current model ({champion_end})",
            "champion": champion,
        }
    elif champion_auc is None or auc >= champion_auc - allowed:
        decision = {
            "decision": "promoted",
            "champion": champion,
            "reason": f"holdout AUC {auc:.4f} vs current {champion_auc or float('nan'):.4f} "
            f"(tolerance {allowed})",
        }
    else:
        decision = {
            "decision": "refused",
            "champion": champion,
            "reason": f"holdout AUC {auc:.4f} below current {champion_auc:.4f} "
            f"by more than {allowed}",
        }
    if decision["decision"] == "promoted":
        pointer["current"] = model_id
        pointer["current_train_end"] = train_end
    elif decision["decision"] == "refused":
        log.warning(
            "model %s refused: %s; %s stays current", model_id, decision["reason"], champion
        )
    if decision["decision"] != "past":
        _record(settings, pointer, decision["decision"], model_id, reason=decision["reason"])
    return decision


def promote(settings: Settings, line: str, model_id: str) -> dict:
    if not naming.model_path(settings, model_id).exists():
        raise MissingInputError(f"no model {model_id} under {settings.models_dir}")
    if line_of_model(settings, model_id) != line:
        raise ConfigError(f"{model_id} is not a model of the line {line}")
    pointer = read_pointer(settings, line)
    previous = pointer["current"]
    pointer["current"] = model_id
    pointer["current_train_end"] = read_metadata(settings, model_id)["train_end"]
    return _record(settings, pointer, "promote", model_id, previous=previous)


def rollback(settings: Settings, line: str) -> dict:
    """Make the model that was current before the current one current again."""
    pointer = read_pointer(settings, line)
    currents = []
    for entry in pointer["history"]:
        if entry["action"] in ("promoted", "promote", "rollback"):
            currents.append(entry["model"])
    # Walk back past the current model to the one before it.
    earlier = [m for m in currents if m != pointer["current"]]
    if not earlier:
        raise MissingInputError(f"no earlier model of the line {line} to roll back to")
    target = earlier[-1]
    previous = pointer["current"]
    pointer["current"] = target
    pointer["current_train_end"] = read_metadata(settings, target)["train_end"]
    return _record(settings, pointer, "rollback", target, previous=previous)


def list_models(settings: Settings) -> list[dict]:
    rows = []
    for path in sorted(settings.models_dir.glob("*.json")):
        if path.name.startswith("current-"):
            continue
        record = json.loads(path.read_text())
        record["current"] = current_model(settings, record["line"]) == record["model_id"]
        rows.append(record)
    return rows
