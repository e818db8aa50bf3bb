"""The backup program names the cause of a failed restic run (roles/backup/files/backup.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from testlib.plugins import load_file

SOURCE = Path(__file__).resolve().parent.parent / "roles" / "backup" / "files" / "backup.py"
backup = load_file(SOURCE, "backup_program")

CONFIG = SimpleNamespace(repository="sftp:restic@backup:/srv/restic/p", password_file="/pw")


def failed(stderr: str, returncode: int = 1) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["restic"], returncode, stdout="", stderr=stderr)


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        (
            "ssh: connect to host backup port 22: Connection timed out\nFatal: unable to open",
            "unreachable",
        ),
        # ssh's own reason does not always reach restic's output: only the sftp session's end.
        (
            "Fatal: unable to open repository at sftp:restic@backup:/srv/restic/p: unable to start "
            "the sftp session, error: error receiving version packet from server: server "
            "unexpectedly closed connection: unexpected EOF",
            "unreachable",
        ),
        ("Permission denied (publickey).\nFatal: unable to open", "refused"),
        ("Host key verification failed.\nFatal: unable to open", "host-key"),
        ("Fatal: wrong password or no key found", "wrong-password"),
    ],
)
def test_a_failure_names_its_cause(stderr, kind):
    error = backup.explain(CONFIG, failed(stderr), "backup of p")
    assert error.kind == kind, str(error)
    assert "backup of p failed" in str(error)


RUNC_REFUSAL = (
    "Error response from daemon: failed to create task for container: failed to create shim "
    "task: OCI runtime create failed: runc create failed: unable to start container process: "
    "waiting for init preliminary setup: read init-p: connection reset by peer: unknown"
)


def _fake_docker(monkeypatch, refusals: int) -> list[tuple[str, ...]]:
    """`docker` answering as the engine would, refusing the first `refusals` starts."""
    calls: list[tuple[str, ...]] = []

    def docker(*args: str) -> subprocess.CompletedProcess:
        calls.append(args)
        starts = sum(1 for call in calls if call[0] == "start")
        if args[0] == "start" and starts <= refusals:
            return subprocess.CompletedProcess(["docker"], 1, stdout="", stderr=RUNC_REFUSAL)
        return subprocess.CompletedProcess(["docker"], 0, stdout="", stderr="")

    monkeypatch.setattr(backup, "docker", docker)
    monkeypatch.setattr(backup.time, "sleep", lambda seconds: None)
    return calls


def test_luigid_is_started_again_when_the_runtime_refuses_a_start_once(monkeypatch):
    calls = _fake_docker(monkeypatch, refusals=1)
    backup.start_again("luigid")
    assert [call for call in calls if call[0] == "start"] == [("start", "luigid")] * 2


def test_luigid_left_down_fails_the_backup_naming_the_runtime_error(monkeypatch):
    calls = _fake_docker(monkeypatch, refusals=backup.START_ATTEMPTS)
    with pytest.raises(backup.BackupError, match=r"after 3 attempts: .*read init-p"):
        backup.start_again("luigid")
    assert len([call for call in calls if call[0] == "start"]) == backup.START_ATTEMPTS
