"""The model must clearly beat the recent-activity baseline on held-out dates."""

import datetime as dt

import pyarrow as pa
import pytest
from scoring.data.synthetic import GeneratorConfig, generate
from scoring.features import build
from scoring.features.spec import load_spec
from scoring.modeling import train as modeling_train
from scoring.monitoring.evaluate import evaluate
from scoring.settings import get_settings

# Measured with this seed (50 trees): AUC 0.670 vs 0.594 (margin 0.075), lift in the top 5%
# 4.8 vs 2.3; with 200 trees it was AUC 0.648, lift 4.0.
# The thresholds leave some room for library changes, yet a model that ignored the event
# mix (and so ranked like the baseline) would fail both.
REQUIRED_AUC_MARGIN = 0.04
REQUIRED_LIFT_RATIO = 1.5
START = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def labelled_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    env = {"SCORING_DATA_ROOT": str(root), "SCORING_AGGREGATION_WINDOW": "28"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = get_settings()
        generate(GeneratorConfig(users=8000, days=60, start=START, seed=3), settings, False)
        spec = load_spec(settings)

        def labelled(date):
            features = build.build_features(settings, spec, date, progress=False)
            return build.add_labels(settings, features, date)

        train_dates = [dt.date(2026, 1, 30) + dt.timedelta(days=i) for i in range(10)]
        test_dates = [dt.date(2026, 2, 20), dt.date(2026, 2, 25)]
        train = pa.concat_tables([labelled(d) for d in train_dates]).to_pandas()
        test = pa.concat_tables([labelled(d) for d in test_dates]).to_pandas()
    return spec, train, test


def test_model_beats_baseline_auc(labelled_sets):
    spec, train, test = labelled_sets
    scores = {}
    for model_type in ("hgb", "activity"):
        model = modeling_train.train(train, model_type, spec.names, spec.hash)
        scores[model_type] = evaluate(test["target"], model.predict_proba(test))
    assert scores["hgb"].positives > 100
    assert scores["hgb"].auc >= scores["activity"].auc + REQUIRED_AUC_MARGIN, scores
    assert scores["hgb"].lift_at_k >= REQUIRED_LIFT_RATIO * scores["activity"].lift_at_k
