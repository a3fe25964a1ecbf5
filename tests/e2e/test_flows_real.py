"""The nightly flow against the REAL dvc.yaml, in a temporary copy of the project with tiny params.

The source is a local IDC folder (tests/helpers/source_changes.py). First run: every stage runs,
the `changes` stage writes a baseline (no champion yet), v1 is registered and promoted, outputs are
pushed to a local DVC remote. Second run on unchanged data: ingest re-syncs, only `changes` (always
run) follows, nothing downstream reruns, and the flow says so instead of claiming a new model.
Third run after the source changed (new patients, a patient gone, a relabelled batch, re-encoded
images): `changes` compares with champion v1 and counts each kind, the flow publishes its artifact,
a challenger is trained and the gate's new-data check is on record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from helpers import source_changes
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project

from flows.changes_report import CHANGES_KEY
from flows.nightly_retrain import nightly_retrain
from flows.run_report import MARKDOWN_KEY

# a child's line that names its own level: MLflow's dated lines, medpipe's and DVC's timed lines
NAMED_LEVEL = re.compile(
    r"^\s*(?:\d{4}/\d\d/\d\d )?\d\d:\d\d:\d\d(?:[.,]\d+)? (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    project = make_git_dvc_project(
        tmp_path / "proj", "flow-idc", dict(os.environ), dvc_remote=tmp_path / "remote"
    )
    source_changes.write_source(tmp_path / "source")
    source_changes.use_source(project, tmp_path / "source")
    subprocess.run(["git", "commit", "-qam", "data.source: a local folder"], cwd=project, check=True)
    return project


def _artifact_keys(flow_run_id) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts(artifact_filter=flt)}


def test_nightly_flow_on_the_real_pipeline(prefect_harness, project, tmp_path, caplog, capfd):
    caplog.set_level(logging.INFO, logger="prefect")
    start = time.perf_counter()
    first = nightly_retrain(project_dir=str(project), network_retry_delay_s=1.0, return_state=True)
    print(f"\n[figure] nightly_retrain, real pipeline, tiny sample: {time.perf_counter() - start:.1f}s")
    assert first.is_completed(), first.message
    assert first.message.startswith("challenger v1 promoted to champion"), first.message
    record = json.loads((project / "reports/registered.json").read_text())
    assert record["model_name"] == "flow-idc" and "champion" in record["aliases"]
    assert 0.0 <= first.result()["metrics"]["roc_auc"] <= 1.0
    assert any(p.is_file() for p in (tmp_path / "remote").rglob("*")), "dvc push left the remote empty"
    # the flow committed dvc.lock before register: the version's git revision holds its lock
    from mlflow import MlflowClient

    git = lambda *a: subprocess.run(["git", *a], cwd=project, check=True, capture_output=True, text=True)  # noqa: E731
    head = git("rev-parse", "HEAD").stdout.strip()
    tags = MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_model_version("flow-idc", "1").tags
    assert tags["git.commit"] == head and tags["git.dirty"] == "false", tags
    assert "dvc.lock" in git("show", "--name-only", "--format=", "HEAD").stdout.split()
    assert tags["data.raw_md5"] in git("show", "HEAD:dvc.lock").stdout

    assert {MARKDOWN_KEY, CHANGES_KEY} <= _artifact_keys(first.state_details.flow_run_id)
    assert first.result()["changes"] == "baseline"

    start = time.perf_counter()
    second = nightly_retrain(project_dir=str(project), push=False, return_state=True)
    print(f"[figure] nightly_retrain, nothing changed: {time.perf_counter() - start:.1f}s")
    assert second.is_completed(), second.message
    assert second.message.startswith("no change"), second.message
    rerun = second.result()["stages_run"]
    print(f"[figure] stages rerun on unchanged data: {rerun}")
    assert rerun[0] == "ingest" and not {"train", "evaluate", "register"} & set(rerun)
    assert second.result()["changes"] == "compared"  # nothing new since v1

    source = tmp_path / "source"
    moved = source_changes.relabel(source, 4)
    touched = source_changes.regamma(source, 6)
    gone = source_changes.drop_patient(source)
    added = source_changes.add_patients(source, 2)
    start = time.perf_counter()
    third = nightly_retrain(project_dir=str(project), push=False, return_state=True)
    print(f"[figure] nightly_retrain after the source changed: {time.perf_counter() - start:.1f}s")
    assert third.is_completed(), third.message
    assert third.result()["changes"] == "compared" and "train" in third.result()["stages_run"]
    doc = json.loads((project / "reports/changes.json").read_text())
    assert str(doc["champion"]["version"]) == "1", doc["champion"]
    both = set(moved) & set(touched)  # relabelled, then re-encoded: a new path with new bytes
    gone_now = {p for p in gone if p not in moved}
    assert doc["relabelled"] == len([p for p in moved if p not in both and p not in gone]), doc
    assert doc["changed"] == len([p for p in touched if p not in set(moved) and p not in gone]), doc
    assert doc["added"] >= len(added) and doc["removed"] >= len(gone_now) > 0, doc
    assert doc["patients"]["new"] == 2 and doc["patients"]["gone"] == 1, doc["patients"]
    assert doc["champion_on_new"]["n"] > 0, doc["champion_on_new"]
    assert CHANGES_KEY in _artifact_keys(third.state_details.flow_run_id)
    record = json.loads((project / "reports/registered.json").read_text())
    assert str(record["version"]) == "2" and record["gate"]["new_data"]["reason"], record["gate"]
    run = MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_model_version("flow-idc", "2").run_id
    logged = {
        a.path for a in MlflowClient(f"sqlite:///{project / 'mlflow.db'}").list_artifacts(run, "reports")
    }
    assert {"reports/changes.json", "reports/changes.html"} <= logged, logged

    # offline: no telemetry error (Prefect's server heartbeat, client usage events), and every relayed
    # line that names its level is logged at that level (MLflow INFO lines are not WARNINGs)
    out, err = capfd.readouterr()
    assert "telemetry" not in (out + err).lower()
    flow_lines = [r for r in caplog.records if r.name.startswith(("prefect.flow_runs", "prefect.task_runs"))]
    assert any(NAMED_LEVEL.match(r.getMessage()) for r in flow_lines)  # relayed lines were captured
    assert not [r.getMessage() for r in caplog.records if "telemetry" in r.getMessage().lower()]
    changed = [
        (r.levelname, r.getMessage().strip())
        for r in flow_lines
        if (named := NAMED_LEVEL.match(r.getMessage())) and named[1] != r.levelname
    ]
    assert changed == []
