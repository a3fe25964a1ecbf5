"""What a registered model version is tagged with: code, data, params and run provenance.

Tag schema (all values are strings; MLflow tag keys allow letters, digits, `_ - . / space`):
    git.commit                      HEAD of the project repo ("unknown" outside git)
    git.dirty                       "true" when tracked code/params differ from HEAD (DVC's own files
                                    and every output dvc.yaml declares do not count)
    params.sha256                   sha256 of the canonical JSON of the full typed config
    dvc.<stage>.dep.<path>          md5 of every dep of every stage in dvc.lock   } not version tags: in
    dvc.<stage>.out.<path>          md5 of every out (directories end in ".dir")  } the run's lineage.json
    data.raw_md5                    md5 of the ingest stage's data/raw output
    data.test_manifest_sha256       sha256 of the bytes of the test split manifest
    data.<split>_manifest_sha256    same for train / val
    metric.<name>                   the gate metric and guard metrics (every headline metric is in
                                    the run and in lineage.json)
    model.sha256                    core.model_digest of model.keras: architecture + weights, not its
                                    save date (an identical retrain registers nothing)
    prefect.flow_run_id             Prefect flow run that triggered the registration ("" if none)
Values never contain credentials: URL user-info is redacted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.core import dvc_files
from pipeline.core.redact import redact

log = logging.getLogger(__name__)
_TAG_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-./ ]")
RAW_DATA_PATH = "data/raw"


def tag_key(key: str) -> str:
    """A key MLflow accepts (other characters become '_')."""
    return _TAG_KEY_BAD.sub("_", key)[:250]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Files `dvc repro` itself rewrites (and autostages): they record outputs, not code or params,
# so they do not make a revision dirty.
DVC_BOOKKEEPING = (":(exclude,top)dvc.lock", ":(exclude,top,glob)**/.gitignore")


def dvc_outputs(project: Path) -> list[str]:
    """Every path dvc.yaml in project declares as outs / metrics / plots (cache: false ones are in git)."""
    dvc_yaml = project / "dvc.yaml"
    if not dvc_yaml.is_file():
        return []
    paths = []
    for body in dvc_files.stages(dvc_yaml).values():
        for section in ("outs", "metrics", "plots"):
            paths += [dvc_files.entry_path(e).as_posix() for e in body.get(section) or []]
    return paths


def git_revision(cwd: Path | None = None) -> tuple[str, bool]:
    """(HEAD commit, dirty) of the repo holding cwd; ("unknown", True) outside git.

    Dirty means tracked code or params differ from HEAD. DVC's bookkeeping files and the outputs
    dvc.yaml declares (metrics.json, report.html, ... that `dvc repro` just rewrote) do not count.
    """
    outputs = [f":(exclude,literal){p}" for p in dvc_outputs(Path(cwd or "."))]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *DVC_BOOKKEEPING, *outputs],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return head, bool(status)


def dvc_lock_tags(lock_path: Path = Path("dvc.lock")) -> dict[str, str]:
    """Flatten dvc.lock into dvc.<stage>.dep|out.<path> = md5, plus data.raw_md5."""
    if not lock_path.is_file():
        log.warning("%s not found: the version gets no dvc.* data hashes (run under `dvc repro`)", lock_path)
        return {}
    tags: dict[str, str] = {}
    for stage, body in dvc_files.stages(lock_path).items():
        for kind, section in (("dep", "deps"), ("out", "outs")):
            for entry in body.get(section) or []:
                digest = entry.get("md5") or entry.get("etag") or entry.get("checksum")
                if digest:
                    tags[tag_key(f"dvc.{stage}.{kind}.{entry['path']}")] = str(digest)
                if kind == "out" and entry.get("path") == RAW_DATA_PATH and digest:
                    tags["data.raw_md5"] = str(digest)
    return tags


def params_hash(cfg: Any) -> str:
    """sha256 of the canonical JSON of the typed config (pipeline.config.Config, a dataclass)."""
    canonical = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def flat_params(cfg: Any) -> dict[str, str]:
    """{"train.epochs": "8", ...} of the typed config, for mlflow.log_params (URLs redacted)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            out[prefix] = redact(json.dumps(value) if isinstance(value, list | tuple) else str(value))

    walk("", dataclasses.asdict(cfg))
    return out


def flat_metrics(metrics: dict) -> dict[str, float]:
    """Top-level finite numbers only (nested ci/per_class blocks are logged as a file)."""
    return {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def prefect_flow_run_id() -> str:
    """The Prefect flow run id, in-process (prefect.runtime) or inherited via PREFECT__FLOW_RUN_ID."""
    if "prefect" in sys.modules:  # only ask Prefect when it is already loaded: importing it is slow
        try:
            from prefect.runtime import flow_run

            if flow_run.id:
                return str(flow_run.id)
        except Exception as exc:  # noqa: BLE001 - provenance is best effort
            log.debug("prefect.runtime unavailable: %s", exc)
    return os.environ.get("PREFECT__FLOW_RUN_ID", "")


def version_tags(
    cfg: Any, metrics: dict, manifest_hashes: dict[str, str], lock_path: Path = Path("dvc.lock")
) -> dict[str, str]:
    """All provenance tags (gate.* tags are added by the caller), dvc.* included: the lineage document
    and the lineage index take them all; a version gets key_tags() of them."""
    commit, dirty = git_revision()
    tags = {
        "git.commit": commit,
        "git.dirty": str(dirty).lower(),
        "params.sha256": params_hash(cfg),
        "prefect.flow_run_id": prefect_flow_run_id(),
    }
    tags.update(dvc_lock_tags(lock_path))
    tags.update({f"data.{split}_manifest_sha256": digest for split, digest in manifest_hashes.items()})
    tags.update({tag_key(f"metric.{k}"): repr(v) for k, v in flat_metrics(metrics).items()})
    return {k: redact(v) for k, v in tags.items()}


def key_tags(tags: dict[str, str], metrics: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """What a model version is tagged with: git, params hash, data hashes, gate, prefect run and
    metric.<name> for the named metrics (the gate's). The per-file dvc.<stage>.* hashes live in the
    run's lineage.json artifact (and the lineage index); every metric is in the run."""
    keep_metric = {tag_key(f"metric.{m}") for m in metrics}
    return {
        k: v
        for k, v in tags.items()
        if not k.startswith("dvc.") and (not k.startswith("metric.") or k in keep_metric)
    }


def lineage_document(tags: dict[str, str]) -> dict:
    """lineage.json: git, params hash, data hashes, every dvc.lock hash per stage, metrics, train.* tags."""
    dvc: dict[str, dict[str, str]] = {}
    for key, value in tags.items():
        if key.startswith("dvc."):
            stage, _, rest = key.removeprefix("dvc.").partition(".")
            dvc.setdefault(stage, {})[rest] = value
    return {
        "git": {"commit": tags.get("git.commit", ""), "dirty": tags.get("git.dirty", "")},
        "params_sha256": tags.get("params.sha256", ""),
        "prefect_flow_run_id": tags.get("prefect.flow_run_id", ""),
        "data": {k.removeprefix("data."): v for k, v in tags.items() if k.startswith("data.")},
        "dvc": dvc,
        "metrics": {k.removeprefix("metric."): v for k, v in tags.items() if k.startswith("metric.")},
        "train": {k.removeprefix("train."): v for k, v in tags.items() if k.startswith("train.")},
    }
