"""Records of the raw days left out under the skip policy (data/interim/gaps/).

A gap is recorded with the fingerprint of the raw file as it was then; which gaps stand now
(and so shape the names of what is built) is `naming.standing_gaps`.
"""

from __future__ import annotations

import datetime as dt
import json

from scoring import atomic, fingerprints, naming
from scoring.errors import RawDayError
from scoring.settings import Settings


def record_gap(settings: Settings, error: RawDayError) -> None:
    """Record a skipped day with the fingerprint of its raw file as it is now."""
    path = naming.raw_path(settings, error.kind, error.day)
    record = {
        "input": error.kind,
        "day": error.day.isoformat(),
        "check": error.check,
        "message": str(error),
        "file": str(path),
        "fingerprint": fingerprints.fingerprint(path),
    }
    atomic.write_text(
        json.dumps(record, indent=2) + "\n", naming.gap_path(settings, error.day, error.kind)
    )


def clear_gap(settings: Settings, day: dt.date, kind: str = "events") -> None:
    naming.gap_path(settings, day, kind).unlink(missing_ok=True)


def recorded_gaps(settings: Settings) -> list[dict]:
    directory = settings.interim_dir / "gaps"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def skipped_days(settings: Settings, kind: str, days) -> list[dt.date]:
    wanted = set(days)
    return sorted(day for k, day in naming.standing_gaps(settings) if k == kind and day in wanted)
