"""Tasks that train models and score dates, including the daily production entry points."""

from __future__ import annotations

import datetime as dt

import luigi

from scoring import naming, pipeline
from scoring.settings import get_settings, parse_date
from scoring.tasks.base import ScoringTask
from scoring.tasks.data import TestSet, TrainSet


class TrainModel(ScoringTask):
    model_type: str = luigi.Parameter()
    train_end: dt.date = luigi.DateParameter()

    def requires(self):
        return TrainSet(train_end=self.train_end)

    def output(self):
        identifier = pipeline.model_identifier(
            self.settings, self.spec, self.model_type, self.train_end
        )
        return luigi.LocalTarget(naming.model_path(self.settings, identifier))

    def run(self):
        pipeline.write_model(self.settings, self.spec, self.model_type, self.train_end)


class Predict(ScoringTask):
    """Scores of every active user for `date`, by the model that was current on that date.

    That model is trained on dates whose labels were complete by `date` (see
    Settings.train_end_for), so scoring past dates never uses labels from their future.
    """

    date: dt.date = luigi.DateParameter()
    model_type: str = luigi.Parameter(default="")

    @property
    def resolved_model_type(self) -> str:
        return self.model_type or self.settings.model_type

    @property
    def train_end(self) -> dt.date:
        return self.settings.train_end_for(self.date)

    def requires(self):
        return [
            TestSet(date=self.date),
            TrainModel(model_type=self.resolved_model_type, train_end=self.train_end),
        ]

    def output(self):
        identifier = pipeline.model_identifier(
            self.settings, self.spec, self.resolved_model_type, self.train_end
        )
        return luigi.LocalTarget(naming.predictions_path(self.settings, identifier, self.date))

    def run(self):
        pipeline.write_predictions(
            self.settings, self.spec, self.resolved_model_type, self.train_end, self.date
        )


class LivePredict(luigi.WrapperTask):
    """Today's scores (today = SCORING_TODAY when set, else the system date)."""

    model_type: str = luigi.Parameter(default="")

    def requires(self):
        return Predict(date=get_settings().today, model_type=self.model_type)


class DailyBackfill(luigi.WrapperTask):
    """Every day from `until - days_back` to `until` that has no predictions yet.

    The daily timer runs this rather than LivePredict so that a day missed because of an
    outage or late data is caught up on the next run; finished days are simply complete.
    """

    # Empty means "today" / SCORING_BACKFILL_DAYS, resolved when the task is scheduled.
    until: str | None = luigi.OptionalParameter(default=None)
    days_back: int | None = luigi.OptionalIntParameter(default=None)
    model_type: str = luigi.Parameter(default="")

    def dates(self) -> list[dt.date]:
        settings = get_settings()
        until = parse_date(self.until, "--until") if self.until else settings.today
        days_back = settings.backfill_days if self.days_back is None else self.days_back
        return [until - dt.timedelta(days=i) for i in range(days_back, -1, -1)]

    def requires(self):
        return [Predict(date=d, model_type=self.model_type) for d in self.dates()]
