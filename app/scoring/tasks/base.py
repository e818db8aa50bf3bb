"""Shared base for the scoring tasks: the configuration that shapes outputs is task identity.

Every task carries the environment, the data root and the hashes of the feature and label
definitions as luigi parameters. Left out, they are filled in from the settings when the
task is created, so luigid shows them, and two configurations (staging and production on
one luigid, or a changed feature list) never share a task id. A task whose parameters do
not match the settings of the process that runs it refuses to run.
"""

from __future__ import annotations

from typing import Any

import luigi

from scoring import naming
from scoring.errors import ConfigError, ScoringError
from scoring.features.spec import FeatureSpec, load_spec
from scoring.settings import Settings, get_settings

# Settings that shape no task's output, with the reason; every other field of Settings
# reaches the task ids and output names of the tasks it shapes through one of the configured
# parameters (env, data_root, features, labels, training, model_type). A test holds every
# field of Settings to one or the other.
NOT_SHAPING_CONTENT: dict[str, str] = {
    "env": "names the deployment; a task parameter so that staging and production never "
    "share a task id on one luigid, but it changes no output",
    "dask_address": "where the computation runs, not what it computes",
    "dask_data_resource": "which Dask workers may run a task, not what it computes",
    "today_override": "today enters a task as its date parameter",
    "backfill_days": "how many dates a backfill covers: DailyBackfill's days_back parameter",
    "raw_day_policy": "what a run does with a raw day that fails its checks; a skipped day is "
    "named in the outputs it changes",
    "raw_wait_seconds": "how long a run waits for a late raw day",
    "raw_poll_seconds": "how often a run looks for a late raw day",
    "volume_min_ratio": "a check that stops a run, it changes no output",
    "volume_max_ratio": "a check that stops a run, it changes no output",
    "volume_trailing_days": "a check that stops a run, it changes no output",
}


def training_hash(settings: Settings) -> str:
    """The settings that choose a model's training dates: how many, and on which grid."""
    return naming.short_hash(
        {"train_days": settings.train_days, "retrain_every": settings.retrain_every}
    )


def current_configuration() -> dict[str, str]:
    settings = get_settings()
    return {
        "env": settings.env,
        "data_root": str(settings.data_root),
        "features": load_spec(settings).hash,
        "labels": naming.label_hash(settings.lead_window),
        "training": training_hash(settings),
    }


class Configured(luigi.Task):
    """Parameters resolved when the task is created, not when the module is imported."""

    env: str = luigi.Parameter(default=None, positional=False, description="SCORING_ENV")
    data_root: str = luigi.Parameter(
        default=None, positional=False, description="SCORING_DATA_ROOT"
    )
    # Names of parameters filled in from the configuration, and what fills them.
    configured = ("env", "data_root")

    @classmethod
    def resolve(cls, name: str, configuration: dict[str, str]) -> Any:
        """The value of a configured parameter that was left out."""
        return configuration[name]

    @classmethod
    def get_param_values(cls, params, args, kwargs):
        values = super().get_param_values(params, args, kwargs)
        configuration: dict[str, str] | None = None
        resolved = []
        for name, given in values:
            value = given
            if given is None and name in cls.configured:
                configuration = configuration or current_configuration()
                value = cls.resolve(name, configuration)
            resolved.append((name, value))
        return resolved

    @property
    def settings(self) -> Settings:
        settings = get_settings()
        for name, actual in (("env", settings.env), ("data_root", str(settings.data_root))):
            if getattr(self, name) != actual:
                raise ConfigError(
                    f"{self.task_id} was scheduled with {name}={getattr(self, name)} but this "
                    f"process has {name}={actual}; run it with the configuration it names"
                )
        return settings

    def on_failure(self, exception: BaseException) -> str:
        # Expected problems (bad raw file, missing input) show as one clear line in luigid's
        # UI instead of a traceback; anything else keeps luigi's full traceback.
        if isinstance(exception, ScoringError):
            return f"{type(exception).__name__}: {exception}"
        return super().on_failure(exception)


class ScoringTask(Configured):
    """A task whose output is one file written atomically by a scoring.pipeline step."""

    features: str = luigi.Parameter(
        default=None, positional=False, description="feature hash (list, window, rules)"
    )
    labels: str = luigi.Parameter(
        default=None, positional=False, description="label hash (lead window, rule)"
    )
    configured = ("env", "data_root", "features", "labels")

    @property
    def spec(self) -> FeatureSpec:
        settings = self.settings
        spec = load_spec(settings)
        labels = naming.label_hash(settings.lead_window)
        if (spec.hash, labels) != (self.features, self.labels):
            raise ConfigError(
                f"{self.task_id} was scheduled for features {self.features} and labels "
                f"{self.labels}, but the settings give {spec.hash} and {labels}"
            )
        return spec


class TrainedTask(ScoringTask):
    """A task whose output depends on which dates a model is trained on."""

    training: str = luigi.Parameter(
        default=None, positional=False, description="training hash (train days, retrain grid)"
    )
    configured = (*ScoringTask.configured, "training")

    @property
    def spec(self) -> FeatureSpec:
        spec = super().spec
        actual = training_hash(self.settings)
        if self.training != actual:
            raise ConfigError(
                f"{self.task_id} was scheduled for training {self.training}, but the settings "
                f"give {actual} (SCORING_TRAIN_DAYS, SCORING_RETRAIN_EVERY)"
            )
        return spec
