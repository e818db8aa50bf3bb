"""Synthetic raw data for development and tests, and the validated loader for raw dumps.

Raw layout under the data root:

    data/raw/users.parquet                     user_id, signup_date, is_premium, region
    data/raw/events/<YYYY-MM-DD>.parquet       user_id, timestamp, event_type
    data/raw/conversions/<YYYY-MM-DD>.parquet  user_id, timestamp

The generator simulates users whose activity follows a heavy-tailed (Zipf-like) law and who
go through "house hunting" phases. While hunting they save listings and contact agents far
more often, and that is when they convert; so conversions depend on the recent event mix in a
way a model can learn, while raw activity volume alone is a weak signal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from scoring import atomic, naming
from scoring.data import schema
from scoring.errors import MissingInputError
from scoring.settings import Settings

REGIONS = ("BE", "BY", "BW", "HE", "HH", "NI", "NW", "SN")
# Share of each event type (in schema.EVENT_TYPES order) for browsing vs. hunting users.
BROWSING_MIX = np.array([0.36, 0.46, 0.04, 0.01, 0.13])
HUNTING_MIX = np.array([0.20, 0.30, 0.20, 0.20, 0.10])
HUNTING_ACTIVITY_BOOST = 1.0
HUNT_START_PROBABILITY = 0.015
HUNT_STOP_PROBABILITY = 0.06
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    users: int = 2_000
    start: dt.date = dt.date(2026, 6, 1)
    days: int = 120
    events_per_user_day: float = 0.5
    seed: int = 0

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @classmethod
    def for_total_events(cls, events: int, users: int, days: int, **kwargs) -> GeneratorConfig:
        return cls(users=users, days=days, events_per_user_day=events / (users * days), **kwargs)


def _day_start_us(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * US_PER_DAY


def _make_users(config: GeneratorConfig, rng: np.random.Generator) -> pa.Table:
    n = config.users
    signup_offset = rng.integers(-720, config.days, size=n)
    # Most users already exist at the start; the rest sign up during the period.
    signup_offset = np.where(rng.random(n) < 0.85, np.minimum(signup_offset, 0), signup_offset)
    start_day = (config.start - dt.date(1970, 1, 1)).days
    return pa.table(
        {
            "user_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "signup_date": pa.array((start_day + signup_offset).astype(np.int32), pa.date32()),
            "is_premium": pa.array(rng.random(n) < 0.1),
            "region": pa.array(np.array(REGIONS)[rng.integers(0, len(REGIONS), n)]),
        }
    )


class _Simulation:
    """Day-by-day state of all users; every draw comes from one seeded generator."""

    def __init__(self, config: GeneratorConfig, users: pa.Table, rng: np.random.Generator):
        n = config.users
        self.rng = rng
        self.config = config
        self.user_ids = users["user_id"].to_numpy()
        self.signup_day = users["signup_date"].cast(pa.int32()).to_numpy()
        premium = users["is_premium"].to_numpy(zero_copy_only=False)
        # Pareto tail gives the Zipf-like spread: a few users produce most events.
        propensity = np.minimum(rng.pareto(1.3, n) + 0.2, 200.0)
        # Normalise so that events_per_user_day holds on average over all user-days of the
        # period: correct for hunting phases (measured: about 14% of users at any time) and
        # for users who only sign up during the period.
        expected_boost = 1 + HUNTING_ACTIVITY_BOOST * 0.14
        start_day = (config.start - dt.date(1970, 1, 1)).days
        days_signed_up = np.clip(start_day + config.days - self.signup_day, 0, config.days)
        signed_up_share = max(days_signed_up.mean() / config.days, 1e-9)
        self.rate = (
            propensity
            / propensity.mean()
            * config.events_per_user_day
            / (expected_boost * signed_up_share)
        )
        self.hunt_start = np.where(premium, 2.0, 1.0) * HUNT_START_PROBABILITY
        self.hunting = rng.random(n) < 0.15
        self.recent_contacts = np.zeros(n)
        self.cum_browsing = np.cumsum(BROWSING_MIX)
        self.cum_hunting = np.cumsum(HUNTING_MIX)

    def step(self, day: dt.date) -> tuple[pa.Table, pa.Table]:
        rng, n = self.rng, len(self.user_ids)
        day_number = (day - dt.date(1970, 1, 1)).days
        signed_up = self.signup_day <= day_number
        starts = ~self.hunting & (rng.random(n) < self.hunt_start)
        stops = self.hunting & (rng.random(n) < HUNT_STOP_PROBABILITY)
        self.hunting = (self.hunting | starts) & ~stops

        weekday_factor = 0.85 if day.weekday() >= 5 else 1.06  # averages 1 over a week
        rate = self.rate * (1 + HUNTING_ACTIVITY_BOOST * self.hunting) * weekday_factor
        counts = np.where(signed_up, rng.poisson(rate), 0)
        owner = np.repeat(np.arange(n), counts)
        uniform = rng.random(owner.size)
        cum = np.where(self.hunting[owner, None], self.cum_hunting, self.cum_browsing)
        type_code = (uniform[:, None] > cum[:, :-1]).sum(axis=1).astype(np.int8)
        offsets = rng.integers(0, US_PER_DAY, owner.size)
        order = np.argsort(offsets, kind="stable")
        events = pa.table(
            {
                "user_id": pa.array(self.user_ids[owner[order]]),
                "timestamp": pa.array(_day_start_us(day) + offsets[order], pa.timestamp("us")),
                "event_type": pa.DictionaryArray.from_arrays(
                    pa.array(type_code[order]), pa.array(schema.EVENT_TYPES)
                ),
            }
        )

        contact_code = schema.EVENT_TYPES.index("contact_request")
        contacts_today = np.bincount(owner[type_code == contact_code], minlength=n)
        self.recent_contacts = 0.7 * self.recent_contacts + contacts_today
        logit = -8.0 + 4.5 * self.hunting + 0.8 * np.log1p(self.recent_contacts)
        converts = signed_up & (rng.random(n) < 1 / (1 + np.exp(-logit)))
        # A converted user has found a home: the hunt is over.
        self.hunting &= ~converts
        self.recent_contacts[converts] = 0
        converted = np.flatnonzero(converts)
        conversions = pa.table(
            {
                "user_id": pa.array(self.user_ids[converted]),
                "timestamp": pa.array(
                    _day_start_us(day) + rng.integers(0, US_PER_DAY, converted.size),
                    pa.timestamp("us"),
                ),
            }
        )
        return events, conversions


def generate(config: GeneratorConfig, settings: Settings, progress: bool = True) -> int:
    """Write a complete synthetic raw dump; returns the number of events written.

    Deterministic: the same config always writes byte-identical data.
    """
    rng = np.random.default_rng(config.seed)
    users = _make_users(config, rng)
    settings.ensure_dirs()
    atomic.write_parquet(users, settings.users_path)
    simulation = _Simulation(config, users, rng)
    total = 0
    days = [config.start + dt.timedelta(days=i) for i in range(config.days)]
    for day in tqdm(days, desc="generating raw days", unit="day", disable=not progress):
        events, conversions = simulation.step(day)
        atomic.write_parquet(events, naming.raw_events_path(settings, day))
        atomic.write_parquet(conversions, naming.raw_conversions_path(settings, day))
        total += events.num_rows
    return total


# --- loading -----------------------------------------------------------------


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


def read_users(settings: Settings) -> pa.Table:
    table = schema.read_checked(settings.users_path, schema.USERS_COLUMNS)
    return pa.table(
        {
            "user_id": table["user_id"].cast(pa.int64()),
            "signup_date": table["signup_date"].cast(pa.date32()),
            "is_premium": table["is_premium"],
        }
    )


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
    return list(days_between(date, date + dt.timedelta(days=settings.lead_window - 1)))


def read_labels(settings: Settings, date: dt.date) -> np.ndarray:
    """Sorted ids of the users who converted within the label window of `date`."""
    converted = []
    for day in label_days(settings, date):
        path = naming.raw_conversions_path(settings, day)
        if not path.exists():
            raise MissingInputError(
                f"{path}: conversions for {day} are needed to label {date} but are missing"
            )
        converted.append(read_conversions(path, day)["user_id"].to_numpy())
    return np.unique(np.concatenate(converted)) if converted else np.array([], dtype=np.int64)
