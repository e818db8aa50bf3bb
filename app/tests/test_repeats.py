"""The duplicates check counts repeated events (user, timestamp, event code) exactly."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from scoring.data import checks

DAY_START = dt.datetime(2026, 1, 27)


def _events(users, offsets_us, codes) -> pa.Table:
    start = int(np.datetime64(DAY_START, "us").astype(np.int64))
    return pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "timestamp": pa.array(np.asarray(offsets_us, np.int64) + start, pa.int64()).cast(
                pa.timestamp("us")
            ),
            "event_code": pa.array(codes, pa.int8()),
        }
    )


def _group_by_repeats(events: pa.Table) -> int:
    keys = pa.table({"u": events["user_id"], "t": events["timestamp"], "e": events["event_code"]})
    return keys.num_rows - keys.group_by(["u", "t", "e"]).aggregate([]).num_rows


def test_only_same_user_timestamp_and_code_repeat():
    last_us = 86_400_000_000 - 1
    events = _events(
        # a pair; a triple (2 repeats); same user and time, other code; same user and
        # code, 1 us apart; another user at the same time; user 9 again; the first and
        # last microsecond twice each
        [5, 5, 7, 7, 7, 9, 9, 11, 11, 12, 9, 3, 3, 3, 3],
        [100, 100, 0, 0, 0, 50, 50, 60, 61, 50, 50, 0, last_us, last_us, 0],
        [1, 1, 4, 4, 4, 0, 2, 3, 3, 0, 0, 2, 2, 2, 2],
    )
    assert checks.count_repeats(events) == _group_by_repeats(events) == 6


@pytest.mark.parametrize("largest_user", [10**6, 2**40, 2**62])
def test_counts_equal_a_group_by_for_any_user_ids(largest_user):
    # Ids beyond what one int64 key holds with the timestamps go through the group_by.
    rng = np.random.default_rng(3)
    rows = 20_000
    users = rng.integers(1, largest_user, 500)[rng.integers(0, 500, rows)]
    offsets = rng.integers(0, 2_000, rows) * 1_000_000
    codes = rng.integers(0, 5, rows)
    events = _events(users, offsets, codes)
    repeats = checks.count_repeats(events)
    assert repeats == _group_by_repeats(events)
    assert repeats > 0


@pytest.mark.parametrize("rows", [0, 1])
def test_no_repeats_in_an_empty_or_single_event_day(rows):
    assert checks.count_repeats(_events([4] * rows, [10] * rows, [1] * rows)) == 0
