"""The parent's side of training on the `gpu` pool (flows.train_gpu runs on the worker).

`dvc status train` first: when train is up to date nothing is sent to the GPU host at all.
handoff="git": flows/handoff.py (commit + push the revision and the deps, run the child, take
its commit back, `dvc pull train`). handoff="shared": the child runs in the same directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from flows import handoff as ho
from flows.dvc_runner import StageFailed
from flows.gpu_pool import run_on_pool
from flows.lock_commit import commit_dvc_lock
from flows.tasks import COMMIT_TIMEOUT_S, NETWORK_TASK, PUSH_TIMEOUT_S, SYNC_TIMEOUT_S, _run

GPU_DEPLOYMENT = "train-stage/train-gpu"


@task(name="train-status", timeout_seconds=SYNC_TIMEOUT_S)
def train_is_stale(project_dir: str) -> bool:
    """`dvc status --json train` (this stage only): anything changed since its dvc.lock entry?"""
    out = _run(["status", "--json", ho.TRAIN], project_dir, SYNC_TIMEOUT_S).output
    found = [line for line in out.splitlines() if line.startswith("{")]
    return bool(json.loads(found[-1])) if found else True


@task(name="commit-for-handoff", timeout_seconds=COMMIT_TIMEOUT_S)
def commit_for_handoff(project_dir: str) -> str:
    """Refuse a dirty train input, then commit dvc.lock so HEAD holds the upstream stages' entries."""
    root = Path(project_dir)
    ho.require_clean(root)
    done = commit_dvc_lock(root, f"nightly: dvc.lock before the GPU hand-off (flow run {flow_run.id})")
    get_run_logger().info(done.note)
    if done.head is None:
        raise ho.HandoffFailed(f"gpu_handoff='git' needs a git checkout with a commit: {done.note}")
    return done.head


@task(name="publish-revision", timeout_seconds=PUSH_TIMEOUT_S, **NETWORK_TASK)
def publish_revision(project_dir: str, remote: str, extra: list[str] | None = None) -> dict:
    """`dvc push` of train's DVC-tracked deps (+ extra), then HEAD to refs/medpipe/handoff/<run>."""
    root = Path(project_dir)
    targets = list(dict.fromkeys(ho.dvc_deps(root) + list(extra or [])))
    if targets:
        _run(["push", *targets], project_dir, PUSH_TIMEOUT_S)
    ref, sha = ho.publish(root, remote, str(flow_run.id))
    get_run_logger().info("pushed %s as %s to %s", sha[:12], ref, remote)
    return {"ref": ref, "revision": sha}


@task(name="take-trained-revision", timeout_seconds=PUSH_TIMEOUT_S, **NETWORK_TASK)
def take_trained(project_dir: str, remote: str, base: str) -> dict:
    """Fetch the GPU host's commit, move HEAD to it, `dvc pull train`, check train is up to date."""
    root = Path(project_dir)
    trained, files = ho.take_trained(root, remote, str(flow_run.id), base)
    _run(["pull", ho.TRAIN], project_dir, PUSH_TIMEOUT_S)
    made = ho.restore_empty_dirs(root)
    get_run_logger().info(
        "took %s from the GPU host (%s)%s",
        trained[:12],
        ", ".join(files) or "no file changed",
        f"; recreated empty {', '.join(made)}" if made else "",
    )
    if train_is_stale.fn(project_dir):
        raise StageFailed(
            f"after the GPU hand-off `dvc status train` still reports changes in {root}; "
            "run `dvc status train` there to see which file differs"
        )
    return {"revision": trained, "files": files}


def train_on_gpu_pool(
    root: str,
    handoff: str,
    deployment: str,
    remote: str,
    repo_url: str | None,
    timeout_s: float,
    poll_s: float,
    extra: list[str] | None = None,
) -> list[str]:
    """Train through the deployment; returns ["train"] when it trained, [] when it was up to date."""
    logger = get_run_logger()
    if not train_is_stale(root):
        logger.info("train is up to date: nothing sent to %s", deployment)
        return []
    if handoff == "shared":
        params = {"project_dir": root, "timeout_s": timeout_s, "handoff": "shared"}
        base = None
    else:
        commit_for_handoff(root)
        base = publish_revision(root, remote, extra)
        url = repo_url or ho.remote_url(Path(root), remote)
        params = {
            "timeout_s": timeout_s,
            "handoff": "git",
            "repo_url": url,
            "ref": base["ref"],
            "revision": base["revision"],
            "result_id": str(flow_run.id),
            "extra_targets": list(extra or []),
        }
    child = run_on_pool(deployment, params, timeout_s + 600, poll_s, logger)
    if not child.state.is_completed():
        why = child.state.message or "see the flow run's logs"
        raise StageFailed(
            f"train on deployment {deployment} (flow run {child.id}) ended {child.state.name}: {why}"
        )
    if base is not None:
        take_trained(root, remote, base["revision"])
    return [ho.TRAIN]
