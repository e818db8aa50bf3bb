"""Load a role's plugins and modules as Python modules, the way their tests call them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filter_plugin(role: str, name: str) -> ModuleType:
    """roles/<role>/filter_plugins/<name>.py, imported under `name`."""
    return _load(ROOT / "roles" / role / "filter_plugins" / f"{name}.py", name)


def role_module(role: str, name: str) -> ModuleType:
    """roles/<role>/library/<name>.py, the Ansible module, imported under `name`."""
    return _load(ROOT / "roles" / role / "library" / f"{name}.py", name)
