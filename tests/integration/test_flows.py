"""The nightly retrain flow's mechanics, on a tiny FAKE DVC project under a temporary Prefect server.

The fake project's stages (ingest ... register) are cheap python one-liners writing the files the
real stages write (reports/metrics.json, reports/registered.json, ...), steered per test through
control.json: fail a stage, fail one once (a flaky network sync), sleep, set the challenger's and
the champion's roc_auc. The real pipeline is exercised in tests/e2e/test_flows_real.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from flows.dvc_runner import StageFailed, run_dvc
from flows.gpu_pool import NoCapacity, run_on_pool
from flows.nightly_retrain import nightly_retrain
from flows.run_report import LINK_KEY, MARKDOWN_KEY, TABLE_KEY
from flows.workspace_lock import file_lock

STAGES = ("ingest", "regroup", "validate", "split", "balance", "train", "evaluate", "register")
FAKE_STAGE = r"""
import json, os, subprocess, sys, time
from pathlib import Path

name = sys.argv[1]
ctl = json.loads(Path("control.json").read_text()) if Path("control.json").exists() else {}
with open("events.log", "a") as log:
    log.write(f"{name} start {time.time()}\n")
time.sleep(ctl.get("sleep", {}).get(name, 0))
print("tf-level", os.environ.get("TF_CPP_MIN_LOG_LEVEL"), "tqdm", os.environ.get("TQDM_DISABLE"))
if name in ctl.get("stderr", {}):
    print(ctl["stderr"][name], file=sys.stderr)
if name in ctl.get("fail_once", []) and not Path(f"failed-once-{name}").exists():
    Path(f"failed-once-{name}").touch()
    sys.exit(f"ERROR: simulated network error in {name}")
if name in ctl.get("fail", []):
    sys.exit(f"ERROR: simulated {name} failure")
if name == "ingest" and ctl.get("s3_source"):  # the real S3 source over HTTP (see test_faults_s3)
    from dataclasses import replace
    from pipeline.config import DataConfig
    from pipeline.core.errors import MedpipeError
    from pipeline.sources import sync
    try:
        sync(replace(DataConfig(), source=ctl["s3_source"], s3_endpoint_url=ctl["s3_endpoint"]), Path("s3raw"))
    except MedpipeError as exc:
        sys.exit(f"ERROR: {exc}")
outs = {
    "ingest": "data/raw.txt", "regroup": "data/interim.txt", "validate": "data/validated.txt",
    "split": "data/splits.txt", "balance": "data/balanced.txt", "train": "models/model.txt",
}
if name in outs:
    Path(outs[name]).parent.mkdir(parents=True, exist_ok=True)
    Path(outs[name]).write_text(f"{name} of data {ctl.get('data', 'v1')}\n")
elif name == "evaluate":
    Path("reports").mkdir(exist_ok=True)
    metrics = {"accuracy": 0.9, "roc_auc": ctl.get("roc_auc", 0.95), "sensitivity": 0.8, "ci": {"roc_auc": [0.8, 0.99]}}
    Path("reports/metrics.json").write_text(json.dumps(metrics))
    Path("reports/report.html").write_text("<html>report</html>")
elif name == "register":
    auc = json.loads(Path("reports/metrics.json").read_text())["roc_auc"]
    champ = ctl.get("champion_roc_auc")
    version = len(Path("registry.log").read_text().splitlines()) + 1 if Path("registry.log").exists() else 1
    with open("registry.log", "a") as reg:
        reg.write(f"v{version}\n")
    promote = champ is None or auc >= champ
    if champ is None:
        reason = "no champion yet"
    else:
        reason = f"roc_auc {auc:.2f} {'>=' if promote else '<'} champion {champ:.2f}"
    gate = {"promote": promote, "reason": reason, "champion_version": None if champ is None else 2}
    if champ is not None:
        gate["deltas"] = {"roc_auc": auc - champ}
    record = {"model_name": "fake-idc", "version": str(version), "run_id": "run123",
              "aliases": ["challenger", "champion"] if promote else ["challenger"], "gate": gate,
              "flow_run_id": os.environ.get("PREFECT__FLOW_RUN_ID"),
              "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()}
    Path("reports/registered.json").write_text(json.dumps(record))
with open("events.log", "a") as log:
    log.write(f"{name} end {time.time()}\n")
"""


def _dvc_yaml() -> dict:
    outs = {
        "ingest": "data/raw.txt",
        "regroup": "data/interim.txt",
        "validate": "data/validated.txt",
        "split": "data/splits.txt",
        "balance": "data/balanced.txt",
        "train": "models/model.txt",
    }
    stages, prev = {}, None
    for name in STAGES:
        stage: dict = {"cmd": f"python stage.py {name}", "deps": ["stage.py"] + ([prev] if prev else [])}
        if name in outs:
            stage["outs"] = [outs[name]]
            prev = outs[name]
        elif name == "evaluate":
            stage["metrics"] = [{"reports/metrics.json": {"cache": False}}]
            stage["outs"] = [{"reports/report.html": {"cache": False}}]
        else:
            stage["deps"] += ["reports/metrics.json"]
            stage["outs"] = [{"reports/registered.json": {"cache": False}}]
        stages[name] = stage
    return {"stages": stages}


@pytest.fixture(scope="session")
def harness(prefect_harness):
    """The session's Prefect server (tests/conftest.py)."""
    return None


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """git init + dvc init once; each test copies it."""
    root = tmp_path_factory.mktemp("fake") / "template"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    (root / "stage.py").write_text(FAKE_STAGE)
    (root / "dvc.yaml").write_text(yaml.safe_dump(_dvc_yaml(), sort_keys=False))
    return root


def copy_flow_project(template: Path, tmp_path: Path, **control) -> Path:
    project = tmp_path / "proj"
    shutil.copytree(template, project, symlinks=True)
    (project / "control.json").write_text(json.dumps(control))
    return project


def events(project: Path) -> list[tuple[str, str, float]]:
    path = project / "events.log"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(name, what, float(t)) for name, what, t in rows]


def run_flow(project: Path, **kwargs):
    kwargs.setdefault("network_retry_delay_s", 0.0)
    return nightly_retrain(project_dir=str(project), return_state=True, **kwargs)


def _client_call(fn):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return fn(client)


def artifacts_of(flow_run_id) -> dict[str, object]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    return {a.key: a for a in _client_call(lambda c: c.read_artifacts(artifact_filter=flt)) if a.key}


def task_runs_of(flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flt = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    return _client_call(lambda c: c.read_task_runs(flow_run_filter=flt))


def test_promoted_run_publishes_artifacts_pushes_and_tags_flow_run(harness, template, tmp_path):
    from prefect.exceptions import ObjectNotFound

    from flows.workspace_lock import GLOBAL_LIMIT

    try:  # a fresh server: the workspace limit does not exist yet
        _client_call(lambda c: c.delete_global_concurrency_limit_by_name(GLOBAL_LIMIT))
    except ObjectNotFound:
        pass
    project = copy_flow_project(template, tmp_path, roc_auc=0.95, champion_roc_auc=0.93)
    remote = tmp_path / "remote"
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(remote)], cwd=project, check=True
    )
    start = time.perf_counter()
    state = run_flow(project)
    print(f"\n[figure] nightly_retrain on the fake project: {time.perf_counter() - start:.1f}s")

    assert state.is_completed(), state.message
    assert state.message == "challenger v1 promoted to champion: roc_auc 0.95 >= champion 0.93"
    summary = state.result()
    assert summary["promoted"] is True and summary["metrics"]["roc_auc"] == pytest.approx(0.95)
    assert summary["stages_run"] == list(STAGES)
    assert [name for name, what, _ in events(project) if what == "start"] == list(STAGES)
    record = json.loads((project / "reports/registered.json").read_text())
    assert record["flow_run_id"] == str(state.state_details.flow_run_id)
    assert any(p.is_file() for p in remote.rglob("*")), "dvc push left the remote empty"

    found = artifacts_of(state.state_details.flow_run_id)
    assert {MARKDOWN_KEY, TABLE_KEY, LINK_KEY} <= set(found)
    md = found[MARKDOWN_KEY].data
    assert "promoted to champion" in md and "| roc_auc | 0.9500 | 0.9300 | +0.0200 |" in md
    table = found[TABLE_KEY].data
    table = json.loads(table) if isinstance(table, str) else table
    assert {row["metric"] for row in table} == {"accuracy", "roc_auc", "sensitivity"}
    assert (project / "reports/report.html").resolve().as_uri() in found[LINK_KEY].data  # local store
    limit = _client_call(lambda c: c.read_global_concurrency_limit_by_name(GLOBAL_LIMIT))
    assert limit.limit == 1  # created on first use, so later runs serialize instead of warning


def test_worse_model_after_a_flaky_sync_completes_without_promotion(harness, template, tmp_path):
    project = copy_flow_project(template, tmp_path, roc_auc=0.91, champion_roc_auc=0.93, fail_once=["ingest"])
    state = run_flow(project, push=False)
    assert state.is_completed(), state.message
    assert state.message == "challenger v1 not promoted: roc_auc 0.91 < champion 0.93"
    assert state.result()["promoted"] is False
    assert "not promoted" in artifacts_of(state.state_details.flow_run_id)[MARKDOWN_KEY].data
    # the network task failed once and was retried; non-network tasks ran once
    assert [name for name, what, _ in events(project) if what == "start"].count("ingest") == 2
    runs = task_runs_of(state.state_details.flow_run_id)
    sync = [t for t in runs if t.name.startswith("sync-data")]
    assert len(sync) == 1 and sync[0].run_count == 2 and sync[0].state.is_completed()
    assert all(t.run_count == 1 for t in runs if not t.name.startswith("sync-data"))


def retry_delays(flow_run_id, task_prefix: str) -> list[float]:
    """Seconds between each AwaitingRetry state of the flow run's `task_prefix` task and the time
    it was scheduled for: the backoff Prefect applied, in order."""
    (task_run,) = [t for t in task_runs_of(flow_run_id) if t.name.startswith(task_prefix)]
    states = sorted(_client_call(lambda c: c.read_task_run_states(task_run.id)), key=lambda st: st.timestamp)
    return [
        (st.state_details.scheduled_time - st.timestamp).total_seconds()
        for st in states
        if st.name == "AwaitingRetry"
    ]


def test_s3_outage_retries_sync_with_backoff_then_fails_saying_why(
    harness, template, tmp_path, moto_endpoint, aws_env, monkeypatch
):
    import boto3
    from test_faults_s3 import FaultPolicy, FaultProxy

    from flows.tasks import NETWORK_RETRIES

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket="flow-src")
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").put_object(
        Bucket="flow-src", Key="idc/a.png", Body=b"png bytes"
    )
    proxy = FaultProxy(moto_endpoint, FaultPolicy(throttle_all=True))  # S3 answers only SlowDown / 429
    try:
        project = copy_flow_project(template, tmp_path, s3_source="s3://flow-src/idc", s3_endpoint=proxy.url)
        state = run_flow(project, push=False, network_retry_delay_s=0.4)
        assert state.is_failed()
        assert "dvc repro --force --single-item ingest" in state.message, state.message
        assert "S3 throttled requests for s3://flow-src/idc" in state.message, state.message
        starts = [t for name, what, t in events(project) if (name, what) == ("ingest", "start")]
        assert len(starts) == NETWORK_RETRIES + 1 and {n for n, _, _ in events(project)} == {"ingest"}
        # the backoff Prefect scheduled (not wall gaps between attempts: under load a failing attempt's
        # own dvc start-up takes seconds): 0.4, 0.8, 1.6 s, jittered within [0.63x, 1.5x] (clamped Poisson)
        delays = retry_delays(state.state_details.flow_run_id, "sync-data")
        assert len(delays) == NETWORK_RETRIES, delays
        for i, delay in enumerate(delays):
            base = 0.4 * 2**i
            assert 0.6 * base <= delay <= 1.5 * base + 0.05, delays
        assert not (project / "reports/registered.json").exists() and not (project / "s3raw").exists()

        proxy.policy = FaultPolicy(throttle_first=1)  # the outage is over but for one more refusal
        state = run_flow(project, push=False)
        assert state.is_completed(), state.message
        assert (project / "s3raw" / "a.png").read_bytes() == b"png bytes"
        sync = [t for t in task_runs_of(state.state_details.flow_run_id) if t.name.startswith("sync-data")]
        assert [t.run_count for t in sync] == [2]
    finally:
        proxy.stop()


def test_training_failure_fails_run_and_registers_nothing(harness, template, tmp_path):
    project = copy_flow_project(template, tmp_path, fail=["train"])
    state = run_flow(project, push=False)
    assert state.is_failed()
    assert "dvc repro train" in state.message and "simulated train failure" in state.message
    ran = {name for name, _, _ in events(project)}
    assert "train" in ran and not ran & {"evaluate", "register"}
    assert not (project / "reports/registered.json").exists()
    assert not artifacts_of(state.state_details.flow_run_id)


def _git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_dvc_lock_is_committed_before_register_and_nothing_else(harness, template, tmp_path):
    project = copy_flow_project(template, tmp_path, roc_auc=0.95)
    (project / "notes.md").write_text("v1\n")
    _git(project, "add", "-A")
    _git(project, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-qm", "project")
    (project / "notes.md").write_text("user work in progress\n")  # a dirty tracked file: stays dirty
    state = run_flow(project, push=False)
    assert state.is_completed(), state.message

    head = _git(project, "rev-parse", "HEAD")
    record = json.loads((project / "reports/registered.json").read_text())
    assert record["git_commit"] == head  # register ran on the commit that holds the lock
    committed = set(_git(project, "show", "--name-only", "--format=", "HEAD").split())
    # dvc.lock, the cache:false metrics of that model (so `dvc metrics diff` at HEAD is its numbers)
    # and DVC's .gitignore entries; registered.json (a cache:false out, not a metric) stays out
    assert committed == {"dvc.lock", "reports/metrics.json", "data/.gitignore", "models/.gitignore"}
    lock = yaml.safe_load(_git(project, "show", "HEAD:dvc.lock"))
    assert {"ingest", "train", "evaluate"} <= set(lock["stages"]) and "register" not in lock["stages"]
    assert state.result()["lock_commit"]["head"] == head
    # the user's change stays uncommitted (and unstaged); dvc.lock now also holds register's own entry
    assert set(_git(project, "diff", "--name-only").split()) == {"notes.md", "dvc.lock"}
    assert json.loads(_git(project, "show", "HEAD:reports/metrics.json"))["roc_auc"] == 0.95
    assert _git(project, "diff", "--cached", "--name-only") == ""

    state = run_flow(project, push=False, commit_lock=False)
    assert state.is_completed() and _git(project, "rev-parse", "HEAD") == head


def test_busy_workspace_fails_fast_with_a_clear_state(harness, template, tmp_path):
    project = copy_flow_project(template, tmp_path)
    with file_lock(project, wait_s=0, holder_id="other-run-id"):  # what a running flow holds
        state = run_flow(project, push=False)
    assert state.is_failed()
    assert "is busy: flow run other-run-id" in state.message, state.message
    assert not events(project)  # nothing ran


def test_overlapping_runs_fail_fast_or_serialize(harness, template, tmp_path):
    project = copy_flow_project(template, tmp_path, sleep={"train": 4})
    states: dict[str, object] = {}

    def launch(key: str, **kwargs) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: states.__setitem__(key, run_flow(project, push=False, **kwargs))
        )
        thread.start()
        return thread

    first = launch("first")
    deadline = time.time() + 120
    while not any(n == "train" for n, _, _ in events(project)):
        assert time.time() < deadline and first.is_alive(), "first run never reached train"
        time.sleep(0.2)
    busy = run_flow(project, push=False, lock_wait_s=0)  # while the first one trains
    waiter = launch("waiter", lock_wait_s=120)
    first.join(180)
    waiter.join(180)

    assert busy.is_failed() and "is busy" in busy.message, busy.message
    assert states["first"].is_completed(), states["first"].message
    assert states["waiter"].is_completed(), states["waiter"].message
    assert states["waiter"].message.startswith("no change"), states["waiter"].message
    assert states["waiter"].result()["stages_run"] == ["ingest"]  # forced re-sync; the rest was up to date
    log = events(project)
    first_done = max(t for name, what, t in log if (name, what) == ("register", "end"))
    ingests = [t for name, what, t in log if (name, what) == ("ingest", "start")]
    assert len(ingests) == 2 and ingests[1] > first_done  # the waiter ran strictly after the first run


def test_global_concurrency_limit_is_honoured(harness, template, tmp_path):
    from prefect.concurrency.sync import concurrency

    from flows.workspace_lock import GLOBAL_LIMIT

    project = copy_flow_project(template, tmp_path)
    _client_call(lambda c: c.upsert_global_concurrency_limit_by_name(GLOBAL_LIMIT, 1))
    try:
        with concurrency(GLOBAL_LIMIT, occupy=1, strict=True):  # another workspace's run holds the slot
            state = run_flow(project, push=False)
    finally:
        _client_call(lambda c: c.delete_global_concurrency_limit_by_name(GLOBAL_LIMIT))
    assert state.is_failed() and f"'{GLOBAL_LIMIT}' is fully occupied" in state.message, state.message
    assert not events(project)


def test_stage_timeout_kills_the_stage(tmp_path, template):
    project = copy_flow_project(template, tmp_path, sleep={"ingest": 60})
    start = time.perf_counter()
    with pytest.raises(StageFailed, match="ran past its 8s timeout"):
        run_dvc(["repro", "ingest"], project, timeout_s=8)  # dvc starts in ~1-5 s
    assert time.perf_counter() - start < 40  # not the stage's 60 s
    time.sleep(0.5)
    assert [what for name, what, _ in events(project)] == ["start"]  # killed: never wrote its end


def test_gpu_pool_routes_train_through_the_train_gpu_deployment(harness, template, tmp_path):
    """`train_stage` served from another process (as a `gpu` pool worker would run it)."""
    import os
    import signal

    from prefect.settings import PREFECT_API_URL

    project = copy_flow_project(template, tmp_path)
    env = dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT_RUNNER_POLL_FREQUENCY="1")
    serve_code = "from flows.train_gpu import train_stage; train_stage.serve(name='train-gpu')"
    server = subprocess.Popen([sys.executable, "-c", serve_code], env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                _client_call(lambda c: c.read_deployment_by_name("train-stage/train-gpu"))
                break
            except Exception:
                assert time.time() < deadline and server.poll() is None, "train-gpu was never served"
                time.sleep(1)
        state = run_flow(project, push=False, gpu_pool=True, gpu_handoff="shared", gpu_poll_s=1)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    assert state.is_completed(), state.message
    assert [name for name, what, _ in events(project) if what == "start"] == list(STAGES)
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    flt = FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
    )
    children = _client_call(lambda c: c.read_flow_runs(flow_run_filter=flt))
    assert [c.deployment_id is not None and c.state.is_completed() for c in children] == [True]


def test_stage_stderr_keeps_its_level_and_children_run_quiet(template, tmp_path, monkeypatch):
    import logging

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    noise = "12:00:01 WARNING pipeline.x: 3 files skipped\nUserWarning: odd\n12:00:02 INFO pipeline.x: done"
    project = copy_flow_project(template, tmp_path, stderr={"ingest": noise})
    records: list[tuple[int, str]] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage().strip()))

    logger = logging.getLogger("test.relay")
    logger.addHandler(Keep())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    run_dvc(["repro", "ingest"], project, timeout_s=120, logger=logger)
    level = {message: lvl for lvl, message in records}
    assert level["12:00:01 WARNING pipeline.x: 3 files skipped"] == logging.WARNING
    assert level["UserWarning: odd"] == logging.WARNING  # unlabelled stderr: at least a warning
    assert level["12:00:02 INFO pipeline.x: done"] == logging.INFO  # the stages' logging writes to stderr
    assert level["Running stage 'ingest':"] == logging.INFO
    assert level["tf-level 2 tqdm 1"] == logging.INFO  # TF/absl and tqdm quiet in the child

    records.clear()
    (project / "control.json").write_text(json.dumps({"fail": ["regroup"]}))
    with pytest.raises(StageFailed, match="simulated regroup failure"):
        run_dvc(["repro", "regroup"], project, timeout_s=120, logger=logger)
    errors = [message for lvl, message in records if lvl == logging.ERROR]
    assert "ERROR: simulated regroup failure" in errors, records
    assert any(m.startswith("ERROR: failed to reproduce") for m in errors), records


def test_a_traceback_on_stderr_is_logged_at_error():
    import io
    import logging

    from flows.dvc_runner import _relay

    records: list[tuple[int, str]] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage().strip()))

    logger = logging.getLogger("test.traceback")
    logger.addHandler(Keep())
    logger.propagate = False
    text = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad\nafter it\n'
    _relay(io.StringIO(text), [], logger, True)
    assert [lvl for lvl, _ in records] == [logging.ERROR] * 3 + [logging.WARNING]
    lines: list[str] = []
    _relay(io.StringIO("botocore: could not reach http://k:se/cr+et@127.0.0.1:1/b\n"), lines, logger, True)
    assert lines == ["botocore: could not reach http://***@127.0.0.1:1/b"] and "cr+et" not in records[-1][1]


def _deployment_on(pool: str) -> str:
    """A `train-stage` deployment on work pool `pool` (created when missing): nothing polls it."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    def make(client):
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            pass
        flow_id = client.create_flow_from_name("train-stage")
        client.create_deployment(
            flow_id=flow_id,
            name=f"train-gpu-{pool}",
            work_pool_name=pool,
            entrypoint="flows/train_gpu.py:train_stage",
        )

    _client_call(make)
    return f"train-stage/train-gpu-{pool}"


def _runs_of(deployment: str) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    dep = _client_call(lambda c: c.read_deployment_by_name(deployment))
    flt = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[dep.id]))
    return _client_call(lambda c: c.read_flow_runs(flow_run_filter=flt))


def test_gpu_pool_without_a_worker_fails_at_once_and_starts_nothing(harness, template, tmp_path):
    deployment = _deployment_on("gpu-idle")
    project = copy_flow_project(template, tmp_path)
    state = run_flow(project, push=False, gpu_pool=True, gpu_handoff="shared", gpu_deployment=deployment)
    assert state.is_failed()
    assert state.message.count("\n") == 0, state.message
    assert (
        f"train not sent to deployment {deployment}: no worker is polling work pool 'gpu-idle'"
        in state.message
    )
    assert "last heartbeat never" in state.message and "prefect worker start --pool gpu-idle" in state.message
    assert "train" not in {name for name, _, _ in events(project)}
    assert not (project / "reports/registered.json").exists()
    assert _runs_of(deployment) == []  # no child run was created, so none is left Late

    start = time.perf_counter()
    with pytest.raises(NoCapacity, match="no worker is polling"):
        run_on_pool(deployment, {"project_dir": str(project)}, timeout_s=3600, poll_s=1)
    print(f"\n[figure] GPU pool without a worker: refused in {time.perf_counter() - start:.2f}s")


def test_a_worker_that_stops_polling_cancels_the_waiting_child(harness):
    deployment = _deployment_on("gpu-gone")
    _client_call(lambda c: c.send_worker_heartbeat("gpu-gone", "gpu-host-1", heartbeat_interval_seconds=1))
    start = time.perf_counter()
    with pytest.raises(
        NoCapacity, match="cancelled before it started: no worker is polling work pool 'gpu-gone'"
    ):
        run_on_pool(deployment, {"project_dir": "/srv/medpipe"}, timeout_s=3600, poll_s=0.5)
    elapsed = time.perf_counter() - start
    print(f"\n[figure] worker gone (heartbeat 1 s): child cancelled after {elapsed:.1f}s")
    assert elapsed < 60  # 3 missed heartbeats + a poll, not the train timeout
    (child,) = _runs_of(deployment)
    assert child.state.is_cancelled(), child.state
