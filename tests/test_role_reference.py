"""The role reference pages in the docs are generated from every role's argument_specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from testlib.plugins import load_file

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(path for path in (ROOT / "roles").iterdir() if path.is_dir())

role_reference = load_file(ROOT / "docs" / "_ext" / "role_reference.py", "role_reference")


def _option_names(options: dict, prefix: str = "") -> list[str]:
    """Every option and sub-option, sub-options spelled `parent[].child` or `parent.child`."""
    names = []
    for name, option in (options or {}).items():
        full = f"{prefix}{name}"
        names.append(full)
        element = f"{full}[]" if option.get("type") == "list" else full
        names += _option_names(option.get("options"), f"{element}.")
    return names


def _documented_names(page: str) -> list[str]:
    return re.findall(r"^#{3,} `([^`]+)`$", page, flags=re.MULTILINE)


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_option_has_its_section(role):
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    expected = _option_names(spec["argument_specs"]["main"]["options"])
    page = role_reference.render_role(role)
    assert _documented_names(page) == expected


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_page_leaves_no_ansible_markup(role):
    page = role_reference.render_role(role)
    leftovers = re.findall(r"\b(?:[COVIBUL]|RV)\([^)]*\)", page)
    assert not leftovers, leftovers


def _fake_role(roles: Path, options: dict, defaults: dict | None = None) -> Path:
    role = roles / "demo"
    (role / "meta").mkdir(parents=True)
    spec = {"argument_specs": {"main": {"short_description": "A demo role.", "options": options}}}
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(spec))
    if defaults is not None:
        (role / "defaults").mkdir()
        (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    return role


def test_page_shows_type_default_choices_and_description(tmp_path):
    role = _fake_role(
        tmp_path,
        {
            "demo_mode": {
                "type": "str",
                "choices": ["fast", "safe"],
                "default": "safe",
                "description": ["How to run; see O(demo_items) and C(demo --help)."],
            },
            "demo_items": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "description": "Things.",
                "options": {"name": {"type": "str", "description": "A name."}},
            },
            "demo_path": {"type": "path", "description": "Default taken from defaults/main.yml."},
        },
        defaults={"demo_path": "/srv/{{ project_name }}"},
    )
    page = role_reference.render_role(role)
    assert "- type: str\n- default: `safe`\n- choices: `fast`, `safe`" in page
    assert "How to run; see `demo_items` and `demo --help`." in page
    assert "- type: list of dict\n- required" in page
    assert "#### `demo_items[].name`" in page
    assert "- default: `/srv/{{ project_name }}`" in page


def test_a_vanished_option_is_noticed(tmp_path):
    """The check above compares the spec with the page: an option the page loses fails it."""
    role = _fake_role(tmp_path, {"demo_a": {"type": "int"}, "demo_b": {"type": "int"}})
    page = role_reference.render_role(role)
    damaged = page.replace("### `demo_b`", "### something else")
    assert _documented_names(page) == ["demo_a", "demo_b"]
    assert _documented_names(damaged) != ["demo_a", "demo_b"]


def test_write_reference_writes_index_and_pages_and_drops_stale_ones(tmp_path):
    _fake_role(tmp_path / "roles", {"demo_a": {"type": "int", "description": "A | B"}})
    out = tmp_path / "out"
    out.mkdir()
    (out / "gone.md").write_text("# a role that no longer exists\n")
    written = role_reference.write_reference(tmp_path / "roles", out)
    assert [path.name for path in written] == ["demo.md", "index.md"]
    assert not (out / "gone.md").exists()
    index = (out / "index.md").read_text()
    assert "| [`demo`](demo.md) | A demo role. |" in index
    assert "```{toctree}" in index
    assert "\ndemo\n" in index


def test_every_role_is_in_the_index():
    index = role_reference.render_index(role_reference.role_dirs(ROOT / "roles"))
    for role in ROLES:
        assert f"[`{role.name}`]({role.name}.md)" in index


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_role_has_a_readme_whose_reference_matches_its_specs(role):
    readme = role / "README.md"
    assert readme.exists(), f"{readme} is missing: run make role-readmes"
    text = readme.read_text()
    intro = text.split(role_reference.README_BEGIN, 1)[0]
    assert intro.startswith(f"# {role.name}\n") and len(intro.split("\n\n")) > 1, (
        f"{readme} needs a hand-written introduction above the generated reference"
    )
    assert text == role_reference.readme_with_block(role), (
        f"the reference in {readme} is stale: run make role-readmes"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_readme_documents_every_option_of_every_entry_point(role):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    expected = [name for entry in specs.values() for name in _option_names(entry.get("options"))]
    assert _documented_names(role_reference.render_readme_block(role)) == expected


def test_a_stale_readme_is_noticed_and_rewritten_below_its_introduction(tmp_path):
    role = _fake_role(tmp_path, {"demo_a": {"type": "int", "description": "One."}})
    readme = role / "README.md"
    readme.write_text("# demo\n\nWhat the demo role is for.\n")
    assert role_reference.write_readmes(tmp_path) == [readme]
    assert readme.read_text() == role_reference.readme_with_block(role)
    # The spec gains an option: the README no longer matches until it is rewritten.
    spec_file = role / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["argument_specs"]["main"]["options"]["demo_b"] = {"type": "str", "description": "Two."}
    spec_file.write_text(yaml.safe_dump(spec))
    assert readme.read_text() != role_reference.readme_with_block(role)
    role_reference.write_readmes(tmp_path)
    text = readme.read_text()
    assert text.startswith("# demo\n\nWhat the demo role is for.\n\n")
    assert "### `demo_b`" in text
    assert role_reference.write_readmes(tmp_path) == []


def test_every_entry_point_of_a_role_gets_its_own_section(tmp_path):
    role = _fake_role(tmp_path, {"demo_a": {"type": "int"}})
    spec_file = role / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["argument_specs"]["restore"] = {
        "short_description": "Restore.",
        "options": {"demo_when": {"type": "str"}},
    }
    spec_file.write_text(yaml.safe_dump(spec))
    block = role_reference.render_readme_block(role)
    assert "### Entry point `main` (the role itself)" in block
    assert "### Entry point `restore` (`tasks_from: restore`)" in block
    assert "#### `demo_when`" in block
