"""Shared fixtures: one small synthetic raw dump per session, copied per test that edits it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from scoring.data.synthetic import GeneratorConfig, generate
from scoring.settings import get_settings
from scoring.smoke import environment

START = dt.date(2026, 1, 1)
DAYS = 40
# A 14-day window keeps the data small; features.csv windows of 3 and 7 days still fit.
SMALL_ENV = {
    "SCORING_ENV": "dev",
    "SCORING_DASK_ADDRESS": "",
    "SCORING_AGGREGATION_WINDOW": "14",
    "SCORING_LEAD_WINDOW": "3",
    "SCORING_DATA_DELAY": "1",
    "SCORING_TRAIN_DAYS": "4",
    "SCORING_RETRAIN_EVERY": "7",
    "SCORING_BACKFILL_DAYS": "1",
    "SCORING_MODEL_TYPE": "hgb",
    "SCORING_TODAY": (START + dt.timedelta(days=DAYS)).isoformat(),
}
SMALL_CONFIG = GeneratorConfig(users=300, days=DAYS, start=START, seed=11)


@pytest.fixture(scope="session")
def pristine_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    with environment({**SMALL_ENV, "SCORING_DATA_ROOT": str(root)}):
        generate(SMALL_CONFIG, get_settings(), progress=False)
    return root


@pytest.fixture
def data_root(pristine_root: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the small raw dump, with the environment pointing at it."""
    shutil.copytree(pristine_root / "data" / "raw", tmp_path / "data" / "raw")
    for key, value in {**SMALL_ENV, "SCORING_DATA_ROOT": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    get_settings().ensure_dirs()
    return tmp_path


@pytest.fixture(autouse=True)
def luigi_logs_to_this_tests_stderr():
    """luigi sets up its log handler once per process, on the stderr of that moment; under
    pytest that is the first test's captured stream. Set it up anew for every test."""
    import logging  # noqa: PLC0415

    from luigi.setup_logging import InterfaceLogging  # noqa: PLC0415

    yield
    logger = logging.getLogger("luigi-interface")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    InterfaceLogging._configured = False
