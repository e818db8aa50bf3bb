"""Tasks that watch the current model after the scoring: drift and the daily HTML report."""

from __future__ import annotations

import datetime as dt

import luigi

from scoring import naming
from scoring.monitoring import drift, registry, report
from scoring.tasks.model import ModelTask, Predict, live_evaluations


class DriftCheck(ModelTask):
    """PSI of `date`'s features and scores against the current model's training data.

    Runs after the date is scored and never fails on drift: it records it
    (reports/drift/<date>-<line>.csv, reports/drift.csv), and `scoring daily` turns drift above
    SCORING_DRIFT_PSI into its exit status once everything is published. The record is
    complete while it was computed against the model that is current now, so promoting or
    rolling back the model makes the next run compute it again.
    """

    date: dt.date = luigi.DateParameter()

    def requires(self):
        return Predict(date=self.date, model_type=self.model_type)

    def output(self):
        line = report.line_for(self.settings, self.spec, self.model_type)
        return luigi.LocalTarget(report.drift_record_path(self.settings, self.date, line))

    def complete(self) -> bool:
        line = report.line_for(self.settings, self.spec, self.model_type)
        record = report.read_drift_record(self.settings, self.date, line)
        if record is None or record.empty:
            return False
        return set(record["model_id"]) == {registry.current_model(self.settings, line)}

    def run(self):
        model_id, table = drift.drift_of_date(self.settings, self.spec, self.model_type, self.date)
        line = report.line_for(self.settings, self.spec, self.model_type)
        report.record_drift(self.settings, self.date, model_id, table, line)


class MonitoringReport(ModelTask):
    """The HTML report of `date` (reports/monitoring-<date>-<line>.html), written after the
    drift of the date and the live evaluations of the same daily run."""

    date: dt.date = luigi.DateParameter()
    days_back: int = luigi.IntParameter(default=0)

    def requires(self):
        return [
            DriftCheck(date=self.date, model_type=self.model_type),
            *live_evaluations(self.settings, self.date, self.days_back, self.model_type),
        ]

    def output(self):
        line = report.line_for(self.settings, self.spec, self.model_type)
        return luigi.LocalTarget(naming.report_path(self.settings, line, self.date))

    def complete(self) -> bool:
        # Complete while it shows the production model and the data it was written from.
        return report.is_current(self.settings, self.spec, self.model_type, self.date)

    def run(self):
        report.write_report(self.settings, self.spec, self.model_type, self.date)
