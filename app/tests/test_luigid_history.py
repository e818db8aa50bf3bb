"""luigid with task history on the pinned luigi + SQLAlchemy, exercised for real.

Starts `scoring-luigid` (luigid with the SQLAlchemy 2 fix) with history recorded in SQLite,
runs a tiny task against it, and reads the task back from the history pages.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import luigi
import pytest

STARTUP_DEADLINE_S = 60


class TinyTask(luigi.Task):
    tag = luigi.Parameter()
    target_dir = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(str(Path(self.target_dir) / f"{self.tag}.txt"))

    def run(self):
        with self.output().open("w") as handle:
            handle.write("done")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], tmp_path: Path, port: int) -> subprocess.Popen:
    config = tmp_path / "luigi.cfg"
    config.write_text(
        "[core]\n"
        f"default_scheduler_url = http://127.0.0.1:{port}/\n"
        "[scheduler]\n"
        "record_task_history = True\n"
        f"state_path = {tmp_path / 'state.pickle'}\n"
        "[task_history]\n"
        f"db_connection = sqlite:///{tmp_path / 'history.db'}\n"
    )
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(config)}
    return subprocess.Popen(
        [
            *command,
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--state-path",
            str(tmp_path / "state.pickle"),
            "--logdir",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_listening(process: subprocess.Popen, port: int) -> None:
    """Poll the port; between attempts wait on the process itself so a crash ends the wait."""
    attempts = int(STARTUP_DEADLINE_S / 0.1)
    for _ in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        _, err = process.communicate()
        pytest.fail(f"luigid exited with {process.returncode} before listening:\n{err[-3000:]}")
    pytest.fail(f"luigid did not listen on port {port} within {STARTUP_DEADLINE_S}s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def test_task_history_records_a_run(tmp_path):
    port = _free_port()
    luigid = _start([sys.executable, "-m", "scoring.luigid"], tmp_path, port)
    try:
        _wait_until_listening(luigid, port)
        task = TinyTask(tag="history-check", target_dir=str(tmp_path / "out"))
        ok = luigi.build([task], scheduler_url=f"http://127.0.0.1:{port}/", log_level="WARNING")
        assert ok
        assert task.complete()
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/history/by_name/TinyTask", timeout=10
        ) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "TinyTask" in page
        assert "history-check" in page  # the parameter value, read back from the database
        assert "DONE" in page
    finally:
        _stop(luigid)


def _history_page(port: int, task_name: str) -> str:
    url = f"http://127.0.0.1:{port}/history/by_name/{task_name}"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def test_cli_uses_the_central_scheduler_from_luigi_config(data_root, tmp_path):
    """`scoring daily` without --local-scheduler goes to [core] default_scheduler_url."""
    port = _free_port()
    luigid = _start([sys.executable, "-m", "scoring.luigid"], tmp_path, port)
    try:
        _wait_until_listening(luigid, port)
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(tmp_path / "luigi.cfg")}
        run = subprocess.run(
            [sys.executable, "-m", "scoring.cli", "daily", "--days-back", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        page = _history_page(port, "Predict")
        assert "DONE" in page
    finally:
        _stop(luigid)


def test_plain_luigid_needs_the_fix(tmp_path):
    """Why scoring-luigid exists: luigi's own luigid crashes on SQLAlchemy 2 at startup.

    If this starts failing, luigi fixed the bug and the launcher can be retired.
    """
    luigid_script = Path(sys.executable).with_name("luigid")
    if not luigid_script.exists():
        pytest.skip("luigid entry point not installed next to this interpreter")
    process = _start([str(luigid_script)], tmp_path, _free_port())
    try:
        _, err = process.communicate(timeout=STARTUP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        _stop(process)
        pytest.fail("plain luigid started fine: the SQLAlchemy 2 fix may no longer be needed")
    assert process.returncode != 0
    assert "ObjectNotExecutableError" in err
