"""The daily production entry points: today's scores, and the backfill of the days before.

luigi --module scoring.tasks DailyBackfill
"""

from __future__ import annotations

import datetime as dt

import luigi
from luigi.tools.range import RangeDailyBase

from scoring.features import build
from scoring.settings import get_settings
from scoring.tasks.base import Configured
from scoring.tasks.data import DailyPartials
from scoring.tasks.model import (
    BACKFILL_PRIORITY,
    TODAY_PRIORITY,
    LiveEvaluation,
    Predict,
    TrainModel,
    live_evaluations,
)
from scoring.tasks.monitoring import DriftCheck, MonitoringReport


class DatedTask(Configured, luigi.WrapperTask):
    """A wrapper for one date: left out, the date is today, resolved when it is created,
    so the task id changes from one day to the next."""

    date: dt.date = luigi.DateParameter(default=None)
    configured = (*Configured.configured, "date")

    @classmethod
    def resolve(cls, name, configuration):
        if name == "date":
            return get_settings().today
        return super().resolve(name, configuration)


class LivePredict(DatedTask):
    """Today's scores (today = SCORING_TODAY when set, else the system date)."""

    model_type: str = luigi.Parameter(default="")

    def requires(self):
        return Predict(date=self.date, model_type=self.model_type or None)


class DailyBackfill(DatedTask):
    """`date` and the `days_back` days before it that have no predictions yet.

    The daily timer runs this rather than LivePredict so that a day missed because of an
    outage or late data is caught up on the next run; finished days are simply complete.
    luigi's RangeDailyBase finds the missing dates; today's Predict has the higher
    priority, and the daily partials of the whole range are built in one Dask batch.
    """

    days_back: int = luigi.IntParameter(default=None)
    model_type: str = luigi.Parameter(default="")
    configured = (*DatedTask.configured, "days_back")

    @classmethod
    def resolve(cls, name, configuration):
        if name == "days_back":
            return get_settings().backfill_days
        return super().resolve(name, configuration)

    @property
    def first(self) -> dt.date:
        return self.date - dt.timedelta(days=self.days_back)

    def dates(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range(self.days_back + 1)]

    def requires(self):
        settings = self.settings
        # One batch for every raw day that any date of the range needs.
        earliest = build.window_days(settings, self.first)[0]
        latest = build.window_days(settings, self.date)[-1]
        stop = self.date + dt.timedelta(days=1)
        # The configuration goes in of_params too, so that the range task of staging and
        # the one of production differ on a shared luigid.
        predict = Predict(date=self.date, model_type=self.model_type or None)
        of_params = {name: getattr(predict, name) for name in Predict.configured}
        return [
            RangeDailyBase(
                of=Predict,
                of_params=of_params,
                start=self.first,
                stop=stop,
                days_back=self.days_back + 1,
                days_forward=0,
                # The range's clock is the pipeline's "today", not the wall clock.
                now=_epoch(stop),
                reverse=True,
                param_name="date",
            ),
            BackfillPartials(first=earliest, last=latest),
            # Today's model meets the gate even when production already scored today (a new
            # line, a rerun after a rollback: then it is complete and changes nothing).
            TrainModel(
                model_type=self.model_type or None,
                train_end=settings.train_end_for(self.date),
            ),
            *self.live_evaluations(),
            # After the scores: the drift of the date and the report (scoring.tasks.monitoring).
            DriftCheck(date=self.date, model_type=self.model_type or None),
            MonitoringReport(
                date=self.date, days_back=self.days_back, model_type=self.model_type or None
            ),
        ]

    def live_evaluations(self) -> list[LiveEvaluation]:
        return live_evaluations(self.settings, self.date, self.days_back, self.model_type or None)


class BackfillPartials(DailyPartials):
    """The daily partials of a whole backfill in one Dask batch: after today's scores (which
    need only their own window) and before the older dates, which then find them built."""

    priority = (TODAY_PRIORITY + BACKFILL_PRIORITY) // 2


def _epoch(day: dt.date) -> int:
    """Seconds since the epoch of midnight UTC starting `day`."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
