"""Write-then-rename helpers so that a crashed or killed step never leaves a partial output.

Readers only ever see complete files: the data is written to a hidden temporary file in the
target's own directory (same filesystem, so the final rename is atomic) and renamed at
the end. Leftover temporaries of a killed run are removed when the same output is written
again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TEMP_MARKER = ".tmp-"


def _temp_prefix(target: Path) -> str:
    return f".{target.name}{TEMP_MARKER}"


def remove_stale_temporaries(target: Path) -> None:
    for stale in target.parent.glob(_temp_prefix(target) + "*"):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `target`, on error it is deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    temporary = target.parent / f"{_temp_prefix(target)}{uuid.uuid4().hex[:8]}"
    try:
        yield temporary
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


# For intermediate files that are read back often: larger, but much faster to load.
FAST_PARQUET = {"compression": "lz4", "use_dictionary": False}


def write_parquet(table: pa.Table, target: Path, **options) -> None:
    with atomic_output(target) as temporary:
        pq.write_table(table, temporary, **options)


def write_arrow(table: pa.Table, target: Path) -> None:
    """Arrow IPC file: no encoding on write, memory-mapped on read."""
    with (
        atomic_output(target) as temporary,
        pa.OSFile(str(temporary), "wb") as sink,
        pa.ipc.new_file(sink, table.schema) as writer,
    ):
        writer.write_table(table)


def read_arrow(path: Path) -> pa.Table:
    # The map stays open as long as the table's buffers use it (freed with the table).
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def write_text(text: str, target: Path) -> None:
    with atomic_output(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
