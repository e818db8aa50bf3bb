"""Tasks of one model type: training, scoring a date and evaluating published scores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import luigi

from scoring import naming, pipeline
from scoring.data.dataset import label_days
from scoring.monitoring import live, registry
from scoring.settings import get_settings
from scoring.tasks.base import TrainedTask
from scoring.tasks.data import RawConversions, TestSet, TrainSet

# Today's scores are what the business waits for: they run before any catch-up work.
TODAY_PRIORITY = 100
BACKFILL_PRIORITY = 10


class ModelTask(TrainedTask):
    """A task of one model type; left out, the type comes from SCORING_MODEL_TYPE."""

    model_type: str = luigi.Parameter(default=None, positional=False)
    configured = (*TrainedTask.configured, "model_type")

    @classmethod
    def resolve(cls, name, configuration):
        if name == "model_type":
            return get_settings().model_type
        return super().resolve(name, configuration)


class TrainModel(ModelTask):
    train_end: dt.date = luigi.DateParameter()

    def requires(self):
        return TrainSet(train_end=self.train_end)

    def output(self):
        # The metadata is written after the model and the gate's decision: it marks both.
        identifier = pipeline.model_identifier(
            self.settings, self.spec, self.model_type, self.train_end
        )
        return luigi.LocalTarget(registry.metadata_path(self.settings, identifier))

    def run(self):
        pipeline.write_model(self.settings, self.spec, self.model_type, self.train_end)


class Predict(ModelTask):
    """Scores of every active user for `date`, by the model that was current on that date.

    That model is trained on dates whose labels were complete by `date` (see
    Settings.train_end_for), so scoring past dates never uses labels from their future.
    """

    date: dt.date = luigi.DateParameter()

    @property
    def priority(self) -> int:
        return TODAY_PRIORITY if self.date >= get_settings().today else BACKFILL_PRIORITY

    @property
    def train_end(self) -> dt.date:
        return self.settings.train_end_for(self.date)

    def requires(self):
        return [
            TestSet(date=self.date),
            TrainModel(model_type=self.model_type, train_end=self.train_end),
        ]

    def output(self):
        try:
            identifier = pipeline.serving_model(
                self.settings, self.spec, self.model_type, self.train_end, self.date
            )
        except pipeline.NotServableError:
            # run() raises the error with what to do; until then the task is not complete.
            identifier = pipeline.model_identifier(
                self.settings, self.spec, self.model_type, self.train_end
            )
        return luigi.LocalTarget(naming.predictions_path(self.settings, identifier, self.date))

    def complete(self) -> bool:
        try:
            pipeline.serving_model(
                self.settings, self.spec, self.model_type, self.train_end, self.date
            )
        except pipeline.NotServableError:
            return False
        return super().complete()

    def run(self):
        pipeline.write_predictions(
            self.settings, self.spec, self.model_type, self.train_end, self.date
        )


class LiveEvaluation(ModelTask):
    """Realized metrics of the scores published for `date`, once its labels have arrived."""

    date: dt.date = luigi.DateParameter()
    # Set when the same run scores the date: then its scores come first.
    after_scoring: bool = luigi.BoolParameter(default=False)

    def requires(self):
        labels = [RawConversions(day=day) for day in label_days(self.settings, self.date)]
        if self.after_scoring:
            return [Predict(date=self.date, model_type=self.model_type), *labels]
        return labels

    def _published(self) -> list[Path]:
        """The file published for the date, once its model's labels have arrived."""
        if not hasattr(self, "_found"):
            # Fixed when first found, so that scores that other tasks of the same run write
            # later do not change what this task promised.
            found = live.published(self.settings, self.date)
            if not found and self.after_scoring:
                return [Path(Predict(date=self.date, model_type=self.model_type).output().path)]
            self._found = found
        today = self.settings.today
        return [p for p in self._found if live.labels_arrived(self.settings, p, self.date, today)]

    def output(self):
        if self.after_scoring and not live.published(self.settings, self.date):
            # Not scored yet: the record of the scores this run is about to publish.
            predict = Predict(date=self.date, model_type=self.model_type)
            return [luigi.LocalTarget(live.record_path(self.settings, Path(predict.output().path)))]
        return [luigi.LocalTarget(live.record_path(self.settings, p)) for p in self._published()]

    def complete(self) -> bool:
        if self.after_scoring and not live.published(self.settings, self.date):
            return False
        return all(live.record_is_current(self.settings, p) for p in self._published())

    def run(self):
        live.write_records(self.settings, self.date, self._published())


def live_evaluations(
    settings, date: dt.date, days_back: int, model_type: str | None
) -> list[LiveEvaluation]:
    """The scored dates of a backfill of `days_back` days up to `date`, and those of the
    lead window before it, whose labels have arrived by `date`."""
    labelled = settings.latest_labelled_date(date)
    scored_from = date - dt.timedelta(days=days_back)
    first = scored_from - dt.timedelta(days=settings.lead_window + settings.data_delay)
    dates = [first + dt.timedelta(days=i) for i in range((labelled - first).days + 1)]
    return [
        LiveEvaluation(date=d, model_type=model_type, after_scoring=d >= scored_from) for d in dates
    ]
