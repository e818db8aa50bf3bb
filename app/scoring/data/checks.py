"""Checks of a raw day before anything is built from it, the policy on failure, fingerprints.

Each check has a name that the error carries, so a failed daily run says which day failed
which check:

- missing: the day's events file is absent although later days were delivered;
- late: the day's events file has not arrived yet (no later day exists either);
- volume: the day's event count is far below or above the median of the days before it
  (a truncated or anomalous export);
- duplicates: the same event (user, timestamp, type) appears more than once;
- unknown_users: events of users missing from that day's user snapshot;
- impossible_values: non-positive user ids, events before the user's signup day (a schema
  problem, such as a missing column or a timestamp outside the day, fails as well, from
  `schema`);
- changed: the file's content differs from the content an existing partial was built from.

Conversion files (the labels) and user snapshots are checked the same way
(`checked_conversions`, `checked_users`): missing, late, schema, volume, changed, and for a
snapshot missing_users (users of the snapshot before that are gone). Their fingerprint is
kept when they first pass, under data/interim/checked/<input>/<day>.json, so a file that
changes afterwards fails the `changed` check as an event day does.

`SCORING_RAW_DAY_POLICY` decides what a failed check leads to: `fail` stops the step, `wait`
polls for a missing or late day for up to `SCORING_RAW_WAIT_SECONDS` and then fails, `skip`
leaves the day out and records the gap under data/interim/gaps/ with the raw file's
fingerprint then (an event day counts as one without any activity; a date whose labels
were skipped is not used for training or evaluation; features take the latest earlier user
snapshot that passes). A gap stands only while the policy is `skip` and the raw file is the
one it was recorded for: under `fail` the day is checked again, and a day that arrives (or
is delivered again) after it was skipped is checked and used by the next run. The days
skipped shape the names of everything built from them (naming.skip_suffix), so a build
with a gap never shares a name with a clean one.
A changed file always fails: its old content must not be mixed with the new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import poisson

from scoring import atomic, naming
from scoring.data import dataset, schema
from scoring.data.partials import ALL_COLUMN as ALL_EVENTS
from scoring.data.partials import daily_partial
from scoring.errors import RawDataError
from scoring.settings import Settings

log = logging.getLogger(__name__)

CHECKS = (
    "missing",
    "late",
    "volume",
    "duplicates",
    "unknown_users",
    "impossible_values",
    "changed",
    "schema",
    "missing_users",
)
ABSENT = "absent"
# The raw inputs, each one file a day.
INPUTS = ("events", "conversions", "users")
# Volume is only judged against at least this many earlier delivered days.
MIN_HISTORY_DAYS = 3
# A count outside the volume ratios fails only when a Poisson count with the median as its
# mean falls that far less often than this: a day of 1 conversion against a median of 2 is
# chance, a day of 0 against 40 is a broken export.
VOLUME_CHANCE = 1e-3
# Accounts are deleted one by one; a snapshot without more than this share of the users of
# the snapshot before it is an incomplete export.
MISSING_USERS_SHARE = 0.01


class RawDayError(RawDataError):
    """A raw day failed one of the checks; `day`, `check` and `kind` (the input) say which."""

    def __init__(self, day: dt.date, check: str, detail: str, kind: str = "events"):
        self.day = day
        self.check = check
        self.detail = detail
        self.kind = kind
        what = "raw day" if kind == "events" else f"raw {kind} of"
        super().__init__(f"{what} {day.isoformat()} failed the '{check}' check: {detail}")

    def __reduce__(self):
        # Dask hands exceptions between threads and processes by pickling them.
        return (type(self), (self.day, self.check, self.detail, self.kind))


class LabelsSkipped(RawDataError):
    """Under the skip policy: a date whose label window holds a skipped conversions day."""

    def __init__(self, date: dt.date, cause: str):
        self.date = date
        self.cause = cause
        super().__init__(f"labels of {date.isoformat()} are not used: {cause}")

    def __reduce__(self):
        return (type(self), (self.date, self.cause))


def raw_path(settings: Settings, kind: str, day: dt.date) -> Path:
    if kind == "events":
        return naming.raw_events_path(settings, day)
    if kind == "conversions":
        return naming.raw_conversions_path(settings, day)
    return naming.raw_users_path(settings, day)


# --- fingerprints ---------------------------------------------------------------------
#
# A fingerprint is the SHA-256 of a file's bytes. Hashing the raw files of a whole window
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


def raw_fingerprints(settings: Settings) -> FingerprintCache:
    """The fingerprints of the raw files, kept under data/interim/ (see naming)."""
    return FingerprintCache(naming.raw_fingerprints_path(settings))


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


def partial_is_current(
    settings: Settings, day: dt.date, cache: FingerprintCache | None = None
) -> bool:
    recorded = recorded_fingerprint(naming.daily_partial_path(settings, day), cache)
    return recorded is not None and recorded == fingerprint(
        naming.raw_events_path(settings, day), cache
    )


def current_partials(settings: Settings, days: list[dt.date]) -> list[dt.date]:
    """The days whose partial was built from the raw file as it is now.

    Loads the kept raw fingerprints once and keeps what was hashed anew.
    """
    cache = raw_fingerprints(settings)
    try:
        return [day for day in days if partial_is_current(settings, day, cache)]
    finally:
        cache.save()


def check_not_changed(
    settings: Settings, day: dt.date, cache: FingerprintCache | None = None
) -> None:
    """Fail if a partial of `day` exists that was built from other content than today's."""
    partial = naming.daily_partial_path(settings, day)
    recorded = recorded_fingerprint(partial, cache)
    if recorded is None:
        return
    current = fingerprint(naming.raw_events_path(settings, day), cache)
    if recorded != current:
        raise RawDayError(
            day,
            "changed",
            f"{naming.raw_events_path(settings, day)} now has fingerprint {current}, but "
            f"{partial} was built from {recorded}. Outputs of the old content exist; remove "
            f"that partial and the window states, test sets and predictions of the "
            f"{settings.aggregation_window} dates whose window holds {day}, then run again",
        )


# --- gaps -----------------------------------------------------------------------------


def gap_path(settings: Settings, day: dt.date, kind: str = "events") -> Path:
    prefix = "" if kind == "events" else f"{kind}-"
    return settings.interim_dir / "gaps" / f"{prefix}{day.isoformat()}.json"


def record_gap(settings: Settings, error: RawDayError) -> None:
    """Record a skipped day with the fingerprint of its raw file as it is now."""
    path = raw_path(settings, error.kind, error.day)
    record = {
        "input": error.kind,
        "day": error.day.isoformat(),
        "check": error.check,
        "message": str(error),
        "file": str(path),
        "fingerprint": fingerprint(path),
    }
    atomic.write_text(
        json.dumps(record, indent=2) + "\n", gap_path(settings, error.day, error.kind)
    )


def clear_gap(settings: Settings, day: dt.date, kind: str = "events") -> None:
    gap_path(settings, day, kind).unlink(missing_ok=True)


def recorded_gaps(settings: Settings) -> list[dict]:
    directory = settings.interim_dir / "gaps"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def skipped(settings: Settings) -> set[tuple[str, dt.date]]:
    """The (input, day) gaps that stand: the policy is skip and the raw file is the one the
    gap was recorded for (a day that arrived or was delivered again is checked anew)."""
    if settings.raw_day_policy != "skip":
        return set()
    standing = set()
    for path in sorted((settings.interim_dir / "gaps").glob("*.json")):
        try:
            record = json.loads(path.read_text())
            kind, day = record.get("input", "events"), dt.date.fromisoformat(record["day"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record stands for nothing: the day is checked again
        if kind in INPUTS and record.get("fingerprint") == fingerprint(
            raw_path(settings, kind, day)
        ):
            standing.add((kind, day))
    return standing


def skipped_days(settings: Settings, kind: str, days) -> list[dt.date]:
    wanted = set(days)
    return sorted(day for k, day in skipped(settings) if k == kind and day in wanted)


# --- arrival --------------------------------------------------------------------------

_NOUNS = {"conversions": "conversions file", "users": "user snapshot"}


def _available_days(settings: Settings, kind: str) -> list[dt.date]:
    if kind == "events":
        return dataset.available_raw_days(settings)
    directory = raw_path(settings, kind, dt.date(2000, 1, 1)).parent
    days = []
    for path in sorted(directory.glob("*.parquet")):
        try:
            days.append(dt.date.fromisoformat(path.stem))
        except ValueError:
            continue
    return days


def _arrival_error(settings: Settings, day: dt.date, kind: str = "events") -> RawDayError:
    path = raw_path(settings, kind, day)
    later = [d for d in _available_days(settings, kind) if d > day]
    due = day + dt.timedelta(days=settings.data_delay)
    if kind == "events":
        if later:
            return RawDayError(
                day, "missing", f"{path} was never delivered, but later days were (from {later[0]})"
            )
        return RawDayError(day, "late", f"{path} has not arrived yet (expected by {due})")
    noun = _NOUNS[kind]
    if later:
        detail = f"{path}: the {noun} of {day} is missing, but later days were delivered"
        return RawDayError(day, "missing", f"{detail} (from {later[0]})", kind)
    detail = f"{path}: the {noun} of {day} is missing; it has not arrived yet (expected by {due})"
    return RawDayError(day, "late", detail, kind)


def wait_for_arrival(
    settings: Settings, day: dt.date, sleep=time.sleep, kind: str = "events"
) -> bool:
    """Whether the day's file exists, after waiting for it as the policy says.

    Returns False only under the skip policy (the gap is recorded); raises RawDayError
    (missing or late) under fail, and under wait once the time is up.
    """
    path = raw_path(settings, kind, day)
    if path.exists():
        return True
    if settings.raw_day_policy == "wait":
        deadline = time.monotonic() + settings.raw_wait_seconds
        while time.monotonic() < deadline:
            sleep(min(settings.raw_poll_seconds, max(0.0, deadline - time.monotonic())))
            if path.exists():
                return True
    error = _arrival_error(settings, day, kind)
    if settings.raw_day_policy == "skip":
        record_gap(settings, error)
        return False
    raise error


# --- content --------------------------------------------------------------------------


def _trailing_counts(settings: Settings, day: dt.date, kind: str = "events") -> list[int]:
    counts = []
    for back in range(1, 2 * settings.volume_trailing_days + 1):
        path = raw_path(settings, kind, day - dt.timedelta(days=back))
        if path.exists():
            try:
                counts.append(pq.read_metadata(path).num_rows)
            except (pa.ArrowException, OSError):
                continue  # that day fails its own checks when it is used
        if len(counts) == settings.volume_trailing_days:
            break
    return counts


def _by_chance(rows: int, median: float) -> bool:
    """Whether a Poisson count with mean `median` comes out as far as `rows` often enough."""
    if rows < median:
        return poisson.cdf(rows, median) >= VOLUME_CHANCE
    return poisson.sf(rows - 1, median) >= VOLUME_CHANCE


def check_volume(settings: Settings, day: dt.date, rows: int, kind: str = "events") -> None:
    history = _trailing_counts(settings, day, kind)
    if len(history) < MIN_HISTORY_DAYS:
        return
    median = statistics.median(history)
    low, high = settings.volume_min_ratio * median, settings.volume_max_ratio * median
    if not low <= rows <= high and not _by_chance(rows, median):
        where = "" if kind == "events" else f"{raw_path(settings, kind, day)}: "
        noun = {"events": "events", "conversions": "conversions", "users": "users"}[kind]
        raise RawDayError(
            day,
            "volume",
            f"{where}{rows} {noun}, against a median of {median:g} over the {len(history)} "
            f"delivered days before it (allowed {low:g} to {high:g}; "
            "SCORING_VOLUME_MIN_RATIO / SCORING_VOLUME_MAX_RATIO)",
            kind,
        )


# Bits of the event code in the key of count_repeats (the codes of schema.EVENT_TYPES).
_CODE_BITS = 3


def count_repeats(events: pa.Table) -> int:
    """How many events repeat an earlier one: same user, timestamp and event code.

    User ids are positive (checked before) and a day's timestamps span less than 2**37
    microseconds, so user, code and the timestamp's offset in the day usually fit one
    int64: the keys are sorted (a tenth of the time of a hash group_by on a day of
    events) and equal neighbours are repeats. Otherwise Arrow's group_by counts them.
    """
    users = events["user_id"].to_numpy().astype(np.int64, copy=False)
    codes = events["event_code"].to_numpy()
    stamps = events["timestamp"].cast(pa.int64()).to_numpy()
    if users.size < 2:
        return 0
    low = int(stamps.min())
    stamp_bits = (int(stamps.max()) - low).bit_length()
    if (
        int(users.min()) > 0
        and int(codes.max()) < 1 << _CODE_BITS
        and (int(users.max()).bit_length() + _CODE_BITS + stamp_bits <= 63)
    ):
        keys = np.left_shift(users, _CODE_BITS + stamp_bits)
        keys |= np.left_shift(codes.astype(np.int64), stamp_bits)
        keys |= stamps - low
        keys.sort()
        return int(np.count_nonzero(keys[1:] == keys[:-1]))
    keys = pa.table({"u": events["user_id"], "t": events["timestamp"], "e": events["event_code"]})
    return keys.num_rows - keys.group_by(["u", "t", "e"]).aggregate([]).num_rows


def check_events(settings: Settings, day: dt.date, events: pa.Table) -> None:
    """The checks of validated events (dataset.read_events) of `day` that need each event."""
    user_ids = events["user_id"].to_numpy()
    bad_ids = user_ids[user_ids <= 0]
    if bad_ids.size:
        raise RawDayError(
            day, "impossible_values", f"{bad_ids.size} events have user ids <= 0 ({bad_ids[0]})"
        )
    repeats = count_repeats(events)
    if repeats:
        raise RawDayError(day, "duplicates", f"{repeats} of {events.num_rows} events are repeats")


def check_users(settings: Settings, day: dt.date, partial: pa.Table) -> None:
    """Every user of the day's partial (daily.daily_partial: one row per user, ordered by
    id, `n_all` events) is in that day's snapshot and had signed up by then.

    Each user of the day is looked up once, in id order, instead of each event.
    """
    users = users_as_of(settings, day)
    ids = partial["user_id"].to_numpy()
    events = partial[ALL_EVENTS].to_numpy()
    rows = dataset.rows_of_sorted(ids, users["user_id"])
    unknown = rows < 0
    if unknown.any():
        examples = ids[unknown][:5].tolist()
        raise RawDayError(
            day,
            "unknown_users",
            f"{int(events[unknown].sum())} events of {int(unknown.sum())} users absent "
            f"from {naming.raw_users_path(settings, day)} (e.g. {examples})",
        )
    signup = users["signup_date"].cast(pa.int32()).to_numpy()[rows]
    early = signup > (day - dt.date(1970, 1, 1)).days
    if early.any():
        raise RawDayError(
            day,
            "impossible_values",
            f"{int(events[early].sum())} events of users who signed up after {day} "
            f"(e.g. user {ids[early][0]})",
        )


def checked_partial(settings: Settings, day: dt.date) -> pa.Table | None:
    """The partial of `day`'s validated and checked events, or None when the skip policy
    dropped the day."""
    if not wait_for_arrival(settings, day):
        return None
    path = naming.raw_events_path(settings, day)
    events = dataset.read_events(path, day)
    try:
        check_events(settings, day, events)
        partial = daily_partial(events, day)
        check_users(settings, day, partial)
        check_volume(settings, day, events.num_rows)
    except RawDayError as error:
        if settings.raw_day_policy != "skip":
            raise
        record_gap(settings, error)
        return None
    return partial


# --- labels and user snapshots --------------------------------------------------------


def checked_record_path(settings: Settings, kind: str, day: dt.date) -> Path:
    return settings.interim_dir / "checked" / kind / f"{day.isoformat()}.json"


def _check_unchanged(settings: Settings, kind: str, day: dt.date) -> str:
    """The file's fingerprint; fails if it differs from the one kept when it first passed."""
    path = raw_path(settings, kind, day)
    current = fingerprint(path)
    record = checked_record_path(settings, kind, day)
    try:
        kept = json.loads(record.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return current
    if kept != current:
        used = "train sets, models and live evaluations labelled from it"
        if kind == "users":
            used = "test sets, train sets, models and predictions of the dates it is the cutoff of"
        raise RawDayError(
            day,
            "changed",
            f"{path} now has fingerprint {current}, but it had {kept} when it was checked "
            f"and used. Outputs of the old content exist; remove {record} and the {used}, "
            "then run again",
            kind,
        )
    return current


def _passed(settings: Settings, kind: str, day: dt.date, stamp: str) -> None:
    record = checked_record_path(settings, kind, day)
    if not record.exists():
        atomic.write_text(json.dumps({"fingerprint": stamp}) + "\n", record)
    clear_gap(settings, day, kind)


def _checked(settings: Settings, kind: str, day: dt.date, read) -> pa.Table | None:
    """The day's table after every check, or None when the skip policy left it out (the
    gap recorded). `changed` always fails."""
    if not wait_for_arrival(settings, day, kind=kind):
        return None
    try:
        stamp = _check_unchanged(settings, kind, day)
        path = raw_path(settings, kind, day)
        try:
            table = read(path)
        except RawDataError as error:
            raise RawDayError(day, "schema", str(error), kind) from None
        check_volume(settings, day, table.num_rows, kind)
        if kind == "users":
            _check_no_users_lost(settings, day, table)
    except RawDayError as error:
        if error.check == "changed" or settings.raw_day_policy != "skip":
            raise
        record_gap(settings, error)
        return None
    _passed(settings, kind, day, stamp)
    return table


def checked_conversions(settings: Settings, day: dt.date) -> pa.Table | None:
    """The conversions of `day` (user_id, timestamp) after the checks; None if skipped."""
    return _checked(settings, "conversions", day, lambda path: dataset.read_conversions(path, day))


def _read_snapshot(path: Path) -> pa.Table:
    table = schema.read_checked(path, schema.USERS_COLUMNS)
    return pa.table(
        {
            "user_id": table["user_id"].cast(pa.int64()),
            "signup_date": table["signup_date"].cast(pa.date32()),
            "is_premium": table["is_premium"],
        }
    )


def _check_no_users_lost(settings: Settings, day: dt.date, users: pa.Table) -> None:
    before = raw_path(settings, "users", day - dt.timedelta(days=1))
    try:
        earlier = pq.read_table(before, columns=["user_id"])["user_id"]
    except (FileNotFoundError, pa.ArrowException, OSError):
        return  # nothing to compare with; that snapshot fails its own checks when used
    ids = np.unique(earlier.to_numpy().astype(np.int64, copy=False))
    if not ids.size:
        return
    lost = ids[dataset.rows_of_sorted(ids, users["user_id"]) < 0]
    if lost.size > MISSING_USERS_SHARE * ids.size:
        raise RawDayError(
            day,
            "missing_users",
            f"{raw_path(settings, 'users', day)}: {lost.size} of the {ids.size} users of "
            f"{before.name} are missing (e.g. {lost[:5].tolist()}; more than "
            f"{MISSING_USERS_SHARE:.0%} is an incomplete export)",
            "users",
        )


def checked_users(settings: Settings, day: dt.date) -> pa.Table | None:
    """The user snapshot of `day` (user_id, signup_date, is_premium) after the checks;
    None if skipped."""
    return _checked(settings, "users", day, _read_snapshot)


def users_as_of(settings: Settings, day: dt.date) -> pa.Table:
    """The checked user snapshot of `day`. Under the skip policy a snapshot that fails is
    left out (its gap recorded) for the latest earlier one that passes, never a later one."""
    for back in range(settings.volume_trailing_days + 1):
        earlier = day - dt.timedelta(days=back)
        users = checked_users(settings, earlier)
        if users is not None:
            if back:
                log.warning("the user snapshot of %s stands in for the one of %s", earlier, day)
            return users
    raise RawDataError(
        f"{naming.raw_users_path(settings, day)}: the user snapshot of {day} and the "
        f"{settings.volume_trailing_days} before it were all skipped; the attributes as of "
        "that day or shortly before are needed"
    )
