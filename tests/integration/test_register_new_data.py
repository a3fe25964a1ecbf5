"""register with the `changes` stage's outputs: the gate's new-data check refuses, says so, and logs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.changes_inputs import changes_doc, scored_rows, write_challenger_predictions, write_changes
from helpers.register_inputs import INPUTS, OUTPUTS, cfg, metrics, write_register_inputs
from mlflow import MlflowClient

from pipeline.stages import register

CHANGES_INPUTS = INPUTS | {
    "changes_gate": Path("reports/changes_gate.json"),
    "changes": Path("reports/changes.json"),
    "changes_dir": Path("reports/changes"),
    "plots": Path("reports/eval"),
}


@pytest.fixture
def tracking(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MEDPIPE_LINEAGE_DB", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    return uri


def test_worse_on_new_data_refuses_promotion_and_says_so(tracking: str, in_tmp: Path) -> None:
    # night 1: no changes stage output at all (an older project): registers, check not applicable
    write_register_inputs(in_tmp, metrics(0.80))
    first = register.run(cfg(), CHANGES_INPUTS, OUTPUTS)
    assert first["gate"]["promote"] and not first["gate"]["new_data"]["applicable"]
    assert "no reports/changes_gate.json" in first["gate"]["new_data"]["reason"]

    # night 2: better on the frozen test set (+0.10), but on 130 new test images ROC AUC 0.97
    # against the champion's 1.0: worse than the 0.02 margin
    write_register_inputs(in_tmp, metrics(0.90))
    write_changes(in_tmp, changes_doc(added=130), scored_rows(100, 30))
    write_challenger_predictions(in_tmp, scored_rows(100, 30, misranked=3))
    worse = register.run(cfg(), CHANGES_INPUTS, OUTPUTS)
    gate = worse["gate"]
    assert worse["version"] == "2" and not gate["promote"] and worse["aliases"] == ["challenger"]
    assert gate["reason"].startswith("refused on new data: on 130 new test images roc_auc 0.9700")
    assert gate["deltas"]["roc_auc"] == pytest.approx(0.10)  # the frozen-test comparison is kept
    assert gate["new_data"]["champion"] == pytest.approx(1.0) and not gate["new_data"]["pass"]

    page = (in_tmp / "reports/registered.html").read_text()
    for text in (
        "not promoted",
        "refused on new data",
        "On new data since the champion",
        "promotion refused",
    ):
        assert text in page, text
    assert "0.9700" in page and "1.0000" in page and "-0.0300" in page

    client = MlflowClient(tracking)
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
    version = client.get_model_version("m", "2")
    assert version.tags["gate.new_data.pass"] == "false" and version.tags["gate.decision"] == "reject"
    assert "FAILS: on 130 new test images" in version.description
    logged = {a.path for a in client.list_artifacts(worse["run_id"], "reports")}
    assert {"reports/changes.json", "reports/changes.html"} <= logged

    # night 3: within the margin on the new images, better on the frozen set: promoted
    write_register_inputs(in_tmp, metrics(0.95))
    write_challenger_predictions(in_tmp, scored_rows(100, 30, misranked=1))
    better = register.run(cfg(), CHANGES_INPUTS, OUTPUTS)
    assert better["gate"]["promote"] and better["gate"]["new_data"]["pass"], better["gate"]["reason"]
    assert "; new data: on 130 new test images" in better["gate"]["reason"]
