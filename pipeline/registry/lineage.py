"""Audit queries behind `medpipe lineage model|data` and `medpipe registry history`.

The tracking URI comes from MLFLOW_TRACKING_URI, else params.yaml's registry.tracking_uri
(when run from the project root), else the default sqlite:///mlflow.db.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from mlflow import MlflowClient

from pipeline import config
from pipeline.config import RegistryConfig
from pipeline.core.provenance import file_sha256, lineage_document
from pipeline.registry import client as registry
from pipeline.registry import index as registry_index

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}(\.dir)?$")


def _registry_cfg() -> RegistryConfig:
    return config.load("params.yaml").registry if Path("params.yaml").is_file() else RegistryConfig()


def _write(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")


def _emit(obj: object, as_json: bool, text: str) -> None:
    _write(json.dumps(obj, indent=2, sort_keys=True, default=str) if as_json else text)


def model_record(client: MlflowClient, ref: str) -> dict:
    """Everything recorded about one model version, grouped for display."""
    mv = registry.resolve(client, ref)
    tags = dict(mv.tags)
    params = dict(client.get_run(mv.run_id).data.params) if mv.run_id else {}
    doc = registry.run_lineage(mv.run_id) if mv.run_id else None
    dvc = doc["dvc"] if doc else lineage_document(tags)["dvc"]  # older versions: dvc.* tags
    return {
        "model_name": mv.name,
        "version": str(mv.version),
        "aliases": sorted(mv.aliases),
        "run_id": mv.run_id,
        "source": mv.source,
        "git": {"commit": tags.get("git.commit", ""), "dirty": tags.get("git.dirty", "")},
        "data": {k.removeprefix("data."): v for k, v in tags.items() if k.startswith("data.")},
        "dvc": dvc,
        "params_sha256": tags.get("params.sha256", ""),
        "params": params,
        "metrics": registry.version_metrics(client, mv),
        "gate": {k.removeprefix("gate."): v for k, v in tags.items() if k.startswith("gate.")},
        "prefect_flow_run_id": tags.get("prefect.flow_run_id", ""),
    }


def _format_model(rec: dict) -> str:
    lines = [
        f"{rec['model_name']} v{rec['version']}  aliases: {', '.join(rec['aliases']) or '-'}",
        f"  run:            {rec['run_id']}",
        f"  artifacts:      {rec['source']}",
        f"  git:            {rec['git']['commit']} (dirty: {rec['git']['dirty']})",
        f"  prefect run:    {rec['prefect_flow_run_id'] or '-'}",
        f"  params sha256:  {rec['params_sha256']}",
        "  data:",
        *[f"    {k:<28} {v}" for k, v in sorted(rec["data"].items())],
        "  dvc.lock:",
    ]
    for stage, entries in rec["dvc"].items():
        lines.append(f"    {stage}")
        lines += [f"      {k:<44} {v}" for k, v in sorted(entries.items())]
    lines.append("  metrics:")
    lines += [f"    {k:<20} {v:.4f}" for k, v in sorted(rec["metrics"].items())]
    lines.append("  gate:")
    lines += [f"    {k:<28} {v}" for k, v in sorted(rec["gate"].items())]
    lines.append("  params:")
    lines += [f"    {k} = {v}" for k, v in sorted(rec["params"].items())]
    return "\n".join(lines)


def print_model(ref: str, as_json: bool = False) -> None:
    rec = model_record(registry.connect(_registry_cfg()), ref)
    _emit(rec, as_json, _format_model(rec))


def data_usage(ref: str, index: Path) -> dict:
    """Model versions that used some data: an image sha256, an image path, or a DVC md5."""
    if _SHA256.match(ref):
        kind, hits = "sha256", registry_index.versions_with_image(index, "sha256", ref.lower())
    elif _MD5.match(ref):
        kind, hits = "dvc-md5", registry_index.versions_with_dvc_hash(index, ref.lower())
    else:
        kind, hits = "path", registry_index.versions_with_image(index, "path", Path(ref).as_posix())
        if not hits and Path(ref).is_file():  # a file anywhere: look it up by content
            kind, hits = "sha256", registry_index.versions_with_image(index, "sha256", file_sha256(Path(ref)))
    return {"query": ref, "kind": kind, "versions": hits}


def print_data(ref: str, as_json: bool = False) -> None:
    cfg = _registry_cfg()
    usage = data_usage(ref, registry_index.index_path(registry.tracking_uri(cfg)))
    if as_json:
        _emit(usage, True, "")
        return
    if not usage["versions"]:
        _write(f"no registered model version used {ref} ({usage['kind']})")
        return
    lines = [f"{ref} ({usage['kind']}) was used by:"]
    for hit in usage["versions"]:
        where = hit.get("split") or hit.get("key")
        extra = f"  {hit['path']}" if "path" in hit else ""
        lines.append(f"  {hit['model_name']} v{hit['version']:<4} {where}{extra}")
    _write("\n".join(lines))


def print_history(name: str, as_json: bool = False) -> None:
    entries = registry.history(registry.connect(_registry_cfg()), name)
    lines = [f"{'time (UTC)':<21} {'alias':<11} {'from':>5} {'to':>5}  reason"]
    for e in entries:
        lines.append(
            f"{e['time']:<21} {e['alias']:<11} {e['previous'] or '-':>5} {e['new']:>5}  {e['reason']}"
        )
    _emit(entries, as_json, "\n".join(lines) if entries else f"{name}: no alias changes recorded")
