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
