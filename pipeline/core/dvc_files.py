"""Reading DVC's own files: the `stages` of dvc.yaml / dvc.lock, and the path of an outs entry."""

from __future__ import annotations

from pathlib import Path

import yaml


def stages(path: Path) -> dict[str, dict]:
    """The `stages` mapping of a dvc.yaml or dvc.lock, in file order ({} when it declares none)."""
    return (yaml.safe_load(Path(path).read_text()) or {}).get("stages") or {}


def entry_path(entry: str | dict) -> Path:
    """The path of an outs / metrics / plots entry, written either as `path` or as `{path: options}`."""
    return Path(next(iter(entry)) if isinstance(entry, dict) else entry)
