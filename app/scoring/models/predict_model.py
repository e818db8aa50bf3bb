"""Score a feature table with a saved model: output columns id, date, target."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from scoring.models.train_model import TrainedModel

PREDICTION_SCHEMA = pa.schema([("id", pa.int64()), ("date", pa.date32()), ("target", pa.float64())])


def predict(model: TrainedModel, features: pd.DataFrame) -> pa.Table:
    """`target` is the predicted probability of converting within the lead window."""
    probabilities = model.predict_proba(features)
    frame = pd.DataFrame(
        {"id": features["id"].to_numpy(), "date": features["date"], "target": probabilities}
    )
    return pa.Table.from_pandas(frame, schema=PREDICTION_SCHEMA, preserve_index=False)
