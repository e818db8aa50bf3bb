"""A step that dies halfway leaves no output behind, and the rerun just works."""

import datetime as dt
import subprocess
import sys
import textwrap

import luigi
import pyarrow.parquet as pq
import pytest
from scoring import atomic, naming
from scoring.tasks import DailyPartial

DAY = dt.date(2026, 1, 20)

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from scoring.atomic import atomic_output

    with atomic_output(Path(sys.argv[1])) as temporary, temporary.open("wb") as handle:
        handle.write(b"first half")
        handle.flush()
        print("halfway", flush=True)
        sys.stdin.readline()  # blocks until the parent kills this process
        handle.write(b" second half")
    """
)


def test_killed_writer_leaves_no_output_and_rerun_is_clean(tmp_path):
    target = tmp_path / "out" / "result.txt"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "halfway"
        writer.kill()
        writer.wait(timeout=30)
    finally:
        writer.stdout.close()
        writer.stdin.close()
    assert not target.exists()
    leftovers = [p.name for p in target.parent.iterdir()]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".result.txt.tmp-")  # hidden, never read as output

    atomic.write_text("complete", target)
    assert target.read_text() == "complete"
    assert [p.name for p in target.parent.iterdir()] == ["result.txt"]


def test_exception_inside_the_block_removes_the_temporary(tmp_path):
    target = tmp_path / "result.txt"
    with pytest.raises(RuntimeError), atomic.atomic_output(target) as temporary:
        temporary.write_text("partial")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_luigi_task_failing_halfway_leaves_nothing_and_reruns(data_root, monkeypatch):
    real_write = pq.write_table

    def write_half_then_fail(table, where, **kwargs):
        real_write(table.slice(0, table.num_rows // 2), where, **kwargs)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pq, "write_table", write_half_then_fail)
    task = DailyPartial(day=DAY)
    assert not luigi.build([task], local_scheduler=True, log_level="CRITICAL")
    output = task.output().path
    directory = naming.daily_partial_path(task.settings, DAY).parent
    assert not task.complete()
    assert list(directory.iterdir()) == []

    monkeypatch.setattr(pq, "write_table", real_write)
    assert luigi.build([task], local_scheduler=True, log_level="CRITICAL")
    assert task.complete()
    assert pq.read_table(output).num_rows > 0
    assert [p.name for p in directory.iterdir()] == [f"{DAY}.parquet"]
