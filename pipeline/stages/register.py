"""register stage: log the trained model to MLflow, create a tagged version, run the champion gate.

The run is the training's (pipeline.tracking.train_run: created by train, continued here) or, when train could
not log one, a new run built from the train outputs. It gets params, headline metrics, per-epoch
`train/*` metrics (step = epoch), the split manifests as mlflow.data inputs, the pyfunc model
(`model/`, pipeline.serving.pyfunc_model), report.html, reports/eval, the validation summary,
history.csv and lineage.json (every dvc.lock hash); it is renamed `<model>-v<version>`. The version
gets a few key tags (git, params hash, data hashes, metric.*, gate.*) and the gate decision as its
description. Under `dvc exp run` (DVC_EXP_NAME) the run is logged but no version or alias changes.

Order matters for "no half-registered model": gate decision and tags are computed first, then
the run and all its artifacts are stored, and only then is the model version created (with all
tags in one call) and the aliases moved: `challenger` always, `champion` when the gate promotes.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import DataError
from pipeline.core.manifest import SPLITS
from pipeline.core.provenance import (
    file_sha256,
    flat_metrics,
    flat_params,
    key_tags,
    lineage_document,
    version_tags,
)
from pipeline.evaluation import report_header
from pipeline.registry import client as registry
from pipeline.registry import gate, gate_record, run_content
from pipeline.registry import index as registry_index
from pipeline.registry.champion import champion_metrics
from pipeline.serving import pyfunc_model as mlflow_model

log = logging.getLogger(__name__)
MODEL_FILES = ("model.keras", "label_map.json")


def _check_inputs(models_dir: Path, splits_dir: Path) -> dict[str, Path]:
    for name in MODEL_FILES:
        if not (models_dir / name).is_file():
            raise DataError(f"{models_dir / name} not found; run the train stage first (dvc repro train)")
    paths = {split: splits_dir / f"{split}.csv" for split in SPLITS}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"split manifest {path} not found; run the split stage first (dvc repro split)")
    return paths


def _example_paths(test_csv: Path) -> list[str]:
    """An input example for the pyfunc signature: the first test image that exists here."""
    paths = manifest.read(test_csv, ["path"])["path"].astype(str).head(20)
    return [p for p in paths if Path(p).is_file()][:1]


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
    tags = version_tags(cfg, metrics, hashes) | gate_record.gate_tags(
        decision, champion, champ, rescored, cfg
    )
    tags["train.resumed"] = gate.resume_tag(train_summary)

    diagnostics_file = [("reports", inputs["diagnostics"])] if inputs.get("diagnostics") else []
    params = flat_params(cfg)
    train_run = run_content.training_run(client, models_dir, registry.tracking_uri(cfg.registry), params)
    experiment = registry.dvc_experiment()
    report_files, report_dirs = run_content.report_artifacts(inputs)
    run_tags = {k: v for k, v in key_tags(tags).items() if not k.startswith(("metric.", "gate."))}
    if experiment is not None:
        run_tags |= {
            "dvc.exp_name": experiment,
            "dvc.exp_baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
        }
    content = registry.RunContent(
        params,
        flat_metrics(metrics),
        files=[("reports", inputs["metrics"]), *diagnostics_file, *report_files]
        + [("data/splits", p) for p in split_paths.values()],
        json_docs={registry.LINEAGE_ARTIFACT: lineage_document(tags)},
        step_metrics=run_content.epoch_metrics(client, train_run, inputs.get("history")),
        datasets=run_content.dataset_inputs(split_paths, hashes),
        tags=run_tags,
    )
    run_name = f"{name}-exp-{experiment}" if experiment else f"{name}-register"
    with tempfile.TemporaryDirectory(prefix="medpipe-register-") as tmp:
        pyfunc_dir = Path(tmp) / registry.MODEL_ARTIFACT_DIR
        mlflow_model.save(models_dir, diagnostics | metrics, pyfunc_dir, _example_paths(split_paths["test"]))
        content.dirs = [(registry.MODEL_ARTIFACT_DIR, pyfunc_dir), *report_dirs]
        run = registry.log_run(client, exp_id, content, run_id=train_run, name=run_name)
    run_id = run.info.run_id
    if experiment is not None:
        client.update_run(run_id, name=run_name)
        return gate_record.experiment_record(
            cfg, run_id, experiment, decision, champion, outputs, started, tags
        )

    index = registry_index.index_path(registry.tracking_uri(cfg.registry))
    frames = {s: (hashes[s], manifest.read(p, ["path", "sha256"])) for s, p in split_paths.items()}
    registry_index.record_run(index, run_id, frames, {k: v for k, v in tags.items() if k.startswith("dvc.")})
    description = gate_record.description(cfg, decision, metrics, champion, tags)
    version_tags_kept = key_tags(tags, {cfg.gate.metric, *cfg.gate.guard_metrics})
    version = str(registry.create_version(client, name, run, version_tags_kept, description).version)
    registry_index.record_version(index, run_id, name, version)
    client.update_run(run_id, name=f"{name}-v{version}")
    client.set_tag(run_id, run_content.REGISTERED_TAG, version)

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
        "gate": gate_record.summary(decision, champion, cfg)
        | {
            "champion_metrics": gate_record.finite(champ) if champ is not None else None,
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
