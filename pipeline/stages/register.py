"""register stage: log the trained model to MLflow, create a tagged version, run the champion gate.

Order matters for "no half-registered model": gate decision and tags are computed first, then
the run and all its artifacts are stored, and only then is the model version created (with all
tags in one call) and the aliases moved: `challenger` always, `champion` when the gate promotes.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from pipeline import manifest
from pipeline.config import Config
from pipeline.errors import DataError
from pipeline.evaluation import report_header
from pipeline.manifest import SPLITS
from pipeline.registry import client as registry
from pipeline.registry import gate
from pipeline.registry import index as registry_index
from pipeline.registry.champion import champion_metrics
from pipeline.registry.tags import file_sha256, flat_metrics, flat_params, version_tags

log = logging.getLogger(__name__)
MODEL_FILES = ("model.keras", "label_map.json")
OPTIONAL_MODEL_FILES = ("train_summary.json",)


def _check_inputs(models_dir: Path, splits_dir: Path) -> dict[str, Path]:
    for name in MODEL_FILES:
        if not (models_dir / name).is_file():
            raise DataError(f"{models_dir / name} not found; run the train stage first (dvc repro train)")
    paths = {split: splits_dir / f"{split}.csv" for split in SPLITS}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"split manifest {path} not found; run the split stage first (dvc repro split)")
    return paths


def _gate_tags(decision: gate.Decision, champion, champ: dict | None, rescored: bool, cfg: Config) -> dict:
    tags = {
        "gate.decision": "promote" if decision.promote else "reject",
        "gate.reason": decision.reason,
        "gate.metric": cfg.gate.metric,
        "gate.champion_version": str(champion.version) if champion else "",
        "gate.champion_rescored": str(rescored).lower(),
    }
    for name, delta in decision.deltas.items():
        tags[f"gate.delta.{name}"] = repr(delta)
        if champ is not None and name in champ:
            tags[f"gate.champion.{name}"] = repr(champ[name])
    return tags


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    """Strict-JSON numbers: NaN/inf become null."""
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    started = time.perf_counter()
    models_dir, splits_dir = inputs["model"], inputs["splits"]
    split_paths = _check_inputs(models_dir, splits_dir)
    metrics = manifest.read_json(inputs["metrics"])
    diagnostics = manifest.read_json(inputs["diagnostics"]) if inputs.get("diagnostics") else {}
    hashes = {split: file_sha256(path) for split, path in split_paths.items()}
    if diagnostics.get("test_manifest_sha256") not in (None, hashes["test"]):
        log.warning(
            "%s names test manifest %s; %s hashes to %s",
            inputs["diagnostics"],
            diagnostics["test_manifest_sha256"],
            split_paths["test"],
            hashes["test"],
        )
    name = cfg.registry.model_name
    client = registry.connect(cfg.registry)
    exp_id = registry.experiment_id(client, cfg.registry)

    champion = registry.alias_holder(client, name, "champion")
    champ, rescored = (None, False)
    if champion is not None:
        champ, rescored = champion_metrics(client, champion, hashes["test"], splits_dir, cfg)
    summary_path = models_dir / "train_summary.json"
    train_summary = manifest.read_json(summary_path) if summary_path.is_file() else {}
    decision = gate.fresh_run_only(gate.decide(flat_metrics(metrics), champ, cfg.gate), train_summary)
    tags = version_tags(cfg, metrics, hashes) | _gate_tags(decision, champion, champ, rescored, cfg)
    tags["train.resumed"] = gate.resume_tag(train_summary)

    model_files = [models_dir / n for n in MODEL_FILES + OPTIONAL_MODEL_FILES if (models_dir / n).is_file()]
    files = [(registry.MODEL_ARTIFACT_DIR, p) for p in model_files] + [("reports", inputs["metrics"])]
    files += [("reports", inputs["diagnostics"])] if inputs.get("diagnostics") else []
    files += [("data/splits", p) for p in split_paths.values()]
    run = registry.log_run(
        client, exp_id, flat_params(cfg), flat_metrics(metrics), files, {"metrics_full.json": metrics}
    )
    run_id = run.info.run_id

    index = registry_index.index_path(registry.tracking_uri(cfg.registry))
    frames = {s: (hashes[s], manifest.read(p, ["path", "sha256"])) for s, p in split_paths.items()}
    registry_index.record_run(index, run_id, frames, {k: v for k, v in tags.items() if k.startswith("dvc.")})
    version = str(registry.create_version(client, name, run, tags).version)
    registry_index.record_version(index, run_id, name, version)

    registry.set_alias(client, name, "challenger", version, "registered")
    if decision.promote:
        registry.set_alias(client, name, "champion", version, decision.reason)
    aliases = sorted(client.get_model_version(name, version).aliases)
    seconds = round(time.perf_counter() - started, 2)
    record = {
        "model_name": name,
        "version": version,
        "run_id": run_id,
        "aliases": aliases,
        "registered_at": report_header.utc_now(),
        "gate": {
            "promote": decision.promote,
            "reason": decision.reason,
            "metric": cfg.gate.metric,
            "deltas": _finite(decision.deltas),
            "champion_version": str(champion.version) if champion else None,
            "champion_metrics": _finite(champ) if champ is not None else None,
            "champion_rescored": rescored,
        },
        "seconds": seconds,
    }
    manifest.write_json(record, outputs["record"])
    if outputs.get("page"):  # reports/registered.html: report.html's header links here
        page = report_header.registered_page(record, tags["git.commit"], tags["git.dirty"] == "true")
        Path(outputs["page"]).write_text(page, encoding="utf-8")
    log.info(
        "registered %s v%s (%s) in %.1fs: %s",
        name,
        version,
        ", ".join(aliases),
        seconds,
        decision.reason,
    )
    return record
