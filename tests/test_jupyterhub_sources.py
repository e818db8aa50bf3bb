"""The fingerprint that names the scoring wheel's build directory on the controller."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from testlib.plugins import filter_plugin

sources = filter_plugin("jupyterhub", "sources")
fingerprint = sources.jupyterhub_source_fingerprint


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scoring'\n")
    package = tmp_path / "scoring"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models" / "train.py").write_text("TREES = 50\n")
    return tmp_path


def test_the_fingerprint_is_stable_and_short(project: Path):
    first = fingerprint(str(project))
    assert first == fingerprint(str(project))
    assert len(first) == 16
    assert int(first, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        lambda p: (p / "scoring/models/train.py").write_text("TREES = 25\n"),
        lambda p: (p / "scoring/models/train.py").rename(p / "scoring/models/fit.py"),
        lambda p: (p / "scoring/models/new.py").write_text(""),
        lambda p: (p / "scoring/features.csv").write_text("name\n"),
        lambda p: (p / "pyproject.toml").write_text("[project]\nname = 'scoring'\nversion = '2'\n"),
    ],
    ids=["content", "rename", "new module", "data file", "pyproject"],
)
def test_every_change_of_the_sources_changes_it(project: Path, change):
    before = fingerprint(str(project))
    change(project)
    assert fingerprint(str(project)) != before


def test_compiled_and_hidden_files_and_links_do_not_count(project: Path):
    before = fingerprint(str(project))
    cache = project / "scoring/__pycache__"
    cache.mkdir()
    (cache / "train.cpython-313.pyc").write_bytes(b"\0")
    (project / "scoring/models/train.pyo").write_bytes(b"\0")
    (project / "scoring/.editor-swap").write_text("x")
    (project / "scoring/.hidden").mkdir()
    (project / "scoring/.hidden/module.py").write_text("x")
    (project / "scoring/linked.py").symlink_to(project / "pyproject.toml")
    (project / "scoring/linked").symlink_to(project / "scoring/models")
    assert fingerprint(str(project)) == before


def test_a_missing_package_or_pyproject_is_named(project: Path):
    (project / "pyproject.toml").unlink()
    with pytest.raises(AnsibleFilterError, match=f"{project}/pyproject.toml is not a file"):
        fingerprint(str(project))
    with pytest.raises(AnsibleFilterError, match=f"{project}/other is not a directory"):
        fingerprint(str(project), package="other")
