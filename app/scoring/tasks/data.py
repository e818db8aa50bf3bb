"""Tasks from raw dumps to feature tables: partials, window state, test and train sets."""

from __future__ import annotations

import datetime as dt

import luigi

from scoring import naming, pipeline
from scoring.data import checks
from scoring.data.dataset import days_between, label_days
from scoring.features import build
from scoring.tasks.base import Configured, ScoringTask, TrainedTask


class RawEvents(Configured):
    """A day of raw events delivered by the upstream export."""

    day: dt.date = luigi.DateParameter()
    run = None  # external: delivered, never produced here

    def output(self):
        return luigi.LocalTarget(naming.raw_events_path(self.settings, self.day))


class RawConversions(Configured):
    day: dt.date = luigi.DateParameter()
    run = None

    def output(self):
        return luigi.LocalTarget(naming.raw_conversions_path(self.settings, self.day))


class RawUsers(Configured):
    """The snapshot of the user attributes as of the end of `day`."""

    day: dt.date = luigi.DateParameter()
    run = None

    def output(self):
        return luigi.LocalTarget(naming.raw_users_path(self.settings, self.day))


class DailyPartials(Configured):
    """Per-user counts of the raw days `first` to `last`, each day checked before use.

    Complete when every day has a partial built from the raw file as it is now (same
    fingerprint). Missing days are built together, one Dask task per day. A raw day is
    checked in `run`, never as an external requirement, so a missing, late or bad day
    fails with the day and the check named (or is waited for or skipped, as
    SCORING_RAW_DAY_POLICY says).
    """

    first: dt.date = luigi.DateParameter()
    last: dt.date = luigi.DateParameter()

    def days(self) -> list[dt.date]:
        return list(days_between(self.first, self.last))

    def output(self):
        return [luigi.LocalTarget(naming.daily_partial_path(self.settings, d)) for d in self.days()]

    def complete(self) -> bool:
        days = self.days()
        return build.built_or_skipped(self.settings, days) == days

    def run(self):
        build.ensure_daily_partials(self.settings, self.days())


class WindowState(ScoringTask):
    """Aggregated window of a scoring date; slides yesterday's state when it exists."""

    date: dt.date = luigi.DateParameter()

    def requires(self):
        days = build.window_days(self.settings, self.date)
        return DailyPartials(first=days[0], last=days[-1])

    def output(self):
        path = naming.window_state_path(self.settings, self.date, self.spec.hash)
        return luigi.LocalTarget(path)

    def run(self):
        build.window_state(self.settings, self.spec, self.date, "incremental")


class TestSet(ScoringTask):
    """Features of every active user for one scoring date (no labels)."""

    date: dt.date = luigi.DateParameter()

    def requires(self):
        cutoff = self.settings.feature_cutoff(self.date)
        return [WindowState(date=self.date), RawUsers(day=cutoff)]

    def output(self):
        return luigi.LocalTarget(naming.test_set_path(self.settings, self.date, self.spec.hash))

    def run(self):
        # The snapshot is checked before the output is named: a skipped one shapes the name.
        checks.users_as_of(self.settings, self.settings.feature_cutoff(self.date))
        pipeline.write_test_set(self.settings, self.spec, self.date)


class TrainSet(TrainedTask):
    """Labelled features of the `train_days` dates ending at `train_end`."""

    train_end: dt.date = luigi.DateParameter()

    def dates(self) -> list[dt.date]:
        return pipeline.train_dates(self.settings, self.train_end)

    def requires(self):
        tests = [TestSet(date=d) for d in self.dates()]
        label_inputs = {day for d in self.dates() for day in label_days(self.settings, d)}
        return tests + [RawConversions(day=day) for day in sorted(label_inputs)]

    def output(self):
        return luigi.LocalTarget(
            naming.train_set_path(
                self.settings,
                self.dates(),
                self.spec.hash,
                naming.label_hash(self.settings.lead_window),
            )
        )

    def run(self):
        # The labels are checked before the output is named: skipped days shape the name.
        for day in sorted({day for d in self.dates() for day in label_days(self.settings, d)}):
            checks.checked_conversions(self.settings, day)
        pipeline.write_train_set(self.settings, self.spec, self.dates())
