"""The champion's metrics on the CURRENT frozen test manifest (re-scored when it was evaluated on another)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from pipeline.config import Config
from pipeline.core import manifest
from pipeline.core.errors import MedpipeError
from pipeline.core.provenance import flat_metrics
from pipeline.registry import client as registry
from pipeline.serving import pyfunc_model as mlflow_model

log = logging.getLogger(__name__)
TEST_SHA_TAG = "data.test_manifest_sha256"


def load_model(model_dir: Path):
    """Load a downloaded model.keras with Keras safe mode (no arbitrary code from the artifact).

    Goes through the evaluate stage's loader, which registers medpipe's custom layers first.
    """
    from pipeline.evaluation.predictions import load_model as load_keras_model

    return load_keras_model(model_dir / "model.keras")


def score(model, label_map: dict, val_df, test_df, cfg: Config) -> dict:
    """Re-score with the evaluate stage's own scorer, so the numbers are comparable."""
    try:
        from pipeline.evaluation.scoring import score_model
    except ImportError as exc:
        raise MedpipeError(
            "cannot re-score the champion: pipeline.evaluation.scoring.score_model is not available"
        ) from exc
    return score_model(model, label_map, val_df, test_df, cfg.evaluate)


def champion_metrics(
    client: MlflowClient, champion: ModelVersion, test_sha256: str, splits_dir: Path, cfg: Config
) -> tuple[dict[str, float], bool]:
    """(metrics, rescored): recorded metrics when the test manifest matches, else fresh ones."""
    if champion.tags.get(TEST_SHA_TAG) == test_sha256:
        return registry.version_metrics(client, champion), False
    log.info(
        "champion v%s was evaluated on test manifest %s, not %s: re-scoring it",
        champion.version,
        str(champion.tags.get(TEST_SHA_TAG, "?"))[:12],
        test_sha256[:12],
    )
    with tempfile.TemporaryDirectory(prefix="medpipe-champion-") as tmp:
        local = mlflow_model.keras_files(
            Path(mlflow.artifacts.download_artifacts(artifact_uri=champion.source, dst_path=tmp))
        )
        if not (local / "model.keras").is_file() or not (local / "label_map.json").is_file():
            raise MedpipeError(
                f"champion v{champion.version} artifacts at {champion.source} lack model.keras/label_map.json"
            )
        label_map = json.loads((local / "label_map.json").read_text())
        model = load_model(local)
    val_df = manifest.read(splits_dir / "val.csv", ["path", "label"])
    test_df = manifest.read(splits_dir / "test.csv", ["path", "label"])
    return flat_metrics(score(model, label_map, val_df, test_df, cfg)), True
