import datetime as dt

import pytest
from scoring.data import dataset
from scoring.errors import ConfigError
from scoring.features import build
from scoring.settings import Settings, get_settings


def test_defaults_match_the_scoring_domain(monkeypatch, tmp_path):
    for key in ("SCORING_AGGREGATION_WINDOW", "SCORING_LEAD_WINDOW", "SCORING_DATA_DELAY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path))
    settings = get_settings()
    assert (settings.aggregation_window, settings.lead_window, settings.data_delay) == (90, 3, 1)
    assert settings.raw_events_dir == tmp_path / "data" / "raw" / "events"
    assert settings.predictions_dir == tmp_path / "models" / "predictions"
    assert settings.figures_dir == tmp_path / "reports" / "figures"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("SCORING_ENV", "staging")
    monkeypatch.setenv("SCORING_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    monkeypatch.setenv("SCORING_TODAY", "2026-11-27")
    monkeypatch.setenv("SCORING_DATA_DELAY", "2")
    settings = get_settings()
    assert settings.env == "staging"
    assert settings.dask_address == "tcp://127.0.0.1:8786"
    assert settings.today == dt.date(2026, 11, 27)
    assert settings.feature_cutoff(dt.date(2026, 11, 27)) == dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("SCORING_ENV", "prod", "SCORING_ENV"),
        ("SCORING_DATA_DELAY", "one", "not an integer"),
        ("SCORING_TODAY", "27.11.2026", "YYYY-MM-DD"),
    ],
)
def test_invalid_values_are_reported_by_name(monkeypatch, key, value, message):
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        get_settings()


def test_model_for_a_date_never_sees_its_future_labels(monkeypatch):
    monkeypatch.setenv("SCORING_RETRAIN_EVERY", "7")
    settings = get_settings()
    for offset in range(30):
        date = dt.date(2026, 3, 1) + dt.timedelta(days=offset)
        train_end = settings.train_end_for(date)
        # The label window of train_end must end before the data available on `date`.
        last_label_day = train_end + dt.timedelta(days=settings.lead_window - 1)
        assert last_label_day <= settings.feature_cutoff(date)
        assert (settings.latest_labelled_date(date) - train_end).days < 7


# Lead windows in use: the default, the tests' alternative and a week.
LEAD_WINDOWS = (1, 2, 3, 7)


@pytest.mark.parametrize("lead", LEAD_WINDOWS)
@pytest.mark.parametrize("delay", [0, 1, 2, 3])
def test_features_never_see_the_label_window(monkeypatch, tmp_path, delay, lead):
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("SCORING_DATA_DELAY", str(delay))
    monkeypatch.setenv("SCORING_LEAD_WINDOW", str(lead))
    date = dt.date(2026, 3, 10)
    if delay == 0:
        # The cutoff would be the scoring date itself, the first day of its label window.
        with pytest.raises(ConfigError, match="SCORING_DATA_DELAY=0") as caught:
            get_settings()
        assert f"SCORING_LEAD_WINDOW={lead}" in str(caught.value)
        return
    settings = get_settings()
    feature_days = set(build.window_days(settings, date))
    label_days = set(dataset.label_days(settings, date))
    assert len(label_days) == lead
    assert not feature_days & label_days
    assert max(feature_days) == settings.feature_cutoff(date) < min(label_days)


def test_a_label_window_that_starts_on_the_cutoff_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="label window"):
        Settings(data_root=tmp_path, data_delay=0)
