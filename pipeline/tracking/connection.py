"""The MLflow connection every run and registry call uses: the tracking URI (env, params, project
root under DVC), the client, and the experiment with its artifact location."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from pipeline.config import RegistryConfig
from pipeline.core.errors import ConfigError
from pipeline.core.redact import redact

log = logging.getLogger(__name__)


def project_root() -> Path:
    """DVC_ROOT when run by DVC: the project root, also under `dvc exp run` (DVC 3 points it at the
    parent repo, not the experiment's temp dir); else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or ".")


def dvc_experiment() -> str | None:
    """The DVC experiment name when run by `dvc exp run` (DVC_EXP_NAME), else None."""
    return os.environ.get("DVC_EXP_NAME") or None


def tracking_uri(cfg: RegistryConfig) -> str:
    """MLFLOW_TRACKING_URI, else registry.tracking_uri; a relative sqlite path is taken from the
    project root, so `dvc exp run --temp/--queue` uses the project's registry, not a new one."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and os.environ.get("DVC_ROOT"):
        uri = prefix + str((project_root() / uri.removeprefix(prefix)).resolve())
    return uri


def _default_artifact_location(uri: str) -> str | None:
    """Beside a local sqlite DB (its dir/mlruns), wherever the stage runs; None = MLflow's default."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.removeprefix(prefix) in ("", ":memory:"):
        return None
    return str(Path(uri.removeprefix(prefix)).resolve().parent / "mlruns")


def connect(cfg: RegistryConfig) -> MlflowClient:
    uri = tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    log.info("MLflow tracking at %s", redact(uri))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: MlflowClient, cfg: RegistryConfig) -> str:
    """Get or create cfg.experiment; its artifact location must match registry.artifact_uri."""
    exp = client.get_experiment_by_name(cfg.experiment)
    if exp is None:
        location = cfg.artifact_uri or _default_artifact_location(tracking_uri(cfg))
        return client.create_experiment(cfg.experiment, artifact_location=location)
    if cfg.artifact_uri and exp.artifact_location.rstrip("/") != cfg.artifact_uri.rstrip("/"):
        raise ConfigError(
            f"params: MLflow experiment '{cfg.experiment}' stores artifacts at "
            f"{redact(exp.artifact_location)}, not registry.artifact_uri {redact(cfg.artifact_uri)}; "
            "use a new registry.experiment name for the new location"
        )
    return exp.experiment_id
