"""The in-process check that decides whether the team's ssh files must be written."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from testlib.plugins import filter_plugin

outputs = filter_plugin("team_ssh_config", "outputs")
outdated = outputs.team_ssh_config_outdated

CONFIG = "Host is24de\n    User alice\n"


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = tmp_path / "alice.ssh_config"
    path.write_text(CONFIG)
    path.chmod(0o644)
    return path


def test_a_file_as_it_should_be_is_up_to_date(written: Path):
    assert outdated(str(written), CONFIG, "0644") is False


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.unlink(),
        lambda p: p.write_text(CONFIG + "    LocalForward 1 127.0.0.1:1\n"),
        lambda p: p.write_text(CONFIG.rstrip("\n")),  # only the final newline differs
        lambda p: p.chmod(0o666),  # ssh refuses a config that others can write
    ],
    ids=["missing", "content", "trailing newline", "mode"],
)
def test_any_difference_makes_it_out_of_date(written: Path, change):
    change(written)
    assert outdated(str(written), CONFIG, "0644") is True


def test_a_link_or_a_directory_in_its_place_is_out_of_date(written: Path, tmp_path: Path):
    target = tmp_path / "elsewhere"
    target.write_text(CONFIG)
    target.chmod(0o644)
    written.unlink()
    written.symlink_to(target)
    assert outdated(str(written), CONFIG, "0644") is True
    written.unlink()
    written.mkdir(mode=0o644)
    assert outdated(str(written), CONFIG, "0644") is True


def test_directories_are_checked_by_kind_and_mode(tmp_path: Path):
    directory = tmp_path / "ssh"
    assert outdated(str(directory), mode="0755") is True
    directory.mkdir()
    directory.chmod(0o755)
    assert outdated(str(directory), mode="0755") is False
    directory.chmod(0o700)
    assert outdated(str(directory), mode="0755") is True


def test_a_mode_that_is_not_octal_is_named(written: Path):
    with pytest.raises(AnsibleFilterError, match="mode 'rw-r--r--' is not octal"):
        outdated(str(written), CONFIG, "rw-r--r--")
