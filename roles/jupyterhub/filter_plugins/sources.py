"""A fingerprint of the scoring package's sources, computed on the controller.

The wheel is built in a directory named after it, so a changed source gets a new build
and an unchanged one is never rebuilt. The fingerprint covers every file of the package
directory (compiled files and hidden files left out, links not followed) by its path
and content, and the project's `pyproject.toml`. It is computed in the controller's
own process, as a filter, instead of by a `find` with checksums delegated to localhost.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ansible.errors import AnsibleFilterError

SKIPPED_SUFFIXES = (".pyc", ".pyo")


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _counted(path: Path, root: Path) -> bool:
    """Whether a file under `root` is part of the sources (links are not followed)."""
    parts = path.relative_to(root).parts
    return (
        not any(part.startswith(".") for part in parts)
        and path.suffix not in SKIPPED_SUFFIXES
        and not path.is_symlink()
        and path.is_file()
    )


def jupyterhub_source_fingerprint(source: str, package: str = "scoring", length: int = 16) -> str:
    """The first `length` hex digits of the fingerprint of `source`/`package` and its pyproject."""
    base = Path(source)
    root, pyproject = base / package, base / "pyproject.toml"
    if not root.is_dir():
        raise AnsibleFilterError(f"jupyterhub_source_fingerprint: {root} is not a directory")
    if not pyproject.is_file():
        raise AnsibleFilterError(f"jupyterhub_source_fingerprint: {pyproject} is not a file")
    lines = [
        f"{path.relative_to(base)} {_sha1(path)}"
        for path in root.rglob("*")
        if _counted(path, root)
    ]
    text = "\n".join([*sorted(lines), _sha1(pyproject)])
    return hashlib.sha1(text.encode()).hexdigest()[:length]


class FilterModule:
    def filters(self):
        return {"jupyterhub_source_fingerprint": jupyterhub_source_fingerprint}
