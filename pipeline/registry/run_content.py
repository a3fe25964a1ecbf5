"""What the register stage puts into the training's MLflow run besides params and headline metrics:
the run to continue (the train stage's, when it is usable), per-epoch metrics from history.csv
(when train could not log them), dataset inputs from the split manifests, and report artifacts."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from pipeline.core import manifest
from pipeline.tracking import train_run as tracking

log = logging.getLogger(__name__)
REGISTERED_TAG = "medpipe.registered_version"
DATASET_COLUMNS = ["path", "label", "patient_id", "sha256"]
REBUILD_DIR = "reproduce"  # run artifact dir of the files below (project root = register's cwd)
REBUILD_FILES = ("dvc.lock", "params.yaml")


def training_run(client: MlflowClient, models_dir: Path, uri: str, params: dict[str, str]) -> str | None:
    """The train stage's run id when register may continue it: same tracking URI, run exists, not
    registered already (a model restored from DVC's run cache), params not contradicting."""
    doc = tracking.recorded_run(models_dir)
    if not doc or not doc.get("run_id"):
        return None
    if doc.get("tracking_uri") != uri:
        log.info("train logged to %s, register to another store: a new run", doc.get("tracking_uri"))
        return None
    try:
        run = client.get_run(doc["run_id"])
    except MlflowException:
        log.warning("training run %s is not in the registry: register creates a new run", doc["run_id"])
        return None
    if REGISTERED_TAG in run.data.tags:
        log.info(
            "training run %s already holds version %s: a new run",
            run.info.run_id,
            run.data.tags[REGISTERED_TAG],
        )
        return None
    clash = [k for k, v in run.data.params.items() if k in params and params[k] != v]
    if clash:
        log.warning("training run %s has other params (%s): a new run", run.info.run_id, ", ".join(clash[:3]))
        return None
    return run.info.run_id


def epoch_metrics(client: MlflowClient, run_id: str | None, history: Path | None) -> list[Metric]:
    """train/<name> per epoch (step = epoch) from history.csv, unless the run already has them."""
    if history is None or not Path(history).is_file():
        return []
    if run_id and any(k.startswith(tracking.EPOCH_PREFIX) for k in client.get_run(run_id).data.metrics):
        return []
    table = pd.read_csv(history)
    metrics = []
    for row in table.to_dict(orient="records"):
        epoch = int(row.pop("epoch"))
        for key, value in tracking.epoch_metrics(epoch, row).items():
            if pd.notna(value):
                metrics.append(Metric(key, value, 0, epoch))
    return metrics


def dataset_inputs(split_paths: dict[str, Path], hashes: dict[str, str]) -> list[DatasetInput]:
    """One mlflow.data dataset per split manifest (digest = the manifest's sha256), context = split."""
    import mlflow.data

    inputs = []
    for split, path in split_paths.items():
        df = manifest.read(path, ["path"])
        df = df[[c for c in DATASET_COLUMNS if c in df.columns]]
        # MLflow's notes on source ambiguity and on integer columns (the schema is inferred when
        # the entity is built): the manifests have no missing labels, so neither applies
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                df,
                source=str(Path(path).resolve()),
                targets="label" if "label" in df.columns else None,
                name=f"{split}-{hashes[split][:8]}",
                digest=hashes[split][:16],
            )
            entity = dataset._to_mlflow_entity()
        tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value=split)]
        inputs.append(DatasetInput(dataset=entity, tags=tags))
    return inputs


def report_artifacts(inputs: dict[str, Path]) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(files, dirs) of the optional register inputs (report.html, reports/eval, the validation
    summary, history.csv, changes.json and the changes.html beside it) that exist, each under its
    project-relative path (absolute: reports/), and the dvc.lock and params.yaml this run was built
    with, under reproduce/ (what `medpipe reproduce` restores when the version's git revision lacks
    them or differs)."""
    files = [(REBUILD_DIR, Path(name)) for name in REBUILD_FILES if Path(name).is_file()]
    dirs = []
    paths = [inputs.get(key) for key in ("report", "plots", "validation", "history", "changes")]
    if inputs.get("changes") is not None:  # the changes stage's page, beside its summary
        paths.append(Path(inputs["changes"]).with_suffix(".html"))
    for path in paths:
        if path is None or not Path(path).exists():
            continue
        path = Path(path)
        rel = Path("reports") / path.name if path.is_absolute() else path
        if path.is_dir():
            dirs.append((rel.as_posix(), path))
        else:
            files.append((rel.parent.as_posix(), path))
    return files, dirs
