"""Expected layout of the raw dumps, and checks that name the file and column at fault."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scoring.errors import RawDataError

EVENT_TYPES = ("search", "listing_view", "save", "contact_request", "login")


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_string(t.value_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_date_like(t: pa.DataType) -> bool:
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


# column -> (check, human readable type)
TypeCheck = tuple[Callable[[pa.DataType], bool], str]
EVENTS_COLUMNS: dict[str, TypeCheck] = {
    "user_id": (pa.types.is_integer, "integer"),
    "timestamp": (pa.types.is_timestamp, "timestamp"),
    "event_type": (_is_string, "string"),
}
CONVERSIONS_COLUMNS: dict[str, TypeCheck] = {
    "user_id": (pa.types.is_integer, "integer"),
    "timestamp": (pa.types.is_timestamp, "timestamp"),
}
USERS_COLUMNS: dict[str, TypeCheck] = {
    "user_id": (pa.types.is_integer, "integer"),
    "signup_date": (_is_date_like, "date"),
    "is_premium": (pa.types.is_boolean, "boolean"),
}


def read_checked(path: Path, columns: dict[str, TypeCheck]) -> pa.Table:
    """Read the wanted columns of a parquet file, failing clearly on any schema problem."""
    path = Path(path)
    if not path.exists():
        raise RawDataError(f"{path}: file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        raise RawDataError(f"{path}: cannot be read as parquet ({err})") from None
    for name, (check, expected) in columns.items():
        if name not in schema.names:
            raise RawDataError(
                f"{path}: column '{name}' is missing (expected {expected}; "
                f"found {', '.join(schema.names) or 'no columns'})"
            )
        actual = schema.field(name).type
        if not check(actual):
            raise RawDataError(f"{path}: column '{name}' has type {actual}, expected {expected}")
    try:
        table = pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as err:
        raise RawDataError(f"{path}: cannot be read as parquet ({err})") from None
    for name in columns:
        if table[name].null_count:
            raise RawDataError(f"{path}: column '{name}' has {table[name].null_count} empty values")
    return table


def event_type_codes(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    """Position of each event's type in EVENT_TYPES (int8); unknown types are an error.

    Dictionary-encoded columns (what the exports write) are mapped through their small
    dictionary, so no per-event string is ever materialised or hashed.
    """
    known = pa.array(EVENT_TYPES)
    if pa.types.is_dictionary(column.type):
        parts = []
        for chunk in column.chunks:
            mapping = pc.fill_null(pc.index_in(chunk.dictionary, value_set=known), -1)
            parts.append(mapping.to_numpy()[chunk.indices.to_numpy()])
        codes = np.concatenate(parts) if parts else np.array([], dtype=np.int64)
    else:
        codes = pc.fill_null(pc.index_in(column, value_set=known), -1).to_numpy()
    if (codes < 0).any():
        found = pc.unique(column.cast(pa.string())).to_pylist()
        unknown = sorted(set(found) - set(EVENT_TYPES))
        raise RawDataError(
            f"{path}: column 'event_type' has unknown values {unknown}; "
            f"allowed are {', '.join(EVENT_TYPES)}"
        )
    return codes.astype(np.int8)


def check_timestamps_on_day(path: Path, table: pa.Table, day: dt.date) -> None:
    """Each daily file may only hold that day's events; anything else would leak across days."""
    if table.num_rows == 0:
        return
    timestamps = table["timestamp"].cast(pa.timestamp("us"))
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    low, high = pc.min(timestamps).as_py(), pc.max(timestamps).as_py()
    if low < start or high >= end:
        raise RawDataError(
            f"{path}: column 'timestamp' has values from {low} to {high}, "
            f"outside the file's day {day.isoformat()}"
        )
