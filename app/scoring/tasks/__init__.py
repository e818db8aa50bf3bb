"""Luigi tasks of the scoring pipeline.

Entry points for schedulers: `DailyBackfill` (daily timer: today plus any missed days),
`LivePredict` (today only), `Backtest`; the others are their dependencies.

    luigi --module scoring.tasks DailyBackfill
"""

from scoring.tasks.backtest import Backtest
from scoring.tasks.daily import DailyBackfill, LivePredict
from scoring.tasks.data import (
    DailyPartials,
    RawConversions,
    RawEvents,
    RawUsers,
    TestSet,
    TrainSet,
    WindowState,
)
from scoring.tasks.model import LiveEvaluation, Predict, TrainModel
from scoring.tasks.monitoring import DriftCheck, MonitoringReport

__all__ = [
    "Backtest",
    "DailyBackfill",
    "DailyPartials",
    "DriftCheck",
    "LiveEvaluation",
    "LivePredict",
    "MonitoringReport",
    "Predict",
    "RawConversions",
    "RawEvents",
    "RawUsers",
    "TestSet",
    "TrainModel",
    "TrainSet",
    "WindowState",
]
