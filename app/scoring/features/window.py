"""Window state per user, built from daily partials with Arrow kernels.

Three ways lead to the same state for a cutoff day (tests compare them):

- `aggregate_chunk` + `combine_states`: any group of partials is reduced with one Arrow
  `group_by`, and the per-group results are reduced again. Dask runs one task per group.
- `slide_state`: yesterday's state plus the new day minus the days that leave each window.
  All state columns are sums or a maximum over days that never leaves the window while the
  user stays in the population, so this is exact.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from scoring.features.daily import ALL_COLUMN, day_number
from scoring.features.spec import ALL_EVENTS, LAST_DAY, FeatureSpec, active_column


def state_schema(spec: FeatureSpec) -> pa.Schema:
    fields = [pa.field("user_id", pa.int64())]
    fields += [pa.field(column, pa.int32()) for column in spec.state_columns[1:-1]]
    fields.append(pa.field(LAST_DAY, pa.int32()))
    return pa.schema(fields)


def _source_column(event_type: str) -> str:
    return ALL_COLUMN if event_type == ALL_EVENTS else f"n_{event_type}"


def _reduce(table: pa.Table, spec: FeatureSpec) -> pa.Table:
    """Group by user: sum every count/active column, max of the last active day."""
    sums = [(column, "sum") for column in spec.state_columns[1:-1]]
    grouped = table.group_by("user_id", use_threads=False).aggregate([*sums, (LAST_DAY, "max")])
    renamed = grouped.rename_columns(
        [name.removesuffix("_sum").removesuffix("_max") for name in grouped.column_names]
    )
    return renamed.select(spec.state_columns).cast(state_schema(spec))


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
    combined = non_empty[0] if len(non_empty) == 1 else _reduce(pa.concat_tables(non_empty), spec)
    return _sorted_active(combined, spec)


def _sorted_active(state: pa.Table, spec: FeatureSpec) -> pa.Table:
    population = pc.greater(state[active_column(spec.aggregation_window)], 0)
    return state.filter(population).sort_by("user_id")


def _delta(
    partial: pa.Table, spec: FeatureSpec, sign: int, windows: set[int], last_day: int | None
) -> pa.Table:
    """State-shaped rows that add (sign=1) or remove (sign=-1) one day for some windows."""
    n = partial.num_rows
    zeros = pa.array([0] * n, pa.int32()) if n else pa.array([], pa.int32())
    columns = {"user_id": partial["user_id"]}
    for column, event_type, window in spec.count_columns:
        values = partial[_source_column(event_type)]
        columns[column] = pc.multiply(values, sign) if window in windows else zeros
    for window in spec.active_windows:
        columns[active_column(window)] = (
            pa.array([sign] * n, pa.int32()) if window in windows else zeros
        )
    columns[LAST_DAY] = pa.array([last_day] * n, pa.int32())
    return pa.table(columns).cast(state_schema(spec))


def slide_state(
    previous: pa.Table,
    cutoff: dt.date,
    new_partial: pa.Table,
    leaving_partials: dict[int, pa.Table],
    spec: FeatureSpec,
) -> pa.Table:
    """State at `cutoff` from the state at `cutoff - 1` without re-reading the window.

    `leaving_partials[w]` is the partial of day `cutoff - w`, which drops out of every
    window of length w.
    """
    pieces = [previous.cast(state_schema(spec))]
    pieces.append(_delta(new_partial, spec, 1, set(spec.windows), day_number(cutoff)))
    for window, partial in leaving_partials.items():
        pieces.append(_delta(partial, spec, -1, {window}, None))
    return _sorted_active(_reduce(pa.concat_tables(pieces), spec), spec)
