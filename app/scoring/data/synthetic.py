"""Synthetic raw data for development and tests: seeded, deterministic, point in time.

Raw layout under the data root (the same as the upstream exports deliver):

    data/raw/users/<YYYY-MM-DD>.parquet        user_id, signup_date, is_premium, region
                                               (every user signed up by that day, with the
                                               attributes they had at the end of it)
    data/raw/events/<YYYY-MM-DD>.parquet       user_id, timestamp, event_type
    data/raw/conversions/<YYYY-MM-DD>.parquet  user_id, timestamp

The generator simulates users whose activity follows a heavy-tailed (Zipf-like) law and who
go through "house hunting" phases. While hunting they save listings and contact agents far
more often, and that is when they convert; so conversions depend on the recent event mix in a
way a model can learn, while raw activity volume alone is a weak signal. Premium membership
changes over time (users upgrade and cancel), and premium users start hunting more often, so
the attribute matters and must be taken as of each date.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from scoring import atomic, fingerprints, naming
from scoring.data import schema
from scoring.settings import Settings

log = logging.getLogger(__name__)

REGIONS = ("BE", "BY", "BW", "HE", "HH", "NI", "NW", "SN")
# Share of each event type (in schema.EVENT_TYPES order) for browsing vs. hunting users.
BROWSING_MIX = np.array([0.36, 0.46, 0.04, 0.01, 0.13])
HUNTING_MIX = np.array([0.20, 0.30, 0.20, 0.20, 0.10])
HUNTING_ACTIVITY_BOOST = 1.0
HUNT_START_PROBABILITY = 0.015
HUNT_STOP_PROBABILITY = 0.06
US_PER_DAY = 86_400_000_000
# Daily chance that a free user upgrades / a premium user cancels.
UPGRADE_PROBABILITY = 0.004
CANCEL_PROBABILITY = 0.01


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
    draw = rng.integers(-720, config.days, size=n)
    # Most users already exist at the start, signed up on any of the 720 days before it
    # (their draw scaled onto those days: one day holding a lump of users would drift past
    # a model's account ages within days); the rest sign up at any time.
    before = (draw + 720) * 720 // (720 + config.days) - 720
    signup_offset = np.where(rng.random(n) < 0.85, before, draw)
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
        self.premium = users["is_premium"].to_numpy(zero_copy_only=False).copy()
        self.region = users["region"]
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
        self.hunting = rng.random(n) < 0.15
        self.recent_contacts = np.zeros(n)
        self.cum_browsing = np.cumsum(BROWSING_MIX)
        self.cum_hunting = np.cumsum(HUNTING_MIX)

    def step(self, day: dt.date) -> tuple[pa.Table, pa.Table, pa.Table]:
        rng, n = self.rng, len(self.user_ids)
        day_number = (day - dt.date(1970, 1, 1)).days
        signed_up = self.signup_day <= day_number
        flips = rng.random(n)
        upgrades = ~self.premium & (flips < UPGRADE_PROBABILITY)
        cancels = self.premium & (flips < CANCEL_PROBABILITY)
        self.premium = (self.premium | upgrades) & ~cancels
        hunt_start = np.where(self.premium, 2.0, 1.0) * HUNT_START_PROBABILITY
        starts = ~self.hunting & (rng.random(n) < hunt_start)
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
        return events, conversions, self.snapshot(signed_up)

    def snapshot(self, signed_up: np.ndarray) -> pa.Table:
        """The users known at the end of the day, with their attributes then."""
        keep = np.flatnonzero(signed_up)
        return pa.table(
            {
                "user_id": pa.array(self.user_ids[keep]),
                "signup_date": pa.array(self.signup_day[keep], pa.int32()).cast(pa.date32()),
                "is_premium": pa.array(self.premium[keep]),
                "region": self.region.take(pa.array(keep)),
            }
        )


def _derived_outputs(settings: Settings) -> list[Path]:
    roots = [settings.interim_dir, settings.data_root / "data" / "processed", settings.models_dir]
    return [p for root in roots for p in sorted(root.rglob("*")) if not p.is_dir()]


def _write_raw(table: pa.Table, target: Path) -> bool:
    """Write one raw file; whether it replaced a file of other content."""
    before = fingerprints.fingerprint(target)
    atomic.write_parquet(table, target)
    return before not in (fingerprints.ABSENT, fingerprints.fingerprint(target))


def generate(config: GeneratorConfig, settings: Settings, progress: bool = True) -> int:
    """Write a complete synthetic raw dump; returns the number of events written.

    Deterministic: the same config always writes byte-identical data. When it replaces raw
    files of other content (another start or seed), every output built from the old data
    is removed (files only: the directories and their ownership stay), since outputs of
    the old content must not be mixed with the new.
    """
    rng = np.random.default_rng(config.seed)
    users = _make_users(config, rng)
    settings.ensure_dirs()
    simulation = _Simulation(config, users, rng)
    total = 0
    days = [config.start + dt.timedelta(days=i) for i in range(config.days)]
    replaced = False
    for day in tqdm(days, desc="generating raw days", unit="day", disable=not progress):
        events, conversions, snapshot = simulation.step(day)
        replaced |= _write_raw(snapshot, naming.raw_users_path(settings, day))
        replaced |= _write_raw(events, naming.raw_events_path(settings, day))
        replaced |= _write_raw(conversions, naming.raw_conversions_path(settings, day))
        total += events.num_rows
    if replaced:
        stale = _derived_outputs(settings)
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            log.warning("removed %d outputs built from the replaced raw data", len(stale))
    return total
