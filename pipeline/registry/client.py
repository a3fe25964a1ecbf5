"""MLflow model registry access: runs, versions, aliases and alias history (the connection is
pipeline.tracking.connection's; its names are re-exported here).

A version is created only after every artifact of its run is stored, so a failed upload
leaves a FAILED run and no half-registered version. Every alias change is appended to the
registered model's tags as `history.<UTC time>.<alias>` = JSON {time, alias, previous, new,
reason}, so the production history lives in the registry itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, Metric, Param, Run, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from pipeline.core.errors import MedpipeError
from pipeline.core.provenance import redact
from pipeline.tracking.connection import (  # noqa: F401 - re-exported: registry.connect(...)
    connect,
    dvc_experiment,
    experiment_id,
    project_root,
    tracking_uri,
)

log = logging.getLogger(__name__)
MODEL_ARTIFACT_DIR = "model"
LINEAGE_ARTIFACT = "lineage.json"
HISTORY_PREFIX = "history."
_BATCH = 100  # MLflow's limit of params per log_batch call


@dataclass
class RunContent:
    """Everything register stores in a run; files/dirs are [(artifact dir, local path)]."""

    params: dict[str, str]
    metrics: dict[str, float]
    files: list[tuple[str, Path]] = field(default_factory=list)
    dirs: list[tuple[str, Path]] = field(default_factory=list)
    json_docs: dict[str, dict] = field(default_factory=dict)
    step_metrics: list[Metric] = field(default_factory=list)  # per-epoch curves (with step)
    datasets: list[DatasetInput] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def log_run(
    client: MlflowClient, exp_id: str, content: RunContent, run_id: str | None = None, name: str | None = None
) -> Run:
    """Store content in run_id (the training's run) or a new run named name; FINISHED on success,
    FAILED (and MedpipeError) when an artifact cannot be stored. Params already in the run are kept."""
    run = client.get_run(run_id) if run_id else client.create_run(exp_id, run_name=name)
    run_id = run.info.run_id
    try:
        items = [(k, v) for k, v in content.params.items() if k not in run.data.params]
        for start in range(0, len(items), _BATCH):
            client.log_batch(run_id, params=[Param(k, v) for k, v in items[start : start + _BATCH]])
        stamp = int(datetime.now(UTC).timestamp() * 1000)
        metrics = [Metric(k, v, stamp, 0) for k, v in content.metrics.items()]
        metrics += [Metric(m.key, m.value, m.timestamp or stamp, m.step) for m in content.step_metrics]
        for start in range(0, len(metrics), 1000):  # MLflow's limit of metrics per log_batch call
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        if content.tags:
            client.log_batch(run_id, tags=[RunTag(k, v) for k, v in content.tags.items()])
        if content.datasets:
            client.log_inputs(run_id, datasets=content.datasets)
        for doc_name, obj in content.json_docs.items():
            client.log_dict(run_id, obj, doc_name)
        for dest, local in content.files:
            client.log_artifact(run_id, str(local), dest)
        for dest, local in content.dirs:
            client.log_artifacts(run_id, str(local), dest)
    except Exception as exc:
        client.set_terminated(run_id, "FAILED")
        first = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise MedpipeError(
            f"could not store run artifacts at {redact(run.info.artifact_uri)} ({first}); "
            "check registry.artifact_uri, MLFLOW_S3_ENDPOINT_URL and the storage credentials"
        ) from exc
    client.set_terminated(run_id, "FINISHED")
    return client.get_run(run_id)


def create_version(
    client: MlflowClient, name: str, run: Run, tags: dict[str, str], description: str | None = None
) -> ModelVersion:
    """Register the run's model/ artifacts as a new version of name, with tags and a description."""
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{run.info.artifact_uri}/{MODEL_ARTIFACT_DIR}"
    return client.create_model_version(
        name, source, run_id=run.info.run_id, tags=tags, description=description
    )


def alias_holder(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_alias(client: MlflowClient, name: str, alias: str, version: str, reason: str) -> dict:
    """Move alias to version and append the change to the model's history tags."""
    previous = alias_holder(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    now = datetime.now(UTC)
    entry = {
        "time": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "alias": alias,
        "previous": str(previous.version) if previous else None,
        "new": str(version),
        "reason": reason,
    }
    key = f"{HISTORY_PREFIX}{now.strftime('%Y%m%dT%H%M%S.%fZ')}.{alias}"
    client.set_registered_model_tag(name, key, json.dumps(entry))
    log.info("%s@%s: v%s -> v%s (%s)", name, alias, entry["previous"], version, reason)
    return entry


def history(client: MlflowClient, name: str) -> list[dict]:
    """Alias changes of a registered model, oldest first."""
    model = registered_model(client, name)
    keys = sorted(k for k in model.tags if k.startswith(HISTORY_PREFIX))
    return [json.loads(model.tags[k]) for k in keys]


def registered_model(client: MlflowClient, name: str):
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        raise MedpipeError(
            f"no registered model named '{name}' at {redact(mlflow.get_tracking_uri())}; "
            "check the name or MLFLOW_TRACKING_URI"
        ) from exc


def resolve(client: MlflowClient, ref: str) -> ModelVersion:
    """'name@alias' or 'name@version' -> ModelVersion (MedpipeError when unknown)."""
    name, sep, which = ref.rpartition("@")
    if not sep or not name or not which:
        raise MedpipeError(
            f"model reference {ref!r} must look like <name>@<alias|version>, e.g. medpipe-idc@champion"
        )
    model = registered_model(client, name)
    if which.isdigit():
        try:
            return client.get_model_version(name, which)
        except MlflowException as exc:
            raise MedpipeError(f"model '{name}' has no version {which}") from exc
    holder = alias_holder(client, name, which)
    if holder is None:
        known = ", ".join(sorted(model.aliases)) or "none"
        raise MedpipeError(f"model '{name}' has no alias '{which}'; aliases: {known}")
    return holder


def run_lineage(run_id: str) -> dict | None:
    """The run's lineage.json artifact (None for runs logged before it existed)."""
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{LINEAGE_ARTIFACT}")
    except Exception:  # noqa: BLE001 - missing artifact: MlflowException or OSError by store
        return None


def version_metrics(client: MlflowClient, mv: ModelVersion) -> dict[str, float]:
    """Headline metrics of a version: its run's metrics (not the per-epoch `train/*` curves), else
    its metric.* tags."""
    if mv.run_id:
        try:
            metrics = client.get_run(mv.run_id).data.metrics
            metrics = {k: v for k, v in metrics.items() if "/" not in k}
            if metrics:
                return metrics
        except MlflowException:
            log.warning("run %s of %s v%s is gone; using its metric tags", mv.run_id, mv.name, mv.version)
    return {k.removeprefix("metric."): float(v) for k, v in mv.tags.items() if k.startswith("metric.")}
