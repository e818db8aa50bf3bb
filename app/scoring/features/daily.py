"""Per-user daily partial aggregates: one small table per raw day, computed once.

A partial has one row per user active that day: `user_id`, `day` and one event count per
event type (`n_<type>`, plus `n_all`). Window features are sums and maxima over partials,
so a new raw day only costs one pass over that day's events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scoring.data.schema import EVENT_TYPES

COUNT_COLUMNS = [f"n_{t}" for t in EVENT_TYPES]
ALL_COLUMN = "n_all"
PARTIAL_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("day", pa.date32())]
    + [(name, pa.int32()) for name in [*COUNT_COLUMNS, ALL_COLUMN]]
)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01, the integer behind Arrow's date32."""
    return (day - dt.date(1970, 1, 1)).days


def daily_partial(events: pa.Table, day: dt.date) -> pa.Table:
    """Aggregate one day of validated events into per-user counts by event type."""
    # Arrow's hash aggregation does the heavy lifting; the pivot below only touches the
    # (much smaller) grouped result.
    grouped = events.group_by(["user_id", "event_type"], use_threads=False).aggregate(
        [([], "count_all")]
    )
    users = grouped["user_id"].to_numpy()
    type_codes = pc.index_in(grouped["event_type"], value_set=pa.array(EVENT_TYPES)).to_numpy()
    unique_users, row = np.unique(users, return_inverse=True)
    counts = np.zeros((unique_users.size, len(EVENT_TYPES)), dtype=np.int32)
    counts[row, type_codes] = grouped["count_all"].to_numpy()
    columns = {
        "user_id": pa.array(unique_users, pa.int64()),
        "day": pa.array(np.full(unique_users.size, day_number(day), np.int32)).cast(pa.date32()),
    }
    for index, name in enumerate(COUNT_COLUMNS):
        columns[name] = pa.array(counts[:, index])
    columns[ALL_COLUMN] = pa.array(counts.sum(axis=1, dtype=np.int32))
    return pa.table(columns, schema=PARTIAL_SCHEMA)
