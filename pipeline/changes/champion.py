"""The model the night is compared with: the champion (or `--since NAME@ALIAS|VERSION`), its
registered threshold, test-time augmentation and label map, and the dvc.lock hashes of its data.

No champion is no error (the first night: status "baseline"); a champion whose record or data
cannot be found raises lineage.Unavailable with one line. The model itself is loaded only when
there are new images to embed or score (`load_model`), so an empty night stays cheap.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.changes.lineage import Unavailable, hashes_from_lineage, hashes_from_lock, lock_at_revision
from pipeline.config import Config, registered_name
from pipeline.core import dvc_files
from pipeline.core.errors import MedpipeError
from pipeline.registry import client as registry
from pipeline.registry import recorded
from pipeline.serving import pyfunc_model

log = logging.getLogger(__name__)
CHAMPION_ALIAS = "champion"


@dataclass
class Champion:
    """What the comparison needs of one registered version."""

    name: str
    version: str
    run_id: str
    source: str
    threshold: float | None
    tta: bool
    label_map: dict
    hashes: dict[str, str] = field(default_factory=dict)  # {"validated", "splits"} md5s

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.label_map.get("classes", [])]

    def record(self) -> dict:
        """The `champion` block of changes.json."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "threshold": self.threshold,
            "classes": self.classes,
            "positive": self.label_map.get("positive"),
        }


def _label_map(source: str) -> dict:
    """label_map.json of the version's model artifact (pyfunc layout: artifacts/label_map.json)."""
    with tempfile.TemporaryDirectory(prefix="medpipe-changes-") as tmp:
        for rel in ("artifacts/label_map.json", "label_map.json"):
            try:
                path = mlflow.artifacts.download_artifacts(artifact_uri=f"{source}/{rel}", dst_path=tmp)
                return json.loads(Path(path).read_text())
            except Exception as exc:  # noqa: BLE001 - a missing artifact raises by store type
                log.debug("no %s under %s (%s)", rel, source, exc)
    raise Unavailable(f"the champion's model artifact {source} holds no label_map.json")


def _hashes(client: MlflowClient, run_id: str, commit: str, root: Path) -> dict[str, str]:
    """The data hashes from the run's stored dvc.lock, its lineage.json, else the git revision's dvc.lock."""
    with tempfile.TemporaryDirectory(prefix="medpipe-changes-") as tmp:
        stored = recorded.download(client, run_id, Path(tmp))
        if "dvc.lock" in stored:
            found = hashes_from_lock({"stages": dvc_files.stages(stored["dvc.lock"])})
            if found:
                return found
    doc = registry.run_lineage(run_id) if run_id else None
    found = hashes_from_lineage(doc) if doc else {}
    return found or hashes_from_lock(lock_at_revision(root, commit))


def find(cfg: Config, since: str | None = None, root: Path = Path(".")) -> Champion | None:
    """The version to compare with; None when the model has no champion (and no --since)."""
    client = registry.connect(cfg.registry)
    name = registered_name(cfg)
    if since is None:
        try:
            client.get_registered_model(name)
        except MlflowException:
            return None
        mv = registry.alias_holder(client, name, CHAMPION_ALIAS)
        if mv is None:
            return None
    else:
        try:
            mv = registry.resolve(client, since if "@" in since else f"{name}@{since}")
        except MedpipeError as exc:
            raise Unavailable(str(exc)) from exc
    run_id = mv.run_id or ""
    metrics = registry.version_metrics(client, mv)
    params = dict(client.get_run(run_id).data.params) if run_id else {}
    label_map = _label_map(mv.source)
    champ = Champion(
        name=mv.name,
        version=str(mv.version),
        run_id=run_id,
        source=mv.source,
        threshold=metrics.get("threshold") if label_map.get("positive") is not None else None,
        tta=params.get("evaluate.tta", "False").lower() == "true",
        label_map=label_map,
    )
    commit = mv.tags.get("git.commit", "")
    champ.hashes = _hashes(client, run_id, commit, root)
    if "validated" not in champ.hashes:
        raise Unavailable(
            f"the lineage of {mv.name} v{mv.version} is gone: its run holds no dvc.lock or lineage.json "
            f"with the data hashes, and its git revision {commit[:12] or '(none)'} no dvc.lock with them"
        )
    return champ


def load_model(champ: Champion):
    """The champion's Keras model (downloaded into a temporary dir, loaded in safe mode)."""
    from pipeline.evaluation.predictions import load_model as load_keras

    with tempfile.TemporaryDirectory(prefix="medpipe-champion-") as tmp:
        local = pyfunc_model.keras_files(
            Path(mlflow.artifacts.download_artifacts(artifact_uri=champ.source, dst_path=tmp))
        )
        return load_keras(local / "model.keras")
