"""Training on a GPU host of its own: two checkouts that share only a git origin and
a DVC remote on S3 (moto's real server), as two hosts would.

CPU host: the tiny real project (tests/tiny_project.py) with `origin` = a bare repo and the DVC
remote in a moto bucket; the nightly flow runs there with gpu_pool=True, gpu_handoff="git".
GPU host: `train_stage` served from another process whose checkout is an empty directory of its
own (MEDPIPE_GPU_WORKDIR). It meets the parent only through the bare repo and the bucket.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import yaml
from helpers.git_dvc_project import GIT_ENV, make_git_dvc_project

from flows.nightly_retrain import nightly_retrain

DVC_YAML = """stages:
  prepare:
    cmd: python prepare.py
    outs: [data/prepared, {data/view: {cache: false}}]
  train:
    cmd: python train.py
    deps: [train.py, data/prepared/train.csv, data/view, data/extra]
    outs: [models, {checkpoints: {cache: false, persist: true}}]
"""


def _repo(root: Path) -> Path:
    root.mkdir()
    git(root, "init", "-q")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("train: {epochs: 1}\n")
    (root / "train.py").write_text("print('v1')\n")
    (root / "notes.md").write_text("v1\n")
    (root / "data").mkdir()
    (root / "data" / "extra.dvc").write_text("outs: [{path: extra}]\n")
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return _repo(tmp_path / "cpu")


def test_what_goes_through_dvc_and_what_through_git(repo):
    from flows import handoff

    # the cached out of another stage and a .dvc-tracked path go through the DVC remote;
    # code, a cache:false view, params.yaml and dvc.yaml travel with the commit
    assert handoff.dvc_deps(repo) == ["data/prepared/train.csv", "data/extra"]
    assert handoff.git_inputs(repo) == ["train.py", "data/view", "params.yaml", "dvc.yaml"]


def test_a_dirty_train_input_is_refused_other_changes_are_not(repo):
    from flows import handoff

    (repo / "notes.md").write_text("user work\n")
    handoff.require_clean(repo)  # not a train input
    (repo / "params.yaml").write_text("train: {epochs: 9}\n")
    with pytest.raises(handoff.HandoffFailed, match="trains the committed code, but params.yaml differ"):
        handoff.require_clean(repo)


def test_the_parent_takes_the_trained_commit_and_keeps_the_users_changes(repo, tmp_path):
    from flows import handoff

    git(repo, "clone", "-q", "--bare", str(repo), str(tmp_path / "origin.git"))
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    ref, base = handoff.publish(repo, "origin", "run-1")
    gpu = tmp_path / "gpu"
    handoff.checkout(gpu, str(tmp_path / "origin.git"), ref, base)
    assert git(gpu, "rev-parse", "HEAD") == base
    lock = "schema: '2.0'\nstages:\n  train:\n    outs:\n    - {path: checkpoints, md5: d751713988987e9331980363e24189ce.dir, nfiles: 0}\n"
    (gpu / "dvc.lock").write_text(lock)
    git(gpu, "commit", "-qam", "gpu host: dvc.lock after train")
    handoff.send_back(gpu, str(tmp_path / "origin.git"), "run-1")

    (repo / "notes.md").write_text("user work in progress\n")
    trained, files = handoff.take_trained(repo, "origin", "run-1", base)
    assert trained == git(gpu, "rev-parse", "HEAD") == git(repo, "rev-parse", "HEAD") and files == [
        "dvc.lock"
    ]
    assert (repo / "dvc.lock").read_text() == lock
    assert git(repo, "status", "--porcelain") == "M notes.md"  # only the user's change is left
    assert handoff.restore_empty_dirs(repo) == ["checkpoints"] and (repo / "checkpoints").is_dir()

    git(repo, "commit", "-qam", "user commit during training")
    with pytest.raises(handoff.HandoffFailed, match="moved during training"):
        handoff.take_trained(repo, "origin", "run-1", base)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def lock_entry(text: str, stage: str) -> dict:
    return yaml.safe_load(text)["stages"][stage]


@pytest.fixture
def cpu_host(tmp_path, moto_endpoint, aws_env, monkeypatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket="handoff")
    root = make_git_dvc_project(tmp_path / "cpu-host", "handoff-idc", dict(os.environ))
    dvc = [sys.executable, "-m", "dvc"]
    for args in (
        [*dvc, "remote", "add", "-d", "s3", "s3://handoff/dvc"],
        [*dvc, "remote", "modify", "s3", "endpointurl", moto_endpoint],
        ["git", "commit", "-qam", "DVC remote on S3"],
        ["git", "clone", "-q", "--bare", str(root), str(tmp_path / "origin.git")],
        ["git", "remote", "add", "origin", str(tmp_path / "origin.git")],
    ):
        subprocess.run(args, cwd=root, check=True, capture_output=True)
    return root


def test_train_goes_to_a_gpu_host_through_git_and_the_dvc_remote(
    cpu_host, tmp_path, moto_endpoint, prefect_harness
):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    gpu_dir = tmp_path / "gpu-host"
    start_head = git(cpu_host, "rev-parse", "HEAD")
    env = dict(
        os.environ,
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        MEDPIPE_GPU_WORKDIR=str(gpu_dir),
    )
    serve_code = "from flows.train_gpu import train_stage; train_stage.serve(name='train-gpu')"
    with (tmp_path / "gpu-host.log").open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", serve_code], env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        deadline = time.time() + 120
        while True:
            with get_client(sync_client=True) as client:
                try:
                    if client.read_deployment_by_name("train-stage/train-gpu").last_polled:
                        break
                except Exception:
                    pass
            assert time.time() < deadline and server.poll() is None, "train-gpu was never served"
            time.sleep(1)
        began = time.perf_counter()
        state = nightly_retrain(
            project_dir=str(cpu_host),
            gpu_pool=True,
            gpu_handoff="git",
            gpu_poll_s=1,
            network_retry_delay_s=1.0,
            return_state=True,
        )
        print(f"\n[figure] nightly_retrain with the git + S3 hand-off: {time.perf_counter() - began:.1f}s")
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        flt = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        with get_client(sync_client=True) as client:
            parent_tasks = {t.name for t in client.read_task_runs(flow_run_filter=flt)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)

    assert state.is_completed(), state.message + "\n" + (tmp_path / "gpu-host.log").read_text()[-3000:]
    assert state.message.startswith("challenger v1 promoted to champion"), state.message
    assert "train" in state.result()["stages_run"]
    local = [n for n in parent_tasks if n == "repro-train" or n == "train" or n.startswith("train-")]
    assert all(n.startswith(("train-status", "train-stage")) for n in local), parent_tasks  # no local train

    # the GPU host trained in its own checkout, pulled only train's deps (never data/raw) ...
    run_id = str(state.state_details.flow_run_id)
    gpu_head = git(gpu_dir, "rev-parse", "HEAD")
    handed = git(cpu_host, "rev-parse", f"refs/medpipe/trained/{run_id}")
    assert gpu_head == handed and git(gpu_dir, "rev-parse", "HEAD^") == git(
        gpu_dir, "rev-parse", f"refs/medpipe/handoff/{run_id}"
    )
    assert git(gpu_dir, "log", "-1", "--format=%s", "HEAD").startswith(
        "gpu host: dvc.lock after train (train)"
    )
    assert set(git(gpu_dir, "show", "--name-only", "--format=", "HEAD").split()) >= {
        "dvc.lock",
        "reports/train/history.csv",
    }
    assert (gpu_dir / "models").is_dir()
    assert not (gpu_dir / "data" / "raw").exists()  # train reads data/preprocessed only: raw never pulled

    # ... and the parent took that commit and the model from the S3 remote instead of retraining
    subprocess.run(["git", "merge-base", "--is-ancestor", gpu_head, "HEAD"], cwd=cpu_host, check=True)
    assert git(cpu_host, "rev-list", "--count", f"{start_head}..HEAD") == "3"  # hand-off, GPU, pre-register
    assert digests(cpu_host / "models") == digests(gpu_dir / "models")
    assert lock_entry((cpu_host / "dvc.lock").read_text(), "train") == lock_entry(
        (gpu_dir / "dvc.lock").read_text(), "train"
    )
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="handoff")["Contents"]]
    outs = lock_entry((gpu_dir / "dvc.lock").read_text(), "train")["outs"]
    model_md5 = next(o["md5"] for o in outs if o["path"] == "models")
    assert any(key.endswith(model_md5[2:]) for key in keys), keys  # the GPU host pushed the model

    from mlflow import MlflowClient

    tags = MlflowClient(f"sqlite:///{cpu_host / 'mlflow.db'}").get_model_version("handoff-idc", "1").tags
    assert tags["git.commit"] == git(cpu_host, "rev-parse", "HEAD") and tags["git.dirty"] == "false", tags
