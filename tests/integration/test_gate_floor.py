"""register stage against a temporary sqlite MLflow: the gate floor (gate.min) and identical retrains."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from helpers.register_inputs import INPUTS, OUTPUTS, cfg, metrics, write_register_inputs
from mlflow import MlflowClient

from pipeline.stages import register


@pytest.fixture
def tracking(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    return uri


def _register(root: Path, m: dict, **kw) -> dict:
    write_register_inputs(root, m, **kw)
    return register.run(cfg(), INPUTS, OUTPUTS)


def test_degenerate_model_without_champion_is_registered_but_holds_no_alias(tracking: str, in_tmp: Path):
    """The small-TB failure: val AUC 0, threshold 1.000, test sensitivity 0 became champion."""
    degenerate = metrics(0.5, sensitivity=0.0) | {"balanced_accuracy": 0.5}
    rec = _register(in_tmp, degenerate)
    assert rec["version"] == "1" and rec["aliases"] == []
    assert not rec["gate"]["promote"] and rec["gate"]["champion_version"] is None
    reason = rec["gate"]["reason"]
    assert reason.startswith("below the gate floor (roc_auc 0.5000 is not above 0.6;"), reason
    assert rec["gate"]["floor"] == {"passed": False, "failures": rec["gate"]["floor"]["failures"]}
    assert len(rec["gate"]["floor"]["failures"]) == 3
    assert json.loads((in_tmp / "reports/registered.json").read_text())["gate"]["reason"] == reason
    assert reason in (in_tmp / "reports/registered.html").read_text()

    client = MlflowClient(tracking)
    mv = client.get_model_version("m", "1")
    assert mv.tags["gate.floor"] == "below" and mv.tags["gate.reason"] == reason
    assert mv.tags["gate.decision"] == "reject"
    assert mv.description.startswith(f"Below the gate floor (no alias): {reason}.")
    assert not client.get_registered_model("m").aliases

    good = _register(in_tmp, metrics(0.8))  # still no champion: the first model above the floor wins
    assert good["version"] == "2" and good["gate"]["promote"] and good["gate"]["reason"] == "no champion yet"
    assert good["aliases"] == ["challenger", "champion"] and good["gate"]["floor"]["passed"]
    assert client.get_model_version("m", "2").tags["gate.floor"] == "pass"


def test_below_floor_never_replaces_a_champion(tracking: str, in_tmp: Path):
    _register(in_tmp, metrics(0.8))
    rec = _register(in_tmp, metrics(0.95, sensitivity=0.0))  # better AUC, but never flags a positive
    assert rec["version"] == "2" and rec["aliases"] == [] and not rec["gate"]["promote"]
    assert rec["gate"]["reason"].startswith("below the gate floor (sensitivity 0.0000 is not above 0)")
    client = MlflowClient(tracking)
    assert str(client.get_model_version_by_alias("m", "challenger").version) == "1"
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"


def test_identical_retrain_registers_nothing_new(tracking: str, in_tmp: Path, caplog):
    first = _register(in_tmp, metrics(0.8))
    client = MlflowClient(tracking)
    runs_before = len(client.search_runs([client.get_experiment_by_name("medpipe").experiment_id]))
    with caplog.at_level(logging.INFO, logger="pipeline.registry.identical"):
        again = _register(in_tmp, metrics(0.8))  # same model file, data, params and code
    assert again["identical_to"] == "1" and again["version"] == "1" and again["run_id"] == first["run_id"]
    assert again["aliases"] == ["challenger", "champion"] and not again["gate"]["promote"]
    assert "identical to v1" in again["gate"]["reason"]
    assert json.loads((in_tmp / "reports/registered.json").read_text())["identical_to"] == "1"
    assert "identical to v1" in (in_tmp / "reports/registered.html").read_text()
    assert [r.getMessage() for r in caplog.records if r.name == "pipeline.registry.identical"] == [
        "m: this retrain is identical to v1; no new version registered"
    ]
    assert [str(mv.version) for mv in client.search_model_versions("name = 'm'")] == ["1"]
    assert len(client.search_runs([client.get_experiment_by_name("medpipe").experiment_id])) == runs_before
    assert client.get_model_version("m", "1").tags["model.sha256"]

    other_params = register.run(cfg(experiment="other"), INPUTS, OUTPUTS)  # params differ
    assert other_params["version"] == "2" and "identical_to" not in other_params
    write_register_inputs(in_tmp, metrics(0.8), model_bytes=b"another model, same scores")
    changed = register.run(cfg(), INPUTS, OUTPUTS)
    assert changed["version"] == "3" and "identical_to" not in changed
