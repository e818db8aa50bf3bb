"""Feature tables for a scoring date, incrementally from daily partials or fully from raw.

For scoring date d the window covers the `aggregation_window` days ending at the feature
cutoff d - data_delay (inclusive). Nothing on or after the cutoff's next day is read: the
window is chosen by file day and every raw file is checked to only hold its own day.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dask import delayed

from scoring import atomic, fingerprints, naming
from scoring.compute import run_tasks
from scoring.data import checks, dataset, gaps
from scoring.data.labels import read_labels
from scoring.data.partials import PARTIAL_SCHEMA, day_number
from scoring.errors import LabelsSkipped, MissingInputError, RawDataError
from scoring.features.spec import LAST_DAY, FeatureSpec, active_column, count_column
from scoring.features.window import (
    aggregate_chunk,
    aggregate_events,
    combine_states,
    slide_state,
)
from scoring.settings import Settings

log = logging.getLogger(__name__)
# 6 tasks for a 90-day window. Measured on 2 threads from raw, when the tasks still went
# through daily partials (best of 2, load average 2 to 2.7): 8 days a task (12 tasks) took
# 1.2 s at 10M events and 4.2 s at 49M; 15 days 1.0 s and 3.2 s at the same peak RSS
# (1.5 GB at 49M), as there are half as many chunk states to build and to combine; 45 days
# (2 tasks) was no faster at 10M and took 2.4 GB at 49M.
DAYS_PER_TASK = 15
Mode = Literal["incremental", "partials", "raw"]


def window_days(settings: Settings, date: dt.date) -> list[dt.date]:
    cutoff = settings.feature_cutoff(date)
    first = cutoff - dt.timedelta(days=settings.aggregation_window - 1)
    return list(dataset.days_between(first, cutoff))


def _raw_events_path_checked(settings: Settings, day: dt.date, date: dt.date) -> Path:
    path = naming.raw_events_path(settings, day)
    if not path.exists():
        raise MissingInputError(
            f"{path}: raw events for {day} are needed for the features of {date} but are "
            "missing (the window needs every day; generate or deliver that day first)"
        )
    return path


# --- daily partials ------------------------------------------------------------------


def write_daily_partial(settings: Settings, day: dt.date, arrived: bool = True) -> Path | None:
    """Check the raw day, reduce it to its partial and record the raw file's fingerprint.

    A day that the skip policy dropped (not arrived, or failed a check) gets no partial:
    its gap, recorded by the checks, stands for it (see naming.standing_gaps).
    """
    raw = naming.raw_events_path(settings, day)
    partial = checks.checked_partial(settings, day) if arrived else None
    if partial is None:
        return None
    stamp = fingerprints.fingerprint(raw)
    target = naming.daily_partial_path(settings, day)
    atomic.write_parquet(
        fingerprints.with_fingerprint(partial, stamp), target, **atomic.FAST_PARQUET
    )
    gaps.clear_gap(settings, day)
    return target


def built_or_skipped(settings: Settings, days: list[dt.date]) -> list[dt.date]:
    """The days that need no work: a partial of the raw file as it is now, or a gap that
    stands under the skip policy."""
    skipped = set(gaps.skipped_days(settings, "events", days))
    current = set(checks.current_partials(settings, [d for d in days if d not in skipped]))
    return [day for day in days if day in skipped or day in current]


def ensure_daily_partials(settings: Settings, days: list[dt.date], progress: bool = True) -> None:
    """Build the partial of every day that has none, all of them at once in Dask tasks
    (a single day in this process).

    Before any work: a partial built from other content than the raw file has now fails
    the run ('changed'), and a missing or late day is handled by the raw-day policy. A day
    skipped before is left out while its gap stands.
    """
    # The raw files' fingerprints are kept by stat key: only new or changed files are read.
    cache = checks.raw_fingerprints(settings)
    skipped = set(gaps.skipped_days(settings, "events", days))
    try:
        todo = [
            d
            for d in days
            if d not in skipped and not checks.partial_is_current(settings, d, cache)
        ]
        for day in todo:
            checks.check_not_changed(settings, day, cache)
        arrived = {day: checks.wait_for_arrival(settings, day) for day in todo}
        results = []
        if len(todo) == 1:
            # The daily case: one day gains nothing from the cluster, and the round trip
            # to its scheduler costs about as much as the day's reduction itself.
            results = [_write_or_report(settings, todo[0], arrived[todo[0]])]
        elif todo:
            tasks = [delayed(_write_or_report)(settings, day, arrived[day]) for day in todo]
            # Every task finishes (none is left writing) before the first bad day is
            # reported.
            results = run_tasks(settings, tasks, "daily partials", progress)
        for _, kept in results:
            if kept is not None:  # the fingerprint the task took, so the next run need not
                cache.remember(kept)
    finally:
        cache.save()
    failures = [error for error, _ in results if error]
    if failures:
        raise failures[0]


def _write_or_report(
    settings: Settings, day: dt.date, arrived: bool
) -> tuple[RawDataError | None, tuple | None]:
    """The day's error, or the raw fingerprint its partial records (when it is kept)."""
    try:
        write_daily_partial(settings, day, arrived)
    except RawDataError as error:
        return error, None
    return None, fingerprints.kept_in_memory(naming.raw_events_path(settings, day))


def read_partial(settings: Settings, day: dt.date) -> pa.Table:
    """The day's partial; a day whose gap stands is one without activity."""
    path = naming.daily_partial_path(settings, day)
    if not path.exists() and gaps.skipped_days(settings, "events", [day]):
        return PARTIAL_SCHEMA.empty_table()
    return pq.read_table(path)


def _read_partials(paths_and_days: list[tuple[Path | None, dt.date]]) -> list[pa.Table]:
    # No path: a skipped day, without activity.
    return [
        pq.read_table(path) if path is not None else PARTIAL_SCHEMA.empty_table()
        for path, _ in paths_and_days
    ]


def _state_from_raw(
    paths_and_days: list[tuple[Path, dt.date]], cutoff: dt.date, spec: FeatureSpec
) -> pa.Table:
    events = [(day, dataset.read_events(path, day)) for path, day in paths_and_days]
    return aggregate_events(events, cutoff, spec)


def _state_from_partials(
    paths_and_days: list[tuple[Path, dt.date]], cutoff: dt.date, spec: FeatureSpec
) -> pa.Table:
    return aggregate_chunk(_read_partials(paths_and_days), cutoff, spec)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- window state --------------------------------------------------------------------


def state_from_files(
    settings: Settings,
    spec: FeatureSpec,
    date: dt.date,
    source: Literal["partials", "raw"],
    progress: bool = True,
) -> pa.Table:
    """Aggregate the whole window: a partial state per chunk of days in Dask tasks, then
    the combine. From raw, each task counts the events straight into the state, without
    daily partials."""
    cutoff = settings.feature_cutoff(date)
    days = window_days(settings, date)
    skipped = set(gaps.skipped_days(settings, "events", days))
    if source == "raw":
        inputs = [
            (_raw_events_path_checked(settings, d, date), d) for d in days if d not in skipped
        ]
        reduce = _state_from_raw
    else:
        inputs = [
            (None if d in skipped else naming.daily_partial_path(settings, d), d) for d in days
        ]
        reduce = _state_from_partials
    tasks = [delayed(reduce)(chunk, cutoff, spec) for chunk in _chunks(inputs, DAYS_PER_TASK)]
    states = run_tasks(settings, tasks, f"window {date} from {source}", progress)
    return combine_states(states, spec)


def window_state(
    settings: Settings,
    spec: FeatureSpec,
    date: dt.date,
    mode: Mode = "incremental",
    progress: bool = True,
) -> pa.Table:
    """The window state of `date`, written once under data/interim/window/ and reused.

    incremental: slide yesterday's stored state by one day when it exists, otherwise
        aggregate the stored daily partials (computing any missing partial first).
    partials / raw: always aggregate the whole window from partials / raw events.
    """
    target = naming.window_state_path(settings, date, spec.hash)
    if mode == "incremental" and target.exists():
        return atomic.read_arrow(target)
    if mode == "raw":
        state = state_from_files(settings, spec, date, "raw", progress)
    else:
        previous = naming.window_state_path(settings, date - dt.timedelta(days=1), spec.hash)
        if mode == "incremental" and previous.exists():
            state = _slid_state(settings, spec, date, previous, progress)
        else:
            # Raw files are only needed for days without a partial; ensure_daily_partials
            # names any that is missing.
            ensure_daily_partials(settings, window_days(settings, date), progress)
            state = state_from_files(settings, spec, date, "partials", progress)
    if mode == "incremental":
        atomic.write_arrow(state, target)
    return state


def _slid_state(
    settings: Settings, spec: FeatureSpec, date: dt.date, previous: Path, progress: bool
) -> pa.Table:
    """Yesterday's state slid by one day: the new day in, the days leaving each window out.

    While the window's partials are checked and the new day's is built (here when it is
    the only day to build, otherwise in Dask tasks), a thread reads the leaving days'
    partials that exist already. An existing partial is never replaced by other content
    (a partial whose raw day changed fails the checks), so what the thread read is what
    the checks pass.
    """
    cutoff = settings.feature_cutoff(date)
    leaving_days = {w: cutoff - dt.timedelta(days=w) for w in spec.windows}
    with ThreadPoolExecutor(1) as pool:
        early = {
            window: pool.submit(read_partial, settings, day)
            for window, day in leaving_days.items()
            if naming.daily_partial_path(settings, day).exists()
        }
        # One pass of checks (and one Dask batch) for the window and the leaving days,
        # most of which are in the window.
        days = dict.fromkeys([*window_days(settings, date), *leaving_days.values()])
        ensure_daily_partials(settings, list(days), progress)
        leaving = {
            window: early[window].result() if window in early else read_partial(settings, day)
            for window, day in leaving_days.items()
        }
    return slide_state(
        atomic.read_arrow(previous), cutoff, read_partial(settings, cutoff), leaving, spec
    )


# --- feature tables ------------------------------------------------------------------


def features_from_state(
    state: pa.Table, users: pa.Table, spec: FeatureSpec, date: dt.date, cutoff: dt.date
) -> pa.Table:
    """Feature table with columns id, date and the features in features.csv order."""
    cutoff_day = day_number(cutoff)
    user_index = dataset.index_in(state["user_id"], users["user_id"])
    signup = pc.take(users["signup_date"].cast(pa.int32()), user_index)
    premium = pc.take(users["is_premium"], user_index)
    columns: dict[str, pa.Array] = {
        "id": state["user_id"],
        "date": pa.array(np.full(state.num_rows, day_number(date), np.int32)).cast(pa.date32()),
    }
    for feature in spec.features:
        if feature.kind == "event_count":
            values = state[count_column(feature.event_type, feature.window)]
        elif feature.kind == "active_days":
            values = state[active_column(feature.window)]
        elif feature.kind == "days_since_last_event":
            values = pc.subtract(pa.scalar(cutoff_day, pa.int32()), state[LAST_DAY])
        elif feature.kind == "account_age_days":
            values = pc.subtract(pa.scalar(cutoff_day, pa.int32()), signup)
        else:  # is_premium
            values = pc.cast(pc.fill_null(premium, False), pa.int8())
        columns[feature.name] = values
    return pa.table(columns)


def build_features(
    settings: Settings,
    spec: FeatureSpec,
    date: dt.date,
    mode: Mode = "incremental",
    progress: bool = True,
) -> pa.Table:
    state = window_state(settings, spec, date, mode, progress)
    # User attributes as of the cutoff: the snapshot of that day, never a later one.
    users = checks.users_as_of(settings, settings.feature_cutoff(date))
    return features_from_state(state, users, spec, date, settings.feature_cutoff(date))


def add_labels(settings: Settings, features: pa.Table, date: dt.date) -> pa.Table:
    """The features with the 0/1 label; no rows for a date whose labels were skipped."""
    try:
        converted = read_labels(settings, date)
    except LabelsSkipped as skipped:
        log.warning("%s", skipped)
        features, converted = features.slice(0, 0), np.array([], dtype=np.int64)
    labels = pc.is_in(features["id"], value_set=pa.array(converted, pa.int64()))
    return features.append_column("target", pc.cast(labels, pa.int8()))
