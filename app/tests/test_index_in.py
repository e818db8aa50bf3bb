"""dataset.index_in gives exactly what pyarrow's index_in gives, by binary search when the
user ids are sorted."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scoring.data import dataset

RNG = np.random.default_rng(5)
SORTED = np.unique(RNG.integers(1, 10_000, 3_000))
IDS = RNG.integers(0, 10_500, 5_000)  # some absent, some beyond either end


def _flat(array):
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


@pytest.mark.parametrize(
    ("ids", "user_ids"),
    [
        (IDS, SORTED),
        (IDS, np.sort(np.concatenate([SORTED, SORTED[::7]]))),  # repeated ids: the first
        (IDS, RNG.permutation(SORTED)),  # unsorted, dense
        (IDS * 10**6, RNG.permutation(SORTED) * 10**6),  # unsorted, sparse: pyarrow's own
        (IDS * 10**6, np.sort(np.concatenate([SORTED, SORTED[::7]])) * 10**6),  # sparse
        (IDS[:0], SORTED),
        (IDS, SORTED[:0]),
        (IDS, SORTED[:1]),
    ],
    ids=[
        "sorted",
        "repeats",
        "unsorted",
        "sparse-unsorted",
        "sparse-sorted",
        "no-ids",
        "no-users",
        "one-user",
    ],
)
def test_equals_pyarrow_index_in(ids, user_ids):
    ids = pa.chunked_array([pa.array(ids[: len(ids) // 2]), pa.array(ids[len(ids) // 2 :])])
    user_ids = pa.chunked_array([pa.array(user_ids, pa.int64())])
    expected = pc.index_in(ids, value_set=user_ids)
    assert _flat(dataset.index_in(ids, user_ids)).equals(_flat(expected))


def test_nulls_take_pyarrow_index_in():
    ids = pa.array([3, None, 5], pa.int64())
    user_ids = pa.array([1, 3, 4], pa.int64())
    assert dataset.index_in(ids, user_ids).equals(pc.index_in(ids, value_set=user_ids))


@pytest.mark.parametrize(
    ("scale", "users", "expected"),
    [(1, [2, 5, 7], [1, 0, None, None, 0]), (10**9, [2, 5, 5, 7], [1, 0, None, None, 0])],
    ids=["dense", "sparse-sorted"],
)
def test_dense_or_sorted_users_are_not_hashed(monkeypatch, scale, users, expected):
    monkeypatch.setattr(pc, "index_in", lambda *a, **k: pytest.fail("hashed"))
    ids = pa.array([5 * scale, 2 * scale, 9 * scale, -1, 2 * scale])
    result = dataset.index_in(ids, pa.array([u * scale for u in users]))
    assert result.to_pylist() == expected


@pytest.mark.parametrize(
    "user_ids",
    [
        SORTED,
        np.sort(np.concatenate([SORTED, SORTED[::7]])),  # repeated ids: the first
        RNG.permutation(SORTED),
        SORTED * 10**6,  # sparse: binary search
        SORTED[:0],
        SORTED[:1],
    ],
    ids=["sorted", "repeats", "unsorted", "sparse-sorted", "no-users", "one-user"],
)
def test_rows_of_sorted_ids_equal_pyarrow_index_in(user_ids):
    ids = np.unique(IDS) * (10**6 if len(user_ids) and user_ids[0] >= 10**6 else 1)
    user_ids = pa.chunked_array([pa.array(user_ids, pa.int64())])
    expected = pc.fill_null(pc.index_in(pa.array(ids), value_set=user_ids), -1).to_numpy()
    assert np.array_equal(dataset.rows_of_sorted(ids, user_ids), expected)


@pytest.mark.parametrize(
    ("scale", "lookup"), [(1, "_search_sorted"), (10**9, "_positions")], ids=["dense", "sparse"]
)
def test_rows_of_sorted_ids_in_an_ordered_snapshot_check_no_repeats(monkeypatch, scale, lookup):
    """Dense ids of an ordered snapshot by a table of positions, sparse ones by binary
    search; neither hashes nor checks the snapshot for repeated ids (`index_in`)."""
    monkeypatch.setattr(dataset, "index_in", lambda *a, **k: pytest.fail("repeats checked"))
    monkeypatch.setattr(dataset, lookup, lambda *a, **k: pytest.fail(f"{lookup} used"))
    users = pa.array([2 * scale, 4 * scale, 5 * scale, 7 * scale], pa.int64())
    rows = dataset.rows_of_sorted(np.array([1, 2, 5, 9]) * scale, users)
    assert rows.tolist() == [-1, 0, 2, -1]
