"""A raw file's fingerprint is kept with its stat key and taken again only when the key
changed: an unchanged file is not read again, a changed one always is (even with its old
mtime restored), and a bad cache file only means hashing again."""

import datetime as dt
import json
import os

import pyarrow.parquet as pq
import pytest
from scoring import fingerprints, naming
from scoring.data import checks
from scoring.errors import RawDayError
from scoring.features import build
from scoring.settings import get_settings

DAY = dt.date(2026, 1, 27)


@pytest.fixture
def hashed(monkeypatch):
    """The files hashed (read in full) while the test runs."""
    calls = []
    real = fingerprints.hash_file

    def spy(path):
        calls.append(path.name)
        return real(path)

    monkeypatch.setattr(fingerprints, "hash_file", spy)
    return calls


@pytest.fixture
def settled(monkeypatch):
    """Files written by the test count as settled at once (no racy interval)."""
    monkeypatch.setattr(fingerprints, "RACY_NS", 0)


def _wait_for_new_ctime(path, old_ctime_ns, mtime_ns):
    """Restore the mtime until the kernel's clock has moved past the old ctime."""
    while True:
        os.utime(path, ns=(mtime_ns, mtime_ns))
        if path.stat().st_ctime_ns != old_ctime_ns:
            return


def _rewrite_in_place_keeping_mtime(path):
    """Other bytes of the same size, same inode, and the old mtime put back."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with path.open("r+b") as handle:
        handle.write(data)
    _wait_for_new_ctime(path, before.st_ctime_ns, before.st_mtime_ns)
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_an_unchanged_file_is_not_read_again(tmp_path, hashed, settled):
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    cache_file = tmp_path / "fingerprints.json"
    first = fingerprints.FingerprintCache(cache_file)
    value = first.fingerprint(raw)
    first.save()
    assert hashed == ["day.parquet"]
    # A later run (a new process): the kept fingerprint, without reading the file.
    assert fingerprints.FingerprintCache(cache_file).fingerprint(raw) == value
    assert hashed == ["day.parquet"]


def test_a_rewrite_with_its_old_mtime_restored_is_detected(tmp_path, hashed, settled):
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    cache_file = tmp_path / "fingerprints.json"
    cache = fingerprints.FingerprintCache(cache_file)
    before = cache.fingerprint(raw)
    cache.save()
    _rewrite_in_place_keeping_mtime(raw)
    assert fingerprints.FingerprintCache(cache_file).fingerprint(raw) != before
    assert cache.fingerprint(raw) != before
    assert fingerprints.fingerprint(raw) == fingerprints.hash_file(raw)  # this process's memory too


def test_a_replacement_by_rename_is_detected(tmp_path, settled):
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    cache = fingerprints.FingerprintCache(tmp_path / "fingerprints.json")
    before = cache.fingerprint(raw)
    stat = raw.stat()
    replacement = tmp_path / ".day.parquet.new"
    replacement.write_bytes(b"events of one dax")  # same size
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(raw)
    assert cache.fingerprint(raw) != before


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json",
        b"[1, 2, 3]",
        b'{"version": 99, "files": {}}',
        b'{"version": 1, "raw": [], "partials": 3}',
        b"{",
    ],
    ids=["bytes", "list", "other-version", "sections-not-maps", "truncated"],
)
def test_a_corrupt_cache_file_means_hashing_again(tmp_path, hashed, settled, content):
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    cache_file = tmp_path / "fingerprints.json"
    cache_file.write_bytes(content)
    cache = fingerprints.FingerprintCache(cache_file)
    assert cache.fingerprint(raw) == fingerprints.hash_file(raw)
    cache.save()  # replaces the bad file
    assert json.loads(cache_file.read_text())["version"] == fingerprints.CACHE_VERSION


def test_a_malformed_entry_is_not_trusted(tmp_path, hashed, settled):
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    key = list(fingerprints.stat_key(raw.stat()))
    cache_file = tmp_path / "fingerprints.json"
    bad = [
        {"key": key, "value": "not hex at all!!"},
        {"key": key, "value": ""},
        {"key": key, "value": fingerprints.ABSENT},
        {"key": key[:4], "value": "0" * 16},
        {"key": [*key[:4], "x"], "value": "0" * 16},
        {"key": key, "value": 7},
    ]
    for entry in bad:
        payload = {"version": fingerprints.CACHE_VERSION, "raw": {str(raw.absolute()): entry}}
        cache_file.write_text(json.dumps(payload))
        assert fingerprints.FingerprintCache(cache_file).fingerprint(raw) == fingerprints.hash_file(
            raw
        )
    assert hashed.count("day.parquet") == 2 * len(bad)


def test_an_unreadable_or_unwritable_cache_is_no_error(tmp_path, hashed, settled):
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    cache_file = tmp_path / "fingerprints.json"
    cache_file.mkdir()  # neither readable nor replaceable as a file, even by root
    cache = fingerprints.FingerprintCache(cache_file)
    assert cache.fingerprint(raw) == fingerprints.hash_file(raw)
    cache.save()
    assert cache_file.is_dir()


def test_a_recently_changed_file_is_hashed_every_time(tmp_path, hashed, monkeypatch):
    monkeypatch.setattr(fingerprints, "RACY_NS", 3600 * 10**9)  # changed "just now"
    raw = tmp_path / "day.parquet"
    raw.write_bytes(b"events of one day")
    cache = fingerprints.FingerprintCache(tmp_path / "fingerprints.json")
    cache.fingerprint(raw)
    cache.fingerprint(raw)
    assert hashed == ["day.parquet", "day.parquet"]


def test_the_daily_checks_read_only_new_or_changed_files(data_root, hashed, settled, monkeypatch):
    settings = get_settings()
    days = build.window_days(settings, DAY + dt.timedelta(days=1))
    build.ensure_daily_partials(settings, days, progress=False)
    assert naming.raw_fingerprints_path(settings).exists()
    build.ensure_daily_partials(settings, days, progress=False)  # keeps the partials' records
    hashed.clear()
    monkeypatch.setattr(fingerprints, "_memory", fingerprints.FingerprintCache())  # a new process
    read_metadata = []
    real = fingerprints._read_recorded
    monkeypatch.setattr(
        fingerprints, "_read_recorded", lambda p: read_metadata.append(p) or real(p)
    )
    build.ensure_daily_partials(settings, days, progress=False)
    assert hashed == []
    assert read_metadata == []
    _rewrite_in_place_keeping_mtime(naming.raw_events_path(settings, DAY))
    with pytest.raises(RawDayError, match=f"raw day {DAY} failed the 'changed' check"):
        build.ensure_daily_partials(settings, days, progress=False)
    assert hashed == [f"{DAY}.parquet"]


def test_a_rewritten_partial_is_read_again(data_root, settled):
    settings = get_settings()
    build.ensure_daily_partials(settings, [DAY], progress=False)
    partial = naming.daily_partial_path(settings, DAY)
    cache = checks.raw_fingerprints(settings)
    assert cache.recorded(partial) == fingerprints.fingerprint(
        naming.raw_events_path(settings, DAY)
    )
    table, before = pq.read_table(partial), partial.stat()
    pq.write_table(fingerprints.with_fingerprint(table, "0" * 16), partial)  # in place
    _wait_for_new_ctime(partial, before.st_ctime_ns, partial.stat().st_mtime_ns)
    assert cache.recorded(partial) == "0" * 16
    partial.unlink()
    assert cache.recorded(partial) is None
