"""The registry steps of the register stage around the run it logs. Before anything is stored: the
gate verdict against the champion, so the run and the version carry it from the start. Once the
run is complete: the model version (all tags and the description in one call, so no version is
ever half-tagged), the aliases, and reports/registered.json (+ registered.html)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion

from pipeline.config import Config, registered_name
from pipeline.config.split_level import image_level_warning
from pipeline.core import manifest
from pipeline.core.model_digest import model_digest
from pipeline.core.provenance import flat_metrics, key_tags, version_tags
from pipeline.evaluation import report_header
from pipeline.registry import client as registry
from pipeline.registry import gate, gate_floor, gate_record, identical, new_data_check, run_content
from pipeline.registry import index as registry_index
from pipeline.registry.champion import champion_metrics


@dataclass
class Verdict:
    """The gate decision against the current champion, and the tags that record it."""

    champion: ModelVersion | None
    champ: dict | None  # the champion's metrics as compared (re-scored when its test set differs)
    rescored: bool
    decision: gate.Decision
    tags: dict[str, str]  # version tags (git, params, data hashes, metric.*) + gate.* + train.resumed


def decide(
    client: MlflowClient,
    cfg: Config,
    models_dir: Path,
    splits_dir: Path,
    metrics: dict,
    hashes: dict,
    new_data_inputs: dict[str, Path] | None = None,
) -> Verdict:
    """Compare `metrics` with the champion's (re-scored on this test set when its own differs); a
    resumed model that is not reproducible is never promoted (gate.fresh_run_only); nor is one worse
    than the champion beyond gate.new_data_margin on the new test images (new_data_check, from the
    register inputs changes_gate, changes_dir and plots); a model below gate.min gets no alias (gate_floor)."""
    champion = registry.alias_holder(client, registered_name(cfg), "champion")
    champ, rescored = (None, False)
    if champion is not None:
        champ, rescored = champion_metrics(client, champion, hashes["test"], splits_dir, cfg)
    summary_path = models_dir / "train_summary.json"
    train_summary = manifest.read_json(summary_path) if summary_path.is_file() else {}
    flat = flat_metrics(metrics)
    decision = gate.fresh_run_only(gate.decide(flat, champ, cfg.gate), train_summary)
    label_map = manifest.read_json(models_dir / "label_map.json")
    version = str(champion.version) if champion is not None else None
    checked = new_data_check.check(new_data_inputs or {}, version, label_map, flat, cfg.gate)
    decision = new_data_check.apply(decision, checked)
    below = gate_floor.failures(flat, cfg.gate.min, len(label_map.get("classes") or ()))
    decision = gate_floor.apply(decision, below)
    tags = version_tags(cfg, metrics, hashes) | gate_record.gate_tags(
        decision, champion, champ, rescored, cfg
    )
    tags["train.resumed"] = gate.resume_tag(train_summary)
    tags.update(gate.budget_tags(train_summary))
    tags[identical.MODEL_TAG] = model_digest(models_dir / "model.keras")
    return Verdict(champion, champ, rescored, decision, tags)


def create_version(
    client: MlflowClient,
    cfg: Config,
    run: Run,
    split_paths: dict[str, Path],
    hashes: dict[str, str],
    verdict: Verdict,
    metrics: dict,
) -> str:
    """Index the run's split manifests (lineage.db), create the version with the key tags and the
    gate decision as description, then name the run `<model>-v<version>` and tag it registered
    (so a later register does not continue it)."""
    name, run_id, tags = registered_name(cfg), run.info.run_id, verdict.tags
    index = registry_index.index_path(registry.tracking_uri(cfg.registry))
    frames = {s: (hashes[s], manifest.read(p, ["path", "sha256"])) for s, p in split_paths.items()}
    registry_index.record_run(index, run_id, frames, {k: v for k, v in tags.items() if k.startswith("dvc.")})
    description = gate_record.description(cfg, verdict.decision, metrics, verdict.champion, tags)
    version_tags_kept = key_tags(tags, {cfg.gate.metric, *cfg.gate.guard_metrics})
    version = str(registry.create_version(client, name, run, version_tags_kept, description).version)
    registry_index.record_version(index, run_id, name, version)
    client.update_run(run_id, name=f"{name}-v{version}")
    client.set_tag(run_id, run_content.REGISTERED_TAG, version)
    return version


def move_aliases(client: MlflowClient, name: str, version: str, decision: gate.Decision) -> list[str]:
    """`challenger` unless the model is below the gate floor, `champion` when the gate promotes;
    returns the version's aliases."""
    if decision.below_floor:
        return sorted(client.get_model_version(name, version).aliases)
    registry.set_alias(client, name, "challenger", version, "registered")
    if decision.promote:
        registry.set_alias(client, name, "champion", version, decision.reason)
    return sorted(client.get_model_version(name, version).aliases)


def record(
    cfg: Config, run_id: str, version: str, aliases: list[str], verdict: Verdict, started: float
) -> dict:
    """reports/registered.json: the version, its aliases, and the gate part with the champion's
    metrics as compared (strict JSON: NaN/inf as null)."""
    seconds = round(time.perf_counter() - started, 2)
    return {
        "model_name": registered_name(cfg),
        "version": version,
        "run_id": run_id,
        "aliases": aliases,
        "registered_at": report_header.utc_now(),
        "image_level_warning": image_level_warning(cfg),
        "gate": gate_record.summary(verdict.decision, verdict.champion, cfg)
        | {
            "champion_metrics": gate_record.finite(verdict.champ) if verdict.champ is not None else None,
            "champion_rescored": verdict.rescored,
        },
        "seconds": seconds,
    }


def write_record(record: dict, tags: dict, outputs: dict[str, Path]) -> None:
    """Write registered.json, and registered.html when asked (report.html's header links to it)."""
    manifest.write_json(record, outputs["record"])
    if outputs.get("page"):
        page = report_header.registered_page(record, tags["git.commit"], tags["git.dirty"] == "true")
        Path(outputs["page"]).write_text(page, encoding="utf-8")
