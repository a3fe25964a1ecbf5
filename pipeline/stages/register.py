"""register stage: log the trained model to MLflow, create a tagged version, run the champion gate.

The run is the training's (pipeline.tracking.train_run: created by train, continued here) or, when
train could not log one, a new run built from the train outputs. It gets params, headline metrics,
per-epoch `train/*` metrics (step = epoch), the split manifests as mlflow.data inputs, the pyfunc
model (`model/`, pipeline.serving.pyfunc_model), report.html, reports/eval, the validation summary,
history.csv, changes.json + changes.html (when the `changes` stage ran) and lineage.json (every
dvc.lock hash); it is renamed `<model>-v<version>`. The version gets a few key tags (git, params
hash, data hashes, metric.*, gate.*) and the gate decision as its description. The gate also
compares champion and challenger on the test images new since the champion (optional inputs
changes_gate, changes_dir: pipeline.registry.new_data_check; changes: logged only). Under `dvc exp run` (DVC_EXP_NAME) the run
is logged but no version or alias changes.

Order matters for "no half-registered model": gate decision and tags are computed first, then
the run and all its artifacts are stored, and only then is the model version created (with all
tags in one call) and the aliases moved: `challenger` always, `champion` when the gate promotes.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Config, registered_name
from pipeline.core import manifest
from pipeline.core.errors import DataError
from pipeline.core.manifest import SPLITS
from pipeline.core.provenance import (
    file_sha256,
    flat_metrics,
    flat_params,
    key_tags,
    lineage_document,
)
from pipeline.registry import client as registry
from pipeline.registry import gate_record, identical, registration, run_content
from pipeline.serving import pyfunc_model as mlflow_model

log = logging.getLogger(__name__)
MODEL_FILES = ("model.keras", "label_map.json")


def _check_inputs(models_dir: Path, splits_dir: Path) -> dict[str, Path]:
    """The split manifests' paths; DataError naming the stage to run when a model file or one is missing."""
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


@dataclass
class _Inputs:
    """What the stage reads before it touches the registry."""

    split_paths: dict[str, Path]
    metrics: dict  # the evaluate stage's metrics.json
    diagnostics: dict  # its diagnostics.json, {} when not given
    hashes: dict[str, str]  # sha256 of each split manifest: tags, lineage, dataset digests


def _read_inputs(inputs: dict[str, Path]) -> _Inputs:
    """Check the model and split files, read the metrics, hash the split manifests; warn when the
    diagnostics were computed on another test manifest than the one registered with the model."""
    split_paths = _check_inputs(inputs["model"], inputs["splits"])
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
    return _Inputs(split_paths, metrics, diagnostics, hashes)


def _run_content(client, cfg: Config, inputs: dict[str, Path], read: _Inputs, tags: dict) -> tuple:
    """(content, training run id or None, report dirs, DVC experiment or None): what the run gets.
    The run keeps the key tags but not metric.*/gate.*, which belong to the version."""
    diagnostics_file = [("reports", inputs["diagnostics"])] if inputs.get("diagnostics") else []
    params = flat_params(cfg)
    train_run = run_content.training_run(client, inputs["model"], registry.tracking_uri(cfg.registry), params)
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
        flat_metrics(read.metrics),
        files=[("reports", inputs["metrics"]), *diagnostics_file, *report_files]
        + [("data/splits", p) for p in read.split_paths.values()],
        json_docs={registry.LINEAGE_ARTIFACT: lineage_document(tags)},
        step_metrics=run_content.epoch_metrics(client, train_run, inputs.get("history")),
        datasets=run_content.dataset_inputs(read.split_paths, read.hashes),
        tags=run_tags,
    )
    return content, train_run, report_dirs, experiment


def _log_run(
    client, exp_id: str, content, train_run, report_dirs: list, models_dir: Path, read: _Inputs, run_name: str
):
    """Store the run with every artifact, the pyfunc model (built in a temporary dir) included."""
    with tempfile.TemporaryDirectory(prefix="medpipe-register-") as tmp:
        pyfunc_dir = Path(tmp) / registry.MODEL_ARTIFACT_DIR
        mlflow_model.save(
            models_dir, read.diagnostics | read.metrics, pyfunc_dir, _example_paths(read.split_paths["test"])
        )
        content.dirs = [(registry.MODEL_ARTIFACT_DIR, pyfunc_dir), *report_dirs]
        return registry.log_run(client, exp_id, content, run_id=train_run, name=run_name)


def run(cfg: Config, inputs: dict[str, Path], outputs: dict[str, Path]) -> dict:
    """Register the trained model (see the module doc); under `dvc exp run`, log the run only."""
    started = time.perf_counter()
    name = registered_name(cfg)
    read = _read_inputs(inputs)
    client = registry.connect(cfg.registry)
    exp_id = registry.experiment_id(client, cfg.registry)
    verdict = registration.decide(
        client, cfg, inputs["model"], inputs["splits"], read.metrics, read.hashes, new_data_inputs=inputs
    )
    twin = identical.find(client, name, verdict.tags) if registry.dvc_experiment() is None else None
    if twin is not None:  # same model, data, params and code as a version: register nothing new
        record = identical.record(client, name, twin, started)
        registration.write_record(record, twin.tags, outputs)
        return record
    content, train_run, report_dirs, experiment = _run_content(client, cfg, inputs, read, verdict.tags)
    run_name = f"{name}-exp-{experiment}" if experiment else f"{name}-register"
    run = _log_run(client, exp_id, content, train_run, report_dirs, inputs["model"], read, run_name)
    run_id = run.info.run_id
    if experiment is not None:  # logged, but no version and no alias move
        client.update_run(run_id, name=run_name)
        decision, champion = verdict.decision, verdict.champion
        return gate_record.experiment_record(
            cfg, run_id, experiment, decision, champion, outputs, started, verdict.tags
        )
    version = registration.create_version(
        client, cfg, run, read.split_paths, read.hashes, verdict, read.metrics
    )
    aliases = registration.move_aliases(client, name, version, verdict.decision)
    record = registration.record(cfg, run_id, version, aliases, verdict, started)
    registration.write_record(record, verdict.tags, outputs)
    log.info(
        "registered %s v%s (%s) in %.1fs: %s",
        name,
        version,
        ", ".join(aliases),
        record["seconds"],
        verdict.decision.reason,
    )
    return record
