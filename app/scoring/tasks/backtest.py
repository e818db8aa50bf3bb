"""Backtest task: predictions of several past dates, figures and a Markdown report."""

from __future__ import annotations

import datetime as dt

import luigi

from scoring import backtest, naming
from scoring.data.dataset import label_days
from scoring.tasks.base import TrainedTask
from scoring.tasks.data import RawConversions
from scoring.tasks.model import Predict


class Backtest(TrainedTask):
    end: dt.date = luigi.DateParameter()
    count: int = luigi.IntParameter(default=4)
    step: int = luigi.IntParameter(default=7)
    model_types: tuple[str, ...] = luigi.ListParameter(default=("hgb", "activity"))

    def dates(self) -> list[dt.date]:
        return backtest.backtest_dates(self.settings, self.end, self.count, self.step)

    def requires(self):
        predictions = [
            Predict(date=d, model_type=m) for d in self.dates() for m in self.model_types
        ]
        days = {day for d in self.dates() for day in label_days(self.settings, d)}
        return predictions + [RawConversions(day=day) for day in sorted(days)]

    def output(self):
        return luigi.LocalTarget(
            naming.backtest_report_path(
                self.settings, self.dates(), list(self.model_types), self.spec.hash
            )
        )

    def run(self):
        backtest.write_backtest(self.settings, self.spec, self.dates(), list(self.model_types))
