"""The nightly flow's `changes` step, on a tiny FAKE DVC project under a temporary Prefect server:
it runs after the data stages and before train, publishes the `nightly-changes` artifact, and the
run goes on whatever the changes stage reports, even when it crashes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.changes_inputs import changes_doc

from flows.changes_report import CHANGES_KEY
from flows.nightly_retrain import nightly_retrain

FAKE_STAGE = r"""
import json, sys
from pathlib import Path

name = sys.argv[1]
ctl = json.loads(Path("control.json").read_text())
with open("events.log", "a") as log:
    log.write(name + "\n")
outs = {"ingest": "data/raw.txt", "validate": "data/validated.txt", "train": "models/model.txt"}
Path("reports").mkdir(exist_ok=True)
if name in outs:
    Path(outs[name]).parent.mkdir(parents=True, exist_ok=True)
    Path(outs[name]).write_text(name)
elif name == "changes":
    if ctl.get("changes_crash"):
        sys.exit("Traceback (most recent call last):\nRuntimeError: simulated crash of the changes stage")
    Path("reports/changes.json").write_text(json.dumps(ctl["changes"]))
elif name == "evaluate":
    Path("reports/metrics.json").write_text(json.dumps({"roc_auc": 0.9, "sensitivity": 0.8}))
elif name == "register":
    gate = {"promote": True, "reason": "no champion yet"}
    record = {"model_name": "fake", "version": "1", "run_id": "r1", "aliases": ["champion"], "gate": gate}
    Path("reports/registered.json").write_text(json.dumps(record))
"""


def _dvc_yaml() -> dict:
    def stage(name: str, deps: list[str], **more) -> dict:
        return {"cmd": f"python stage.py {name}", "deps": ["stage.py", *deps], **more}

    return {
        "stages": {
            "ingest": stage("ingest", [], outs=["data/raw.txt"]),
            "validate": stage("validate", ["data/raw.txt"], outs=["data/validated.txt"]),
            "changes": stage(
                "changes",
                ["data/validated.txt"],
                outs=[{"reports/changes.json": {"cache": False}}],
                always_changed=True,
            ),
            "train": stage("train", ["data/validated.txt"], outs=["models/model.txt"]),
            "evaluate": stage(
                "evaluate", ["models/model.txt"], outs=[{"reports/metrics.json": {"cache": False}}]
            ),
            "register": stage(
                "register", ["reports/metrics.json"], outs=[{"reports/registered.json": {"cache": False}}]
            ),
        }
    }


def _project(tmp_path: Path, **control) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    (root / "stage.py").write_text(FAKE_STAGE)
    (root / "dvc.yaml").write_text(yaml.safe_dump(_dvc_yaml(), sort_keys=False))
    (root / "control.json").write_text(json.dumps(control))
    return root


def _changes_artifact(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        found = {a.key: a for a in client.read_artifacts(artifact_filter=flt) if a.key}
    return found[CHANGES_KEY].data


@pytest.mark.parametrize("crash", [False, True], ids=["unavailable", "crash"])
def test_changes_step_runs_before_train_and_never_stops_the_run(prefect_harness, tmp_path, crash) -> None:
    doc = changes_doc("unavailable", added=4)
    project = _project(tmp_path, changes=doc, changes_crash=crash)
    state = nightly_retrain(project_dir=str(project), push=False, commit_lock=False, return_state=True)
    assert state.is_completed(), state.message
    order = (project / "events.log").read_text().split()
    assert order.index("validate") < order.index("changes") < order.index("train")
    summary = state.result()
    md = _changes_artifact(state.state_details.flow_run_id)
    if crash:
        assert summary["changes"] == "failed"
        assert "**Status:** failed: " in md and "went on without the changes report" in md
    else:
        assert summary["changes"] == "unavailable" and "changes" in summary["stages_run"]
        assert "**Status:** unavailable: the champion's manifests are gone" in md
        assert "| 4 | 0 | 0 | 0 |" in md
