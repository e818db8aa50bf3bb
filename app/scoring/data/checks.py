"""Checks of a raw day before anything is built from it, the policy on failure, fingerprints.

Each check has a name that the error carries, so a failed daily run says which day failed
which check:

- missing: the day's events file is absent although later days were delivered;
- late: the day's events file has not arrived yet (no later day exists either);
- volume: the day's event count is far below or above the median of the days before it
  (a truncated or anomalous export);
- duplicates: the same event (user, timestamp, type) appears more than once;
- unknown_users: events of users missing from that day's user snapshot;
- impossible_values: non-positive user ids, events before the user's signup day (a schema
  problem, such as a missing column or a timestamp outside the day, fails as well, from
  `schema`);
- changed: the file's content differs from the content an existing partial was built from.

`SCORING_RAW_DAY_POLICY` decides what a failed check leads to: `fail` stops the step, `wait`
polls for a missing or late day for up to `SCORING_RAW_WAIT_SECONDS` and then fails, `skip`
treats the day as one without any activity and records the gap under data/interim/gaps/.
A changed file always fails: its old content must not be mixed with the new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoring import atomic, naming
from scoring.data import dataset
from scoring.errors import RawDataError
from scoring.settings import Settings

CHECKS = (
    "missing",
    "late",
    "volume",
    "duplicates",
    "unknown_users",
    "impossible_values",
    "changed",
)
ABSENT = "absent"
# Volume is only judged against at least this many earlier delivered days.
MIN_HISTORY_DAYS = 3


class RawDayError(RawDataError):
    """A raw day failed one of the checks; `day` and `check` say which."""

    def __init__(self, day: dt.date, check: str, detail: str):
        self.day = day
        self.check = check
        self.detail = detail
        super().__init__(f"raw day {day.isoformat()} failed the '{check}' check: {detail}")

    def __reduce__(self):
        # Dask hands exceptions between threads and processes by pickling them.
        return (type(self), (self.day, self.check, self.detail))


# --- fingerprints ---------------------------------------------------------------------

_fingerprints: dict[tuple[str, int, int], str] = {}
_fingerprint_lock = threading.Lock()


def fingerprint(path: Path) -> str:
    """SHA-256 (16 hex digits) of a file's bytes, or `absent`; cached by size and mtime."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ABSENT
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _fingerprint_lock:
        known = _fingerprints.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()[:16]
    with _fingerprint_lock:
        _fingerprints[key] = value
    return value


FINGERPRINT_KEY = b"scoring.raw_fingerprint"


def recorded_fingerprint(partial_path: Path) -> str | None:
    """The raw fingerprint a partial was built from; None if there is no partial."""
    try:
        metadata = pq.read_schema(partial_path).metadata or {}
    except FileNotFoundError:
        return None
    return metadata.get(FINGERPRINT_KEY, b"").decode() or None


def with_fingerprint(table: pa.Table, value: str) -> pa.Table:
    metadata = dict(table.schema.metadata or {})
    metadata[FINGERPRINT_KEY] = value.encode()
    return table.replace_schema_metadata(metadata)


def partial_is_current(settings: Settings, day: dt.date) -> bool:
    recorded = recorded_fingerprint(naming.daily_partial_path(settings, day))
    return recorded is not None and recorded == fingerprint(naming.raw_events_path(settings, day))


def check_not_changed(settings: Settings, day: dt.date) -> None:
    """Fail if a partial of `day` exists that was built from other content than today's."""
    partial = naming.daily_partial_path(settings, day)
    recorded = recorded_fingerprint(partial)
    current = fingerprint(naming.raw_events_path(settings, day))
    if recorded is not None and recorded != current:
        raise RawDayError(
            day,
            "changed",
            f"{naming.raw_events_path(settings, day)} now has fingerprint {current}, but "
            f"{partial} was built from {recorded}. Outputs of the old content exist; remove "
            f"that partial and the window states, test sets and predictions of the "
            f"{settings.aggregation_window} dates whose window holds {day}, then run again",
        )


# --- gaps -----------------------------------------------------------------------------


def gap_path(settings: Settings, day: dt.date) -> Path:
    return settings.interim_dir / "gaps" / f"{day.isoformat()}.json"


def record_gap(settings: Settings, error: RawDayError) -> None:
    record = {"day": error.day.isoformat(), "check": error.check, "message": str(error)}
    atomic.write_text(json.dumps(record, indent=2) + "\n", gap_path(settings, error.day))


def recorded_gaps(settings: Settings) -> list[dict]:
    directory = settings.interim_dir / "gaps"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


# --- arrival --------------------------------------------------------------------------


def _arrival_error(settings: Settings, day: dt.date) -> RawDayError:
    path = naming.raw_events_path(settings, day)
    later = [d for d in dataset.available_raw_days(settings) if d > day]
    if later:
        return RawDayError(
            day, "missing", f"{path} was never delivered, but later days were (from {later[0]})"
        )
    due = day + dt.timedelta(days=settings.data_delay)
    return RawDayError(day, "late", f"{path} has not arrived yet (expected by {due})")


def wait_for_arrival(settings: Settings, day: dt.date, sleep=time.sleep) -> bool:
    """Whether the day's events file exists, after waiting for it as the policy says.

    Returns False only under the skip policy (the caller records the gap); raises
    RawDayError (missing or late) under fail, and under wait once the time is up.
    """
    path = naming.raw_events_path(settings, day)
    if path.exists():
        return True
    if settings.raw_day_policy == "wait":
        deadline = time.monotonic() + settings.raw_wait_seconds
        while time.monotonic() < deadline:
            sleep(min(settings.raw_poll_seconds, max(0.0, deadline - time.monotonic())))
            if path.exists():
                return True
    error = _arrival_error(settings, day)
    if settings.raw_day_policy == "skip":
        record_gap(settings, error)
        return False
    raise error


# --- content --------------------------------------------------------------------------


def _trailing_counts(settings: Settings, day: dt.date) -> list[int]:
    counts = []
    for back in range(1, 2 * settings.volume_trailing_days + 1):
        path = naming.raw_events_path(settings, day - dt.timedelta(days=back))
        if path.exists():
            try:
                counts.append(pq.read_metadata(path).num_rows)
            except (pa.ArrowException, OSError):
                continue  # that day fails its own checks when it is used
        if len(counts) == settings.volume_trailing_days:
            break
    return counts


def check_volume(settings: Settings, day: dt.date, rows: int) -> None:
    history = _trailing_counts(settings, day)
    if len(history) < MIN_HISTORY_DAYS:
        return
    median = statistics.median(history)
    low, high = settings.volume_min_ratio * median, settings.volume_max_ratio * median
    if not low <= rows <= high:
        raise RawDayError(
            day,
            "volume",
            f"{rows} events, against a median of {median:g} over the {len(history)} "
            f"delivered days before it (allowed {low:g} to {high:g}; "
            "SCORING_VOLUME_MIN_RATIO / SCORING_VOLUME_MAX_RATIO)",
        )


def check_events(settings: Settings, day: dt.date, events: pa.Table) -> None:
    """Content checks of validated events (dataset.read_events) of `day`."""
    user_ids = events["user_id"].to_numpy()
    bad_ids = user_ids[user_ids <= 0]
    if bad_ids.size:
        raise RawDayError(
            day, "impossible_values", f"{bad_ids.size} events have user ids <= 0 ({bad_ids[0]})"
        )
    keys = pa.table({"u": events["user_id"], "t": events["timestamp"], "e": events["event_code"]})
    unique = keys.group_by(["u", "t", "e"]).aggregate([]).num_rows
    if unique != keys.num_rows:
        raise RawDayError(
            day, "duplicates", f"{keys.num_rows - unique} of {keys.num_rows} events are repeats"
        )
    users = dataset.read_users(settings, day)
    index = pc.index_in(events["user_id"], value_set=users["user_id"])
    unknown = pc.is_null(index).to_numpy(zero_copy_only=False)
    if unknown.any():
        examples = np.unique(user_ids[unknown])[:5].tolist()
        raise RawDayError(
            day,
            "unknown_users",
            f"{int(unknown.sum())} events of {np.unique(user_ids[unknown]).size} users absent "
            f"from {naming.raw_users_path(settings, day)} (e.g. {examples})",
        )
    signup = pc.take(users["signup_date"].cast(pa.int32()), index).to_numpy()
    event_day = (day - dt.date(1970, 1, 1)).days
    early = signup > event_day
    if early.any():
        raise RawDayError(
            day,
            "impossible_values",
            f"{int(early.sum())} events of users who signed up after {day} "
            f"(e.g. user {user_ids[early][0]})",
        )
    check_volume(settings, day, events.num_rows)


def checked_events(settings: Settings, day: dt.date) -> pa.Table | None:
    """The validated events of `day`, or None when the skip policy dropped the day."""
    if not wait_for_arrival(settings, day):
        return None
    path = naming.raw_events_path(settings, day)
    events = dataset.read_events(path, day)
    try:
        check_events(settings, day, events)
    except RawDayError as error:
        if settings.raw_day_policy != "skip":
            raise
        record_gap(settings, error)
        return None
    return events
