"""File names of every artefact, derived from everything that determines its content.

A name is a promise: the same name always means the same content. The feature hash covers
the feature list and every setting or rule that changes a feature value
(`features.spec.FeatureSpec.hash`); the train hash covers the training dates and the label
definition (`label_hash`); a model id covers type, parameters, train hash and feature
hash. The same configuration gives the same names, so existing files are reused; any change
gives new names and new files next to the old ones (docs/naming.md lists which setting
shapes which name).

    data/raw/users/<YYYY-MM-DD>.parquet       (user attributes as of that day)
    data/interim/daily/<YYYY-MM-DD>.parquet
    data/interim/daily/raw-fingerprints.json  (a cache: raw files' fingerprints by stat key)
    data/interim/window/<YYYY-MM-DD>-<feature-hash>[-skip<hash>].arrow
    data/interim/gaps/[<input>-]<YYYY-MM-DD>.json   (raw days skipped, with the check)
    data/interim/checked/<input>/<YYYY-MM-DD>.json  (fingerprints of labels and snapshots used)
    data/processed/train/<min-date>-<max-date>-<dates-hash>-<feature-hash>.parquet
    data/processed/test/<YYYY-MM-DD>-<feature-hash>[-skip<hash>].parquet
    models/<model-type>-<param-desc>-<train-dates-hash>-<feature-hash>
    models/predictions/<model-id>-<YYYY-MM-DD>[-skip<hash>].parquet

`-skip<hash>` appears only when raw days among the inputs were skipped (the hash covers
which); the train hash covers them too.
    models/drift-reference/<model-id>.parquet (out-of-sample scores: the score's reference)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from scoring import fingerprints
from scoring.settings import Settings

HASH_LENGTH = 8
LABEL_RULES = "conversion-in-lead-window-v1"
_PARAM_VALUE_OK = re.compile(r"^[A-Za-z0-9.]+$")


def short_hash(payload: object) -> str:
    """Stable short hex digest of JSON-serialisable content (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def dates_hash(dates: Iterable[dt.date]) -> str:
    """Hash of a set of dates: order and duplicates do not change it."""
    return short_hash(sorted({d.isoformat() for d in dates}))


def label_hash(lead_window: int) -> str:
    """Hash of the label definition: "converted within `lead_window` days from the date".

    LABEL_RULES names the rule itself, so that a new label definition (another event,
    another window anchor) changes every train hash even with the same lead window.
    """
    return short_hash({"rule": LABEL_RULES, "lead_window": lead_window})


def train_hash(
    dates: Iterable[dt.date], labels: str, skipped: Iterable[tuple[str, str]] = ()
) -> str:
    """Hash of a training set's rows: its dates, the label definition they carry and the
    raw days its features and labels were built without (`training_skips`)."""
    payload = {"dates": sorted({d.isoformat() for d in dates}), "labels": labels}
    skipped = sorted(skipped)
    if skipped:  # a clean build keeps the name it always had
        payload["skipped"] = skipped
    return short_hash(payload)


# --- skipped raw days -------------------------------------------------------------------
#
# A raw day left out under the skip policy changes what is built from it, so it is part of
# the names: every output gets a suffix that covers the gaps among its inputs, and an
# output without gaps keeps its plain name. Gaps count while they stand (standing_gaps):
# back under `fail`, or once the day has arrived, the names are the clean ones again and
# the outputs are built anew from the checked day.

Inputs = set[tuple[str, dt.date]]


# The raw inputs, each one file a day.
INPUTS = ("events", "conversions", "users")


def raw_path(settings: Settings, kind: str, day: dt.date) -> Path:
    if kind == "events":
        return raw_events_path(settings, day)
    if kind == "conversions":
        return raw_conversions_path(settings, day)
    return raw_users_path(settings, day)


def gap_path(settings: Settings, day: dt.date, kind: str = "events") -> Path:
    """The record of a raw day the checks left out (data.gaps writes it)."""
    prefix = "" if kind == "events" else f"{kind}-"
    return settings.interim_dir / "gaps" / f"{prefix}{day.isoformat()}.json"


def standing_gaps(settings: Settings) -> Inputs:
    """The (input, day) gaps that stand: the policy is skip and the raw file is the one the
    gap was recorded for (a day that arrived or was delivered again is checked anew)."""
    if settings.raw_day_policy != "skip":
        return set()
    standing = set()
    for path in sorted((settings.interim_dir / "gaps").glob("*.json")):
        try:
            record = json.loads(path.read_text())
            kind, day = record.get("input", "events"), dt.date.fromisoformat(record["day"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record stands for nothing: the day is checked again
        if kind in INPUTS and record.get("fingerprint") == fingerprints.fingerprint(
            raw_path(settings, kind, day)
        ):
            standing.add((kind, day))
    return standing


def feature_inputs(settings: Settings, date: dt.date, users: bool = True) -> Inputs:
    """The raw days the features of `date` are built from: the events of its window and,
    with `users`, the user snapshot of its cutoff."""
    cutoff = settings.feature_cutoff(date)
    days = {("events", cutoff - dt.timedelta(days=i)) for i in range(settings.aggregation_window)}
    return days | {("users", cutoff)} if users else days


def label_inputs(settings: Settings, date: dt.date) -> Inputs:
    first, last = settings.label_window(date)
    return {("conversions", first + dt.timedelta(days=i)) for i in range((last - first).days + 1)}


def skips_among(settings: Settings, inputs: Inputs) -> list[tuple[str, str]]:
    standing = standing_gaps(settings)
    return sorted((kind, day.isoformat()) for kind, day in standing & inputs)


def skip_suffix(settings: Settings, inputs: Inputs) -> str:
    """`-skip<hash of the gaps>` when some of `inputs` were skipped, else nothing."""
    skipped = skips_among(settings, inputs)
    return f"-skip{short_hash(skipped)}" if skipped else ""


def training_skips(settings: Settings, dates: Iterable[dt.date]) -> list[tuple[str, str]]:
    """The gaps among the features and labels of a training set's dates."""
    inputs: Inputs = set()
    for date in set(dates):
        inputs |= feature_inputs(settings, date) | label_inputs(settings, date)
    return skips_among(settings, inputs)


def param_description(params: Mapping[str, object]) -> str:
    """Readable, filesystem-safe summary of model parameters, e.g. `depth6_lr0.1`.

    Uses `_` inside the description because `-` separates the parts of a model id.
    """
    parts = []
    for key in sorted(params):
        value = str(params[key])
        if not _PARAM_VALUE_OK.match(value) or not key.isalnum():
            raise ValueError(f"parameter {key}={value!r} cannot be used in a file name")
        parts.append(f"{key}{value}")
    return "_".join(parts) or "default"


def model_id(
    model_type: str, params: Mapping[str, object], train_set_hash: str, feature_hash: str
) -> str:
    return f"{model_type}-{param_description(params)}-{train_set_hash}-{feature_hash}"


def daily_partial_path(settings: Settings, day: dt.date) -> Path:
    return settings.daily_partials_dir / f"{day.isoformat()}.parquet"


def raw_fingerprints_path(settings: Settings) -> Path:
    # Next to the partials that record the fingerprints, in the pipeline's own directory:
    # the raw directories belong to the delivery.
    return settings.daily_partials_dir / "raw-fingerprints.json"


def window_state_path(settings: Settings, date: dt.date, feature_hash: str) -> Path:
    # Arrow IPC, not parquet: read back in full every day, and (de)serialising it is
    # close to a memory copy.
    suffix = skip_suffix(settings, feature_inputs(settings, date, users=False))
    return settings.window_state_dir / f"{date.isoformat()}-{feature_hash}{suffix}.arrow"


def raw_events_path(settings: Settings, day: dt.date) -> Path:
    return settings.raw_events_dir / f"{day.isoformat()}.parquet"


def raw_users_path(settings: Settings, day: dt.date) -> Path:
    return settings.raw_users_dir / f"{day.isoformat()}.parquet"


def raw_conversions_path(settings: Settings, day: dt.date) -> Path:
    return settings.raw_conversions_dir / f"{day.isoformat()}.parquet"


def train_set_path(
    settings: Settings, dates: Iterable[dt.date], feature_hash: str, labels: str
) -> Path:
    unique = sorted(set(dates))
    if not unique:
        raise ValueError("a training set needs at least one date")
    digest = train_hash(unique, labels, training_skips(settings, unique))
    name = f"{unique[0]}-{unique[-1]}-{digest}-{feature_hash}.parquet"
    return settings.train_dir / name


def train_set_of_model(
    settings: Settings, model_identifier: str, first: dt.date, last: dt.date
) -> Path:
    """The training set a model was trained on: its train hash is in the model id, so the
    name does not depend on the gaps that stand now."""
    *_, digest, feature_hash = model_identifier.split("-")
    return settings.train_dir / f"{first}-{last}-{digest}-{feature_hash}.parquet"


def test_set_path(settings: Settings, date: dt.date, feature_hash: str) -> Path:
    suffix = skip_suffix(settings, feature_inputs(settings, date))
    return settings.test_dir / f"{date.isoformat()}-{feature_hash}{suffix}.parquet"


def model_path(settings: Settings, model_identifier: str) -> Path:
    return settings.models_dir / model_identifier


def predictions_path(settings: Settings, model_identifier: str, date: dt.date) -> Path:
    suffix = skip_suffix(settings, feature_inputs(settings, date))
    return settings.predictions_dir / f"{model_identifier}-{date.isoformat()}{suffix}.parquet"


def predictions_pattern(model_type: str, feature_hash: str, date: dt.date) -> str:
    """Glob of the prediction files of `date` by models of a type and feature list."""
    return f"{model_type}-*-{feature_hash}-{date.isoformat()}*.parquet"


def model_of_predictions(prediction: Path, date: dt.date) -> str:
    """The model id in the name of a prediction file of `date`."""
    return prediction.stem.split(f"-{date.isoformat()}", 1)[0]


def score_reference_path(settings: Settings, model_identifier: str) -> Path:
    return settings.models_dir / "drift-reference" / f"{model_identifier}.parquet"


def report_path(settings: Settings, line: str, date: dt.date) -> Path:
    """The monitoring report of a line of models on `date` (HTML)."""
    return settings.reports_dir / f"monitoring-{date.isoformat()}-{line}.html"


def drift_table_path(settings: Settings, date: dt.date) -> Path:
    """The drift of `date` as `scoring drift` computes it, one row per feature (CSV)."""
    return settings.reports_dir / f"drift-{date.isoformat()}.csv"


def backtest_report_path(
    settings: Settings, dates: list[dt.date], model_types: list[str], feature_hash: str
) -> Path:
    """Named by its dates, the label definition and the models compared, and the features."""
    content = short_hash(
        {
            "rows": train_hash(dates, label_hash(settings.lead_window)),
            "models": sorted(model_types),
            "training": [settings.train_days, settings.retrain_every],
        }
    )
    return settings.reports_dir / f"backtest-{min(dates)}-{max(dates)}-{content}-{feature_hash}.md"
