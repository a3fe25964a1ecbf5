"""Run one pipeline stage as `medpipe stage` (and so `dvc repro`) does.

Load params.yaml through the typed loader, call the stage's pure `run(cfg, inputs, outputs)`,
then check that the params dvc.yaml lists for the stage did not change while it ran. A failing
stage removes the outputs it created; an interrupt keeps them (resume state).
"""

from __future__ import annotations

import importlib
import logging
import shutil
from pathlib import Path

import yaml

from pipeline import config
from pipeline.core import dvc_files
from pipeline.core.errors import MedpipeError

STAGES = (
    "ingest",
    "regroup",
    "validate",
    "split",
    "balance",
    "preprocess",
    "changes",
    "train",
    "evaluate",
    "register",
)
log = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


_MISSING = "<not set>"


def stage_param_keys(name: str, dvc_yaml: Path = Path("dvc.yaml")) -> list[str] | None:
    """The params.yaml keys dvc.yaml lists for a stage (what dvc.lock records), None if unknown."""
    entry = dvc_files.stages(dvc_yaml).get(name) if dvc_yaml.is_file() else None
    if not entry:
        return None
    return [p for p in entry.get("params", []) if isinstance(p, str)]


def params_snapshot(path: Path, keys: list[str] | None) -> dict:
    """{key: value} of params.yaml as written (the whole file when keys is None)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        return {"<params.yaml>": f"unreadable ({type(exc).__name__})"}
    if keys is None:
        return {"<params.yaml>": raw}
    out = {}
    for key in keys:
        node = raw
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        out[key] = node
    return out


def check_params_unchanged(name: str, path: Path, keys: list[str] | None, before: dict) -> None:
    """MedpipeError when the stage's params in params.yaml changed while it ran: its outputs were
    made with the old values, but dvc.lock would record the new ones."""
    after = params_snapshot(path, keys)
    changed = [k for k in before if before[k] != after.get(k)]
    if changed:
        shown = "; ".join(f"{k}: {before[k]!r} -> {after.get(k)!r}"[:160] for k in changed[:3])
        raise MedpipeError(
            f"{path} changed while stage {name} ran ({shown}); its outputs were made with the old values, "
            "so the stage fails and dvc.lock keeps its previous record: run dvc repro again"
        )


def run_stage(name: str, params: Path, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Load params, run one stage, check params.yaml did not change under it; on failure remove the
    outputs this run created."""
    if name not in STAGES:
        raise MedpipeError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)}")
    keys = stage_param_keys(name)
    before = params_snapshot(params, keys)
    cfg = config.load(params)
    if keys is not None:
        log.info("stage %s runs with %s", name, {k: v for k, v in before.items()})
    module = importlib.import_module(f"pipeline.stages.{name}")
    existed = {key for key, path in outputs.items() if path.exists()}
    try:
        result = module.run(cfg, inputs, outputs) or {}
        check_params_unchanged(name, params, keys, before)
        return result
    except Exception:
        # A failure leaves nothing half-written. An interrupt (Ctrl-C, SIGTERM via KeyboardInterrupt)
        # is not a failure: dvc.lock is not updated, DVC clears non-persist outputs before the next
        # run, and persist outputs (train checkpoints) are what lets that run resume.
        for key, path in outputs.items():
            if key not in existed:
                _remove(path)
        raise
