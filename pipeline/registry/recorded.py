"""The dvc.lock and params.yaml a version was built with, as its register run stored them.

The register stage logs both under the run's `reproduce/` artifacts (pipeline.registry.run_content).
`medpipe reproduce` places them in the worktree of the version's git revision when that revision
cannot stand for the run on its own: its dvc.lock records no ingest outputs (a first run, or any
run whose dvc.lock was never committed), or the version was registered from a dirty tree (params
not committed). The data then comes from the DVC cache by the stored hashes, not from data.source.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from mlflow import MlflowClient

from pipeline.core import dvc_files
from pipeline.registry.run_content import REBUILD_DIR, REBUILD_FILES

log = logging.getLogger(__name__)


def download(client: MlflowClient, run_id: str | None, dest: Path) -> dict[str, Path]:
    """{name: local path} of the run's stored dvc.lock / params.yaml; {} for runs that stored none."""
    if not run_id:
        return {}
    try:
        local = Path(client.download_artifacts(run_id, REBUILD_DIR, str(dest)))
    except Exception as exc:  # noqa: BLE001 - missing artifact: MlflowException or OSError by store
        log.debug("run %s stored no %s/ (%s)", run_id, REBUILD_DIR, exc)
        return {}
    return {name: local / name for name in REBUILD_FILES if (local / name).is_file()}


def locks_ingest(lock_path: Path) -> bool:
    """Whether a dvc.lock records the ingest stage (so `dvc checkout ingest` can restore data/raw)."""
    return lock_path.is_file() and "ingest" in dvc_files.stages(lock_path)


def place(tree: Path, stored: dict[str, Path], dirty: bool) -> bool:
    """Copy the stored files into tree when its own revision cannot reproduce the run; True if placed."""
    if "dvc.lock" not in stored or not locks_ingest(stored["dvc.lock"]):
        return False
    if locks_ingest(tree / "dvc.lock") and not dirty:
        return False
    why = "registered from a dirty tree" if dirty else "its git revision holds no dvc.lock with ingest"
    log.info("%s: using the %s stored with the version", why, " and ".join(sorted(stored)))
    for name, path in stored.items():
        shutil.copyfile(path, tree / name)
    return True
