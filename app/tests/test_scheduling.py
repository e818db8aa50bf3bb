"""Luigi and Dask as meant: today's scores first, luigi's range tool for the backfill, Dask
tasks for the days of a backfill, the partitions of scoring and the dates of a training set;
one sklearn Pipeline per model, and the generator apart from the loaders."""

import datetime as dt

import luigi
import pyarrow.parquet as pq
from luigi.tools.range import RangeDailyBase
from scoring import cli, compute, pipeline
from scoring.data import dataset, synthetic
from scoring.features import build
from scoring.modeling import train
from scoring.settings import get_settings
from scoring.tasks import DailyBackfill, Predict
from sklearn.pipeline import Pipeline


def test_backfill_uses_luigis_range_and_puts_today_first(data_root):
    settings = get_settings()
    backfill = DailyBackfill(days_back=2)
    ranges = [t for t in backfill.requires() if isinstance(t, RangeDailyBase)]
    assert len(ranges) == 1
    dates = sorted(t.date for t in ranges[0].requires())
    assert dates == [settings.today - dt.timedelta(days=i) for i in (2, 1, 0)]
    today = Predict(date=settings.today)
    assert today.priority > Predict(date=settings.today - dt.timedelta(days=1)).priority

    started = []

    @Predict.event_handler(luigi.Event.START)
    def remember(task):
        started.append(task.date)

    try:
        assert luigi.build([backfill], local_scheduler=True, log_level="WARNING")
    finally:
        Predict._event_callbacks[Predict][luigi.Event.START].discard(remember)
    assert started[0] == settings.today
    assert sorted(started) == dates
    # Complete days are not required again (a fresh range task, not the cached one).
    luigi.task_register.Register.clear_instance_cache()
    assert RangeDailyBase(**ranges[0].param_kwargs).requires() == []


def test_parallel_steps_hand_several_tasks_to_dask(data_root, monkeypatch):
    settings = get_settings()
    batches = []
    real = compute.run_tasks

    def counting(settings_, tasks, description, progress=True):
        batches.append((description.split()[0], len(tasks)))
        return real(settings_, tasks, description, progress)

    for module in (build, pipeline):
        monkeypatch.setattr(module, "run_tasks", counting)
    assert cli.main(["daily", "--local-scheduler", "--days-back", "3"]) == 0
    sizes = dict(batches)
    assert max(n for what, n in batches if what == "daily") > 3  # days of the backfill
    assert sizes["labelled"] == settings.train_days  # dates of a training set
    # Partitions of scoring: one per thread of the cluster's workers.
    assert {n for what, n in batches if what == "scoring"} == {compute.worker_threads(settings)}


def test_scores_from_partitions_equal_scores_in_one_go(data_root):
    settings = get_settings()
    assert cli.main(["predict", "--local-scheduler", "--date", settings.today.isoformat()]) == 0
    from scoring.features.spec import load_spec  # noqa: PLC0415

    spec = load_spec(settings)
    train_end = settings.train_end_for(settings.today)
    scores = pipeline.read_predictions(settings, spec, "hgb", train_end, settings.today)
    identifier = pipeline.model_identifier(settings, spec, "hgb", train_end)
    model = train.load_model(settings.models_dir / identifier)
    features = pq.read_table(settings.test_dir / f"{settings.today}-{spec.hash}.parquet")
    assert (model.predict_proba(features.to_pandas()) == scores["target"].to_numpy()).all()


def test_each_model_is_one_pipeline_with_its_preprocessing(data_root):
    settings = get_settings()
    from scoring.features.spec import load_spec  # noqa: PLC0415

    spec = load_spec(settings)
    date = dt.date(2026, 1, 30)
    frame = build.add_labels(settings, build.build_features(settings, spec, date), date)
    frame = frame.to_pandas()
    for model_type in ("hgb", "activity"):
        model = train.train(frame, model_type, spec.names, spec.hash)
        assert isinstance(model.estimator, Pipeline)
        assert list(model.estimator.named_steps) == ["prepare", "model"]
        # The pipeline takes the feature table as it is: no preprocessing outside it.
        direct = model.estimator.predict_proba(frame)[:, 1]
        assert (direct == model.predict_proba(frame)).all()


def test_generator_lives_apart_from_the_loaders():
    assert hasattr(synthetic, "generate")
    assert not hasattr(dataset, "generate")
    assert not hasattr(dataset, "GeneratorConfig")
