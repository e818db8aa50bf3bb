"""The summary `make test` prints at its end: what failed, read from each step's results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from testlib import failures

TESTS = """
def test_fine():
    assert True

def test_broken():
    served = "model-b"
    assert served == "model-a", "the scores served are not the chosen model's"
"""


def run_step(results: Path, name: str, tmp_path: Path) -> None:
    """A real pytest run, as a step of `make test` runs one: its JUnit report and exit code."""
    (tmp_path / f"test_{name}.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # The outer run's options (`make test` sets a report path of its own) stay out.
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", "pytest.ini",
         f"--junitxml={results / f'{name}.xml'}", f"test_{name}.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    (results / f"{name}.log").write_text(run.stdout)
    (results / f"{name}.rc").write_text(f"{run.returncode}\n")


def test_a_failed_test_is_named_last_with_the_end_of_its_report(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    run_step(results, "default", tmp_path)
    lines = failures.summary(results)
    text = "\n".join(lines)
    assert "=== [default] failed (exit 1) ===" in lines
    assert "the scores served are not the chosen model's" in text
    assert "test_fine" not in text
    assert lines[-2:] == ["=== what failed ===", "[default] test_default::test_broken"]


def test_a_step_that_failed_without_a_failed_test_shows_its_error_lines(tmp_path):
    (tmp_path / "default.log").write_text(
        "\x1b[32mok: [master]\x1b[0m\n"
        'fatal: [master]: FAILED! => {"msg": "nft: syntax error"}\n'
        "PLAY RECAP\n"
    )
    (tmp_path / "default.rc").write_text("2\n")
    (tmp_path / "pytest.rc").write_text("0\n")
    lines = failures.summary(tmp_path)
    assert '    fatal: [master]: FAILED! => {"msg": "nft: syntax error"}' in lines
    assert "ok: [master]" not in "\n".join(lines)
    assert lines[-1] == "[default] (no test failed: see its error lines above)"
    assert not any("[pytest]" in line for line in lines)


def test_nothing_is_printed_when_every_step_passed(tmp_path):
    for step in ("default", "pytest", "scaleout", "sandbox"):
        (tmp_path / f"{step}.rc").write_text("0\n")
    assert failures.summary(tmp_path) == []
