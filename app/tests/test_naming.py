import datetime as dt

import pytest
from scoring import naming
from scoring.features.spec import load_spec
from scoring.settings import get_settings

D = dt.date


def test_short_hash_is_stable_and_short():
    # A fixed value: if this changes, every existing file name changes with it.
    assert naming.short_hash(["a", 1]) == naming.short_hash(["a", 1])
    assert len(naming.short_hash(["a", 1])) == naming.HASH_LENGTH
    assert naming.short_hash({"b": 1, "a": 2}) == naming.short_hash({"a": 2, "b": 1})
    assert naming.short_hash(["a", 1]) == "135f17a4"


def test_dates_hash_ignores_order_and_duplicates_but_not_content():
    dates = [D(2026, 1, 3), D(2026, 1, 1), D(2026, 1, 2)]
    assert naming.dates_hash(dates) == naming.dates_hash([*sorted(dates), D(2026, 1, 1)])
    assert naming.dates_hash(dates) != naming.dates_hash(dates[:2])


def test_paths_follow_the_convention(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path))
    settings = get_settings()
    dates = [D(2026, 3, 2), D(2026, 3, 1)]
    dh = naming.train_hash(dates, "1abe1")
    assert naming.train_set_path(settings, dates, "f00d", "1abe1") == (
        tmp_path / f"data/processed/train/2026-03-01-2026-03-02-{dh}-f00d.parquet"
    )
    assert naming.test_set_path(settings, D(2026, 3, 4), "f00d") == (
        tmp_path / "data/processed/test/2026-03-04-f00d.parquet"
    )
    model = naming.model_id("hgb", {"lr": 0.1, "it": 50}, dh, "f00d")
    assert model == f"hgb-it50_lr0.1-{dh}-f00d"
    assert naming.model_path(settings, model) == tmp_path / "models" / model
    assert naming.predictions_path(settings, model, D(2026, 3, 4)) == (
        tmp_path / f"models/predictions/{model}-2026-03-04.parquet"
    )


def test_param_description_rejects_separators():
    with pytest.raises(ValueError, match="file name"):
        naming.param_description({"mode": "a-b"})


def _spec_from(tmp_path, monkeypatch, csv_text):
    path = tmp_path / "features.csv"
    path.write_text(csv_text)
    monkeypatch.setenv("SCORING_FEATURES_CSV", str(path))
    return load_spec(get_settings())


HEADER = "name,kind,event_type,window_days,description\n"


def test_feature_hash_depends_on_the_list_only(tmp_path, monkeypatch):
    base = _spec_from(tmp_path, monkeypatch, HEADER + "saves,event_count,save,,Saves\n")
    reworded = _spec_from(tmp_path, monkeypatch, HEADER + "saves,event_count,save,,Other\n")
    other = _spec_from(tmp_path, monkeypatch, HEADER + "saves,event_count,save,7,Saves\n")
    assert base.hash == reworded.hash
    assert base.hash != other.hash


def test_different_feature_list_gives_new_file_names(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_DATA_ROOT", str(tmp_path))
    default = load_spec(get_settings())
    changed = _spec_from(tmp_path, monkeypatch, HEADER + "saves,event_count,save,,Saves\n")
    settings = get_settings()
    assert naming.test_set_path(settings, D(2026, 1, 1), default.hash) != naming.test_set_path(
        settings, D(2026, 1, 1), changed.hash
    )
