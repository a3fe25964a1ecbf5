"""Import a repository script that is not a package module (benchmarks/*.py, flows entry points) by
its path, the way `python path/to/script.py` or Prefect's `path:function` entry point would load it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(relative_path: str, name: str | None = None) -> ModuleType:
    """The module at ROOT / relative_path, executed fresh under `name` (default: the file's stem)."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
