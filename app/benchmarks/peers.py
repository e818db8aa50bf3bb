"""The DuckDB peers of the scoring code, and the whole-table comparison of their results.

- `full_state`: the window state in one pass over the window's raw files, as a DuckDB user
  would write it: one `count(*) FILTER (...)` per count column, the active days of every
  window as `bit_count` of a per-user bitmap of ages (`bit_or(1::HUGEINT << age)`, masked
  for the shorter windows), the last active day as a maximum.
- `partial` and `slide_state`: the daily job's own algorithm in SQL: the new day's per-user
  counts, then yesterday's state plus the new day minus the days that leave each window.
- `test_set`: the feature table of a date from a window state and the users table.
- `compare_tables`: every value and every null of two tables, rows matched by sorted id.

Used by `features.py` and by the equality test in app/tests. Needs duckdb
(requirements-dev.txt).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scoring import naming
from scoring.data.partials import ALL_COLUMN, COUNT_COLUMNS, day_number
from scoring.data.schema import EVENT_TYPES
from scoring.features.spec import ALL_EVENTS, LAST_DAY, FeatureSpec, active_column

# HUGEINT has 128 bits: one per day of age, so windows up to 127 days fit in one bitmap.
MAX_BITMAP_DAYS = 127


def users_file(settings, cutoff: dt.date) -> Path:
    """The users table that the features of a window ending at `cutoff` read."""
    per_day = getattr(naming, "raw_users_path", None)  # one snapshot per day
    return per_day(settings, cutoff) if per_day else settings.users_path


def connect(threads: int = 2):
    import duckdb  # noqa: PLC0415

    connection = duckdb.connect()
    connection.execute(f"SET threads TO {threads}")
    return connection


def _files(paths: list[Path | str]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def _mask(window: int) -> str:
    return f"((1::HUGEINT << {window}) - 1)"


def full_state_sql(spec: FeatureSpec, files: list[Path | str], cutoff: dt.date) -> str:
    """One pass: the window state of every user active in the files (all inside the window)."""
    if spec.aggregation_window > MAX_BITMAP_DAYS:
        raise ValueError(f"windows above {MAX_BITMAP_DAYS} days do not fit the age bitmap")
    columns = []
    for column, event_type, window in spec.count_columns:
        conditions = [] if event_type == ALL_EVENTS else [f"event_type = '{event_type}'"]
        if window < spec.aggregation_window:  # every event in the files is inside the window
            conditions.append(f"age < {window}")
        where = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
        columns.append(f"count(*){where}::INTEGER AS {column}")
    for window in spec.active_windows:
        bitmap = "bit_or(1::HUGEINT << age)"
        if window < spec.aggregation_window:
            bitmap = f"({bitmap} & {_mask(window)})"
        columns.append(f"bit_count({bitmap})::INTEGER AS {active_column(window)}")
    columns.append(f"({day_number(cutoff)} - min(age))::INTEGER AS {LAST_DAY}")
    age = f"{day_number(cutoff)} - (epoch_us(timestamp) // 86400000000)::INTEGER"
    return (
        f"SELECT user_id::BIGINT AS user_id, {', '.join(columns)} "
        f"FROM (SELECT user_id, event_type, {age} AS age FROM read_parquet({_files(files)})) "
        "GROUP BY user_id ORDER BY user_id"
    )


def full_state(connection, spec: FeatureSpec, files: list[Path | str], cutoff: dt.date):
    return connection.sql(full_state_sql(spec, files, cutoff)).to_arrow_table()


def partial_sql(raw_file: Path | str, day: dt.date) -> str:
    """The new day's per-user counts, in the layout of the project's daily partials."""
    counts = ", ".join(
        f"count(*) FILTER (WHERE event_type = '{t}')::INTEGER AS {name}"
        for t, name in zip(EVENT_TYPES, COUNT_COLUMNS, strict=True)
    )
    return (
        f"SELECT user_id::BIGINT AS user_id, DATE '{day}' AS day, {counts}, "
        f"count(*)::INTEGER AS {ALL_COLUMN} FROM read_parquet('{raw_file}') "
        "GROUP BY user_id ORDER BY user_id"
    )


def write_partial(connection, raw_file: Path | str, day: dt.date, target: Path) -> None:
    connection.execute(
        f"COPY ({partial_sql(raw_file, day)}) TO '{target}' (FORMAT parquet, COMPRESSION lz4)"
    )


def _source(event_type: str) -> str:
    return ALL_COLUMN if event_type == ALL_EVENTS else f"n_{event_type}"


def slide_sql(
    spec: FeatureSpec,
    previous: str,
    cutoff: dt.date,
    new_partial: str,
    leaving: dict[int, str],
) -> str:
    """Yesterday's state + the new day - the day leaving each window, per user.

    `previous`, `new_partial` and the values of `leaving` are relations (table names or
    `read_parquet(...)`). The changes are summed per user first (a few hundred thousand
    rows), then joined to the state, so the state is read once and never re-grouped.
    """
    counts = [column for column, _, _ in spec.count_columns]
    actives = [active_column(w) for w in spec.active_windows]
    arrivals = [f"{_source(t)} AS {c}" for c, t, _ in spec.count_columns]
    arrivals += [f"1 AS {a}" for a in actives]
    parts = [
        f"SELECT user_id, {', '.join(arrivals)}, {day_number(cutoff)} AS {LAST_DAY} "
        f"FROM {new_partial}"
    ]
    for window, relation in sorted(leaving.items()):
        values = [
            (f"-{_source(t)}" if w == window else "0") + f" AS {c}"
            for c, t, w in spec.count_columns
        ]
        values += [
            ("-1" if w == window else "0") + f" AS {active_column(w)}" for w in spec.active_windows
        ]
        parts.append(
            f"SELECT user_id, {', '.join(values)}, NULL::INTEGER AS {LAST_DAY} FROM {relation}"
        )
    sums = ", ".join(f"sum({c})::INTEGER AS {c}" for c in [*counts, *actives])
    merged = [
        f"(coalesce(p.{c}, 0) + coalesce(d.{c}, 0))::INTEGER AS {c}" for c in [*counts, *actives]
    ]
    population = active_column(spec.aggregation_window)
    return (
        f"WITH delta AS (SELECT user_id, {sums}, max({LAST_DAY}) AS {LAST_DAY} "
        f"FROM ({' UNION ALL '.join(parts)}) GROUP BY user_id) "
        f"SELECT user_id::BIGINT AS user_id, {', '.join(merged)}, "
        f"coalesce(d.{LAST_DAY}, p.{LAST_DAY})::INTEGER AS {LAST_DAY} "
        f"FROM {previous} p FULL OUTER JOIN delta d USING (user_id) "
        f"WHERE coalesce(p.{population}, 0) + coalesce(d.{population}, 0) > 0 "
        "ORDER BY user_id"
    )


def slide_state(
    connection,
    spec: FeatureSpec,
    previous,
    *,
    cutoff: dt.date,
    new_partial: Path | str,
    leaving: dict[int, Path | str],
) -> pa.Table:
    """`previous` is an Arrow table (a memory-mapped IPC file) or a parquet path."""
    if isinstance(previous, pa.Table):
        connection.register("previous_state", previous)
        previous_relation = "previous_state"
    else:
        previous_relation = f"read_parquet('{previous}')"
    query = slide_sql(
        spec,
        previous_relation,
        cutoff,
        f"read_parquet('{new_partial}')",
        {w: f"read_parquet('{path}')" for w, path in leaving.items()},
    )
    try:
        return connection.sql(query).to_arrow_table()
    finally:
        if isinstance(previous, pa.Table):
            connection.unregister("previous_state")


def test_set_sql(spec: FeatureSpec, state: str, users: str, date: dt.date, cutoff: dt.date) -> str:
    """Features in features.csv order from a window state relation and the users table."""
    columns = ["s.user_id AS id", f"DATE '{date}' AS date"]
    for feature in spec.features:
        if feature.kind == "event_count":
            value = f"s.count__{feature.event_type}__{feature.window}"
        elif feature.kind == "active_days":
            value = f"s.{active_column(feature.window)}"
        elif feature.kind == "days_since_last_event":
            value = f"({day_number(cutoff)} - s.{LAST_DAY})::INTEGER"
        elif feature.kind == "account_age_days":
            value = f"(DATE '{cutoff}' - u.signup_date::DATE)::INTEGER"
        else:
            value = "coalesce(u.is_premium, false)::TINYINT"
        columns.append(f"{value} AS {feature.name}")
    return (
        f"SELECT {', '.join(columns)} FROM {state} s LEFT JOIN {users} u "
        "ON u.user_id = s.user_id ORDER BY s.user_id"
    )


# --- comparison ----------------------------------------------------------------------


def _normalised(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Exact dtypes compared by value: integers (and dates) as int64, floats as float64."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_date(column.type):
        column = column.cast(pa.int32())
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int8())
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    if pa.types.is_floating(column.type):
        return column.cast(pa.float64())
    return column


def compare_tables(expected: pa.Table, actual: pa.Table, what: str, key: str | None = None):
    """Raise AssertionError naming the first difference: columns, rows, values or nulls.

    Rows are matched after sorting both tables by `key` (the first column by default);
    the key must be unique. Floats must be equal bit for bit, like everything else.
    """
    key = key or expected.column_names[0]
    if expected.column_names != actual.column_names:
        raise AssertionError(
            f"{what}: columns differ:\n  {expected.column_names}\n  {actual.column_names}"
        )
    if expected.num_rows != actual.num_rows:
        raise AssertionError(f"{what}: {expected.num_rows} rows expected, {actual.num_rows}")
    tables = []
    for table in (expected, actual):
        ordered = table.sort_by(key).combine_chunks()
        ids = ordered[key].to_numpy()
        if ids.size > 1 and not (ids[1:] > ids[:-1]).all():
            raise AssertionError(f"{what}: the key {key} is not unique")
        tables.append(ordered)
    left, right = tables
    for name in expected.column_names:
        a, b = _normalised(left[name]), _normalised(right[name])
        if a.type != b.type:
            raise AssertionError(f"{what}: column {name} has types {a.type} and {b.type}")
        a_null = pc.is_null(a).to_numpy(zero_copy_only=False)
        b_null = pc.is_null(b).to_numpy(zero_copy_only=False)
        if not np.array_equal(a_null, b_null):
            row = int(np.flatnonzero(a_null != b_null)[0])
            raise AssertionError(
                f"{what}: column {name} has {a.null_count} and {b.null_count} nulls; "
                f"first difference at {key}={left[key][row]}: {a[row]} vs {b[row]}"
            )
        a_values = pc.fill_null(a, 0).to_numpy(zero_copy_only=False)
        b_values = pc.fill_null(b, 0).to_numpy(zero_copy_only=False)
        same = a_values == b_values
        if a_values.dtype.kind == "f":
            same |= np.isnan(a_values) & np.isnan(b_values)
        if not same.all():
            rows = np.flatnonzero(~same)
            row = int(rows[0])
            raise AssertionError(
                f"{what}: column {name} differs in {rows.size} rows; first at "
                f"{key}={left[key][row]}: {a_values[row]} vs {b_values[row]}"
            )
