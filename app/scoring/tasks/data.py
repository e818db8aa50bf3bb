"""Tasks from raw dumps to feature tables: partials, window state, test and train sets."""

from __future__ import annotations

import datetime as dt

import luigi

from scoring import naming, pipeline
from scoring.data.dataset import label_days
from scoring.features import build
from scoring.settings import get_settings
from scoring.tasks.base import ScoringTask


class RawEvents(luigi.ExternalTask):
    """A day of raw events delivered by the upstream export."""

    day: dt.date = luigi.DateParameter()

    def output(self):
        return luigi.LocalTarget(naming.raw_events_path(get_settings(), self.day))


class RawConversions(luigi.ExternalTask):
    day: dt.date = luigi.DateParameter()

    def output(self):
        return luigi.LocalTarget(naming.raw_conversions_path(get_settings(), self.day))


class RawUsers(luigi.ExternalTask):
    def output(self):
        return luigi.LocalTarget(get_settings().users_path)


class DailyPartial(ScoringTask):
    """Per-user counts of one raw day: the only step that reads raw events in daily runs."""

    day: dt.date = luigi.DateParameter()

    def requires(self):
        return RawEvents(day=self.day)

    def output(self):
        return luigi.LocalTarget(naming.daily_partial_path(self.settings, self.day))

    def run(self):
        raw = naming.raw_events_path(self.settings, self.day)
        build.write_daily_partial(raw, self.day, naming.daily_partial_path(self.settings, self.day))


class WindowState(ScoringTask):
    """Aggregated window of a scoring date; slides yesterday's state when it exists."""

    date: dt.date = luigi.DateParameter()

    def requires(self):
        return [DailyPartial(day=day) for day in build.window_days(self.settings, self.date)]

    def output(self):
        path = naming.window_state_path(self.settings, self.date, self.spec.hash)
        return luigi.LocalTarget(path)

    def run(self):
        build.window_state(self.settings, self.spec, self.date, "incremental")


class TestSet(ScoringTask):
    """Features of every active user for one scoring date (no labels)."""

    date: dt.date = luigi.DateParameter()

    def requires(self):
        return [WindowState(date=self.date), RawUsers()]

    def output(self):
        return luigi.LocalTarget(naming.test_set_path(self.settings, self.date, self.spec.hash))

    def run(self):
        pipeline.write_test_set(self.settings, self.spec, self.date)


class TrainSet(ScoringTask):
    """Labelled features of the `train_days` dates ending at `train_end`."""

    train_end: dt.date = luigi.DateParameter()

    def dates(self) -> list[dt.date]:
        return pipeline.train_dates(self.settings, self.train_end)

    def requires(self):
        tests = [TestSet(date=d) for d in self.dates()]
        label_inputs = {day for d in self.dates() for day in label_days(self.settings, d)}
        return tests + [RawConversions(day=day) for day in sorted(label_inputs)]

    def output(self):
        path = naming.train_set_path(self.settings, self.dates(), self.spec.hash)
        return luigi.LocalTarget(path)

    def run(self):
        pipeline.write_train_set(self.settings, self.spec, self.dates())
