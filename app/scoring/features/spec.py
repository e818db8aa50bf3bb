"""The feature list (features.csv) and its content hash.

Each feature is one row: `name,kind,event_type,window_days,description`. An empty window
means the aggregation window from the settings. Kinds:

- event_count: events of `event_type` (or `all`) in the last `window_days` days
- active_days: days with any event in the last `window_days` days
- days_since_last_event: days from the last active day to the window end
- account_age_days: days from signup to the window end
- is_premium: user attribute, 0/1

Internally the window aggregation keeps a "state" per user with one column per distinct
(event type, window) count, one per active-days window and the last active day; features
are read off that state. The state is additive per day, which is what makes both the
daily partials and the sliding window exact.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from scoring.data.schema import EVENT_TYPES
from scoring.errors import ConfigError
from scoring.naming import short_hash
from scoring.settings import Settings

# Names the rules that turn raw data into feature values (window ending at the cutoff, user
# attributes from the snapshot of the cutoff day). Changing how any feature is computed
# means a new value here, so no output computed under the old rules is reused.
FEATURE_RULES = "window-to-cutoff+users-as-of-cutoff-v2"
KINDS = ("event_count", "active_days", "days_since_last_event", "account_age_days", "is_premium")
ALL_EVENTS = "all"
LAST_DAY = "last_day"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    event_type: str | None
    window: int | None


def count_column(event_type: str, window: int) -> str:
    return f"count__{event_type}__{window}"


def active_column(window: int) -> str:
    return f"active__{window}"


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]
    aggregation_window: int
    data_delay: int = 1

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @cached_property
    def hash(self) -> str:
        # Descriptions are left out on purpose: rewording them must not invalidate data.
        # The aggregation window sets who is scored at all, the data delay where the
        # window of a date ends, the rules how values are computed.
        return short_hash(
            {
                "features": [[f.name, f.kind, f.event_type, f.window] for f in self.features],
                "aggregation_window": self.aggregation_window,
                "data_delay": self.data_delay,
                "rules": FEATURE_RULES,
            }
        )

    @cached_property
    def count_columns(self) -> list[tuple[str, str, int]]:
        """(state column, event type, window) for every distinct event count."""
        seen = {}
        for f in self.features:
            if f.kind == "event_count":
                assert f.event_type is not None and f.window is not None
                seen[count_column(f.event_type, f.window)] = (f.event_type, f.window)
        return [(column, etype, window) for column, (etype, window) in sorted(seen.items())]

    @cached_property
    def active_windows(self) -> list[int]:
        # The aggregation window is always tracked: it decides who is in the population.
        windows = {self.aggregation_window}
        windows.update(f.window for f in self.features if f.kind == "active_days" and f.window)
        return sorted(windows)

    @cached_property
    def windows(self) -> list[int]:
        return sorted({w for _, _, w in self.count_columns} | set(self.active_windows))

    @property
    def state_columns(self) -> list[str]:
        counts = [column for column, _, _ in self.count_columns]
        return ["user_id", *counts, *(active_column(w) for w in self.active_windows), LAST_DAY]


def _parse_row(row: dict[str, str], line: int, path: Path, aggregation_window: int) -> Feature:
    where = f"{path}, line {line}"
    name = (row.get("name") or "").strip()
    kind = (row.get("kind") or "").strip()
    event_type = (row.get("event_type") or "").strip() or None
    window_text = (row.get("window_days") or "").strip()
    if not name.isidentifier():
        raise ConfigError(f"{where}: feature name {name!r} must be a valid identifier")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r} must be one of {', '.join(KINDS)}")
    if kind == "event_count" and event_type not in (*EVENT_TYPES, ALL_EVENTS):
        raise ConfigError(f"{where}: event_type {event_type!r} is not a known event type")
    window = None
    if kind in ("event_count", "active_days"):
        try:
            window = int(window_text) if window_text else aggregation_window
        except ValueError:
            raise ConfigError(f"{where}: window_days {window_text!r} is not a number") from None
        if not 1 <= window <= aggregation_window:
            raise ConfigError(
                f"{where}: window_days {window} must be between 1 and the aggregation "
                f"window ({aggregation_window})"
            )
    return Feature(name=name, kind=kind, event_type=event_type, window=window)


def load_spec(settings: Settings) -> FeatureSpec:
    path = settings.features_csv
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the feature list ({err})") from None
    features = tuple(
        _parse_row(row, line, path, settings.aggregation_window)
        for line, row in enumerate(rows, start=2)
    )
    if not features:
        raise ConfigError(f"{path}: the feature list is empty")
    names = [f.name for f in features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: duplicate feature names {duplicates}")
    return FeatureSpec(
        features=features,
        aggregation_window=settings.aggregation_window,
        data_delay=settings.data_delay,
    )
