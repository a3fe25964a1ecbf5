"""The MLflow run of one training: created by the train stage, continued by register.

The train stage opens the run (named `<model>-train-<UTC time>`, params `train.*`/`preprocess.*`),
logs every epoch's loss/accuracy/learning rate as `train/<name>` with `step` = epoch, and leaves
`models/mlflow_run.json` ({run_id, tracking_uri}) beside the model; register continues that run
and renames it `<model>-v<version>`. MLflow is optional here: where it is not installed (the GPU
host) or MEDPIPE_TRAIN_RUN=0 (reproduce), training runs without a run and register creates it from
the train outputs (per-epoch metrics from reports/train/history.csv). A run is opened only when the
stage is run by DVC (DVC_STAGE set) or MEDPIPE_TRAIN_RUN=1, so direct calls (tests, notebooks) never
write to a registry. Tracking failures are logged once and never stop a training.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Config, registered_name

log = logging.getLogger(__name__)
RUN_FILE = "mlflow_run.json"
EPOCH_PREFIX = "train/"
ENV_SWITCH = "MEDPIPE_TRAIN_RUN"


def enabled() -> bool:
    switch = os.environ.get(ENV_SWITCH, "")
    if switch == "0":
        return False
    if importlib.util.find_spec("mlflow") is None:
        return False
    return switch == "1" or bool(os.environ.get("DVC_STAGE"))


def epoch_metrics(epoch: int, logs: dict) -> dict[str, float]:
    """Keras epoch logs -> {train/<name>: value}; `lr` is reported as learning_rate."""
    out = {}
    for key, value in (logs or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[EPOCH_PREFIX + ("learning_rate" if key == "lr" else key)] = number
    return out


class TrainingRun:
    """One MLflow run; every call is best effort (a broken tracking server does not stop training)."""

    def __init__(self, client, run_id: str, tracking_uri: str):
        self.client, self.run_id, self.tracking_uri = client, run_id, tracking_uri
        self.broken = False

    @classmethod
    def start(cls, cfg: Config) -> TrainingRun | None:
        if not enabled():
            return None
        try:
            from mlflow.entities import Param

            from pipeline.core.provenance import flat_params
            from pipeline.tracking import connection

            client = connection.connect(cfg.registry)
            exp_id = connection.experiment_id(client, cfg.registry)
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            run = client.create_run(
                exp_id, run_name=f"{registered_name(cfg)}-train-{stamp}", tags={"medpipe.stage": "train"}
            )
            params = {k: v for k, v in flat_params(cfg).items() if k.startswith(("train.", "preprocess."))}
            items = list(params.items())
            for start in range(0, len(items), 100):
                client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in items[start : start + 100]])
        except Exception as exc:  # noqa: BLE001 - tracking is optional for training
            log.warning("MLflow training run not started (%s); register will create the run", exc)
            return None
        log.info("MLflow run %s (%s)", run.info.run_id, run.info.run_name)
        return cls(client, run.info.run_id, connection.tracking_uri(cfg.registry))

    def log_epoch(self, epoch: int, logs: dict) -> None:
        """Keras 0-based epoch -> step epoch + 1 (the history.csv numbering)."""
        if self.broken:
            return
        try:
            from mlflow.entities import Metric

            stamp = int(datetime.now(UTC).timestamp() * 1000)
            metrics = [Metric(k, v, stamp, epoch + 1) for k, v in epoch_metrics(epoch, logs).items()]
            self.client.log_batch(self.run_id, metrics=metrics)
        except Exception as exc:  # noqa: BLE001
            self.broken = True
            log.warning("MLflow: epoch metrics not logged (%s); training continues", exc)

    def callbacks(self) -> tuple:
        import keras

        run = self

        class EpochMetrics(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                run.log_epoch(epoch, logs or {})

        return (EpochMetrics(),)

    def end(self, status: str) -> None:
        try:
            self.client.set_terminated(self.run_id, status)
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow: run %s not marked %s (%s)", self.run_id, status, exc)

    def finish(self, models_dir: Path) -> None:
        """FINISHED, and models/mlflow_run.json for register to continue the run."""
        self.end("FINISHED")
        doc = {"run_id": self.run_id, "tracking_uri": self.tracking_uri}
        (Path(models_dir) / RUN_FILE).write_text(json.dumps(doc, indent=2) + "\n")


def recorded_run(models_dir: Path) -> dict | None:
    """models/mlflow_run.json, or None."""
    path = Path(models_dir) / RUN_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        log.warning("%s is unreadable; register creates a new run", path)
        return None
