"""Window state per user, built from daily partials.

Three ways lead to the same state for a cutoff day (tests compare them):

- `aggregate_chunk` + `combine_states`: any group of partials is masked per window with
  Arrow compute kernels and reduced per user with sorted segment sums; the per-group
  results are reduced the same way. Dask runs one task per group of days.
- `slide_state`: yesterday's state plus the new day minus the days that leave each window.
  All state columns are sums or a maximum over days that never leaves the window while the
  user stays in the population, so this is exact.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.features.daily import ALL_COLUMN, day_number
from scoring.features.spec import ALL_EVENTS, LAST_DAY, FeatureSpec, active_column

# Stands for "no day" in last-day maxima (rows that only remove counts).
NO_DAY = np.iinfo(np.int32).min


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


def aggregate_chunk(partials: list[pa.Table], cutoff: dt.date, spec: FeatureSpec) -> pa.Table:
    """Reduce some daily partials (all on or before `cutoff`) to a partial window state."""
    if not partials:
        return state_schema(spec).empty_table()
    table = pa.concat_tables(partials)
    day = table["day"].cast(pa.int32())
    age = pc.subtract(pa.scalar(day_number(cutoff), pa.int32()), day)
    if table.num_rows and pc.min(age).as_py() < 0:
        raise ValueError(f"a partial after the cutoff {cutoff} reached the window aggregation")
    columns = {"user_id": table["user_id"]}
    zero = pa.scalar(0, pa.int32())
    for column, event_type, window in spec.count_columns:
        inside = pc.less(age, window)
        columns[column] = pc.if_else(inside, table[_source_column(event_type)], zero)
    for window in spec.active_windows:
        columns[active_column(window)] = pc.cast(pc.less(age, window), pa.int32())
    columns[LAST_DAY] = day
    return _reduce(pa.table(columns), spec)


def combine_states(states: list[pa.Table], spec: FeatureSpec) -> pa.Table:
    """The combine step after per-chunk aggregation; also drops users without activity."""
    non_empty = [s for s in states if s.num_rows]
    if not non_empty:
        return state_schema(spec).empty_table()
    combined = _reduce(pa.concat_tables(non_empty), spec)
    return _sorted_active(combined, spec)


def _sorted_active(state: pa.Table, spec: FeatureSpec) -> pa.Table:
    """Keep users with activity in the aggregation window, sorted by user id."""
    population = pc.greater(state[active_column(spec.aggregation_window)], 0)
    return state.filter(population)  # _reduce already sorted it


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
    the previous state is sorted by user id, so they are found by binary search.
    """
    previous_ids = previous["user_id"].to_numpy()
    new_ids = new_partial["user_id"].to_numpy()
    # New users are inserted in order; np.union1d would re-sort (or hash) the whole state.
    slots = np.searchsorted(previous_ids, new_ids)
    known = np.zeros(new_ids.size, dtype=bool)
    if previous_ids.size:
        known = previous_ids[np.minimum(slots, previous_ids.size - 1)] == new_ids
    insert_at, inserted = slots[~known], new_ids[~known]
    user_ids = np.insert(previous_ids, insert_at, inserted)
    # One writable array per column (np.insert copies), new users starting at zero.
    columns = {
        name: np.insert(previous[name].to_numpy(), insert_at, 0)
        for name in spec.state_columns[1:-1]
    }
    last_day = np.insert(previous[LAST_DAY].to_numpy(), insert_at, NO_DAY)

    def apply(partial: pa.Table, sign: int, windows: set[int]) -> None:
        ids = partial["user_id"].to_numpy()
        rows = np.searchsorted(user_ids, ids)
        if sign < 0 and not np.array_equal(user_ids[np.minimum(rows, user_ids.size - 1)], ids):
            raise ValueError("a leaving day has users missing from the previous state")
        for column, event_type, window in spec.count_columns:
            if window in windows:
                values = partial[_source_column(event_type)].to_numpy()
                columns[column][rows] += sign * values
        for window in spec.active_windows:
            if window in windows:
                columns[active_column(window)][rows] += sign

    apply(new_partial, 1, set(spec.windows))
    last_day[np.searchsorted(user_ids, new_ids)] = day_number(cutoff)
    for window, partial in leaving_partials.items():
        apply(partial, -1, {window})

    state = pa.table(
        {"user_id": user_ids, **columns, LAST_DAY: last_day}, schema=state_schema(spec)
    )
    if columns[active_column(spec.aggregation_window)].min(initial=1) > 0:
        return state  # nobody left the population: skip the copy a filter would make
    return _sorted_active(state, spec)
