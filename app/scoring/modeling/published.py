"""The publication record: which score file was served for a date, by which model, under
which label definition and decision.

A score file carries its record in its parquet metadata (`PUBLISHED_KEY`); the file first
published for a date is named by models/published/<date>.json. The live evaluation reads
both to evaluate what was served, under the labels of the model that served it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq

from scoring.errors import MissingInputError
from scoring.settings import Settings

# Key of the publication record (model, label definition, decision) in score files.
PUBLISHED_KEY = b"scoring.published"


def published_record_path(settings: Settings, date: dt.date) -> Path:
    """What was published for `date`: the file, its model, label definition and decision."""
    return settings.models_dir / "published" / f"{date.isoformat()}.json"


def read_published(settings: Settings, date: dt.date) -> dict | None:
    path = published_record_path(settings, date)
    return json.loads(path.read_text()) if path.exists() else None


def published_file(settings: Settings, date: dt.date) -> Path | None:
    record = read_published(settings, date)
    return settings.predictions_dir / record["file"] if record else None


def served_by(path: Path) -> dict:
    """The publication record in a score file's parquet metadata."""
    metadata = pq.read_schema(path).metadata or {}
    if PUBLISHED_KEY not in metadata:
        raise MissingInputError(f"{path} records no model (written before scores named theirs)")
    return json.loads(metadata[PUBLISHED_KEY])
