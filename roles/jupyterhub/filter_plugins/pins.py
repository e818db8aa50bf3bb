"""Which exact pins of a requirements text a virtual environment does not hold yet.

`pip install -r` changes nothing exactly when every `name==version` line is installed at
that version. The venv's `*.dist-info` directories say which versions are installed, so a
re-run can look at them (one `find`) instead of starting pip. Anything that is not a plain
pin (a range, an extra, a marker, an option other than `-r`) counts as missing, so pip
runs whenever this cannot tell.
"""

from __future__ import annotations

import posixpath
import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, canonicalize_version

DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


def _pins(text: str) -> list[tuple[tuple[str, str] | None, str]]:
    """(name, version) of each plain pin, None for any other line; with the line itself."""
    pins: list[tuple[tuple[str, str] | None, str]] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith(("-r ", "--requirement ")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            pins.append((None, line))
            continue
        specifiers = list(requirement.specifier)
        if (
            requirement.extras
            or requirement.marker
            or requirement.url
            or len(specifiers) != 1
            or specifiers[0].operator != "=="
            or "*" in specifiers[0].version
        ):
            pins.append((None, line))
            continue
        key = (canonicalize_name(requirement.name), canonicalize_version(specifiers[0].version))
        pins.append((key, line))
    return pins


def jupyterhub_missing_pins(texts: str | list[str], dist_info_paths: list[str]) -> list[str]:
    """The lines of `texts` (requirements files' contents) that the venv does not satisfy."""
    if isinstance(texts, str):
        texts = [texts]
    installed = set()
    for path in dist_info_paths:
        match = DIST_INFO.match(posixpath.basename(path.rstrip("/")))
        if match:
            installed.add(
                (canonicalize_name(match["name"]), canonicalize_version(match["version"]))
            )
    missing = []
    for text in texts:
        missing.extend(line for key, line in _pins(text) if key is None or key not in installed)
    return missing


class FilterModule:
    def filters(self):
        return {"jupyterhub_missing_pins": jupyterhub_missing_pins}
