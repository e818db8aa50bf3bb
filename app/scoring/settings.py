"""Runtime configuration: one data root, the scoring windows and where Dask runs.

Every value can be overridden by an environment variable so that the same image serves
development, staging and production. Settings are read when `get_settings()` is called
(never cached at import time) so tests and long-lived workers pick up changes.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from scoring.errors import ConfigError

ENVIRONMENTS = ("dev", "staging", "production")
# What a run does when a raw day fails its checks (scoring.data.checks):
# fail: stop with the day and the check named; wait: poll for the day (bounded) and then
# fail; skip: treat the day as one without activity and record the gap.
RAW_DAY_POLICIES = ("fail", "wait", "skip")
DEFAULT_FEATURES_CSV = Path(__file__).parent / "features" / "features.csv"


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def parse_date(text: str, what: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a date in YYYY-MM-DD form") from None


@dataclass(frozen=True)
class Settings:
    data_root: Path
    env: str = "dev"
    dask_address: str = ""
    # A worker resource that marks the Dask workers which see the data root; when set,
    # every task asks for one unit of it, so none lands on a worker without the data.
    dask_data_resource: str = ""
    aggregation_window: int = 90
    lead_window: int = 3
    data_delay: int = 1
    today_override: dt.date | None = None
    model_type: str = "hgb"
    train_days: int = 14
    retrain_every: int = 7
    backfill_days: int = 7
    features_csv: Path = field(default=DEFAULT_FEATURES_CSV)
    raw_day_policy: str = "fail"
    raw_wait_seconds: float = 3600.0
    raw_poll_seconds: float = 60.0
    # A day whose event count is below min_ratio or above max_ratio times the median of
    # the `volume_trailing_days` delivered days before it is anomalous.
    volume_min_ratio: float = 0.5
    volume_max_ratio: float = 3.0
    volume_trailing_days: int = 14

    def __post_init__(self):
        check_windows(self)

    # --- dates -------------------------------------------------------------
    @property
    def today(self) -> dt.date:
        return self.today_override or dt.date.today()

    def feature_cutoff(self, date: dt.date) -> dt.date:
        """Last raw day whose events may be used to score `date`."""
        return date - dt.timedelta(days=self.data_delay)

    def label_window(self, date: dt.date) -> tuple[dt.date, dt.date]:
        """First and last day whose conversions count for the label of `date`."""
        return date, date + dt.timedelta(days=self.lead_window - 1)

    def latest_labelled_date(self, as_of: dt.date) -> dt.date:
        """Latest scoring date whose whole label window has arrived by `as_of`.

        Labels of date d need conversions up to d + lead_window - 1, and that day's raw
        file is only complete data_delay days later.
        """
        return as_of - dt.timedelta(days=self.data_delay + self.lead_window - 1)

    def train_end_for(self, date: dt.date) -> dt.date:
        """Training end date of the model used to score `date`.

        Models are retrained every `retrain_every` days (snapped to a fixed grid so that a
        backfill of past days reuses the same few models), and never see labels that were
        not yet known on `date`.
        """
        latest = self.latest_labelled_date(date)
        offset = latest.toordinal() % self.retrain_every
        return latest - dt.timedelta(days=offset)

    # --- paths -------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.data_root / "data" / "raw"

    @property
    def raw_events_dir(self) -> Path:
        return self.raw_dir / "events"

    @property
    def raw_conversions_dir(self) -> Path:
        return self.raw_dir / "conversions"

    @property
    def raw_users_dir(self) -> Path:
        """Daily snapshots of the user attributes, as of the end of each day."""
        return self.raw_dir / "users"

    @property
    def interim_dir(self) -> Path:
        return self.data_root / "data" / "interim"

    @property
    def daily_partials_dir(self) -> Path:
        return self.interim_dir / "daily"

    @property
    def window_state_dir(self) -> Path:
        return self.interim_dir / "window"

    @property
    def external_dir(self) -> Path:
        return self.data_root / "data" / "external"

    @property
    def train_dir(self) -> Path:
        return self.data_root / "data" / "processed" / "train"

    @property
    def test_dir(self) -> Path:
        return self.data_root / "data" / "processed" / "test"

    @property
    def models_dir(self) -> Path:
        return self.data_root / "models"

    @property
    def predictions_dir(self) -> Path:
        return self.models_dir / "predictions"

    @property
    def reports_dir(self) -> Path:
        return self.data_root / "reports"

    @property
    def figures_dir(self) -> Path:
        return self.reports_dir / "figures"

    def all_dirs(self) -> list[Path]:
        return [
            self.raw_events_dir,
            self.raw_conversions_dir,
            self.raw_users_dir,
            self.daily_partials_dir,
            self.window_state_dir,
            self.external_dir,
            self.train_dir,
            self.test_dir,
            self.predictions_dir,
            self.figures_dir,
        ]

    def ensure_dirs(self) -> None:
        for directory in self.all_dirs():
            directory.mkdir(parents=True, exist_ok=True)


def check_windows(settings: Settings) -> None:
    """Refuse settings under which a date's features could see its own label window.

    The feature window ends on the cutoff; every label day must come after it, or the
    conversions of a day would be predicted from the same day's events.
    """
    date = dt.date(2000, 1, 1)  # the windows move with the date: any date shows the overlap
    cutoff = settings.feature_cutoff(date)
    first_label, last_label = settings.label_window(date)
    if first_label <= cutoff:
        raise ConfigError(
            f"SCORING_DATA_DELAY={settings.data_delay} with "
            f"SCORING_LEAD_WINDOW={settings.lead_window}: the features of a date d use the "
            f"events up to d - {settings.data_delay}, and its label window is d to "
            f"d + {settings.lead_window - 1}, so they share "
            f"{(min(cutoff, last_label) - first_label).days + 1} day(s); the label window "
            "must start after the feature cutoff (a data delay of at least 1)"
        )


def get_settings() -> Settings:
    env = os.environ.get("SCORING_ENV", "dev").strip() or "dev"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"SCORING_ENV={env!r} must be one of {', '.join(ENVIRONMENTS)}")
    today_raw = os.environ.get("SCORING_TODAY", "").strip()
    features_raw = os.environ.get("SCORING_FEATURES_CSV", "").strip()
    return Settings(
        data_root=Path(os.environ.get("SCORING_DATA_ROOT", "").strip() or Path.cwd()),
        env=env,
        dask_address=os.environ.get("SCORING_DASK_ADDRESS", "").strip(),
        dask_data_resource=os.environ.get("SCORING_DASK_DATA_RESOURCE", "").strip(),
        aggregation_window=_env_int("SCORING_AGGREGATION_WINDOW", 90, minimum=1),
        lead_window=_env_int("SCORING_LEAD_WINDOW", 3, minimum=1),
        data_delay=_env_int("SCORING_DATA_DELAY", 1, minimum=0),
        today_override=parse_date(today_raw, "SCORING_TODAY") if today_raw else None,
        model_type=os.environ.get("SCORING_MODEL_TYPE", "hgb").strip() or "hgb",
        train_days=_env_int("SCORING_TRAIN_DAYS", 14, minimum=1),
        retrain_every=_env_int("SCORING_RETRAIN_EVERY", 7, minimum=1),
        backfill_days=_env_int("SCORING_BACKFILL_DAYS", 7, minimum=0),
        features_csv=Path(features_raw) if features_raw else DEFAULT_FEATURES_CSV,
        raw_day_policy=_env_choice("SCORING_RAW_DAY_POLICY", "fail", RAW_DAY_POLICIES),
        raw_wait_seconds=_env_float("SCORING_RAW_WAIT_SECONDS", 3600.0),
        raw_poll_seconds=_env_float("SCORING_RAW_POLL_SECONDS", 60.0, minimum=0.01),
        volume_min_ratio=_env_float("SCORING_VOLUME_MIN_RATIO", 0.5),
        volume_max_ratio=_env_float("SCORING_VOLUME_MAX_RATIO", 3.0),
        volume_trailing_days=_env_int("SCORING_VOLUME_TRAILING_DAYS", 14, minimum=1),
    )
