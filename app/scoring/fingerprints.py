"""Fingerprints of files (SHA-256 of their bytes), kept by stat key in memory and on disk.

The raw-day checks compare them (a raw file whose content changed after something was built
from it fails), the gap records carry them, and each daily partial records the one of the
raw file it was built from in its metadata (`FINGERPRINT_KEY`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scoring import atomic

log = logging.getLogger(__name__)

# What a fingerprint of a file that does not exist is, and what a partial of a skipped day
# records.
ABSENT = "absent"

# # A fingerprint is the SHA-256 of a file's bytes. Hashing the raw files of a whole window
# costs more than the daily slide itself, so a fingerprint is kept together with the stat
# key it was taken under: device, inode, size, mtime and ctime (nanoseconds). The kernel
# sets ctime on every change of a file's content or metadata, and no call from user space
# sets it back, so a rewrite that restores the old mtime (os.utime, touch -r, rsync -t)
# still changes the key; so does a replacement by rename (another inode). A file is hashed
# again whenever its key differs from the one kept.
#
# File clocks are coarse (a kernel tick; a second or two on some file systems), so a file
# changed again within the same tick right after it was hashed could keep its key. A
# fingerprint is therefore only kept when the file's last change lies at least RACY_NS
# before the hashing began (what git does with "racily clean" entries); a file changed
# more recently is hashed on every call until it has been left alone for that long.

RACY_NS = 2_000_000_000
CACHE_VERSION = 1
_KEY_FIELDS = 5
_FINGERPRINT_LENGTH = 16
StatKey = tuple[int, ...]


def stat_key(stat: os.stat_result) -> StatKey:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def hash_file(path: Path) -> str:
    """SHA-256 (16 hex digits) of a file's bytes, read in full."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:_FINGERPRINT_LENGTH]


def _is_fingerprint(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == _FINGERPRINT_LENGTH
        and all(c in "0123456789abcdef" for c in value)
    )


def _is_recorded(value: object) -> bool:
    """What a partial can record: a fingerprint, `absent` (a skipped day) or nothing."""
    return value in ("", ABSENT) or _is_fingerprint(value)


def _valid_entry(entry: object, valid_value) -> tuple[StatKey, str] | None:
    if not isinstance(entry, dict):
        return None
    key, value = entry.get("key"), entry.get("value")
    if not (isinstance(key, list) and len(key) == _KEY_FIELDS):
        return None
    if not all(isinstance(part, int) and not isinstance(part, bool) for part in key):
        return None
    return (tuple(key), value) if valid_value(value) else None


_SECTIONS = {"raw": _is_fingerprint, "partials": _is_recorded}


def _load_entries(path: Path) -> dict[str, dict[str, tuple[StatKey, str]]]:
    """The entries of a cache file; none when it is missing, unreadable or malformed."""
    entries: dict[str, dict[str, tuple[StatKey, str]]] = {section: {} for section in _SECTIONS}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return entries
    if not isinstance(payload, dict) or payload.get("version") != CACHE_VERSION:
        return entries
    for section, valid_value in _SECTIONS.items():
        files = payload.get(section)
        if not isinstance(files, dict):
            continue
        for name, entry in files.items():
            valid = _valid_entry(entry, valid_value)
            if valid is not None:
                entries[section][name] = valid
    return entries


def _read_recorded(partial_path: Path) -> str:
    """The raw fingerprint recorded in a partial's metadata, "" if none."""
    metadata = pq.read_schema(partial_path).metadata or {}
    return metadata.get(FINGERPRINT_KEY, b"").decode()


class FingerprintCache:
    """Fingerprints by stat key, in memory and, with a `path`, in a JSON file.

    Two kinds of entries: the fingerprints of raw files ("raw"), and the fingerprint that
    each partial records in its metadata ("partials"), each kept with the stat key of the
    file it was read from. The file is only a hint: a missing, unreadable or malformed
    file, or a malformed entry, means reading again, never an error; an entry counts only
    while the file's stat key is the one it was taken under. `save` writes the file
    atomically (the last of two concurrent writers wins; the other's new entries are read
    again next time).
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self._entries = _load_entries(path) if path is not None else {s: {} for s in _SECTIONS}
        self._changed = False
        self._lock = threading.Lock()

    def _kept(self, section: str, path: Path, read, missing):
        try:
            stat = path.stat()
        except FileNotFoundError:
            return missing
        entries = self._entries[section]
        name = str(Path(path).absolute())
        key = stat_key(stat)
        with self._lock:
            known = entries.get(name)
        if known is not None and known[0] == key:
            return known[1]
        started = time.time_ns()
        try:
            value = read(path)
            unchanged = stat_key(path.stat()) == key
        except FileNotFoundError:
            return missing
        settled = started - max(stat.st_mtime_ns, stat.st_ctime_ns) >= RACY_NS
        with self._lock:
            if unchanged and settled:
                entries[name] = (key, value)
                self._changed = True
            elif entries.pop(name, None) is not None:
                self._changed = True
        return value

    def fingerprint(self, path: Path) -> str:
        return self._kept("raw", path, hash_file, ABSENT)

    def recorded(self, partial_path: Path) -> str | None:
        """The raw fingerprint a partial was built from; None if there is no partial."""
        return self._kept("partials", partial_path, _read_recorded, "") or None

    def entry(self, path: Path) -> tuple[str, StatKey, str] | None:
        """The kept fingerprint of raw file `path` with its key, for another cache."""
        name = str(Path(path).absolute())
        with self._lock:
            known = self._entries["raw"].get(name)
        return None if known is None else (name, *known)

    def remember(self, entry: tuple[str, StatKey, str]) -> None:
        name, key, value = entry
        with self._lock:
            if self._entries["raw"].get(name) != (key, value):
                self._entries["raw"][name] = (key, value)
                self._changed = True

    def save(self) -> None:
        """Write the entries of files that still exist; a failure only costs reading again."""
        if self.path is None or not self._changed:
            return
        with self._lock:
            payload = {"version": CACHE_VERSION}
            for section, entries in self._entries.items():
                payload[section] = {
                    name: {"key": list(key), "value": value}
                    for name, (key, value) in sorted(entries.items())
                    if Path(name).exists()
                }
            self._changed = False
        try:
            atomic.write_text(json.dumps(payload, indent=1) + "\n", self.path)
        except OSError as error:
            log.warning("raw fingerprints not kept in %s: %s", self.path, error)


_memory = FingerprintCache()


def kept_in_memory(path: Path) -> tuple[str, StatKey, str] | None:
    """The fingerprint this process keeps for `path` (see FingerprintCache.entry)."""
    return _memory.entry(path)


def fingerprint(path: Path, cache: FingerprintCache | None = None) -> str:
    """SHA-256 (16 hex digits) of a file's bytes, or `absent`; hashed again only when the
    file's stat key changed (see above). Without `cache`, this process's memory."""
    return (cache or _memory).fingerprint(path)


FINGERPRINT_KEY = b"scoring.raw_fingerprint"


def recorded_fingerprint(partial_path: Path, cache: FingerprintCache | None = None) -> str | None:
    """The raw fingerprint a partial was built from; None if there is no partial.

    Without `cache`, read from the partial's metadata."""
    if cache is not None:
        return cache.recorded(partial_path)
    try:
        return _read_recorded(partial_path) or None
    except FileNotFoundError:
        return None


def with_fingerprint(table: pa.Table, value: str) -> pa.Table:
    metadata = dict(table.schema.metadata or {})
    metadata[FINGERPRINT_KEY] = value.encode()
    return table.replace_schema_metadata(metadata)
