"""The registered version is an MLflow pyfunc model: its probabilities equal the evaluate stage's,
`medpipe predict` returns the same numbers, DVC experiments register nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers.registered_champion import NAME, REGISTER_IN, REGISTER_OUT, settings
from mlflow import MlflowClient

from pipeline import config
from pipeline.cli import commands as cli
from pipeline.models.layers import RandomRot90
from pipeline.registry import client as registry
from pipeline.stages import register


def test_pyfunc_probabilities_equal_evaluate_predictions(registered_champion_project, monkeypatch) -> None:
    root, record = registered_champion_project
    table = pd.read_csv(root / "reports/eval/predictions.csv")
    assert list(table.columns) == ["path", "split", "label", "p_non_idc", "p_idc", "predicted"]
    assert sorted(table["split"].unique()) == ["test", "val"]
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    images = pd.DataFrame({"image": [(root / p).read_bytes() for p in table["path"]]})
    out = model.predict(images, params={"batch_size": 7})
    assert list(out.columns) == ["p_non_idc", "p_idc", "label"]
    diff = np.abs(out[["p_non_idc", "p_idc"]].to_numpy() - table[["p_non_idc", "p_idc"]].to_numpy())
    assert diff.max() < 1e-4, diff.max()
    assert (out["label"] == table["predicted"]).all()
    with pytest.raises(mlflow.MlflowException, match="row 0: path refused"):  # no roots, no paths
        model.predict(table[["path"]].head(2))
    monkeypatch.setenv("MEDPIPE_SERVING_PATH_ROOTS", str(root / "images"))  # local batch use
    by_path = model.predict(table[["path"]].head(5))
    assert np.abs(by_path["p_idc"].to_numpy() - out["p_idc"].head(5).to_numpy()).max() < 1e-6
    metrics = json.loads((root / "reports/metrics.json").read_text())
    serving = json.loads(
        Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion"))
        .joinpath("artifacts/serving.json")
        .read_text()
    )
    assert serving["threshold"] == pytest.approx(metrics["threshold"]) and serving["tta"] is True
    sig = model.metadata.signature
    assert sig.inputs.input_names() == ["image", "path"] and sig.outputs.input_names() == [
        "p_non_idc",
        "p_idc",
        "label",
    ]


def test_keras_artifact_loads_with_registered_layers(registered_champion_project) -> None:
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion"))
    model = keras.saving.load_model(local / "artifacts/model.keras", safe_mode=True)
    assert any(isinstance(layer, RandomRot90) for layer in model.layers)
    assert (local / "code/pipeline/models/layers.py").is_file() and (local / "MLmodel").is_file()


def test_predict_cli_matches_from_registry_and_models_dir(registered_champion_project, capsys) -> None:
    root, _ = registered_champion_project
    table = pd.read_csv(root / "reports/eval/predictions.csv").query("split == 'test'").sort_values("path")
    assert cli.main(["predict", f"{NAME}@champion", "images", "--csv", "--batch-size", "16"]) == 0
    out = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    out = out[out["path"].isin(table["path"])].sort_values("path")
    assert len(out) == len(table)
    assert np.abs(out["p_idc"].to_numpy() - table["p_idc"].to_numpy()).max() < 1e-4
    assert (out["label"].to_numpy() == table["predicted"].to_numpy()).all()

    one = table["path"].iloc[0]
    assert cli.main(["predict", "models", one, "--json"]) == 0  # threshold from reports/metrics.json
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["path"] == one and rows[0]["label"] == table["predicted"].iloc[0]
    assert abs(rows[0]["p_idc"] - table["p_idc"].iloc[0]) < 1e-4


def test_predict_cli_heatmap_for_idc_names(registered_champion_project, tmp_path) -> None:
    root, _ = registered_champion_project
    patient = tmp_path / "10253" / "1"
    patient.mkdir(parents=True)
    sources = sorted((root / "images").glob("test*.png"))[:4]
    for i, src in enumerate(sources):
        x, y = 50 * (i % 2) + 1, 50 * (i // 2) + 1
        (patient / f"10253_idx5_x{x}_y{y}_class1.png").write_bytes(src.read_bytes())
    assert cli.main(["predict", f"{NAME}@champion", str(tmp_path), "--heatmap", str(tmp_path / "maps")]) == 0
    assert (tmp_path / "maps" / "10253.png").read_bytes()[:4] == b"\x89PNG"


def test_dvc_experiment_registers_no_version(registered_champion_project, monkeypatch) -> None:
    root, first = registered_champion_project
    monkeypatch.setenv("DVC_EXP_NAME", "lusty-exp")
    monkeypatch.setenv("DVC_ROOT", str(root))
    rec = register.run(settings(), REGISTER_IN, REGISTER_OUT)
    assert rec["version"] is None and rec["aliases"] == [] and rec["dvc_experiment"] == "lusty-exp"
    assert "DVC experiment lusty-exp: not registered" in (root / "reports/registered.html").read_text()
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert [str(v.version) for v in client.search_model_versions(f"name='{NAME}'")] == [first["version"]]
    run = client.get_run(rec["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["dvc.exp_name"] == "lusty-exp"
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == first["version"]


def test_relative_sqlite_uri_resolves_to_dvc_root(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    temp = tmp_path / ".dvc" / "tmp" / "exps" / "tmp123"
    temp.mkdir(parents=True)
    monkeypatch.chdir(temp)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    cfg = config.RegistryConfig(tracking_uri="sqlite:///mlflow.db")
    assert registry.tracking_uri(cfg) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert (
        registry.tracking_uri(config.RegistryConfig(tracking_uri="sqlite:////abs/m.db"))
        == "sqlite:////abs/m.db"
    )
    monkeypatch.delenv("DVC_ROOT")
    assert registry.tracking_uri(cfg) == "sqlite:///mlflow.db"
