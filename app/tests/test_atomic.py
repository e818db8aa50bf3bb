"""A step that dies halfway leaves no output behind, and the rerun just works."""

import datetime as dt
import subprocess
import sys
import textwrap

import luigi
import pyarrow.parquet as pq
import pytest
from scoring import atomic, fingerprints, naming
from scoring.tasks import DailyPartials

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
    """No temporary is left, by the failed run or the next; the next keeps the raw file's
    fingerprint (the raw file counts as settled at once, however fast the test runs)."""
    monkeypatch.setattr(fingerprints, "RACY_NS", 0)
    real_write = pq.write_table

    def write_half_then_fail(table, where, **kwargs):
        real_write(table.slice(0, table.num_rows // 2), where, **kwargs)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pq, "write_table", write_half_then_fail)
    task = DailyPartials(first=DAY, last=DAY)
    assert not luigi.build([task], local_scheduler=True, log_level="CRITICAL")
    output = task.output()[0].path
    directory = naming.daily_partial_path(task.settings, DAY).parent
    assert not task.complete()
    assert list(directory.iterdir()) == []

    monkeypatch.setattr(pq, "write_table", real_write)
    assert luigi.build([task], local_scheduler=True, log_level="CRITICAL")
    assert task.complete()
    assert pq.read_table(output).num_rows > 0
    kept = naming.raw_fingerprints_path(task.settings).name
    assert sorted(p.name for p in directory.iterdir()) == sorted([f"{DAY}.parquet", kept])


def test_a_concurrent_writer_keeps_its_temporary(tmp_path):
    """Two writers of one output: neither deletes the other's temporary, the last rename wins."""
    target = tmp_path / "result.txt"
    with atomic.atomic_output(target) as first:
        first.write_text("one")
        with atomic.atomic_output(target) as second:
            assert first.exists(), "the second writer removed the first one's temporary"
            second.write_text("two")
        assert target.read_text() == "two"
        assert first.exists()
    assert target.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_a_dead_writers_temporary_is_removed_but_another_hosts_is_kept(tmp_path):
    target = tmp_path / "result.txt"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    prefix = f".result.txt{atomic.TEMP_MARKER}"
    stale = tmp_path / f"{prefix}{atomic._host()}-{dead.stdout.strip()}-0badc0de"
    foreign = tmp_path / f"{prefix}otherhost-1-0badc0de"
    stale.write_text("left by a killed run")
    foreign.write_text("a writer on another host")
    atomic.write_text("complete", target)
    assert not stale.exists()
    assert foreign.exists()


CONCURRENT_PREDICT = [sys.executable, "-m", "scoring.cli", "predict", "--local-scheduler"]


def test_two_runs_for_the_same_date_at_once_give_one_result(data_root):
    import os  # noqa: PLC0415

    from scoring.settings import get_settings  # noqa: PLC0415

    date = get_settings().today.isoformat()
    runs = [
        subprocess.Popen(
            [*CONCURRENT_PREDICT, "--date", date],
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outcomes
    predictions = list((data_root / "models" / "predictions").iterdir())
    assert len(predictions) == 1, predictions
    assert predictions[0].name.endswith(f"-{date}.parquet")
    assert pq.read_table(predictions[0]).num_rows > 0
    assert not [p for p in data_root.rglob("*") if atomic.TEMP_MARKER in p.name]
