"""register stage against a temporary sqlite MLflow: versions, tags, gate, aliases, history."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.register_inputs import INPUTS, MODEL_ARTIFACTS, OUTPUTS, cfg, metrics, write_register_inputs
from mlflow import MlflowClient

from pipeline.core.errors import MedpipeError
from pipeline.registry import champion as registry_champion
from pipeline.registry import client as registry
from pipeline.registry import lineage
from pipeline.stages import register


@pytest.fixture
def tracking(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "flow-run-123")
    return uri


def _register(root: Path, m: dict, **kw) -> dict:
    write_register_inputs(root, m, **kw)
    return register.run(cfg(), INPUTS, OUTPUTS)


def test_register_twice_gates_and_tags(tracking: str, in_tmp: Path) -> None:
    first = _register(in_tmp, metrics(0.80))
    assert first["version"] == "1" and first["gate"]["promote"]
    assert first["aliases"] == ["challenger", "champion"]
    assert json.loads((in_tmp / "reports/registered.json").read_text())["run_id"] == first["run_id"]

    worse = _register(in_tmp, metrics(0.70))
    assert worse["version"] == "2" and not worse["gate"]["promote"]
    page = (in_tmp / "reports/registered.html").read_text()  # linked from report.html's header
    for text in (
        "m v2",
        "not promoted",
        worse["gate"]["reason"],
        "champion v1",
        worse["run_id"],
        "report.html",
    ):
        assert text in page, text
    assert worse["registered_at"].endswith("UTC") and worse["registered_at"] in page
    assert worse["aliases"] == ["challenger"]
    assert worse["gate"]["champion_version"] == "1" and worse["gate"]["champion_metrics"]["roc_auc"] == 0.8

    better = _register(in_tmp, metrics(0.90))
    assert better["version"] == "3" and better["gate"]["promote"]

    client = MlflowClient(tracking)
    assert str(client.get_model_version_by_alias("m", "champion").version) == "3"
    tags = client.get_model_version("m", "2").tags
    assert tags["gate.decision"] == "reject" and tags["gate.champion_version"] == "1"
    assert float(tags["gate.delta.roc_auc"]) == pytest.approx(-0.10)
    assert tags["gate.champion_rescored"] == "false"
    assert tags["data.raw_md5"] == "a" * 32 + ".dir"
    assert not [k for k in tags if k.startswith("dvc.")]  # per-file DVC hashes: the run's lineage.json
    doc = registry.run_lineage(client.get_model_version("m", "2").run_id)
    assert doc["dvc"]["split"] == {
        "out.data/splits": "c" * 32 + ".dir",
        "dep.data/interim/validated.csv": "b" * 32,
    }
    assert len(tags["data.test_manifest_sha256"]) == 64 and len(tags["params.sha256"]) == 64
    assert float(tags["metric.roc_auc"]) == pytest.approx(0.70)
    assert tags["prefect.flow_run_id"] == "flow-run-123"
    assert "git.commit" in tags and tags["git.dirty"] in ("true", "false")
    run = client.get_run(client.get_model_version("m", "2").run_id)
    assert run.data.params["gate.metric"] == "roc_auc" and run.data.metrics["roc_auc"] == pytest.approx(0.70)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts")}
    assert artifacts == {f"model/artifacts/{n}" for n in MODEL_ARTIFACTS}
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    splits = {a.path for a in client.list_artifacts(run.info.run_id, "data/splits")}
    assert splits == {"data/splits/train.csv", "data/splits/val.csv", "data/splits/test.csv"}


def test_identical_retrain_is_refused_as_a_tie(tracking: str, in_tmp: Path) -> None:
    """gate.min_delta 0.0 (the default) must not let a challenger that merely ties take over."""
    assert cfg().gate.min_delta == 0.0
    first = _register(in_tmp, metrics(0.80))
    # a retrained model (other bytes) that ties on the same test manifest; an identical one
    # registers nothing at all (test_gate_floor.py)
    same = _register(in_tmp, metrics(0.80), model_bytes=b"retrained, same scores")
    assert first["gate"]["promote"] and not same["gate"]["promote"]
    assert (
        same["gate"]["reason"] == "roc_auc ties the champion (+0.0000): promotion needs a strict improvement"
    )
    assert same["aliases"] == ["challenger"]
    client = MlflowClient(tracking)
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
    assert [e["alias"] for e in registry.history(client, "m")] == ["challenger", "champion", "challenger"]
    tiny_gain = _register(in_tmp, metrics(0.8001))
    assert tiny_gain["gate"]["promote"], tiny_gain["gate"]["reason"]  # any strict gain passes at 0.0


def test_guard_metric_drop_refuses(tracking: str, in_tmp: Path) -> None:
    _register(in_tmp, metrics(0.80, sensitivity=0.9))
    rec = _register(in_tmp, metrics(0.85, sensitivity=0.7))
    assert not rec["gate"]["promote"] and "sensitivity" in rec["gate"]["reason"]


def test_history_records_every_alias_change(tracking: str, in_tmp: Path, capsys) -> None:
    _register(in_tmp, metrics(0.80))
    _register(in_tmp, metrics(0.70))
    _register(in_tmp, metrics(0.90))
    entries = registry.history(MlflowClient(tracking), "m")
    moves = [(e["alias"], e["previous"], e["new"]) for e in entries]
    assert moves == [
        ("challenger", None, "1"),
        ("champion", None, "1"),
        ("challenger", "1", "2"),
        ("challenger", "2", "3"),
        ("champion", "1", "3"),
    ]
    assert all(e["time"].endswith("Z") for e in entries)
    lineage.print_history("m", as_json=True)
    assert [e["new"] for e in json.loads(capsys.readouterr().out)] == ["1", "1", "2", "3", "3"]


def test_champion_rescored_on_a_different_test_manifest(
    tracking: str, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(in_tmp, metrics(0.80), model_bytes=b"champion-model")
    seen: dict = {}

    def fake_load(model_dir: Path) -> bytes:
        seen["label_map"] = json.loads((model_dir / "label_map.json").read_text())
        return (model_dir / "model.keras").read_bytes()

    def fake_score(model, label_map, val_df, test_df, cfg) -> dict:
        seen.update(model=model, n_test=len(test_df))
        return {"roc_auc": 0.95, "sensitivity": 0.8}  # champion is stronger on the new test set

    monkeypatch.setattr(registry_champion, "load_model", fake_load)
    monkeypatch.setattr(registry_champion, "score", fake_score)
    rec = _register(in_tmp, metrics(0.90), test_images=6)  # new frozen test manifest
    assert (
        seen["model"] == b"champion-model" and seen["n_test"] == 6 and seen["label_map"]["positive"] == "pos"
    )
    assert rec["gate"]["champion_rescored"] and not rec["gate"]["promote"]
    tags = MlflowClient(tracking).get_model_version("m", "2").tags
    assert float(tags["gate.champion.roc_auc"]) == pytest.approx(0.95)
    assert rec["gate"]["champion_metrics"] == {"roc_auc": 0.95, "sensitivity": 0.8}


def test_missing_model_is_a_clean_error(tracking: str, in_tmp: Path) -> None:
    write_register_inputs(in_tmp, metrics(0.8))
    (in_tmp / "models" / "model.keras").unlink()
    with pytest.raises(MedpipeError, match="model.keras not found"):
        register.run(cfg(), INPUTS, OUTPUTS)


def test_unknown_gate_metric_is_a_config_error(tracking: str, in_tmp: Path) -> None:
    write_register_inputs(in_tmp, metrics(0.8))
    bad = cfg()
    bad = type(bad)(registry=bad.registry, gate=type(bad.gate)(metric="roc_acu"))
    with pytest.raises(MedpipeError, match="gate.metric 'roc_acu'"):
        register.run(bad, INPUTS, OUTPUTS)
    assert not MlflowClient(tracking).search_registered_models()


def test_dvc_bookkeeping_does_not_make_a_revision_dirty(tmp_path: Path) -> None:
    """dvc.lock, the .gitignore files and the outputs dvc.yaml declares are not code changes."""
    import subprocess

    from pipeline.core.provenance import git_revision

    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    dvc_yaml = (
        "stages:\n  evaluate:\n    cmd: x\n    outs:\n      - reports/eval:\n          cache: false\n"
        "    metrics:\n      - reports/metrics.json:\n          cache: false\n"
        "    plots:\n      - reports/train/history.csv\n"
    )
    (tmp_path / "dvc.yaml").write_text(dvc_yaml)
    dvc_outs = ("reports/metrics.json", "reports/eval/roc.csv", "reports/train/history.csv")
    for name in ("params.yaml", "dvc.lock", ".gitignore", "data/.gitignore", *dvc_outs):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1\n")
    for args in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(args, cwd=tmp_path, check=True, env={**os.environ, **env})
    for name in ("dvc.lock", ".gitignore", "data/.gitignore", *dvc_outs):  # what `dvc repro` rewrites
        (tmp_path / name).write_text("v2\n")
    head, dirty = git_revision(tmp_path)
    assert len(head) == 40 and dirty is False
    (tmp_path / "params.yaml").write_text("train: {epochs: 3}\n")
    assert git_revision(tmp_path) == (head, True)
