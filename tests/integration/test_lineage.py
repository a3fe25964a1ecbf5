"""lineage model / data / history queries after real registrations into a temporary sqlite MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.register_inputs import INPUTS, OUTPUTS, cfg, metrics, sha, write_register_inputs
from mlflow import MlflowClient

from pipeline.cli import commands as cli
from pipeline.core.errors import MedpipeError
from pipeline.registry import lineage
from pipeline.stages import register

FILE_MD5 = "d" * 32  # one file's own md5 inside data/raw (a = its directory's .dir hash)


@pytest.fixture
def two_versions(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{in_tmp / 'mlflow.db'}")
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    write_register_inputs(in_tmp, metrics(0.8))
    raw_dir = in_tmp / ".dvc/cache/files/md5/aa" / ("a" * 30 + ".dir")  # data/raw's DVC .dir object
    raw_dir.parent.mkdir(parents=True)
    raw_dir.write_text(json.dumps([{"md5": FILE_MD5, "relpath": "train/img5.png"}]))
    register.run(cfg(), INPUTS, OUTPUTS)
    write_register_inputs(in_tmp, metrics(0.7))  # same data, worse model: v2 stays challenger
    register.run(cfg(), INPUTS, OUTPUTS)
    return in_tmp


def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out)


def test_lineage_model_shows_provenance(two_versions: Path, capsys) -> None:
    lineage.print_model("m@champion", as_json=True)
    rec = _json(capsys)
    assert rec["version"] == "1" and rec["aliases"] == ["champion"]
    assert rec["data"]["raw_md5"] == "a" * 32 + ".dir"
    assert rec["data"]["test_manifest_sha256"] == sha_file(two_versions / "data/splits/test.csv")
    assert rec["dvc"]["split"]["out.data/splits"] == "c" * 32 + ".dir"
    assert rec["params"]["registry.model_name"] == "m" and rec["metrics"]["roc_auc"] == pytest.approx(0.8)
    assert rec["prefect_flow_run_id"] == "" and rec["git"]["commit"]
    stored = {a.path for a in MlflowClient().list_artifacts(rec["run_id"], "reproduce")}
    assert stored == {"reproduce/dvc.lock"}  # what reproduce restores (this project has no params.yaml)
    lineage.print_model("m@2")
    text = capsys.readouterr().out
    assert "m v2" in text and "challenger" in text and "raw_md5" in text


def sha_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ref", ["m@9", "m@staging", "nosuch@1", "no-at-sign"])
def test_unknown_model_refs_are_one_line_errors(two_versions: Path, ref: str, capsys) -> None:
    with pytest.raises(MedpipeError):
        lineage.print_model(ref)
    assert cli.main(["lineage", "model", ref]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medpipe: error:") and err.count("\n") == 1


def test_lineage_data_by_sha_path_file_and_dvc_hash(two_versions: Path, capsys) -> None:
    image = "data/raw/test/img1.png"
    lineage.print_data(sha(image), as_json=True)
    hits = _json(capsys)["versions"]
    assert [(h["version"], h["split"], h["path"]) for h in hits] == [
        ("1", "test", image),
        ("2", "test", image),
    ]

    lineage.print_data("data/raw/train/img5.png", as_json=True)
    assert {(h["version"], h["split"]) for h in _json(capsys)["versions"]} == {("1", "train"), ("2", "train")}

    copy = two_versions / "elsewhere.png"  # same content as a training image, another name
    copy.write_text("data/raw/val/img2.png")
    lineage.print_data(str(copy), as_json=True)
    usage = _json(capsys)
    assert usage["kind"] == "sha256" and {h["split"] for h in usage["versions"]} == {"val"}

    for md5 in ("c" * 32, "c" * 32 + ".dir"):
        lineage.print_data(md5, as_json=True)
        assert {(h["version"], h["key"]) for h in _json(capsys)["versions"]} == {
            ("1", "dvc.split.out.data/splits"),
            ("2", "dvc.split.out.data/splits"),
        }

    lineage.print_data(sha("never-seen"))
    assert "no registered model version used" in capsys.readouterr().out


def test_lineage_data_finds_a_file_by_its_own_dvc_md5(two_versions: Path, capsys) -> None:
    lineage.print_data(FILE_MD5, as_json=True)
    usage = _json(capsys)
    assert usage["kind"] == "dvc-md5"
    assert [(h["version"], h["key"], h["path"]) for h in usage["versions"]] == [
        ("1", "dvc.ingest.out.data/raw", "data/raw/train/img5.png"),
        ("2", "dvc.ingest.out.data/raw", "data/raw/train/img5.png"),
    ]  # both versions record this .dir hash for data/raw
    assert cli.main(["lineage", "data", FILE_MD5]) == 0
    assert "m v2    dvc.ingest.out.data/raw  data/raw/train/img5.png" in capsys.readouterr().out
    lineage.print_data("e" * 32)
    assert "no registered model version used" in capsys.readouterr().out


def test_registry_history_cli(two_versions: Path, capsys) -> None:
    assert cli.main(["registry", "history", "m"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 3 and "champion" in lines[2] and "registered" in lines[3]
    assert cli.main(["registry", "history", "nosuch"]) == 2
