"""Window state per user, built from daily partials.

Three ways lead to the same state for a cutoff day (tests compare them):

- `aggregate_chunk` + `combine_states`: each group of partials is added day by day into
  numpy columns indexed by user id (one slot per id in the group's id range; sparse ids
  fall back to sorted segment sums), and the per-group results are added column by
  column. Dask runs one task per group of days.
- `aggregate_events` + `combine_states`: the same from raw events, without daily partials:
  each event is counted straight into its user's slot, and a bitmap per user holds the
  days with activity.
- `slide_state`: yesterday's state plus the new day minus the days that leave each window.
  All state columns are sums or a maximum over days that never leaves the window while the
  user stays in the population, so this is exact.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.data.partials import ALL_COLUMN, daily_partial, day_number
from scoring.data.schema import EVENT_TYPES
from scoring.features.spec import ALL_EVENTS, LAST_DAY, FeatureSpec, active_column

# Stands for "no day" in last-day maxima (rows that only remove counts).
NO_DAY = np.iinfo(np.int32).min
# Threads for the slide's column copies: numpy's take and searchsorted release the GIL.
SLIDE_THREADS = max(1, min(4, os.cpu_count() or 1))


def _each(function: Callable, items: Iterable) -> list:
    """`function` of every item, on up to SLIDE_THREADS threads, in the items' order."""
    items = list(items)
    if SLIDE_THREADS == 1 or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(SLIDE_THREADS, len(items))) as pool:
        return list(pool.map(function, items))


def state_schema(spec: FeatureSpec) -> pa.Schema:
    fields = [pa.field("user_id", pa.int64())]
    fields += [pa.field(column, pa.int32()) for column in spec.state_columns[1:-1]]
    fields.append(pa.field(LAST_DAY, pa.int32()))
    return pa.schema(fields)


def _source_column(event_type: str) -> str:
    return ALL_COLUMN if event_type == ALL_EVENTS else f"n_{event_type}"


def _reduce(table: pa.Table, spec: FeatureSpec) -> pa.Table:
    """Group by user: sum every count/active column, max of the last active day.

    The input here is already aggregated (small integer matrices, often nearly sorted by
    user), so a stable sort plus numpy's segment reductions beats a hash aggregation with
    a dozen aggregates, and the result comes out sorted by user id.
    """
    schema = state_schema(spec)
    if table.num_rows == 0:
        return schema.empty_table()
    user_ids = table["user_id"].to_numpy()
    order = np.argsort(user_ids, kind="stable")
    sorted_ids = user_ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    columns = {"user_id": sorted_ids[starts]}
    for name in spec.state_columns[1:-1]:
        values = table[name].to_numpy().astype(np.int64)[order]
        columns[name] = np.add.reduceat(values, starts).astype(np.int32)
    last_day = pc.fill_null(table[LAST_DAY], NO_DAY).to_numpy()[order]
    columns[LAST_DAY] = np.maximum.reduceat(last_day, starts)
    return pa.table(columns, schema=schema)


# Dense accumulation (one slot per id between the smallest and the largest) is used while
# that range stays within this many slots per input row, or below DENSE_MIN_SLOTS; sparse
# ids fall back to the sort-based _reduce.
DENSE_SLOTS_PER_ROW = 4
DENSE_MIN_SLOTS = 1 << 21


def _dense_fits(first_id: int, last_id: int, rows: int) -> bool:
    return last_id - first_id + 1 <= max(DENSE_SLOTS_PER_ROW * rows, DENSE_MIN_SLOTS)


# Scratch buffers of the process, lent to one user at a time: the chunks' Dask tasks
# and the combine after them (in the same process with the in-process cluster).
_free_buffers: list[np.ndarray] = []
_buffers_lock = threading.Lock()


@contextmanager
def _zeroed_block(rows: int, size: int) -> Iterator[np.ndarray]:
    """A zeroed int32 (rows, size) block, lent from the process's scratch buffers.

    Fresh memory costs a page fault per page on first touch (on a virtual machine the
    host's as well); a lent buffer is warm from the second use on, whichever thread used
    it before. The block is only valid inside the `with`.
    """
    with _buffers_lock:
        fits = [i for i, b in enumerate(_free_buffers) if b.size >= rows * size]
        if fits:
            buffer = _free_buffers.pop(min(fits, key=lambda i: _free_buffers[i].size))
        else:
            if _free_buffers:  # a larger one replaces the largest that is too small
                _free_buffers.pop(
                    max(range(len(_free_buffers)), key=lambda i: _free_buffers[i].size)
                )
            buffer = None
    if buffer is None:
        buffer = np.empty(rows * size, np.int32)
    try:
        block = buffer[: rows * size].reshape(rows, size)
        block.fill(0)
        yield block
    finally:
        with _buffers_lock:
            _free_buffers.append(buffer)


class _DenseState:
    """State columns as numpy arrays indexed by `user_id - first_id`, for ids in a range.

    Rows are collected with `add_day` / `add_state` and added into the columns by
    `table`. The arrays live in a lent scratch block; the tables returned hold copies.
    """

    def __init__(self, spec: FeatureSpec, first_id: int, last_id: int, youngest_age: int = 0):
        """Columns of windows that end before `youngest_age` stay zero and are not kept."""
        self.spec = spec
        self.first_id = first_id
        self.size = last_id - first_id + 1
        names = [column for column, _, window in spec.count_columns if window > youngest_age]
        names += [active_column(w) for w in spec.active_windows if w > youngest_age]
        self.names = names
        # (sorted unique slots, values by column name, last day: a day number or an array)
        self.sources: list[tuple[np.ndarray, dict[str, np.ndarray], int | np.ndarray]] = []

    def add_day(self, ids: np.ndarray, partial: pa.Table, age: int, day: int) -> None:
        """One day's partial rows at `age` days before the cutoff (rows of a user add up)."""
        values = {}
        for column, event_type, window in self.spec.count_columns:
            if age < window:
                source = partial[_source_column(event_type)].to_numpy()
                values[column] = source.astype(np.int32, copy=False)
        ones = np.ones(ids.size, np.int32)
        for window in self.spec.active_windows:
            if age < window:
                values[active_column(window)] = ones
        self.sources.append((ids - self.first_id, values, day))

    def add_state(self, state: pa.Table) -> None:
        """A partial window state, perhaps with only some of the columns."""
        ids = state["user_id"].to_numpy()
        values = {
            name: state[name].to_numpy().astype(np.int32, copy=False)
            for name in state.column_names
            if name in self.names
        }
        last = pc.fill_null(state[LAST_DAY], NO_DAY).to_numpy()
        self.sources.append((ids - self.first_id, values, last))

    def _scatter(self, block: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        columns = dict(zip(self.names, block, strict=True))
        last_day = np.full(self.size, NO_DAY, np.int32)
        # Sources in the order added: days ascending, so later days overwrite last_day.
        # np.add.at with values of the column's own dtype measured faster than
        # `column[slots] += values` (and blocking the ids for the cache did not pay).
        for slots, values, last in self.sources:
            for name, column_values in values.items():
                np.add.at(columns[name], slots, column_values)
            if isinstance(last, np.ndarray):
                np.maximum.at(last_day, slots, last)
            else:
                last_day[slots] = last
        return columns, last_day

    def table(self, all_columns: bool) -> pa.Table:
        """Rows of the users with activity in the aggregation window, sorted by id.

        all_columns=False (a chunk's partial state): users with any row, and only the
        columns that can be non-zero.
        """
        schema = state_schema(self.spec)
        kept = {}
        with _zeroed_block(len(self.names), self.size) as block:
            columns, last_day = self._scatter(block)
            population = active_column(self.spec.aggregation_window)
            if all_columns:
                keep = np.flatnonzero(columns[population] > 0)
            else:
                keep = np.flatnonzero(last_day != NO_DAY)
            for name in schema.names[1:-1]:
                if name in columns:
                    kept[name] = columns[name][keep]
                elif all_columns:
                    kept[name] = np.zeros(keep.size, np.int32)
        names = ["user_id", *kept, LAST_DAY]
        return pa.table(
            {"user_id": keep + self.first_id, **kept, LAST_DAY: last_day[keep]},
            schema=pa.schema([schema.field(name) for name in names]),
        )


def _id_range(tables: list[pa.Table]) -> tuple[int, int]:
    bounds = [pc.min_max(t["user_id"]).as_py() for t in tables]
    return min(b["min"] for b in bounds), max(b["max"] for b in bounds)


def _aggregate_sorted(table: pa.Table, cutoff: dt.date, spec: FeatureSpec) -> pa.Table:
    """The sort-based aggregation of concatenated partials (for sparse user ids)."""
    day = table["day"].cast(pa.int32())
    age = pc.subtract(pa.scalar(day_number(cutoff), pa.int32()), day)
    columns = {"user_id": table["user_id"]}
    zero = pa.scalar(0, pa.int32())
    for column, event_type, window in spec.count_columns:
        inside = pc.less(age, window)
        columns[column] = pc.if_else(inside, table[_source_column(event_type)], zero)
    for window in spec.active_windows:
        columns[active_column(window)] = pc.cast(pc.less(age, window), pa.int32())
    columns[LAST_DAY] = day
    return _reduce(pa.table(columns), spec)


def aggregate_chunk(partials: list[pa.Table], cutoff: dt.date, spec: FeatureSpec) -> pa.Table:
    """Reduce some daily partials (all on or before `cutoff`) to a partial window state.

    The result has one row per user of the partials, sorted by id. With dense ids the
    columns of windows that end before the chunk's latest day are left out, as they are
    all zero; only combine_states reads such a partial state.
    """
    partials = [p for p in partials if p.num_rows]
    if not partials:
        return state_schema(spec).empty_table()
    cutoff_day = day_number(cutoff)
    days = []  # (day number, partial rows of that day)
    for partial in partials:
        day = partial["day"].cast(pa.int32())
        bounds = pc.min_max(day).as_py()
        if bounds["max"] > cutoff_day:
            raise ValueError(f"a partial after the cutoff {cutoff} reached the window aggregation")
        if bounds["min"] == bounds["max"]:
            days.append((bounds["min"], partial))
        else:  # not one day's partial: split it by day
            for value in pc.unique(day).to_pylist():
                days.append((value, partial.filter(pc.equal(day, value))))
    first_id, last_id = _id_range(partials)
    rows = sum(p.num_rows for p in partials)
    if not _dense_fits(first_id, last_id, rows):
        return _aggregate_sorted(pa.concat_tables(partials), cutoff, spec)
    days.sort(key=lambda item: item[0])
    dense = _DenseState(spec, first_id, last_id, youngest_age=cutoff_day - days[-1][0])
    for day, partial in days:
        dense.add_day(partial["user_id"].to_numpy(), partial, cutoff_day - day, day)
    return dense.table(all_columns=False)


# Days of one aggregate_events call: one bit each in a per-user bitmap of up to 64 bits.
EVENT_DAYS_MAX = 64


def _bitmap_dtype(days: int) -> type:
    """The smallest unsigned integer with a bit for each of `days` days."""
    return next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if days <= t(0).itemsize * 8)


def aggregate_events(
    days: list[tuple[dt.date, pa.Table]], cutoff: dt.date, spec: FeatureSpec
) -> pa.Table:
    """What aggregate_chunk gives for the daily partials of these days, from their events.

    `days` holds each day with its events as `dataset.read_events` returns them. With
    dense ids, each event is added once into a counter of its user, event type and age
    range (the windows' ends cut the days into ranges that count towards the same
    columns), and each day sets one bit of its users' activity bitmaps: the active days of
    a window are the bits inside it, the last active day is the lowest bit. No per-day
    sort or partial table is made. Sparse ids take the daily partials and aggregate_chunk.
    """
    cutoff_day = day_number(cutoff)
    days = [(day, events) for day, events in days if events.num_rows]
    if not days:
        return state_schema(spec).empty_table()
    if max(day for day, _ in days) > cutoff:
        raise ValueError(f"a day after the cutoff {cutoff} reached the window aggregation")
    first_id, last_id = _id_range([events for _, events in days])
    rows = sum(events.num_rows for _, events in days)
    ages = [cutoff_day - day_number(day) for day, _ in days]
    youngest, oldest = min(ages), max(ages)
    if not _dense_fits(first_id, last_id, rows) or oldest - youngest >= EVENT_DAYS_MAX:
        partials = [daily_partial(events, day) for day, events in days]
        return aggregate_chunk(partials, cutoff, spec)

    edges = [w for w in spec.windows if youngest < w <= oldest]
    ranges = len(edges) + 1  # age ranges: [youngest, edges[0]), ..., [edges[-1], oldest]
    size = last_id - first_id + 1
    bitmaps = np.zeros(size, _bitmap_dtype(oldest - youngest + 1))
    ones = np.ones(max(events.num_rows for _, events in days), np.int32)
    # One row of counters per event type and age range, one slot per user id.
    with _zeroed_block(len(EVENT_TYPES) * ranges, size) as counters:
        flat = counters.reshape(-1)
        for age, (_, events) in zip(ages, days, strict=True):
            slots = events["user_id"].to_numpy() - first_id
            counter = events["event_code"].to_numpy().astype(np.int64) * ranges
            counter += bisect_right(edges, age)
            # ufunc.at with an array of the target's dtype takes numpy's fast path.
            np.add.at(flat, counter * size + slots, ones[: slots.size])
            # A user's repeated events write the same value: the bit of this day.
            bitmaps[slots] |= bitmaps.dtype.type(1 << (age - youngest))
        keep = np.flatnonzero(bitmaps)
        kept = counters[:, keep].reshape(len(EVENT_TYPES), ranges, keep.size)
    active = bitmaps[keep]
    columns = {}
    for column, event_type, window in spec.count_columns:
        if window > youngest:
            inside = kept[:, : bisect_left(edges, window) + 1]
            if event_type != ALL_EVENTS:
                inside = inside[EVENT_TYPES.index(event_type)]
            columns[column] = inside.reshape(-1, keep.size).sum(axis=0, dtype=np.int32)
    for window in spec.active_windows:
        if window > youngest:
            mask = active.dtype.type((1 << min(window - youngest, active.dtype.itemsize * 8)) - 1)
            columns[active_column(window)] = np.bitwise_count(active & mask).astype(np.int32)
    one = active.dtype.type(1)
    youngest_bit = active & (~active + one)
    last_day = cutoff_day - youngest - np.bitwise_count(youngest_bit - one).astype(np.int32)
    schema = state_schema(spec)
    names = ["user_id", *(name for name in schema.names[1:-1] if name in columns), LAST_DAY]
    return pa.table(
        {"user_id": keep + first_id, **columns, LAST_DAY: last_day},
        schema=pa.schema([schema.field(name) for name in names]),
    )


def _complete(state: pa.Table, spec: FeatureSpec) -> pa.Table:
    """A chunk's partial state with every column present."""
    schema = state_schema(spec)
    columns = [
        state[name] if name in state.column_names else pa.array(np.zeros(state.num_rows, np.int32))
        for name in schema.names
    ]
    return pa.table(columns, schema=schema)


def combine_states(states: list[pa.Table], spec: FeatureSpec) -> pa.Table:
    """The combine step after per-chunk aggregation; also drops users without activity."""
    non_empty = [s for s in states if s.num_rows]
    if not non_empty:
        return state_schema(spec).empty_table()
    first_id, last_id = _id_range(non_empty)
    rows = sum(s.num_rows for s in non_empty)
    if not _dense_fits(first_id, last_id, rows):
        complete = [_complete(state, spec) for state in non_empty]
        return _sorted_active(_reduce(pa.concat_tables(complete), spec), spec)
    dense = _DenseState(spec, first_id, last_id)
    for state in non_empty:
        dense.add_state(state)
    return dense.table(all_columns=True)


def _sorted_active(state: pa.Table, spec: FeatureSpec) -> pa.Table:
    """Keep users with activity in the aggregation window, sorted by user id."""
    population = pc.greater(state[active_column(spec.aggregation_window)], 0)
    return state.filter(population)  # _reduce already sorted it


def _rows_in(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Positions of `ids` in `sorted_ids`; every id must be there."""
    rows = np.searchsorted(sorted_ids, ids)
    found = sorted_ids[np.minimum(rows, sorted_ids.size - 1)] == ids if sorted_ids.size else None
    if ids.size and (found is None or not found.all()):
        raise ValueError("a leaving day has users missing from the previous state")
    return rows


def slide_state(
    previous: pa.Table,
    cutoff: dt.date,
    new_partial: pa.Table,
    leaving_partials: dict[int, pa.Table],
    spec: FeatureSpec,
) -> pa.Table:
    """State at `cutoff` from the state at `cutoff - 1` without re-reading the window.

    `leaving_partials[w]` is the partial of day `cutoff - w`, which drops out of every
    window of length w. Only the rows of users in the new or leaving days are touched:
    the previous state is sorted by user id, so they are found by binary search. Users
    who leave the population (their one active day of the window is the day leaving it)
    are found first, so every column is copied once (one gather), with them left out and
    the new users inserted in order.
    """
    previous_ids = previous["user_id"].to_numpy()
    new_ids = new_partial["user_id"].to_numpy()
    # New users are inserted in order; np.union1d would re-sort (or hash) the whole state.
    slots = np.searchsorted(previous_ids, new_ids)
    known = np.zeros(new_ids.size, dtype=bool)
    if previous_ids.size:
        known = previous_ids[np.minimum(slots, previous_ids.size - 1)] == new_ids
    insert_at, inserted = slots[~known], new_ids[~known]
    leaving_rows = dict(
        zip(
            leaving_partials,
            _each(
                lambda partial: _rows_in(partial["user_id"].to_numpy(), previous_ids),
                leaving_partials.values(),
            ),
            strict=True,
        )
    )
    population = active_column(spec.aggregation_window)
    drop = np.array([], dtype=np.intp)
    if spec.aggregation_window in leaving_rows:
        rows = leaving_rows[spec.aggregation_window]
        alone = rows[previous[population].to_numpy()[rows] == 1]
        drop = np.setdiff1d(alone, slots[known], assume_unique=True)

    # Where the new users go once the dropped rows are gone, and which old row fills each
    # row of the new state: every column is then one gather (new users get 0 / NO_DAY).
    inserted_at = insert_at - np.searchsorted(drop, insert_at)
    new_positions = inserted_at + np.arange(inserted.size)
    kept_rows = np.delete(np.arange(previous_ids.size), drop) if drop.size else None
    source = np.insert(
        np.arange(previous_ids.size) if kept_rows is None else kept_rows, inserted_at, 0
    )

    def final_rows(previous_rows: np.ndarray) -> np.ndarray:
        """Rows in the new state of rows (not dropped) of the previous state."""
        after_drop = previous_rows - np.searchsorted(drop, previous_rows)
        return after_drop + np.searchsorted(inserted_at, after_drop, side="right")

    def copied(values: np.ndarray, fill) -> np.ndarray:
        result = values.take(source)
        result[new_positions] = fill
        return result

    # Every column is copied once, the columns side by side on the slide's threads.
    names = spec.state_columns[1:-1]
    user_ids, last_day, *copies = _each(
        lambda job: copied(*job),
        [(previous_ids, inserted), (previous[LAST_DAY].to_numpy(), NO_DAY)]
        + [(previous[name].to_numpy(), 0) for name in names],
    )
    columns = dict(zip(names, copies, strict=True))

    def apply(partial: pa.Table, rows: np.ndarray, sign: int, windows: set[int], keep=None):
        add = np.add.at if sign > 0 else np.subtract.at
        for column, event_type, window in spec.count_columns:
            if window in windows:
                values = partial[_source_column(event_type)].to_numpy().astype(np.int32)
                add(columns[column], rows, values if keep is None else values[keep])
        ones = np.ones(rows.size, np.int32)
        for window in spec.active_windows:
            if window in windows:
                add(columns[active_column(window)], rows, ones)

    new_rows = np.empty(new_ids.size, np.intp)
    new_rows[known] = final_rows(slots[known])
    new_rows[~known] = new_positions
    apply(new_partial, new_rows, 1, set(spec.windows))
    last_day[new_rows] = day_number(cutoff)
    for window, partial in leaving_partials.items():
        rows, keep = leaving_rows[window], None
        if window == spec.aggregation_window and drop.size:
            keep = ~np.isin(rows, drop, assume_unique=True)
            rows = rows[keep]
        apply(partial, final_rows(rows), -1, {window}, keep)

    return pa.table({"user_id": user_ids, **columns, LAST_DAY: last_day}, schema=state_schema(spec))
