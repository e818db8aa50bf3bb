"""The window aggregation gives the same state whatever the user ids look like.

Dense ids are added into columns indexed by id; ids spread too far apart for that take
the sort-based reduction, also when each chunk alone is dense but the chunks are far
apart. Raw events counted straight into a chunk's state give what their daily partials
give. All must agree with each other, row for row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scoring.data.partials import daily_partial
from scoring.features import build, window
from scoring.features.spec import load_spec
from scoring.settings import get_settings

DATE = dt.date(2026, 1, 25)
FAR = 10**15


def _partials(settings):
    build.ensure_daily_partials(settings, build.window_days(settings, DATE), progress=False)
    return [build.read_partial(settings, day) for day in build.window_days(settings, DATE)]


def _shift(table: pa.Table, offset: int) -> pa.Table:
    shifted = pc.add(table["user_id"], pa.scalar(offset, pa.int64()))
    return table.set_column(0, "user_id", shifted)


def _state(partials, settings, spec, chunk_days=8):
    cutoff = settings.feature_cutoff(DATE)
    chunks = [partials[i : i + chunk_days] for i in range(0, len(partials), chunk_days)]
    return window.combine_states([window.aggregate_chunk(c, cutoff, spec) for c in chunks], spec)


def test_dense_and_sorted_paths_agree(data_root):
    settings, spec = get_settings(), load_spec(get_settings())
    partials = _partials(settings)
    dense = _state(partials, settings, spec)
    assert dense.num_rows > 100
    assert dense.equals(build.state_from_files(settings, spec, DATE, "raw", progress=False))
    # Every other user moved far away: no chunk is dense any more.
    spread = [
        p.set_column(0, "user_id", pc.multiply(p["user_id"], pa.scalar(FAR // 1000, pa.int64())))
        for p in partials
    ]
    sparse = _state(spread, settings, spec)
    back = pc.divide(sparse["user_id"], pa.scalar(FAR // 1000, pa.int64()))
    assert sparse.set_column(0, "user_id", back).equals(dense)


def test_chunks_dense_alone_but_far_apart_are_combined_exactly(data_root):
    settings, spec = get_settings(), load_spec(get_settings())
    partials = _partials(settings)
    dense = _state(partials, settings, spec)
    # Days of the first chunk keep their ids, the others move by FAR.
    moved = [p if i < 8 else _shift(p, FAR) for i, p in enumerate(partials)]
    combined = _state(moved, settings, spec)
    near = combined.filter(pc.less(combined["user_id"], FAR))
    far = _shift(combined.filter(pc.greater_equal(combined["user_id"], FAR)), -FAR)
    first_chunk = _state(partials[:8], settings, spec)
    rest = _state(partials[8:], settings, spec)
    assert near.equals(first_chunk)
    assert far.equals(rest)
    assert dense.num_rows <= near.num_rows + far.num_rows


def test_repeated_rows_add_up_like_separate_days(data_root):
    settings, spec = get_settings(), load_spec(get_settings())
    partials = _partials(settings)
    cutoff = settings.feature_cutoff(DATE)
    day = partials[-1]
    twice = window.combine_states(
        [window.aggregate_chunk([pa.concat_tables([day, day])], cutoff, spec)], spec
    )
    once = window.combine_states([window.aggregate_chunk([day], cutoff, spec)], spec)
    for name in spec.state_columns[1:-1]:
        assert twice[name].to_pylist() == [2 * v for v in once[name].to_pylist()], name
    assert twice["last_day"].equals(once["last_day"])


def _day_partial(day: dt.date, users: list[int]) -> pa.Table:
    """The partial of a day on which each of `users` searched once (and user 5 saved too)."""
    start = dt.datetime.combine(day, dt.time(9))
    ids = [*users, *[u for u in users if u == 5]]
    codes = [0] * len(users) + [2] * (len(ids) - len(users))
    events = pa.table(
        {
            "user_id": pa.array(ids, pa.int64()),
            "timestamp": pa.array([start] * len(ids), pa.timestamp("us")),
            "event_code": pa.array(codes, pa.int8()),
        }
    )
    return daily_partial(events, day)


def _full(partials: dict[dt.date, pa.Table], cutoff: dt.date, spec) -> pa.Table:
    first = cutoff - dt.timedelta(days=spec.aggregation_window - 1)
    inside = [p for day, p in sorted(partials.items()) if first <= day <= cutoff]
    return window.combine_states([window.aggregate_chunk(inside, cutoff, spec)], spec)


def test_a_slide_drops_inserts_and_keeps_users_exactly_as_a_full_recompute(data_root):
    """Users whose only day leaves are dropped unless active on the new day; new users go
    in at the start, the middle and the end; days leaving a shorter window only subtract."""
    settings, spec = get_settings(), load_spec(get_settings())
    cutoff = settings.feature_cutoff(DATE)
    yesterday = cutoff - dt.timedelta(days=1)
    leaving = {w: cutoff - dt.timedelta(days=w) for w in spec.windows}
    oldest = leaving[spec.aggregation_window]
    shorter = min(spec.windows)
    partials = {
        day: _day_partial(day, [])
        for day in build.window_days(settings, DATE - dt.timedelta(days=1))
    }
    partials[oldest] = _day_partial(oldest, [10, 20, 30])  # 10 and 20 leave, 20 comes back
    partials[leaving[shorter]] = _day_partial(leaving[shorter], [5, 30, 40])
    partials[yesterday] = _day_partial(yesterday, [40, 50])
    for new_users in ([1, 20, 35, 50, 99], []):
        days = {**partials, cutoff: _day_partial(cutoff, new_users)}
        previous = _full(days, yesterday, spec)
        slid = window.slide_state(
            previous, cutoff, days[cutoff], {w: days[d] for w, d in leaving.items()}, spec
        )
        expected = _full(days, cutoff, spec)
        assert slid.equals(expected), new_users
        assert 10 not in slid["user_id"].to_pylist()
        assert (20 in slid["user_id"].to_pylist()) == (20 in new_users)


def _random_events(rng, day: dt.date, users: int, events: int, first_id: int = 1) -> pa.Table:
    start = dt.datetime.combine(day, dt.time())
    seconds = rng.integers(0, 86_400, events)
    return pa.table(
        {
            "user_id": pa.array(rng.integers(first_id, first_id + users, events), pa.int64()),
            "timestamp": pa.array(
                [start + dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us")
            ),
            "event_code": pa.array(rng.integers(0, 5, events).astype("int8")),
        }
    )


@pytest.mark.parametrize("span", [1, 3, 8, 9, 16, 17, 32, 33, 64, 70])
def test_events_counted_straight_into_the_state_equal_their_daily_partials(data_root, span):
    """Chunks straddling the 3- and 7-day windows' ends, wholly older than the short
    windows, with bitmaps of 8 to 64 days, and too long for a bitmap (daily partials)."""
    spec = load_spec(get_settings())
    rng = np.random.default_rng(span)
    cutoff = dt.date(2026, 3, 31)
    for newest_age in (0, 2, 6, 20):
        days = [cutoff - dt.timedelta(days=newest_age + back) for back in range(span)]
        events = [(day, _random_events(rng, day, 400, int(rng.integers(1, 600)))) for day in days]
        if span > 2:  # a day without events in the middle
            events[span // 2] = (events[span // 2][0], events[0][1].slice(0, 0))
        ours = window.aggregate_events(events, cutoff, spec)
        partials = [daily_partial(table, day) for day, table in events]
        assert ours.num_rows > 0
        assert ours.equals(window.aggregate_chunk(partials, cutoff, spec)), newest_age


def test_events_of_sparse_ids_equal_their_daily_partials(data_root):
    spec = load_spec(get_settings())
    rng = np.random.default_rng(3)
    cutoff = dt.date(2026, 3, 31)
    days = [cutoff - dt.timedelta(days=back) for back in range(10)]
    events = [(day, _random_events(rng, day, 50, 80)) for day in days]
    spread = [
        (day, _shift(table, FAR) if i % 2 else table) for i, (day, table) in enumerate(events)
    ]
    partials = [daily_partial(table, day) for day, table in spread]
    expected = window.aggregate_chunk(partials, cutoff, spec)
    assert pc.max(expected["user_id"]).as_py() > FAR
    assert window.aggregate_events(spread, cutoff, spec).equals(expected)


def test_events_after_the_cutoff_are_refused(data_root):
    spec = load_spec(get_settings())
    cutoff = dt.date(2026, 3, 31)
    late = cutoff + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="after the cutoff"):
        window.aggregate_events(
            [(late, _random_events(np.random.default_rng(1), late, 10, 10))], cutoff, spec
        )


def test_the_combine_reuses_a_scratch_buffer_that_a_chunk_returned(data_root):
    """The combine after the chunks' tasks takes a buffer one of them lent back, instead of
    touching fresh memory (in the same process, as with the in-process cluster)."""
    settings, spec = get_settings(), load_spec(get_settings())
    partials = _partials(settings)
    window._free_buffers.clear()
    chunk = window.aggregate_chunk(partials, settings.feature_cutoff(DATE), spec)
    lent = [buffer.ctypes.data for buffer in window._free_buffers]
    assert len(lent) == 1
    window.combine_states([chunk], spec)
    assert [buffer.ctypes.data for buffer in window._free_buffers] == lent
