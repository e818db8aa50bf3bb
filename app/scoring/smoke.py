"""`scoring smoke`: generate tiny data in a temporary directory and run the whole pipeline.

Used as the image's smoke test: it exercises raw data validation, daily partials, window
features, training, daily prediction with backfill and a backtest with figures, and checks
the outputs. Exit code 0 only if all of it worked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import luigi
import pyarrow.parquet as pq

from scoring import backtest, naming, pipeline
from scoring.data.synthetic import GeneratorConfig, generate
from scoring.features.spec import load_spec
from scoring.settings import get_settings

START = dt.date(2026, 1, 1)
DAYS = 45
SMOKE_ENV = {
    "SCORING_ENV": "dev",
    "SCORING_AGGREGATION_WINDOW": "14",
    "SCORING_LEAD_WINDOW": "3",
    "SCORING_DATA_DELAY": "1",
    "SCORING_TRAIN_DAYS": "4",
    "SCORING_RETRAIN_EVERY": "7",
    "SCORING_BACKFILL_DAYS": "2",
    "SCORING_MODEL_TYPE": "hgb",
    # The day after the last generated raw day: its cutoff is the last raw day.
    "SCORING_TODAY": (START + dt.timedelta(days=DAYS)).isoformat(),
}


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def run_pipeline(local_scheduler: bool) -> list[str]:
    """Run daily scoring and a backtest on the current data root; returns problems found."""
    from scoring.tasks import Backtest, DailyBackfill  # noqa: PLC0415

    settings = get_settings()
    spec = load_spec(settings)
    end = settings.latest_labelled_date(settings.today)
    tasks = [
        DailyBackfill(date=settings.today, days_back=settings.backfill_days),
        Backtest(end=end, count=2, step=3, model_types=("hgb", "activity")),
    ]
    options = {"local_scheduler": True} if local_scheduler else {}
    result = luigi.build(tasks, detailed_summary=True, workers=1, log_level="WARNING", **options)
    if result.status not in (luigi.LuigiStatusCode.SUCCESS,):
        return [f"luigi run did not succeed: {result.status}\n{result.summary_text}"]
    problems = []
    train_end = settings.train_end_for(settings.today)
    identifier = pipeline.model_identifier(settings, spec, settings.model_type, train_end)
    scores = pq.read_table(naming.predictions_path(settings, identifier, settings.today))
    try:
        _check(scores.column_names == ["id", "date", "target"], f"columns {scores.column_names}")
        _check(scores.num_rows > 0, "no users scored")
        targets = scores["target"].to_numpy()
        _check(bool(((targets >= 0) & (targets <= 1)).all()), "scores outside [0, 1]")
        dates = backtest.backtest_dates(settings, end, 2, 3)
        report = naming.backtest_report_path(settings, dates, ["hgb", "activity"], spec.hash)
        _check(report.exists(), f"missing backtest report {report}")
        figures = list(settings.figures_dir.glob("*.png"))
        _check(len(figures) >= 5, f"expected 5 figures, found {len(figures)}")
    except AssertionError as problem:
        problems.append(str(problem))
    return problems


def run_smoke(keep: bool = False, local_scheduler: bool = True) -> int:
    root = Path(tempfile.mkdtemp(prefix="scoring-smoke-"))
    try:
        with environment({**SMOKE_ENV, "SCORING_DATA_ROOT": str(root)}):
            generate(GeneratorConfig(users=600, days=DAYS, start=START, seed=7), get_settings())
            problems = run_pipeline(local_scheduler)
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    for problem in problems:
        print(f"smoke test failed: {problem}", file=sys.stderr)
    if not problems:
        print("smoke test passed")
    return 1 if problems else 0
