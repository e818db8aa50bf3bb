"""Validated loaders for the raw dumps, and the day arithmetic of labels.

Raw layout under the data root:

    data/raw/users/<YYYY-MM-DD>.parquet        user_id, signup_date, is_premium, region
    data/raw/events/<YYYY-MM-DD>.parquet       user_id, timestamp, event_type
    data/raw/conversions/<YYYY-MM-DD>.parquet  user_id, timestamp

User attributes are read from the snapshot of one day (`read_users(settings, as_of)`), so a
feature of a past date sees the attributes of then, never today's. The synthetic data
generator is `scoring.data.synthetic`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring import naming
from scoring.data import schema
from scoring.errors import RawDataError
from scoring.settings import Settings


def read_events(path: Path, day: dt.date) -> pa.Table:
    """One day's events, validated: user_id, timestamp and event_code.

    `event_code` is the index of the event type in schema.EVENT_TYPES.
    """
    table = schema.read_checked(path, schema.EVENTS_COLUMNS)
    codes = schema.event_type_codes(path, table["event_type"])
    schema.check_timestamps_on_day(path, table, day)
    return pa.table(
        {
            "user_id": table["user_id"].cast(pa.int64()),
            "timestamp": table["timestamp"].cast(pa.timestamp("us")),
            "event_code": pa.array(codes),
        }
    )


def read_conversions(path: Path, day: dt.date) -> pa.Table:
    table = schema.read_checked(path, schema.CONVERSIONS_COLUMNS)
    schema.check_timestamps_on_day(path, table, day)
    return table.cast(pa.schema([("user_id", pa.int64()), ("timestamp", pa.timestamp("us"))]))


def read_users(settings: Settings, as_of: dt.date) -> pa.Table:
    """User attributes as of the end of `as_of` (that day's snapshot)."""
    path = naming.raw_users_path(settings, as_of)
    if not path.exists():
        raise RawDataError(
            f"{path}: the user snapshot of {as_of} is missing; features of a date use the "
            "attributes as of its cutoff day, so that day's snapshot must be delivered"
        )
    table = schema.read_checked(path, schema.USERS_COLUMNS)
    return pa.table(
        {
            "user_id": table["user_id"].cast(pa.int64()),
            "signup_date": table["signup_date"].cast(pa.date32()),
            "is_premium": table["is_premium"],
        }
    )


# A table of positions with one slot per id between the smallest and the largest user id
# is used while that range stays within this many slots per user.
INDEX_SLOTS_PER_USER = 4


def index_in(ids: pa.ChunkedArray | pa.Array, user_ids: pa.ChunkedArray | pa.Array) -> pa.Array:
    """What `pc.index_in(ids, value_set=user_ids)` gives: each id's first row among
    `user_ids`, null where it is absent.

    User ids are dense integers: a table of positions indexed by id answers each id with
    one lookup, and sorted sparse ids are found by binary search; `pc.index_in` first
    builds a hash table of every user (for 120,000 events of a day against 1,000,000 users
    that was most of the day's checks). Nulls, repeated dense ids, or sparse unsorted ids
    take `pc.index_in` itself.
    """
    if ids.null_count or user_ids.null_count or len(user_ids) == 0:
        return pc.index_in(ids, value_set=user_ids)
    keys = np.asarray(user_ids.to_numpy()).astype(np.int64, copy=False)
    values = np.asarray(ids.to_numpy()).astype(np.int64, copy=False)
    low, high = int(keys.min()), int(keys.max())
    if high - low < INDEX_SLOTS_PER_USER * keys.size:
        table = _positions(keys, low, high)
        if np.count_nonzero(table >= 0) != keys.size:  # repeated ids: which row is first
            return pc.index_in(ids, value_set=user_ids)
        rows = _looked_up(table, values, low, high)
        return pa.array(rows, pa.int32(), mask=rows < 0)
    if not np.all(keys[1:] >= keys[:-1]):
        return pc.index_in(ids, value_set=user_ids)
    rows, found = _search_sorted(keys, values)
    return pa.array(rows.astype(np.int32), pa.int32(), mask=~found)


def _positions(keys: np.ndarray, low: int, high: int) -> np.ndarray:
    """A table indexed by id - low: the last row of each id among `keys`, -1 for none."""
    table = np.full(high - low + 1, -1, np.int32)
    table[keys - low] = np.arange(keys.size, dtype=np.int32)
    return table


def _looked_up(table: np.ndarray, values: np.ndarray, low: int, high: int) -> np.ndarray:
    inside = (values >= low) & (values <= high)
    rows = np.full(values.size, -1, np.int32)
    rows[inside] = table[values[inside] - low]
    return rows


def _search_sorted(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's first row among the sorted, non-empty `keys`, and whether it is there."""
    rows = np.searchsorted(keys, values)  # the first of equal ids, as index_in
    return rows, keys[np.minimum(rows, keys.size - 1)] == values


def rows_of_sorted(ids: np.ndarray, user_ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The row of each of `ids` (ascending, each once) among `user_ids`, -1 where absent.

    A snapshot ordered by id with each id once (the exports' order, checked here) needs
    no check for repeats: dense ids are looked up in a table of positions (a third of the
    binary search's time for 1,000,000 ids of a 1,000,000-user snapshot), sparse ones
    found by binary search, whose sorted queries walk the snapshot in one direction. Any
    other snapshot takes `index_in`.
    """
    if not user_ids.null_count and len(user_ids):
        keys = np.asarray(user_ids.to_numpy()).astype(np.int64, copy=False)
        if np.all(keys[1:] > keys[:-1]):
            low, high = int(keys[0]), int(keys[-1])
            if high - low < INDEX_SLOTS_PER_USER * keys.size:
                return _looked_up(_positions(keys, low, high), ids, low, high)
            rows, found = _search_sorted(keys, ids)
            return np.where(found, rows, -1)
    return index_in(pa.array(ids, pa.int64()), user_ids).fill_null(-1).to_numpy()


def days_between(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    for offset in range((last - first).days + 1):
        yield first + dt.timedelta(days=offset)


def available_raw_days(settings: Settings) -> list[dt.date]:
    days = []
    for path in sorted(settings.raw_events_dir.glob("*.parquet")):
        try:
            days.append(dt.date.fromisoformat(path.stem))
        except ValueError:
            continue  # not a daily dump; ignore stray files
    return days


def label_days(settings: Settings, date: dt.date) -> list[dt.date]:
    """Days whose conversions count for the label of `date`: [date, date + lead_window)."""
    return list(days_between(*settings.label_window(date)))
