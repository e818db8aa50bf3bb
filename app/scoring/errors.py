"""Errors that describe a problem the user can fix; the CLI prints them without a traceback."""

from __future__ import annotations

import datetime as dt


class ScoringError(Exception):
    """Base class for expected, user-facing failures."""


class ConfigError(ScoringError):
    """An environment variable or command-line value is invalid."""


class RawDataError(ScoringError):
    """A raw input file is missing, unreadable or does not match the expected schema."""


class MissingInputError(ScoringError):
    """An input that a step needs has not been produced yet."""


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
