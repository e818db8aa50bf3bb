"""Every role documents its inputs in meta/argument_specs.yml, with role-prefixed names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
ROLES = sorted(path for path in (ROOT / "roles").iterdir() if path.is_dir())


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _spec_options(role: Path) -> dict:
    return _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def test_there_are_roles():
    assert ROLES, "no roles found"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_role_has_argument_specs(role):
    spec = _load(role / "meta" / "argument_specs.yml")
    assert spec["argument_specs"]["main"]["short_description"]


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_default_is_documented(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = _load(defaults_file) if defaults_file.exists() else {}
    undocumented = sorted(set(defaults) - set(_spec_options(role)))
    assert not undocumented, f"{role.name}: defaults without an argument_spec: {undocumented}"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_variables_are_role_prefixed(role):
    prefix = f"{role.name}_"
    unprefixed = sorted(name for name in _spec_options(role) if not name.startswith(prefix))
    assert not unprefixed, f"{role.name}: variables without the '{prefix}' prefix: {unprefixed}"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_spec_defaults_match_role_defaults(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = _load(defaults_file) if defaults_file.exists() else {}
    mismatched = {
        name: (option["default"], defaults.get(name))
        for name, option in _spec_options(role).items()
        if "default" in option and name in defaults and option["default"] != defaults[name]
    }
    assert not mismatched, f"{role.name}: spec default != defaults/main.yml: {mismatched}"


def _included_entry_points() -> list[tuple[str, str, str]]:
    """(file, role, entry point) of every include_role/import_role with tasks_from."""
    found = []
    for path in sorted([*ROOT.glob("playbooks/*.yml"), *ROOT.glob("roles/*/tasks/*.yml")]):
        for match in re.finditer(
            r"name: ['\"]?([\w{} |'.]+?)['\"]?\n\s+tasks_from: (\S+)", path.read_text()
        ):
            found.append((str(path.relative_to(ROOT)), match[1], match[2]))
    return found


def test_entry_points_are_found():
    assert ("playbooks/restore.yml", "backup", "restore") in _included_entry_points()


@pytest.mark.parametrize(("where", "role", "entry"), _included_entry_points())
def test_every_tasks_from_entry_point_has_its_argument_spec(where, role, entry):
    """Ansible checks an included entry point's inputs only against the spec of the same
    name, and only when tasks_from names it without the file's extension."""
    roles = ["backup", "monitoring"] if role == "{{ preflight_checked_role }}" else [role]
    for name in roles:
        specs = yaml.safe_load((ROOT / "roles" / name / "meta" / "argument_specs.yml").read_text())
        assert entry in specs["argument_specs"], (
            f"{where} includes {name} with tasks_from: {entry}, which has no argument spec"
        )
