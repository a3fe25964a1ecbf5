"""The `train` stage as its own flow, deployed as `train-gpu` on the `gpu` work pool.

`nightly_retrain(gpu_pool=True)` calls it with `run_deployment("train-stage/train-gpu")`: the
worker of the `gpu` pool runs `dvc repro train` in the same project directory (a shared volume
or the same machine), so models/ and dvc.lock are where the parent flow expects them. The parent
holds the workspace lock meanwhile; this flow does not take it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.tasks import TRAIN_TIMEOUT_S, train_model


@flow(name="train-stage", timeout_seconds=TRAIN_TIMEOUT_S + 600)
def train_stage(project_dir: str = ".", timeout_s: float = TRAIN_TIMEOUT_S) -> list[str]:
    """`dvc repro train` in project_dir; returns the stages dvc actually ran."""
    root = str(Path(project_dir).resolve())
    return train_model.with_options(timeout_seconds=timeout_s)(root)
