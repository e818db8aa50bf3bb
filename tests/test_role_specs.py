"""Every role documents its inputs in meta/argument_specs.yml, with role-prefixed names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(path for path in (Path(__file__).parent.parent / "roles").iterdir() if path.is_dir())


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
