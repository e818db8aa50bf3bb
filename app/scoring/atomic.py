"""Write-then-rename helpers so that a crashed, killed or concurrent step never leaves a
partial output, and two runs writing the same output at once never hurt each other.

Readers only ever see complete files: the data is written to a hidden temporary file in the
target's own directory (same filesystem, so the final rename is atomic), synced to disk, and
renamed at the end; the directory is synced after the rename. Each writer's temporary is
named by its host, process id and a random part, so a run only ever deletes its own
temporary, or those that a dead process on the same host left behind; a concurrent writer's
file is never touched. When two runs write the same output, the last rename wins, and both
wrote the same content: names are derived from everything that shapes the content.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TEMP_MARKER = ".tmp-"


def _temp_prefix(target: Path) -> str:
    return f".{target.name}{TEMP_MARKER}"


def _host() -> str:
    # No "-" in the host part: it separates the fields of a temporary's name.
    return socket.gethostname().replace("-", "_") or "host"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(target: Path) -> None:
    """Delete temporaries of `target` whose writer, on this host, no longer runs."""
    host = _host()
    for stale in target.parent.glob(_temp_prefix(target) + "*"):
        fields = stale.name[len(_temp_prefix(target)) :].split("-")
        if len(fields) != 3 or fields[0] != host or not fields[1].isdigit():
            continue  # another host's writer, or not ours to judge
        if not _process_alive(int(fields[1])):
            stale.unlink(missing_ok=True)


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `target`, on error it is deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    name = f"{_temp_prefix(target)}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temporary = target.parent / name
    try:
        yield temporary
        _fsync(temporary)
        temporary.replace(target)
        _fsync(target.parent, directory=True)
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
