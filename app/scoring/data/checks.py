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
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import poisson

from scoring import atomic, fingerprints, naming
from scoring.data import dataset, gaps, schema
from scoring.data.partials import ALL_COLUMN as ALL_EVENTS
from scoring.data.partials import daily_partial
from scoring.errors import RawDataError, RawDayError
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
# Volume is only judged against at least this many earlier delivered days.
MIN_HISTORY_DAYS = 3
# A count outside the volume ratios fails only when a Poisson count with the median as its
# mean falls that far less often than this: a day of 1 conversion against a median of 2 is
# chance, a day of 0 against 40 is a broken export.
VOLUME_CHANCE = 1e-3
# Accounts are deleted one by one; a snapshot without more than this share of the users of
# the snapshot before it is an incomplete export.
MISSING_USERS_SHARE = 0.01


def raw_fingerprints(settings: Settings) -> fingerprints.FingerprintCache:
    """The fingerprints of the raw files, kept under data/interim/ (see naming)."""
    return fingerprints.FingerprintCache(naming.raw_fingerprints_path(settings))


def partial_is_current(
    settings: Settings, day: dt.date, cache: fingerprints.FingerprintCache | None = None
) -> bool:
    recorded = fingerprints.recorded_fingerprint(naming.daily_partial_path(settings, day), cache)
    return recorded is not None and recorded == fingerprints.fingerprint(
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
    settings: Settings, day: dt.date, cache: fingerprints.FingerprintCache | None = None
) -> None:
    """Fail if a partial of `day` exists that was built from other content than today's."""
    partial = naming.daily_partial_path(settings, day)
    recorded = fingerprints.recorded_fingerprint(partial, cache)
    if recorded is None:
        return
    current = fingerprints.fingerprint(naming.raw_events_path(settings, day), cache)
    if recorded != current:
        raise RawDayError(
            day,
            "changed",
            f"{naming.raw_events_path(settings, day)} now has fingerprint {current}, but "
            f"{partial} was built from {recorded}. Outputs of the old content exist; remove "
            f"that partial and the window states, test sets and predictions of the "
            f"{settings.aggregation_window} dates whose window holds {day}, then run again",
        )


# --- arrival --------------------------------------------------------------------------

_NOUNS = {"conversions": "conversions file", "users": "user snapshot"}


def _available_days(settings: Settings, kind: str) -> list[dt.date]:
    if kind == "events":
        return dataset.available_raw_days(settings)
    directory = naming.raw_path(settings, kind, dt.date(2000, 1, 1)).parent
    days = []
    for path in sorted(directory.glob("*.parquet")):
        try:
            days.append(dt.date.fromisoformat(path.stem))
        except ValueError:
            continue
    return days


def _arrival_error(settings: Settings, day: dt.date, kind: str = "events") -> RawDayError:
    path = naming.raw_path(settings, kind, day)
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
    path = naming.raw_path(settings, kind, day)
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
        gaps.record_gap(settings, error)
        return False
    raise error


# --- content --------------------------------------------------------------------------


def _trailing_counts(settings: Settings, day: dt.date, kind: str = "events") -> list[int]:
    counts = []
    for back in range(1, 2 * settings.volume_trailing_days + 1):
        path = naming.raw_path(settings, kind, day - dt.timedelta(days=back))
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
        where = "" if kind == "events" else f"{naming.raw_path(settings, kind, day)}: "
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
        gaps.record_gap(settings, error)
        return None
    return partial


# --- labels and user snapshots --------------------------------------------------------


def checked_record_path(settings: Settings, kind: str, day: dt.date) -> Path:
    return settings.interim_dir / "checked" / kind / f"{day.isoformat()}.json"


def _check_unchanged(settings: Settings, kind: str, day: dt.date) -> str:
    """The file's fingerprint; fails if it differs from the one kept when it first passed."""
    path = naming.raw_path(settings, kind, day)
    current = fingerprints.fingerprint(path)
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
    gaps.clear_gap(settings, day, kind)


def _checked(settings: Settings, kind: str, day: dt.date, read) -> pa.Table | None:
    """The day's table after every check, or None when the skip policy left it out (the
    gap recorded). `changed` always fails."""
    if not wait_for_arrival(settings, day, kind=kind):
        return None
    try:
        stamp = _check_unchanged(settings, kind, day)
        path = naming.raw_path(settings, kind, day)
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
        gaps.record_gap(settings, error)
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
    before = naming.raw_path(settings, "users", day - dt.timedelta(days=1))
    try:
        earlier = pq.read_table(before, columns=["user_id"])["user_id"]
    except (FileNotFoundError, pa.ArrowException, OSError):
        return  # nothing to compare with; that snapshot fails its own checks when used
    ids = earlier.to_numpy().astype(np.int64, copy=False)
    # Snapshots are exported in id order: strictly increasing ids are already np.unique's
    # result, without its sort (0.4 s of 1M ids in a new process).
    if ids.size > 1 and not (ids[1:] > ids[:-1]).all():
        ids = np.unique(ids)
    if not ids.size:
        return
    lost = ids[dataset.rows_of_sorted(ids, users["user_id"]) < 0]
    if lost.size > MISSING_USERS_SHARE * ids.size:
        raise RawDayError(
            day,
            "missing_users",
            f"{naming.raw_path(settings, 'users', day)}: {lost.size} of the {ids.size} users of "
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
