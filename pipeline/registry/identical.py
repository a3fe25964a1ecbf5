"""An identical retrain registers nothing: same model file, data, params and code as a version.

Identity is the version tags model.sha256 (core.model_digest: architecture and weights of
model.keras, not its save date), data.* (the split manifests'
sha256 and the raw data's md5), params.sha256 and git.commit + git.dirty. When all of them equal
an existing version's, the register stage points reports/registered.json at that version instead
of adding a copy (v2, v3 identical to v1 would only blur the history and the champion's lineage).
"""

from __future__ import annotations

import logging
import time

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from pipeline.evaluation import report_header

log = logging.getLogger(__name__)
MODEL_TAG = "model.sha256"
_EXACT = (MODEL_TAG, "params.sha256", "git.commit", "git.dirty")


def identity(tags: dict[str, str]) -> dict[str, str]:
    """The tags that say which model, data, params and code a version is."""
    return {k: v for k, v in tags.items() if k in _EXACT or k.startswith("data.")}


def find(client: MlflowClient, name: str, tags: dict[str, str]) -> ModelVersion | None:
    """The oldest version of `name` whose identity equals `tags`' (None without a model hash)."""
    mine = identity(tags)
    if MODEL_TAG not in mine:
        return None
    same = [mv for mv in client.search_model_versions(f"name = '{name}'") if identity(mv.tags) == mine]
    return min(same, key=lambda mv: int(mv.version)) if same else None


def record(client: MlflowClient, name: str, twin: ModelVersion, started: float) -> dict:
    """registered.json naming the equal version (written with registration.write_record and the
    twin's tags); nothing is registered."""
    version = str(twin.version)
    aliases = sorted(client.get_model_version(name, version).aliases)  # search leaves aliases out
    reason = f"identical to v{version} (same model file, data, params and code): nothing new registered"
    log.info("%s: this retrain is identical to v%s; no new version registered", name, version)
    return {
        "model_name": name,
        "version": version,
        "identical_to": version,
        "run_id": twin.run_id,
        "aliases": aliases,
        "registered_at": report_header.utc_now(),
        "gate": {"promote": False, "reason": reason, "champion_version": None},
        "seconds": round(time.perf_counter() - started, 2),
    }
