"""A test set whose rows are nearly all distinct, and the share of distinct classes of a
test set under a model.

The daily job's synthetic test set has many alike users (the same few counts, days and
flags), so the binned scoring scores each class of them once. Real feature tables have
fewer: account ages over years, counts with a long tail, continuous attributes. This set
has all three, for the prediction benchmark beside the daily job's own test set.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

# A continuous attribute beside the feature table's columns: the median asking price of
# the listings a user viewed (thousands of euros), as a product could add one.
CONTINUOUS = "median_price_viewed"


def high_cardinality(names: list[str], users: int, date: dt.date, seed: int) -> pa.Table:
    """id, date, every feature of `names`, CONTINUOUS and a target, one row per user."""
    rng = np.random.default_rng(seed)
    window = 90
    # Events in the window, long-tailed (median 36, mean near 190): at least one, as the
    # window state keeps only users active in it.
    activity = np.minimum(1 + np.floor(rng.pareto(1.1, users) * 40), 20_000).astype(np.int64)
    columns: dict[str, np.ndarray] = {}
    for name in names:
        if name == "account_age_days":
            values = rng.integers(0, 3_650, users)  # up to ten years
        elif name == "is_premium":
            values = rng.random(users) < 0.1
        elif name == "days_since_last_event":
            values = rng.integers(0, window, users)
        elif name.startswith("active_days"):
            span = 7 if name.endswith("_7d") else window
            values = rng.binomial(span, np.minimum(activity / 200, 1.0))
        else:  # an event count: a share of the user's long-tailed activity
            days = 7 if name.endswith("_7d") else 3 if name.endswith("_3d") else window
            share = days / window
            values = rng.binomial(activity, share * rng.uniform(0.05, 0.6, users))
        columns[name] = values.astype(np.int8 if name == "is_premium" else np.int32)
    columns[CONTINUOUS] = rng.lognormal(5.5, 0.6, users)
    # Every kind of column carries some of the signal, so that the trees split all of them
    # finely, as they do on real features.
    signal = (
        0.5 * np.log1p(columns.get("contact_requests", 0))
        + 0.3 * np.log1p(columns.get("saves", 0))
        + 0.2 * np.log1p(columns.get("listing_views", 0))
        + 0.1 * np.log1p(columns.get("searches", 0))
        + 0.4 * np.sin(columns.get("account_age_days", 0) / 300)
        - 0.02 * columns.get("days_since_last_event", 0)
        + 0.01 * columns.get("active_days", 0)
        - 0.3 * np.log(columns[CONTINUOUS] / 250)
        - 2.5
    )
    target = rng.random(users) < 1 / (1 + np.exp(-signal))
    return pa.table(
        {
            "id": pa.array(np.arange(1, users + 1, dtype=np.int64)),
            "date": pa.array([date] * users, pa.date32()),
            **{name: pa.array(values) for name, values in columns.items()},
            "target": pa.array(target.astype(np.int8)),
        }
    )


def class_share(model, table: pa.Table) -> float:
    """Classes of rows that no split of the model's trees tells apart, per row."""
    from scoring.modeling import predict  # noqa: PLC0415

    pipeline, booster = predict._binned_booster(model)
    features = predict._numpy_columns(table.select(model.feature_names))
    binned = predict._bins_by_column(pipeline, booster, features)
    first, _ = predict._distinct_rows(booster, binned)
    return len(first) / max(table.num_rows, 1)
