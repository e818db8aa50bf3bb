"""Role reference pages, generated from each role's meta/argument_specs.yml.

As a Sphinx extension it writes `roles/index.md` and `roles/<role>.md` into the
documentation source before Sphinx reads it (the directory is not versioned), so the
reference can never drift from the specs that `site.yml` validates its inputs against.

It also keeps the reference part of every `roles/<role>/README.md` up to date: a README
is a hand-written introduction followed by the block between README_BEGIN and README_END,
rendered from the same specs (every entry point, `main` first).

    python docs/_ext/role_reference.py ROLES_DIR OUT_DIR    (the pages, without Sphinx)
    python docs/_ext/role_reference.py --readmes ROLES_DIR  (rewrite the READMEs' blocks)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

# Ansible's documentation markup: C(code), O(option), V(value), I(italic), B(bold),
# U(url), L(text,url), RV(return value).
_MARKUP = [
    (re.compile(r"\b[COV]\(([^)]*)\)"), r"`\1`"),
    (re.compile(r"\bRV\(([^)]*)\)"), r"`\1`"),
    (re.compile(r"\bI\(([^)]*)\)"), r"*\1*"),
    (re.compile(r"\bB\(([^)]*)\)"), r"**\1**"),
    (re.compile(r"\bU\(([^)]*)\)"), r"<\1>"),
    (re.compile(r"\bL\(([^,)]*),\s*([^)]*)\)"), r"[\1](\2)"),
]


def ansible_markup(text: str) -> str:
    """Turn Ansible documentation markup into Markdown."""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


def _paragraphs(description: str | list[str] | None) -> list[str]:
    if description is None:
        return []
    items = [description] if isinstance(description, str) else description
    return [ansible_markup(" ".join(str(item).split())) for item in items]


def _code(value: Any) -> str:
    """A value as inline code, written the way it would be in YAML."""
    if isinstance(value, str):
        text = value
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        text = text.removesuffix("...").strip()
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _type(option: dict) -> str:
    kind = option.get("type", "str")
    if kind == "list" and "elements" in option:
        return f"list of {option['elements']}"
    return kind


def _option_lines(name: str, option: dict, defaults: dict, level: int) -> list[str]:
    lines = [f"{'#' * level} `{name}`", ""]
    facts = [f"type: {_type(option)}"]
    if option.get("required"):
        facts.append("required")
    if "default" in option:
        facts.append(f"default: {_code(option['default'])}")
    elif name in defaults:
        facts.append(f"default: {_code(defaults[name])}")
    if "choices" in option:
        facts.append("choices: " + ", ".join(_code(choice) for choice in option["choices"]))
    lines += [f"- {fact}" for fact in facts] + [""]
    for paragraph in _paragraphs(option.get("description")):
        lines += [paragraph, ""]
    suboptions = option.get("options") or {}
    if suboptions:
        element = f"{name}[]" if option.get("type") == "list" else name
        for subname, suboption in suboptions.items():
            lines += _option_lines(f"{element}.{subname}", suboption, {}, level + 1)
    return lines


def load_role(role_dir: Path) -> tuple[dict, dict]:
    """The `main` entry point of a role's argument_specs, and its defaults/main.yml."""
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())
    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    return specs["argument_specs"]["main"], defaults


def render_role(role_dir: Path) -> str:
    """The reference page of one role, in Markdown."""
    spec, defaults = load_role(role_dir)
    lines = [f"# `{role_dir.name}`", "", ansible_markup(spec["short_description"]), ""]
    for paragraph in _paragraphs(spec.get("description")):
        lines += [paragraph, ""]
    lines += [
        "Generated from `roles/" + role_dir.name + "/meta/argument_specs.yml`. A default shown "
        "as a template is the role's `defaults/main.yml` value, resolved on the host.",
        "",
        "## Options",
        "",
    ]
    options = spec.get("options") or {}
    if not options:
        lines += ["This role takes no options.", ""]
    for name, option in options.items():
        lines += _option_lines(name, option, defaults, 3)
    return "\n".join(lines).rstrip() + "\n"


README_BEGIN = (
    "<!-- BEGIN generated from meta/argument_specs.yml by docs/_ext/role_reference.py:"
    " edit the specs, then run make role-readmes -->"
)
README_END = "<!-- END generated -->"


def _entry_points(role_dir: Path) -> dict[str, dict]:
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())
    entries = specs["argument_specs"]
    return {"main": entries["main"]} | {k: v for k, v in entries.items() if k != "main"}


def render_readme_block(role_dir: Path) -> str:
    """The generated part of a role's README: every entry point and its options."""
    _, defaults = load_role(role_dir)
    entries = _entry_points(role_dir)
    lines = [
        README_BEGIN,
        "",
        "## Reference",
        "",
        "Generated from `meta/argument_specs.yml`; `site.yml` checks its inputs against the "
        "same specs. A default shown as a template is the value of `defaults/main.yml`, "
        "resolved on the host.",
        "",
    ]
    for name, spec in entries.items():
        if len(entries) > 1:
            how = "the role itself" if name == "main" else f"`tasks_from: {name}`"
            lines += [f"### Entry point `{name}` ({how})", ""]
        lines += [ansible_markup(spec["short_description"]), ""]
        for paragraph in _paragraphs(spec.get("description")):
            lines += [paragraph, ""]
        options = spec.get("options") or {}
        if not options:
            lines += ["No options.", ""]
        level = 4 if len(entries) > 1 else 3
        for option_name, option in options.items():
            lines += _option_lines(option_name, option, defaults, level)
    lines += [README_END]
    return "\n".join(lines) + "\n"


def readme_with_block(role_dir: Path) -> str:
    """The role's README with its generated block rendered anew. A README without the
    markers gets the block appended; one without a file starts from the role's name."""
    path = role_dir / "README.md"
    text = path.read_text() if path.exists() else f"# {role_dir.name}\n"
    block = render_readme_block(role_dir)
    if README_BEGIN in text and README_END in text:
        head, rest = text.split(README_BEGIN, 1)
        tail = rest.split(README_END, 1)[1].lstrip("\n")
        return head + block + (("\n" + tail) if tail else "")
    return text.rstrip("\n") + "\n\n" + block


def write_readmes(roles_dir: Path) -> list[Path]:
    """Rewrite the generated block of every role's README; unchanged files stay untouched."""
    changed = []
    for role in role_dirs(roles_dir):
        path = role / "README.md"
        text = readme_with_block(role)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def render_index(role_dirs: list[Path]) -> str:
    lines = [
        "# Role reference",
        "",
        "One page per role, generated from its `meta/argument_specs.yml`: every variable the "
        "role reads, its type, default and meaning. `site.yml` checks the inventory against "
        "the same specs in its preflight play.",
        "",
        "| role | does |",
        "| --- | --- |",
    ]
    for role_dir in role_dirs:
        spec, _ = load_role(role_dir)
        summary = ansible_markup(spec["short_description"]).replace("|", r"\|")
        lines.append(f"| [`{role_dir.name}`]({role_dir.name}.md) | {summary} |")
    lines += ["", "```{toctree}", ":hidden:", ""]
    lines += [role_dir.name for role_dir in role_dirs]
    lines += ["```", ""]
    return "\n".join(lines)


def role_dirs(roles_dir: Path) -> list[Path]:
    return sorted(
        path for path in roles_dir.iterdir() if (path / "meta" / "argument_specs.yml").exists()
    )


def write_reference(roles_dir: Path, out_dir: Path) -> list[Path]:
    """Write the pages; files whose content is unchanged are left alone (Sphinx reuses them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    roles = role_dirs(roles_dir)
    pages = {out_dir / "index.md": render_index(roles)}
    pages |= {out_dir / f"{role.name}.md": render_role(role) for role in roles}
    for stale in set(out_dir.glob("*.md")) - set(pages):
        stale.unlink()
    for path, text in pages.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return sorted(pages)


def _generate(app: Any, _config: Any) -> None:
    source = Path(app.srcdir)
    write_reference(source.parent / "roles", source / "roles")


def setup(app: Any) -> dict:
    app.connect("config-inited", _generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    if sys.argv[1] == "--readmes":
        for readme in write_readmes(Path(sys.argv[2])):
            print(f"rewrote {readme}")
    else:
        for page in write_reference(Path(sys.argv[1]), Path(sys.argv[2])):
            print(page)
