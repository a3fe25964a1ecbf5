"""One MLflow run per training: created by train (pipeline.tracking.train_run), continued and named by register;
per-epoch metrics, dataset inputs, report artifacts, lineage.json, version description."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers.register_inputs import INPUTS, OUTPUTS, cfg, metrics, write_register_inputs
from mlflow import MlflowClient

from pipeline.registry import client as registry
from pipeline.stages import register
from pipeline.tracking import train_run as tracking

HISTORY = Path("reports/train/history.csv")
REPORT = Path("reports/report.html")


@pytest.fixture
def tracking_uri(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for key in ("MEDPIPE_LINEAGE_DB", "DVC_EXP_NAME", "DVC_STAGE", "DVC_ROOT"):
        monkeypatch.delenv(key, raising=False)
    return uri


def _outputs(root: Path) -> dict[str, Path]:
    HISTORY.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.9, 0.6, 0.5], "val_loss": [1.0, 0.8, 0.7]}).to_csv(
        HISTORY, index=False
    )
    REPORT.write_text("<html>report</html>")
    return {**INPUTS, "history": HISTORY, "report": REPORT}


def _steps(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_train_run_is_continued_by_register(tracking_uri: str, in_tmp: Path, monkeypatch) -> None:
    write_register_inputs(in_tmp, metrics(0.8))
    assert tracking.TrainingRun.start(cfg()) is None  # not under DVC: no run from a direct call
    monkeypatch.setenv("MEDPIPE_TRAIN_RUN", "1")
    train_run = tracking.TrainingRun.start(cfg())
    for epoch, loss in enumerate((0.9, 0.6)):
        train_run.log_epoch(epoch, {"loss": loss, "val_loss": loss + 0.1, "lr": 1e-3})
    train_run.finish(in_tmp / "models")

    rec = register.run(cfg(), _outputs(in_tmp), OUTPUTS)
    client = MlflowClient(tracking_uri)
    assert rec["run_id"] == train_run.run_id
    run = client.get_run(rec["run_id"])
    assert run.info.run_name == "m-v1" and run.info.status == "FINISHED"
    assert _steps(client, rec["run_id"], "train/loss") == [(1, 0.9), (2, 0.6)]  # live values, not re-logged
    assert _steps(client, rec["run_id"], "train/learning_rate") == [(1, 1e-3), (2, 1e-3)]
    assert run.data.params["train.epochs"] == "12" and run.data.metrics["roc_auc"] == pytest.approx(0.8)
    contexts = {i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"train", "val", "test"}
    names = {a.path for a in client.list_artifacts(rec["run_id"])}
    assert {"lineage.json", "model", "reports", "data"} <= names
    assert {a.path for a in client.list_artifacts(rec["run_id"], "reports")} >= {
        "reports/report.html",
        "reports/metrics.json",
        "reports/train",
    }
    lineage = json.loads(
        Path(client.download_artifacts(rec["run_id"], "lineage.json", str(in_tmp))).read_text()
    )
    assert lineage["dvc"]["split"]["out.data/splits"] == "c" * 32 + ".dir"

    version = client.get_model_version("m", "1")
    assert not [k for k in version.tags if k.startswith("dvc.")] and len(version.tags) < 30
    assert version.tags["data.raw_md5"] == "a" * 32 + ".dir" and version.tags["gate.decision"] == "promote"
    assert version.description.startswith("Promoted to champion: ")
    assert "roc_auc 0.8000 on 4 test images" in version.description
    headline = registry.version_metrics(client, version)  # gate/reproduce view: no train/* curves
    assert headline["roc_auc"] == pytest.approx(0.8) and not [k for k in headline if "/" in k]


def test_register_builds_the_run_from_train_outputs(tracking_uri: str, in_tmp: Path) -> None:
    """No training run (GPU host without MLflow): per-epoch metrics come from history.csv."""
    write_register_inputs(in_tmp, metrics(0.8))
    first = register.run(cfg(), _outputs(in_tmp), OUTPUTS)
    client = MlflowClient(tracking_uri)
    assert _steps(client, first["run_id"], "train/val_loss") == [(1, 1.0), (2, 0.8), (3, 0.7)]
    assert client.get_run(first["run_id"]).info.run_name == "m-v1"

    write_register_inputs(in_tmp, metrics(0.7))
    (in_tmp / "models" / tracking.RUN_FILE).write_text(
        json.dumps({"run_id": first["run_id"], "tracking_uri": tracking_uri})
    )  # a models/ restored from DVC's run cache points at a run that already holds v1
    second = register.run(cfg(), _outputs(in_tmp), OUTPUTS)
    assert second["run_id"] != first["run_id"] and second["version"] == "2"
    assert client.get_model_version("m", "2").description.startswith("Not promoted (challenger only): ")
