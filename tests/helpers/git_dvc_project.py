"""A temporary copy of the project on a tiny config, as a git + DVC repo (for slow end-to-end tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "data": {"sample": {"patients": 12, "patches_per_patient": 40, "seed": 3}},
    "split": {"val_fraction": 0.2, "test_fraction": 0.25},
    "train": {"epochs": 2, "batch_size": 32},
    "evaluate": {"bootstrap": 20},
}
# 2 epochs on 12 patients may sit below the default gate floor; these tests follow the registry path
# of a promoted model (the floor itself: tests/integration/test_gate_floor.py)
NO_GATE_FLOOR: dict = {}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "ci",
    "GIT_COMMITTER_NAME": "ci",
    "GIT_AUTHOR_EMAIL": "ci@example.invalid",
    "GIT_COMMITTER_EMAIL": "ci@example.invalid",
}


def merge(base: dict, over: dict) -> dict:
    """Deep-merge `over` into `base` (in place) and return it."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def make_git_dvc_project(work: Path, model_name: str, env: dict, dvc_remote: Path | None = None) -> Path:
    """Copy code, dvc.yaml and a tiny params.yaml into `work`; git init, dvc init, commit."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("pipeline", "flows", "backbones", "dvc.yaml", "pyproject.toml", ".dvcignore"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, work / name)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    params["gate"]["min"] = NO_GATE_FLOOR  # a mapping replaced whole, not merged key by key
    params["registry"]["model_name"] = model_name
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/checkpoints/\n/gx/\n/lineage.db\n")
    commands = [["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]]
    if dvc_remote is not None:
        commands.append([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(dvc_remote)])
    commands += [["git", "add", "-A"], ["git", "commit", "-qm", "tiny project"]]
    for args in commands:
        subprocess.run(args, cwd=work, env={**env, **GIT_ENV}, check=True, capture_output=True)
    return work
