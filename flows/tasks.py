"""Prefect tasks of the nightly retrain: each one is a `dvc` command (see dvc_runner).

Only the network-bound tasks (sync-data, dvc-push) retry, with exponential backoff; every task
has a timeout. The `train` task carries the tag `gpu`: `prefect concurrency-limit create gpu 1`
makes at most one training run at a time on this Prefect server.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from flows.dvc_runner import StageFailed, default_remote, run_dvc
from flows.lock_commit import commit_dvc_lock

NETWORK_RETRIES = 3
SYNC_TIMEOUT_S = 2 * 3600
STAGE_TIMEOUT_S = 2 * 3600
TRAIN_TIMEOUT_S = 8 * 3600
REGISTER_TIMEOUT_S = 1800
COMMIT_TIMEOUT_S = 120
PUSH_TIMEOUT_S = 2 * 3600
REGISTERED = "reports/registered.json"
CHANGES = "reports/changes.json"
METRICS = "reports/metrics.json"


# Only network-bound tasks retry, with exponential backoff and jitter; the rest fail at once.
NETWORK_TASK = {
    "retries": NETWORK_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=30),
    "retry_jitter_factor": 0.5,
    "tags": ["network"],
}


def _run(args: list[str], project_dir: str, timeout_s: float):
    return run_dvc(args, Path(project_dir), timeout_s, get_run_logger(), flow_run.id)


@task(name="sync-data", timeout_seconds=SYNC_TIMEOUT_S, **NETWORK_TASK)
def sync_data(project_dir: str) -> dict:
    """`dvc pull` when a default remote is configured, then re-sync the source: `dvc repro -f -s ingest`."""
    remote = default_remote(Path(project_dir))
    if remote:
        _run(["pull", "--allow-missing"], project_dir, SYNC_TIMEOUT_S)
    else:
        get_run_logger().info("no default DVC remote configured: skipping dvc pull")
    result = _run(["repro", "--force", "--single-item", "ingest"], project_dir, SYNC_TIMEOUT_S)
    return {"pulled_from": remote, "ran": result.ran}


@task(name="dvc-repro", task_run_name="repro-{stage}", timeout_seconds=STAGE_TIMEOUT_S)
def repro_stage(project_dir: str, stage: str) -> list[str]:
    """`dvc repro <stage>`: reruns it (and anything upstream) only when its deps or params changed."""
    return _run(["repro", stage], project_dir, STAGE_TIMEOUT_S).ran


@task(name="changes", timeout_seconds=STAGE_TIMEOUT_S)
def repro_changes(project_dir: str) -> dict:
    """`dvc repro changes`, then reports/changes.json plus {"ran": stages run}. Never fails the
    run: a failed stage or an unreadable summary comes back as {"status": "failed", "reason"}."""
    try:
        ran = _run(["repro", "changes"], project_dir, STAGE_TIMEOUT_S).ran
        doc = read_json(Path(project_dir) / CHANGES, "changes")
    except StageFailed as exc:
        get_run_logger().warning("the changes report is missing; the run goes on without it: %s", exc)
        return {"status": "failed", "reason": str(exc).splitlines()[0], "ran": []}
    get_run_logger().info("changes since the champion: %s (%s)", doc.get("status"), doc.get("reason"))
    return doc | {"ran": ran}


@task(name="train", tags=["gpu"], timeout_seconds=TRAIN_TIMEOUT_S)
def train_model(project_dir: str) -> list[str]:
    """`dvc repro train`, tagged `gpu` so a tag concurrency limit routes it to one slot at a time."""
    return _run(["repro", "train"], project_dir, TRAIN_TIMEOUT_S).ran


@task(name="commit-dvc-lock", timeout_seconds=COMMIT_TIMEOUT_S)
def commit_lock_files(project_dir: str) -> dict:
    """git-commit dvc.lock (+ DVC's .gitignore entries) only, so register records a revision holding them."""
    done = commit_dvc_lock(Path(project_dir), f"nightly: dvc.lock of flow run {flow_run.id}")
    get_run_logger().info(done.note)
    return {"head": done.head, "files": list(done.files), "note": done.note}


@task(name="gate-and-register", timeout_seconds=REGISTER_TIMEOUT_S)
def register_model(project_dir: str) -> dict:
    """`dvc repro register` (MLflow version + champion gate); returns reports/registered.json + whether it ran."""
    ran = _run(["repro", "register"], project_dir, REGISTER_TIMEOUT_S).ran
    return {
        "ran": "register" in ran,
        "stages_run": ran,
        "record": read_json(Path(project_dir) / REGISTERED, "register"),
    }


@task(name="dvc-push", timeout_seconds=PUSH_TIMEOUT_S, **NETWORK_TASK)
def push_outputs(project_dir: str) -> str | None:
    """`dvc push` to the default remote (skipped when none is configured); returns the remote name."""
    remote = default_remote(Path(project_dir))
    if not remote:
        get_run_logger().info("no default DVC remote configured: skipping dvc push")
        return None
    _run(["push"], project_dir, PUSH_TIMEOUT_S)
    return remote


def read_json(path: Path, stage: str) -> dict:
    """A stage's JSON output, or StageFailed naming the stage that should have written it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise StageFailed(f"{path} is missing; the {stage} stage should have written it") from None
    except ValueError as exc:
        raise StageFailed(f"{path} is not valid JSON ({exc}); rerun `dvc repro -f {stage}`") from None
    if not isinstance(data, dict):
        raise StageFailed(f"{path} must hold a JSON object; rerun `dvc repro -f {stage}`")
    return data
