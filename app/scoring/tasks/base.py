"""Shared base for the scoring tasks: settings are read when a task runs, not at import."""

from __future__ import annotations

import luigi

from scoring.errors import ScoringError
from scoring.features.spec import FeatureSpec, load_spec
from scoring.settings import Settings, get_settings


class ScoringTask(luigi.Task):
    """A task whose output is one file written atomically by a scoring.pipeline step."""

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def spec(self) -> FeatureSpec:
        return load_spec(self.settings)

    def on_failure(self, exception: BaseException) -> str:
        # Expected problems (bad raw file, missing input) show as one clear line in luigid's
        # UI instead of a traceback; anything else keeps luigi's full traceback.
        if isinstance(exception, ScoringError):
            return f"{type(exception).__name__}: {exception}"
        return super().on_failure(exception)
