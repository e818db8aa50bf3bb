"""Which journal lines a failure alert carries (roles/monitoring/files/scoring_alert.py)."""

from __future__ import annotations

import subprocess

import pytest
from testlib.plugins import ROOT, load_file

UNIT = "scoring-integrity.service"
INVOCATION = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
STARTED = 1796644800.0
OWN_LINE = "2026-12-07T03:30:05+0000 master debsums[812]: /usr/share/doc/debsums/copyright"
SYSTEMD_LINE = (
    f"2026-12-07T03:30:06+0000 master systemd[1]: {UNIT}: Failed with result 'exit-code'."
)


@pytest.fixture
def alert(monkeypatch):
    """The script, with journalctl answering from `journal_answers` (argv -> output)."""
    module = load_file(ROOT / "roles/monitoring/files/scoring_alert.py", "scoring_alert")
    module.journal_answers = {}
    module.journal_calls = []

    def run(argv, timeout=30):
        module.journal_calls.append(argv)
        matched = [out for match, out in module.journal_answers.items() if match in argv]
        return subprocess.CompletedProcess(argv, 0, matched[0] if matched else "", "")

    monkeypatch.setattr(module, "run", run)
    return module


def test_the_lines_of_the_run_are_read_by_its_invocation(alert):
    alert.journal_answers[f"_SYSTEMD_INVOCATION_ID={INVOCATION}"] = OWN_LINE + "\n"
    assert alert.journal(UNIT, 20, INVOCATION, STARTED) == [OWN_LINE]
    assert len(alert.journal_calls) == 1


def test_lines_journald_could_not_tie_to_the_run_are_read_since_it_started(alert):
    # The run's output reached journald as its process ended: no invocation ID on it.
    alert.journal_answers["--since"] = f"{OWN_LINE}\n{SYSTEMD_LINE}\n"
    lines = alert.journal(UNIT, 20, INVOCATION, STARTED)
    assert lines == [OWN_LINE], "systemd's own line would read as the run's error"
    since = alert.journal_calls[-1]
    assert since[since.index("-u") + 1] == UNIT
    assert since[since.index("--since") + 1] == f"@{STARTED:.6f}"


def test_without_a_start_time_nothing_else_is_read(alert):
    assert alert.journal(UNIT, 20, INVOCATION) == []
    assert len(alert.journal_calls) == 1
