"""The nightly flow against the REAL dvc.yaml, in a temporary copy of the project with tiny params.

First run: every stage runs, v1 is registered and promoted (no champion yet), outputs are pushed
to a local DVC remote. Second run on unchanged data: ingest re-syncs, nothing else reruns, and the
flow says so instead of claiming a new model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.nightly_retrain import nightly_retrain
from flows.run_report import MARKDOWN_KEY

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "data": {"sample": {"patients": 12, "patches_per_patient": 40, "seed": 3}},
    "split": {"val_fraction": 0.2, "test_fraction": 0.25},
    "train": {"epochs": 2, "batch_size": 32},
    "evaluate": {"bootstrap": 20},
    "registry": {"model_name": "flow-idc"},
}

pytestmark = pytest.mark.slow


def _merge(base: dict, over: dict) -> dict:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    work = tmp_path / "proj"
    work.mkdir()
    for name in ("pipeline", "flows", "dvc.yaml", "pyproject.toml", ".dvcignore"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, work / name)
    params = _merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/checkpoints/\n/gx/\n/lineage.db\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "ci")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "ci@example.invalid")
    for args in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "flow test"],
    ):
        subprocess.run(args, cwd=work, check=True)
    return work


def test_nightly_flow_on_the_real_pipeline(harness, project, tmp_path):
    start = time.perf_counter()
    first = nightly_retrain(project_dir=str(project), network_retry_delay_s=1.0, return_state=True)
    print(f"\n[figure] nightly_retrain, real pipeline, tiny sample: {time.perf_counter() - start:.1f}s")
    assert first.is_completed(), first.message
    assert first.message.startswith("challenger v1 promoted to champion"), first.message
    record = json.loads((project / "reports/registered.json").read_text())
    assert record["model_name"] == "flow-idc" and "champion" in record["aliases"]
    assert 0.0 <= first.result()["metrics"]["roc_auc"] <= 1.0
    assert any(p.is_file() for p in (tmp_path / "remote").rglob("*")), "dvc push left the remote empty"

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[first.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts(artifact_filter=flt)}
    assert MARKDOWN_KEY in keys

    start = time.perf_counter()
    second = nightly_retrain(project_dir=str(project), push=False, return_state=True)
    print(f"[figure] nightly_retrain, nothing changed: {time.perf_counter() - start:.1f}s")
    assert second.is_completed(), second.message
    assert second.message.startswith("no change"), second.message
    rerun = second.result()["stages_run"]
    print(f"[figure] stages rerun on unchanged data: {rerun}")
    assert rerun[0] == "ingest" and not {"train", "evaluate", "register"} & set(rerun)
