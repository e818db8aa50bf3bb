"""The labels of a scoring date: who converted within its lead window, from checked files."""

from __future__ import annotations

import datetime as dt

import numpy as np

from scoring import naming
from scoring.data import checks, dataset
from scoring.errors import LabelsSkipped
from scoring.settings import Settings


def read_labels(settings: Settings, date: dt.date) -> np.ndarray:
    """Sorted ids of the users who converted within the label window of `date`.

    Each conversions file is checked first (checks.checked_conversions): a failed check
    stops with the file named, or under the skip policy raises LabelsSkipped, so
    that the date is not used.
    """
    converted = []
    for day in dataset.label_days(settings, date):
        table = checks.checked_conversions(settings, day)
        if table is None:
            path = naming.raw_conversions_path(settings, day)
            raise LabelsSkipped(date, f"{path} was skipped (data/interim/gaps/)")
        converted.append(table["user_id"].to_numpy())
    return np.unique(np.concatenate(converted)) if converted else np.array([], dtype=np.int64)
