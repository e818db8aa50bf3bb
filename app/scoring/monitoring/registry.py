"""Model metadata, the quality gate and the history of decisions that make a model current.

Beside each model file `models/<id>` lies `models/<id>.json`: training range, rows and
positives, metrics on a time holdout, library and code versions, the feature and label
settings, and the gate's decision. A line of models (same type, parameters, labels, training
length and features) holds models that differ only by their dates.

Production is one model per data root, the result of `models/current-decisions.json`: every
decision (`promoted`, `refused` and `held` by the gate, `promote` and `rollback` by hand),
newest last, with who made it, when, why, the model before and the model's line. The current
model is the model of the latest decision that made one current; a rollback undoes the latest
decision that is not undone yet, so a second rollback goes further back. Every change of the
history happens under an exclusive lock on `models/current-decisions.lock` (the data root is
shared by every member and container).

The gate: only the daily run's model for today is a challenger. It becomes current if its
holdout AUC is not below the production model's AUC on the same holdout date and labels by
more than SCORING_GATE_TOLERANCE. A model that cannot be compared with production on its
holdout (another feature list, or production has seen the holdout's labels) is `held`:
nothing changes, and the log says to promote it by hand.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata as importlib_metadata
from pathlib import Path

from scoring import atomic, naming
from scoring.errors import ConfigError, MissingInputError, ScoringError
from scoring.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_TOLERANCE = 0.02
# Decisions that make their model current.
CHANGES = ("promoted", "promote")
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
    return read_record(settings, model_id)["line"]


class ChampionError(ScoringError):
    """The production model's record is missing or unusable, or it cannot be judged."""


class HistoryError(ScoringError):
    """The history of decisions cannot be read or does not allow the change asked for."""


def read_record(settings: Settings, model_id: str) -> dict:
    """The metadata of `model_id`: MissingInputError if there is none, ChampionError naming
    the file if it is unusable."""
    path = metadata_path(settings, model_id)
    if not path.exists():
        raise MissingInputError(f"no metadata for model {model_id} under {settings.models_dir}")
    try:
        record = json.loads(path.read_text())
        if record["model_id"] != model_id or not record["line"]:
            raise ValueError("model_id or line does not match")
    except (ValueError, KeyError, TypeError) as err:
        raise ChampionError(
            f"the metadata of model {model_id} ({path}) is unusable: {err}"
        ) from None
    return record


def history_path(settings: Settings) -> Path:
    return settings.models_dir / "current-decisions.json"


def lock_path(settings: Settings) -> Path:
    return settings.models_dir / "current-decisions.lock"


@contextmanager
def locked(settings: Settings) -> Iterator[None]:
    """Hold the exclusive lock of the history (blocks until the other holder is done)."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_history(settings: Settings) -> list[dict]:
    path = history_path(settings)
    if not path.exists():
        return []
    try:
        history = json.loads(path.read_text())
        if not isinstance(history, list) or not all("action" in e for e in history):
            raise ValueError("not a list of decisions")
    except ValueError as err:
        raise HistoryError(f"the history of decisions {path} is unusable: {err}") from None
    return history


def _stack(history: list[dict]) -> list[dict]:
    """The decisions that made a model current and are not undone, oldest first."""
    stack: list[dict] = []
    for entry in history:
        if entry["action"] in CHANGES:
            stack.append(entry)
        elif entry["action"] == "rollback" and stack:
            stack.pop()
    return stack


def current_decision(settings: Settings, history: list[dict] | None = None) -> dict | None:
    """The latest decision that made the current model current (a rollback included)."""
    history = read_history(settings) if history is None else history
    made = [e for e in history if e["action"] in (*CHANGES, "rollback")]
    return made[-1] if made else None


def production(settings: Settings, history: list[dict] | None = None) -> str | None:
    decision = current_decision(settings, history)
    return decision["model"] if decision else None


def current_model(settings: Settings, line: str) -> str | None:
    """The production model if it scores the test sets of `line` (same feature list, the
    last part of a line's name), else None: the model that serves that configuration."""
    model_id = production(settings)
    if model_id is None:
        return None
    record = read_metadata(settings, model_id)
    if record is None:
        return None
    return model_id if record["line"].rsplit("-", 1)[-1] == line.rsplit("-", 1)[-1] else None


def who() -> str:
    """Who makes a decision: the member that `scoring-run` names, the sudo caller, or the
    user of this process."""
    for name in ("SCORING_RUN_BY", "SUDO_USER"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return getpass.getuser()


def _append(
    settings: Settings, history: list[dict], action: str, model_id: str, line: str, **details
) -> dict:
    """Record a decision; the caller holds the lock."""
    entry = {
        "seq": len(history) + 1,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "by": who(),
        "action": action,
        "model": model_id,
        "line": line,
        "previous": production(settings, history),
        **details,
    }
    history.append(entry)
    atomic.write_text(json.dumps(history, indent=2) + "\n", history_path(settings))
    log.warning(
        "model decision %s: %s %s by %s (%s); production was %s",
        entry["seq"],
        action,
        model_id,
        entry["by"],
        entry.get("reason", ""),
        entry["previous"],
    )
    return entry


def gate(
    settings: Settings,
    candidate: dict,
    *,
    live: bool,
    champion_metrics: Callable[[dict], dict | None],
) -> dict:
    """Decide on a newly trained model (its metadata `candidate`, without "gate") and record
    the decision.

    `live` is true only for the daily run's model for today; any other model is `past` and
    changes nothing. `champion_metrics(record)` scores the production model on the candidate's
    holdout (same date, same labels), or returns None when it cannot be compared there.
    """
    model_id = candidate["model_id"]
    if not live:
        return {
            "decision": "past",
            "champion": None,
            "reason": f"trained up to {candidate['train_end']} for a past date; only the daily "
            "run's model for today or `scoring models promote` changes production",
        }
    allowed = tolerance()
    with locked(settings):
        history = read_history(settings)
        champion = production(settings, history)
        theirs = None
        if champion is None:
            action, reason = "promoted", "no production model yet"
        elif champion == model_id:
            return {"decision": "current", "champion": champion, "reason": "already production"}
        else:
            try:
                record = read_record(settings, champion)
            except MissingInputError:
                raise ChampionError(
                    f"production model {champion} (decision in {history_path(settings)}) has "
                    f"no metadata {metadata_path(settings, champion)}; restore it or promote "
                    "a model by hand"
                ) from None
            mine = candidate.get("holdout_metrics")
            theirs = champion_metrics(record) if mine else None
            if theirs is None:
                action = "held"
                reason = (
                    f"cannot be compared with production model {champion} (line "
                    f"{record['line']}) on the holdout {candidate['holdout_date']}; nothing "
                    f"promoted: to serve it, run `scoring models promote {model_id}`"
                )
            elif math.isnan(theirs["auc"]):
                raise ChampionError(
                    f"the holdout AUC of production model {champion} on "
                    f"{candidate['holdout_date']} is NaN (one class of labels?); the gate cannot "
                    f"judge {model_id}: promote one of them by hand"
                )
            elif math.isnan(mine["auc"]):
                raise ChampionError(
                    f"the holdout AUC of {model_id} on {candidate['holdout_date']} is NaN; "
                    f"the gate cannot judge it against {champion}: promote one by hand"
                )
            elif mine["auc"] >= theirs["auc"] - allowed:
                action = "promoted"
                reason = (
                    f"holdout AUC {mine['auc']:.4f} vs production {theirs['auc']:.4f} on "
                    f"{candidate['holdout_date']} (tolerance {allowed})"
                )
            else:
                action = "refused"
                reason = (
                    f"holdout AUC {mine['auc']:.4f} below production {theirs['auc']:.4f} on "
                    f"{candidate['holdout_date']} by more than {allowed}"
                )
        entry = _append(
            settings,
            history,
            action,
            model_id,
            candidate["line"],
            reason=reason,
            train_end=candidate["train_end"],
        )
    return {
        "decision": action,
        "champion": champion,
        "champion_holdout_metrics": theirs,
        "reason": reason,
        "seq": entry["seq"],
    }


def promote(settings: Settings, model_id: str, reason: str = "") -> dict:
    if not naming.model_path(settings, model_id).exists():
        raise MissingInputError(f"no model {model_id} under {settings.models_dir}")
    record = read_record(settings, model_id)
    with locked(settings):
        history = read_history(settings)
        return _append(
            settings,
            history,
            "promote",
            model_id,
            record["line"],
            reason=reason or "by hand",
            train_end=record["train_end"],
        )


def rollback(settings: Settings, reason: str = "") -> dict:
    """Undo the latest decision that made a model current and is not undone yet."""
    with locked(settings):
        history = read_history(settings)
        stack = _stack(history)
        if len(stack) < 2:
            raise HistoryError(f"no earlier decision to roll back to in {history_path(settings)}")
        target = stack[-2]
        if not naming.model_path(settings, target["model"]).exists():
            raise MissingInputError(
                f"cannot roll back to {target['model']}: no such model under {settings.models_dir}"
            )
        return _append(
            settings,
            history,
            "rollback",
            target["model"],
            target["line"],
            reason=reason or "by hand",
            undoes=stack[-1]["seq"],
            restores=target["seq"],
            train_end=target.get("train_end"),
        )


def list_models(settings: Settings) -> list[dict]:
    rows = []
    current = production(settings)
    for path in sorted(settings.models_dir.glob("*.json")):
        if path.name.startswith("current-"):
            continue
        record = json.loads(path.read_text())
        record["current"] = current == record["model_id"]
        rows.append(record)
    return rows
