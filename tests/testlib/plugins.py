"""Load a role's plugins and modules, and the project's scripts, as Python modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_file(path: Path, name: str) -> ModuleType:
    """The Python file at `path` (a script, an Ansible plugin), imported under `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered first, as an import would: dataclasses look their module up by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def filter_plugin(role: str, name: str) -> ModuleType:
    """roles/<role>/filter_plugins/<name>.py, imported under `name`."""
    return load_file(ROOT / "roles" / role / "filter_plugins" / f"{name}.py", name)


def role_module(role: str, name: str) -> ModuleType:
    """roles/<role>/library/<name>.py, the Ansible module, imported under `name`."""
    return load_file(ROOT / "roles" / role / "library" / f"{name}.py", name)
